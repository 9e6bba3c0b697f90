//! Public keys prepared once for many signature checks: the verification path of `jws` and of
//! the verifier, on AWS-LC's assembly (aws-lc-rs; docs/DESIGN.md says why).
//!
//! A key is parsed once ([`VerifyKey::new`]) and then checks any number of signatures. Its
//! verdicts are exactly those of the pure-Rust reference, [`Material::verify`]: a key AWS-LC
//! would judge differently stays on the reference (an RSA modulus outside 2048–8192 bits or a
//! key AWS-LC refuses to parse; an Ed25519 key of small order or not canonically encoded), and
//! the Ed25519 signatures AWS-LC accepts where `verify_strict` does not (R of small order) are
//! refused before AWS-LC sees them. This module never signs and never formats key bytes.

use std::fmt;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self as lc, ParsedPublicKey};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use crate::key::{Alg, Material};

/// The RSA moduli AWS-LC verifies PKCS#1 v1.5 SHA-256 signatures under (`RSA_PKCS1_2048_8192_SHA256`).
const LC_RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// The canonical encodings of the eight Ed25519 points of small order (the identity, the
/// point of order 2, two of order 4, four of order 8). `verify_strict` refuses a signature
/// whose R is one of them; AWS-LC compares R's bytes with the point it computes, which is
/// always canonical, so a non-canonical encoding never passes either.
const ED25519_SMALL_ORDER: [[u8; 32]; 8] = [
    hex32("0100000000000000000000000000000000000000000000000000000000000000"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("0000000000000000000000000000000000000000000000000000000000000080"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
];

/// 2^255 - 19, little-endian: an Ed25519 `y` at or above it is not canonically encoded.
const ED25519_P: [u8; 32] =
    hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");

const fn hex32(h: &str) -> [u8; 32] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        }
    }
    let h = h.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = digit(h[2 * i]) << 4 | digit(h[2 * i + 1]);
        i += 1;
    }
    out
}

/// Whether a public key's `y` (its encoding without the sign bit) is below the field prime.
fn ed25519_canonical(bytes: &[u8; 32]) -> bool {
    let mut y = *bytes;
    y[31] &= 0x7f;
    // Compare little-endian numbers from the most significant byte down.
    y.iter().rev().cmp(ED25519_P.iter().rev()) == std::cmp::Ordering::Less
}

/// A public key (or an HMAC secret) ready to verify JWS signatures with its algorithm.
#[derive(Clone)]
pub struct VerifyKey {
    alg: Alg,
    id: [u8; 32],
    check: Check,
}

#[derive(Clone)]
enum Check {
    /// Parsed by AWS-LC.
    Lc(ParsedPublicKey),
    /// An HMAC key with its pads computed.
    Hmac(Box<hmac::Key>),
    /// A key AWS-LC would judge differently: checked by [`Material::verify`].
    Reference(Material),
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = match self.check {
            Check::Lc(_) | Check::Hmac(_) => "aws-lc",
            Check::Reference(_) => "reference",
        };
        write!(f, "VerifyKey({}, {on}, [redacted])", self.alg)
    }
}

