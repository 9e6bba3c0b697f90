//! The zero-downtime invariant, checked on the files a step plans to write: every token Auth
//! has issued and may still issue during the step, and every API key any client holds, must
//! verify at every service that receives it — except the API keys whose re-mint the user
//! consented to. Tokens are minted here with the issuing keys and put through the same
//! verifier model `doctor` and `token verify` use, against each service's resolved
//! configuration. Pure.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::compose::Role;
use crate::jws;
use crate::key::Material;
use crate::verifier::{self, Verdict};

use super::Sources;

/// A key that has issued, or will issue, session tokens still alive during the step.
pub(crate) struct Issuer<'k> {
    /// Its key.
    pub material: &'k Material,
    /// Its kid (`None`: the legacy secret, kid-less tokens).
    pub kid: Option<&'k str>,
    /// How to name it.
    pub label: String,
    /// Whether it signed before the step (its sessions may be held already).
    pub before: bool,
}

/// What would break: a service that would reject a kind of token after the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Breach {
    /// The compose service.
    pub service: String,
    /// What it reads its keys from (`PGRST_JWT_SECRET (JWKS, 1 key(s))`).
    pub variable: String,
    /// The token kind (`sessions signed by the legacy JWT_SECRET`, `the API key .env ANON_KEY`).
    pub kind: String,
    /// Why the service would reject it.
    pub reason: String,
}

fn session_claims(now: Timestamp) -> Map<String, Value> {
    let iat = now.as_second();
    json!({"aud": "authenticated", "role": "authenticated", "sub": "00000000-0000-0000-0000-000000000000", "iat": iat, "exp": iat + 3600})
        .as_object()
        .expect("object literal")
        .clone()
}

/// The refusal for `breaches` (at least one): the first named, the others counted.
#[must_use]
pub(crate) fn refusal(breaches: Vec<Breach>) -> crate::error::Error {
    let more = breaches.len().saturating_sub(1);
    let b = breaches.into_iter().next().expect("at least one breach");
    crate::error::Refusal::WouldBreak {
        service: b.service,
        variable: b.variable,
        kind: b.kind,
        reason: b.reason,
        more,
    }
    .into()
}

/// Checks the invariant on `planned`: the breaches it has that `current` does not (a problem
/// the stack already has is `doctor`'s to report, not a reason to refuse every step). `held`
/// are the API keys clients hold before the step; those in `consented` (re-minted with
/// consent) may stop working.
///
/// # Errors
/// Every breach the step would introduce, in service order.
pub(crate) fn check(
    current: &Sources<'_>,
    planned: &Sources<'_>,
    issuers: &[Issuer<'_>],
    consented: &[String],
    now: Timestamp,
) -> Result<(), Vec<Breach>> {
    // (kind, token, whether clients may hold it before the step). A token only the step brings
    // (a session of a key that starts signing, a re-minted key) has no "before" to excuse it.
    let mut tokens: Vec<(String, String, bool)> = Vec::new();
    for i in issuers {
        if let Ok(t) = jws::sign(i.material, i.kid, &session_claims(now)) {
            tokens.push((format!("sessions signed by {}", i.label), t, i.before));
        }
    }
    let held = current.api_keys();
    let planned_keys = planned.api_keys();
    for (k, before) in held
        .iter()
        .map(|k| (k, true))
        .chain(planned_keys.iter().map(|k| (k, false)))
    {
        if consented.contains(&k.token) || tokens.iter().any(|(_, t, _)| *t == k.token) {
            continue;
        }
        tokens.push((
            format!("the {} key {}", k.role, k.name()),
            k.token.clone(),
            before,
        ));
    }
    let existing: Vec<(String, String, bool)> =
        tokens.iter().filter(|(_, _, b)| *b).cloned().collect();
    let before = breaches(current, &existing, now);
    let after: Vec<Breach> = breaches(planned, &tokens, now)
        .into_iter()
        .filter(|b| {
            !before
                .iter()
                .any(|o| o.service == b.service && o.kind == b.kind)
        })
        .collect();
    if after.is_empty() { Ok(()) } else { Err(after) }
}

/// Every service of `sources` that rejects one of `tokens`, and a failing realtime
/// healthcheck.
fn breaches(
    sources: &Sources<'_>,
    tokens: &[(String, String, bool)],
    now: Timestamp,
) -> Vec<Breach> {
    let views = sources.views();
    let mut out = Vec::new();
    for (kind, token, _) in tokens {
        let Ok(d) = jws::decode(token) else { continue };
        for view in &views {
            if let Verdict::Rejected { reason, .. } = verifier::verify(view, &d, now, &[], None) {
                // An API key that has simply expired is doctor's business, not the step's.
                if reason.starts_with("expired") {
                    continue;
                }
                out.push(Breach {
                    service: view.service.clone(),
                    variable: view.source.clone(),
                    kind: kind.clone(),
                    reason,
                });
            }
        }
    }
    out.extend(healthcheck(sources, now));
    out
}

/// Realtime's healthcheck sends a bearer its management endpoint checks against
/// `API_JWT_SECRET` only (HS256): the token it sends must verify there.
fn healthcheck(planned: &Sources<'_>, now: Timestamp) -> Vec<Breach> {
    let Some(compose) = planned.compose else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in compose.with_role(Role::Realtime) {
        let Some(test) = compose.healthcheck_test(&s.name) else {
            continue;
        };
        let Ok(expanded) = planned.env.interpolate(&test) else {
            continue;
        };
        let Some(token) = expanded
            .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .find(|w| w.starts_with("eyJ") && w.matches('.').count() == 2)
        else {
            continue;
        };
        let secret = planned
            .resolved(&s.name, "API_JWT_SECRET")
            .filter(|v| !v.is_empty());
        let ok = match (jws::decode(token), secret) {
            (Ok(d), Some(secret)) => {
                d.kid().is_none()
                    && d.verifies_with(&crate::keyset::legacy_material(&secret))
                    && d.claims
                        .get("exp")
                        .and_then(Value::as_i64)
                        .is_none_or(|e| e > now.as_second())
            }
            _ => false,
        };
        if !ok {
            out.push(Breach {
                service: s.name.clone(),
                variable: "healthcheck".into(),
                kind: "realtime's healthcheck token".into(),
                reason: "its management endpoint accepts only an HS256 token signed with API_JWT_SECRET: the container would be reported unhealthy".into(),
            });
        }
    }
    out
}
