//! keyctl: JWT signing keys, JWKS and the asymmetric-key migration for self-hosted Supabase.
//!
//! `main` only calls [`run`]; everything else lives here so tests can drive it directly.
//! See `docs/ARCHITECTURE.md` for the map of modules.

pub mod apikey;
pub mod b64;
pub mod change;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod compose;
pub mod doctor;
pub mod envfile;
pub mod error;
pub mod flow;
pub mod fsio;
pub mod jwk;
pub mod jws;
pub mod key;
pub mod keybackup;
pub mod keyset;
pub mod lifecycle;
pub mod migrate;
pub mod phase;
pub mod project;
pub mod restore;
pub mod state;
pub mod ui;
pub mod verifier;

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
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                error::exit::USAGE
            } else {
                error::exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.run() {
        Ok(()) => ExitCode::from(error::exit::OK),
        Err(e) => {
            if !matches!(e, error::Error::Problems { .. }) {
                ui::error(&e.to_string());
            }
            ExitCode::from(e.code())
        }
    }
}
