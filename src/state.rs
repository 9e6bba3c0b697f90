//! keyctl's state file (`.keyctl/state.json` beside `.env`): when each migration step
//! happened and for which kids, the public JWKs of revoked keys, where retired secrets'
//! backups are, and the journal of a run in progress.
//!
//! It never holds private material, and it is never the source of the phase: the phase is
//! derived from the files the services read (`lifecycle`); the state file only adds the
//! times and the history the files cannot tell. Reading is strict: unknown fields, a newer
//! format version, or times in the future are bad input, not something to guess around.

use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::phase::{Phase, Step};

/// The format version keyctl writes and reads.
pub(crate) const VERSION: u32 = 1;

/// Directory beside `.env` that holds the state, the lock and the backups.
pub(crate) const DIR: &str = ".keyctl";

/// A step that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// What happened.
    pub step: Step,
    /// When.
    pub at: Timestamp,
    /// The phase the project was in after the step.
    pub phase: Phase,
    /// The key the step was about (the new key; for `revoked`, the key removed), `None`
    /// for the legacy secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The signing key after the step (`None` for the legacy secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

impl Event {
    /// An event for `step` at `at`, leaving the project in `phase`.
    #[must_use]
    pub fn new(
        step: Step,
        at: Timestamp,
        phase: Phase,
        kid: Option<&str>,
        signer: Option<&str>,
    ) -> Event {
        Event {
            step,
            at,
            phase,
            kid: kid.map(str::to_owned),
            signer: signer.map(str::to_owned),
        }
    }
}

/// A key removed from both sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    /// Its kid (`None`: the legacy `JWT_SECRET` key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// When it was revoked.
    pub at: Timestamp,
    /// Its public JWK, so `token verify` can say "signed by a revoked key".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_jwk: Option<Value>,
}

/// A `JWT_SECRET` that keyctl replaced; the value itself lives only in the backup named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetiredSecret {
    /// When it was replaced.
    pub at: Timestamp,
    /// The backup of the `.env` that held it, relative to the project directory.
    pub backup: String,
    /// The `.env` variable that held it (`JWT_SECRET` when absent: older state files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub var: Option<String>,
    /// Hex SHA-256 of the secret, so a service still resolving it is found even when the
    /// backup is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One file of a run in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingFile {
    /// The file, relative to the project directory.
    pub path: String,
    /// Its backup, relative to the project directory.
    pub backup: String,
    /// SHA-256 (hex) of the file's contents before the run.
    pub before: String,
    /// SHA-256 (hex) of what the run writes.
    pub after: String,
}

/// A run that started writing and has not finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    /// What it was doing.
    pub step: Step,
    /// When it started.
    pub started: Timestamp,
    /// The files it writes.
    pub files: Vec<PendingFile>,
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// Steps, oldest first.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Keys removed from both sets.
    #[serde(default)]
    pub revoked: Vec<Revoked>,
    /// Replaced `JWT_SECRET`s.
    #[serde(default)]
    pub retired_secrets: Vec<RetiredSecret>,
    /// A run in progress, if one was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: VERSION,
            events: Vec::new(),
            revoked: Vec::new(),
            retired_secrets: Vec::new(),
            pending: None,
        }
    }
}

/// Times may be at most this far ahead of the clock (clock skew between machines).
const FUTURE_SLACK: SignedDuration = SignedDuration::from_secs(300);

impl State {
    /// Reads state JSON.
    ///
    /// # Errors
    /// Malformed JSON, unknown fields, a newer version, or a time after `now`.
    pub fn parse(text: &str, now: Timestamp) -> Result<State, String> {
        let state: State = serde_json::from_str(text)
            .map_err(|e| format!("line {}: {}", e.line(), strip_position(&e.to_string())))?;
        if state.version != VERSION {
            return Err(format!(
                "format version {} is not the one this keyctl reads ({VERSION}); a newer keyctl wrote it",
                state.version
            ));
        }
        let limit = now + FUTURE_SLACK;
        let times = state
            .events
            .iter()
            .map(|e| e.at)
            .chain(state.revoked.iter().map(|r| r.at))
            .chain(state.retired_secrets.iter().map(|r| r.at))
            .chain(state.pending.iter().map(|p| p.started));
        if let Some(t) = times.into_iter().find(|t| *t > limit) {
            return Err(format!(
                "records a time in the future ({t}); check the clock or KEYCTL_NOW"
            ));
        }
        Ok(state)
    }

    /// The JSON keyctl writes.
    #[must_use]
    pub fn render(&self) -> String {
        serde_json::to_string_pretty(self).expect("state renders") + "\n"
    }

    /// The most recent event for `step` (and `kid`, when given).
    #[must_use]
    pub fn last(&self, step: Step, kid: Option<&str>) -> Option<&Event> {
        self.events
            .iter()
            .rev()
            .find(|e| e.step == step && (kid.is_none() || e.kid.as_deref() == kid))
    }
}

fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// `.keyctl/` for the project whose `.env` is `env_path`.
#[must_use]
pub(crate) fn dir_for(env_path: &Path) -> PathBuf {
    env_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn round_trips() {
        let mut s = State::default();
        s.events.push(Event {
            step: Step::DualVerify,
            at: now(),
            phase: Phase::DualVerify,
            kid: Some("k".into()),
            signer: None,
        });
        assert_eq!(State::parse(&s.render(), now()).unwrap(), s);
        assert_eq!(s.last(Step::DualVerify, Some("k")).unwrap().at, now());
    }

    #[test]
    fn refuses_unknown_fields_future_times_and_new_versions() {
        assert!(
            State::parse(r#"{"version":1,"extra":true}"#, now())
                .unwrap_err()
                .contains("extra")
        );
        assert!(
            State::parse(r#"{"version":2}"#, now())
                .unwrap_err()
                .contains("version 2")
        );
        let future = r#"{"version":1,"events":[{"step":"switched","at":"2027-01-01T00:00:00Z","phase":"switched"}]}"#;
        assert!(State::parse(future, now()).unwrap_err().contains("future"));
        assert!(State::parse("{", now()).unwrap_err().starts_with("line 1"));
    }
}
