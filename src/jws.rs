//! Compact JWS (RFC 7515) signing and verification, written on the key primitives.
//!
//! Verification pins the algorithm from the key, never from the token header: a token whose
//! header `alg` differs from the key's is rejected before any signature check, which closes
//! the `alg: none` and HS256-with-a-public-key confusions.

use serde_json::{Map, Value};

use crate::b64;
use crate::key::{KeyError, Material};
use crate::verifykey::VerifyKey;

/// Tokens longer than this are refused before decoding (Supabase tokens are well under 4 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Signs `claims` as a compact JWS with `material`. The header is `{"alg","kid"?,"typ":"JWT"}`;
/// a token without `kid` is what Auth issues with the legacy secret.
///
/// # Errors
/// The key is public only.
pub fn sign(
    material: &Material,
    kid: Option<&str>,
    claims: &Map<String, Value>,
) -> Result<String, KeyError> {
    let mut header = Map::new();
    header.insert("alg".into(), Value::String(material.alg().as_str().into()));
    if let Some(kid) = kid {
        header.insert("kid".into(), Value::String(kid.into()));
    }
    header.insert("typ".into(), Value::String("JWT".into()));
    let input = format!(
        "{}.{}",
        b64::encode(Value::Object(header).to_string().as_bytes()),
        b64::encode(Value::Object(claims.clone()).to_string().as_bytes())
    );
    let sig = material.sign(input.as_bytes())?;
    Ok(format!("{input}.{}", b64::encode(&sig)))
}

/// A compact JWS taken apart, not yet verified.
#[derive(Debug, Clone)]
pub struct Decoded<'t> {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload, as a JSON object.
    pub claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'t str,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

impl Decoded<'_> {
    /// The header `alg`, if it is a string.
    #[must_use]
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// The header `kid`, if it is a string.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// Whether `material` signed this token with its own algorithm. A caller that checks
    /// many tokens against one key prepares it once and calls [`Self::verifies_with_key`].
    #[must_use]
    pub fn verifies_with(&self, material: &Material) -> bool {
        self.alg() == Some(material.alg().as_str())
            && self.verifies_with_key(&VerifyKey::new(material))
    }

    /// Whether `key` signed this token with its own algorithm.
    #[must_use]
    pub fn verifies_with_key(&self, key: &VerifyKey) -> bool {
        self.alg() == Some(key.alg().as_str())
            && key.verify(self.signing_input.as_bytes(), &self.signature)
    }
}

/// Why a string is not a compact JWS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedToken(pub String);

/// Splits and decodes a compact JWS without verifying it.
///
/// # Errors
/// Too long, not three base64url segments, or a header or payload that is not a JSON object.
pub fn decode(token: &str) -> Result<Decoded<'_>, MalformedToken> {
    let bad = |m: &str| MalformedToken(m.to_owned());
    if token.len() > MAX_TOKEN_LEN {
        return Err(MalformedToken(format!(
            "token is {} bytes, over the {MAX_TOKEN_LEN}-byte limit",
            token.len()
        )));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a JWT: expected three dot-separated segments"));
    };
    let object = |seg: &str, what: &str| -> Result<Map<String, Value>, MalformedToken> {
        let raw = b64::decode(seg).ok_or_else(|| bad(&format!("{what} is not base64url")))?;
        match serde_json::from_slice::<Value>(&raw) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(bad(&format!("{what} is not a JSON object"))),
        }
    };
    let header = object(h, "header")?;
    let claims = object(p, "payload")?;
    let signature = b64::decode(s).ok_or_else(|| bad("signature is not base64url"))?;
    Ok(Decoded {
        header,
        claims,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Alg;
    use serde_json::json;

    fn claims() -> Map<String, Value> {
        json!({"role":"anon","iss":"supabase"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn signs_and_verifies_every_alg() {
        for alg in Alg::ALL {
            let key = Material::generate(alg, 2048).unwrap();
            let token = sign(&key, Some("kid-1"), &claims()).unwrap();
            let d = decode(&token).unwrap();
            assert_eq!(d.kid(), Some("kid-1"));
            assert_eq!(d.alg(), Some(alg.as_str()));
            assert!(d.verifies_with(&key.public()));
        }
    }

    #[test]
    fn alg_is_pinned_by_the_key() {
        let key = Material::generate(Alg::Hs256, 0).unwrap();
        let token = sign(&key, None, &claims()).unwrap();
        let mut d = decode(&token).unwrap();
        d.header.insert("alg".into(), "none".into());
        assert!(!d.verifies_with(&key));
    }

    #[test]
    fn malformed_tokens_are_named() {
        assert!(decode("a.b").unwrap_err().0.contains("three"));
        assert!(decode("!!.e30.AA").unwrap_err().0.contains("header"));
        assert!(decode(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
    }

    mod fuzz {
        use super::super::*;
        use crate::key::Alg;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn decode_never_panics(text in "\\PC{0,300}") {
                let _ = decode(&text);
            }

            #[test]
            fn decode_never_panics_on_dotted_base64(a in "[A-Za-z0-9_=+/-]{0,40}", b in "[A-Za-z0-9_=+/-]{0,40}", c in "[A-Za-z0-9_=+/-]{0,90}", dots in 0usize..5) {
                let text = [a, b, c].join(&".".repeat(dots.max(1)));
                let _ = decode(&text);
            }

            #[test]
            fn any_change_to_a_signed_token_breaks_it(pos in 0usize..400, byte in any::<u8>(), alg in 0usize..3) {
                let key = Material::generate([Alg::Es256, Alg::EdDsa, Alg::Hs256][alg], 0).unwrap();
                let claims = serde_json::json!({"role":"anon","exp":4_000_000_000_u64}).as_object().unwrap().clone();
                let token = sign(&key, Some("k"), &claims).unwrap();
                let mut bytes = token.clone().into_bytes();
                let i = pos % bytes.len();
                prop_assume!(bytes[i] != byte);
                bytes[i] = byte;
                let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
                if let Ok(d) = decode(&text) {
                    // Base64 has slack bits: only a change that survives decoding unchanged may pass.
                    let same = d.signing_input == &token[..d.signing_input.len()] && d.signature == decode(&token).unwrap().signature;
                    prop_assert!(same || !d.verifies_with(&key.public()));
                }
            }
        }
    }
}
