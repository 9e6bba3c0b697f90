//! How each Supabase service verifies a token, computed from what that service really reads:
//! its compose `environment` resolved against `.env`, and its image's version. A verdict says
//! which key accepted the token or exactly why it was rejected, and for a bad signature,
//! which known-but-untrusted key did sign it (a revoked key, a retired secret, a value the
//! service has a stale copy of). Pure: callers load the files.
//!
//! Each service is modelled on its own source (docs/VERIFIER.md): how it picks a key from the
//! header (`keys`), and which claim types and clock leeway it accepts (`claims`). They
//! differ, so one service may accept what another rejects.

mod claims;
mod keys;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use zeroize::Zeroizing;

use std::collections::HashMap;

use crate::compose::{Compose, Role};
use crate::envfile::EnvFile;
use crate::jwk::Jwk;
use crate::jws::Decoded;
use crate::key::{Alg, Material};
use crate::keyset;
use crate::verifykey::VerifyKey;

/// The most clock skew any service tolerates on `exp`/`nbf`/`iat`: PostgREST's 30 s. The
/// others allow none; [`View::leeway`] is each service's own.
pub(crate) const SKEW: SignedDuration = SignedDuration::from_secs(30);

/// One service's verification setup.
#[derive(Debug, Clone)]
pub struct View {
    /// Compose service name.
    pub service: String,
    /// What it is.
    pub role: Role,
    /// Keys it trusts (JWKS or Auth's JWT_KEYS), each prepared for verification.
    pub keys: Vec<TrustedKey>,
    /// The HS256 secret it uses for tokens without `kid`, prepared for verification.
    pub secret: Option<VerifyKey>,
    /// Algorithms it accepts.
    pub algs: Vec<Alg>,
    /// Where the keys come from, for messages (`PGRST_JWT_SECRET = JWT_JWKS (2 keys)`).
    pub source: String,
    /// Problems found while reading its configuration.
    pub problems: Vec<String>,
    /// Its image's version (`v2.186.0` → `[2, 186, 0]`); `None` for `latest`, no tag or no
    /// compose file, read as the newest behaviour.
    pub version: Option<[u64; 3]>,
    /// Auth's `GOTRUE_JWT_KEY_ID` (empty when unset): a token with this kid is checked
    /// against `GOTRUE_JWT_SECRET`.
    pub key_id: String,
    /// PostgREST's `PGRST_JWT_AUD`: the audience a token's `aud` must name, when set.
    pub audience: Option<String>,
}

impl View {
    /// Whether the service's image is at least `version` (an unknown version is the newest).
    #[must_use]
    pub(crate) fn at_least(&self, version: [u64; 3]) -> bool {
        self.version.is_none_or(|v| v >= version)
    }

    /// The clock skew the service tolerates on `exp`, `nbf` and `iat`, in seconds: PostgREST
    /// allows 30 s; Auth (golang-jwt without `WithLeeway`), Realtime (Joken), Storage and Edge
    /// Functions (jose without `clockTolerance`) allow none.
    #[must_use]
    pub(crate) fn leeway(&self) -> i64 {
        if self.role == Role::Rest {
            SKEW.as_secs()
        } else {
            0
        }
    }
}

/// A JWK a service trusts, with its key parsed once for every token the run checks. It reads
/// as the JWK it holds.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The JWK as the service's set holds it.
    pub jwk: Jwk,
    /// Its key, prepared for verification.
    pub key: VerifyKey,
}

impl TrustedKey {
    /// Prepares `jwk`'s key.
    #[must_use]
    pub(crate) fn new(jwk: Jwk) -> TrustedKey {
        let key = VerifyKey::new(&jwk.material);
        TrustedKey { jwk, key }
    }
}

impl std::ops::Deref for TrustedKey {
    type Target = Jwk;
    fn deref(&self) -> &Jwk {
        &self.jwk
    }
}

/// A key keyctl knows about but a service may not trust, for explaining bad signatures.
#[derive(Debug, Clone)]
pub struct Known {
    /// How to name it ("kid abc, revoked 2026-12-01").
    pub label: String,
    /// The key, prepared for verification.
    pub key: VerifyKey,
    /// Its kid, if any.
    pub kid: Option<String>,
}

