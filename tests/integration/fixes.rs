//! The fixes `keyctl doctor` prints as commands: `token remint` (API keys signed again with
//! the key Auth signs with, written wherever they are held) and `jwks --repair` (`JWT_JWKS`
//! derived from `JWT_KEYS` again), on the upstream stack: the write flow's plan, dry run,
//! refusals that leave every file as it was, and a second run with nothing to do.

use serde_json::{Value, json};

use crate::support::{Project, T0, at, pyjwt};
use keyctl::jws;

/// After the upstream demo keys expired (2027-01-09).
const LATER: &str = "2027-02-01T00:00:00Z";

/// The project's files that a refused or dry run must leave as they were.
fn snapshot(p: &Project, files: &[&str]) -> Vec<String> {
    files.iter().map(|f| p.read(f)).collect()
}

/// What PyJWT says of `token` checked against the HS256 `secret` (signature only: the
/// clock is KEYCTL_NOW's, not PyJWT's).
fn pyjwt_hs256(secret: &str, token: &str) -> String {
    let jwks = json!({"keys": [{"kty": "oct", "k": keyctl::b64::encode(secret.as_bytes()), "alg": "HS256"}]});
    let ran = pyjwt(
        &["verify-all"],
        &json!({"jwks": jwks, "tokens": [token]}).to_string(),
    );
    assert!(ran.ok, "PyJWT failed: {}", ran.stderr);
    ran.stdout.trim().to_owned()
}

fn claims(token: &str) -> serde_json::Map<String, Value> {
    jws::decode(token).unwrap().claims.clone()
}

#[test]
fn an_expired_anon_key_is_reminted_with_the_secret_and_verifies_in_pyjwt() {
    let p = Project::fixture("upstream-2026-02");
    p.chmod(".env", 0o600);
    let old = p.env_value("ANON_KEY");
    p.keyctl(["token", "remint", "--yes"])
        .now(LATER)
        .stdout_has("re-mint the anon key held in .env ANON_KEY with the legacy JWT_SECRET")
        .stdout_has("it expired on 2027-01-09")
        .stdout_has("(a client-visible change)")
        .stdout_has("-remint")
        .stdout_has("then: give every client the new anon key from .env ANON_KEY")
        .stdout_has("kong")
        .lacks(old.clone())
        .run();
    let anon = p.env_value("ANON_KEY");
    assert_ne!(anon, old);
    let c = claims(&anon);
    assert_eq!(c["role"], "anon");
    assert_eq!(c["iss"], "supabase");
    let later: jiff::Timestamp = LATER.parse().unwrap();
    assert_eq!(c["iat"], later.as_second());
    assert_eq!(c["exp"], later.as_second() + 3650 * 86_400);
    assert_eq!(jws::decode(&anon).unwrap().kid(), None);
    assert_eq!(pyjwt_hs256(&p.env_value("JWT_SECRET"), &anon), "ok");
    assert_eq!(
        pyjwt_hs256("not-the-secret-of-this-project-0123456789", &anon),
        "rejected: InvalidSignatureError"
    );
    assert_eq!(
        claims(&p.env_value("SERVICE_ROLE_KEY"))["role"],
        "service_role"
    );
    p.keyctl(["token", "verify"]).arg(&anon).now(LATER).run();
    p.keyctl(["token", "verify"])
        .arg(p.env_value("SERVICE_ROLE_KEY"))
        .now(LATER)
        .run();
    // Run again: both keys are fresh.
    let before = snapshot(&p, &[".env"]);
    p.keyctl(["token", "remint", "--yes"])
        .now(LATER)
        .stdout_has("nothing to do: every API key (.env ANON_KEY, .env SERVICE_ROLE_KEY)")
        .run();
    assert_eq!(snapshot(&p, &[".env"]), before);
}

