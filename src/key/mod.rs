//! Key material: generation, PEM import and export, and the raw sign/verify primitives.
//!
//! This module holds the only values in keyctl that are secret. It never formats them into
//! text except where asked to export them (PEM here, JWK in `jwk`), its types print as
//! `[redacted]` under `Debug`, and its errors say what is wrong with a key, never what is in it.

mod ec;

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::pkcs8::KeypairBytes;
use hmac::{KeyInit, Mac};
use pkcs8::der::{Decode, Encode, asn1::ObjectIdentifier, pem};
use pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use signature::{Signer, Verifier};

pub use ec::EcKey;
use zeroize::Zeroizing;

/// The smallest RSA modulus keyctl generates or accepts.
pub const RSA_MIN_BITS: usize = 2048;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");

/// A JWS algorithm that Supabase Auth can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// ECDSA on P-256 with SHA-256: the default, verified by every Supabase service.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// Ed25519. Edge Functions and supabase-js cannot verify it.
    EdDsa,
    /// HMAC with SHA-256: the legacy shared secret, or a new symmetric key.
    Hs256,
}

impl Alg {
    /// Every algorithm, in the order they are offered.
    pub const ALL: [Alg; 4] = [Alg::Es256, Alg::Rs256, Alg::EdDsa, Alg::Hs256];

    /// The JOSE name (`"ES256"`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
        }
    }

    /// The JWK `kty` that carries keys of this algorithm.
    #[must_use]
    pub fn kty(self) -> &'static str {
        match self {
            Alg::Es256 => "EC",
            Alg::Rs256 => "RSA",
            Alg::EdDsa => "OKP",
            Alg::Hs256 => "oct",
        }
    }

    /// Whether the public half can be published (everything but HMAC).
    #[must_use]
    pub fn is_asymmetric(self) -> bool {
        self != Alg::Hs256
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Alg::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown algorithm {s:?} (expected ES256, RS256, EdDSA or HS256)")
            })
    }
}

/// A key, private or public, of one of the four supported kinds.
#[derive(Clone)]
pub enum Material {
    /// P-256 private key.
    EcPrivate(EcKey),
    /// P-256 public key.
    EcPublic(p256::ecdsa::VerifyingKey),
    /// RSA private key (CRT values precomputed).
    RsaPrivate(Box<rsa::PrivateKey>),
    /// RSA public key.
    RsaPublic(Box<rsa::PublicKey>),
    /// Ed25519 private key.
    EdPrivate(Box<ed25519_dalek::SigningKey>),
    /// Ed25519 public key.
    EdPublic(ed25519_dalek::VerifyingKey),
    /// HMAC secret: the raw bytes of the key (for the legacy key, the UTF-8 bytes of `JWT_SECRET`).
    Oct(Zeroizing<Vec<u8>>),
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Material({}, {}, [redacted])",
            self.alg(),
            if self.is_private() {
                "private"
            } else {
                "public"
            }
        )
    }
}

/// Why a key could not be loaded or used. Never holds key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

fn err(msg: impl Into<String>) -> KeyError {
    KeyError(msg.into())
}

