//! `keyctl export --encrypt` and `keyctl import`: round trips (a generated project, a project
//! mid-migration restored on a "fresh machine", a legacy secret), the file's privacy, wrong
//! passwords and damaged files, where the password may come from (never argv), refusals, and
//! interop with node `jose` in both directions.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Project, T0, Test, at, dotenv_opt, run_tool};
use keyctl::b64;
use keyctl::jwk::PRIVATE_MEMBERS;

const PASSWORD: &str = "correct horse battery staple";
/// The environment variable the tests hand the password through.
const PW_VAR: &str = "KEYCTL_TEST_BACKUP_PASSWORD";

/// A directory outside any project, for backups and a password file.
struct Vault {
    dir: tempfile::TempDir,
}

impl Vault {
    /// A vault whose password file holds `PASSWORD` on its first line.
    fn new() -> Self {
        let v = Vault {
            dir: tempfile::tempdir().unwrap(),
        };
        v.write_password("password", PASSWORD);
        v
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The backup file `export` writes.
    fn backup(&self) -> PathBuf {
        self.path("keys.jwe")
    }

    /// The password file holding `PASSWORD`.
    fn password_file(&self) -> PathBuf {
        self.path("password")
    }

    /// Writes a password file holding `password` on its first line; returns its path.
    fn write_password(&self, name: &str, password: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, format!("{password}\nsecond line ignored\n")).unwrap();
        path
    }

    /// `keyctl export --encrypt` of `p` into the backup at `now`, the password from `PW_VAR`.
    fn export(&self, p: &Project, now: impl AsRef<str>) -> Test {
        p.keyctl(["export", "--encrypt", "--password-env", PW_VAR, "--out"])
            .arg(self.backup())
            .var(PW_VAR, PASSWORD)
            .now(now)
    }

    /// `keyctl import` of the backup into `p` at `now`, the password from the password file.
    fn import(&self, p: &Project, now: impl AsRef<str>) -> Test {
        self.import_file(p, &self.backup(), now)
    }

