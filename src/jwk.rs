//! JSON Web Keys (RFC 7517/7518/8037): reading a JWK into [`Material`] and writing one back.
//!
//! Reading is strict where Supabase Auth is strict (EC fields exactly 32 bytes, P-256 only,
//! unpadded base64url) and checks that private members belong to the public ones. Writing
//! always produces the shape Auth reads: `kty`, key members, `kid`, `alg`, `use`, `key_ops`,
//! `ext`, in that order. Error messages name members, never their values.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::b64;
use crate::key::{EcKey, KeyError, Material, check_rsa_bits};
use pkcs8::der::{Decode, Encode};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;

/// JWK members that hold private key material (RFC 7518 §6).
pub const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// A JWK as found in a set: its material plus the members keyctl reasons about.
#[derive(Debug, Clone)]
pub struct Jwk {
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `alg` exactly as written, if present.
    pub alg: Option<String>,
    /// `key_ops` as written, if present and an array of strings.
    pub key_ops: Option<Vec<String>>,
    /// The key itself.
    pub material: Material,
}

impl Jwk {
    /// Reads a JWK object.
    ///
    /// # Errors
    /// A missing or malformed member, an unsupported curve, a private part that does not
    /// belong to the public part.
    pub fn from_json(value: &Value) -> Result<Jwk, KeyError> {
        let obj = value
            .as_object()
            .ok_or_else(|| KeyError("a JWK must be a JSON object".into()))?;
        let kid = match obj.get("kid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(KeyError("\"kid\" must be a string".into())),
        };
        let alg = match obj.get("alg") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(KeyError("\"alg\" must be a string".into())),
        };
        let key_ops = match obj.get("key_ops") {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| KeyError("\"key_ops\" must be an array of strings".into()))?,
            ),
            Some(_) => return Err(KeyError("\"key_ops\" must be an array".into())),
        };
        let material = material_from_json(obj)?;
        Ok(Jwk {
            kid,
            alg,
            key_ops,
            material,
        })
    }

    /// Whether `key_ops` lists `"sign"`.
    #[must_use]
    pub fn can_sign(&self) -> bool {
        self.key_ops
            .as_ref()
            .is_some_and(|ops| ops.iter().any(|o| o == "sign"))
    }
}

/// The private JWK in the shape Auth reads. `signing` selects `["sign","verify"]` over
/// `["verify"]`. A kid-less HMAC key (the legacy secret) is written without `use`/`ext`,
/// exactly `{"kty":"oct","k":…,"alg":"HS256","key_ops":[…]}`.
#[must_use]
pub fn private_json(material: &Material, kid: Option<&str>, signing: bool) -> Value {
    let mut obj = members(material, true);
    finish(&mut obj, material, kid, ops(signing));
    Value::Object(obj)
}

/// The public JWK: public members only, `key_ops: ["verify"]`.
#[must_use]
pub fn public_json(material: &Material, kid: Option<&str>) -> Value {
    let mut obj = members(material, false);
    finish(&mut obj, material, kid, ops(false));
    Value::Object(obj)
}

fn ops(signing: bool) -> Value {
    if signing {
        json!(["sign", "verify"])
    } else {
        json!(["verify"])
    }
}

fn finish(obj: &mut Map<String, Value>, material: &Material, kid: Option<&str>, ops: Value) {
    if let Some(kid) = kid {
        obj.insert("kid".into(), Value::String(kid.into()));
    }
    obj.insert("alg".into(), Value::String(material.alg().as_str().into()));
    let legacy_oct = matches!(material, Material::Oct(_)) && kid.is_none();
    if !legacy_oct {
        obj.insert("use".into(), Value::String("sig".into()));
    }
    obj.insert("key_ops".into(), ops);
    if !legacy_oct {
        obj.insert("ext".into(), Value::Bool(true));
    }
}

fn put(obj: &mut Map<String, Value>, name: &str, bytes: &[u8]) {
    obj.insert(name.into(), Value::String(b64::encode(bytes)));
}

