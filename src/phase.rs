//! The names of the lifecycle: the four phases a project can be in (SPEC §3), the steps
//! keyctl records, and how a wait is said to people. Plain types with their stable spellings (state file, `--json`, backup
//! directory names); no logic, no I/O.

use std::fmt;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// A migration phase, as `migrate status --json` and the state file name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Only the shared HS256 secret.
    Legacy,
    /// A new key is published (standby) while the previous one signs.
    DualVerify,
    /// The new key signs; the previous one still verifies.
    Switched,
    /// The previous key is gone: one asymmetric key.
    Revoked,
}

impl Phase {
    /// The name used in `--json` output and the state file.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Legacy => "legacy",
            Phase::DualVerify => "dual-verify",
            Phase::Switched => "switched",
            Phase::Revoked => "revoked",
        }
    }

    /// The phase the next forward step leads to (after `revoked`, a rotation starts over).
    #[must_use]
    pub fn next(self) -> Phase {
        match self {
            Phase::Legacy | Phase::Revoked => Phase::DualVerify,
            Phase::DualVerify => Phase::Switched,
            Phase::Switched => Phase::Revoked,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step keyctl takes (and records in the state file's events and journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// A new key published beside the signer.
    DualVerify,
    /// The new key signs.
    Switched,
    /// The previous key removed.
    Revoked,
    /// The last step undone.
    Rollback,
    /// The compose wiring put back.
    Rewire,
    /// Keys restored from an encrypted backup.
    Import,
    /// API keys re-minted with the signing key (`keyctl token remint`).
    Remint,
    /// `JWT_JWKS` derived again from `JWT_KEYS` (`keyctl jwks --repair`).
    JwksRepair,
}

impl Step {
    /// The stable name (state file, backup directory names).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Step::DualVerify => "dual-verify",
            Step::Switched => "switched",
            Step::Revoked => "revoked",
            Step::Rollback => "rollback",
            Step::Rewire => "rewire",
            Step::Import => "import",
            Step::Remint => "remint",
            Step::JwksRepair => "jwks-repair",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// "1h 5m" style rendering of a remaining wait.
#[must_use]
pub(crate) fn human(d: SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    let (days, h, m, s) = (
        secs / 86_400,
        (secs % 86_400) / 3600,
        (secs % 3600) / 60,
        secs % 60,
    );
    let unit = |n: i64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    match (days, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {s}s"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => unit(d, "day"),
        (d, h, _) => format!("{} {}", unit(d, "day"), unit(h, "hour")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        let h = |secs| human(SignedDuration::from_secs(secs));
        assert_eq!(h(45), "45s");
        assert_eq!(h(125), "2m 5s");
        assert_eq!(h(3 * 3600 + 120), "3h 2m");
        assert_eq!(h(20 * 86_400), "20 days");
        assert_eq!(h(86_400 + 3600 * 5 + 7), "1 day 5 hours");
        assert_eq!(h(489 * 3600), "20 days 9 hours");
    }

    #[test]
    fn names_match_serde() {
        for p in [
            Phase::Legacy,
            Phase::DualVerify,
            Phase::Switched,
            Phase::Revoked,
        ] {
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
        for s in [
            Step::DualVerify,
            Step::Switched,
            Step::Revoked,
            Step::Rollback,
            Step::Rewire,
            Step::Import,
            Step::Remint,
            Step::JwksRepair,
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }
}