    /// `keyctl import` of `input` into `p` at `now`, the password from the password file.
    fn import_file(&self, p: &Project, input: &Path, now: impl AsRef<str>) -> Test {
        p.keyctl(["import", "--password-file"])
            .arg(self.password_file())
            .arg("--in")
            .arg(input)
            .now(now)
    }
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

/// A dual-verify project made with `keyctl migrate` from a fixture.
fn dual_verify(fixture: &str) -> Project {
    let p = Project::fixture(fixture);
    p.migrate(T0).run();
    assert_eq!(p.phase(at(1)), "dual-verify");
    p
}

#[test]
fn round_trip_restores_a_generated_project_and_a_second_import_has_nothing_to_do() {
    let source = Project::generated("RS256");
    let target = Project::generated("ES256");
    let vault = Vault::new();
    let exported = vault.export(&source, T0).run();
    // The target holds other valid keys: replacing them is deliberate here.
    let imported = vault
        .import(&target, at(5))
        .args(["--yes", "--force"])
        .run();

    for var in ["JWT_KEYS", "JWT_JWKS"] {
        assert_eq!(
            json(&target.env_value(var)),
            json(&source.env_value(var)),
            "{var}"
        );
    }
    target.keyctl(["jwks", "--check"]).run();
    let secrets = secrets_of(&source.file(".env"));
    assert_no_secret(&exported.text(), &secrets, "export's output");
    assert_no_secret(&imported.text(), &secrets, "import's output");
    assert!(
        target.file(".keyctl/backups").is_dir(),
        "import keeps a backup of the old .env"
    );

    let before = target.read(".env");
    vault
        .import(&target, at(6))
        .arg("--yes")
        .output_has("nothing to do")
        .run();
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
    let vault = Vault::new();
    vault.export(&source, at(5)).run();

    // The fresh machine: the same compose file and a .env that lost its keys, no .keyctl/.
    let fresh = Project::new();
    fresh.write("docker-compose.yml", source.read("docker-compose.yml"));
    let damaged: String = source
        .read(".env")
        .lines()
        .filter(|l| !l.starts_with("JWT_KEYS=") && !l.starts_with("JWT_JWKS="))
        .map(|l| format!("{l}\n"))
        .collect();
    fresh.write(".env", damaged);
    vault
        .import(&fresh, at(10))
        .arg("--yes")
        .output_has("recorded as reached now")
        .run();
    for var in ["JWT_KEYS", "JWT_JWKS", "JWT_SECRET"] {
        assert_eq!(fresh.env_value(var), source.env_value(var), "{var}");
    }
    assert_eq!(fresh.phase(at(11)), "dual-verify");
    // The wait before switching counts from the import, not from the original publication.
    fresh.migrate(at(25)).status(3).output_has("not yet").run();
    fresh.migrate(at(31)).run();
    assert_eq!(fresh.phase(at(32)), "switched");
}

#[test]
fn a_switched_project_restored_into_its_own_damaged_env_keeps_its_record() {
    let p = dual_verify("mirror-singh-inder");
    p.migrate(at(21)).run();
    let vault = Vault::new();
    vault.export(&p, at(22)).run();
    let state = p.read(".keyctl/state.json");
    let good = p.read(".env");
    // Someone pastes another key set over JWT_KEYS/JWT_JWKS.
    let other = Project::generated("ES256");
    let mut env = keyctl::envfile::EnvFile::parse(&good).unwrap();
    for var in ["JWT_KEYS", "JWT_JWKS"] {
        env.set(var, &other.env_value(var), None).unwrap();
    }
    p.write(".env", env.render());
    vault.import(&p, at(30)).arg("--yes").run();
    assert_eq!(p.read(".env"), good, "the .env is back byte for byte");
    let after: Value = json(&p.read(".keyctl/state.json"));
    assert_eq!(
        after["events"],
        json(&state)["events"],
        "the record already agreed: the waits keep their original start"
    );
    assert_eq!(p.phase(at(31)), "switched");
}

#[test]
fn a_legacy_backup_replaces_jwt_secret_records_the_old_one_and_is_refused_over_keys() {
    let source = Project::fixture("third-party-dokploy");
    let target = Project::fixture("third-party-dokploy");
    let vault = Vault::new();
    vault.export(&source, T0).output_has("JWT_SECRET").run();
    let secret = source.env_value("JWT_SECRET");
    // The target's API keys were signed with its old secret: the operator is told.
    let imported = vault
        .import(&target, at(1))
        .arg("--yes")
        .stderr_has("ANON_KEY is not signed by a restored key")
        .run();
    assert_eq!(target.env_value("JWT_SECRET"), secret);
    assert_no_secret(&imported.text(), &[secret], "import's output");
    let state = json(&target.read(".keyctl/state.json"));
    let retired = state["retired_secrets"].as_array().unwrap();
    assert_eq!(retired.len(), 1, "{state}");
    assert!(
        target
            .read(retired[0]["backup"].as_str().unwrap())
            .contains("JWT_SECRET="),
        "the retired secret lives in the backup of the old .env"
    );

    let with_keys = Project::generated("ES256");
    let before = with_keys.read(".env");
    vault
        .import(&with_keys, at(2))
        .arg("--yes")
        .status(3)
        .output_has("rollback")
        .run();
    assert_eq!(with_keys.read(".env"), before);
}

#[test]
fn the_backup_is_0600_whatever_the_umask_and_holds_no_key_material_in_clear() {
    let p = dual_verify("upstream-2026-02");
    let vault = Vault::new();
    let file = vault.backup();
    let o = vault.export(&p, at(2)).umask("000").run();
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
    assert_no_secret(&o.text(), &secrets, "export's output");
}

#[test]
fn a_wrong_password_or_a_damaged_file_is_exit_2_and_changes_nothing() {
    let source = Project::generated("ES256");
    let target = Project::generated("EdDSA");
    let vault = Vault::new();
    let file = vault.backup();
    vault.export(&source, T0).run();
    let before = target.read(".env");

    target
        .keyctl(["import", "--yes", "--password-env", "WRONG_PW", "--in"])
        .arg(&file)
        .var("WRONG_PW", "not the right password at all")
        .status(2)
        .output_has("wrong password or damaged file")
        .lacks("panicked")
        .run();

    // One flipped character in the ciphertext.
    let jwe = std::fs::read_to_string(&file).unwrap();
    let mut parts: Vec<String> = jwe.trim_end().split('.').map(str::to_owned).collect();
    let mut ct = b64::decode(&parts[3]).unwrap();
    ct[0] ^= 0x40;
    parts[3] = b64::encode(&ct);
    let damaged = vault.path("damaged.jwe");
    std::fs::write(&damaged, parts.join(".")).unwrap();
    vault
        .import_file(&target, &damaged, T0)
        .arg("--yes")
        .status(2)
        .output_has("wrong password or damaged file")
        .run();

    // Not a backup at all, and a header asking for an absurd iteration count: refused
    // before any password is needed (none is given, and there is no terminal).
    let junk = vault.path("junk.jwe");
    std::fs::write(&junk, "JWT_KEYS='[]'\n").unwrap();
    let greedy = vault.path("greedy.jwe");
    let mut h = json(&String::from_utf8(b64::decode(&parts[0]).unwrap()).unwrap());
    h["p2c"] = Value::from(2_000_000_000_u64);
    parts[0] = b64::encode(h.to_string().as_bytes());
    std::fs::write(&greedy, parts.join(".")).unwrap();
    for (path, want) in [
        (&junk, "not a keyctl key backup"),
        (&greedy, "PBKDF2 iterations"),
    ] {
        target
            .keyctl(["import", "--yes", "--in"])
            .arg(path)
            .status(2)
            .output_has(want)
            .run();
    }
    assert_eq!(target.read(".env"), before);
    assert!(!target.file(".keyctl").exists(), "nothing was even locked");
}

#[test]
fn the_password_never_comes_from_the_command_line() {
    let p = Project::generated("ES256");
    let vault = Vault::new();
    let file = vault.backup();
    let export = || p.keyctl(["export", "--encrypt", "--out"]).arg(&file);
    for flag in ["--password", "--pass", "--passphrase"] {
        export()
            .args([flag, PASSWORD])
            .status(2)
            .output_has("unexpected argument")
            .run();
        assert!(!file.exists());
    }
    p.keyctl(["import", "--in", "x.jwe", "--password", PASSWORD])
        .status(2)
        .stderr_has("unexpected argument")
        .run();
    // A password pasted where the variable's name belongs is refused and never echoed.
    export()
        .args(["--password-env", PASSWORD])
        .status(2)
        .lacks(PASSWORD)
        .output_has("NAME of an environment variable")
        .run();
    assert!(!file.exists());
    // The help names only the file and environment sources.
    let help = Test::new().args(["export", "--help"]).any_status().run();
    assert!(help.stdout.contains("--password-file") && help.stdout.contains("--password-env"));
    assert!(!help.stdout.contains("--password "), "{}", help.stdout);
}

#[test]
fn without_a_terminal_a_password_source_is_required_and_short_ones_are_refused() {
    let p = Project::generated("ES256");
    let vault = Vault::new();
    let file = vault.backup();
    let export = || p.keyctl(["export", "--encrypt", "--out"]).arg(&file);
    // The builder gives no terminal: stdin is not a TTY.
    export()
        .status(2)
        .stderr_has("--password-file FILE or --password-env NAME")
        .run();
    assert!(!file.exists());
    export()
        .args(["--password-env", PW_VAR])
        .var(PW_VAR, "short-pass1")
        .status(2)
        .stderr_has("shorter than 12 characters")
        .run();
    export()
        .args(["--password-env", "KEYCTL_TEST_UNSET_VARIABLE"])
        .unset("KEYCTL_TEST_UNSET_VARIABLE")
        .status(2)
        .stderr_has("not set")
        .run();
    assert!(!file.exists());

    vault.export(&p, T0).run();
    let before = p.read(".env");
    p.keyctl(["import", "--yes", "--in"])
        .arg(&file)
        .status(2)
        .stderr_has("no password")
        .run();
    assert_eq!(p.read(".env"), before);
}

#[test]
fn export_refuses_plaintext_and_never_overwrites_without_force() {
    let p = Project::generated("ES256");
    let vault = Vault::new();
    let file = vault.backup();
    p.keyctl(["export", "--password-env", PW_VAR, "--out"])
        .arg(&file)
        .var(PW_VAR, PASSWORD)
        .status(2)
        .stderr_has("--encrypt")
        .run();
    assert!(!file.exists(), "no plaintext file, no file at all");

    std::fs::write(&file, "precious\n").unwrap();
    vault
        .export(&p, T0)
        .status(3)
        .output_has("already exists")
        .run();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious\n");

    vault.export(&p, T0).arg("--force").run();
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
    let vault = Vault::new();
    vault.export(&source, T0).run();
    let before = target.read(".env");
    let secrets = secrets_of(&source.file(".env"));

    let dry = vault
        .import(&target, T0)
        .args(["--dry-run", "--force"])
        .output_has("+JWT_KEYS=<private set: ES256 kid")
        .output_has("dry run: nothing was written")
        .run();
    assert_no_secret(&dry.text(), &secrets, "the dry run");
    assert_eq!(target.read(".env"), before);
    assert!(!target.file(".keyctl").exists());

    vault
        .import(&target, T0)
        .arg("--force")
        .status(2)
        .output_has("pass --yes")
        .run();
    assert_eq!(target.read(".env"), before);
}

#[test]
fn node_jose_opens_keyctls_backup_and_keyctl_imports_what_jose_encrypts() {
    let p = dual_verify("upstream-2026-02");
    let vault = Vault::new();
    let file = vault.backup();
    vault.export(&p, at(2)).run();
    let pw = vault.password_file();

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
    assert_eq!(payload["JWT_KEYS"], json(&p.env_value("JWT_KEYS")));
    assert_eq!(payload["JWT_SECRET"], p.env_value("JWT_SECRET"));

    // The other way: jose writes a backup (A128GCM, its own salt and IV), keyctl restores it.
    let wrong_pw = vault.write_password("wrong-password", "a different password, long enough");
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
    let from_jose = vault.path("from-jose.jwe");
    std::fs::write(&from_jose, &sealed.stdout).unwrap();
    let fresh = Project::new();
    fresh.write("docker-compose.yml", p.read("docker-compose.yml"));
    fresh.write(".env", "# restored\n");
    vault
        .import_file(&fresh, &from_jose, at(3))
        .arg("--yes")
        .run();
    for var in ["JWT_KEYS", "JWT_JWKS", "JWT_SECRET"] {
        assert_eq!(fresh.env_value(var), p.env_value(var), "{var}");
    }
    assert!(fresh.read(".env").starts_with("# restored\n"));
}

/// Regression tests from the review of import.
mod review {
    use super::*;

