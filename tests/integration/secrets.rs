//! Secrets at rest and in output: a full migration never prints or records private key
//! material, and files holding keys are private from their first byte whatever the umask.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::Value;

use crate::support::{Project, T0};

/// Every private byte string in a `.env`: private JWK members, oct keys, JWT_SECRET.
fn private_strings(env: &str) -> Vec<String> {
    let doc = keyctl::envfile::EnvFile::parse(env).unwrap();
    let mut out = Vec::new();
    if let Some(s) = doc.get_nonempty("JWT_SECRET") {
        out.push(s.to_owned());
        out.push(keyctl::b64::encode(s.as_bytes()));
    }
    if let Some(keys) = doc.get_nonempty("JWT_KEYS") {
        let v: Value = serde_json::from_str(keys).unwrap();
        for k in v.as_array().unwrap() {
            for m in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                if let Some(s) = k.get(m).and_then(Value::as_str) {
                    out.push(s.to_owned());
                }
            }
        }
    }
    out
}

#[test]
fn a_full_migration_never_prints_or_records_a_private_key() {
    let p = Project::fixture("upstream-2026-02");
    let mut secrets = private_strings(&p.read(".env"));
    let mut output = String::new();
    let mut run = |now: &str, args: &[&str]| {
        let out = p.keyctl(args).now(now).project().any_status().run();
        output.push_str(&out.text());
    };
    let steps: [(&str, &[&str]); 6] = [
        (
            "2026-12-01T12:00:00Z",
            &["migrate", "--yes", "--alg", "RS256"],
        ),
        ("2026-12-01T12:25:00Z", &["migrate", "--yes"]),
        (
            "2026-12-01T14:00:00Z",
            &["migrate", "--yes", "--remint-api-keys"],
        ),
        ("2026-12-01T14:10:00Z", &["migrate", "--yes"]),
        ("2026-12-01T14:35:00Z", &["migrate", "--yes"]),
        (
            "2026-12-01T16:00:00Z",
            &["migrate", "--yes", "--remint-api-keys"],
        ),
    ];
    for (now, args) in steps {
        run(now, &[&["migrate", "--dry-run"][..], &args[2..]].concat());
        run(now, args);
        secrets.extend(private_strings(&p.read(".env")));
        for extra in [
            &["migrate", "status"][..],
            &["migrate", "status", "--json"],
            &["migrate", "plan"],
            &["doctor"],
            &["doctor", "--json"],
            &["jwks", "--check"],
        ] {
            run(now, extra);
        }
    }
    let state = p.read(".keyctl/state.json");
    secrets.retain(|s| s.len() >= 16);
    assert!(
        secrets.len() > 20,
        "the scan has material to look for ({})",
        secrets.len()
    );
    for s in &secrets {
        assert!(
            !output.contains(s.as_str()),
            "private material in keyctl's output"
        );
        assert!(
            !state.contains(s.as_str()),
            "private material in the state file"
        );
    }
}

#[test]
fn private_files_are_0600_from_the_first_byte_whatever_the_umask() {
    for umask in ["000", "022"] {
        let p = Project::fixture("upstream-2026-02");
        let keys = Project::new();
        std::fs::create_dir(keys.file("env")).unwrap();
        p.migrate(T0).umask(umask).run();
        keys.keyctl(["generate", "--format", "pem", "--out"])
            .arg(keys.path())
            .umask(umask)
            .run();
        keys.keyctl(["generate", "--format", "env", "--out"])
            .arg(keys.file("env"))
            .umask(umask)
            .run();
        assert_eq!(keys.mode("private.pem"), 0o600, "umask {umask}");
        assert_eq!(keys.mode("env/keys.env"), 0o600, "umask {umask}");
        assert_eq!(p.mode(".keyctl/state.json"), 0o600, "umask {umask}");
        assert_eq!(p.mode(".keyctl"), 0o700, "umask {umask}");
        for backup in std::fs::read_dir(p.file(".keyctl/backups")).unwrap() {
            for f in std::fs::read_dir(backup.unwrap().path()).unwrap() {
                let mode = f.unwrap().metadata().unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "umask {umask}: backups");
            }
        }
    }
}

#[test]
fn a_git_tracked_env_is_reported() {
    let p = Project::fixture("upstream-2026-02");
    p.chmod(".env", 0o600);
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(["-c", "user.email=t@t", "-c", "user.name=t"])
            .args(args)
            .current_dir(p.path())
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", ".env"]);
    git(&["commit", "-qm", "x"]);
    let v = p
        .keyctl(["doctor", "--json"])
        .now(T0)
        .any_status()
        .run()
        .json();
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "env_in_git"),
        "{v:#}"
    );
    p.keyctl(["migrate", "--dry-run"])
        .now(T0)
        .any_status()
        .stderr_has("tracked by git")
        .run();
}
