//! `keyctl token sign` and `keyctl token verify`: verdicts per service, the reasons for
//! rejections (including revoked keys and retired secrets), stdin scanning, hostile input.

use serde_json::{Value, json};

use crate::support::{Project, T0, repo};
use keyctl::jws;

/// `keyctl token sign ARGS` at `now`: the token.
fn sign(p: &Project, now: &str, args: &[&str]) -> String {
    let out = p.keyctl(["token", "sign"]).args(args).now(now).run();
    out.stdout.trim().to_owned()
}

/// `keyctl token verify TOKEN --json EXTRA` at `now`: the exit code and the verdict.
fn verify_json(p: &Project, now: &str, token: &str, extra: &[&str]) -> (i32, Value) {
    let out = p
        .keyctl(["token", "verify", token, "--json"])
        .args(extra)
        .now(now)
        .any_status()
        .run();
    (out.code.unwrap(), out.json())
}

fn reasons(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["valid"] == false)
        .map(|r| {
            format!(
                "{}: {}",
                r["code"].as_str().unwrap(),
                r["reason"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn signed_tokens_follow_the_current_signer() {
    let p = Project::fixture("upstream-2026-02");
    let legacy = sign(&p, T0, &["--role", "service_role"]);
    let d = jws::decode(&legacy).unwrap();
    assert_eq!(
        (d.alg(), d.kid()),
        (Some("HS256"), None),
        "HS256 without kid while the legacy secret signs"
    );
    p.migrate(T0).run();
    p.migrate("2026-12-01T12:25:00Z").run();
    let t = sign(
        &p,
        "2026-12-01T12:26:00Z",
        &[
            "--role",
            "authenticated",
            "--sub",
            "user-1",
            "--exp",
            "10m",
            "--claim",
            "email=a@b.c",
            "--claim",
            "app_metadata={\"tier\":2}",
        ],
    );
    let d = jws::decode(&t).unwrap();
    assert_eq!(d.alg(), Some("ES256"));
    assert!(d.kid().is_some());
    assert_eq!(d.claims["sub"], "user-1");
    assert_eq!(d.claims["aud"], "authenticated");
    assert_eq!(d.claims["app_metadata"], json!({"tier": 2}));
    assert_eq!(
        d.claims["exp"].as_i64().unwrap() - d.claims["iat"].as_i64().unwrap(),
        600
    );
    let (code, v) = verify_json(&p, "2026-12-01T12:27:00Z", &t, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["results"].as_array().unwrap().len(), 5);
    // Both the old HS256 token and the new one pass every service during the switch.
    let (code, v) = verify_json(&p, "2026-12-01T12:27:00Z", &legacy, &[]);
    assert_eq!(code, 0, "{v:#}");
    let (code, v) = verify_json(&p, "2026-12-01T12:27:00Z", &t, &["--role", "service_role"]);
    assert_eq!(code, 1);
    assert!(reasons(&v)[0].starts_with("wrong_role"), "{v:#}");
    let (code, v) = verify_json(&p, "2026-12-01T13:00:00Z", &t, &["--service", "rest"]);
    assert_eq!(code, 1);
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert!(reasons(&v)[0].starts_with("expired: expired at"), "{v:#}");
}

#[test]
fn rejections_say_which_key_really_signed() {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).run();
    // An HS256 token with the legacy secret, kept by a client past the revocation.
    let old_hs = sign(
        &p,
        "2026-12-01T12:24:00Z",
        &["--role", "anon", "--exp", "30d"],
    );
    assert_eq!(jws::decode(&old_hs).unwrap().alg(), Some("HS256"));
    p.migrate("2026-12-01T12:25:00Z").run();
    let old_secret = p.env_value("JWT_SECRET");
    assert!(!old_secret.is_empty());
    let first_kid = jws::decode(&sign(&p, "2026-12-01T12:26:00Z", &["--role", "anon"]))
        .unwrap()
        .kid()
        .unwrap()
        .to_owned();
    let old_es = sign(
        &p,
        "2026-12-01T12:26:00Z",
        &["--role", "anon", "--exp", "30d"],
    );
    p.migrate("2026-12-01T14:00:00Z")
        .arg("--remint-api-keys")
        .run();
    let (code, v) = verify_json(&p, "2026-12-01T14:01:00Z", &old_hs, &["--service", "rest"]);
    assert_eq!(code, 1);
    let r = &reasons(&v)[0];
    assert!(
        r.contains("the JWT_SECRET retired on 2026-12-01T14:00:00Z"),
        "{r}"
    );
    // A rotation, then a token from the revoked first key.
    p.keyctl(["rotate", "--yes"])
        .now("2026-12-01T14:10:00Z")
        .run();
    p.migrate("2026-12-01T14:35:00Z").run();
    p.migrate("2026-12-01T16:00:00Z")
        .arg("--remint-api-keys")
        .run();
    let (code, v) = verify_json(&p, "2026-12-01T16:01:00Z", &old_es, &[]);
    assert_eq!(code, 1);
    for r in reasons(&v) {
        assert!(r.starts_with("unknown_kid") && r.contains(&format!("kid {first_kid} is kid {first_kid}, which this project revoked on 2026-12-01T16:00:00Z")), "{r}");
    }
}

#[test]
fn a_stale_copy_of_the_secret_is_named() {
    let p = Project::fixture("upstream-2026-02");
    // Rest has a literal copy of an older secret in its compose line.
    let compose = p.read("docker-compose.yml").replacen(
        "PGRST_JWT_SECRET: ${JWT_SECRET}",
        "PGRST_JWT_SECRET: an-older-secret-that-someone-pasted-here-long",
        1,
    );
    p.write("docker-compose.yml", &compose);
    let t = sign(&p, T0, &["--role", "anon"]);
    let (code, v) = verify_json(&p, T0, &t, &[]);
    assert_eq!(code, 1);
    let r = reasons(&v);
    assert_eq!(r.len(), 1, "only rest rejects: {v:#}");
    assert!(
        r[0].contains("the HS256 secret Auth uses (auth GOTRUE_JWT_SECRET <- .env JWT_SECRET): this service has a stale or different copy"),
        "{}",
        r[0]
    );
}

#[test]
fn stdin_scans_many_tokens_one_verdict_each() {
    let p = Project::fixture("upstream-2026-02");
    let good = sign(&p, T0, &["--role", "anon"]);
    let input = format!("{good}\nnot-a-token\n\n{good}x\n{}\n", "A".repeat(100_000));
    let out = p
        .keyctl(["token", "verify", "-", "--json", "--service", "rest"])
        .now(T0)
        .stdin(input)
        .status(1)
        .run();
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verdicts: Vec<(i64, bool)> = lines
        .iter()
        .map(|l| (l["line"].as_i64().unwrap(), l["valid"].as_bool().unwrap()))
        .collect();
    assert_eq!(verdicts, [(1, true), (2, false), (4, false), (5, false)]);
    assert_eq!(lines[1]["error"]["code"], "malformed");
    assert_eq!(lines[2]["results"][0]["code"], "bad_signature");
}

/// Hostile tokens from `tests/corpus/token/`: each file holds a token (or garbage) on its first
/// line and the expected rejection code on its second. None may crash keyctl, and each gets
/// exactly its verdict.
#[test]
fn hostile_token_corpus() {
    let p = Project::fixture("upstream-2026-02");
    let dir = repo().join("tests/corpus/token");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let token = lines.next().unwrap();
        let expected = lines.next().unwrap().trim();
        let (code, v) = verify_json(&p, T0, token, &["--service", "rest"]);
        assert_eq!(code, 1, "{}: {v:#}", path.display());
        let got = v.get("error").map_or_else(
            || v["results"][0]["code"].as_str().unwrap().to_owned(),
            |e| e["code"].as_str().unwrap().to_owned(),
        );
        assert_eq!(got, expected, "{}: {v:#}", path.display());
        n += 1;
    }
    assert!(n >= 8, "corpus has {n} cases");
}

#[test]
fn jku_headers_are_reported_and_never_fetched() {
    let p = Project::fixture("upstream-2026-02");
    let secret = p.env_value("JWT_SECRET");
    let key = keyctl::keyset::legacy_material(&secret);
    let header = json!({"alg":"HS256","typ":"JWT","jku":"https://attacker.example/jwks.json"});
    let payload = json!({"role":"anon","exp":4_000_000_000_u64});
    let input = format!(
        "{}.{}",
        keyctl::b64::encode(header.to_string().as_bytes()),
        keyctl::b64::encode(payload.to_string().as_bytes())
    );
    let token = format!(
        "{input}.{}",
        keyctl::b64::encode(&key.sign(input.as_bytes()).unwrap())
    );
    p.keyctl(["token", "verify", &token, "--service", "rest"])
        .now(T0)
        .stdout_has("never fetches")
        .run();
}

/// A service that reads its secret through `env_file:` (not `environment:`) verifies with
/// that file's value: the project model resolves what each service really receives.
#[test]
fn a_secret_read_through_env_file_is_what_the_service_verifies_with() {
    let secret = "a-secret-only-in-keys-env-0123456789-abcdef";
    let p = Project::with_env(&format!("JWT_SECRET={secret}\n"));
    p.write(
        "docker-compose.yml",
        "services:\n  rest:\n    image: postgrest/postgrest:v12.2.0\n    env_file:\n      - path: keys.env\n        required: true\n",
    );
    p.write("keys.env", format!("PGRST_JWT_SECRET={secret}\n"));
    let token = sign(&p, T0, &["--role", "anon"]);
    let (code, v) = verify_json(&p, T0, &token, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["results"][0]["service"], "rest", "{v}");
    assert_eq!(v["results"][0]["valid"], true, "{v}");

    // A different value in keys.env is a split secret: rest rejects the token.
    p.write(
        "keys.env",
        "PGRST_JWT_SECRET=another-secret-entirely-0123456789-abcdefgh\n",
    );
    let (code, v) = verify_json(&p, T0, &token, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["results"][0]["code"], "bad_signature", "{v}");
}
