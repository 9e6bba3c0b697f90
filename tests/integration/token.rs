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
    let lines = out.json_lines();
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

// --- issue 11: token verify as each service really decides ---------------------------------

/// A compact JWS of exactly `header` and `claims` (any JSON), signed with `key`.
pub(crate) fn forge(key: &keyctl::key::Material, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        keyctl::b64::encode(header.to_string().as_bytes()),
        keyctl::b64::encode(claims.to_string().as_bytes())
    );
    format!(
        "{input}.{}",
        keyctl::b64::encode(&key.sign(input.as_bytes()).unwrap())
    )
}

/// The project's legacy HS256 secret as a key.
fn secret_key(p: &Project) -> keyctl::key::Material {
    keyctl::keyset::legacy_material(&p.env_value("JWT_SECRET"))
}

/// Each service's verdict on `token` at `now`: `valid`, or the rejection code.
fn verdicts(p: &Project, now: &str, token: &str) -> Vec<(String, String)> {
    let (_, v) = verify_json(p, now, token, &[]);
    v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{v:#}"))
        .iter()
        .map(|r| {
            let got = if r["valid"] == true {
                "valid".to_owned()
            } else {
                r["code"].as_str().unwrap().to_owned()
            };
            (r["service"].as_str().unwrap().to_owned(), got)
        })
        .collect()
}

fn expect(got: &[(String, String)], want: &[(&str, &str)], what: &str) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(s, c)| ((*s).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(got, want.as_slice(), "{what}");
}

/// Each service's expected verdict, in compose order.
type Verdicts = [(&'static str, &'static str); 5];

fn t0() -> i64 {
    T0.parse::<jiff::Timestamp>().unwrap().as_second()
}

/// Claim types and values as each service's own parser reads them (docs/VERIFIER.md): Auth's
/// golang-jwt takes a fractional or quoted-number exp and refuses a numeric aud; PostgREST
/// reads a fractional exp as 0; jose (storage, functions) wants numbers; realtime before
/// v2.103.1 compares exp as an Erlang term. Extreme values must not overflow.
#[test]
fn claim_types_are_read_as_each_service_reads_them() {
    let p = Project::fixture("upstream-2026-02");
    let key = secret_key(&p);
    let hs = json!({"alg":"HS256","typ":"JWT"});
    let now = t0();
    let token = |claims: Value| forge(&key, &hs, &claims);
    let cases: Vec<(&str, Value, Verdicts)> = vec![
        (
            "fractional exp",
            json!({"role":"anon","exp": now as f64 + 3600.5}),
            [
                ("auth", "valid"),
                ("rest", "expired"),
                ("realtime", "valid"),
                ("storage", "valid"),
                ("functions", "valid"),
            ],
        ),
        (
            "exp as a numeric string",
            json!({"role":"anon","exp": (now + 3600).to_string()}),
            [
                ("auth", "valid"),
                ("rest", "bad_claim"),
                ("realtime", "valid"),
                ("storage", "bad_claim"),
                ("functions", "bad_claim"),
            ],
        ),
        (
            "aud: 5",
            json!({"role":"anon","exp": now + 3600, "aud": 5}),
            [
                ("auth", "bad_claim"),
                ("rest", "bad_claim"),
                ("realtime", "valid"),
                ("storage", "valid"),
                ("functions", "valid"),
            ],
        ),
        (
            "exp = i64::MAX",
            json!({"role":"anon","exp": i64::MAX}),
            [
                ("auth", "expired"),
                ("rest", "valid"),
                ("realtime", "valid"),
                ("storage", "valid"),
                ("functions", "valid"),
            ],
        ),
        (
            "nbf = i64::MIN, iat = i64::MIN",
            json!({"role":"anon","exp": now + 3600, "nbf": i64::MIN, "iat": i64::MIN}),
            [
                ("auth", "valid"),
                ("rest", "valid"),
                ("realtime", "valid"),
                ("storage", "valid"),
                ("functions", "valid"),
            ],
        ),
        (
            "exp: null",
            json!({"role":"anon","exp": null}),
            [
                ("auth", "valid"),
                ("rest", "valid"),
                ("realtime", "valid"),
                ("storage", "bad_claim"),
                ("functions", "bad_claim"),
            ],
        ),
        (
            "role: 5 (a claim of Auth's Go struct)",
            json!({"ROLE": 5, "exp": now + 3600}),
            [
                ("auth", "bad_claim"),
                ("rest", "valid"),
                ("realtime", "valid"),
                ("storage", "valid"),
                ("functions", "valid"),
            ],
        ),
    ];
    for (what, claims, want) in cases {
        expect(&verdicts(&p, T0, &token(claims)), &want, what);
    }
    let (_, v) = verify_json(
        &p,
        T0,
        &token(json!({"exp": now as f64 + 3600.5})),
        &["--service", "rest"],
    );
    assert!(reasons(&v)[0].contains("reads 1796130000.5 as 0"), "{v:#}");
    let (_, v) = verify_json(
        &p,
        T0,
        &token(json!({"exp": "soon"})),
        &["--service", "storage"],
    );
    assert!(
        reasons(&v)[0].starts_with("bad_claim: exp is a string (\"soon\"): storage wants a number"),
        "{v:#}"
    );

    // Realtime from v2.103.1 checks that exp and iat are numbers.
    let compose = p
        .read("docker-compose.yml")
        .replace("supabase/realtime:v2.78.15", "supabase/realtime:v2.129.8");
    p.write("docker-compose.yml", compose);
    for claims in [
        json!({"exp": (now + 3600).to_string()}),
        json!({"exp": null}),
        json!({"iat": "x"}),
    ] {
        let (_, v) = verify_json(&p, T0, &token(claims.clone()), &["--service", "realtime"]);
        assert_eq!(v["results"][0]["code"], "bad_claim", "{claims}: {v:#}");
    }
}

/// Auth (from v2.177.0) verifies an HS256 token whose kid it does not know against
/// GOTRUE_JWT_SECRET; before, it refuses the kid. No service but PostgREST allows clock skew,
/// and only PostgREST checks iat.
#[test]
fn auth_falls_back_to_its_secret_and_each_service_has_its_own_leeway() {
    let p = Project::fixture("upstream-2026-02");
    let key = secret_key(&p);
    let now = t0();
    let kid = forge(
        &key,
        &json!({"alg":"HS256","typ":"JWT","kid":"not-a-kid-anyone-knows"}),
        &json!({"role":"anon","exp": now + 3600}),
    );
    expect(
        &verdicts(&p, T0, &kid),
        &[
            ("auth", "valid"),
            ("rest", "unknown_kid"),
            ("realtime", "valid"),
            ("storage", "valid"),
            ("functions", "valid"),
        ],
        "HS256 with an unknown kid",
    );
    let (_, v) = verify_json(&p, T0, &kid, &["--service", "auth"]);
    assert!(
        v["results"][0]["key"]
            .as_str()
            .unwrap()
            .contains("auth falls back to it"),
        "{v:#}"
    );

    let hs = json!({"alg":"HS256","typ":"JWT"});
    let token = |claims: Value| forge(&key, &hs, &claims);
    expect(
        &verdicts(&p, T0, &token(json!({"role":"anon","exp": now - 10}))),
        &[
            ("auth", "expired"),
            ("rest", "valid"),
            ("realtime", "expired"),
            ("storage", "expired"),
            ("functions", "expired"),
        ],
        "expired 10 s ago",
    );
    let (_, v) = verify_json(
        &p,
        T0,
        &token(json!({"role":"anon","exp": now - 10})),
        &["--service", "auth"],
    );
    assert!(
        reasons(&v)[0].contains("auth allows no clock skew"),
        "{v:#}"
    );
    expect(
        &verdicts(
            &p,
            T0,
            &token(json!({"role":"anon","exp": now + 3600, "nbf": now + 10})),
        ),
        &[
            ("auth", "not_yet_valid"),
            ("rest", "valid"),
            ("realtime", "valid"),
            ("storage", "not_yet_valid"),
            ("functions", "not_yet_valid"),
        ],
        "valid in 10 s",
    );
    expect(
        &verdicts(
            &p,
            T0,
            &token(json!({"role":"anon","exp": now + 3600, "iat": now + 60})),
        ),
        &[
            ("auth", "valid"),
            ("rest", "not_yet_valid"),
            ("realtime", "valid"),
            ("storage", "valid"),
            ("functions", "valid"),
        ],
        "issued in a minute",
    );

    // Auth before v2.177.0 refuses a kid it does not know.
    let compose = p
        .read("docker-compose.yml")
        .replace("supabase/gotrue:v2.186.0", "supabase/gotrue:v2.176.1");
    p.write("docker-compose.yml", compose);
    let (_, v) = verify_json(&p, T0, &kid, &["--service", "auth"]);
    assert_eq!(v["results"][0]["code"], "unknown_kid", "{v:#}");
    assert!(reasons(&v)[0].contains("before v2.177.0"), "{v:#}");
}

/// A kid that is not a string is never "no kid": every service rejects an ES256 token with
/// `"kid": 5`, with a reason; an HS256 one goes where each service sends it (the secret, or
/// PostgREST's header parser, which refuses it).
#[test]
fn a_kid_that_is_not_a_string_is_named_and_never_tries_every_key() {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).run();
    let keys = keyctl::keyset::parse_private_set(&p.env_value("JWT_KEYS"), "JWT_KEYS").unwrap();
    let es = keys.iter().find(|k| k.kid.is_some()).unwrap();
    let now = t0();
    let claims = json!({"role":"anon","exp": now + 3600});
    let numeric = forge(
        &es.material,
        &json!({"alg":"ES256","typ":"JWT","kid":5}),
        &claims,
    );
    let at = "2026-12-01T12:01:00Z";
    for (service, code) in verdicts(&p, at, &numeric) {
        assert_eq!(code, "unknown_kid", "{service}");
    }
    let (_, v) = verify_json(&p, at, &numeric, &[]);
    assert_eq!(v["token"]["kid"], 5, "{v:#}");
    for r in reasons(&v) {
        assert!(
            r.contains("not a string") || r.contains("string kid"),
            "{r}"
        );
    }
    let hs = forge(
        &secret_key(&p),
        &json!({"alg":"HS256","typ":"JWT","kid":5}),
        &claims,
    );
    expect(
        &verdicts(&p, at, &hs),
        &[
            ("auth", "valid"),
            ("rest", "unknown_kid"),
            ("realtime", "valid"),
            ("storage", "valid"),
            ("functions", "valid"),
        ],
        "HS256 with kid 5",
    );
    p.keyctl(["token", "verify", &hs])
        .now(at)
        .status(1)
        .stdout_has("note: the header's kid is 5, not a string")
        .run();
}

