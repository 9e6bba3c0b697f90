//! `keyctl export --encrypt` and `keyctl import`: a password-encrypted backup of a project's
//! key material, and its restoration into a project.
//!
//! # What is backed up
//! `JWT_KEYS` (Auth's private set, validated with [`keyset::parse_private_set`] and
//! [`keyset::check`]) and `JWT_SECRET` (the legacy secret, which the legacy oct key, the HS256
//! API keys and several services still need). A legacy project without `JWT_KEYS` (absent,
//! empty or `[]`) is backed up as its `JWT_SECRET` alone. `JWT_JWKS` is not stored: import
//! derives it with [`keyset::derive_jwks`]. The file format is [`crate::keybackup`]: a compact
//! JWE, `PBES2-HS256+A128KW` with 600,000 PBKDF2 iterations and `A256GCM`, which any JOSE
//! library opens with the password alone.
//!
//! # export
//! Without `--encrypt` it refuses (exit 2): keyctl never writes plaintext private keys to a new
//! file through export. The file is created 0600 from its first byte and never replaces an
//! existing file unless `--force` is given (exit 3 otherwise); that is checked before the
//! password is asked for. Keys that break a rule of SPEC §1 are refused (exit 2): a backup
//! that `import` would refuse to write is no backup.
//!
//! # import
//! Decrypts (a wrong password or a changed file: exit 2, "wrong password or damaged file"),
//! validates the backup exactly as `export` did, and plans the project's new `.env`:
//! `JWT_KEYS` and `JWT_JWKS` (derived) when the backup holds keys, `JWT_SECRET` when it holds
//! one; a value already equal to the backup's (JSON compared as JSON) keeps its text. Every
//! other line stays byte for byte ([`EnvFile::set`]). Then the flow of `keyctl migrate`:
//! under the project lock, an interrupted run is recovered first, the plan and the redacted
//! diff are shown, `--dry-run` stops there, `--yes` or a yes on the terminal applies it
//! through [`change::apply`] (backup in `.keyctl/backups/<time>-import/`, journal, atomic
//! replace). A project whose values already equal the backup's is "nothing to do" (exit 0).
//! A legacy backup (no `JWT_KEYS`) is refused (exit 3) for a project that has keys: removing
//! them is a rollback, not a restore. A `JWT_SECRET` that the import replaces is recorded as
//! retired (its value stays only in the backup of the old `.env`, as after a revocation).
//!
//! # The state file
//! The phase always comes from the files; the state file adds when each step happened. When
//! the state file already agrees with the restored keys (the same project, restored after its
//! `.env` was damaged), it is kept as it is. Otherwise (a fresh machine, or keys from another
//! point in time) import records the restored phase as reached **now**: `dual-verify` is
//! recorded as a `dual-verify` event, `switched` as a `dual-verify` and a `switched` event,
//! `legacy`/`revoked` as an `import` event (none when the record is empty and no wait
//! depends on it). Restored keys reach the services only when they restart, so every wait of
//! SPEC §3 starts over from the import, never shorter. Two asymmetric keys do not say which
//! one is new; the backup records it (`new_kid`), and without it the state file is left
//! alone with a warning.
//!
//! # The password
//! From `--password-file FILE` (its first line), `--password-env NAME` (for CI), or a prompt
//! on a terminal (asked twice on export). Never from a command-line argument: there is no
//! such flag, since arguments end up in shell history and `ps`. Without a terminal and
//! without either option: exit 2. `export` refuses passwords shorter than
//! [`keybackup::MIN_PASSWORD_CHARS`] characters (exit 2). The password, the plaintext and the
//! secret values are held in [`Zeroizing`] buffers; errors never show them, nor the name
//! given to `--password-env` (a password pasted there by mistake must not reach a log).

use std::path::{Path, PathBuf};

use clap::Args;
use jiff::Timestamp;
use zeroize::Zeroizing;

use crate::clock;
use crate::cmd::ProjectArgs;
use crate::error::{Error, Refusal, Result};
use crate::flow;
use crate::fsio::{self, NewFile, Privacy};
use crate::jwk::Jwk;
use crate::keybackup::{self, BackupError, Contents, Sealed};
use crate::lifecycle;
use crate::project::{Locator, Project};
use crate::restore::{self, Restore, describe_keys, validate};
use crate::ui;

/// The step name of an import in the state file's journal and its backup directory.
/// Where the password comes from (never the command line itself).
#[derive(Debug, Clone, Args)]
pub(crate) struct PasswordArgs {
    /// Read the password from the first line of FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "password_env")]
    pub password_file: Option<PathBuf>,
    /// Read the password from the environment variable NAME (for CI). Give the name, not the password.
    #[arg(long, value_name = "NAME")]
    pub password_env: Option<String>,
}