/// The key members (`kty`, `crv`, coordinates, …) of `material`, private ones when asked
/// and present.
fn members(material: &Material, private: bool) -> Map<String, Value> {
    let mut obj = Map::new();
    match material {
        Material::EcPrivate(_) | Material::EcPublic(_) => {
            let public = match material.public() {
                Material::EcPublic(k) => k,
                _ => unreachable!(),
            };
            let point = public.to_sec1_point(false);
            let bytes = point.as_bytes();
            obj.insert("kty".into(), "EC".into());
            obj.insert("crv".into(), "P-256".into());
            put(&mut obj, "x", &bytes[1..33]);
            put(&mut obj, "y", &bytes[33..65]);
            if let (true, Material::EcPrivate(k)) = (private, material) {
                put(&mut obj, "d", &k.to_bytes());
            }
        }
        Material::RsaPrivate(k) if private => {
            obj.insert("kty".into(), "RSA".into());
            let der = k.to_pkcs1_der().expect("an RSA key encodes as PKCS#1");
            let parts = rsa::pkcs1::RsaPrivateKey::<pkcs8::der::asn1::UintRef<'_>>::from_der(
                der.as_bytes(),
            )
            .expect("PKCS#1 that rsa wrote reads back");
            put(&mut obj, "n", parts.modulus.as_bytes());
            put(&mut obj, "e", parts.public_exponent.as_bytes());
            put(&mut obj, "d", parts.private_exponent.as_bytes());
            put(&mut obj, "p", parts.prime1.as_bytes());
            put(&mut obj, "q", parts.prime2.as_bytes());
            put(&mut obj, "dp", parts.exponent1.as_bytes());
            put(&mut obj, "dq", parts.exponent2.as_bytes());
            put(&mut obj, "qi", parts.coefficient.as_bytes());
        }
        Material::RsaPrivate(_) | Material::RsaPublic(_) => {
            let Material::RsaPublic(k) = material.public() else {
                unreachable!()
            };
            obj.insert("kty".into(), "RSA".into());
            put(&mut obj, "n", &k.n_bytes());
            put(&mut obj, "e", &k.e_bytes());
        }
        Material::EdPrivate(_) | Material::EdPublic(_) => {
            let Material::EdPublic(public) = material.public() else {
                unreachable!()
            };
            obj.insert("kty".into(), "OKP".into());
            obj.insert("crv".into(), "Ed25519".into());
            put(&mut obj, "x", public.as_bytes());
            if let (true, Material::EdPrivate(k)) = (private, material) {
                put(&mut obj, "d", &Zeroizing::new(k.to_bytes().to_vec()));
            }
        }
        Material::Oct(secret) => {
            obj.insert("kty".into(), "oct".into());
            put(&mut obj, "k", secret);
        }
    }
    obj
}

/// RFC 7638 JWK thumbprint: base64url(SHA-256) of the required public members in
/// lexicographic order, without whitespace.
#[must_use]
pub fn thumbprint(material: &Material) -> String {
    let m = members(material, false);
    let names: &[&str] = match material.alg().kty() {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => &["k", "kty"],
    };
    let mut canonical = Map::new();
    for name in names {
        canonical.insert((*name).to_owned(), m[*name].clone());
    }
    let text = Value::Object(canonical).to_string();
    b64::encode(&Sha256::digest(text.as_bytes()))
}

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, KeyError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(KeyError(format!("\"{name}\" must be a string"))),
    }
}

fn bytes(obj: &Map<String, Value>, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeyError> {
    field(obj, name)?
        .map(|s| {
            b64::decode(s)
                .map(Zeroizing::new)
                .ok_or_else(|| KeyError(format!("\"{name}\" is not unpadded base64url")))
        })
        .transpose()
}

fn required(
    obj: &Map<String, Value>,
    name: &str,
    kty: &str,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    bytes(obj, name)?.ok_or_else(|| KeyError(format!("{kty} key without \"{name}\"")))
}

fn exact32(name: &str, v: &[u8]) -> Result<(), KeyError> {
    if v.len() == 32 {
        Ok(())
    } else {
        Err(KeyError(format!(
            "invalid \"{name}\" length ({}): must be exactly 32 bytes",
            v.len()
        )))
    }
}

fn material_from_json(obj: &Map<String, Value>) -> Result<Material, KeyError> {
    let kty = field(obj, "kty")?.ok_or_else(|| KeyError("JWK without \"kty\"".into()))?;
    match kty {
        "EC" => ec_from_json(obj),
        "RSA" => rsa_from_json(obj),
        "OKP" => okp_from_json(obj),
        "oct" => {
            let k = required(obj, "k", "oct")?;
            if k.is_empty() {
                return Err(KeyError("oct key with an empty \"k\"".into()));
            }
            Ok(Material::Oct(k))
        }
        other => Err(KeyError(format!(
            "unsupported kty {other:?} (expected EC, RSA, OKP or oct)"
        ))),
    }
}

fn ec_from_json(obj: &Map<String, Value>) -> Result<Material, KeyError> {
    match field(obj, "crv")? {
        Some("P-256") => {}
        Some(other) => {
            return Err(KeyError(format!(
                "EC curve {other:?} is not supported: Supabase signs ES256, which is P-256 only"
            )));
        }
        None => return Err(KeyError("EC key without \"crv\"".into())),
    }
    let x = required(obj, "x", "EC")?;
    let y = required(obj, "y", "EC")?;
    exact32("x", &x)?;
    exact32("y", &y)?;
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(4);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| KeyError("the EC point (x, y) is not on the P-256 curve".into()))?;
    match bytes(obj, "d")? {
        None => Ok(Material::EcPublic(public)),
        Some(d) => {
            exact32("d", &d)?;
            Ok(Material::EcPrivate(EcKey::from_parts(&d, public)?))
        }
    }
}

