//! Root causes: one finding per cause, with what it breaks folded under it. A compose file
//! that lost its wiring is one `not_wired` finding, not one per service plus one per API key
//! and service; a replaced `JWT_JWKS` is one `key_set` finding; a split secret absorbs the
//! rejections it explains. Findings that no root cause explains stay as they are.

use super::Finding;

/// Codes that are consequences when a root cause covers every service they name.
const CONSEQUENCES: [&str; 2] = ["api_key_rejected", "kid_missing"];

/// The services a finding concerns.
fn services_of(f: &Finding) -> Vec<String> {
    if f.services.is_empty() {
        f.service.iter().cloned().collect()
    } else {
        f.services.clone()
    }
}

/// Folds consequences into their root causes and merges per-service wiring findings.
pub(super) fn group(findings: Vec<Finding>, dir: &str, jwks_readers: &[String]) -> Vec<Finding> {
    let (not_wired, mut rest): (Vec<Finding>, Vec<Finding>) =
        findings.into_iter().partition(|f| f.code == "not_wired");
    let mut roots: Vec<Finding> = Vec::new();
    if let Some(first) = not_wired.first() {
        let services: Vec<String> = not_wired.iter().flat_map(services_of).collect();
        let mut merged = Finding::error("not_wired", first.place.clone())
            .services(&services)
            .says(
                format!(
                    "{} service(s) do not read the key sets .env holds: {}",
                    services.len(),
                    not_wired
                        .iter()
                        .map(|f| f.message.split(" while .env").next().unwrap_or(&f.message).to_owned())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                "tokens signed with the asymmetric key get 401 from them, and Auth (if among them) keeps signing with the old secret",
                format!(
                    "keyctl migrate rewire {dir} --yes, then restart {}",
                    services.join(" ")
                ),
            );
        if not_wired.len() == 1 {
            merged.service.clone_from(&first.service);
            merged.variable.clone_from(&first.variable);
        }
        roots.push(merged);
    }
    let keys_broken = rest
        .iter()
        .any(|f| f.code == "key_set" && f.variable.as_deref() == Some("JWT_KEYS"));
    for f in &mut rest {
        match f.code {
            "key_set" if f.variable.as_deref() == Some("JWT_JWKS") => {
                f.services = jwks_readers.to_vec();
                if !keys_broken {
                    f.fix = format!(
                        "keyctl jwks --repair {dir} --yes (derives JWT_JWKS from JWT_KEYS again), then restart {}",
                        jwks_readers.join(" ")
                    );
                }
            }
            "split_secret" | "retired_secret_trusted" => {}
            _ => continue,
        }
    }
    let (causes, others): (Vec<Finding>, Vec<Finding>) = rest.into_iter().partition(|f| {
        matches!(f.code, "split_secret" | "retired_secret_trusted")
            || (f.code == "key_set" && !f.services.is_empty())
    });
    roots.extend(causes);
    let mut kept = Vec::new();
    for f in others {
        let affected = services_of(&f);
        let covered = CONSEQUENCES.contains(&f.code)
            && !affected.is_empty()
            && affected
                .iter()
                .all(|s| roots.iter().any(|r| services_of(r).contains(s)));
        if !covered {
            kept.push(f);
            continue;
        }
        let root = roots
            .iter_mut()
            .find(|r| services_of(r).contains(&affected[0]))
            .expect("covered by a root");
        root.consequences.push(format!("{}: {}", f.code, f.message));
    }
    roots.extend(kept);
    roots
}