/// Arguments of `keyctl export`.
#[derive(Debug, Args)]
#[command(
    after_help = "The backup is a JWE (PBES2-HS256+A128KW, 600000 PBKDF2 iterations, A256GCM) holding JWT_KEYS and JWT_SECRET; any JOSE library opens it with the password.\nThe password comes from a prompt, --password-file or --password-env; never from the command line.\nExamples:\n  keyctl export --encrypt --project /srv/supabase --out keys.jwe\n  KEYCTL_BACKUP_PASSWORD=… keyctl export --encrypt --project . --out keys.jwe --password-env KEYCTL_BACKUP_PASSWORD"
)]
pub(crate) struct ExportArgs {
    /// Encrypt the backup with a password. Required: export never writes plaintext private keys.
    #[arg(long)]
    pub encrypt: bool,
    /// Project directory holding `.env`.
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// The env file to read (default: DIR/.env).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The backup file to create (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// Arguments of `keyctl import`.
#[derive(Debug, Args)]
#[command(
    after_help = "Writes JWT_KEYS, JWT_JWKS (derived) and JWT_SECRET into the project's .env, after a backup, under the lock, with the same guarantees as keyctl migrate.\nExamples:\n  keyctl import --project /srv/supabase --in keys.jwe --dry-run\n  keyctl import --project /srv/supabase --in keys.jwe --password-file /run/secrets/backup --yes"
)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The backup written by `keyctl export --encrypt`.
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    #[command(flatten)]
    pub password: PasswordArgs,
    #[command(flatten)]
    pub apply: super::ApplyArgs,
    /// Replace a valid key set that differs from the backup's (this skips the migration's
    /// waits and can log users out: it prints a warning).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Export,
    Import,
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The password from the file, the environment variable or the terminal, in that order.
fn password(args: &PasswordArgs, purpose: Purpose) -> Result<Zeroizing<String>> {
    let password = if let Some(path) = &args.password_file {
        let text = Zeroizing::new(fsio::read_text(path)?);
        let first = text
            .split('\n')
            .next()
            .unwrap_or_default()
            .trim_end_matches('\r');
        if first.is_empty() {
            return Err(Error::bad(
                path.display().to_string(),
                "the first line is empty; it must hold the password",
            ));
        }
        Zeroizing::new(first.to_owned())
    } else if let Some(name) = &args.password_env {
        if !valid_env_name(name) {
            return Err(Error::usage(
                "--password-env takes the NAME of an environment variable (letters, digits, _), not the password itself",
            ));
        }
        match std::env::var_os(name).map(std::ffi::OsString::into_string) {
            Some(Ok(value)) if !value.is_empty() => Zeroizing::new(value),
            Some(Err(_)) => {
                return Err(Error::usage(
                    "the environment variable named by --password-env is not valid UTF-8",
                ));
            }
            _ => {
                return Err(Error::usage(
                    "the environment variable named by --password-env is not set or is empty",
                ));
            }
        }
    } else if ui::interactive() {
        ask_password(purpose)?
    } else {
        return Err(Error::usage(
            "no password: without a terminal to ask on, give --password-file FILE or --password-env NAME (keyctl never takes a password as an argument)",
        ));
    };
    if purpose == Purpose::Export && password.chars().count() < keybackup::MIN_PASSWORD_CHARS {
        return Err(Error::usage(format!(
            "the password is shorter than {} characters; choose a longer one (a few unrelated words make a good one)",
            keybackup::MIN_PASSWORD_CHARS
        )));
    }
    Ok(password)
}

/// Asks for the password on the terminal, twice on export.
///
/// The one prompt outside `ui`: `ui` has no password prompt yet. Moving this function there
/// (as `ui::password(prompt, confirm: bool) -> Option<Zeroizing<String>>`) changes nothing else.
fn ask_password(purpose: Purpose) -> Result<Zeroizing<String>> {
    let asked = match purpose {
        Purpose::Export => ui::password(
            "Password for the backup",
            Some(keybackup::MIN_PASSWORD_CHARS),
        ),
        Purpose::Import => ui::password("Password of the backup", None),
    };
    asked.ok_or_else(|| Error::usage("cancelled; nothing was written"))
}

