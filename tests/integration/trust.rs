//! Issue 9 on the shared fixtures, one defect at a time: API keys outside `.env` (an
//! `env_file:` file), a step that would break a service (the zero-downtime invariant), services
//! named by hand, and doctor's fixes, each run as printed to prove it removes its finding.

use serde_json::Value;

use crate::support::{Project, T0, at};

fn private(p: Project) -> Project {
    p.chmod(".env", 0o600);
    p
}

/// `keyctl doctor --json` at `now`.
fn doctor(p: &Project, now: &str) -> Value {
    p.keyctl(["doctor", "--json"])
        .now(now)
        .any_status()
        .run()
        .json()
}

fn codes(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

fn finding(v: &Value, code: &str) -> Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code}: {v:#}"))
        .clone()
}

/// Runs the command a finding's `fix` starts with, exactly as printed (up to the first
/// " (", ", then" or ";"), with this build's keyctl.
fn run_fix(p: &Project, fix: &str, now: &str) {
    let command = fix
        .split(" (")
        .next()
        .unwrap()
        .split(", then")
        .next()
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[0], "keyctl", "the fix is a keyctl command: {fix}");
    p.keyctl(&words[1..]).no_project().now(now).run();
}

/// Kong reads the API keys from `keys.env` through `env_file:` instead of `.env`.
fn keys_in_env_file() -> Project {
    let p = private(Project::fixture("upstream-2026-02"));
    let compose = p.read("docker-compose.yml");
    let kong_at = compose.find("\n  kong:\n").unwrap();
    let (head, tail) = compose.split_at(kong_at);
    let tail = tail
        .replacen("      SUPABASE_ANON_KEY: ${ANON_KEY}\n", "", 1)
        .replacen("      SUPABASE_SERVICE_KEY: ${SERVICE_ROLE_KEY}\n", "", 1)
        .replacen(
            "    image: kong:2.8.1\n",
            "    image: kong:2.8.1\n    env_file: keys.env\n",
            1,
        );
    p.write("docker-compose.yml", format!("{head}{tail}"));
    p.write(
        "keys.env",
        format!(
            "SUPABASE_ANON_KEY={}\nSUPABASE_SERVICE_KEY={}\n",
            p.env_value("ANON_KEY"),
            p.env_value("SERVICE_ROLE_KEY")
        ),
    );
    p.chmod("keys.env", 0o600);
    p
}

#[test]
fn api_keys_in_an_env_file_need_consent_and_are_reminted_where_they_live() {
    let p = keys_in_env_file();
    p.migrate(T0).run();
    p.migrate(at(21)).run();
    let before = p.read("keys.env");
    p.migrate(at(21 + 81))
        .status(3)
        .stderr_has("keys.env SUPABASE_ANON_KEY")
        .stderr_has("--remint-api-keys")
        .run();
    assert_eq!(p.read("keys.env"), before, "refused: nothing written");
    p.migrate(at(21 + 81))
        .arg("--remint-api-keys")
        .stdout_has("keys.env SUPABASE_ANON_KEY")
        .stdout_has("kong")
        .run();
    let keys = p.read("keys.env");
    let anon = keys
        .lines()
        .find_map(|l| l.strip_prefix("SUPABASE_ANON_KEY="))
        .unwrap();
    assert_eq!(anon, p.env_value("ANON_KEY"), "one key, one new value");
    let header = keyctl::jws::decode(anon).unwrap();
    assert!(header.kid().is_some(), "re-minted with the asymmetric key");
    p.keyctl(["token", "verify", anon, "--role", "anon"])
        .now(at(21 + 82))
        .run();
    let v = doctor(&p, &at(21 + 82));
    assert!(!codes(&v).iter().any(|c| c.starts_with("api_key")), "{v:#}");
}

