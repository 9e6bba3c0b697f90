//! `keyctl doctor` on every fixture and on the drifts operators meet, with the expected
//! findings written down as rule codes.

use serde_json::Value;

use crate::support::{Project, T0};

/// A project whose `.env` is private (0600), so only the finding under test is reported.
fn private(p: Project) -> Project {
    p.chmod(".env", 0o600);
    p
}

/// The doctor's verdict: exit code and the codes of its findings (sorted).
fn doctor(p: &Project, now: &str) -> (i32, Vec<String>, Value) {
    let out = p.keyctl(["doctor", "--json"]).now(now).any_status().run();
    let v = out.json();
    let mut codes: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect();
    codes.sort();
    (out.code.unwrap(), codes, v)
}

/// The first finding with `code`.
fn finding<'a>(v: &'a Value, code: &str) -> &'a Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} finding: {v:#}"))
}

#[test]
fn fixtures_have_the_expected_findings() {
    let cases: [(&str, &[&str], i32); 3] = [
        ("upstream-2026-02", &["demo_secret"], 1),
        ("mirror-singh-inder", &["demo_secret"], 1),
        ("third-party-dokploy", &[], 0),
    ];
    for (fixture, expected, code) in cases {
        let (exit, codes, v) = doctor(&private(Project::fixture(fixture)), T0);
        assert_eq!(codes, expected, "{fixture}: {v:#}");
        assert_eq!(exit, code, "{fixture}");
        assert_eq!(v["phase"], "legacy");
        assert_eq!(v["schema"], 1);
    }
}

#[test]
fn a_finished_migration_is_healthy_and_so_is_the_example() {
    let p = private(Project::fixture("third-party-dokploy"));
    p.migrate(T0).run();
    p.migrate("2026-12-01T12:25:00Z").run();
    p.migrate("2026-12-01T14:00:00Z")
        .arg("--remint-api-keys")
        .run();
    let (exit, codes, v) = doctor(&p, "2026-12-01T14:01:00Z");
    assert_eq!((exit, codes), (0, vec![]), "{v:#}");
    let (exit, codes, v) = doctor(&private(Project::example()), T0);
    assert_eq!((exit, codes), (0, vec![]), "{v:#}");
}

#[test]
fn demo_api_keys_warn_before_and_fail_after_they_expire() {
    let p = private(Project::fixture("upstream-2026-02"));
    let (_, codes, _) = doctor(&p, "2026-12-20T00:00:00Z");
    assert_eq!(
        codes.iter().filter(|c| *c == "api_key_expiring").count(),
        2,
        "{codes:?}"
    );
    let (exit, codes, v) = doctor(&p, "2027-02-01T00:00:00Z");
    assert_eq!(exit, 1);
    // One finding per expired key (its cause), not one per key and service.
    assert_eq!(
        codes.iter().filter(|c| *c == "api_key_expired").count(),
        2,
        "{codes:?}"
    );
    assert!(!codes.contains(&"api_key_rejected".to_owned()), "{codes:?}");
    let f = finding(&v, "api_key_expired");
    let reason = f["message"].as_str().unwrap();
    assert!(reason.contains("expired on 2027-01-09"), "{reason}");
    assert_eq!(f["services"].as_array().unwrap().len(), 5, "{f:#}");
}

