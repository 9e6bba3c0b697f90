//! The command line: the top-level parser and the dispatch to each subcommand's `run`.

use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd::export::{ExportArgs, ImportArgs};
use crate::cmd::{completions::CompletionsArgs, man::ManArgs};
use crate::cmd::{
    doctor::DoctorArgs, migrate::MigrateArgs, revoke::RevokeArgs, rotate::RotateArgs,
    token::TokenArgs,
};
use crate::cmd::{generate::GenerateArgs, jwks::JwksArgs};
use crate::error::Result;

/// JWT signing keys, JWKS and the asymmetric-key migration for self-hosted Supabase.
#[derive(Debug, Parser)]
#[command(
    name = "keyctl",
    version = env!("KEYCTL_VERSION"),
    about,
    after_help = "Exit codes: 0 ok, 1 a check found problems, 2 usage or bad input, 3 refused as unsafe, 4 I/O.\nKEYCTL_NOW (RFC 3339) replaces the clock for every command.\nThe manual (exit codes, environment, files, JSON output): keyctl man | man -l -"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a signing key (ES256, RS256, EdDSA, HS256) or convert a PEM key.
    Generate(GenerateArgs),
    /// Build, check or repair JWT_KEYS (Auth) and JWT_JWKS (every other service).
    Jwks(JwksArgs),
    /// Step a project from JWT_SECRET to an asymmetric key (and later rotate), one safe step per run.
    Migrate(MigrateArgs),
    /// Remove a key (`legacy` or a kid) from both sets once that is safe.
    Revoke(RevokeArgs),
    /// After a finished migration, start the next rotation: a new standby key (then `migrate` switches and revokes).
    Rotate(RotateArgs),
    /// Verify a token as each service would (and say why not), mint a test token, or re-mint API keys.
    Token(TokenArgs),
    /// Find every key problem in a project: formats, wiring, API keys, secrets, migration state.
    Doctor(DoctorArgs),
    /// Write a password-encrypted backup of JWT_KEYS and JWT_SECRET (a JWE any JOSE library opens).
    Export(ExportArgs),
    /// Restore the keys from an `export --encrypt` backup into a project's .env.
    Import(ImportArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(CompletionsArgs),
    /// Print the manual page (roff): exit codes, environment, files and the JSON shapes.
    Man(ManArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    ///
    /// # Errors
    /// Whatever the subcommand reports.
    pub(crate) fn run(self) -> Result<()> {
        match self.command {
            Command::Generate(args) => args.run(),
            Command::Jwks(args) => args.run(),
            Command::Migrate(args) => args.run(),
            Command::Revoke(args) => args.run(),
            Command::Rotate(args) => args.run(),
            Command::Token(args) => args.run(),
            Command::Doctor(args) => args.run(),
            Command::Export(args) => args.run(),
            Command::Import(args) => args.run(),
            Command::Completions(args) => args.run(Cli::command()),
            Command::Man(args) => args.run(Cli::command()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_app() {
        Cli::command().debug_assert();
    }
}