impl Material {
    /// Generates a fresh key. `rsa_bits` is used only for RS256.
    ///
    /// # Errors
    /// An RSA size under [`RSA_MIN_BITS`] or not a multiple of 8.
    pub fn generate(alg: Alg, rsa_bits: usize) -> Result<Material, KeyError> {
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        Ok(match alg {
            Alg::Es256 => Material::EcPrivate(EcKey::generate()?),
            Alg::EdDsa => {
                Material::EdPrivate(Box::new(ed25519_dalek::SigningKey::generate(&mut rng)))
            }
            Alg::Rs256 => {
                check_rsa_bits(rsa_bits)?;
                let key = rsa::PrivateKey::new(&mut getrandom::SysRng, rsa_bits)
                    .map_err(|e| err(format!("RSA key generation failed: {e}")))?;
                Material::RsaPrivate(Box::new(key))
            }
            Alg::Hs256 => {
                let mut bytes = Zeroizing::new(vec![0u8; 32]);
                getrandom::fill(&mut bytes).map_err(|e| err(format!("no randomness: {e}")))?;
                Material::Oct(bytes)
            }
        })
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn alg(&self) -> Alg {
        match self {
            Material::EcPrivate(_) | Material::EcPublic(_) => Alg::Es256,
            Material::RsaPrivate(_) | Material::RsaPublic(_) => Alg::Rs256,
            Material::EdPrivate(_) | Material::EdPublic(_) => Alg::EdDsa,
            Material::Oct(_) => Alg::Hs256,
        }
    }

    /// Whether this value can sign (HMAC secrets always can).
    #[must_use]
    pub fn is_private(&self) -> bool {
        matches!(
            self,
            Material::EcPrivate(_)
                | Material::RsaPrivate(_)
                | Material::EdPrivate(_)
                | Material::Oct(_)
        )
    }

    /// The public half (an HMAC secret is its own "public" half: it is needed to verify).
    #[must_use]
    pub fn public(&self) -> Material {
        match self {
            Material::EcPrivate(k) => Material::EcPublic(*k.verifying_key()),
            Material::RsaPrivate(k) => Material::RsaPublic(Box::new(k.to_public_key())),
            Material::EdPrivate(k) => Material::EdPublic(k.verifying_key()),
            other => other.clone(),
        }
    }

    /// RSA modulus size in bits, for RSA keys.
    #[must_use]
    pub fn rsa_bits(&self) -> Option<usize> {
        match self {
            Material::RsaPrivate(k) => Some(k.size() * 8),
            Material::RsaPublic(k) => Some(k.size() * 8),
            _ => None,
        }
    }

    /// Signs `message` (the JWS signing input) and returns the JWS signature bytes:
    /// ES256 as the 64-byte `r‖s`, RS256 PKCS#1 v1.5, EdDSA, HS256.
    ///
    /// # Errors
    /// A public key cannot sign.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self {
            Material::EcPrivate(k) => {
                let sig: p256::ecdsa::Signature = k.signing_key().sign(message);
                Ok(sig.to_bytes().to_vec())
            }
            Material::RsaPrivate(k) => {
                let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(k.as_ref().clone());
                let sig: rsa::pkcs1v15::Signature = signer.sign(message);
                Ok(Box::<[u8]>::from(sig).into_vec())
            }
            Material::EdPrivate(k) => Ok(k.sign(message).to_bytes().to_vec()),
            Material::Oct(secret) => Ok(hmac_sha256(secret, message)),
            _ => Err(err("a public key cannot sign")),
        }
    }

    /// Checks a JWS signature over `message` with this key's algorithm, on the pure-Rust
    /// crates. This is the reference: `jws` and the verifier check through
    /// `verifykey::VerifyKey` (AWS-LC), whose verdicts are tested to be these.
    #[must_use]
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self.public() {
            Material::EcPublic(k) => {
                p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(message, &s).is_ok())
            }
            Material::RsaPublic(k) => {
                let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(*k);
                rsa::pkcs1v15::Signature::try_from(sig)
                    .is_ok_and(|s| verifier.verify(message, &s).is_ok())
            }
            Material::EdPublic(k) => ed25519_dalek::Signature::from_slice(sig)
                .is_ok_and(|s| k.verify_strict(message, &s).is_ok()),
            Material::Oct(secret) => {
                let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&secret)
                    .expect("HMAC accepts any key length");
                mac.update(message);
                mac.verify_slice(sig).is_ok()
            }
            Material::EcPrivate(_) | Material::RsaPrivate(_) | Material::EdPrivate(_) => {
                unreachable!("public() returns public material")
            }
        }
    }

    /// PKCS#8 private key PEM (Ed25519 as PKCS#8 v1, which OpenSSL 3.0, node 20 and Python
    /// cryptography all read), or `None` for a public key.
    ///
    /// # Errors
    /// HMAC secrets have no PEM form.
    pub fn private_pem(&self) -> Result<Option<Zeroizing<String>>, KeyError> {
        let pem = match self {
            Material::EcPrivate(k) => k.signing_key().to_pkcs8_pem(LineEnding::LF),
            Material::RsaPrivate(k) => k.to_pkcs8_pem(LineEnding::LF),
            Material::EdPrivate(k) => KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_pem(LineEnding::LF),
            Material::Oct(_) => return Err(err("an HS256 secret has no PEM form")),
            _ => return Ok(None),
        };
        pem.map(Some)
            .map_err(|e| err(format!("PKCS#8 encoding failed: {e}")))
    }

    /// SPKI public key PEM.
    ///
    /// # Errors
    /// HMAC secrets have no PEM form.
    pub fn public_pem(&self) -> Result<String, KeyError> {
        let pem = match self.public() {
            Material::EcPublic(k) => k.to_public_key_pem(LineEnding::LF),
            Material::RsaPublic(k) => k.to_public_key_pem(LineEnding::LF),
            Material::EdPublic(k) => k.to_public_key_pem(LineEnding::LF),
            _ => return Err(err("an HS256 secret has no PEM form")),
        };
        pem.map_err(|e| err(format!("SPKI encoding failed: {e}")))
    }

    /// Reads a PEM key: PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`), PKCS#1
    /// (`RSA PRIVATE KEY`, `RSA PUBLIC KEY`) or SPKI (`PUBLIC KEY`).
    ///
    /// # Errors
    /// Not PEM, encrypted, an unsupported curve or algorithm, RSA under 2048 bits, or a
    /// malformed key. The message never contains key bytes.
    pub fn from_pem(text: &str) -> Result<Material, KeyError> {
        if text.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(err(
                "the PEM is encrypted; decrypt it first (openssl pkey -in FILE -out PLAIN.pem)",
            ));
        }
        let start = text
            .find("-----BEGIN ")
            .ok_or_else(|| err("not a PEM file (no -----BEGIN line)"))?;
        let (label, der) = pem::decode_vec(text[start..].trim_end().as_bytes())
            .map_err(|e| err(format!("malformed PEM: {e}")))?;
        let der = Zeroizing::new(der);
        let material = match label {
            "PRIVATE KEY" => from_pkcs8(&der)?,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(err(
                    "the PEM is an encrypted PKCS#8 key; decrypt it first (openssl pkey -in FILE -out PLAIN.pem)",
                ));
            }
            "EC PRIVATE KEY" => from_sec1(&der)?,
            "RSA PRIVATE KEY" => Material::RsaPrivate(Box::new(
                rsa::PrivateKey::from_pkcs1_der(&der)
                    .map_err(|e| err(format!("malformed PKCS#1 RSA private key: {e}")))?,
            )),
            "PUBLIC KEY" => from_spki(&der)?,
            "RSA PUBLIC KEY" => Material::RsaPublic(Box::new(
                rsa::PublicKey::from_pkcs1_der(&der)
                    .map_err(|e| err(format!("malformed PKCS#1 RSA public key: {e}")))?,
            )),
            other => return Err(err(format!("unsupported PEM type {other:?}"))),
        };
        if let Some(bits) = material.rsa_bits() {
            check_rsa_bits(bits)?;
        }
        Ok(material)
    }
}