#[test]
fn a_key_in_an_env_file_and_its_copy_in_kongs_file_are_both_rewritten() {
    let p = Project::fixture("upstream-2026-02");
    // A key signed by a secret no service trusts, held in studio's env_file and, literally,
    // in Kong's declarative file.
    let stray = keyctl::keyset::legacy_material("a-secret-this-stack-never-used-0123456789");
    let bad = keyctl::apikey::mint(&stray, None, "anon", T0.parse().unwrap()).unwrap();
    p.write(
        "keys.env",
        format!("# studio's keys\nSUPABASE_ANON_KEY={bad}\n"),
    );
    std::fs::create_dir_all(p.file("volumes/api")).unwrap();
    p.write(
        "volumes/api/kong.yml",
        format!("consumers:\n  - username: anon\n    keyauth_credentials:\n      - key: {bad}\n"),
    );
    let compose = p.read("docker-compose.yml").replacen(
        "    container_name: supabase-studio\n",
        "    container_name: supabase-studio\n    env_file:\n      - keys.env\n",
        1,
    );
    p.write("docker-compose.yml", &compose);
    let env = snapshot(&p, &[".env", "docker-compose.yml"]);
    let out = p
        .keyctl(["token", "remint", "--yes"])
        .now(T0)
        .stdout_has("keys.env SUPABASE_ANON_KEY, ./volumes/api/kong.yml:4")
        .stdout_has("no service accepts its signature")
        .stdout_has("--force-recreate studio kong")
        .lacks(bad.clone())
        .run();
    assert!(!out.stdout.contains(".env ANON_KEY"), "{}", out.stdout);
    assert_eq!(snapshot(&p, &[".env", "docker-compose.yml"]), env);
    let keys = p.read("keys.env");
    assert!(
        keys.starts_with("# studio's keys\nSUPABASE_ANON_KEY=eyJ"),
        "{keys}"
    );
    let new = keys.lines().nth(1).unwrap()["SUPABASE_ANON_KEY=".len()..].to_owned();
    assert_ne!(new, bad);
    assert_eq!(claims(&new)["role"], "anon");
    assert_eq!(
        p.read("volumes/api/kong.yml"),
        format!("consumers:\n  - username: anon\n    keyauth_credentials:\n      - key: {new}\n")
    );
    assert_eq!(pyjwt_hs256(&p.env_value("JWT_SECRET"), &new), "ok");
    p.keyctl(["token", "verify"]).arg(&new).now(T0).run();
    p.keyctl(["token", "remint", "--yes"])
        .now(T0)
        .stdout_has("nothing to do")
        .run();
}

#[test]
fn a_wiring_fault_is_refused_and_nothing_changes() {
    let p = Project::fixture("upstream-2026-02");
    // PostgREST reads a secret of its own: every key Auth's secret signed fails there only.
    let compose = p.read("docker-compose.yml").replacen(
        "      PGRST_JWT_SECRET: ${JWT_SECRET}\n",
        "      PGRST_JWT_SECRET: an-unrelated-secret-that-is-long-enough-0123456789\n",
        1,
    );
    p.write("docker-compose.yml", &compose);
    let files = [".env", "docker-compose.yml"];
    let before = snapshot(&p, &files);
    for args in [
        vec!["token", "remint", "--yes"],
        vec!["token", "remint", "--yes", "--var", "ANON_KEY"],
    ] {
        p.keyctl(args)
            .now(LATER)
            .status(3)
            .stderr_has(".env ANON_KEY: is rejected by rest")
            .stderr_has("wiring fault")
            .stderr_has("keyctl migrate rewire")
            .stderr_has("Nothing was written")
            .run();
    }
    assert_eq!(snapshot(&p, &files), before);
    assert!(!p.file(".keyctl").exists(), "a refusal leaves no trace");
}

