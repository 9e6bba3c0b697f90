//! The two key sets and the one validator every command uses before it writes.
//!
//! `JWT_KEYS` (Auth's private array) and `JWT_JWKS` (the public `{"keys":[…]}` object the
//! other services read) are checked here against every rule of SPEC §1, and `JWT_JWKS` is
//! derived from `JWT_KEYS` here. The checks return all problems at once, each naming the
//! variable and the kid, so an operator fixes a file in one pass. Never touches files.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::jwk::{self, Jwk, PRIVATE_MEMBERS};
use crate::key::Material;

/// Shortest `JWT_SECRET` PostgREST 13 accepts.
pub const MIN_SECRET_LEN: usize = 32;

/// One broken rule: where, which key, what breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the value lives (`.env:37 JWT_KEYS`).
    pub place: String,
    /// The key's kid, or its index when it has none.
    pub key: Option<String>,
    /// What is wrong and what it breaks. Never a key value.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{} {}: {}", self.place, k, self.message),
            None => write!(f, "{}: {}", self.place, self.message),
        }
    }
}

/// The first of `problems` as bad input (exit 2) at its place, with its key, and how many
/// more there are: how a command that must *use* a key set reports one that breaks a rule.
#[must_use]
pub fn as_error(problems: &[Problem]) -> crate::error::Error {
    let Some(p) = problems.first() else {
        return crate::error::Error::bad("key set", "invalid");
    };
    let more = match problems.len() {
        1 => String::new(),
        n => format!(" (and {} more: run keyctl jwks --check)", n - 1),
    };
    let key = p.key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default();
    crate::error::Error::bad(p.place.clone(), format!("{key}{}{more}", p.message))
}

/// The values a check reads, each with the place it came from.
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    /// `JWT_KEYS` and its place.
    pub jwt_keys: Option<(&'a str, String)>,
    /// `JWT_JWKS` and its place.
    pub jwt_jwks: Option<(&'a str, String)>,
    /// `JWT_SECRET` and its place.
    pub jwt_secret: Option<(&'a str, String)>,
}

fn key_label(index: usize, kid: Option<&str>) -> String {
    match kid {
        Some(kid) => format!("kid {kid}"),
        None => format!("key #{}", index + 1),
    }
}

/// The first member name that appears twice in one JSON object of `text`, if any. serde_json
/// keeps the last of duplicate members, other parsers the first: a key set that two services
/// would read differently is refused.
#[must_use]
pub fn duplicate_member(text: &str) -> Option<String> {
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    struct Unique;
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Unique;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_unit<E>(self) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Unique, A::Error> {
            while a.next_element::<Unique>()?.is_some() {}
            Ok(Unique)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Unique, A::Error> {
            let mut seen = HashSet::new();
            while let Some(k) = a.next_key::<String>()? {
                if !seen.insert(k.clone()) {
                    return Err(de::Error::custom(format!("duplicate member {k:?}")));
                }
                a.next_value::<Unique>()?;
            }
            Ok(Unique)
        }
    }
    impl<'de> Deserialize<'de> for Unique {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
            d.deserialize_any(V)
        }
    }
    match serde_json::from_str::<Unique>(text) {
        Err(e) if e.to_string().starts_with("duplicate member") => {
            let msg = e.to_string();
            Some(
                msg.split(" at line ")
                    .next()
                    .unwrap_or(&msg)
                    .trim_start_matches("duplicate member ")
                    .to_owned(),
            )
        }
        _ => None,
    }
}

/// The legacy key: the kid-less `oct` key whose bytes are `JWT_SECRET`.
#[must_use]
pub fn is_legacy(k: &Jwk) -> bool {
    k.kid.is_none() && matches!(k.material, Material::Oct(_))
}

/// The legacy oct key for `secret` (its UTF-8 bytes, never decoded).
#[must_use]
pub fn legacy_material(secret: &str) -> Material {
    Material::Oct(Zeroizing::new(secret.as_bytes().to_vec()))
}

/// Parses `JWT_KEYS` strictly: a JSON array of JWKs that pass [`check_private_set`].
///
/// # Errors
/// Every problem found, as for `check`.
pub fn parse_private_set(text: &str, place: &str) -> Result<Vec<Jwk>, Vec<Problem>> {
    let mut problems = Vec::new();
    let keys = read_private_set(text, place, &mut problems);
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems)
    }
}

