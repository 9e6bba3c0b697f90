//! The clock: `KEYCTL_NOW` (RFC 3339) replaces the system time for every command, so
//! tests and rehearsals can walk through timers and expiry dates.

use jiff::Timestamp;

use crate::error::{Error, Result};

/// The current time, or `KEYCTL_NOW` when it is set.
///
/// # Errors
/// `KEYCTL_NOW` is set but is not an RFC 3339 timestamp.
pub(crate) fn now() -> Result<Timestamp> {
    match std::env::var("KEYCTL_NOW") {
        Ok(v) if !v.is_empty() => v.parse::<Timestamp>().map_err(|_| {
            Error::bad(
                "KEYCTL_NOW",
                format!("{v:?} is not an RFC 3339 timestamp (e.g. 2026-12-01T12:00:00Z)"),
            )
        }),
        _ => Ok(Timestamp::now()),
    }
}