/// Refuses RSA moduli under [`RSA_MIN_BITS`] or of a size that is not a multiple of 8.
///
/// # Errors
/// The size is too small or odd.
pub fn check_rsa_bits(bits: usize) -> Result<(), KeyError> {
    if bits < RSA_MIN_BITS {
        return Err(err(format!(
            "RSA-{bits} is too weak: keyctl requires at least {RSA_MIN_BITS} bits"
        )));
    }
    if !bits.is_multiple_of(8) || bits > 16384 {
        return Err(err(format!("RSA-{bits} is not a supported key size")));
    }
    Ok(())
}

/// HMAC-SHA-256 of `message` under `key`.
#[must_use]
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn curve_name(oid: ObjectIdentifier) -> String {
    match oid {
        OID_P384 => "P-384".into(),
        OID_P521 => "P-521".into(),
        OID_SECP256K1 => "secp256k1".into(),
        other => format!("curve {other}"),
    }
}

fn unsupported_curve(oid: ObjectIdentifier) -> KeyError {
    err(format!(
        "{} keys are not supported: Supabase signs ES256, which is P-256 only",
        curve_name(oid)
    ))
}

fn unsupported_alg(oid: ObjectIdentifier) -> KeyError {
    if oid == OID_ED448 {
        return err("Ed448 keys are not supported: EdDSA here means Ed25519");
    }
    err(format!(
        "unsupported key algorithm {oid} (expected P-256, RSA or Ed25519)"
    ))
}