impl Known {
    /// A known key named `label`.
    #[must_use]
    pub(crate) fn new(label: String, material: &Material, kid: Option<String>) -> Known {
        Known {
            label,
            key: VerifyKey::new(material),
            kid,
        }
    }
}

/// A service's decision on a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted, by this key.
    Valid {
        /// Which key verified it.
        key: String,
    },
    /// Rejected, and why.
    Rejected {
        /// A stable short code (`unknown_kid`, `bad_signature`, …).
        code: &'static str,
        /// The explanation.
        reason: String,
    },
}

impl Verdict {
    fn reject(code: &'static str, reason: impl Into<String>) -> Verdict {
        Verdict::Rejected {
            code,
            reason: reason.into(),
        }
    }

    /// Whether the token was accepted.
    #[must_use]
    pub(crate) fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid { .. })
    }
}

fn parse_set(text: &str) -> Option<Vec<TrustedKey>> {
    let v: Value = serde_json::from_str(text).ok()?;
    let items = match &v {
        Value::Array(a) => a.clone(),
        Value::Object(o) if o.contains_key("keys") => o.get("keys")?.as_array()?.clone(),
        Value::Object(o) if o.contains_key("kty") => vec![v.clone()],
        _ => return None,
    };
    Some(
        items
            .iter()
            .filter_map(|k| Jwk::from_json(k).ok())
            .map(TrustedKey::new)
            .collect(),
    )
}

fn algs_of(keys: &[TrustedKey]) -> Vec<Alg> {
    let mut algs: Vec<Alg> = Vec::new();
    for k in keys {
        let a = k
            .alg
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| k.material.alg());
        if !algs.contains(&a) {
            algs.push(a);
        }
    }
    algs
}