impl ExportArgs {
    /// Runs the command.
    ///
    /// # Errors
    /// No `--encrypt`, no or a short password, invalid keys (exit 2); an existing `--out`
    /// without `--force` (exit 3); I/O (exit 4).
    pub(crate) fn run(self) -> Result<()> {
        if !self.encrypt {
            return Err(Error::usage(
                "keyctl export writes encrypted backups only: add --encrypt (keyctl never writes plaintext private keys to a new file)",
            ));
        }
        let now = clock::now()?;
        let project = Project::load(
            &Locator {
                dir: self.project.clone(),
                env_file: self.env_file.clone(),
                compose_file: None,
                services: Vec::new(),
                project_name: None,
                helm: None,
            },
            now,
        )?;
        let keys_text = project.env.get("JWT_KEYS");
        let secret = project.env.get_nonempty("JWT_SECRET");
        let keys = validate(keys_text, secret, &|var| project.place(var))?;
        if keys.is_empty() && secret.is_none() {
            return Err(Error::bad(
                project.env_path.display().to_string(),
                "holds neither JWT_KEYS nor JWT_SECRET: there is no key material to back up",
            ));
        }
        // The phase as keyctl sees it (with the state file, to tell two asymmetric keys
        // apart); a state file that cannot be read only costs this hint.
        let snap = project
            .state()
            .ok()
            .and_then(|state| lifecycle::derive(&keys, state).ok());
        if !self.force && fsio::exists(&self.out) {
            return Err(Refusal::Exists {
                path: self.out.clone(),
            }
            .into());
        }
        let password = password(&self.password, Purpose::Export)?;
        let contents = Contents {
            created: Timestamp::from_second(now.as_second()).unwrap_or(now),
            phase: snap
                .as_ref()
                .filter(|_| !keys.is_empty())
                .map(|s| s.phase.as_str().to_owned()),
            new_kid: snap
                .as_ref()
                .and_then(|s| s.new_key.as_ref())
                .and_then(|k| k.kid.clone()),
            jwt_keys: keys_text
                .filter(|_| !keys.is_empty())
                .map(|t| Zeroizing::new(t.trim().to_owned())),
            jwt_secret: secret.map(|s| Zeroizing::new(s.to_owned())),
        };
        let plaintext = contents
            .render()
            .map_err(|e| Error::bad(project.place("JWT_KEYS"), e.to_string()))?;
        let jwe = ui::with_progress(
            "deriving the encryption key from the password",
            true,
            || {
                keybackup::seal(
                    plaintext.as_bytes(),
                    password.as_bytes(),
                    keybackup::ITERATIONS,
                )
            },
        );
        drop(plaintext);
        drop(password);
        fsio::write_new_files(
            &[NewFile {
                path: self.out.clone(),
                contents: format!("{jwe}\n").into_bytes(),
                privacy: Privacy::Private,
            }],
            self.force,
        )?;
        let mut held = Vec::new();
        if !keys.is_empty() {
            held.push(format!("JWT_KEYS ({})", describe_keys(&keys)));
        }
        if secret.is_some() {
            held.push("JWT_SECRET".to_owned());
        }
        let dir = project
            .env_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| ".".to_owned(), |p| p.display().to_string());
        ui::out(&format!(
            "wrote {} (mode 0600): {}\nencrypted with {} ({} PBKDF2-SHA256 iterations) and {}; keep the password apart from the file\nrestore with: keyctl import --project {dir} --in {}",
            self.out.display(),
            held.join(" and "),
            keybackup::ALG,
            keybackup::ITERATIONS,
            keybackup::ENC,
            self.out.display()
        ));
        Ok(())
    }
}

/// Decrypts and validates a backup file.
fn open_backup(path: &Path, args: &PasswordArgs) -> Result<(Contents, Vec<Jwk>)> {
    let place = path.display().to_string();
    let text = fsio::read_text(path)?;
    let sealed = Sealed::parse(&text).map_err(|e| Error::bad(place.clone(), e.to_string()))?;
    let password = password(args, Purpose::Import)?;
    let plaintext = ui::with_progress(
        "deriving the decryption key from the password",
        true,
        || sealed.open(password.as_bytes()),
    )
    .map_err(|e| match e {
        BackupError::Decrypt => Error::bad(
            place.clone(),
            "wrong password or damaged file; nothing was written",
        ),
        BackupError::Malformed(m) => Error::bad(place.clone(), m),
    })?;
    drop(password);
    let contents =
        Contents::parse(&plaintext).map_err(|e| Error::bad(place.clone(), e.to_string()))?;
    drop(plaintext);
    let keys = validate(
        contents.jwt_keys.as_deref().map(String::as_str),
        contents.jwt_secret.as_deref().map(String::as_str),
        &|var| format!("{place} {var}"),
    )?;
    Ok((contents, keys))
}

impl ImportArgs {
    /// Runs the command.
    ///
    /// # Errors
    /// A wrong password, a damaged or invalid backup, no password source, no confirmation
    /// (exit 2); a legacy backup for a project with keys, an interrupted run seen with
    /// `--dry-run` (exit 3); I/O and the lock (exit 4).
    pub(crate) fn run(self) -> Result<()> {
        let loc = self.project.locator();
        restore::require_env(&loc)?;
        let (contents, keys) = open_backup(&self.input, &self.password)?;
        let mut restore = Restore {
            contents,
            keys,
            input: self.input.clone(),
            force: self.force,
            compose_named: self.project.compose_file.is_some(),
        };
        flow::run(&loc, self.apply.mode(), &mut restore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_names() {
        assert!(valid_env_name("KEYCTL_BACKUP_PASSWORD"));
        assert!(valid_env_name("_x1"));
        assert!(!valid_env_name("1X"));
        assert!(!valid_env_name("correct horse battery"));
        assert!(!valid_env_name(""));
    }
}
