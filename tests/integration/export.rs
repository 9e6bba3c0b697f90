//! `keyctl export --encrypt` and `keyctl import`: round trips (a generated project, a project
//! mid-migration restored on a "fresh machine", a legacy secret), the file's privacy, wrong
//! passwords and damaged files, where the password may come from (never argv), refusals, and
//! interop with node `jose` in both directions.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use jiff::{SignedDuration, Timestamp};
use predicates::prelude::*;
use serde_json::Value;

use crate::migrate::fixture_project;
use crate::support::{Project, dotenv_opt, dotenv_value, keyctl, run_tool};
use keyctl::b64;
use keyctl::jwk::PRIVATE_MEMBERS;

const PASSWORD: &str = "correct horse battery staple";
/// The environment variable the tests hand the password through.
const PW_VAR: &str = "KEYCTL_TEST_BACKUP_PASSWORD";
const T0: &str = "2026-12-01T12:00:00Z";

fn at(offset_mins: i64) -> String {
    let t: Timestamp = T0.parse().unwrap();
    (t + SignedDuration::from_mins(offset_mins)).to_string()
}

/// A file outside any project holding `password` on its first line.
fn password_file(password: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("password");
    std::fs::write(&path, format!("{password}\nsecond line ignored\n")).unwrap();
    (dir, path)
}

fn export_cmd(p: &Project, out: &Path, now: &str) -> assert_cmd::Command {
    let mut cmd = keyctl();
    cmd.env("KEYCTL_NOW", now)
        .env(PW_VAR, PASSWORD)
        .args(["export", "--encrypt", "--password-env", PW_VAR, "--project"])
        .arg(p.path())
        .arg("--out")
        .arg(out);
    cmd
}