/// A kid (or any header member or claim) with a newline or an escape sequence cannot add
/// lines to the text output of `token verify -` or reach the terminal raw.
#[test]
fn text_output_escapes_everything_a_token_carries() {
    let p = Project::fixture("upstream-2026-02");
    let forged = "x\n  rest       valid (the shared HS256 secret)\u{2028}\u{1b}[2J";
    let token = forge(
        &secret_key(&p),
        &json!({"alg":"HS256","typ":"JWT","kid": forged}),
        &json!({"role": "anon\nline 2: HS256 token role forged", "exp": t0() + 3600}),
    );
    let out = p
        .keyctl(["token", "verify", "-"])
        .now(T0)
        .stdin(format!("{token}\n"))
        .status(1)
        .run();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        6,
        "one line per token and one per service:\n{}",
        out.stdout
    );
    assert!(
        lines[0].starts_with("line 1: HS256 token kid x\\n"),
        "{}",
        lines[0]
    );
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{2028}'),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.contains("\\u{1b}[2J") && out.stdout.contains("\\u{2028}"));
    assert!(
        !lines.iter().any(|l| l.starts_with("  rest       valid")),
        "{}",
        out.stdout
    );
}

/// `token verify -` holds at most one capped line in memory: a 300 MB line under a 400 MB
/// address-space limit is reported as one rejected input, and the next line still verifies.
#[test]
fn an_endless_line_on_stdin_is_skipped_without_being_held() {
    let p = Project::fixture("upstream-2026-02");
    let good = sign(&p, T0, &["--role", "anon"]);
    let script = "ulimit -v 400000 && { head -c 300000000 /dev/zero | tr '\\0' A; printf '\\n%s\\n' \"$GOOD\"; } | \"$0\" \"$@\"";
    let out = p
        .keyctl(["token", "verify", "-", "--json", "--service", "rest"])
        .wrap(["sh", "-c", script])
        .var("GOOD", &good)
        .now(T0)
        .status(1)
        .run();
    let lines = out.json_lines();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["error"]["code"], "malformed");
    assert!(
        lines[0]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("longer than"),
        "{}",
        out.stdout
    );
    assert_eq!(
        (lines[1]["line"].as_i64(), lines[1]["valid"].as_bool()),
        (Some(2), Some(true))
    );
}

/// `--role anon --claim role=service_role` is a contradiction, refused, not a silent
/// service-role token.
#[test]
fn a_claim_contradicting_the_role_is_refused() {
    let p = Project::fixture("upstream-2026-02");
    p.keyctl([
        "token",
        "sign",
        "--role",
        "anon",
        "--claim",
        "role=service_role",
    ])
    .now(T0)
    .status(2)
    .stderr_has("contradicts --role")
    .run();
    p.keyctl(["token", "sign", "--role", "anon", "--claim", "role=anon"])
        .now(T0)
        .run();
}