fn problem(place: &str, key: Option<String>, message: impl Into<String>) -> Problem {
    Problem {
        place: place.to_owned(),
        key,
        message: message.into(),
    }
}

fn read_private_set(text: &str, place: &str, problems: &mut Vec<Problem>) -> Vec<Jwk> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problems.push(problem(
                place,
                None,
                format!(
                    "not valid JSON ({}, column {}); Auth will not start and prints the whole value to its log",
                    json_error_kind(&e),
                    e.column()
                ),
            ));
            return Vec::new();
        }
    };
    if let Some(name) = duplicate_member(text) {
        problems.push(problem(
            place,
            None,
            format!(
                "a JSON object has a duplicate member {name}; parsers disagree on which one counts"
            ),
        ));
        return Vec::new();
    }
    let items = match value {
        Value::Array(items) => items,
        Value::Object(o) if o.contains_key("keys") => {
            problems.push(problem(place, None, "must be a JSON array of JWKs, not {\"keys\":[…]} (Auth fails: cannot unmarshal object into []json.RawMessage); the {\"keys\":…} form belongs in JWT_JWKS"));
            return Vec::new();
        }
        _ => {
            problems.push(problem(place, None, "must be a JSON array of JWKs"));
            return Vec::new();
        }
    };
    let mut keys = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let kid = item.get("kid").and_then(Value::as_str);
        let label = key_label(i, kid);
        if item.get("private_key").is_some() || item.get("key_id").is_some() {
            problems.push(problem(place, Some(label), "uses key_id/private_key PEM fields; Auth wants RFC 7517 JWKs (fails: invalid key type from JSON)"));
            continue;
        }
        match Jwk::from_json(item) {
            Ok(k) => keys.push(k),
            Err(e) => problems.push(problem(place, Some(label), e.0)),
        }
    }
    check_members(&keys, place, true, problems);
    if !keys.is_empty() && keys.len() == items.len() {
        let signers = keys.iter().filter(|k| k.can_sign()).count();
        match signers {
            1 => {}
            0 => problems.push(problem(place, None, "no key has \"sign\" in key_ops; Auth exits with \"no signing key detected\"")),
            n => problems.push(problem(place, None, format!("{n} keys have \"sign\" in key_ops; Auth exits with \"multiple signing keys detected\""))),
        }
        for (i, k) in keys.iter().enumerate() {
            if k.can_sign() && !k.material.is_private() {
                problems.push(problem(
                    place,
                    Some(key_label(i, k.kid.as_deref())),
                    "is the signing key but holds no private part",
                ));
            }
        }
    }
    keys
}

fn json_error_kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "it ends too early",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Io => "read error",
    }
}

