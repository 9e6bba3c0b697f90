//! keyctl: JWT signing keys, JWKS and the asymmetric-key migration for self-hosted Supabase.
//!
//! `main` only calls [`run`]; everything else lives here so tests can drive it directly.
//! The public modules are the library's stable surface (key material, JWK/JWS, the key sets,
//! the `.env` and compose documents, the migration's names); the rest is the tool itself
//! and crate-private. See `docs/ARCHITECTURE.md` for the map of modules.

#![warn(unreachable_pub)]

pub mod apikey;
pub mod b64;
pub(crate) mod change;
pub(crate) mod cli;
pub(crate) mod clock;
pub(crate) mod cmd;
pub mod compose;
pub(crate) mod doctor;
pub(crate) mod engine;
pub mod envfile;
pub(crate) mod error;
pub(crate) mod fix;
pub(crate) mod flow;
pub mod fsio;
pub(crate) mod helm;
pub(crate) mod holders;
pub(crate) mod images;
pub mod jwk;
pub mod jws;
pub mod key;
pub(crate) mod keybackup;
pub mod keyset;
pub(crate) mod lifecycle;
pub(crate) mod live;
pub mod migrate;
pub(crate) mod phase;
pub(crate) mod project;
pub(crate) mod redact;
pub(crate) mod restart;
pub(crate) mod restore;
pub(crate) mod state;
pub(crate) mod trust;
pub(crate) mod ui;
pub(crate) mod verifier;
pub mod verifykey;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

/// Parses `args` (program name first), runs the command, prints any error as one line and
/// returns the documented exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // One way to ask for JSON everywhere: `--json` (or `--format json`); errors then come as
    // JSON on stderr too.
    let json = args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json")
        || args.iter().any(|a| a == "--json" || a == "--format=json");
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                error::exit::USAGE
            } else {
                error::exit::OK
            };
            if json && e.use_stderr() {
                ui::error_json(code, "usage", &e.to_string());
            } else {
                let _ = e.print();
            }
            return ExitCode::from(code);
        }
    };
    match cli.run() {
        Ok(()) => ExitCode::from(error::exit::OK),
        Err(e) => {
            if !matches!(e, error::Error::Problems { .. }) {
                if json {
                    ui::error_json(e.code(), e.kind(), &e.to_string());
                } else {
                    ui::error(&e.to_string());
                }
            }
            ExitCode::from(e.code())
        }
    }
}