#[test]
fn a_step_that_would_break_a_service_is_refused_naming_it() {
    let p = private(Project::fixture("upstream-2026-02"));
    p.migrate(T0).run();
    // Someone pins Auth's accepted methods to HS256 after step 1 (in the spelling Auth
    // v2.186 reads): the switch would make Auth reject every session it signs with the new key.
    let compose = p.read("docker-compose.yml").replacen(
        "      GOTRUE_JWT_KEYS:",
        "      GOTRUE_JWT_VALIDMETHODS: HS256\n      GOTRUE_JWT_KEYS:",
        1,
    );
    p.write("docker-compose.yml", &compose);
    let env = p.read(".env");
    p.migrate(at(21))
        .status(3)
        .stderr_has("service auth")
        .stderr_has("would reject sessions signed by ES256")
        .stderr_has("Nothing was written")
        .run();
    assert_eq!(p.read(".env"), env);
    assert_eq!(p.read("docker-compose.yml"), compose);
}

#[test]
fn a_service_with_a_custom_image_is_named_by_hand() {
    let p = private(Project::fixture("upstream-2026-02"));
    let compose = p.read("docker-compose.yml");
    let auth_image = compose
        .lines()
        .find(|l| l.contains("image: supabase/gotrue"))
        .unwrap()
        .to_owned();
    p.write(
        "docker-compose.yml",
        compose.replace(
            &auth_image,
            "    image: registry.example.com/fork/identity:v2.186.0",
        ),
    );
    let v = doctor(&p, T0);
    assert!(codes(&v).contains(&"no_auth".to_owned()), "{v:#}");
    p.migrate(T0)
        .status(2)
        .stderr_has("--service-is")
        .stderr_has("keyctl.toml")
        .run();
    // The flag names it for one run…
    p.migrate(T0)
        .args(["--service-is", "auth=auth", "--dry-run"])
        .stdout_has("GOTRUE_JWT_KEYS")
        .run();
    // …keyctl.toml for every run, doctor included.
    p.write("keyctl.toml", "[services]\nauth = \"auth\"\n");
    let v = doctor(&p, T0);
    assert!(!codes(&v).contains(&"no_auth".to_owned()), "{v:#}");
    p.migrate(T0).stdout_has("auth").run();
    assert!(
        p.read("docker-compose.yml")
            .contains("GOTRUE_JWT_KEYS: ${JWT_KEYS}")
    );
    p.write("keyctl.toml", "[services]\nnot-a-service = \"auth\"\n");
    p.migrate(at(21))
        .status(2)
        .stderr_has("not-a-service")
        .run();
}

#[test]
fn doctor_warns_when_there_is_no_compose_file() {
    let p = private(Project::fixture("upstream-2026-02"));
    std::fs::remove_file(p.file("docker-compose.yml")).unwrap();
    let v = doctor(&p, T0);
    assert!(codes(&v).contains(&"no_compose".to_owned()), "{v:#}");
}

#[test]
fn a_split_secret_is_one_finding_blocks_step_one_and_its_fix_removes_it() {
    let p = private(Project::fixture("upstream-2026-02"));
    // Storage and functions read an older secret through their own variable.
    let compose = p
        .read("docker-compose.yml")
        .replace(
            "AUTH_JWT_SECRET: ${JWT_SECRET}",
            "AUTH_JWT_SECRET: ${OLD_SECRET}",
        )
        .replace(
            "      JWT_SECRET: ${JWT_SECRET}\n      SUPABASE_URL",
            "      JWT_SECRET: ${OLD_SECRET}\n      SUPABASE_URL",
        );
    p.write("docker-compose.yml", compose);
    p.write(
        ".env",
        format!(
            "{}OLD_SECRET=an-older-secret-that-nobody-signs-with-anymore\n",
            p.read(".env")
        ),
    );
    let v = doctor(&p, T0);
    let splits: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "split_secret")
        .collect();
    assert_eq!(splits.len(), 1, "one cause: {v:#}");
    assert!(
        !codes(&v).contains(&"api_key_rejected".to_owned()),
        "its consequences are folded in: {v:#}"
    );
    let before = p.read(".env");
    p.migrate(T0).status(3).stderr_has("split-secret").run();
    assert_eq!(p.read(".env"), before);
    run_fix(&p, splits[0]["fix"].as_str().unwrap(), T0);
    let v = doctor(&p, T0);
    assert!(!codes(&v).contains(&"split_secret".to_owned()), "{v:#}");
    p.migrate(T0).run();
}

