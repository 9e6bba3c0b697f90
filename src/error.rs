//! The crate-wide error type and the documented exit codes it maps to.
//!
//! Every error keyctl reports is one line that names the place (file, line, kid) and never
//! carries key material: variants hold only names, positions and explanations that keyctl
//! wrote itself, never a value read from a secret. Refusals (exit 3) are typed: callers and
//! tests branch on the kind ([`Refusal::NotDue`] with the time left, [`Refusal::NeedsConsent`],
//! [`Refusal::StateDisagrees`], …), never on the text.

use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};

use crate::phase::Phase;

/// Exit codes, as documented in the README and SPEC §5.
pub(crate) mod exit {
    /// Done, or nothing to do.
    pub(crate) const OK: u8 = 0;
    /// A check ran and found problems.
    pub(crate) const PROBLEMS: u8 = 1;
    /// Usage error or bad input.
    pub(crate) const USAGE: u8 = 2;
    /// Refused as unsafe.
    pub(crate) const UNSAFE: u8 = 3;
    /// The environment prevented it (I/O, a lock held elsewhere).
    pub(crate) const IO: u8 = 4;
}

/// Everything that can stop a keyctl command.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The command line asks for something keyctl does not do, or the user declined.
    #[error("{message}")]
    Usage {
        /// What is wrong with the request.
        message: String,
    },

    /// Input that keyctl has to use cannot be used (a key, a `.env`, a JSON value).
    #[error("{place}: {message}")]
    BadInput {
        /// `file:line VAR`, a file, a kid.
        place: String,
        /// What is wrong with it.
        message: String,
    },

    /// Refused because doing it could break a running stack or lose data.
    #[error("{0}")]
    Refused(#[from] Refusal),

    /// A file could not be read or written.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said, without its error number.
        message: String,
    },

    /// A check found problems; they have been printed already.
    #[error("{count} problem(s) found")]
    Problems {
        /// How many.
        count: usize,
    },
}

/// Why keyctl refused to act (exit 3). Each kind says what to do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// A wait of SPEC §3 is not over.
    #[error(
        "not yet: {what}; allowed at {at} ({} left). Nothing was written; --force skips the wait",
        crate::phase::human(*remaining)
    )]
    NotDue {
        /// What is waited for.
        what: String,
        /// When the step is allowed.
        at: Timestamp,
        /// How long is left.
        remaining: SignedDuration,
    },

    /// The state file has no record of when the phase began, so a wait cannot be checked.
    #[error(
        "the state file has no record of when this phase began, so the wait cannot be checked ({what}); if that time has surely passed, run again with --force"
    )]
    NoRecord {
        /// What is waited for.
        what: String,
    },

    /// Revoking the key would break API keys it signed; the user has not consented.
    #[error(
        "{} {} signed by {key}: revoking it breaks every client that holds them. Re-run with --remint-api-keys to re-mint them with {signer} (clients then need the new anon key). Nothing was written",
        vars.join(" and "),
        if vars.len() == 1 { "is" } else { "are" }
    )]
    NeedsConsent {
        /// The API key variables signed by the key being revoked.
        vars: Vec<String>,
        /// The key being revoked, as people name it.
        key: String,
        /// The key that would re-mint them.
        signer: String,
    },

    /// The files and the state file tell different stories.
    #[error(
        "{} was edited outside keyctl: {}; restore it from .keyctl/backups/, or move {} aside to start the record afresh (timers then need --force)",
        env.display(),
        differs.join("; "),
        state.display()
    )]
    StateDisagrees {
        /// The env file.
        env: PathBuf,
        /// What differs.
        differs: Vec<String>,
        /// The state file.
        state: PathBuf,
    },

    /// Another run changed the project while this one waited for the lock.
    #[error(
        "the project changed while keyctl waited for the lock (now in phase {phase}); nothing was written, run again"
    )]
    ChangedMeanwhile {
        /// The phase found under the lock.
        phase: Phase,
    },

    /// A file the plan was made from changed between the plan and the lock.
    #[error(
        "{} changed while keyctl waited for confirmation; nothing was written, run again to see the new plan", path.display()
    )]
    EditedMeanwhile {
        /// The first file that changed.
        path: PathBuf,
    },

    /// An interrupted run must be recovered first (a dry run cannot).
    #[error("{}: a keyctl run was interrupted; run without --dry-run to recover first", state.display())]
    Interrupted {
        /// The state file holding the journal.
        state: PathBuf,
    },

    /// Recovery of an interrupted run cannot tell what happened to a file.
    #[error("{}: {detail}", path.display())]
    Unrecoverable {
        /// The file.
        path: PathBuf,
        /// What does not match and what to do.
        detail: String,
    },

    /// A file exists and `--force` was not given.
    #[error("{}: already exists; keyctl never overwrites a key file without --force", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },

    /// The key asked to be revoked signs now.
    #[error(
        "{label} is the signing key: switch to another key first (keyctl migrate), then revoke it"
    )]
    SigningKey {
        /// `kid X` or `the legacy JWT_SECRET key`.
        label: String,
    },

    /// The request does not fit the phase the project is in.
    #[error("{reason}")]
    WrongPhase {
        /// The phase.
        phase: Phase,
        /// Why, and what to do instead.
        reason: String,
    },

    /// What keyctl would write breaks a rule of SPEC §1 (a bug guard).
    #[error("refusing to write: {problem}")]
    InvalidResult {
        /// The broken rule, with its place.
        problem: String,
    },

    /// A service's image is older than the version that understands asymmetric keys.
    #[error(
        "{place}: service {service} runs {image}, but {need} or newer is needed ({why}); below it the service ignores the new keys and every session fails after the switch. Upgrade the image first, or pass --allow-old-images to accept that risk"
    )]
    ImageTooOld {
        /// `compose.yml:LINE`.
        place: String,
        /// The compose service.
        service: String,
        /// Its `image:`.
        image: String,
        /// The first version that works.
        need: String,
        /// What that version brings.
        why: String,
    },

    /// The step would break the zero-downtime invariant: a service would reject a valid
    /// token or an API key whose re-mint was not consented to.
    #[error(
        "refused: after this step service {service} ({variable}) would reject {kind}: {reason}{}. Nothing was written",
        if *more > 0 { format!(" (and {more} more such rejection(s); keyctl doctor lists them)") } else { String::new() }
    )]
    WouldBreak {
        /// The compose service.
        service: String,
        /// What it reads its keys from.
        variable: String,
        /// The token kind.
        kind: String,
        /// Why it would reject it.
        reason: String,
        /// How many other breaches there are.
        more: usize,
    },

    /// Containers do not run what the files say: the previous step's restart did not happen.
    #[error(
        "not yet: {detail}; the waits measure nothing until they run the files' values. Recreate them first: {command} (--force skips this check). Nothing was written"
    )]
    Stale {
        /// What runs stale, by service and variable name.
        detail: String,
        /// The exact restart command.
        command: String,
    },

    /// The stack is not in a state a step can safely start from.
    #[error("{place}: {reason}")]
    Precondition {
        /// `file:line VAR` or a file.
        place: String,
        /// What is wrong and what to do first.
        reason: String,
    },
}