/// The views of every keyctl-relevant service in the compose file.
#[must_use]
/// `resolve(service, key)` is what that service's environment holds for `key` once compose
/// has interpolated it (its `environment:` entry, else its `env_file:` files).
pub(crate) fn views(
    compose: &Compose,
    resolve: &dyn Fn(&str, &str) -> Option<String>,
) -> Vec<View> {
    let mut out = Vec::new();
    for service in compose.services() {
        let Some(role) = service.role else { continue };
        if role == Role::Kong {
            continue;
        }
        let read = |key: &str| -> Option<String> { resolve(&service.name, key) };
        let mut view = View {
            service: service.name.clone(),
            role,
            keys: Vec::new(),
            secret: None,
            algs: Vec::new(),
            source: String::new(),
            problems: Vec::new(),
            version: service
                .image
                .as_deref()
                .and_then(crate::images::image_version),
            key_id: String::new(),
            audience: None,
        };
        let secret = |v: Option<String>| {
            v.filter(|s| !s.is_empty())
                .map(|s| VerifyKey::new(&keyset::legacy_material(&s)))
        };
        let jwks_from = |view: &mut View, var: &str| {
            if let Some(text) = read(var).filter(|t| !t.trim().is_empty()) {
                match parse_set(&text) {
                    Some(keys) => {
                        view.source = format!("{var} ({} key(s))", keys.len());
                        view.keys = keys;
                    }
                    None => view.problems.push(format!("{var} is not a JWKS")),
                }
            }
        };
        match role {
            Role::Auth => {
                jwks_from(&mut view, "GOTRUE_JWT_KEYS");
                view.secret = secret(read("GOTRUE_JWT_SECRET"));
                view.key_id = read("GOTRUE_JWT_KEY_ID").unwrap_or_default();
                // envconfig splits the list on commas and keeps each name as written: a value
                // that is set but blank is an empty list, under which Auth accepts nothing.
                // The spelling read depends on the image's version (both when unknown).
                let methods = crate::images::auth_methods_vars(view.version)
                    .iter()
                    .find_map(|var| read(var));
                view.algs = match methods {
                    Some(m) if m.trim().is_empty() => Vec::new(),
                    Some(m) => m
                        .split(',')
                        .filter_map(|a| Alg::ALL.into_iter().find(|x| x.as_str() == a))
                        .collect(),
                    None if view.keys.is_empty() => vec![Alg::Hs256],
                    None => algs_of(&view.keys),
                };
                if view.source.is_empty() {
                    view.source = "GOTRUE_JWT_SECRET".into();
                }
            }
            Role::Rest => {
                let value = read("PGRST_JWT_SECRET").unwrap_or_default();
                view.audience = read("PGRST_JWT_AUD").filter(|a| !a.is_empty());
                let base64 = read("PGRST_JWT_SECRET_IS_BASE64")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                match parse_set(&value) {
                    Some(keys) if value.trim_start().starts_with('{') => {
                        if base64 {
                            view.problems.push("PGRST_JWT_SECRET_IS_BASE64 is true with a JWKS: PostgREST base64-decodes the JSON and rejects every token".into());
                        }
                        view.source = format!("PGRST_JWT_SECRET (JWKS, {} key(s))", keys.len());
                        view.algs = algs_of(&keys);
                        view.keys = keys;
                    }
                    _ if value.is_empty() => view.problems.push("PGRST_JWT_SECRET is empty".into()),
                    _ => {
                        let bytes = if base64 {
                            crate::b64::decode(
                                value
                                    .trim_end_matches('=')
                                    .replace('+', "-")
                                    .replace('/', "_")
                                    .as_str(),
                            )
                        } else {
                            Some(value.as_bytes().to_vec())
                        };
                        view.secret =
                            bytes.map(|b| VerifyKey::new(&Material::Oct(Zeroizing::new(b))));
                        view.algs = vec![Alg::Hs256];
                        view.source = "PGRST_JWT_SECRET (HS256 secret)".into();
                    }
                }
            }
            Role::Realtime | Role::Storage | Role::Functions => {
                let (jwks_var, secret_var) = match role {
                    Role::Realtime => ("API_JWT_JWKS", "API_JWT_SECRET"),
                    Role::Storage => ("JWT_JWKS", "AUTH_JWT_SECRET"),
                    _ => ("SUPABASE_JWKS", "JWT_SECRET"),
                };
                jwks_from(&mut view, jwks_var);
                // Storage falls back to PGRST_JWT_SECRET when AUTH_JWT_SECRET is unset.
                let fallback = if role == Role::Storage {
                    read("PGRST_JWT_SECRET")
                } else {
                    None
                };
                view.secret = secret(read(secret_var).filter(|s| !s.is_empty()).or(fallback));
                view.algs = algs_of(&view.keys);
                if view.secret.is_some() && !view.algs.contains(&Alg::Hs256) {
                    view.algs.push(Alg::Hs256);
                }
                // Edge Functions verify only HS256, ES256 and RS256; Realtime names EdDSA's
                // signer only from v2.125.1 (before, "Ed25519" and "Ed448" alone).
                if role == Role::Functions
                    || (role == Role::Realtime && !view.at_least([2, 125, 1]))
                {
                    view.algs.retain(|a| *a != Alg::EdDsa);
                }
                if view.source.is_empty() {
                    view.source = format!("{secret_var} (HS256 secret)");
                }
            }
            Role::Kong => {}
        }
        out.push(view);
    }
    out
}

