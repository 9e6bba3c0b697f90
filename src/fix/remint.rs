//! `keyctl token remint` as a planner: API keys signed again with the key Auth signs with now
//! (`Project::signer`), with the claims `apikey::mint` gives them and the role the old key
//! carried, written wherever the trust model found the old one (a `.env` variable, an
//! `env_file:` variable, a literal in Kong's mounted file, a literal compose value).
//!
//! Without names it picks the keys that need it: expired or expiring within
//! [`doctor::EXPIRY_WARNING`], or signed by a key no service trusts (every service rejects
//! its signature or kid). A key that only some services reject is a wiring fault — the new
//! key would be rejected there too — and is refused (exit 3), as is a new key any service
//! would reject. A wrong `role` claim is never a reason on its own; realtime's healthcheck
//! token is never re-minted. Pure.

use jiff::{SignedDuration, Timestamp};

use crate::apikey;
use crate::doctor;
use crate::error::{Error, Result};
use crate::flow::{Decision, Planner};
use crate::holders::Holders;
use crate::jws;
use crate::lifecycle::Slot;
use crate::migrate;
use crate::phase::{self, Step};
use crate::project::Project;
use crate::trust::{self, ApiKey, HEALTHCHECK_VAR, Home, KeyHome};
use crate::verifier::{self, Known, Verdict, View};

use super::Told;

/// Rejection codes that are about the key that signed a token (its signature, its kid, its
/// algorithm), not about its claims.
const KEY_CODES: [&str; 4] = [
    "bad_signature",
    "unknown_kid",
    "alg_mismatch",
    "alg_not_accepted",
];

/// A re-mint: the variables asked for, and the new keys' lifetime.
#[derive(Debug, Clone)]
pub(crate) struct Remint {
    /// The variables named with `--var`; empty: every key that needs it.
    pub vars: Vec<String>,
    /// How long the new keys are valid.
    pub lifetime: SignedDuration,
}

/// Why a key is re-minted.
enum Why {
    Expired(Timestamp),
    Expiring(Timestamp, SignedDuration),
    Untrusted(String),
    Named,
}

impl Why {
    fn describe(&self) -> String {
        match self {
            Why::Expired(at) => format!("it expired on {at}"),
            Why::Expiring(at, left) => {
                format!("it expires on {at} (in {})", phase::human(*left))
            }
            Why::Untrusted(reason) => format!("no service accepts its signature ({reason})"),
            Why::Named => "asked for with --var".into(),
        }
    }
}

impl Planner for Remint {
    fn question(&self) -> &'static str {
        "Re-mint these API keys?"
    }

    fn plan(&self, project: &Project, now: Timestamp) -> Result<Decision> {
        let compose_file = project.compose_if_present()?;
        let (material, kid) = project.signer()?;
        let signer = Slot { kid, material };
        let views = project.views();
        let known = project.known();
        let dir = project.dir_arg();
        let held = held(project);
        let chosen = if self.vars.is_empty() {
            let chosen = needing(&held, &views, &known, now, &dir)?;
            if chosen.is_empty() {
                return Ok(Decision::Nothing(nothing_to_do(&held)));
            }
            chosen
        } else {
            named(project, &held, &self.vars, &views, &known, now, &dir)?
        };
        let until = now + self.lifetime;
        let mut holders = Holders::new(project, compose_file, Some(migrate::ENV_GROUP));
        let (mut summary, mut warnings, mut afterwards) = (Vec::new(), Vec::new(), Vec::new());
        let mut replaced = Vec::new();
        for (key, why) in &chosen {
            let token = apikey::mint_for(
                &signer.material,
                signer.kid.as_deref(),
                &key.role,
                now,
                self.lifetime,
            )
            .map_err(|e| Error::bad(key.name(), e.0))?;
            accepted_everywhere(&token, &views, &known, now, &signer, &dir)?;
            for home in &key.homes {
                holders.replace_key(home, &key.token, &token)?;
            }
            let places: Vec<String> = key.homes.iter().map(KeyHome::describe).collect();
            summary.push(format!(
                "re-mint the {} key held in {} with {}, valid until {until}: {} (a client-visible change)",
                key.role,
                places.join(", "),
                signer.label(),
                why.describe()
            ));
            afterwards.push(apikey::handout(&key.role, &places[0]));
            warnings.extend(role_mismatch(key));
            replaced.push(key.token.clone());
        }
        invariant(project, &holders, &signer, &replaced, now)?;
        let n = chosen.len();
        let told = Told {
            step: Step::Remint,
            title: format!(
                "{}: re-mint {n} API key(s) with {}",
                project.env_path.display(),
                signer.label()
            ),
            summary,
            warnings,
            afterwards,
            done: format!("done: {n} API key(s) re-minted with {}", signer.label()),
            unchanged: "the new keys are identical to the ones held (same signing key, same claims, same second)".into(),
        };
        super::finish(project, &holders, told, now)
    }
}