/// Rules shared by both sets: kid presence and uniqueness, `alg` presence and agreement
/// with `kty`, `key_ops` that name only sign/verify.
fn check_members(keys: &[Jwk], place: &str, private_set: bool, problems: &mut Vec<Problem>) {
    let mut kids = HashSet::new();
    let mut kidless_oct = 0;
    for (i, k) in keys.iter().enumerate() {
        let label = || Some(key_label(i, k.kid.as_deref()));
        match &k.kid {
            Some(kid) if kid.is_empty() => {
                problems.push(problem(place, label(), "has an empty kid"))
            }
            Some(kid) if kid.chars().any(char::is_control) => problems.push(problem(
                place,
                label(),
                "has a kid with control characters (a newline, an escape sequence): no token header can name it safely",
            )),
            Some(kid) => {
                if !kids.insert(kid.clone()) {
                    problems.push(problem(place, label(), "duplicate kid: keys are looked up by kid, and the later one silently replaces the earlier"));
                }
            }
            None if is_legacy(k) => {
                kidless_oct += 1;
                if kidless_oct == 2 {
                    problems.push(problem(place, label(), "a second oct key without kid: only the legacy JWT_SECRET key may lack a kid"));
                }
            }
            None => problems.push(problem(
                place,
                label(),
                format!(
                    "{} key without kid: tokens it signs cannot be matched to it",
                    k.material.alg().kty()
                ),
            )),
        }
        let want = k.material.alg().as_str();
        match k.alg.as_deref() {
            None => problems.push(problem(place, label(), format!("has no \"alg\"; Auth falls back to HS256 and verification breaks (set \"alg\":\"{want}\")"))),
            Some(a) if a != want => problems.push(problem(place, label(), format!("has \"alg\":\"{a}\" but its kty {} needs \"{want}\"", k.material.alg().kty()))),
            Some(_) => {}
        }
        match &k.key_ops {
            None => problems.push(problem(
                place,
                label(),
                "has no \"key_ops\" (expected [\"sign\",\"verify\"] or [\"verify\"])",
            )),
            Some(ops) => {
                if let Some(op) = ops.iter().find(|o| *o != "sign" && *o != "verify") {
                    problems.push(problem(
                        place,
                        label(),
                        format!("key_ops lists {op:?}; only \"sign\" and \"verify\" are used"),
                    ));
                } else if !ops.iter().any(|o| o == "verify") {
                    problems.push(problem(
                        place,
                        label(),
                        "key_ops lacks \"verify\": the key would not verify its own tokens",
                    ));
                } else if !private_set && ops.iter().any(|o| o == "sign") {
                    problems.push(problem(
                        place,
                        label(),
                        "key_ops lists \"sign\" in JWT_JWKS; published keys only verify",
                    ));
                }
            }
        }
    }
}

/// Derives `JWT_JWKS` from `JWT_KEYS`: each key's public part with `key_ops:["verify"]`,
/// same kid and alg, in the same order; oct keys (the legacy one included) carry `k`.
#[must_use]
pub fn derive_jwks(keys: &[Jwk]) -> Value {
    let list: Vec<Value> = keys
        .iter()
        .map(|k| match &k.material {
            Material::Oct(_) => {
                let mut v = jwk::private_json(&k.material, k.kid.as_deref(), false);
                if let Some(o) = v.as_object_mut() {
                    o.remove("use");
                    o.remove("ext");
                }
                v
            }
            m => jwk::public_json(m, k.kid.as_deref()),
        })
        .collect();
    json!({ "keys": list })
}

/// Renders `JWT_KEYS` from keys and the signer's index.
#[must_use]
pub fn render_private_set(keys: &[(Material, Option<String>)], signer: usize) -> Value {
    Value::Array(
        keys.iter()
            .enumerate()
            .map(|(i, (m, kid))| jwk::private_json(m, kid.as_deref(), i == signer))
            .collect(),
    )
}

/// Compares two keys' public parts (oct keys by their bytes).
#[must_use]
pub fn same_key(a: &Material, b: &Material) -> bool {
    match (a, b) {
        (Material::Oct(x), Material::Oct(y)) => x.as_slice() == y.as_slice(),
        _ => {
            crate::key::public_der(a).is_some()
                && crate::key::public_der(a) == crate::key::public_der(b)
        }
    }
}