#[test]
fn a_reverted_compose_file_is_one_finding_and_its_fix_removes_it() {
    let p = private(Project::fixture("upstream-2026-02"));
    let original = p.read("docker-compose.yml");
    p.migrate(T0).run();
    p.migrate(at(21)).run();
    p.write("docker-compose.yml", &original);
    let v = doctor(&p, &at(22));
    let c = codes(&v);
    assert_eq!(c.iter().filter(|c| *c == "not_wired").count(), 1, "{v:#}");
    assert!(!c.contains(&"api_key_rejected".to_owned()), "{v:#}");
    let f = finding(&v, "not_wired");
    assert_eq!(f["services"].as_array().unwrap().len(), 5, "{f:#}");
    assert!(!f["consequences"].as_array().unwrap().is_empty(), "{f:#}");
    run_fix(&p, f["fix"].as_str().unwrap(), &at(22));
    let v = doctor(&p, &at(22));
    assert!(!codes(&v).contains(&"not_wired".to_owned()), "{v:#}");
}

#[test]
fn a_retired_secret_still_trusted_is_reported_and_its_fix_removes_it() {
    let p = private(Project::fixture("third-party-dokploy"));
    let old = p.env_value("JWT_SECRET");
    p.migrate(T0).run();
    p.migrate(at(21)).run();
    p.migrate(at(21 + 81)).arg("--remint-api-keys").run();
    // Someone pastes the old secret into a compose line.
    let compose = p.read("docker-compose.yml").replacen(
        "AUTH_JWT_SECRET: ${JWT_SECRET}",
        &format!("AUTH_JWT_SECRET: {old}"),
        1,
    );
    p.write("docker-compose.yml", compose);
    let v = doctor(&p, &at(21 + 82));
    let f = finding(&v, "retired_secret_trusted");
    // The first AUTH_JWT_SECRET of the file is studio's: every service counts, not only verifiers.
    assert_eq!(f["service"], "studio", "{f:#}");
    run_fix(&p, f["fix"].as_str().unwrap(), &at(21 + 82));
    let v = doctor(&p, &at(21 + 82));
    assert!(
        !codes(&v).contains(&"retired_secret_trusted".to_owned()),
        "{v:#}"
    );
}