/// The API keys clients hold, without realtime's healthcheck token.
fn held(project: &Project) -> Vec<ApiKey> {
    project
        .sources()
        .api_keys()
        .into_iter()
        .filter_map(|mut k| {
            k.homes.retain(|h| var_of(h) != Some(HEALTHCHECK_VAR));
            (!k.homes.is_empty()).then_some(k)
        })
        .collect()
}

/// The variable name of a home (`None` for a literal in Kong's file).
fn var_of(home: &KeyHome) -> Option<&str> {
    match home {
        KeyHome::Var(h) => Some(h.var()),
        KeyHome::Compose { key, .. } => Some(key),
        KeyHome::Mounted { .. } => None,
    }
}

/// The services that reject `token` for its signature or kid, with the reason.
fn key_rejections(
    token: &str,
    views: &[View],
    known: &[Known],
    now: Timestamp,
) -> Vec<(String, String)> {
    let Ok(d) = jws::decode(token) else {
        return Vec::new();
    };
    views
        .iter()
        .filter_map(|view| match verifier::verify(view, &d, now, known, None) {
            Verdict::Rejected { code, reason } if KEY_CODES.contains(&code) => {
                Some((view.service.clone(), reason))
            }
            _ => None,
        })
        .collect()
}

/// The refusal for a key some services accept and others reject for its signature.
fn wiring_fault(key: &ApiKey, rejecting: &[(String, String)], dir: &str) -> Error {
    let names: Vec<&str> = rejecting.iter().map(|(s, _)| s.as_str()).collect();
    let (service, reason) = &rejecting[0];
    Error::precondition(
        key.name(),
        format!(
            "is rejected by {} ({service}: {reason}) while the other services accept it: that is a wiring fault, not a bad key, and a new key would be rejected there too. Run keyctl migrate rewire {dir} (or make {} read the key Auth signs with), then run keyctl doctor {dir} to check. Nothing was written",
            names.join(", "),
            names.join(", ")
        ),
    )
}

/// How a key stands: a wiring fault (refused), a key no service trusts, or fine.
fn judge(
    key: &ApiKey,
    views: &[View],
    known: &[Known],
    now: Timestamp,
    dir: &str,
) -> Result<Option<Why>> {
    let rejecting = key_rejections(&key.token, views, known, now);
    if !rejecting.is_empty() && rejecting.len() < views.len() {
        return Err(wiring_fault(key, &rejecting, dir));
    }
    if let Some((_, reason)) = rejecting.first() {
        return Ok(Some(Why::Untrusted(reason.clone())));
    }
    Ok(None)
}

/// The keys that need a new one (see the module docs), refusing at the first wiring fault.
fn needing(
    held: &[ApiKey],
    views: &[View],
    known: &[Known],
    now: Timestamp,
    dir: &str,
) -> Result<Vec<(ApiKey, Why)>> {
    let mut out = Vec::new();
    for key in held {
        if let Some(why) = judge(key, views, known, now, dir)? {
            out.push((key.clone(), why));
            continue;
        }
        let exp = jws::decode(&key.token)
            .ok()
            .and_then(|d| d.claims.get("exp").and_then(serde_json::Value::as_i64));
        let Some(exp) = exp else { continue };
        let at = Timestamp::from_second(exp).unwrap_or(Timestamp::MIN);
        let left = exp - now.as_second();
        if left <= 0 {
            out.push((key.clone(), Why::Expired(at)));
        } else if left < doctor::EXPIRY_WARNING.as_secs() {
            out.push((
                key.clone(),
                Why::Expiring(at, SignedDuration::from_secs(left)),
            ));
        }
    }
    Ok(out)
}

/// The keys held in the named variables, whatever their state (a wiring fault still refuses).
fn named(
    project: &Project,
    held: &[ApiKey],
    vars: &[String],
    views: &[View],
    known: &[Known],
    now: Timestamp,
    dir: &str,
) -> Result<Vec<(ApiKey, Why)>> {
    let mut out: Vec<(ApiKey, Why)> = Vec::new();
    for var in vars {
        if var == HEALTHCHECK_VAR {
            return Err(Error::usage(format!(
                "--var {HEALTHCHECK_VAR}: that is realtime's healthcheck token, not an API key clients hold; keyctl migrate manages it and token remint never re-mints it"
            )));
        }
        let matching: Vec<&ApiKey> = held
            .iter()
            .filter(|k| k.homes.iter().any(|h| var_of(h) == Some(var.as_str())))
            .collect();
        if matching.is_empty()
            && let Some(value) = project.env.get_nonempty(var)
            && jws::decode(value).is_err()
            && let Some((_, role)) = apikey::NAMED.iter().find(|(v, _)| v == var)
        {
            // An upstream API key variable that holds no JWT at all (doctor's
            // api_key_malformed): minted afresh with the role its name promises.
            out.push((
                ApiKey {
                    token: value.to_owned(),
                    role: (*role).to_owned(),
                    homes: vec![KeyHome::Var(Home::Env(var.clone()))],
                },
                Why::Named,
            ));
            continue;
        }
        if matching.is_empty() {
            let (place, what) = match project.env.get_nonempty(var) {
                Some(_) => (
                    project.place(var),
                    "is not an API key (a JWT with a role claim); nothing to re-mint",
                ),
                None => (
                    format!("--var {var}"),
                    "no API key is held in a variable of that name (.env, env_file: files, compose file)",
                ),
            };
            return Err(Error::bad(place, what));
        }
        for key in matching {
            if out.iter().any(|(k, _)| k.token == key.token) {
                continue;
            }
            judge(key, views, known, now, dir)?;
            out.push((key.clone(), Why::Named));
        }
    }
    Ok(out)
}