impl VerifyKey {
    /// Prepares the public half of `material` (an HMAC secret as it is).
    #[must_use]
    pub fn new(material: &Material) -> VerifyKey {
        let public = material.public();
        let (bytes, check) = match &public {
            Material::EcPublic(k) => {
                let point = k.to_sec1_point(false).as_bytes().to_vec();
                let check = lc_or_reference(&lc::ECDSA_P256_SHA256_FIXED, &point, &public);
                (point, check)
            }
            Material::RsaPublic(k) => {
                let der = k
                    .to_pkcs1_der()
                    .map(|d| d.as_bytes().to_vec())
                    .unwrap_or_default();
                let check = if LC_RSA_BITS.contains(&modulus_bits(&k.n_bytes())) {
                    lc_or_reference(&lc::RSA_PKCS1_2048_8192_SHA256, &der, &public)
                } else {
                    Check::Reference(public.clone())
                };
                (der, check)
            }
            Material::EdPublic(k) => {
                let bytes = k.as_bytes().to_vec();
                let check = if !k.is_weak() && ed25519_canonical(k.as_bytes()) {
                    lc_or_reference(&lc::ED25519, &bytes, &public)
                } else {
                    Check::Reference(public.clone())
                };
                (bytes, check)
            }
            Material::Oct(secret) => (
                secret.to_vec(),
                Check::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret))),
            ),
            Material::EcPrivate(_) | Material::RsaPrivate(_) | Material::EdPrivate(_) => {
                unreachable!("public() returns public material")
            }
        };
        let mut h = Sha256::new();
        h.update(public.alg().as_str().as_bytes());
        h.update([0]);
        h.update(&bytes);
        VerifyKey {
            alg: public.alg(),
            id: h.finalize().into(),
            check,
        }
    }

    /// The algorithm the key verifies.
    #[must_use]
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Identifies the key by its algorithm and public value (SHA-256): two keys with the same
    /// id give the same verdict on every signature.
    #[must_use]
    pub fn id(&self) -> &[u8; 32] {
        &self.id
    }

    /// Whether `sig` is this key's JWS signature over `message` (ES256 as the 64-byte `r‖s`,
    /// RS256 PKCS#1 v1.5, EdDSA, HS256).
    #[must_use]
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match &self.check {
            Check::Lc(key) => {
                if self.alg == Alg::EdDsa
                    && ED25519_SMALL_ORDER
                        .iter()
                        .any(|r| sig.get(..32) == Some(&r[..]))
                {
                    return false; // verify_strict refuses a small-order R
                }
                key.verify_sig(message, sig).is_ok()
            }
            Check::Hmac(key) => hmac::verify(key, message, sig).is_ok(),
            Check::Reference(material) => material.verify(message, sig),
        }
    }
}

fn lc_or_reference(
    alg: &'static dyn lc::VerificationAlgorithm,
    bytes: &[u8],
    public: &Material,
) -> Check {
    ParsedPublicKey::new(alg, bytes).map_or_else(|_| Check::Reference(public.clone()), Check::Lc)
}