#[test]
fn a_verifier_left_on_the_secret_is_named_with_its_line() {
    let p = private(Project::fixture("upstream-2026-02"));
    p.migrate(T0).run();
    // Someone restores rest's old line.
    let compose = p.read("docker-compose.yml").replace(
        "PGRST_JWT_SECRET: ${JWT_JWKS}",
        "PGRST_JWT_SECRET: ${JWT_SECRET}",
    );
    p.write("docker-compose.yml", compose);
    let (exit, codes, v) = doctor(&p, "2026-12-01T12:05:00Z");
    assert_eq!(exit, 1);
    assert!(codes.contains(&"not_wired".to_owned()), "{codes:?}");
    let f = finding(&v, "not_wired");
    assert_eq!(f["service"], "rest");
    assert_eq!(f["variable"], "PGRST_JWT_SECRET");
    assert!(
        f["place"].as_str().unwrap().contains("docker-compose.yml:"),
        "{f}"
    );
    // The human output: one line per finding, with the fix.
    let text = p
        .keyctl(["doctor"])
        .now("2026-12-01T12:05:00Z")
        .any_status()
        .run()
        .stdout;
    assert!(
        text.lines().any(|l| l.starts_with("error: ")
            && l.contains("service rest")
            && l.contains("fix: keyctl migrate")),
        "{text}"
    );
}

#[test]
fn configuration_drifts_are_reported() {
    let p = private(Project::fixture("upstream-2026-02"));
    // EdDSA is refused while the stack has Edge Functions…
    p.migrate(T0)
        .args(["--alg", "EdDSA"])
        .status(3)
        .stderr_has("Edge Functions")
        .run();
    // …so the drift is made by migrating with functions named "not Supabase's", then
    // looking at the stack as it is.
    // Realtime v2.78 cannot verify EdDSA either (SPEC §7: from v2.125.1).
    let not_functions = [
        "--service-is",
        "functions=none",
        "--service-is",
        "realtime=none",
    ];
    p.migrate(T0)
        .args(["--alg", "EdDSA"])
        .args(not_functions)
        .run();
    p.migrate("2026-12-01T12:25:00Z").args(not_functions).run();
    let compose = p.read("docker-compose.yml");
    let compose = compose.replacen(
        "      GOTRUE_JWT_KEYS: ${JWT_KEYS}\n",
        "      GOTRUE_JWT_KEYS: ${JWT_KEYS}\n      GOTRUE_JWT_VALIDMETHODS: HS256\n",
        1,
    );
    let compose = compose.replacen(
        "      PGRST_JWT_SECRET: ${JWT_JWKS}\n",
        "      PGRST_JWT_SECRET: ${JWT_JWKS}\n      PGRST_JWT_SECRET_IS_BASE64: \"true\"\n",
        1,
    );
    p.write("docker-compose.yml", compose);
    let (_, codes, v) = doctor(&p, "2026-12-01T12:30:00Z");
    for want in ["method_not_allowed", "service_config", "eddsa_functions"] {
        assert!(codes.contains(&want.to_owned()), "{want} missing: {v:#}");
    }
}

#[test]
fn healthcheck_and_overdue_revocation_and_readable_env() {
    let p = Project::fixture("upstream-2026-02");
    p.migrate(T0).run();
    p.migrate("2026-12-01T12:25:00Z").run();
    p.chmod(".env", 0o644);
    let (_, codes, _) = doctor(&p, "2026-12-20T00:00:00Z");
    assert!(codes.contains(&"finish_migration".to_owned()), "{codes:?}");
    assert!(codes.contains(&"env_readable".to_owned()), "{codes:?}");
    p.migrate("2026-12-20T00:00:00Z")
        .arg("--remint-api-keys")
        .run();
    let compose = p
        .read("docker-compose.yml")
        .replace("${REALTIME_HEALTHCHECK_TOKEN}", "${ANON_KEY}");
    p.write("docker-compose.yml", compose);
    let (_, codes, _) = doctor(&p, "2026-12-20T00:01:00Z");
    assert!(
        codes.contains(&"realtime_healthcheck".to_owned()),
        "{codes:?}"
    );
}

#[test]
fn key_set_problems_carry_the_kid() {
    let p = private(Project::generated("ES256"));
    let env = p.read(".env").replacen("\"alg\":\"ES256\",", "", 1);
    p.write(".env", env);
    let (exit, _, v) = doctor(&p, T0);
    assert_eq!(exit, 1);
    let f = finding(&v, "key_set");
    assert!(f["kid"].is_string(), "{f}");
    assert_eq!(f["variable"], "JWT_KEYS");
}

