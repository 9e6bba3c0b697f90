//! In-process cost of one signature check, the backend (AWS-LC, `verifykey`) against the
//! pure-Rust reference (`Material::verify`), for issue 12's `token verify -` figures.
//!
//! Run with `cargo bench --bench verify` (about a minute). Groups, each per algorithm:
//! - `check/reference/<alg>`: `Material::verify` on the RustCrypto crates (p256, rsa,
//!   ed25519-dalek, hmac): what every check cost before.
//! - `check/aws-lc/<alg>`: `VerifyKey::verify` with the key prepared once, as the verifier
//!   holds it for a whole run.
//! - `prepare/<alg>`: `VerifyKey::new`, paid once per key and run.
//! - `token/<alg>`: `jws::decode` of a Supabase-shaped token plus `verifies_with_key`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

use keyctl::jws;
use keyctl::key::{Alg, Material};
use keyctl::verifykey::VerifyKey;

const ORDER: [Alg; 4] = [Alg::Es256, Alg::EdDsa, Alg::Rs256, Alg::Hs256];

fn id(alg: Alg) -> &'static str {
    match alg {
        Alg::Rs256 => "RS256-2048",
        other => other.as_str(),
    }
}

fn token(material: &Material) -> String {
    let claims = json!({"iss": "supabase", "ref": "localhost", "role": "anon", "iat": 1_700_000_000_i64, "exp": 2_015_000_000_i64});
    jws::sign(material, Some("kid"), claims.as_object().expect("object")).expect("sign")
}

fn check(c: &mut Criterion) {
    for alg in ORDER {
        let material = Material::generate(alg, 2048).expect("key");
        let public = material.public();
        let token = token(&material);
        let decoded = jws::decode(&token).expect("decode");
        let message = decoded.signing_input.as_bytes();
        let sig = decoded.signature.clone();
        let key = VerifyKey::new(&public);
        // Only a signature that really verifies is timed, so a broken check cannot look fast.
        assert!(
            public.verify(message, &sig) && key.verify(message, &sig),
            "{alg}"
        );
        c.bench_function(&format!("check/reference/{}", id(alg)), |b| {
            b.iter(|| black_box(&public).verify(black_box(message), black_box(&sig)));
        });
        c.bench_function(&format!("check/aws-lc/{}", id(alg)), |b| {
            b.iter(|| black_box(&key).verify(black_box(message), black_box(&sig)));
        });
        c.bench_function(&format!("prepare/{}", id(alg)), |b| {
            b.iter(|| VerifyKey::new(black_box(&public)));
        });
        c.bench_function(&format!("token/{}", id(alg)), |b| {
            b.iter(|| {
                jws::decode(black_box(&token))
                    .expect("decode")
                    .verifies_with_key(black_box(&key))
            });
        });
    }
}

criterion_group!(benches, check);
criterion_main!(benches);
