//! In-process benchmarks of key generation and JWS sign/verify, through the library API.
//!
//! Run with `cargo bench --bench keygen` (whole run: about two minutes). Filter with a
//! substring, e.g. `cargo bench --bench keygen -- keygen/RS256`.
//!
//! Groups:
//! - `keygen/<alg>`: `Material::generate` (RS256 with a 2048-bit modulus). RSA key generation
//!   is slow and its time varies with how long the prime search takes, so it runs with few,
//!   flat samples over a longer measurement window.
//! - `sign/<alg>`: `jws::sign` of a Supabase-shaped claims set with a kid.
//! - `verify/<alg>`: `jws::decode` of that token plus `verifies_with` the public half.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main, measurement::WallTime,
};
use serde_json::{Map, Value, json};

use keyctl::jws;
use keyctl::key::{Alg, Material};

/// RSA modulus size benchmarked (the CLI default).
const RSA_BITS: usize = 2048;

/// Algorithms in benchmark order: the fast ones first, RS256 last, so the group settings
/// loosened for RSA do not carry over to the others.
const ORDER: [Alg; 4] = [Alg::Es256, Alg::EdDsa, Alg::Hs256, Alg::Rs256];

fn bench_id(alg: Alg) -> String {
    match alg {
        Alg::Rs256 => format!("RS256-{RSA_BITS}"),
        other => other.as_str().to_owned(),
    }
}

fn generate(alg: Alg) -> Material {
    Material::generate(alg, if alg == Alg::Rs256 { RSA_BITS } else { 0 }).expect("key generation")
}

/// The claims of an `anon` key as Supabase issues it.
fn claims() -> Map<String, Value> {
    json!({
        "iss": "supabase",
        "ref": "localhost",
        "role": "anon",
        "iat": 1_700_000_000_i64,
        "exp": 2_015_000_000_i64
    })
    .as_object()
    .expect("object literal")
    .clone()
}

/// RSA operations take milliseconds: give them fewer samples and a longer window so a run
/// finishes without criterion's "unable to complete N samples" warning.
fn loosen_for_rsa(group: &mut BenchmarkGroup<'_, WallTime>, measurement_secs: u64) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(measurement_secs));
}

fn keygen(c: &mut Criterion) {
    let mut group = c.benchmark_group("keygen");
    for alg in ORDER {
        if alg == Alg::Rs256 {
            // ~50 ms per key, with a long tail: 10 flat samples over 20 s is ~400 keys.
            loosen_for_rsa(&mut group, 20);
        }
        let bits = if alg == Alg::Rs256 { RSA_BITS } else { 0 };
        group.bench_function(bench_id(alg), |b| {
            b.iter(|| Material::generate(black_box(alg), black_box(bits)).expect("key generation"));
        });
    }
    group.finish();
}

fn sign(c: &mut Criterion) {
    let claims = claims();
    let mut group = c.benchmark_group("sign");
    for alg in ORDER {
        let material = generate(alg);
        if alg == Alg::Rs256 {
            loosen_for_rsa(&mut group, 10);
        }
        group.bench_function(bench_id(alg), |b| {
            b.iter(|| {
                jws::sign(black_box(&material), Some("kid"), black_box(&claims)).expect("sign")
            });
        });
    }
    group.finish();
}

fn verify(c: &mut Criterion) {
    let claims = claims();
    let mut group = c.benchmark_group("verify");
    for alg in ORDER {
        let material = generate(alg);
        let public = material.public();
        let token = jws::sign(&material, Some("kid"), &claims).expect("sign");
        // Benchmark only a token that really verifies, so a broken verify cannot look fast.
        assert!(
            jws::decode(&token).expect("decode").verifies_with(&public),
            "{alg} token does not verify"
        );
        group.bench_function(bench_id(alg), |b| {
            b.iter(|| {
                jws::decode(black_box(&token))
                    .expect("decode")
                    .verifies_with(black_box(&public))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, keygen, sign, verify);
criterion_main!(benches);