impl Error {
    /// The kind of error, as JSON output names it: `usage`, `bad_input`, `refused`, `io`,
    /// `problems`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage { .. } => "usage",
            Error::BadInput { .. } => "bad_input",
            Error::Refused(_) => "refused",
            Error::Io { .. } => "io",
            Error::Problems { .. } => "problems",
        }
    }

    /// The process exit code for this error.
    #[must_use]
    pub fn code(&self) -> u8 {
        match self {
            Error::Usage { .. } | Error::BadInput { .. } => exit::USAGE,
            Error::Refused(_) => exit::UNSAFE,
            Error::Io { .. } => exit::IO,
            Error::Problems { .. } => exit::PROBLEMS,
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
        }
    }

    /// Bad input at a named place (a file, `file:line`, a kid).
    pub fn bad(place: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadInput {
            place: place.into(),
            message: message.into(),
        }
    }

    /// A refused precondition at a named place.
    pub fn precondition(place: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Refused(Refusal::Precondition {
            place: place.into(),
            reason: reason.into(),
        })
    }

    /// An I/O failure on `path`, described by the OS error without its debug noise.
    pub fn io(path: &Path, err: &std::io::Error) -> Self {
        let message = match err.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            std::io::ErrorKind::AlreadyExists => "already exists".to_owned(),
            _ => strip_os_code(&err.to_string()),
        };
        Error::Io {
            path: path.to_path_buf(),
            message,
        }
    }
}

fn strip_os_code(s: &str) -> String {
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// Result alias used across keyctl.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_exit_3_and_keep_their_kind() {
        let e = Error::from(Refusal::NotDue {
            what: "switching".into(),
            at: "2026-12-01T12:20:00Z".parse().unwrap(),
            remaining: SignedDuration::from_mins(5),
        });
        assert_eq!(e.code(), exit::UNSAFE);
        assert!(
            matches!(&e, Error::Refused(Refusal::NotDue { remaining, .. }) if remaining.as_secs() == 300)
        );
        assert!(e.to_string().starts_with("not yet: switching; allowed at"));
        let consent = Refusal::NeedsConsent {
            vars: vec!["ANON_KEY".into(), "SERVICE_ROLE_KEY".into()],
            key: "the legacy JWT_SECRET".into(),
            signer: "ES256 kid k".into(),
        };
        assert!(
            consent
                .to_string()
                .starts_with("ANON_KEY and SERVICE_ROLE_KEY are signed by the legacy JWT_SECRET")
        );
    }
}
