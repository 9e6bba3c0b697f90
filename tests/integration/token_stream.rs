//! `keyctl token verify -` on many lines (issue 12): the lines are judged in parallel batches,
//! and each still gets exactly the verdict `token verify TOKEN` gives it, in input order; a
//! key AWS-LC does not take (RSA under 2048 bits) is a rejection as before, never a panic.

use serde_json::{Value, json};

use crate::support::{Project, T0};
use crate::token::forge;
use keyctl::key::{Alg, Material};

const SWITCHED: &str = "2026-12-01T12:25:00Z";
const NOW: &str = "2026-12-01T12:30:00Z";

/// The upstream fixture with an ES256 signing key published and signing.
fn switched() -> Project {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).run();
    p.migrate(SWITCHED).run();
    p
}

fn sign(p: &Project) -> String {
    let out = p.keyctl(["token", "sign", "--role", "anon"]).now(NOW).run();
    out.stdout.trim().to_owned()
}

/// `token verify TOKEN ARGS`: what it prints.
fn single(p: &Project, token: &str, args: &[&str]) -> String {
    p.keyctl(["token", "verify", token])
        .args(args)
        .now(NOW)
        .any_status()
        .run()
        .stdout
}

#[test]
fn stdin_in_parallel_gives_every_line_its_own_verdict_in_order() {
    let p = switched();
    let good = sign(&p);
    let kid = keyctl::jws::decode(&good)
        .unwrap()
        .kid()
        .unwrap()
        .to_owned();
    let mut tampered = good.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let claims = json!({"role": "anon", "exp": 4_000_000_000_u64});
    let foreign = forge(
        &Material::generate(Alg::Es256, 0).unwrap(),
        &json!({"alg": "ES256", "kid": kid, "typ": "JWT"}),
        &claims,
    );
    let legacy = forge(
        &keyctl::keyset::legacy_material(&p.env_value("JWT_SECRET")),
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims,
    );
    let classes = [
        good.as_str(),
        tampered.as_str(),
        foreign.as_str(),
        legacy.as_str(),
        "not-a-token",
        "eyJhbGciOiJub25lIn0.e30.",
    ];
    // 1,200 lines: several batches on each worker, with blank, padded and over-long lines.
    let long = "A".repeat(20_000);
    let mut input = String::new();
    let mut want: Vec<(usize, Option<usize>)> = Vec::new(); // (line, class; None: too long)
    for n in 1..=1200 {
        match n % 9 {
            0 => input.push('\n'),
            1 => {
                input.push_str(&long);
                input.push('\n');
                want.push((n, None));
            }
            k => {
                let class = k % classes.len();
                input.push_str(&format!(" {}\t\n", classes[class]));
                want.push((n, Some(class)));
            }
        }
    }
    for json in [true, false] {
        let args: &[&str] = if json { &["--json"] } else { &[] };
        let alone: Vec<String> = classes.iter().map(|t| single(&p, t, args)).collect();
        let out = p
            .keyctl(["token", "verify", "-"])
            .args(args)
            .now(NOW)
            .stdin(input.clone())
            .status(1)
            .run();
        let mut expected = String::new();
        for (n, class) in &want {
            match class {
                Some(c) if json => {
                    expected.push_str(&format!("{{\"line\":{n},{}", &alone[*c][1..]));
                }
                Some(c) => expected.push_str(&format!("line {n}: {}", alone[*c])),
                None if json => expected.push_str(&format!(
                    "{{\"line\":{n},\"valid\":false,\"error\":{{\"code\":\"malformed\",\"reason\":\"the line is longer than 17408 bytes, so it is no token (skipped unread)\"}},\"results\":[]}}\n"
                )),
                None => expected.push_str(&format!(
                    "line {n}: rejected: not a token: the line is longer than 17408 bytes, so it is no token (skipped unread)\n"
                )),
            }
        }
        assert!(out.stdout == expected, "--json {json}: the outputs differ");
    }
}

/// A JWKS holding an RSA key under 2048 bits: keyctl never verifies with it (it never did),
/// and a token signed with it is rejected by every service, with the verdicts it always had.
#[test]
fn an_rsa_key_under_2048_bits_in_a_jwks_is_a_rejection_not_a_panic() {
    let p = switched();
    let small = Material::RsaPrivate(Box::new(
        rsa::PrivateKey::new(&mut getrandom::SysRng, 1024).unwrap(),
    ));
    let env = p.read(".env");
    let line = env
        .lines()
        .find(|l| l.starts_with("JWT_JWKS="))
        .unwrap()
        .to_owned();
    let mut jwks: Value =
        serde_json::from_str(line["JWT_JWKS=".len()..].trim_matches('\'')).unwrap();
    jwks["keys"]
        .as_array_mut()
        .unwrap()
        .push(keyctl::jwk::public_json(&small, Some("small")));
    p.write(".env", env.replace(&line, &format!("JWT_JWKS='{jwks}'")));
    let token = forge(
        &small,
        &json!({"alg": "RS256", "kid": "small", "typ": "JWT"}),
        &json!({"role": "anon", "exp": 4_000_000_000_u64}),
    );
    let good = sign(&p);
    let out = p
        .keyctl(["token", "verify", "-", "--json"])
        .now(NOW)
        .stdin(format!("{token}\n{good}\n"))
        .status(1)
        .run();
    let lines = out.json_lines();
    let codes: Vec<(&str, &str)> = lines[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["service"].as_str().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("auth", "alg_not_accepted"),
            ("rest", "alg_not_accepted"),
            ("realtime", "alg_not_accepted"),
            ("storage", "alg_not_accepted"),
            ("functions", "alg_not_accepted"),
        ],
        "{}",
        out.stdout
    );
    assert_eq!(lines[1]["valid"], true, "{}", out.stdout);
}
