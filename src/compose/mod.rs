//! docker-compose files: find the Supabase services by image, read and edit their
//! `environment:` entries, and prove that nothing else changed.
//!
//! A [`Compose`] keeps the text exactly as given (comments, blank lines, quoting, anchors,
//! CRLF, a missing final newline) next to an index of node positions taken from
//! `saphyr-parser` events. Every edit is a narrow splice of that text: one scalar's raw
//! text, the `#` of one commented-out line, or lines inserted after the last entry. After
//! each splice the old and the new text are both read by a plain YAML loader and compared
//! ([`verify_edit`]); if anything other than the intended
//! `services.<svc>.environment.<KEY>` (or `services.<svc>.healthcheck.test`) differs, the
//! edit is refused and the document stays as it was. Comments are invisible to a YAML
//! parser, so commented-out upstream entries (`#GOTRUE_JWT_KEYS: …`) are found by scanning
//! the lines of the service's environment block.
//!
//! This module never touches the filesystem and never prints: it takes text and returns
//! text. Its errors name lines, services and keys, never a value read from the file (a
//! compose file can hold a literal secret).
//!
//! One job per file: `role` maps images to roles, `index` records where each YAML node
//! sits, `scalar` spells values, `document` reads, `plan` and `editor` change the text, and
//! `verify` proves that nothing else changed. Only the types below and the re-exports are
//! public; everything else stays inside this module.

mod document;
mod editor;
mod index;
mod plan;
mod role;
mod scalar;
#[cfg(test)]
mod test_support;
mod verify;
mod yamldoc;

pub use document::Compose;
pub use editor::EnvEdit;
pub use role::{Role, role_of_image};
pub use verify::verify_edit;
pub use yamldoc::{Item, YamlDoc};

/// One entry of the top-level `services:` mapping.
#[derive(Debug, Clone)]
pub struct Service {
    /// The service's key.
    pub name: String,
    /// The Supabase role its image says it plays.
    pub role: Option<Role>,
    /// The `image:` value, if it has one.
    pub image: Option<String>,
    /// 1-based line of the service key.
    pub line: usize,
}

/// One environment entry as YAML reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvLine {
    /// The variable name.
    pub key: String,
    /// The value as YAML reads it, quotes removed (e.g. `${JWT_KEYS:-[]}`); empty for
    /// `KEY:` with no value or a list item `- KEY`.
    pub value: String,
    /// 1-based line of the entry.
    pub line: usize,
    /// Whether the entry is a commented-out line (`#KEY: value`).
    pub commented: bool,
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing needed changing; the text is byte-identical.
    Unchanged,
    /// A commented-out entry had its `#` removed; `line` is 1-based.
    Uncommented { line: usize },
    /// An entry (or an `environment:` block holding it) was inserted; `line` is the entry's.
    Added { line: usize },
    /// A value was replaced in place; `line` is the entry's.
    Replaced { line: usize },
}

/// Why a compose file cannot be read or edited, with the line when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct ComposeError {
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong; never a value read from the file.
    pub message: String,
}

impl ComposeError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        ComposeError {
            line: Some(line),
            message: message.into(),
        }
    }

    fn general(message: impl Into<String>) -> Self {
        ComposeError {
            line: None,
            message: message.into(),
        }
    }
}