/// Views as SPEC §2 wires a project, from `.env` alone (when there is no compose file).
#[must_use]
pub(crate) fn expected_views(env: &EnvFile) -> Vec<View> {
    let secret = env
        .get_nonempty("JWT_SECRET")
        .map(|s| VerifyKey::new(&keyset::legacy_material(s)));
    let set = |var: &str| -> Vec<TrustedKey> {
        env.get_nonempty(var)
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .map(|v| {
                let items = v
                    .as_array()
                    .cloned()
                    .or_else(|| v.get("keys").and_then(Value::as_array).cloned())
                    .unwrap_or_default();
                items
                    .iter()
                    .filter_map(|k| Jwk::from_json(k).ok())
                    .map(TrustedKey::new)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for role in [
        Role::Auth,
        Role::Rest,
        Role::Realtime,
        Role::Storage,
        Role::Functions,
    ] {
        let keys = if role == Role::Auth {
            set("JWT_KEYS")
        } else {
            set("JWT_JWKS")
        };
        let mut algs: Vec<Alg> = Vec::new();
        for k in &keys {
            if !algs.contains(&k.material.alg()) {
                algs.push(k.material.alg());
            }
        }
        if secret.is_some()
            && (keys.is_empty() || role != Role::Auth)
            && !algs.contains(&Alg::Hs256)
        {
            algs.push(Alg::Hs256);
        }
        if role == Role::Functions {
            algs.retain(|a| *a != Alg::EdDsa);
        }
        out.push(View {
            service: role.as_str().into(),
            role,
            keys,
            secret: secret.clone(),
            algs,
            source: "expected wiring (no compose file)".into(),
            problems: Vec::new(),
            version: None,
            key_id: String::new(),
            audience: None,
        });
    }
    out
}

/// A JSON value's type, as a message names it.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON value as a message quotes it, cut at 40 characters.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

fn label(k: &Jwk) -> String {
    match &k.kid {
        Some(kid) => format!("{} kid {kid}", k.material.alg()),
        None => "the HS256 secret (oct key without kid)".into(),
    }
}

/// Decides whether `view`'s service accepts the decoded token at `now`, and why not.
/// `known` are keys that may explain a bad signature; `role` is the role the caller expects.
#[must_use]
pub(crate) fn verify(
    view: &View,
    token: &Decoded<'_>,
    now: Timestamp,
    known: &[Known],
    role: Option<&str>,
) -> Verdict {
    verify_cached(
        view,
        token,
        now,
        known,
        role,
        &mut Signatures::default().token(token),
    )
}

/// How many signature checks [`Signatures`] keeps before it starts again (about 1.5 MB).
const SIGNATURES_KEPT: usize = 16 * 1024;

/// The signature checks made in one run, so that each (key, token) pair costs one check: the
/// services that share a key (every verifier reads the same JWT_JWKS), the search for who
/// really signed a rejected token, and a token met again (an API key repeated through a log).
/// A key is named by [`VerifyKey::id`], a token by the SHA-256 of its signing input and
/// signature. Bounded: emptied when it holds [`SIGNATURES_KEPT`] checks.
#[derive(Default)]
pub(crate) struct Signatures {
    seen: HashMap<([u8; 32], [u8; 32]), bool>,
}

impl Signatures {
    /// The checks of `token`, through this run's.
    pub(crate) fn token<'s, 't>(&'s mut self, token: &'s Decoded<'t>) -> SigCache<'s, 't> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(token.signing_input.as_bytes());
        h.update(b".");
        h.update(&token.signature);
        SigCache {
            run: self,
            token,
            digest: h.finalize().into(),
            signer: None,
        }
    }
}

/// One token's signature checks, remembered in the run's [`Signatures`], and who signed it
/// among the known keys, found once.
pub(crate) struct SigCache<'s, 't> {
    run: &'s mut Signatures,
    token: &'s Decoded<'t>,
    digest: [u8; 32],
    signer: Option<(Alg, String)>,
}

impl SigCache<'_, '_> {
    /// Whether `key` signed the token.
    fn check(&mut self, key: &VerifyKey) -> bool {
        let id = (*key.id(), self.digest);
        if let Some(r) = self.run.seen.get(&id) {
            return *r;
        }
        let r = self.token.verifies_with_key(key);
        if self.run.seen.len() >= SIGNATURES_KEPT {
            self.run.seen.clear();
        }
        self.run.seen.insert(id, r);
        r
    }

    /// Who signed with `alg` among the keys keyctl knows, for "it was signed with …" (empty
    /// when none did).
    fn signed_with(&mut self, known: &[Known], alg: Alg) -> String {
        if let Some((a, said)) = &self.signer
            && *a == alg
        {
            return said.clone();
        }
        let said = known
            .iter()
            .find(|k| k.key.alg() == alg && self.check(&k.key))
            .map_or(String::new(), |k| {
                format!("; it was signed with {}", k.label)
            });
        self.signer = Some((alg, said.clone()));
        said
    }
}

/// [`verify`] sharing signature checks across the services and the run through `cache` (one
/// per token, from the run's [`Signatures`]). The checks run in the order the services run
/// them: the header, the algorithm, the key the header leads to and its signature, then the
/// claims.
#[must_use]
pub(crate) fn verify_cached(
    view: &View,
    token: &Decoded<'_>,
    now: Timestamp,
    known: &[Known],
    role: Option<&str>,
    cache: &mut SigCache<'_, '_>,
) -> Verdict {
    if let Some(verdict) = keys::header_verdict(view, token) {
        return verdict;
    }
    let alg = match accepted_alg(view, token, known, cache) {
        Ok(alg) => alg,
        Err(verdict) => return verdict,
    };
    let key = match keys::verifying_key(view, token, alg, known, cache) {
        Ok(key) => key,
        Err(verdict) => return verdict,
    };
    claims::verdict(view, token, now)
        .or_else(|| role_verdict(token, role))
        .unwrap_or(Verdict::Valid { key })
}

/// The token's algorithm, when the service accepts it. Every service compares `alg` as
/// written (`hs256` is no algorithm).
fn accepted_alg(
    view: &View,
    token: &Decoded<'_>,
    known: &[Known],
    cache: &mut SigCache<'_, '_>,
) -> Result<Alg, Verdict> {
    let Some(alg_name) = token.alg() else {
        return Err(Verdict::reject(
            "malformed",
            "the header has no alg (or it is not a string)",
        ));
    };
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(Verdict::reject(
            "alg_none",
            "alg \"none\": unsigned tokens are never accepted",
        ));
    }
    let Some(alg) = Alg::ALL.into_iter().find(|a| a.as_str() == alg_name) else {
        return Err(Verdict::reject(
            "alg_not_accepted",
            format!("alg {alg_name} is not one Supabase uses"),
        ));
    };
    if !view.algs.contains(&alg) {
        let accepted: Vec<&str> = view.algs.iter().map(|a| a.as_str()).collect();
        return Err(Verdict::reject(
            "alg_not_accepted",
            format!(
                "{} does not accept {alg}: it reads {} and accepts {}{}",
                view.service,
                if view.source.is_empty() {
                    "no key"
                } else {
                    view.source.as_str()
                },
                if accepted.is_empty() {
                    "nothing".into()
                } else {
                    accepted.join(", ")
                },
                cache.signed_with(known, alg)
            ),
        ));
    }
    Ok(alg)
}

/// keyctl's own check (`--role`): the token's `role` claim.
fn role_verdict(token: &Decoded<'_>, role: Option<&str>) -> Option<Verdict> {
    let want = role?;
    let got = token.claims.get("role").and_then(Value::as_str);
    (got != Some(want)).then(|| {
        Verdict::reject(
            "wrong_role",
            format!(
                "role is {}, expected {want}",
                got.map_or("missing".into(), |g| format!("{g:?}"))
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws;
    use serde_json::json;

    fn view(keys: Vec<Jwk>, secret: Option<&str>, role: Role) -> View {
        let keys: Vec<TrustedKey> = keys.into_iter().map(TrustedKey::new).collect();
        let mut algs = algs_of(&keys);
        if secret.is_some() {
            algs.push(Alg::Hs256);
        }
        View {
            service: "svc".into(),
            role,
            keys,
            secret: secret.map(|s| VerifyKey::new(&keyset::legacy_material(s))),
            algs,
            source: "test".into(),
            problems: vec![],
            version: None,
            key_id: String::new(),
            audience: None,
        }
    }

    fn jwk(m: &Material, kid: &str) -> Jwk {
        Jwk::from_json(&crate::jwk::public_json(m, Some(kid))).unwrap()
    }

    fn now() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn claims(exp: i64) -> serde_json::Map<String, Value> {
        json!({"role":"anon","exp":exp})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn verdicts_name_the_cause() {
        let a = Material::generate(Alg::Es256, 0).unwrap();
        let b = Material::generate(Alg::Es256, 0).unwrap();
        let v = view(vec![jwk(&a, "a")], None, Role::Rest);
        let later = now().as_second() + 60;
        let ok = jws::sign(&a, Some("a"), &claims(later)).unwrap();
        assert!(verify(&v, &jws::decode(&ok).unwrap(), now(), &[], None).is_valid());
        let unknown = jws::sign(&b, Some("b"), &claims(later)).unwrap();
        let known = [Known::new(
            "revoked on 2026-11-01".into(),
            &b.public(),
            Some("b".into()),
        )];
        let r = verify(&v, &jws::decode(&unknown).unwrap(), now(), &known, None);
        assert!(
            matches!(&r, Verdict::Rejected { code: "unknown_kid", reason } if reason.contains("revoked on")),
            "{r:?}"
        );
        let forged = jws::sign(&b, Some("a"), &claims(later)).unwrap();
        let r = verify(&v, &jws::decode(&forged).unwrap(), now(), &known, None);
        assert!(
            matches!(&r, Verdict::Rejected { code: "bad_signature", reason } if reason.contains("revoked on")),
            "{r:?}"
        );
        let old = jws::sign(&a, Some("a"), &claims(now().as_second() - 3600)).unwrap();
        assert!(matches!(
            verify(&v, &jws::decode(&old).unwrap(), now(), &[], None),
            Verdict::Rejected {
                code: "expired",
                ..
            }
        ));
        let hs = jws::sign(&keyset::legacy_material("s"), None, &claims(later)).unwrap();
        assert!(matches!(
            verify(&v, &jws::decode(&hs).unwrap(), now(), &[], None),
            Verdict::Rejected {
                code: "alg_not_accepted",
                ..
            }
        ));
        assert!(matches!(
            verify(
                &v,
                &jws::decode(&ok).unwrap(),
                now(),
                &[],
                Some("service_role")
            ),
            Verdict::Rejected {
                code: "wrong_role",
                ..
            }
        ));
    }

    #[test]
    fn auth_checks_kidless_tokens_only_against_its_secret() {
        let secret = "a-secret-that-is-long-enough-for-postgrest";
        let oct = Jwk::from_json(&crate::jwk::private_json(
            &keyset::legacy_material("other-secret-other-secret-other-secret"),
            None,
            false,
        ))
        .unwrap();
        let v = view(vec![oct], Some(secret), Role::Auth);
        let later = now().as_second() + 60;
        let t = jws::sign(&keyset::legacy_material(secret), None, &claims(later)).unwrap();
        assert!(verify(&v, &jws::decode(&t).unwrap(), now(), &[], None).is_valid());
        let t = jws::sign(
            &keyset::legacy_material("other-secret-other-secret-other-secret"),
            None,
            &claims(later),
        )
        .unwrap();
        assert!(!verify(&v, &jws::decode(&t).unwrap(), now(), &[], None).is_valid());
    }

    #[test]
    fn each_service_picks_its_key_its_own_way() {
        let a = Material::generate(Alg::Es256, 0).unwrap();
        let b = Material::generate(Alg::Es256, 0).unwrap();
        let later = now().as_second() + 60;
        let kidless = jws::sign(&a, None, &claims(later)).unwrap();
        let with_kid = jws::sign(&a, Some("a"), &claims(later)).unwrap();
        let code = |role: Role, keys: Vec<Jwk>, token: &str| match verify(
            &view(keys, None, role),
            &jws::decode(token).unwrap(),
            now(),
            &[],
            None,
        ) {
            Verdict::Valid { .. } => "valid",
            Verdict::Rejected { code, .. } => code,
        };
        let one = || vec![jwk(&a, "a")];
        let two = || vec![jwk(&a, "a"), jwk(&b, "b")];
        // A kid-less ES256 token: PostgREST tries every key, Edge Functions take the only one
        // and refuse to choose between two, Realtime and Storage need the kid.
        assert_eq!(code(Role::Rest, two(), &kidless), "valid");
        assert_eq!(code(Role::Functions, one(), &kidless), "valid");
        assert_eq!(code(Role::Functions, two(), &kidless), "unknown_kid");
        assert_eq!(code(Role::Realtime, two(), &kidless), "unknown_kid");
        assert_eq!(code(Role::Storage, two(), &kidless), "unknown_kid");
        assert_eq!(code(Role::Auth, two(), &kidless), "unknown_kid");
        for role in [
            Role::Auth,
            Role::Rest,
            Role::Realtime,
            Role::Storage,
            Role::Functions,
        ] {
            assert_eq!(code(role, two(), &with_kid), "valid", "{role:?}");
        }
    }
}