fn read_public_set(text: &str, place: &str, problems: &mut Vec<Problem>) -> Option<Vec<Jwk>> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problems.push(problem(place, None, format!("not valid JSON ({}, column {}); PostgREST would silently treat it as an HS256 secret", json_error_kind(&e), e.column())));
            return None;
        }
    };
    if let Some(name) = duplicate_member(text) {
        problems.push(problem(
            place,
            None,
            format!(
                "a JSON object has a duplicate member {name}; parsers disagree on which one counts"
            ),
        ));
        return None;
    }
    let items = match &value {
        Value::Object(o) => match o.get("keys") {
            Some(Value::Array(items)) => items.clone(),
            _ => {
                problems.push(problem(
                    place,
                    None,
                    "must be {\"keys\":[…]} with a \"keys\" array",
                ));
                return None;
            }
        },
        Value::Array(_) => {
            problems.push(problem(place, None, "must be a {\"keys\":[…]} object, not an array (Realtime fails on an array); the array form belongs in JWT_KEYS"));
            return None;
        }
        _ => {
            problems.push(problem(place, None, "must be a {\"keys\":[…]} object"));
            return None;
        }
    };
    let mut keys = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let label = key_label(i, item.get("kid").and_then(Value::as_str));
        let is_oct = item.get("kty").and_then(Value::as_str) == Some("oct");
        let private: Vec<&str> = PRIVATE_MEMBERS
            .iter()
            .copied()
            .filter(|m| item.get(*m).is_some())
            .collect();
        if !private.is_empty() && !is_oct {
            problems.push(problem(place, Some(label.clone()), format!("holds private members ({}): JWT_JWKS is read by every service and must be public", private.join(", "))));
        }
        match Jwk::from_json(item) {
            Ok(mut k) => {
                if !is_oct {
                    k.material = k.material.public();
                }
                keys.push(k);
            }
            Err(e) => problems.push(problem(place, Some(label), e.0)),
        }
    }
    check_members(&keys, place, false, problems);
    Some(keys)
}

/// Checks the three values against every rule of SPEC §1 and returns all problems.
#[must_use]
pub fn check(inputs: &Inputs<'_>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let secret = inputs.jwt_secret.as_ref().filter(|(v, _)| !v.is_empty());
    if let Some((s, place)) = secret
        && s.chars().any(char::is_control)
    {
        problems.push(problem(place, None, "holds control characters (a NUL, a tab, a newline): .env readers and services disagree on such values"));
    }
    if let Some((s, place)) = secret
        && s.chars().count() < MIN_SECRET_LEN
    {
        problems.push(problem(
            place,
            None,
            format!(
                "is {} characters; PostgREST 13 refuses secrets shorter than {MIN_SECRET_LEN}",
                s.chars().count()
            ),
        ));
    }
    let keys_in = inputs
        .jwt_keys
        .as_ref()
        .filter(|(v, _)| !v.trim().is_empty());
    let jwks_in = inputs
        .jwt_jwks
        .as_ref()
        .filter(|(v, _)| !v.trim().is_empty());
    let private =
        keys_in.map(|(text, place)| (read_private_set(text, place, &mut problems), place));
    let public = jwks_in
        .and_then(|(text, place)| read_public_set(text, place, &mut problems).map(|k| (k, place)));

    if let Some((keys, place)) = &private {
        for (i, k) in keys.iter().enumerate() {
            if !is_legacy(k) {
                continue;
            }
            match secret {
                None => problems.push(problem(place, Some(key_label(i, None)), "is the legacy oct key but JWT_SECRET is not set")),
                Some((s, _)) if !same_key(&k.material, &legacy_material(s)) => problems.push(problem(place, Some(key_label(i, None)), "legacy oct key \"k\" is not base64url(JWT_SECRET): HS256 tokens from Auth and the API keys would disagree")),
                Some(_) => {}
            }
        }
    }
    match (&private, &public) {
        (Some((keys, _)), Some((published, jplace)))
            if !problems_in(&problems, &[keys_in, jwks_in]) =>
        {
            compare_sets(keys, published, jplace, &mut problems);
        }
        (Some((keys, _)), None)
            if jwks_in.is_none() && keys.iter().any(|k| k.material.alg().is_asymmetric()) =>
        {
            problems.push(problem("JWT_JWKS", None, "is not set while JWT_KEYS holds asymmetric keys: PostgREST, Realtime, Storage and Edge Functions cannot verify their tokens (run: keyctl jwks --project DIR)"));
        }
        (None, Some((published, jplace))) if !published.is_empty() && inputs.jwt_keys.is_some() => {
            problems.push(problem(
                jplace,
                None,
                "is set while JWT_KEYS is empty: Auth does not sign with any of the published keys",
            ));
        }
        _ => {}
    }
    if let (Some((published, jplace)), Some((s, _))) = (&public, secret) {
        for (i, k) in published.iter().enumerate() {
            if is_legacy(k) && !same_key(&k.material, &legacy_material(s)) {
                problems.push(problem(jplace, Some(key_label(i, None)), "legacy oct key \"k\" is not base64url(JWT_SECRET): verifiers reject Auth's HS256 tokens"));
            }
        }
    }
    problems
}

