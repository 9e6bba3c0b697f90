//! API keys, wherever clients get them (`.env`, `env_file:` files, Kong's declarative file,
//! the compose file): well-formed, the right role, not expiring, accepted by every service.
//! One finding per key and cause, naming every service it concerns.

use jiff::{SignedDuration, Timestamp};

use crate::jws;
use crate::lifecycle;
use crate::trust::{Home, KeyHome};
use crate::verifier::{self, Verdict};

use super::{EXPIRY_WARNING, Finding, Report};

/// The role a variable's name promises (`…ANON…` anon, `…SERVICE…` service_role).
fn promised_role(var: &str) -> Option<&'static str> {
    let v = var.to_ascii_uppercase();
    if v.contains("ANON") || v.contains("PUBLISHABLE") {
        Some("anon")
    } else if v.contains("SERVICE") {
        Some("service_role")
    } else {
        None
    }
}

/// API keys: well-formed, the right role, not expiring, accepted by every service.
pub(super) fn api_keys(r: &mut Report<'_>, now: Timestamp) {
    let dir = r.dir.clone();
    let project = r.project;
    for (var, role) in crate::apikey::NAMED {
        let Some(token) = project.env.get_nonempty(var) else {
            continue;
        };
        if let Err(e) = jws::decode(token) {
            r.push(Finding::error("api_key_malformed", r.env_place(var)).variable(var).says(
                format!("{var} is not a JWT: {e}"),
                "every request with this key gets 401",
                format!("keyctl token remint {dir} --var {var} --yes (re-mints it as a {role} key)"),
            ));
        }
    }
    let views = project.views();
    let known = project.known();
    let compose = project.compose_if_present().ok().flatten();
    for key in project.sources().api_keys() {
        let Ok(d) = jws::decode(&key.token) else {
            continue;
        };
        let home = &key.homes[0];
        let (var, place) = match home {
            KeyHome::Var(Home::Env(v)) => (v.clone(), r.env_place(v)),
            KeyHome::Var(Home::EnvFile { file, var }) => (
                var.clone(),
                compose.map_or_else(|| file.clone(), |c| c.beside(file).display().to_string()),
            ),
            KeyHome::Mounted { file, line } => (
                "literal key".to_owned(),
                compose.map_or_else(
                    || format!("{file}:{line}"),
                    |c| format!("{}:{line}", c.beside(file).display()),
                ),
            ),
            KeyHome::Compose { key: k, line, .. } => (
                k.clone(),
                compose.map_or_else(|| format!("line {line}"), |c| c.place(Some(*line))),
            ),
        };
        let name = key.name();
        let remint = match home {
            KeyHome::Var(h) => format!("keyctl token remint {dir} --var {} --yes", h.var()),
            _ => format!("keyctl token remint {dir} --yes"),
        };
        let kid = d.kid().map(str::to_owned);
        if let Some(role) = promised_role(&var)
            && key.role != role
        {
            r.push(
                Finding::error("api_key_role", place.clone())
                    .variable(&var)
                    .kid_opt(kid.as_deref())
                    .says(
                        format!("{name} carries role {:?}, not {role}", key.role),
                        "requests run with the wrong database role",
                        format!(
                            "re-mint it with the right role: keyctl token sign {dir} --role {role} --exp 3650d, and put it in {name}"
                        ),
                    ),
            );
        }
        // Each service's own verdict: their clock leeways differ (PostgREST allows 30 s,
        // Auth none), so "expired" is said per service.
        let mut rejecting: Vec<(String, &'static str, String)> = Vec::new();
        for view in &views {
            if let Verdict::Rejected { code, reason } =
                verifier::verify(view, &d, now, &known, None)
            {
                rejecting.push((view.service.clone(), code, reason));
            }
        }
        let exp = d.claims.get("exp").and_then(serde_json::Value::as_i64);
        if let Some(exp) = exp {
            let when =
                Timestamp::from_second(exp).map_or_else(|_| exp.to_string(), |t| t.to_string());
            let expired: Vec<String> = rejecting
                .iter()
                .filter(|(_, code, _)| *code == "expired")
                .map(|(s, _, _)| s.clone())
                .collect();
            if !expired.is_empty() {
                r.push(
                    Finding::error("api_key_expired", place.clone())
                        .variable(&var)
                        .kid_opt(kid.as_deref())
                        .services(&expired)
                        .says(
                            format!("{name} expired on {when}"),
                            &format!(
                                "every request with this key gets 401 from {}",
                                expired.join(", ")
                            ),
                            format!("{remint} (then give clients the new key)"),
                        ),
                );
                continue;
            }
            let left = exp.saturating_sub(now.as_second());
            if left > 0 && left < EXPIRY_WARNING.as_secs() {
                r.push(
                    Finding::warning("api_key_expiring", place.clone())
                        .variable(&var)
                        .kid_opt(kid.as_deref())
                        .says(
                            format!(
                                "{name} expires on {when} (in {})",
                                lifecycle::human(SignedDuration::from_secs(left))
                            ),
                            "every client using it gets 401 from then on",
                            format!("{remint} (then give clients the new key)"),
                        ),
                );
            }
        }
        if rejecting.is_empty() {
            continue;
        }
        let services: Vec<String> = rejecting.iter().map(|(s, _, _)| s.clone()).collect();
        let everywhere = rejecting.len() == views.len();
        let fix = if everywhere {
            format!(
                "{remint} (no service trusts the key that signed it; then give clients the new key)"
            )
        } else {
            format!(
                "keyctl migrate rewire {dir} --yes (the key is fine; {} reads other keys than the rest), then restart {}",
                services.join(", "),
                services.join(" ")
            )
        };
        let reasons: Vec<String> = rejecting
            .iter()
            .map(|(s, code, reason)| format!("{s} ({code}): {reason}"))
            .collect();
        r.push(
            Finding::error("api_key_rejected", place)
                .variable(&var)
                .kid_opt(kid.as_deref())
                .services(&services)
                .says(
                    format!("{name} is rejected by {}", reasons.join("; ")),
                    &format!(
                        "every request with this key gets 401 from {}",
                        services.join(", ")
                    ),
                    fix,
                ),
        );
    }
}