/// Auth reads `GOTRUE_JWT_VALIDMETHODS` below v2.187.0 and `GOTRUE_JWT_VALID_METHODS` from
/// it (supabase/auth #2334): the spelling the image does not read is reported as having no
/// effect, and only the one it reads can lock an algorithm out.
#[test]
fn auth_reads_the_methods_variable_its_version_spells() {
    let p = private(Project::fixture("upstream-2026-02"));
    p.migrate(T0).run();
    let base = p.read("docker-compose.yml");
    let pin = |var: &str, image: &str| {
        base.replacen(
            "      GOTRUE_JWT_KEYS:",
            &format!("      {var}: HS256\n      GOTRUE_JWT_KEYS:"),
            1,
        )
        .replace("supabase/gotrue:v2.186.0", image)
    };
    for (var, image, want) in [
        (
            "GOTRUE_JWT_VALID_METHODS",
            "supabase/gotrue:v2.186.0",
            "method_var_ignored",
        ),
        (
            "GOTRUE_JWT_VALIDMETHODS",
            "supabase/gotrue:v2.186.0",
            "method_not_allowed",
        ),
        (
            "GOTRUE_JWT_VALIDMETHODS",
            "supabase/gotrue:v2.187.0",
            "method_var_ignored",
        ),
        (
            "GOTRUE_JWT_VALID_METHODS",
            "supabase/gotrue:v2.187.0",
            "method_not_allowed",
        ),
    ] {
        p.write("docker-compose.yml", pin(var, image));
        let (_, codes, v) = doctor(&p, &crate::support::at(5));
        let other = if want == "method_var_ignored" {
            "method_not_allowed"
        } else {
            "method_var_ignored"
        };
        assert!(codes.contains(&want.to_owned()), "{var} on {image}: {v:#}");
        assert!(
            !codes.contains(&other.to_owned()),
            "{var} on {image}: {v:#}"
        );
        // The switch is refused only where Auth really reads the pin.
        let refused = p
            .migrate(crate::support::at(21))
            .args(["--dry-run"])
            .any_status()
            .run();
        assert_eq!(
            refused.code == Some(3),
            want == "method_not_allowed",
            "{var} on {image}: {}",
            refused.stderr
        );
    }
}

/// Expiry is each service's own: ten seconds after `exp`, Auth (no leeway) and the others
/// reject the key while PostgREST (30 s leeway) still accepts it.
#[test]
fn an_expired_key_names_the_services_that_reject_it_by_their_own_leeway() {
    let p = private(Project::fixture("upstream-2026-02"));
    let anon = p.env_value("ANON_KEY");
    let exp = keyctl::jws::decode(&anon).unwrap().claims["exp"]
        .as_i64()
        .unwrap();
    let ten_after = jiff::Timestamp::from_second(exp + 10).unwrap().to_string();
    let (exit, codes, v) = doctor(&p, &ten_after);
    assert_eq!(exit, 1, "{v:#}");
    assert!(codes.contains(&"api_key_expired".to_owned()), "{v:#}");
    let f = finding(&v, "api_key_expired");
    let services: Vec<&str> = f["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(services.contains(&"auth"), "{f:#}");
    assert!(!services.contains(&"rest"), "PostgREST allows 30 s: {f:#}");
}

/// The demo secret's fix follows the migration: start it in legacy, revoke when due once
/// switched.
#[test]
fn the_demo_secret_fix_follows_the_phase() {
    let p = private(Project::fixture("upstream-2026-02"));
    let fix = |now: &str| -> String {
        let (_, _, v) = doctor(&p, now);
        finding(&v, "demo_secret")["fix"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(fix(T0).starts_with("start the migration"), "{}", fix(T0));
    p.migrate(T0).run();
    p.migrate(crate::support::at(21)).run();
    let switched = fix(&crate::support::at(22));
    assert!(
        switched.starts_with("revoke the legacy secret when it is due"),
        "{switched}"
    );
}