/// The first outage: the secret in a platform's own variable with a default on every
/// line, and an unrelated `JWT_SECRET` in `.env`. The legacy key keyctl publishes is what Auth
/// signs with, so a session Auth issued before step 1 (minted here by PyJWT with that secret)
/// verifies at every service after each step.
#[test]
fn the_secret_auth_uses_is_the_legacy_key_whatever_its_variable() {
    let p = private(Project::fixture("upstream-2026-02"));
    let real = "the-secret-auth-really-signs-with-0123456789";
    let compose = p.read("docker-compose.yml").replace(
        "${JWT_SECRET}",
        "${APP_JWT_TOKEN:-default-secret-of-the-template-0123456789}",
    );
    p.write("docker-compose.yml", compose);
    p.write(
        ".env",
        format!(
            "{}APP_JWT_TOKEN={real}\n",
            p.read(".env").replace(
                "JWT_SECRET=",
                "JWT_SECRET=an-unrelated-value-nobody-reads-0123456789#"
            )
        ),
    );
    let mint = crate::support::run_tool(
        "python3",
        &[
            crate::support::repo()
                .join("tests/stacks/check_tokens.py")
                .to_str()
                .unwrap(),
            "mint",
            real,
            "authenticated",
            &("2026-12-01T11:30:00Z"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_second())
            .to_string(),
        ],
        "",
    );
    let session = mint.stdout.trim().to_owned();
    p.migrate(T0).run();
    let jwks = p.env_value("JWT_JWKS");
    let oct = keyctl::b64::encode(real.as_bytes());
    assert!(jwks.contains(&oct), "the oct key is APP_JWT_TOKEN's value");
    for now in [at(1), at(22)] {
        if now == at(22) {
            p.migrate(at(21)).run();
        }
        p.keyctl(["token", "verify", &session])
            .now(&now)
            .stdout_has("valid")
            .run();
    }
    p.migrate(at(21 + 81)).arg("--remint-api-keys").run();
    let env = p.read(".env");
    assert!(!env.contains(real), "the retired secret is gone from .env");
    assert!(
        env.contains("an-unrelated-value-nobody-reads"),
        "the unrelated variable is left alone"
    );
    // The retired APP_JWT_TOKEN value pasted back into one service is found (by the hash the
    // state file keeps, even without the backup).
    std::fs::remove_dir_all(p.file(".keyctl/backups")).unwrap();
    let compose = p.read("docker-compose.yml").replacen(
        "API_JWT_SECRET: ${APP_JWT_TOKEN:-default-secret-of-the-template-0123456789}",
        &format!("API_JWT_SECRET: {real}"),
        1,
    );
    p.write("docker-compose.yml", compose);
    let v = doctor(&p, &at(21 + 82));
    let f = finding(&v, "retired_secret_trusted");
    assert_eq!(f["service"], "realtime", "{f:#}");
}

/// Every remaining diagnosable case, fixed by running the printed command as it is.
#[test]
fn each_printed_fix_removes_its_finding() {
    // An expired API key (the demo keys expire on 2027-01-09).
    let p = private(Project::fixture("upstream-2026-02"));
    let late = "2027-02-01T00:00:00Z";
    let v = doctor(&p, late);
    let f = finding(&v, "api_key_expired");
    run_fix(&p, f["fix"].as_str().unwrap(), late);
    let v = doctor(&p, late);
    let left: Vec<Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["code"] == "api_key_expired" && g["variable"] == f["variable"])
        .cloned()
        .collect();
    assert!(left.is_empty(), "{v:#}");

    // A replaced JWT_JWKS (one key dropped): one key_set finding, repaired by its fix.
    let p = private(Project::fixture("upstream-2026-02"));
    p.migrate(T0).run();
    p.migrate(at(21)).run();
    let jwks: Value = serde_json::from_str(&p.env_value("JWT_JWKS")).unwrap();
    let kept: Vec<&Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["kty"] == "oct")
        .collect();
    let replaced = serde_json::to_string(&serde_json::json!({ "keys": kept })).unwrap();
    let env = p.read(".env");
    let line = env.lines().find(|l| l.starts_with("JWT_JWKS=")).unwrap();
    p.write(".env", env.replace(line, &format!("JWT_JWKS='{replaced}'")));
    let v = doctor(&p, &at(22));
    let sets: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "key_set")
        .collect();
    assert_eq!(sets.len(), 1, "{v:#}");
    assert!(
        !codes(&v).contains(&"api_key_rejected".to_owned()),
        "folded into the cause: {v:#}"
    );
    run_fix(&p, sets[0]["fix"].as_str().unwrap(), &at(22));
    let v = doctor(&p, &at(22));
    assert!(!codes(&v).contains(&"key_set".to_owned()), "{v:#}");

    // An ANON_KEY that is not a JWT at all.
    let p = private(Project::fixture("upstream-2026-02"));
    let env = p.read(".env");
    let line = env.lines().find(|l| l.starts_with("ANON_KEY=")).unwrap();
    p.write(".env", env.replace(line, "ANON_KEY=not-a-jwt"));
    let v = doctor(&p, T0);
    let f = finding(&v, "api_key_malformed");
    run_fix(&p, f["fix"].as_str().unwrap(), T0);
    let v = doctor(&p, T0);
    assert!(
        !codes(&v).contains(&"api_key_malformed".to_owned()),
        "{v:#}"
    );
}