fn export(p: &Project, out: &Path, now: &str) -> Output {
    let o = export_cmd(p, out, now).output().unwrap();
    assert!(
        o.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn import(p: &Project, input: &Path, now: &str, extra: &[&str]) -> Output {
    let (_dir, pw) = password_file(PASSWORD);
    keyctl()
        .env("KEYCTL_NOW", now)
        .args(["import", "--password-file"])
        .arg(&pw)
        .arg("--project")
        .arg(p.path())
        .arg("--in")
        .arg(input)
        .args(extra)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Every private value of a project: the private JWK members and JWT_SECRET (raw and as the
/// oct key's base64url), for scanning files and output.
fn secrets_of(env: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(keys) = dotenv_opt(env, "JWT_KEYS") {
        for k in json(&keys).as_array().unwrap() {
            for m in PRIVATE_MEMBERS.iter().chain(&["k"]) {
                if let Some(v) = k.get(*m).and_then(Value::as_str) {
                    out.push(v.to_owned());
                }
            }
        }
    }
    if let Some(s) = dotenv_opt(env, "JWT_SECRET") {
        out.push(b64::encode(s.as_bytes()));
        out.push(s);
    }
    assert!(!out.is_empty(), "no key material in {}", env.display());
    out
}

fn assert_no_secret(haystack: &str, secrets: &[String], what: &str) {
    for s in secrets {
        assert!(
            !haystack.contains(s.as_str()),
            "{what} holds private key material"
        );
    }
}

fn phase(p: &Project, now: &str) -> String {
    let o = keyctl()
        .env("KEYCTL_NOW", now)
        .args(["migrate", "status", "--json", "--project"])
        .arg(p.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    json(&String::from_utf8_lossy(&o.stdout))["phase"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn migrate(p: &Project, now: &str, extra: &[&str]) -> Output {
    keyctl()
        .env("KEYCTL_NOW", now)
        .args(["migrate", "--yes", "--project"])
        .arg(p.path())
        .args(extra)
        .output()
        .unwrap()
}

/// A dual-verify project made with `keyctl migrate` from a fixture.
fn dual_verify(fixture: &str) -> Project {
    let p = fixture_project(fixture);
    let o = migrate(&p, T0, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(phase(&p, &at(1)), "dual-verify");
    p
}

fn backup_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("keys.jwe")
}

#[test]
fn round_trip_restores_a_generated_project_and_a_second_import_has_nothing_to_do() {
    let source = Project::generated("RS256");
    let target = Project::generated("ES256");
    let out = tempfile::tempdir().unwrap();
    let file = backup_path(&out);
    let exported = export(&source, &file, T0);
    // The target holds other valid keys: replacing them is deliberate here.
    let imported = import(&target, &file, &at(5), &["--yes", "--force"]);
    assert!(imported.status.success(), "{}", text(&imported));

    let (s, t) = (source.file(".env"), target.file(".env"));
    assert_eq!(
        json(&dotenv_value(&t, "JWT_KEYS")),
        json(&dotenv_value(&s, "JWT_KEYS"))
    );
    assert_eq!(
        json(&dotenv_value(&t, "JWT_JWKS")),
        json(&dotenv_value(&s, "JWT_JWKS"))
    );
    keyctl()
        .args(["jwks", "--check", "--project"])
        .arg(target.path())
        .assert()
        .success();
    let secrets = secrets_of(&s);
    assert_no_secret(&text(&exported), &secrets, "export's output");
    assert_no_secret(&text(&imported), &secrets, "import's output");
    assert!(
        target.file(".keyctl/backups").is_dir(),
        "import keeps a backup of the old .env"
    );

    let before = target.read(".env");
    let again = import(&target, &file, &at(6), &["--yes"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("nothing to do"), "{}", text(&again));
    assert_eq!(target.read(".env"), before);
    assert_eq!(
        std::fs::read_dir(target.file(".keyctl/backups"))
            .unwrap()
            .count(),
        1,
        "nothing to do writes no second backup"
    );
}

#[test]
fn a_dual_verify_project_restored_on_a_fresh_machine_keeps_its_phase_and_its_waits() {
    let source = dual_verify("upstream-2026-02");
    let out = tempfile::tempdir().unwrap();
    let file = backup_path(&out);
    export(&source, &file, &at(5));

    // The fresh machine: the same compose file and a .env that lost its keys, no .keyctl/.
    let fresh = Project::new();
    fresh.write("docker-compose.yml", &source.read("docker-compose.yml"));
    let damaged: String = source
        .read(".env")
        .lines()
        .filter(|l| !l.starts_with("JWT_KEYS=") && !l.starts_with("JWT_JWKS="))
        .map(|l| format!("{l}\n"))
        .collect();
    fresh.write(".env", &damaged);
    let imported = import(&fresh, &file, &at(10), &["--yes"]);
    assert!(imported.status.success(), "{}", text(&imported));
    assert!(
        text(&imported).contains("recorded as reached now"),
        "{}",
        text(&imported)
    );
    for var in ["JWT_KEYS", "JWT_JWKS", "JWT_SECRET"] {
        assert_eq!(
            dotenv_value(&fresh.file(".env"), var),
            dotenv_value(&source.file(".env"), var),
            "{var}"
        );
    }
    assert_eq!(phase(&fresh, &at(11)), "dual-verify");
    // The wait before switching counts from the import, not from the original publication.
    let early = migrate(&fresh, &at(25), &[]);
    assert_eq!(early.status.code(), Some(3), "{}", text(&early));
    assert!(text(&early).contains("not yet"), "{}", text(&early));
    let switched = migrate(&fresh, &at(31), &[]);
    assert!(switched.status.success(), "{}", text(&switched));
    assert_eq!(phase(&fresh, &at(32)), "switched");
}

#[test]
fn a_switched_project_restored_into_its_own_damaged_env_keeps_its_record() {
    let p = dual_verify("mirror-singh-inder");
    let o = migrate(&p, &at(21), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let out = tempfile::tempdir().unwrap();
    let file = backup_path(&out);
    export(&p, &file, &at(22));
    let state = p.read(".keyctl/state.json");
    let good = p.read(".env");
    // Someone pastes another key set over JWT_KEYS/JWT_JWKS.
    let other = Project::generated("ES256");
    let mut env = keyctl::envfile::EnvFile::parse(&good).unwrap();
    for var in ["JWT_KEYS", "JWT_JWKS"] {
        env.set(var, &dotenv_value(&other.file(".env"), var), None)
            .unwrap();
    }
    p.write(".env", env.render());
    let imported = import(&p, &file, &at(30), &["--yes"]);
    assert!(imported.status.success(), "{}", text(&imported));
    assert_eq!(p.read(".env"), good, "the .env is back byte for byte");
    let after: Value = json(&p.read(".keyctl/state.json"));
    assert_eq!(
        after["events"],
        json(&state)["events"],
        "the record already agreed: the waits keep their original start"
    );
    assert_eq!(phase(&p, &at(31)), "switched");
}

#[test]
fn a_legacy_backup_replaces_jwt_secret_records_the_old_one_and_is_refused_over_keys() {
    let source = fixture_project("third-party-dokploy");
    let target = fixture_project("third-party-dokploy");
    let out = tempfile::tempdir().unwrap();
    let file = backup_path(&out);
    let exported = export(&source, &file, T0);
    assert!(text(&exported).contains("JWT_SECRET"));
    let imported = import(&target, &file, &at(1), &["--yes"]);
    assert!(imported.status.success(), "{}", text(&imported));
    let secret = dotenv_value(&source.file(".env"), "JWT_SECRET");
    assert_eq!(dotenv_value(&target.file(".env"), "JWT_SECRET"), secret);
    // The target's API keys were signed with its old secret: the operator is told.
    let shown = String::from_utf8_lossy(&imported.stderr).into_owned();
    assert!(
        shown.contains("ANON_KEY is not signed by a restored key"),
        "{shown}"
    );
    assert_no_secret(&text(&imported), &[secret], "import's output");
    let state = json(&target.read(".keyctl/state.json"));
    let retired = state["retired_secrets"].as_array().unwrap();
    assert_eq!(retired.len(), 1, "{state}");
    let held = target.file(retired[0]["backup"].as_str().unwrap());
    assert!(
        std::fs::read_to_string(held)
            .unwrap()
            .contains("JWT_SECRET="),
        "the retired secret lives in the backup of the old .env"
    );

    let with_keys = Project::generated("ES256");
    let before = with_keys.read(".env");
    let refused = import(&with_keys, &file, &at(2), &["--yes"]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert!(text(&refused).contains("rollback"), "{}", text(&refused));
    assert_eq!(with_keys.read(".env"), before);
}

#[test]
fn the_backup_is_0600_whatever_the_umask_and_holds_no_key_material_in_clear() {
    let p = dual_verify("upstream-2026-02");
    let out = tempfile::tempdir().unwrap();
    let file = backup_path(&out);
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(assert_cmd::cargo::cargo_bin!("keyctl"))
        .args(["export", "--encrypt", "--password-env", PW_VAR, "--project"])
        .arg(p.path())
        .arg("--out")
        .arg(&file)
        .env(PW_VAR, PASSWORD)
        .env("KEYCTL_NOW", at(2))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");

    let jwe = std::fs::read_to_string(&file).unwrap();
    assert!(jwe.ends_with('\n'));
    let parts: Vec<&str> = jwe.trim_end().split('.').collect();
    assert_eq!(parts.len(), 5, "a compact JWE");
    let header = json(&String::from_utf8(b64::decode(parts[0]).unwrap()).unwrap());
    assert_eq!(header["alg"], "PBES2-HS256+A128KW");
    assert_eq!(header["enc"], "A256GCM");
    assert!(header["p2c"].as_u64().unwrap() >= 600_000, "{header}");
    assert_eq!(
        b64::decode(header["p2s"].as_str().unwrap()).unwrap().len(),
        16
    );
    assert!(
        header.get("kid").is_none() && header.get("jwk").is_none(),
        "{header}"
    );
    assert!(!jwe.contains("\"d\"") && !jwe.contains("\"k\""));
    let secrets = secrets_of(&p.file(".env"));
    assert!(secrets.len() >= 3, "a P-256 d, the oct k and JWT_SECRET");
    assert_no_secret(&jwe, &secrets, "the backup file");
    assert_no_secret(&text(&o), &secrets, "export's output");
}

#[test]
fn a_wrong_password_or_a_damaged_file_is_exit_2_and_changes_nothing() {
    let source = Project::generated("ES256");
    let target = Project::generated("EdDSA");
    let out = tempfile::tempdir().unwrap();
    let file = backup_path(&out);
    export(&source, &file, T0);
    let before = target.read(".env");

    let wrong = keyctl()
        .env("WRONG_PW", "not the right password at all")
        .args(["import", "--yes", "--password-env", "WRONG_PW", "--project"])
        .arg(target.path())
        .arg("--in")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    assert!(
        text(&wrong).contains("wrong password or damaged file"),
        "{}",
        text(&wrong)
    );
    assert!(!text(&wrong).contains("panicked"));

    // One flipped character in the ciphertext.
    let jwe = std::fs::read_to_string(&file).unwrap();
    let mut parts: Vec<String> = jwe.trim_end().split('.').map(str::to_owned).collect();
    let mut ct = b64::decode(&parts[3]).unwrap();
    ct[0] ^= 0x40;
    parts[3] = b64::encode(&ct);
    let damaged = out.path().join("damaged.jwe");
    std::fs::write(&damaged, parts.join(".")).unwrap();
    let o = import(&target, &damaged, T0, &["--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("wrong password or damaged file"));

    // Not a backup at all, and a header asking for an absurd iteration count: refused
    // before any password is needed (none is given, and there is no terminal).
    let junk = out.path().join("junk.jwe");
    std::fs::write(&junk, "JWT_KEYS='[]'\n").unwrap();
    let greedy = out.path().join("greedy.jwe");
    let mut h = json(&String::from_utf8(b64::decode(&parts[0]).unwrap()).unwrap());
    h["p2c"] = Value::from(2_000_000_000_u64);
    parts[0] = b64::encode(h.to_string().as_bytes());
    std::fs::write(&greedy, parts.join(".")).unwrap();
    for (path, want) in [
        (&junk, "not a keyctl key backup"),
        (&greedy, "PBKDF2 iterations"),
    ] {
        let o = keyctl()
            .args(["import", "--yes", "--project"])
            .arg(target.path())
            .arg("--in")
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(want), "{}", text(&o));
    }
    assert_eq!(target.read(".env"), before);
    assert!(!target.file(".keyctl").exists(), "nothing was even locked");
}

#[test]
fn the_password_never_comes_from_the_command_line() {
    let p = Project::generated("ES256");
    let out = tempfile::tempdir().unwrap();
    let file = backup_path(&out);
    for flag in ["--password", "--pass", "--passphrase"] {
        let o = keyctl()
            .args(["export", "--encrypt", "--project"])
            .arg(p.path())
            .arg("--out")
            .arg(&file)
            .args([flag, PASSWORD])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", text(&o));
        assert!(text(&o).contains("unexpected argument"), "{}", text(&o));
        assert!(!file.exists());
    }
    keyctl()
        .args(["import", "--project"])
        .arg(p.path())
        .args(["--in", "x.jwe", "--password", PASSWORD])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unexpected argument"));
    // A password pasted where the variable's name belongs is refused and never echoed.
    let o = keyctl()
        .args(["export", "--encrypt", "--project"])
        .arg(p.path())
        .arg("--out")
        .arg(&file)
        .args(["--password-env", PASSWORD])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!text(&o).contains(PASSWORD), "{}", text(&o));
    assert!(text(&o).contains("NAME of an environment variable"));
    assert!(!file.exists());
    // The help names only the file and environment sources.
    let help = keyctl().args(["export", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--password-file") && help.contains("--password-env"));
    assert!(!help.contains("--password "), "{help}");
}

#[test]
fn without_a_terminal_a_password_source_is_required_and_short_ones_are_refused() {
    let p = Project::generated("ES256");
    let out = tempfile::tempdir().unwrap();
    let file = backup_path(&out);
    // assert_cmd gives no terminal: stdin is not a TTY.
    keyctl()
        .args(["export", "--encrypt", "--project"])
        .arg(p.path())
        .arg("--out")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--password-file FILE or --password-env NAME",
        ));
    assert!(!file.exists());
    keyctl()
        .env(PW_VAR, "short-pass1")
        .args(["export", "--encrypt", "--password-env", PW_VAR, "--project"])
        .arg(p.path())
        .arg("--out")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("shorter than 12 characters"));
    keyctl()
        .args([
            "export",
            "--encrypt",
            "--password-env",
            "KEYCTL_TEST_UNSET_VARIABLE",
        ])
        .arg("--project")
        .arg(p.path())
        .arg("--out")
        .arg(&file)
        .env_remove("KEYCTL_TEST_UNSET_VARIABLE")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not set"));
    assert!(!file.exists());

    export(&p, &file, T0);
    let before = p.read(".env");
    keyctl()
        .args(["import", "--yes", "--project"])
        .arg(p.path())
        .arg("--in")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no password"));
    assert_eq!(p.read(".env"), before);
}

#[test]
fn export_refuses_plaintext_and_never_overwrites_without_force() {
    let p = Project::generated("ES256");
    let out = tempfile::tempdir().unwrap();
    let file = backup_path(&out);
    keyctl()
        .env(PW_VAR, PASSWORD)
        .args(["export", "--password-env", PW_VAR, "--project"])
        .arg(p.path())
        .arg("--out")
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--encrypt"));
    assert!(!file.exists(), "no plaintext file, no file at all");

    std::fs::write(&file, "precious\n").unwrap();
    let o = export_cmd(&p, &file, T0).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious\n");

    let o = export_cmd(&p, &file, T0).arg("--force").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().split('.').count(),
        5
    );
}

#[test]
fn import_shows_a_redacted_diff_and_writes_only_with_yes() {
    let source = Project::generated("ES256");
    let target = Project::generated("ES256");
    let out = tempfile::tempdir().unwrap();
    let file = backup_path(&out);
    export(&source, &file, T0);
    let before = target.read(".env");
    let secrets = secrets_of(&source.file(".env"));

    let dry = import(&target, &file, T0, &["--dry-run", "--force"]);
    assert!(dry.status.success(), "{}", text(&dry));
    let shown = text(&dry);
    assert!(
        shown.contains("+JWT_KEYS=<private set: ES256 kid"),
        "{shown}"
    );
    assert!(shown.contains("dry run: nothing was written"));
    assert_no_secret(&shown, &secrets, "the dry run");
    assert_eq!(target.read(".env"), before);
    assert!(!target.file(".keyctl").exists());

    let unconfirmed = import(&target, &file, T0, &["--force"]);
    assert_eq!(unconfirmed.status.code(), Some(2), "{}", text(&unconfirmed));
    assert!(text(&unconfirmed).contains("pass --yes"));
    assert_eq!(target.read(".env"), before);
}

#[test]
fn node_jose_opens_keyctls_backup_and_keyctl_imports_what_jose_encrypts() {
    let p = dual_verify("upstream-2026-02");
    let out = tempfile::tempdir().unwrap();
    let file = backup_path(&out);
    export(&p, &file, &at(2));
    let (_dir, pw) = password_file(PASSWORD);
    let env = p.file(".env");

    let opened = run_tool(
        "node",
        &[
            "backup_tool.mjs",
            "decrypt",
            file.to_str().unwrap(),
            pw.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        opened.ok,
        "jose could not open the backup: {}",
        opened.stderr
    );
    let v = json(&opened.stdout);
    assert_eq!(v["header"]["alg"], "PBES2-HS256+A128KW");
    let payload = &v["payload"];
    assert_eq!(payload["format"], "keyctl-key-backup");
    assert_eq!(payload["phase"], "dual-verify");
    assert_eq!(payload["JWT_KEYS"], json(&dotenv_value(&env, "JWT_KEYS")));
    assert_eq!(payload["JWT_SECRET"], dotenv_value(&env, "JWT_SECRET"));

    // The other way: jose writes a backup (A128GCM, its own salt and IV), keyctl restores it.
    let (_d, wrong_pw) = password_file("a different password, long enough");
    assert!(
        !run_tool(
            "node",
            &[
                "backup_tool.mjs",
                "decrypt",
                file.to_str().unwrap(),
                wrong_pw.to_str().unwrap(),
            ],
            "",
        )
        .ok,
        "jose opened the backup with a wrong password"
    );
    let sealed = run_tool(
        "node",
        &[
            "backup_tool.mjs",
            "encrypt",
            "A128GCM",
            pw.to_str().unwrap(),
        ],
        &payload.to_string(),
    );
    assert!(sealed.ok, "{}", sealed.stderr);
    let from_jose = out.path().join("from-jose.jwe");
    std::fs::write(&from_jose, &sealed.stdout).unwrap();
    let fresh = Project::new();
    fresh.write("docker-compose.yml", &p.read("docker-compose.yml"));
    fresh.write(".env", "# restored\n");
    let o = import(&fresh, &from_jose, &at(3), &["--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    for var in ["JWT_KEYS", "JWT_JWKS", "JWT_SECRET"] {
        assert_eq!(
            dotenv_value(&fresh.file(".env"), var),
            dotenv_value(&env, var),
            "{var}"
        );
    }
    assert!(fresh.read(".env").starts_with("# restored\n"));
}

/// Regression tests from the review of import.
mod review {
    use super::*;

    #[test]
    fn importing_other_valid_keys_over_a_live_project_needs_force() {
        let source = dual_verify("upstream-2026-02");
        assert!(migrate(&source, &at(25), &[]).status.success());
        let dir = tempfile::tempdir().unwrap();
        let backup = backup_path(&dir);
        export(&source, &backup, &at(26));
        let target = dual_verify("upstream-2026-02");
        let before = target.read(".env");
        let o = import(&target, &backup, &at(27), &["--yes"]);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert_eq!(target.read(".env"), before, "nothing written");
        let o = import(&target, &backup, &at(27), &["--yes", "--force"]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("--force"));
    }

    #[test]
    fn rewiring_a_dual_verify_project_restarts_the_publication_wait() {
        let p = dual_verify("upstream-2026-02");
        std::fs::copy(
            crate::support::fixtures().join("upstream-2026-02/docker-compose.yml"),
            p.file("docker-compose.yml"),
        )
        .unwrap();
        let o = keyctl()
            .env("KEYCTL_NOW", at(60))
            .args(["migrate", "rewire", "--yes", "--project"])
            .arg(p.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let o = migrate(&p, &at(70), &[]);
        assert_eq!(
            o.status.code(),
            Some(3),
            "the wait restarted at the rewire: {}",
            text(&o)
        );
        assert!(migrate(&p, &at(81), &[]).status.success());
    }

    #[test]
    fn a_secret_with_control_characters_is_never_written() {
        let p = Project::with_env("JWT_SECRET='0123456789abcdef0123456789abcdef\t'\n");
        keyctl()
            .args(["jwks", "--check", "--project"])
            .arg(p.path())
            .assert()
            .code(1)
            .stdout(predicates::str::contains("control characters"));
    }
}
