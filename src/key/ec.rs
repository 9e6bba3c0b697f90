//! A P-256 private key as keyctl holds it: the secret scalar and its public point, both
//! known, so that neither reading a JWK nor generating a key pays for a pure-Rust scalar
//! multiplication. Generation and the check that `d` matches `(x, y)` run on AWS-LC's
//! assembly (docs/DESIGN.md); signing and PEM encoding stay on the `p256` crate, which
//! rebuilds its signing key only when one is needed.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::elliptic_curve::Generate;
use zeroize::Zeroizing;

use super::KeyError;

/// The public point `d·G` of the secret scalar `d` (32 bytes, big-endian, in range), on
/// AWS-LC: it reads `d` as an RFC 5915 `ECPrivateKey` without a public key and computes it.
fn public_of(d: &[u8]) -> Result<VerifyingKey, KeyError> {
    let fail = || KeyError("P-256 key generation failed".into());
    // SEQUENCE { INTEGER 1, OCTET STRING d, [0] { OID prime256v1 } }
    let mut der = Zeroizing::new(Vec::with_capacity(51));
    der.extend_from_slice(&[0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20]);
    der.extend_from_slice(d);
    der.extend_from_slice(&[
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ]);
    let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        .map_err(|_| fail())?;
    VerifyingKey::from_sec1_bytes(pair.public_key().as_ref()).map_err(|_| fail())
}

/// A P-256 key pair. The secret is zeroized when dropped (`p256::SecretKey`).
#[derive(Clone)]
pub struct EcKey {
    secret: p256::SecretKey,
    public: VerifyingKey,
}

impl EcKey {
    /// A fresh key pair: the secret from the operating system's randomness (`getrandom`),
    /// its public point computed by AWS-LC. (AWS-LC's own generator is not used: its first
    /// use seeds a jitter-entropy DRBG, some 20 ms of CPU.)
    ///
    /// # Errors
    /// (Never expected) a key AWS-LC does not read back.
    pub fn generate() -> Result<EcKey, KeyError> {
        let secret =
            p256::SecretKey::generate_from_rng(&mut rand_core::UnwrapErr(getrandom::SysRng));
        let public = public_of(&secret.to_bytes())?;
        Ok(EcKey { secret, public })
    }

    /// The key whose secret scalar is `d` (32 bytes, big-endian) and whose public point is
    /// `public`, once AWS-LC has checked that `d` is in range and `d·G` is `public`.
    ///
    /// # Errors
    /// `d` out of range, or not the secret of `public`.
    pub fn from_parts(d: &[u8], public: VerifyingKey) -> Result<EcKey, KeyError> {
        let secret = p256::SecretKey::from_slice(d)
            .map_err(|_| KeyError("\"d\" is not a valid P-256 private scalar".into()))?;
        let point = public.to_sec1_point(false);
        EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            d,
            point.as_bytes(),
        )
        .map_err(|_| KeyError("\"d\" does not match the public key (x, y)".into()))?;
        Ok(EcKey { secret, public })
    }

    /// The key of a `p256` signing key (its public point already computed).
    #[must_use]
    pub fn from_signing_key(key: &SigningKey) -> EcKey {
        EcKey {
            secret: p256::SecretKey::from(key),
            public: *key.verifying_key(),
        }
    }

    /// The public point.
    #[must_use]
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The secret scalar, 32 bytes big-endian.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.secret.to_bytes().to_vec())
    }

    /// The `p256` signing key (for signing and PEM encoding).
    #[must_use]
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from(&self.secret)
    }
}