/// The exact bit length of a big-endian modulus.
fn modulus_bits(n: &[u8]) -> usize {
    let n = &n[n.iter().take_while(|b| **b == 0).count()..];
    n.first()
        .map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9";

    /// Every change the tests make to a good signature: none, each byte flipped in turn (a
    /// sample), truncated, extended, empty.
    fn variants(sig: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![sig.to_vec(), Vec::new(), sig[..sig.len() - 1].to_vec()];
        let mut longer = sig.to_vec();
        longer.push(0);
        out.push(longer);
        for i in (0..sig.len()).step_by(7) {
            let mut s = sig.to_vec();
            s[i] ^= 0x01;
            out.push(s);
        }
        out
    }

    fn agree(material: &Material, message: &[u8], sig: &[u8]) {
        let key = VerifyKey::new(material);
        for s in variants(sig) {
            for m in [message, b"another message".as_slice()] {
                assert_eq!(
                    key.verify(m, &s),
                    material.public().verify(m, &s),
                    "{key:?} on a {}-byte signature",
                    s.len()
                );
            }
        }
    }

    #[test]
    fn agrees_with_the_reference_on_every_alg() {
        for alg in Alg::ALL {
            let m = Material::generate(alg, 2048).unwrap();
            let sig = m.sign(MESSAGE).unwrap();
            assert!(VerifyKey::new(&m).verify(MESSAGE, &sig), "{alg}");
            agree(&m, MESSAGE, &sig);
        }
    }

    #[test]
    fn usual_keys_are_on_aws_lc() {
        for alg in Alg::ALL {
            let key = VerifyKey::new(&Material::generate(alg, 2048).unwrap());
            assert!(format!("{key:?}").contains("aws-lc"), "{key:?}");
        }
    }

    #[test]
    fn same_public_key_same_id() {
        let m = Material::generate(Alg::Es256, 0).unwrap();
        let n = Material::generate(Alg::Es256, 0).unwrap();
        assert_eq!(VerifyKey::new(&m).id(), VerifyKey::new(&m.public()).id());
        assert_ne!(VerifyKey::new(&m).id(), VerifyKey::new(&n).id());
    }

    #[test]
    fn high_s_ecdsa_signatures_are_judged_as_the_reference_does() {
        // p256 does not normalise S; neither may the fast path.
        let m = Material::generate(Alg::Es256, 0).unwrap();
        let sig = m.sign(MESSAGE).unwrap();
        let n = hex_to_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
        let mut s = [0u8; 32];
        // s' = n - s
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(n[i]) - i16::from(sig[32 + i]) - borrow;
            s[i] = d.rem_euclid(256) as u8;
            borrow = i16::from(d < 0);
        }
        let mut high = sig[..32].to_vec();
        high.extend_from_slice(&s);
        assert_eq!(
            VerifyKey::new(&m).verify(MESSAGE, &high),
            m.public().verify(MESSAGE, &high)
        );
        assert!(VerifyKey::new(&m).verify(MESSAGE, &high));
    }

    #[test]
    fn non_canonical_ed25519_s_is_refused_like_the_reference() {
        // S + L: the same point equation, a non-canonical scalar. verify_strict refuses it.
        let m = Material::generate(Alg::EdDsa, 0).unwrap();
        let sig = m.sign(MESSAGE).unwrap();
        let l = hex_to_bytes("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let mut s = sig.clone();
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(s[32 + i]) + u16::from(l[i]) + carry;
            s[32 + i] = (v & 0xff) as u8;
            carry = v >> 8;
        }
        assert!(!m.public().verify(MESSAGE, &s));
        assert!(!VerifyKey::new(&m).verify(MESSAGE, &s));
    }

    #[test]
    fn the_small_order_list_is_the_eight_torsion_points() {
        let mut seen = std::collections::HashSet::new();
        for bytes in ED25519_SMALL_ORDER {
            let point = ed25519_dalek::VerifyingKey::from_bytes(&bytes).unwrap();
            assert!(point.is_weak(), "{bytes:?} is of small order");
            assert_eq!(point.to_edwards().compress().to_bytes(), bytes, "canonical");
            assert!(seen.insert(bytes));
        }
        assert!(ed25519_canonical(&hex32(
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
        )));
        assert!(!ed25519_canonical(&ED25519_P));
        assert!(!ed25519_canonical(&[0xff; 32]));
    }

    #[test]
    fn a_small_order_r_is_refused_like_the_reference() {
        let m = Material::generate(Alg::EdDsa, 0).unwrap();
        let good = m.sign(MESSAGE).unwrap();
        for r in ED25519_SMALL_ORDER {
            let mut sig = good.clone();
            sig[..32].copy_from_slice(&r);
            assert!(!m.public().verify(MESSAGE, &sig));
            assert!(!VerifyKey::new(&m).verify(MESSAGE, &sig));
        }
    }

    /// A key with a torsion component (a real key plus a point of order 8), which the
    /// reference accepts. Its owner can make signatures whose R is of small order that pass
    /// the cofactorless equation AWS-LC checks (about one try in eight); `verify_strict`
    /// refuses them, and so must the fast path. Honest signatures agree too.
    #[test]
    fn a_key_with_torsion_agrees_with_the_reference() {
        use curve25519_dalek::{EdwardsPoint, Scalar};
        use sha2::Sha512;
        let a = Scalar::from_bytes_mod_order([7u8; 32]);
        let torsion = ed25519_dalek::VerifyingKey::from_bytes(&ED25519_SMALL_ORDER[4])
            .unwrap()
            .to_edwards();
        let public_bytes = (EdwardsPoint::mul_base(&a) + torsion).compress().to_bytes();
        let public = ed25519_dalek::VerifyingKey::from_bytes(&public_bytes).unwrap();
        let material = Material::EdPublic(public);
        let key = VerifyKey::new(&material);
        assert!(format!("{key:?}").contains("aws-lc"), "{key:?}");
        let hash = |r: &[u8], msg: &[u8]| {
            Scalar::from_hash(
                Sha512::new()
                    .chain_update(r)
                    .chain_update(public_bytes)
                    .chain_update(msg),
            )
        };
        let mut forged = 0;
        for (i, r) in ED25519_SMALL_ORDER.iter().enumerate() {
            for n in 0u32..32 {
                let msg = format!("message {i} {n}");
                // S = k·a: [S]B - [k]A = -[k]T, which is R one time in eight.
                let k = hash(r, msg.as_bytes());
                let mut sig = r.to_vec();
                sig.extend_from_slice((k * a).as_bytes());
                if (-(k * torsion)).compress().to_bytes() == *r {
                    forged += 1;
                }
                let reference = material.verify(msg.as_bytes(), &sig);
                assert!(!reference);
                assert_eq!(key.verify(msg.as_bytes(), &sig), reference);
                // An honest signature: R = [r]B, S = r + k·a.
                let nonce = Scalar::from_bytes_mod_order([n as u8 + 1; 32]);
                let big_r = EdwardsPoint::mul_base(&nonce).compress().to_bytes();
                let k = hash(&big_r, msg.as_bytes());
                let mut sig = big_r.to_vec();
                sig.extend_from_slice((nonce + k * a).as_bytes());
                assert_eq!(
                    key.verify(msg.as_bytes(), &sig),
                    material.verify(msg.as_bytes(), &sig)
                );
            }
        }
        assert!(forged > 0, "the forgery the guard exists for was tried");
    }

    #[test]
    fn rsa_outside_aws_lc_range_stays_on_the_reference() {
        // keyctl never accepts RSA under 2048 bits, but a verifier may still be handed one:
        // it must be judged (and refused or accepted) exactly as before, never panic.
        let small = rsa::PrivateKey::new(&mut getrandom::SysRng, 1024).unwrap();
        let m = Material::RsaPrivate(Box::new(small));
        let sig = m.sign(MESSAGE).unwrap();
        let key = VerifyKey::new(&m);
        assert!(format!("{key:?}").contains("reference"), "{key:?}");
        agree(&m, MESSAGE, &sig);
        assert_eq!(modulus_bits(&[0, 0x01, 0xff]), 9);
        assert_eq!(modulus_bits(&[0x80, 0]), 16);
    }

    #[test]
    fn rsa_exponent_3_agrees() {
        let k =
            rsa::PrivateKey::new_with_exp(&mut getrandom::SysRng, 2048, rsa::BoxedUint::from(3u32))
                .unwrap();
        let m = Material::RsaPrivate(Box::new(k));
        let sig = m.sign(MESSAGE).unwrap();
        agree(&m, MESSAGE, &sig);
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;
        use std::sync::OnceLock;

        /// One key of each algorithm, made once (RSA generation is slow).
        fn keys() -> &'static [Material] {
            static KEYS: OnceLock<Vec<Material>> = OnceLock::new();
            KEYS.get_or_init(|| {
                Alg::ALL
                    .into_iter()
                    .map(|a| Material::generate(a, 2048).unwrap())
                    .collect()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            /// Any change to a message or its signature gets the reference's verdict.
            #[test]
            fn agrees_with_the_reference_on_changed_signatures(
                which in 0usize..4,
                msg in proptest::collection::vec(any::<u8>(), 0..80),
                pos in any::<usize>(),
                byte in any::<u8>(),
                cut in 0usize..3,
            ) {
                let m = &keys()[which];
                let mut sig = m.sign(&msg).unwrap();
                let i = pos % sig.len();
                sig[i] = byte;
                sig.truncate(sig.len() - cut);
                let key = VerifyKey::new(m);
                prop_assert_eq!(key.verify(&msg, &sig), m.public().verify(&msg, &sig));
            }
        }
    }

    fn hex_to_bytes(h: &str) -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    }
}
