//! The API keys and secrets keyctl mints: `ANON_KEY`-style JWTs, the opaque
//! `sb_publishable_`/`sb_secret_` keys, a fresh `JWT_SECRET`, and the realtime healthcheck
//! token. Pure apart from the system random source.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::b64;
use crate::jws;
use crate::key::{KeyError, Material};

/// Lifetime of minted API keys: explicit and long, independent of `JWT_EXPIRY`.
pub const API_KEY_LIFETIME: SignedDuration = SignedDuration::from_hours(24 * 365 * 10);

/// The variables upstream keeps API keys in, with the role each carries.
pub const NAMED: [(&str, &str); 4] = [
    ("ANON_KEY", "anon"),
    ("SERVICE_ROLE_KEY", "service_role"),
    ("ANON_KEY_ASYMMETRIC", "anon"),
    ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role"),
];

/// Who should get a re-minted API key of `role`, held in `place`.
#[must_use]
pub fn handout(role: &str, place: &str) -> String {
    if role == "service_role" {
        format!(
            "give the new service_role key from {place} to your server-side code only: it bypasses row-level security, so it never goes to a browser or a mobile app"
        )
    } else {
        format!(
            "give every client the new {role} key from {place} (frontends, mobile apps, server code)"
        )
    }
}

/// The two roles API keys carry.
pub const ROLES: [(&str, &str); 2] = [("ANON_KEY", "anon"), ("SERVICE_ROLE_KEY", "service_role")];

/// Claims of an API key for `role`, issued at `now`.
#[must_use]
pub fn claims(role: &str, now: Timestamp) -> Map<String, Value> {
    claims_for(role, now, API_KEY_LIFETIME)
}

/// Claims of an API key for `role`, issued at `now`, valid for `lifetime`.
#[must_use]
pub fn claims_for(role: &str, now: Timestamp, lifetime: SignedDuration) -> Map<String, Value> {
    let iat = now.as_second();
    let exp = (now + lifetime).as_second();
    json!({"role": role, "iss": "supabase", "iat": iat, "exp": exp})
        .as_object()
        .expect("object literal")
        .clone()
}

/// An API key JWT for `role`, signed by `material` with `kid` in the header.
///
/// # Errors
/// The key cannot sign.
pub fn mint(
    material: &Material,
    kid: Option<&str>,
    role: &str,
    now: Timestamp,
) -> Result<String, KeyError> {
    jws::sign(material, kid, &claims(role, now))
}

/// Like [`mint`], valid for `lifetime` instead of [`API_KEY_LIFETIME`].
///
/// # Errors
/// The key cannot sign.
pub fn mint_for(
    material: &Material,
    kid: Option<&str>,
    role: &str,
    now: Timestamp,
    lifetime: SignedDuration,
) -> Result<String, KeyError> {
    jws::sign(material, kid, &claims_for(role, now, lifetime))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the system random source is available");
    b
}

/// An opaque key: `prefix` + 22 base64url characters + `_` + 8 characters of
/// base64url(sha256("supabase-self-hosted|" + prefix + random)).
#[must_use]
pub fn opaque(prefix: &str) -> String {
    let random = b64::encode(&random_bytes::<16>());
    let digest = Sha256::digest(format!("supabase-self-hosted|{prefix}{random}").as_bytes());
    let check = b64::encode(&digest);
    format!("{prefix}{random}_{}", &check[..8])
}

/// A fresh `JWT_SECRET`: 64 characters from `[A-Za-z0-9]` (unquoted in `.env`).
#[must_use]
pub fn fresh_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(64);
    while out.len() < 64 {
        for b in random_bytes::<64>() {
            // 248 = 4 * 62: reject the tail to keep the choice uniform.
            if b < 248 && out.len() < 64 {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// Whether a JWT's header says HS256 (a legacy API key).
#[must_use]
pub fn is_hs256(token: &str) -> bool {
    jws::decode(token).is_ok_and(|d| d.alg() == Some("HS256"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Alg;

    #[test]
    fn opaque_keys_have_the_documented_shape() {
        for prefix in ["sb_publishable_", "sb_secret_"] {
            let k = opaque(prefix);
            let rest = k.strip_prefix(prefix).unwrap();
            assert_eq!(rest.len(), 22 + 1 + 8, "{k}");
            assert_eq!(&rest[22..23], "_");
            let digest =
                Sha256::digest(format!("supabase-self-hosted|{prefix}{}", &rest[..22]).as_bytes());
            assert_eq!(&rest[23..], &b64::encode(&digest)[..8]);
        }
    }

    #[test]
    fn secrets_are_64_alphanumerics() {
        let s = fresh_secret();
        assert_eq!(s.len(), 64);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(s, fresh_secret());
    }

    #[test]
    fn minted_keys_carry_kid_role_and_a_long_expiry() {
        let m = Material::generate(Alg::Es256, 0).unwrap();
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let t = mint(&m, Some("k"), "anon", now).unwrap();
        let d = jws::decode(&t).unwrap();
        assert_eq!(d.kid(), Some("k"));
        assert_eq!(d.claims["role"], "anon");
        assert_eq!(d.claims["iss"], "supabase");
        assert!(d.claims["exp"].as_i64().unwrap() - now.as_second() > 9 * 365 * 86400);
        assert!(!is_hs256(&t));
    }
}
