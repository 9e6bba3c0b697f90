//! The key lifecycle of SPEC §3: which phase a project is in, derived from its `JWT_KEYS`
//! (with the state file only to tell two asymmetric keys apart), and what each step does to
//! the key list. Pure: no files, no clock, no printing.

use jiff::{SignedDuration, Timestamp};

use crate::jwk::Jwk;
use crate::key::Material;
use crate::keyset::is_legacy;
use crate::state::State;

/// Wait between publishing a key and signing with it: two 10-minute JWKS caches.
pub(crate) const PUBLISH_WAIT: SignedDuration = SignedDuration::from_mins(20);
/// Added to `JWT_EXPIRY` before the previous key may be revoked.
pub(crate) const REVOKE_GRACE: SignedDuration = SignedDuration::from_mins(20);

pub(crate) use crate::phase::Phase;

/// A key in `JWT_KEYS` with its kid (`None`: the legacy secret).
#[derive(Debug, Clone)]
pub struct Slot {
    /// kid, or `None` for the legacy `oct` key.
    pub kid: Option<String>,
    /// The key.
    pub material: Material,
}

impl Slot {
    /// A readable name: `kid X` or `the legacy JWT_SECRET`.
    #[must_use]
    pub fn label(&self) -> String {
        match &self.kid {
            Some(k) => format!("{} key {k}", self.material.alg()),
            None => "the legacy JWT_SECRET (HS256)".into(),
        }
    }
}

/// Where a project stands: its phase and the roles of its keys.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The phase.
    pub phase: Phase,
    /// The key that signs (absent for a legacy project without `JWT_KEYS`).
    pub signer: Option<Slot>,
    /// The key being introduced (dual-verify, switched).
    pub new_key: Option<Slot>,
    /// The key being replaced (dual-verify: it still signs; switched: it only verifies).
    pub previous: Option<Slot>,
}

/// Why the phase cannot be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Undetermined(pub String);

fn slot(k: &Jwk) -> Slot {
    Slot {
        kid: k.kid.clone(),
        material: k.material.clone(),
    }
}

/// Derives the phase from the parsed `JWT_KEYS` (empty for absent, empty or `[]`).
///
/// # Errors
/// More keys than one migration step involves, or two asymmetric keys that the state file
/// cannot tell apart.
pub(crate) fn derive(keys: &[Jwk], state: &State) -> Result<Snapshot, Undetermined> {
    let Some(signer) = keys.iter().find(|k| k.can_sign()) else {
        if keys.is_empty() {
            return Ok(Snapshot {
                phase: Phase::Legacy,
                signer: None,
                new_key: None,
                previous: None,
            });
        }
        return Err(Undetermined("JWT_KEYS has no signing key".into()));
    };
    let others: Vec<&Jwk> = keys.iter().filter(|k| !k.can_sign()).collect();
    let snapshot = |phase, new_key: Option<&Jwk>, previous: Option<&Jwk>| Snapshot {
        phase,
        signer: Some(slot(signer)),
        new_key: new_key.map(slot),
        previous: previous.map(slot),
    };
    match others.as_slice() {
        [] if is_legacy(signer) => Ok(snapshot(Phase::Legacy, None, None)),
        [] => Ok(snapshot(Phase::Revoked, None, None)),
        [other] if is_legacy(signer) => Ok(snapshot(Phase::DualVerify, Some(other), Some(signer))),
        [other] if is_legacy(other) => Ok(snapshot(Phase::Switched, Some(signer), Some(other))),
        [other] => {
            let published = state.events.iter().rev().find(|e| {
                e.step == crate::phase::Step::DualVerify
                    && (e.kid == signer.kid || e.kid == other.kid)
            });
            match published {
                Some(e) if e.kid == other.kid => {
                    Ok(snapshot(Phase::DualVerify, Some(other), Some(signer)))
                }
                Some(_) => Ok(snapshot(Phase::Switched, Some(signer), Some(other))),
                None => Err(Undetermined(format!(
                    "JWT_KEYS holds two asymmetric keys ({} signing, {} verifying) and the state file does not say which one is new",
                    signer.kid.as_deref().unwrap_or("?"),
                    other.kid.as_deref().unwrap_or("?")
                ))),
            }
        }
        many => Err(Undetermined(format!(
            "JWT_KEYS holds {} verify-only keys; keyctl migrate steps through one new key at a time (revoke the extra ones with keyctl revoke KID)",
            many.len()
        ))),
    }
}

/// What the state file's last event says differently from the files (empty when it agrees,
/// or when there is no record).
#[must_use]
pub(crate) fn disagreements(snap: &Snapshot, state: &State) -> Vec<String> {
    let Some(last) = state.events.last() else {
        return Vec::new();
    };
    let signer = snap.signer.as_ref().and_then(|s| s.kid.clone());
    let mut differs = Vec::new();
    if last.phase != snap.phase {
        differs.push(format!(
            "the state file says {} (since {}), the files say {}",
            last.phase, last.at, snap.phase
        ));
    } else if last.signer != signer {
        differs.push(format!(
            "the state file says the signing key is {}, JWT_KEYS says {}",
            last.signer.as_deref().unwrap_or("the legacy secret"),
            signer.as_deref().unwrap_or("the legacy secret")
        ));
    } else if snap.phase == Phase::DualVerify
        && let Some(new) = &snap.new_key
        && last.kid != new.kid
    {
        differs.push(format!(
            "the state file says kid {} is the new key, JWT_KEYS holds {}",
            last.kid.as_deref().unwrap_or("?"),
            new.kid.as_deref().unwrap_or("?")
        ));
    }
    differs
}

