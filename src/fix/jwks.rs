//! `keyctl jwks --repair` as a planner: `.env`'s `JWT_JWKS` rewritten to the public set
//! `JWT_KEYS` derives (`keyset::derive_jwks`), when the two disagree. `JWT_KEYS` must itself
//! pass every rule of SPEC §1 (exit 2 otherwise: there is nothing sound to derive from). The
//! sets are compared as keys — kid, algorithm, key operations, public material — so a
//! `JWT_JWKS` that only differs in formatting or order is left alone. Pure.

use jiff::Timestamp;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::flow::{Decision, Planner};
use crate::holders::Holders;
use crate::jwk::{self, Jwk};
use crate::keyset::{self, derive_jwks};
use crate::migrate;
use crate::phase::Step;
use crate::project::Project;
use crate::restore::describe_keys;

use super::Told;

/// The repair of `JWT_JWKS`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JwksRepair;

impl Planner for JwksRepair {
    fn question(&self) -> &'static str {
        "Rewrite JWT_JWKS?"
    }

    fn plan(&self, project: &Project, now: Timestamp) -> Result<Decision> {
        let env = project.env_path.display();
        let current = project.env.get_nonempty("JWT_JWKS");
        let Some((text, place)) = project
            .value("JWT_KEYS")
            .filter(|(v, _)| !v.trim().is_empty())
        else {
            if current.is_none_or(|c| c.trim().is_empty()) {
                return Ok(Decision::Nothing(format!(
                    "nothing to do: {env} has neither JWT_KEYS nor JWT_JWKS (a legacy project verifies with JWT_SECRET)"
                )));
            }
            return Err(Error::bad(
                project.place("JWT_KEYS"),
                "is empty or not set, so there is nothing to derive JWT_JWKS from; restore JWT_KEYS (keyctl import, or .keyctl/backups/) instead of emptying JWT_JWKS",
            ));
        };
        let keys = keyset::parse_private_set(text, &place).map_err(|p| keyset::as_error(&p))?;
        let derived = derive_jwks(&keys).to_string();
        let mut inputs = project.key_inputs();
        inputs.jwt_jwks = Some((&derived, "derived JWT_JWKS".into()));
        let problems = keyset::check(&inputs);
        if !problems.is_empty() {
            return Err(keyset::as_error(&problems));
        }
        let jwks_place = project.place("JWT_JWKS");
        if current.is_some_and(|c| same_keys(c, &derived)) {
            return Ok(Decision::Nothing(format!(
                "nothing to do: {jwks_place} already publishes exactly the keys JWT_KEYS derives"
            )));
        }
        let mut summary = vec![format!(
            "rewrite JWT_JWKS to the public keys JWT_KEYS derives: {}",
            describe_keys(&keys)
        )];
        for p in keyset::check(&project.key_inputs()) {
            let message = p.message.split(" (run: ").next().unwrap_or_default();
            let key = p.key.map(|k| format!("{k} ")).unwrap_or_default();
            summary.push(format!("now: {key}{message}"));
        }
        let mut holders = Holders::new(
            project,
            project.compose_if_present().ok().flatten(),
            Some(migrate::ENV_GROUP),
        );
        holders.set_env("JWT_JWKS", &derived)?;
        let told = Told {
            step: Step::JwksRepair,
            title: format!("{env}: re-derive JWT_JWKS from JWT_KEYS"),
            summary,
            warnings: Vec::new(),
            afterwards: Vec::new(),
            done: format!("done: {jwks_place} now publishes every key of JWT_KEYS"),
            unchanged: format!("{jwks_place} already holds the derived set"),
        };
        super::finish(project, &holders, told, now)
    }
}

/// Whether `text` publishes exactly the keys of `derived` (both `{"keys":[…]}`): the same
/// kids, algorithms, key operations and public material, no private member, in any order and
/// formatting.
fn same_keys(text: &str, derived: &str) -> bool {
    let (Some(published), Some(wanted)) = (public_keys(text), public_keys(derived)) else {
        return false;
    };
    published.len() == wanted.len()
        && wanted.iter().all(|w| {
            published.iter().any(|p| {
                p.kid == w.kid
                    && p.alg == w.alg
                    && p.key_ops == w.key_ops
                    && keyset::same_key(&p.material, &w.material)
            })
        })
}

/// The keys of a `{"keys":[…]}` set; `None` when it is not one, a key does not parse, or a
/// key carries private members.
fn public_keys(text: &str) -> Option<Vec<Jwk>> {
    let v: Value = serde_json::from_str(text).ok()?;
    let items = v.as_object()?.get("keys")?.as_array()?;
    items
        .iter()
        .map(|item| {
            let o = item.as_object()?;
            if jwk::PRIVATE_MEMBERS.iter().any(|m| o.contains_key(*m)) {
                return None;
            }
            Jwk::from_json(item).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Alg, Material};

    fn derived() -> String {
        let pairs = [
            (
                keyset::legacy_material("a-test-secret-that-is-long-enough-0123"),
                None,
            ),
            (
                Material::generate(Alg::Es256, 2048).unwrap(),
                Some("k1".to_owned()),
            ),
        ];
        let text = keyset::render_private_set(&pairs, 1).to_string();
        let keys = keyset::parse_private_set(&text, "JWT_KEYS").unwrap();
        derive_jwks(&keys).to_string()
    }

    #[test]
    fn formatting_and_order_do_not_count_but_keys_do() {
        let d = derived();
        assert!(same_keys(&d, &d));
        let mut v: Value = serde_json::from_str(&d).unwrap();
        v["keys"].as_array_mut().unwrap().reverse();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        assert!(same_keys(&pretty, &d));
        v["keys"].as_array_mut().unwrap().pop();
        assert!(!same_keys(&v.to_string(), &d));
        assert!(!same_keys("not json", &d));
        assert!(!same_keys("[]", &d));
        let mut v: Value = serde_json::from_str(&d).unwrap();
        v["keys"][1]["kid"] = "other".into();
        assert!(!same_keys(&v.to_string(), &d));
    }
}