fn from_pkcs8(der: &[u8]) -> Result<Material, KeyError> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der)
        .map_err(|e| err(format!("malformed PKCS#8 private key: {e}")))?;
    let (oid, params) = info
        .algorithm
        .oids()
        .map_err(|e| err(format!("malformed PKCS#8 algorithm: {e}")))?;
    match oid {
        OID_EC_PUBLIC_KEY => match params {
            Some(OID_P256) => Ok(Material::EcPrivate(EcKey::from_signing_key(
                &p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map_err(|e| err(format!("malformed P-256 private key: {e}")))?,
            ))),
            Some(curve) => Err(unsupported_curve(curve)),
            None => Err(err("EC private key without a named curve")),
        },
        OID_RSA => Ok(Material::RsaPrivate(Box::new(
            rsa::PrivateKey::from_pkcs8_der(der)
                .map_err(|e| err(format!("malformed RSA private key: {e}")))?,
        ))),
        OID_ED25519 => {
            let pair = KeypairBytes::from_pkcs8_der(der)
                .map_err(|e| err(format!("malformed Ed25519 private key: {e}")))?;
            let key = ed25519_dalek::SigningKey::from_bytes(&pair.secret_key);
            if let Some(public) = &pair.public_key
                && public.to_bytes() != key.verifying_key().to_bytes()
            {
                return Err(err(
                    "the Ed25519 public key in the PEM does not match its private key",
                ));
            }
            Ok(Material::EdPrivate(Box::new(key)))
        }
        other => Err(unsupported_alg(other)),
    }
}

fn from_sec1(der: &[u8]) -> Result<Material, KeyError> {
    let parsed = sec1::EcPrivateKey::from_der(der)
        .map_err(|e| err(format!("malformed SEC1 EC private key: {e}")))?;
    match parsed.parameters.and_then(sec1::EcParameters::named_curve) {
        Some(OID_P256) | None => {}
        Some(curve) => return Err(unsupported_curve(curve)),
    }
    let key = p256::ecdsa::SigningKey::from_slice(parsed.private_key)
        .map_err(|_| err("malformed P-256 private key (scalar out of range)"))?;
    if let Some(public) = parsed.public_key
        && *public != *key.verifying_key().to_sec1_bytes()
    {
        return Err(err(
            "the EC public key in the PEM does not match its private key",
        ));
    }
    Ok(Material::EcPrivate(EcKey::from_signing_key(&key)))
}