/// Whether the state file has a record and its last event says what the files say.
#[must_use]
pub(crate) fn record_agrees(snap: &Snapshot, state: &State) -> bool {
    !state.events.is_empty() && disagreements(snap, state).is_empty()
}

/// The key list after a step, with the index of the signer.
#[derive(Debug, Clone)]
pub(crate) struct KeyList {
    /// Keys in `JWT_KEYS` order.
    pub keys: Vec<Slot>,
    /// Index of the signing key.
    pub signer: usize,
}

impl KeyList {
    /// `(material, kid)` pairs for rendering.
    #[must_use]
    pub(crate) fn pairs(&self) -> Vec<(Material, Option<String>)> {
        self.keys
            .iter()
            .map(|s| (s.material.clone(), s.kid.clone()))
            .collect()
    }
}

/// Step 1: publish `new` beside the current signer (the legacy secret in a legacy project).
#[must_use]
pub(crate) fn publish(current: Slot, new: Slot) -> KeyList {
    KeyList {
        keys: vec![current, new],
        signer: 0,
    }
}

/// Step 2: the new key signs, the previous key verifies.
#[must_use]
pub(crate) fn switch(previous: Slot, new: Slot) -> KeyList {
    KeyList {
        keys: vec![previous, new],
        signer: 1,
    }
}

/// Step 3, or the end of a rotation: only `signer` remains.
#[must_use]
pub(crate) fn alone(signer: Slot) -> KeyList {
    KeyList {
        keys: vec![signer],
        signer: 0,
    }
}

/// When the step after `phase` is allowed, given when the current phase began and the
/// project's `JWT_EXPIRY` (seconds).
#[must_use]
pub(crate) fn due_at(phase: Phase, since: Timestamp, jwt_expiry_secs: i64) -> Option<Timestamp> {
    match phase {
        Phase::DualVerify => Some(since + PUBLISH_WAIT),
        Phase::Switched => Some(since + SignedDuration::from_secs(jwt_expiry_secs) + REVOKE_GRACE),
        Phase::Legacy | Phase::Revoked => None,
    }
}

pub(crate) use crate::phase::human;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk;
    use crate::key::Alg;
    use crate::keyset::{legacy_material, parse_private_set, render_private_set};
    use crate::state::Event;

    fn keys(list: &[(Material, Option<String>)], signer: usize) -> Vec<Jwk> {
        parse_private_set(&render_private_set(list, signer).to_string(), "JWT_KEYS").unwrap()
    }

    fn ec(kid: &str) -> (Material, Option<String>) {
        (Material::generate(Alg::Es256, 0).unwrap(), Some(kid.into()))
    }

    fn legacy() -> (Material, Option<String>) {
        (
            legacy_material("secret-secret-secret-secret-secret-42"),
            None,
        )
    }

    #[test]
    fn phases_from_keys() {
        let s = State::default();
        assert_eq!(derive(&[], &s).unwrap().phase, Phase::Legacy);
        assert_eq!(
            derive(&keys(&[legacy()], 0), &s).unwrap().phase,
            Phase::Legacy
        );
        let dual = derive(&keys(&[legacy(), ec("n")], 0), &s).unwrap();
        assert_eq!(dual.phase, Phase::DualVerify);
        assert_eq!(dual.new_key.unwrap().kid.as_deref(), Some("n"));
        assert_eq!(
            derive(&keys(&[legacy(), ec("n")], 1), &s).unwrap().phase,
            Phase::Switched
        );
        assert_eq!(
            derive(&keys(&[ec("n")], 0), &s).unwrap().phase,
            Phase::Revoked
        );
    }

    #[test]
    fn rotation_needs_the_state_to_tell_keys_apart() {
        let list = keys(&[ec("old"), ec("new")], 0);
        assert!(derive(&list, &State::default()).is_err());
        let mut s = State::default();
        s.events.push(Event {
            step: crate::phase::Step::DualVerify,
            at: "2026-12-01T12:00:00Z".parse().unwrap(),
            phase: Phase::DualVerify,
            kid: Some("new".into()),
            signer: Some("old".into()),
        });
        assert_eq!(derive(&list, &s).unwrap().phase, Phase::DualVerify);
        let switched = keys(&[ec("old"), ec("new")], 1);
        let snap = derive(&switched, &s).unwrap();
        assert_eq!(snap.phase, Phase::Switched);
        assert_eq!(snap.previous.unwrap().kid.as_deref(), Some("old"));
    }

    #[test]
    fn too_many_verify_keys_is_refused() {
        let list = keys(&[ec("a"), ec("b"), ec("c")], 0);
        assert!(
            derive(&list, &State::default())
                .unwrap_err()
                .0
                .contains("2 verify-only")
        );
    }

    #[test]
    fn timers() {
        let t: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            due_at(Phase::DualVerify, t, 3600).unwrap().to_string(),
            "2026-12-01T12:20:00Z"
        );
        assert_eq!(
            due_at(Phase::Switched, t, 3600).unwrap().to_string(),
            "2026-12-01T13:20:00Z"
        );
        assert_eq!(human(SignedDuration::from_secs(3725)), "1h 2m");
        let _ = jwk::thumbprint(&ec("x").0);
    }
}