fn okp_from_json(obj: &Map<String, Value>) -> Result<Material, KeyError> {
    match field(obj, "crv")? {
        Some("Ed25519") => {}
        Some(other) => {
            return Err(KeyError(format!(
                "OKP curve {other:?} is not supported (EdDSA here means Ed25519)"
            )));
        }
        None => return Err(KeyError("OKP key without \"crv\"".into())),
    }
    let x = required(obj, "x", "OKP")?;
    exact32("x", &x)?;
    let x: [u8; 32] = x.as_slice().try_into().expect("length checked");
    let public = ed25519_dalek::VerifyingKey::from_bytes(&x)
        .map_err(|_| KeyError("\"x\" is not a valid Ed25519 public key".into()))?;
    match bytes(obj, "d")? {
        None => Ok(Material::EdPublic(public)),
        Some(d) => {
            exact32("d", &d)?;
            let d: Zeroizing<[u8; 32]> =
                Zeroizing::new(d.as_slice().try_into().expect("length checked"));
            let key = ed25519_dalek::SigningKey::from_bytes(&d);
            if key.verifying_key() != public {
                return Err(KeyError("\"d\" does not match the public key \"x\"".into()));
            }
            Ok(Material::EdPrivate(Box::new(key)))
        }
    }
}

fn uint(bytes: &[u8]) -> &[u8] {
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    &bytes[first..]
}

