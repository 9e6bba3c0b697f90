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
use serde_json::Value;
use zeroize::Zeroizing;

use crate::change::{self, FileChange, Paths};
use crate::clock;
use crate::cmd::ProjectArgs;
use crate::compose::{Compose, Role};
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::fsio::{self, NewFile, Privacy};
use crate::jwk::Jwk;
use crate::jws;
use crate::keybackup::{self, BackupError, Contents, Sealed};
use crate::keyset::{self, Inputs};
use crate::lifecycle::{self, Phase, Snapshot};
use crate::migrate::{self, Stack};
use crate::project::{self, Project};
use crate::state::{Event, RetiredSecret, State};
use crate::ui;

/// The step name of an import in the state file's journal and its backup directory.
const STEP: &str = "import";

/// Where the password comes from (never the command line itself).
#[derive(Debug, Clone, Args)]
pub struct PasswordArgs {
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
pub struct ExportArgs {
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
pub struct ImportArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The backup written by `keyctl export --encrypt`.
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Apply without asking (for CI); never prompts for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show the plan and the diff, write nothing.
    #[arg(long)]
    pub dry_run: bool,
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
            return Err(Error::Usage(
                "--password-env takes the NAME of an environment variable (letters, digits, _), not the password itself".into(),
            ));
        }
        match std::env::var_os(name).map(std::ffi::OsString::into_string) {
            Some(Ok(value)) if !value.is_empty() => Zeroizing::new(value),
            Some(Err(_)) => {
                return Err(Error::Usage(
                    "the environment variable named by --password-env is not valid UTF-8".into(),
                ));
            }
            _ => {
                return Err(Error::Usage(
                    "the environment variable named by --password-env is not set or is empty"
                        .into(),
                ));
            }
        }
    } else if ui::interactive() {
        ask_password(purpose)?
    } else {
        return Err(Error::Usage(
            "no password: without a terminal to ask on, give --password-file FILE or --password-env NAME (keyctl never takes a password as an argument)".into(),
        ));
    };
    if purpose == Purpose::Export && password.chars().count() < keybackup::MIN_PASSWORD_CHARS {
        return Err(Error::Usage(format!(
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
    asked.ok_or_else(|| Error::Usage("cancelled; nothing was written".into()))
}

/// Parses and checks a key set and secret as they would be written: `JWT_KEYS` strictly,
/// then every rule of SPEC §1 with `JWT_JWKS` derived from it. An empty set (`[]`) is none.
fn validate(
    keys: Option<&str>,
    secret: Option<&str>,
    place: &dyn Fn(&str) -> String,
) -> Result<Vec<Jwk>> {
    let keys_text = keys.filter(|t| !t.trim().is_empty());
    let parsed = match keys_text {
        Some(text) => {
            keyset::parse_private_set(text, &place("JWT_KEYS")).map_err(|p| keyset::as_error(&p))?
        }
        None => Vec::new(),
    };
    let jwks = keyset::derive_jwks(&parsed).to_string();
    let inputs = Inputs {
        jwt_keys: keys_text
            .filter(|_| !parsed.is_empty())
            .map(|t| (t, place("JWT_KEYS"))),
        jwt_jwks: (!parsed.is_empty()).then(|| (jwks.as_str(), place("JWT_JWKS (derived)"))),
        jwt_secret: secret.map(|s| (s, place("JWT_SECRET"))),
    };
    let problems = keyset::check(&inputs);
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(keyset::as_error(&problems))
    }
}

/// `ES256 kid X (signing), HS256 legacy`: a secret-free list of a set.
fn describe_keys(keys: &[Jwk]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "{} {}{}",
                k.material.alg(),
                k.kid.as_deref().map_or_else(
                    || "legacy JWT_SECRET key".to_owned(),
                    |kid| format!("kid {kid}")
                ),
                if k.can_sign() { " (signing)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl ExportArgs {
    /// Runs the command.
    ///
    /// # Errors
    /// No `--encrypt`, no or a short password, invalid keys (exit 2); an existing `--out`
    /// without `--force` (exit 3); I/O (exit 4).
    pub fn run(self) -> Result<()> {
        if !self.encrypt {
            return Err(Error::Usage(
                "keyctl export writes encrypted backups only: add --encrypt (keyctl never writes plaintext private keys to a new file)".into(),
            ));
        }
        let now = clock::now()?;
        let project = Project::load(self.project.as_deref(), self.env_file.as_deref())?;
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
        let paths = Paths::for_env(&project.env_path);
        let state = change::load_state(&paths, now).unwrap_or_default();
        let snap = lifecycle::derive(&keys, &state).ok();
        if !self.force && std::fs::symlink_metadata(&self.out).is_ok() {
            return Err(Error::Unsafe(format!(
                "{}: already exists; keyctl never overwrites a key file without --force",
                self.out.display()
            )));
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

/// Whether two JSON texts hold the same value (an unparsable one equals nothing).
fn same_json(a: Option<&str>, b: &str) -> bool {
    let parse = |t: &str| serde_json::from_str::<Value>(t).ok();
    a.and_then(parse).is_some_and(|a| Some(a) == parse(b))
}

/// The state file's last event says what the files say (as `migrate::reconcile` requires).
fn state_agrees(snap: &Snapshot, state: &State) -> bool {
    let Some(last) = state.events.last() else {
        return false;
    };
    let signer = snap.signer.as_ref().and_then(|s| s.kid.clone());
    let new_kid = snap.new_key.as_ref().map(|k| k.kid.clone());
    last.phase == snap.phase.as_str()
        && last.signer == signer
        && (snap.phase != Phase::DualVerify || new_kid.is_none_or(|k| last.kid == k))
}

fn event(
    step: &str,
    at: Timestamp,
    phase: Phase,
    kid: Option<&str>,
    signer: Option<&str>,
) -> Event {
    Event::new(step, at, phase.as_str(), kid, signer)
}

/// What the import does to the state file (see the module docs): the new state and a line
/// for the plan, or a warning when the phase of the keys cannot be told.
enum StatePlan {
    Keep,
    Record(Box<State>, String),
    Unknown(String),
}

fn plan_state(keys: &[Jwk], contents: &Contents, state: &State, now: Timestamp) -> StatePlan {
    if let Ok(snap) = lifecycle::derive(keys, state)
        && (state_agrees(&snap, state)
            || (state.events.is_empty() && matches!(snap.phase, Phase::Legacy | Phase::Revoked)))
    {
        return StatePlan::Keep;
    }
    // The phase the keys mean without the old record; two asymmetric keys need the backup's
    // word on which one is new.
    let hint = match (&contents.new_kid, contents.phase.as_deref()) {
        (Some(kid), Some("dual-verify" | "switched")) => {
            let mut s = State::default();
            s.events.push(event(
                "dual-verify",
                now,
                Phase::DualVerify,
                Some(kid),
                None,
            ));
            s
        }
        _ => State::default(),
    };
    let snap = match lifecycle::derive(keys, &hint) {
        Ok(snap) => snap,
        Err(e) => {
            return StatePlan::Unknown(format!(
                "keyctl migrate cannot tell the phase of the restored keys ({e}); the state file is left as it is"
            ));
        }
    };
    let kid = |slot: &Option<lifecycle::Slot>| slot.as_ref().and_then(|s| s.kid.clone());
    let (signer, new, previous) = (kid(&snap.signer), kid(&snap.new_key), kid(&snap.previous));
    let mut next = state.clone();
    match snap.phase {
        Phase::Legacy => next
            .events
            .push(event(STEP, now, Phase::Legacy, None, None)),
        Phase::Revoked => {
            next.events
                .push(event(STEP, now, Phase::Revoked, None, signer.as_deref()))
        }
        Phase::DualVerify => next.events.push(event(
            "dual-verify",
            now,
            Phase::DualVerify,
            new.as_deref(),
            previous.as_deref(),
        )),
        Phase::Switched => {
            next.events.push(event(
                "dual-verify",
                now,
                Phase::DualVerify,
                new.as_deref(),
                previous.as_deref(),
            ));
            next.events.push(event(
                "switched",
                now,
                Phase::Switched,
                new.as_deref(),
                new.as_deref(),
            ));
        }
    }
    // Bug guard: the record must now read as the files do.
    match lifecycle::derive(keys, &next) {
        Ok(check) if check.phase == snap.phase && state_agrees(&check, &next) => {}
        _ => {
            return StatePlan::Unknown(
                "the state file could not be brought in line with the restored keys; it is left as it is".into(),
            );
        }
    }
    let note = match snap.phase {
        Phase::DualVerify | Phase::Switched => format!(
            "state file: phase {} recorded as reached now; the wait before the next step starts over when the services restart with these keys",
            snap.phase
        ),
        _ => format!("state file: phase {} recorded", snap.phase),
    };
    StatePlan::Record(Box::new(next), note)
}

/// `${VAR}`, `${VAR:-…}`, `${VAR-…}`, `$VAR` in `text`.
fn references(text: &str, var: &str) -> bool {
    text.match_indices(var).any(|(i, _)| {
        let before = &text[..i];
        let after = text[i + var.len()..].chars().next();
        let braced = before.ends_with("${") && matches!(after, Some('}' | ':' | '-' | '?' | '+'));
        let bare = before.ends_with('$')
            && !before.ends_with("$$")
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        braced || bare
    })
}

/// The services whose block in the compose file reads one of `vars` (or the whole `.env`
/// through `env_file`): verifiers first, Auth last.
fn restarts(compose: &Compose, vars: &[&str]) -> (Vec<String>, Vec<String>) {
    let lines: Vec<&str> = compose.text().split_inclusive('\n').collect();
    let services = compose.services();
    let (mut verifiers, mut others, mut auth) = (Vec::new(), Vec::new(), Vec::new());
    for (i, s) in services.iter().enumerate() {
        let start = s.line.saturating_sub(1).min(lines.len());
        let end = services
            .get(i + 1)
            .map_or(lines.len(), |n| n.line.saturating_sub(1))
            .clamp(start, lines.len());
        let block = lines[start..end].concat();
        if !block.contains("env_file") && !vars.iter().any(|v| references(&block, v)) {
            continue;
        }
        match s.role {
            Some(Role::Rest | Role::Realtime | Role::Storage | Role::Functions) => {
                verifiers.push(s.name.clone());
            }
            Some(Role::Auth) => auth.push(s.name.clone()),
            _ => others.push(s.name.clone()),
        }
    }
    others.extend(auth);
    (verifiers, others)
}

/// API keys in the `.env` that no restored key (nor the restored `JWT_SECRET`) signed.
fn api_key_warnings(env: &EnvFile, keys: &[Jwk], secret: Option<&str>, file: &str) -> Vec<String> {
    let mut out = Vec::new();
    for var in [
        "ANON_KEY",
        "SERVICE_ROLE_KEY",
        "ANON_KEY_ASYMMETRIC",
        "SERVICE_ROLE_KEY_ASYMMETRIC",
    ] {
        let Some(token) = env.get_nonempty(var) else {
            continue;
        };
        let Ok(d) = jws::decode(token) else {
            continue;
        };
        let signed = match d.kid() {
            Some(kid) => keys
                .iter()
                .any(|k| k.kid.as_deref() == Some(kid) && d.verifies_with(&k.material)),
            None => secret.is_some_and(|s| d.verifies_with(&keyset::legacy_material(s))),
        };
        if !signed {
            out.push(format!(
                "{file} {var} is not signed by a restored key: clients that send it will be rejected; restore it from the same .env backup or mint new API keys (keyctl doctor explains)"
            ));
        }
    }
    out
}

/// The compose file beside the `.env`, if there is one: only for wiring warnings and the
/// restart command, so a project without one can still be restored.
fn load_compose(args: &ProjectArgs, env_path: &Path) -> Result<Option<(PathBuf, Compose)>> {
    let explicit = args.compose_file.is_some();
    let Ok(path) = project::compose_path(env_path, args.compose_file.as_deref()) else {
        return Ok(None);
    };
    let parsed = fsio::read_text(&path).and_then(|text| {
        Compose::parse(&text).map_err(|e| {
            Error::bad(
                e.line.map_or_else(
                    || path.display().to_string(),
                    |l| format!("{}:{l}", path.display()),
                ),
                e.message,
            )
        })
    });
    match parsed {
        Ok(c) => Ok(Some((path, c))),
        Err(e) if explicit => Err(e),
        Err(e) => {
            ui::warn(&format!(
                "{e}; continuing without it (no wiring check, no restart list)"
            ));
            Ok(None)
        }
    }
}

fn load(args: &ProjectArgs, now: Timestamp) -> Result<(Project, Paths, State)> {
    let project = Project::load(args.project.as_deref(), args.env_file.as_deref())?;
    let paths = Paths::for_env(&project.env_path);
    let state = change::load_state(&paths, now)?;
    Ok((project, paths, state))
}

impl ImportArgs {
    /// Runs the command.
    ///
    /// # Errors
    /// A wrong password, a damaged or invalid backup, no password source, no confirmation
    /// (exit 2); a legacy backup for a project with keys, an interrupted run seen with
    /// `--dry-run` (exit 3); I/O and the lock (exit 4).
    pub fn run(self) -> Result<()> {
        let now = clock::now()?;
        let env_path = project::env_path(
            self.project.project.as_deref(),
            self.project.env_file.as_deref(),
        )?;
        if !env_path.exists() {
            return Err(Error::Io {
                path: env_path.clone(),
                message: "no such file; import edits an existing .env (create an empty one first if the project is new)".into(),
            });
        }
        let (contents, keys) = open_backup(&self.input, &self.password)?;
        let (mut project, mut paths, mut state) = load(&self.project, now)?;
        let _lock = if self.dry_run {
            None
        } else {
            let lock = crate::cmd::migrate::take_lock(&paths)?;
            (project, paths, state) = load(&self.project, now)?;
            Some(lock)
        };
        // The journal may name the compose file too (a `migrate` run was interrupted).
        let compose_path =
            project::compose_path(&project.env_path, self.project.compose_file.as_deref()).ok();
        let mut files = vec![project.env_path.as_path()];
        files.extend(compose_path.as_deref());
        if crate::cmd::migrate::recover_pending(&paths, &files, &mut state, self.dry_run)? {
            (project, paths, state) = load(&self.project, now)?;
        }
        let file = project.env_path.display().to_string();
        let mut env = project.env.clone();
        let mut changed: Vec<&str> = Vec::new();
        let mut set = |env: &mut EnvFile, var: &'static str, value: &str, group| -> Result<()> {
            env.set(var, value, group)
                .map_err(|e| Error::bad(format!("{file} {var}"), e))?;
            changed.push(var);
            Ok(())
        };
        let current_keys = project.env.get("JWT_KEYS");
        // The keys the project trusts now, when they are a valid set beyond the lone legacy key.
        let current_valid = current_keys
            .filter(|t| !t.trim().is_empty())
            .and_then(|t| keyset::parse_private_set(t, "JWT_KEYS").ok())
            .filter(|k| !(k.len() == 1 && keyset::is_legacy(&k[0])));
        match &contents.jwt_keys {
            Some(text) if !keys.is_empty() => {
                // Keys that disagree with the state file's record are damaged (restoring is the
                // point); keys that agree with it, or a project without a record, are live.
                let damaged = !state.events.is_empty()
                    && current_valid
                        .as_ref()
                        .and_then(|k| lifecycle::derive(k, &state).ok())
                        .is_none_or(|snap| !state_agrees(&snap, &state));
                if current_valid.is_some() && !damaged && !same_json(current_keys, text) {
                    if !self.force {
                        return Err(Error::Unsafe(format!(
                            "{} holds a valid key set that differs from the backup's: replacing it would skip the migration's waits and consent and can log users out. Restore only onto a project whose keys are lost or damaged, or pass --force. Nothing was written",
                            project.place("JWT_KEYS")
                        )));
                    }
                    ui::warn(
                        "--force: replacing a valid key set; tokens signed by keys the backup lacks stop verifying",
                    );
                }
                if !same_json(current_keys, text) {
                    set(&mut env, "JWT_KEYS", text, Some(migrate::ENV_GROUP))?;
                }
                let jwks = keyset::derive_jwks(&keys).to_string();
                if !same_json(project.env.get("JWT_JWKS"), &jwks) {
                    set(&mut env, "JWT_JWKS", &jwks, Some(migrate::ENV_GROUP))?;
                }
            }
            _ => {
                // A lone legacy oct key is a legacy project (SPEC §3, phase 0).
                let has_keys = current_keys.is_some_and(|t| {
                    !t.trim().is_empty()
                        && serde_json::from_str::<Value>(t)
                            .ok()
                            .is_none_or(|v| v.as_array().is_none_or(|a| !a.is_empty()))
                }) && current_keys
                    .and_then(|t| keyset::parse_private_set(t, "JWT_KEYS").ok())
                    .is_none_or(|k| !(k.len() == 1 && keyset::is_legacy(&k[0])));
                let lone_oct = current_keys
                    .and_then(|t| keyset::parse_private_set(t, "JWT_KEYS").ok())
                    .is_some_and(|k| k.len() == 1 && keyset::is_legacy(&k[0]));
                if lone_oct
                    && let Some(secret) = &contents.jwt_secret
                    && project.env.get("JWT_SECRET") != Some(secret.as_str())
                {
                    // Keep the legacy oct key in step with the restored secret.
                    let list = [(keyset::legacy_material(secret), None)];
                    let text = keyset::render_private_set(&list, 0).to_string();
                    let parsed = keyset::parse_private_set(&text, "JWT_KEYS")
                        .map_err(|p| keyset::as_error(&p))?;
                    set(&mut env, "JWT_KEYS", &text, Some(migrate::ENV_GROUP))?;
                    set(
                        &mut env,
                        "JWT_JWKS",
                        &keyset::derive_jwks(&parsed).to_string(),
                        Some(migrate::ENV_GROUP),
                    )?;
                }
                if has_keys {
                    return Err(Error::Unsafe(format!(
                        "{}: the backup holds only JWT_SECRET (a legacy project) while {} has keys; restoring it would mean removing them, which is a rollback (keyctl migrate rollback), not an import. Nothing was written",
                        self.input.display(),
                        project.place("JWT_KEYS")
                    )));
                }
            }
        }
        let old_secret = project.env.get_nonempty("JWT_SECRET").map(str::to_owned);
        if let Some(secret) = &contents.jwt_secret
            && project.env.get("JWT_SECRET") != Some(secret.as_str())
        {
            set(&mut env, "JWT_SECRET", secret, None)?;
        }
        let before = project.env.render().to_owned();
        let after = env.render().to_owned();
        if before == after {
            ui::out(&format!(
                "nothing to do: {file} already holds the keys of {}",
                self.input.display()
            ));
            return Ok(());
        }
        change::validate_env(&env)?;

        let mut next_state = state.clone();
        let mut summary = vec![format!(
            "restore the keys backed up on {}{}",
            contents.created,
            contents
                .phase
                .as_deref()
                .map(|p| format!(" (phase {p})"))
                .unwrap_or_default()
        )];
        if changed.contains(&"JWT_KEYS") {
            summary.push(format!("JWT_KEYS: {}", describe_keys(&keys)));
        }
        if changed.contains(&"JWT_JWKS") {
            summary.push("JWT_JWKS: derived from them (public keys only)".into());
        }
        let mut warnings = Vec::new();
        if changed.contains(&"JWT_SECRET") {
            summary.push("JWT_SECRET: replaced by the backup's".into());
        }
        match plan_state(&keys, &contents, &state, now) {
            StatePlan::Keep => {}
            StatePlan::Record(s, note) => {
                next_state = *s;
                summary.push(note);
            }
            StatePlan::Unknown(w) => warnings.push(w),
        }
        let backup_dir = change::backup_dir(&paths, STEP, now);
        if changed.contains(&"JWT_SECRET") && old_secret.is_some() {
            let name = project
                .env_path
                .file_name()
                .map_or_else(|| ".env".into(), |n| n.to_string_lossy().into_owned());
            let held = backup_dir.join(name);
            next_state.retired_secrets.push(RetiredSecret {
                at: now,
                backup: held
                    .strip_prefix(&paths.project)
                    .map_or_else(|_| held.display().to_string(), |p| p.display().to_string()),
            });
        }
        warnings.extend(api_key_warnings(
            &env,
            &keys,
            env.get_nonempty("JWT_SECRET"),
            &file,
        ));
        let compose = load_compose(&self.project, &project.env_path)?;
        if let Some((compose_path, compose)) = &compose
            && keys.iter().any(|k| k.material.alg().is_asymmetric())
        {
            let stack = Stack {
                project: Project {
                    env_path: project.env_path.clone(),
                    env: env.clone(),
                },
                compose_path: compose_path.clone(),
                compose: compose.clone(),
                paths: paths.clone(),
            };
            let gaps = migrate::wiring_gaps(&stack);
            if !gaps.is_empty() {
                warnings.push(format!(
                    "{} does not feed the keys to {}: run `keyctl migrate rewire --project {}` after this",
                    compose_path.display(),
                    gaps.join(", "),
                    paths.project.display()
                ));
            }
        }

        let files = [FileChange {
            path: project.env_path.clone(),
            before,
            after,
            is_env: true,
        }];
        let mut text = format!("{file}: import from {}\n", self.input.display());
        for line in &summary {
            text.push_str(&format!("  - {line}\n"));
        }
        text.push('\n');
        text.push_str(&change::diff(&files));
        ui::out(&text);
        for w in &warnings {
            ui::warn(w);
        }
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(&project.env_path) {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    ui::warn(&format!(
                        "{file} is readable by group or others (mode {mode:o}) and will hold private keys: chmod 600 it"
                    ));
                }
            }
        }
        if self.dry_run {
            ui::note("dry run: nothing was written");
            return Ok(());
        }
        crate::cmd::migrate::confirm(self.yes, "Write these keys into the project?")?;
        change::apply(&paths, STEP, &files, next_state, &backup_dir, now)?;
        let mut done = format!(
            "done: {file} holds the restored keys. Backup of the previous file: {}\n",
            backup_dir.display()
        );
        match &compose {
            Some((compose_path, compose)) => {
                let (verifiers, others) = restarts(compose, &changed);
                if verifiers.is_empty() && others.is_empty() {
                    done.push_str(&format!(
                        "no service in {} reads a changed value: nothing to restart\n",
                        compose_path.display()
                    ));
                } else {
                    done.push_str(&format!(
                        "restart the services that read them (verifiers first):\n  {}\n",
                        change::restart_command(
                            compose_path,
                            &project.env_path,
                            &verifiers,
                            &others
                        )
                    ));
                }
            }
            None => done.push_str(
                "restart every service that reads JWT_KEYS, JWT_JWKS or JWT_SECRET (verifiers first, auth last)\n",
            ),
        }
        ui::out(&done);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Alg, Material};

    const SECRET: &str = "a-test-secret-that-is-long-enough-0123";

    fn set(specs: &[(Option<&str>, bool)]) -> Vec<Jwk> {
        let pairs: Vec<(Material, Option<String>)> = specs
            .iter()
            .map(|(kid, _)| match kid {
                None => (keyset::legacy_material(SECRET), None),
                Some(k) => (
                    Material::generate(Alg::Es256, 2048).unwrap(),
                    Some((*k).to_owned()),
                ),
            })
            .collect();
        let signer = specs.iter().position(|(_, s)| *s).unwrap();
        let text = keyset::render_private_set(&pairs, signer).to_string();
        keyset::parse_private_set(&text, "JWT_KEYS").unwrap()
    }

    fn contents(phase: Option<&str>, new_kid: Option<&str>) -> Contents {
        Contents {
            created: "2026-11-30T12:00:00Z".parse().unwrap(),
            phase: phase.map(str::to_owned),
            new_kid: new_kid.map(str::to_owned),
            jwt_keys: None,
            jwt_secret: None,
        }
    }

    fn now() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn recorded(plan: StatePlan) -> State {
        match plan {
            StatePlan::Record(s, _) => *s,
            StatePlan::Keep => panic!("kept"),
            StatePlan::Unknown(w) => panic!("unknown: {w}"),
        }
    }

    #[test]
    fn a_fresh_project_gets_the_phase_recorded_as_of_now() {
        let keys = set(&[(None, true), (Some("new"), false)]);
        let s = recorded(plan_state(
            &keys,
            &contents(None, None),
            &State::default(),
            now(),
        ));
        let snap = lifecycle::derive(&keys, &s).unwrap();
        assert_eq!(snap.phase, Phase::DualVerify);
        assert!(state_agrees(&snap, &s));
        assert_eq!(s.last("dual-verify", Some("new")).unwrap().at, now());

        let keys = set(&[(None, false), (Some("new"), true)]);
        let s = recorded(plan_state(
            &keys,
            &contents(None, None),
            &State::default(),
            now(),
        ));
        assert_eq!(s.last("switched", Some("new")).unwrap().at, now());
        assert_eq!(lifecycle::derive(&keys, &s).unwrap().phase, Phase::Switched);
    }

    #[test]
    fn an_agreeing_record_is_kept_and_legacy_needs_none() {
        let keys = set(&[(None, true), (Some("new"), false)]);
        let s = recorded(plan_state(
            &keys,
            &contents(None, None),
            &State::default(),
            now(),
        ));
        assert!(matches!(
            plan_state(&keys, &contents(None, None), &s, now()),
            StatePlan::Keep
        ));
        let legacy = set(&[(None, true)]);
        assert!(matches!(
            plan_state(&legacy, &contents(None, None), &State::default(), now()),
            StatePlan::Keep
        ));
        // A record of another phase gets an import event that matches the files.
        let s = recorded(plan_state(&legacy, &contents(None, None), &s, now()));
        assert_eq!(s.events.last().unwrap().step, STEP);
        assert!(state_agrees(&lifecycle::derive(&legacy, &s).unwrap(), &s));
    }

    #[test]
    fn two_asymmetric_keys_need_the_backups_word() {
        let keys = set(&[(Some("old"), false), (Some("new"), true)]);
        assert!(matches!(
            plan_state(&keys, &contents(None, None), &State::default(), now()),
            StatePlan::Unknown(_)
        ));
        let s = recorded(plan_state(
            &keys,
            &contents(Some("switched"), Some("new")),
            &State::default(),
            now(),
        ));
        let snap = lifecycle::derive(&keys, &s).unwrap();
        assert_eq!(snap.phase, Phase::Switched);
        assert_eq!(snap.new_key.unwrap().kid.as_deref(), Some("new"));
    }

    #[test]
    fn references_finds_compose_interpolations_only() {
        assert!(references("X: ${JWT_SECRET}", "JWT_SECRET"));
        assert!(references("X: ${JWT_JWKS:-${JWT_SECRET}}", "JWT_SECRET"));
        assert!(references("X: $JWT_SECRET\n", "JWT_SECRET"));
        assert!(!references("X: ${JWT_SECRET_FILE}", "JWT_SECRET"));
        assert!(!references("X: $$JWT_SECRET", "JWT_SECRET"));
        assert!(!references("JWT_SECRET: x", "JWT_SECRET"));
    }

    #[test]
    fn env_names_are_names() {
        assert!(valid_env_name("KEYCTL_BACKUP_PASSWORD"));
        assert!(valid_env_name("_x1"));
        assert!(!valid_env_name("1X"));
        assert!(!valid_env_name("correct horse battery"));
        assert!(!valid_env_name(""));
    }
}