fn from_spki(der: &[u8]) -> Result<Material, KeyError> {
    use pkcs8::DecodePublicKey;
    let info = spki::SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|e| err(format!("malformed public key: {e}")))?;
    let (oid, params) = info
        .algorithm
        .oids()
        .map_err(|e| err(format!("malformed public key algorithm: {e}")))?;
    match oid {
        OID_EC_PUBLIC_KEY => match params {
            Some(OID_P256) => Ok(Material::EcPublic(
                p256::ecdsa::VerifyingKey::from_public_key_der(der)
                    .map_err(|e| err(format!("malformed P-256 public key: {e}")))?,
            )),
            Some(curve) => Err(unsupported_curve(curve)),
            None => Err(err("EC public key without a named curve")),
        },
        OID_RSA => Ok(Material::RsaPublic(Box::new(
            rsa::PublicKey::from_public_key_der(der)
                .map_err(|e| err(format!("malformed RSA public key: {e}")))?,
        ))),
        OID_ED25519 => Ok(Material::EdPublic(
            ed25519_dalek::VerifyingKey::from_public_key_der(der)
                .map_err(|e| err(format!("malformed Ed25519 public key: {e}")))?,
        )),
        other => Err(unsupported_alg(other)),
    }
}

/// DER of the SPKI of a public key, used to compare two keys' public halves.
#[must_use]
pub fn public_der(m: &Material) -> Option<Vec<u8>> {
    let doc = match m.public() {
        Material::EcPublic(k) => k.to_public_key_der().ok()?,
        Material::RsaPublic(k) => k.to_public_key_der().ok()?,
        Material::EdPublic(k) => k.to_public_key_der().ok()?,
        _ => return None,
    };
    doc.to_der().ok()
}

/// A random (version 4) UUID.
///
/// # Errors
/// The system has no randomness.
pub fn new_uuid() -> crate::error::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| crate::error::Error::Io {
        path: "getrandom".into(),
        message: e.to_string(),
    })?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alg_signs_and_verifies_and_rejects_tampering() {
        for alg in Alg::ALL {
            let key = Material::generate(alg, 2048).unwrap();
            let sig = key.sign(b"header.payload").unwrap();
            assert!(key.public().verify(b"header.payload", &sig), "{alg}");
            assert!(!key.public().verify(b"header.payload2", &sig), "{alg}");
        }
    }

    #[test]
    fn pem_round_trip_keeps_the_key() {
        for alg in [Alg::Es256, Alg::Rs256, Alg::EdDsa] {
            let key = Material::generate(alg, 2048).unwrap();
            let private = key.private_pem().unwrap().unwrap();
            let back = Material::from_pem(&private).unwrap();
            assert_eq!(public_der(&back), public_der(&key));
            let public = Material::from_pem(&key.public_pem().unwrap()).unwrap();
            assert!(!public.is_private());
            assert_eq!(public_der(&public), public_der(&key));
        }
    }

    #[test]
    fn ed25519_pem_is_pkcs8_v1() {
        let key = Material::generate(Alg::EdDsa, 0).unwrap();
        let pem = key.private_pem().unwrap().unwrap();
        let (_, der) = pem::decode_vec(pem.as_bytes()).unwrap();
        // SEQUENCE { INTEGER 0 (v1), … }: a v2 document would carry version 1.
        assert_eq!(&der[2..5], &[0x02, 0x01, 0x00]);
        assert_eq!(
            der.len(),
            48,
            "v1 Ed25519 PKCS#8 is 48 bytes, like openssl genpkey"
        );
    }

    #[test]
    fn debug_never_shows_material() {
        let key = Material::Oct(Zeroizing::new(b"super-secret-value".to_vec()));
        assert!(!format!("{key:?}").contains("super"));
    }

    #[test]
    fn garbage_and_encrypted_pem_are_refused_without_echoing() {
        let e = Material::from_pem("hello").unwrap_err();
        assert!(e.0.contains("not a PEM"));
        // Built from parts: a header with no key inside, not a key.
        let label = ["ENCRYPTED", "PRIVATE", "KEY"].join(" ");
        let enc = format!("-----BEGIN {label}-----\nMIIB\n-----END {label}-----\n");
        let enc = enc.as_str();
        assert!(Material::from_pem(enc).unwrap_err().0.contains("encrypted"));
    }

    #[test]
    fn rsa_bits_policy() {
        assert!(check_rsa_bits(1024).is_err());
        assert!(check_rsa_bits(2048).is_ok());
        assert!(check_rsa_bits(2049).is_err());
    }
}