fn rsa_from_json(obj: &Map<String, Value>) -> Result<Material, KeyError> {
    use pkcs8::der::asn1::UintRef;
    let n = required(obj, "n", "RSA")?;
    let e = required(obj, "e", "RSA")?;
    let public = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
    )
    .map_err(|err| KeyError(format!("invalid RSA public key: {err}")))?;
    check_rsa_bits(public.size() * 8)?;
    let Some(d) = bytes(obj, "d")? else {
        return Ok(Material::RsaPublic(Box::new(public)));
    };
    let names = ["p", "q", "dp", "dq", "qi"];
    let mut parts = Vec::new();
    for name in names {
        parts.push(bytes(obj, name)?.ok_or_else(|| {
            KeyError(format!(
                "RSA private key without \"{name}\" (keyctl needs all of p, q, dp, dq, qi)"
            ))
        })?);
    }
    let bad = |_| KeyError("malformed RSA integer".to_owned());
    let doc = rsa::pkcs1::RsaPrivateKey {
        modulus: UintRef::new(uint(&n)).map_err(bad)?,
        public_exponent: UintRef::new(uint(&e)).map_err(bad)?,
        private_exponent: UintRef::new(uint(&d)).map_err(bad)?,
        prime1: UintRef::new(uint(&parts[0])).map_err(bad)?,
        prime2: UintRef::new(uint(&parts[1])).map_err(bad)?,
        exponent1: UintRef::new(uint(&parts[2])).map_err(bad)?,
        exponent2: UintRef::new(uint(&parts[3])).map_err(bad)?,
        coefficient: UintRef::new(uint(&parts[4])).map_err(bad)?,
        other_prime_infos: None,
    };
    let der = Zeroizing::new(
        doc.to_der()
            .map_err(|_| KeyError("malformed RSA private key".into()))?,
    );
    let key = rsa::PrivateKey::from_pkcs1_der(&der).map_err(|_| {
        KeyError("the RSA private members do not form a valid key with n and e".into())
    })?;
    let material = Material::RsaPrivate(Box::new(key));
    // The decoder recomputes the CRT values; a JWK whose dp/dq/qi disagree would make other
    // libraries sign with garbage, so compare every member with what the key implies.
    let written = members(&material, true);
    for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
        let ours = b64::decode(written[name].as_str().unwrap_or_default()).unwrap_or_default();
        let theirs = bytes(obj, name)?.unwrap_or_default();
        if uint(&ours) != uint(&theirs) {
            return Err(KeyError(format!(
                "RSA member \"{name}\" is inconsistent with the rest of the key"
            )));
        }
    }
    Ok(material)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Alg;

    #[test]
    fn private_jwk_round_trips_for_every_alg() {
        for alg in Alg::ALL {
            let m = Material::generate(alg, 2048).unwrap();
            let v = private_json(&m, Some("k1"), true);
            let back = Jwk::from_json(&v).unwrap();
            assert_eq!(back.kid.as_deref(), Some("k1"));
            assert!(back.can_sign());
            assert_eq!(private_json(&back.material, Some("k1"), true), v, "{alg}");
        }
    }

    #[test]
    fn public_jwk_has_no_private_members() {
        for alg in [Alg::Es256, Alg::Rs256, Alg::EdDsa] {
            let m = Material::generate(alg, 2048).unwrap();
            let v = public_json(&m, Some("k"));
            for name in PRIVATE_MEMBERS {
                assert!(v.get(name).is_none(), "{alg} {name}");
            }
            assert_eq!(v["key_ops"], json!(["verify"]));
        }
    }

    #[test]
    fn member_order_is_the_one_auth_documents() {
        let m = Material::generate(Alg::Es256, 0).unwrap();
        let v = private_json(&m, Some("k"), true);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "kty", "crv", "x", "y", "d", "kid", "alg", "use", "key_ops", "ext"
            ]
        );
    }

    #[test]
    fn legacy_oct_shape() {
        let m = Material::Oct(Zeroizing::new(b"secret".to_vec()));
        let v = private_json(&m, None, true);
        assert_eq!(
            v.to_string(),
            r#"{"kty":"oct","k":"c2VjcmV0","alg":"HS256","key_ops":["sign","verify"]}"#
        );
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1: the RSA key whose thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let m = Jwk::from_json(&json!({"kty":"RSA","n":n,"e":"AQAB"}))
            .unwrap()
            .material;
        assert_eq!(
            thumbprint(&m),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn short_ec_coordinate_is_named() {
        let m = Material::generate(Alg::Es256, 0).unwrap();
        let mut v = public_json(&m, Some("k"));
        v["x"] = Value::String(b64::encode(&[1u8; 31]));
        let e = Jwk::from_json(&v).unwrap_err();
        assert!(e.0.contains("invalid \"x\" length (31)"), "{e}");
    }

    #[test]
    fn mismatched_private_part_is_refused() {
        for alg in [Alg::Es256, Alg::EdDsa, Alg::Rs256] {
            let a = private_json(&Material::generate(alg, 2048).unwrap(), Some("a"), true);
            let b = private_json(&Material::generate(alg, 2048).unwrap(), Some("b"), true);
            let mut mixed = a.clone();
            mixed["d"] = b["d"].clone();
            assert!(Jwk::from_json(&mixed).is_err(), "{alg}");
        }
    }

    #[test]
    fn p384_jwk_is_refused_by_name() {
        let e = Jwk::from_json(&json!({"kty":"EC","crv":"P-384","x":"AA","y":"AA"})).unwrap_err();
        assert!(e.0.contains("P-384"));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn material() -> impl Strategy<Value = Material> {
            prop_oneof![
                any::<[u8; 32]>().prop_filter_map("P-256 scalar in range", |b| {
                    p256::ecdsa::SigningKey::from_slice(&b)
                        .ok()
                        .map(|k| Material::EcPrivate(EcKey::from_signing_key(&k)))
                }),
                any::<[u8; 32]>().prop_map(|b| Material::EdPrivate(Box::new(
                    ed25519_dalek::SigningKey::from_bytes(&b)
                ))),
                prop::collection::vec(any::<u8>(), 1..64)
                    .prop_map(|b| Material::Oct(Zeroizing::new(b))),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]

            #[test]
            fn private_and_public_jwks_round_trip(m in material(), kid in prop::option::of("[a-z0-9-]{1,36}"), signing in any::<bool>()) {
                let v = private_json(&m, kid.as_deref(), signing);
                let back = Jwk::from_json(&v).map_err(|e| TestCaseError::fail(e.0))?;
                prop_assert_eq!(private_json(&back.material, back.kid.as_deref(), back.can_sign()), v.clone());
                prop_assert_eq!(back.can_sign(), signing);
                let public = public_json(&m, kid.as_deref());
                let pb = Jwk::from_json(&public).map_err(|e| TestCaseError::fail(e.0))?;
                prop_assert_eq!(public_json(&pb.material, pb.kid.as_deref()), public);
                prop_assert_eq!(thumbprint(&pb.material), thumbprint(&m));
            }
        }
    }
}