#[test]
fn remint_by_name_refuses_the_healthcheck_token_and_unknown_names() {
    let p = Project::fixture("upstream-2026-02");
    p.keyctl([
        "token",
        "remint",
        "--var",
        "REALTIME_HEALTHCHECK_TOKEN",
        "--yes",
    ])
    .now(T0)
    .status(2)
    .stderr_has("realtime's healthcheck token")
    .run();
    p.keyctl(["token", "remint", "--var", "NO_SUCH_KEY", "--yes"])
        .now(T0)
        .status(2)
        .stderr_has("--var NO_SUCH_KEY: no API key")
        .run();
    p.keyctl(["token", "remint", "--var", "JWT_SECRET", "--yes"])
        .now(T0)
        .status(2)
        .stderr_has("is not an API key")
        .run();
    // A valid key named on the command line is re-minted anyway, with the lifetime asked for.
    let anon = p.env_value("ANON_KEY");
    let old = p.env_value("SERVICE_ROLE_KEY");
    p.keyctl([
        "token",
        "remint",
        "--var",
        "SERVICE_ROLE_KEY",
        "--exp",
        "90d",
        "--yes",
    ])
    .now(T0)
    .stdout_has("asked for with --var")
    .run();
    let new = p.env_value("SERVICE_ROLE_KEY");
    assert_ne!(new, old);
    let c = claims(&new);
    assert_eq!(c["role"], "service_role");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        90 * 86_400
    );
    assert_eq!(p.env_value("ANON_KEY"), anon, "only the named key changes");
}

#[test]
fn dry_runs_write_nothing() {
    let p = Project::fixture("upstream-2026-02");
    let files = [".env", "docker-compose.yml"];
    let before = snapshot(&p, &files);
    p.keyctl(["token", "remint", "--dry-run"])
        .now(LATER)
        .stdout_has("ANON_KEY=<JWT HS256 role anon>")
        .stderr_has("dry run: nothing was written")
        .run();
    assert_eq!(snapshot(&p, &files), before);
    assert!(!p.file(".keyctl").exists(), "a dry run takes no lock");
    // Without a terminal and without --yes, nothing is written either.
    p.keyctl(["token", "remint"])
        .now(LATER)
        .status(2)
        .stderr_has("pass --yes")
        .run();
    assert_eq!(snapshot(&p, &files), before);
}

/// The upstream stack in phase switched (two steps: T0 and 21 minutes later).
fn switched() -> Project {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).run();
    p.migrate(at(21)).run();
    assert_eq!(p.phase(at(22)), "switched");
    p
}

/// The upstream stack in phase switched, its `JWT_JWKS` rewritten by `edit`.
fn switched_with_jwks(edit: impl FnOnce(&mut Value)) -> Project {
    let p = switched();
    let old = p.env_value("JWT_JWKS");
    let mut jwks: Value = serde_json::from_str(&old).unwrap();
    edit(&mut jwks);
    let env = p.read(".env");
    let edited = env.replace(&format!("JWT_JWKS='{old}'"), &format!("JWT_JWKS='{jwks}'"));
    assert!(edited != env, "JWT_JWKS is not where keyctl wrote it");
    p.write(".env", edited);
    p
}

#[test]
fn jwks_repair_puts_back_the_asymmetric_key() {
    let p = switched_with_jwks(|jwks| {
        jwks["keys"]
            .as_array_mut()
            .unwrap()
            .retain(|k| k.get("kid").is_none());
    });
    p.keyctl(["jwks", "--check"])
        .now(at(22))
        .status(1)
        .stdout_has("is in JWT_KEYS but not in JWT_JWKS")
        .run();
    let before = snapshot(&p, &[".env"]);
    p.keyctl(["jwks", "--repair", "--dry-run"])
        .now(at(22))
        .stdout_has("JWT_JWKS=<public set: HS256 legacy verify>")
        .stderr_has("dry run: nothing was written")
        .run();
    assert_eq!(snapshot(&p, &[".env"]), before);
    p.keyctl(["jwks", "--repair", "--yes"])
        .now(at(22))
        .stdout_has("rewrite JWT_JWKS to the public keys JWT_KEYS derives")
        .stdout_has("now: kid ")
        .stdout_has("-jwks-repair")
        .stdout_has("--force-recreate rest realtime storage functions")
        .run();
    p.keyctl(["jwks", "--check"]).now(at(22)).run();
    let derived = p
        .keyctl(["jwks", "--format", "json"])
        .now(at(22))
        .run()
        .json();
    let now: Value = serde_json::from_str(&p.env_value("JWT_JWKS")).unwrap();
    assert_eq!(now, derived["JWT_JWKS"]);
    p.keyctl(["jwks", "--repair", "--yes"])
        .now(at(23))
        .stdout_has("nothing to do:")
        .run();
}