/// Refuses when a service would reject the new key: it does not trust the key Auth signs
/// with, which no re-mint can fix.
fn accepted_everywhere(
    token: &str,
    views: &[View],
    known: &[Known],
    now: Timestamp,
    signer: &Slot,
    dir: &str,
) -> Result<()> {
    let d = jws::decode(token).map_err(|e| Error::bad("the new API key", e.0))?;
    for view in views {
        if let Verdict::Rejected { code, reason } = verifier::verify(view, &d, now, known, None) {
            return Err(Error::precondition(
                format!("service {}", view.service),
                format!(
                    "would reject a key signed with {} ({code}: {reason}): it does not trust the key Auth signs with, a wiring fault a new key cannot fix. Run keyctl migrate rewire {dir} (or fix that service's compose lines), then run keyctl doctor {dir} to check. Nothing was written",
                    signer.label()
                ),
            ));
        }
    }
    Ok(())
}

/// The zero-downtime invariant on the planned files: apart from the keys being replaced,
/// every token Auth issues and every API key clients hold still verifies everywhere, and
/// realtime's healthcheck still passes.
fn invariant(
    project: &Project,
    holders: &Holders<'_>,
    signer: &Slot,
    replaced: &[String],
    now: Timestamp,
) -> Result<()> {
    let issuers = [trust::Issuer {
        material: &signer.material,
        kid: signer.kid.as_deref(),
        label: signer.label(),
        before: true,
    }];
    trust::check_invariant(
        &project.sources(),
        &holders.sources(),
        &issuers,
        replaced,
        now,
    )
    .map_err(crate::trust::refusal)
}

/// A warning when a variable's name says another role than the key's claim: the new key
/// keeps the claim.
fn role_mismatch(key: &ApiKey) -> Option<String> {
    key.homes.iter().find_map(|h| {
        let var = var_of(h)?;
        let wanted = if var.contains("ANON") {
            "anon"
        } else if var.contains("SERVICE") {
            "service_role"
        } else {
            return None;
        };
        (wanted != key.role).then(|| {
            format!(
                "{} carries role {}, not {wanted}: the new key keeps role {} as the old one had; if that is wrong, mint the right one with keyctl token sign --role {wanted} --exp 3650d",
                h.describe(),
                key.role,
                key.role
            )
        })
    })
}

/// The line when no key needs a new one.
fn nothing_to_do(held: &[ApiKey]) -> String {
    if held.is_empty() {
        return "nothing to do: no API key found (.env, env_file: files, compose file, Kong's declarative file)".into();
    }
    let names: Vec<String> = held.iter().map(ApiKey::name).collect();
    format!(
        "nothing to do: every API key ({}) is signed by a key the services trust and valid for more than {} days",
        names.join(", "),
        doctor::EXPIRY_WARNING.as_secs() / 86_400
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::Home;

    fn key(role: &str, var: &str) -> ApiKey {
        ApiKey {
            token: "t".into(),
            role: role.into(),
            homes: vec![KeyHome::Var(Home::Env(var.into()))],
        }
    }

    #[test]
    fn a_role_that_disagrees_with_the_name_is_only_a_warning() {
        assert!(role_mismatch(&key("anon", "ANON_KEY")).is_none());
        assert!(role_mismatch(&key("service_role", "SUPABASE_SERVICE_KEY")).is_none());
        assert!(role_mismatch(&key("anon", "OTHER")).is_none());
        let w = role_mismatch(&key("service_role", "ANON_KEY")).unwrap();
        assert!(w.contains("carries role service_role, not anon"), "{w}");
    }

    #[test]
    fn the_healthcheck_token_is_not_a_named_home() {
        let k = key("anon", HEALTHCHECK_VAR);
        assert_eq!(var_of(&k.homes[0]), Some(HEALTHCHECK_VAR));
        let m = KeyHome::Mounted {
            file: "kong.yml".into(),
            line: 3,
        };
        assert_eq!(var_of(&m), None);
    }
}