    #[test]
    fn importing_other_valid_keys_over_a_live_project_needs_force() {
        let source = dual_verify("upstream-2026-02");
        source.migrate(at(25)).run();
        let vault = Vault::new();
        vault.export(&source, at(26)).run();
        let target = dual_verify("upstream-2026-02");
        let before = target.read(".env");
        vault.import(&target, at(27)).arg("--yes").status(3).run();
        assert_eq!(target.read(".env"), before, "nothing written");
        vault
            .import(&target, at(27))
            .args(["--yes", "--force"])
            .output_has("--force")
            .run();
    }

    #[test]
    fn rewiring_a_dual_verify_project_restarts_the_publication_wait() {
        let p = dual_verify("upstream-2026-02");
        p.upgrade_compose("upstream-2026-02");
        p.keyctl(["migrate", "rewire", "--yes"]).now(at(60)).run();
        // The wait restarted at the rewire.
        p.migrate(at(70)).status(3).run();
        p.migrate(at(81)).run();
    }

    #[test]
    fn a_secret_with_control_characters_is_never_written() {
        Test::with_env("JWT_SECRET='0123456789abcdef0123456789abcdef\t'\n")
            .args(["jwks", "--check"])
            .status(1)
            .stdout_has("control characters")
            .run();
    }
}