#[test]
fn jwks_repair_ignores_order_and_formatting_and_needs_valid_keys() {
    let p = switched_with_jwks(|jwks| {
        let keys = jwks["keys"].as_array_mut().unwrap();
        keys.reverse();
    });
    let spaced = p
        .read(".env")
        .lines()
        .map(|l| match l.strip_prefix("JWT_JWKS='") {
            Some(v) => format!(
                "JWT_JWKS=' {}'",
                v.trim_end_matches('\'').replace(",\"", ", \"")
            ),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    p.write(".env", &spaced);
    p.keyctl(["jwks", "--repair", "--yes"])
        .now(at(22))
        .stdout_has("nothing to do:")
        .run();
    assert_eq!(p.read(".env"), spaced);
    // A JWT_KEYS with two signing keys is no source to derive from.
    let broken = spaced.replace(
        "\"key_ops\":[\"verify\"]",
        "\"key_ops\":[\"sign\",\"verify\"]",
    );
    assert_ne!(broken, spaced);
    p.write(".env", &broken);
    p.keyctl(["jwks", "--repair", "--yes"])
        .now(at(22))
        .status(2)
        .stderr_has("JWT_KEYS")
        .run();
    assert_eq!(p.read(".env"), broken);
}

#[test]
fn after_the_switch_keys_are_reminted_with_the_new_key_but_not_the_healthchecks() {
    let p = switched();
    let signer = keyctl::keyset::parse_private_set(&p.env_value("JWT_KEYS"), "JWT_KEYS")
        .unwrap()
        .into_iter()
        .find(keyctl::jwk::Jwk::can_sign)
        .unwrap();
    // Realtime's healthcheck still sends ANON_KEY, which its endpoint accepts only as HS256.
    let before = snapshot(&p, &[".env"]);
    p.keyctl(["token", "remint", "--var", "ANON_KEY", "--yes"])
        .now(at(30))
        .status(3)
        .stderr_has("healthcheck")
        .run();
    assert_eq!(snapshot(&p, &[".env"]), before);
    p.keyctl(["token", "remint", "--var", "ANON_KEY_ASYMMETRIC", "--yes"])
        .now(at(30))
        .stdout_has("with ES256 key")
        .stdout_has("--force-recreate kong")
        .run();
    let new = p.env_value("ANON_KEY_ASYMMETRIC");
    assert_eq!(jws::decode(&new).unwrap().kid(), signer.kid.as_deref());
    assert!(jws::decode(&new).unwrap().verifies_with(&signer.material));
    p.keyctl(["token", "verify"]).arg(&new).now(at(30)).run();
    assert_eq!(
        p.env_value("ANON_KEY"),
        before[0]
            .lines()
            .find_map(|l| l.strip_prefix("ANON_KEY="))
            .unwrap()
    );
}

#[test]
fn a_literal_key_in_the_compose_file_is_rewritten_in_place() {
    let p = Project::fixture("upstream-2026-02");
    let stray = keyctl::keyset::legacy_material("a-secret-this-stack-never-used-0123456789");
    let bad = keyctl::apikey::mint(&stray, None, "service_role", T0.parse().unwrap()).unwrap();
    let compose = p.read("docker-compose.yml").replacen(
        "      HOSTNAME: \"::\"\n",
        &format!("      HOSTNAME: \"::\"\n      STUDIO_SERVICE_KEY: {bad}\n"),
        1,
    );
    p.write("docker-compose.yml", &compose);
    let env = p.read(".env");
    p.keyctl(["token", "remint", "--yes"])
        .now(T0)
        .stdout_has("(studio STUDIO_SERVICE_KEY)")
        .stdout_has("--force-recreate studio")
        .lacks(bad.clone())
        .run();
    assert_eq!(p.read(".env"), env);
    let after = p.read("docker-compose.yml");
    let line = after
        .lines()
        .find_map(|l| l.strip_prefix("      STUDIO_SERVICE_KEY: "))
        .unwrap();
    assert_ne!(line, bad);
    assert_eq!(claims(line)["role"], "service_role");
    assert_eq!(
        after.replace(line, &bad),
        compose,
        "only that value changed"
    );
    p.keyctl(["token", "verify"]).arg(line).now(T0).run();
}
