//! The crate-wide error type and the documented exit codes it maps to.
//!
//! Every error keyctl reports is one line that names the place (file, line, kid) and never
//! carries key material: variants hold only names, positions and explanations that keyctl
//! wrote itself, never a value read from a secret.

use std::path::{Path, PathBuf};

/// Exit codes, as documented in the README and SPEC §5.
pub mod exit {
    /// Done, or nothing to do.
    pub const OK: u8 = 0;
    /// A check ran and found problems.
    pub const PROBLEMS: u8 = 1;
    /// Usage error or bad input.
    pub const USAGE: u8 = 2;
    /// Refused as unsafe.
    pub const UNSAFE: u8 = 3;
    /// The environment prevented it (I/O, a lock held elsewhere).
    pub const IO: u8 = 4;
}

/// Everything that can stop a keyctl command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asks for something keyctl does not do.
    #[error("{0}")]
    Usage(String),

    /// Input that keyctl has to use cannot be used (a key, a `.env`, a JSON value).
    #[error("{place}: {message}")]
    BadInput { place: String, message: String },

    /// Refused because doing it could break a running stack or lose data.
    #[error("{0}")]
    Unsafe(String),

    /// A file could not be read or written.
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },

    /// A check found problems; they have been printed already.
    #[error("{count} problem(s) found")]
    Problems { count: usize },
}

impl Error {
    /// The process exit code for this error.
    #[must_use]
    pub fn code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::BadInput { .. } => exit::USAGE,
            Error::Unsafe(_) => exit::UNSAFE,
            Error::Io { .. } => exit::IO,
            Error::Problems { .. } => exit::PROBLEMS,
        }
    }

    /// Bad input at a named place (a file, `file:line`, a kid).
    pub fn bad(place: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadInput {
            place: place.into(),
            message: message.into(),
        }
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
pub type Result<T, E = Error> = std::result::Result<T, E>;