fn problems_in(problems: &[Problem], places: &[Option<&(&str, String)>]) -> bool {
    places
        .iter()
        .flatten()
        .any(|(_, place)| problems.iter().any(|p| &p.place == place))
}

fn compare_sets(keys: &[Jwk], published: &[Jwk], place: &str, problems: &mut Vec<Problem>) {
    let find = |list: &[Jwk], k: &Jwk| -> Option<usize> {
        list.iter().position(|p| match (&p.kid, &k.kid) {
            (Some(a), Some(b)) => a == b,
            (None, None) => is_legacy(p) && is_legacy(k),
            _ => false,
        })
    };
    for (i, k) in keys.iter().enumerate() {
        let label = key_label(i, k.kid.as_deref());
        match find(published, k) {
            None => problems.push(problem(place, Some(label), "is in JWT_KEYS but not in JWT_JWKS: tokens it signs fail with 401 at PostgREST, Realtime, Storage and Edge Functions (run: keyctl jwks --project DIR)")),
            Some(j) => {
                let p = &published[j];
                if !same_key(&k.material, &p.material) {
                    problems.push(problem(place, Some(label), "differs between JWT_KEYS and JWT_JWKS: verifiers reject its tokens with \"invalid signature\""));
                } else if p.alg != k.alg {
                    problems.push(problem(place, Some(label), "has a different \"alg\" in JWT_JWKS than in JWT_KEYS"));
                }
            }
        }
    }
    for (j, p) in published.iter().enumerate() {
        if find(keys, p).is_none() {
            problems.push(problem(place, Some(key_label(j, p.kid.as_deref())), "is in JWT_JWKS but not in JWT_KEYS: verifiers still trust a key Auth no longer knows (revoke it everywhere, or re-derive JWT_JWKS)"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Alg;

    fn pair(alg: Alg, kid: &str) -> (Material, Option<String>) {
        (Material::generate(alg, 2048).unwrap(), Some(kid.to_owned()))
    }

    fn inputs<'a>(keys: &'a str, jwks: &'a str, secret: &'a str) -> Inputs<'a> {
        Inputs {
            jwt_keys: Some((keys, "JWT_KEYS".into())),
            jwt_jwks: Some((jwks, "JWT_JWKS".into())),
            jwt_secret: Some((secret, "JWT_SECRET".into())),
        }
    }

    const SECRET: &str = "a-test-secret-that-is-long-enough-0123";

    fn dual() -> (String, String) {
        let keys = vec![(legacy_material(SECRET), None), pair(Alg::Es256, "new")];
        let set = render_private_set(&keys, 0).to_string();
        let parsed = parse_private_set(&set, "JWT_KEYS").unwrap();
        (set, derive_jwks(&parsed).to_string())
    }

    #[test]
    fn duplicate_members_are_found_at_any_depth() {
        assert_eq!(
            duplicate_member(r#"[{"a":1,"b":{"c":1,"c":2}}]"#).as_deref(),
            Some("\"c\"")
        );
        assert_eq!(duplicate_member(r#"{"keys":[{"alg":"ES256"}]}"#), None);
        let p = check(&inputs(
            r#"[{"kty":"oct","alg":"HS256","alg":"none"}]"#,
            "",
            SECRET,
        ));
        assert!(
            p.iter().any(|p| p.message.contains("duplicate member")),
            "{p:?}"
        );
    }

    #[test]
    fn a_derived_pair_passes() {
        let (keys, jwks) = dual();
        assert_eq!(check(&inputs(&keys, &jwks, SECRET)), vec![]);
    }

    #[test]
    fn object_in_jwt_keys_and_array_in_jwks_are_named() {
        let (keys, jwks) = dual();
        let p = check(&inputs(&jwks, &keys, SECRET));
        assert!(
            p.iter()
                .any(|p| p.place == "JWT_KEYS" && p.message.contains("not {\"keys\""))
        );
        assert!(
            p.iter()
                .any(|p| p.place == "JWT_JWKS" && p.message.contains("not an array"))
        );
    }

    #[test]
    fn two_signers_and_duplicate_kids() {
        let keys = vec![pair(Alg::Es256, "a"), pair(Alg::Es256, "a")];
        let mut set = render_private_set(&keys, 0);
        set[1]["key_ops"] = json!(["sign", "verify"]);
        let p = parse_private_set(&set.to_string(), "JWT_KEYS").unwrap_err();
        assert!(p.iter().any(|p| p.message.contains("duplicate kid")));
        assert!(p.iter().any(|p| p.message.contains("2 keys have \"sign\"")));
    }

    #[test]
    fn missing_alg_and_short_secret_and_wrong_oct() {
        let keys = vec![
            (
                legacy_material("other-secret-value-long-enough-xxxxx"),
                None,
            ),
            pair(Alg::Es256, "n"),
        ];
        let mut set = render_private_set(&keys, 0);
        set[1].as_object_mut().unwrap().remove("alg");
        let text = set.to_string();
        let p = check(&inputs(&text, "", "short"));
        assert!(
            p.iter()
                .any(|p| p.place == "JWT_SECRET" && p.message.contains("5 characters"))
        );
        assert!(
            p.iter()
                .any(|p| p.key.as_deref() == Some("kid n") && p.message.contains("no \"alg\""))
        );
        assert!(
            p.iter()
                .any(|p| p.message.contains("not base64url(JWT_SECRET)"))
        );
    }

    #[test]
    fn jwks_out_of_step_and_private_members() {
        let (keys, _) = dual();
        let parsed = parse_private_set(&keys, "JWT_KEYS").unwrap();
        let other = pair(Alg::Es256, "new");
        let mut leaked = jwk::private_json(&other.0, Some("new"), false);
        leaked["key_ops"] = json!(["verify"]);
        let jwks = json!({"keys":[derive_jwks(&parsed)["keys"][0].clone(), leaked]}).to_string();
        let p = check(&inputs(&keys, &jwks, SECRET));
        assert!(
            p.iter().any(|p| p.message.contains("private members (d)")),
            "{p:?}"
        );
        let jwks = json!({"keys":[derive_jwks(&parsed)["keys"][0].clone(), jwk::public_json(&other.0, Some("new"))]}).to_string();
        let p = check(&inputs(&keys, &jwks, SECRET));
        assert!(
            p.iter()
                .any(|p| p.key.as_deref() == Some("kid new") && p.message.contains("differs")),
            "{p:?}"
        );
    }

    #[test]
    fn derived_jwks_is_public_with_verify_ops() {
        let (_, jwks) = dual();
        let v: Value = serde_json::from_str(&jwks).unwrap();
        assert_eq!(v["keys"][0]["kty"], "oct");
        assert!(v["keys"][0].get("kid").is_none());
        assert_eq!(v["keys"][1]["key_ops"], json!(["verify"]));
        assert!(v["keys"][1].get("d").is_none());
    }
}
