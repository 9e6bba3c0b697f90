//! `keyctl jwks`: derivation from a project, building from files, and `--check`.

use serde_json::{Value, json};

use crate::support::{Project, Test, fixtures};

const SECRET: &str = "a-test-only-secret-of-more-than-32-characters";

/// `keyctl jwks --format json EXTRA` on the project, which must succeed.
fn jwks_json(p: &Project, extra: &[&str]) -> Value {
    p.keyctl(["jwks", "--format", "json"])
        .args(extra)
        .run()
        .json()
}

/// `keyctl jwks --check` on the project: the exit code and the findings.
fn check(p: &Project) -> (i32, String) {
    let out = p.keyctl(["jwks", "--check"]).any_status().run();
    (out.code.unwrap(), out.stdout)
}

/// A project with key files made by `keyctl generate --format FORMAT --out DIR ARGS`.
fn key_files(format: &str, args: &[&str]) -> Project {
    let keys = Project::new();
    keys.keyctl(["generate", "--format", format])
        .args(args)
        .arg("--out")
        .arg(keys.path())
        .run();
    keys
}

/// A dual-verify `.env` (legacy oct signing, a new ES256 standby key) built by keyctl itself.
fn dual_verify_env() -> String {
    let keys = key_files("jwk", &["--kid", "new-key"]);
    let out = keys
        .keyctl(["jwks", "--signing-kid", "legacy"])
        .args(["--legacy-secret-env", "TEST_SECRET", "--key"])
        .arg(keys.file("private.jwk.json"))
        .var("TEST_SECRET", SECRET)
        .run();
    format!("JWT_SECRET={SECRET}\n{}", out.stdout)
}

#[test]
fn project_jwks_is_the_public_half_of_jwt_keys() {
    let p = Project::generated("ES256");
    let v = jwks_json(&p, &[]);
    assert!(v.get("JWT_KEYS").is_none(), "private keys only on request");
    let keys: Value = serde_json::from_str(&p.env_value("JWT_KEYS")).unwrap();
    let public = &v["JWT_JWKS"]["keys"][0];
    assert_eq!(public["kid"], keys[0]["kid"]);
    assert_eq!(public["x"], keys[0]["x"]);
    assert_eq!(public["key_ops"], json!(["verify"]));
    assert!(public.get("d").is_none());
    let with_private = jwks_json(&p, &["--private"]);
    assert_eq!(with_private["JWT_KEYS"], keys);
}

#[test]
fn dual_verify_set_from_files_carries_the_legacy_key_without_kid() {
    let env = dual_verify_env();
    let p = Project::with_env(&env);
    assert_eq!(check(&p).0, 0, "{}", check(&p).1);
    let v = jwks_json(&p, &["--private"]);
    let oct = &v["JWT_KEYS"][0];
    assert_eq!(oct["kty"], "oct");
    assert!(oct.get("kid").is_none());
    assert_eq!(oct["key_ops"], json!(["sign", "verify"]));
    assert_eq!(
        keyctl::b64::decode(oct["k"].as_str().unwrap()).unwrap(),
        SECRET.as_bytes()
    );
    assert_eq!(v["JWT_KEYS"][1]["key_ops"], json!(["verify"]));
    assert_eq!(v["JWT_JWKS"]["keys"][0]["kty"], "oct");
    assert_eq!(v["JWT_JWKS"]["keys"][1]["kid"], "new-key");
}

#[test]
fn from_files_needs_a_private_key_and_a_clear_signer() {
    let keys = key_files("pem", &[]);
    keys.keyctl(["jwks", "--key"])
        .arg(keys.file("public.pem"))
        .status(2)
        .stderr_has("public key only")
        .run();
    let other = key_files("pem", &[]);
    keys.keyctl(["jwks", "--key"])
        .arg(keys.file("private.pem"))
        .arg("--key")
        .arg(other.file("private.pem"))
        .status(2)
        .stderr_has("--signing-kid")
        .run();
    keys.keyctl([
        "jwks",
        "--legacy-secret-env",
        "KEYCTL_TEST_UNSET_VAR",
        "--key",
    ])
    .arg(keys.file("private.pem"))
    .status(2)
    .stderr_has("KEYCTL_TEST_UNSET_VAR")
    .run();
}

#[test]
fn pem_kids_are_thumbprints_so_reruns_agree() {
    let keys = key_files("pem", &[]);
    let run = || {
        keys.keyctl(["jwks", "--key"])
            .arg(keys.file("private.pem"))
            .run()
            .stdout
    };
    assert_eq!(run(), run());
}

fn edit_keys(env: &str, mut f: impl FnMut(&mut Value)) -> String {
    let mut out = String::new();
    for line in env.lines() {
        if let Some(v) = line.strip_prefix("JWT_KEYS='") {
            let mut keys: Value = serde_json::from_str(v.trim_end_matches('\'')).unwrap();
            f(&mut keys);
            out.push_str(&format!("JWT_KEYS='{keys}'\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn check_names_every_broken_rule_with_file_line_and_kid() {
    let env = dual_verify_env();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "two signers",
            edit_keys(&env, |k| k[1]["key_ops"] = json!(["sign", "verify"])),
            "2 keys have \"sign\"",
        ),
        (
            "no signer",
            edit_keys(&env, |k| k[0]["key_ops"] = json!(["verify"])),
            "no signing key",
        ),
        (
            "missing alg",
            edit_keys(&env, |k| {
                k[1].as_object_mut().unwrap().remove("alg");
            }),
            "kid new-key: has no \"alg\"",
        ),
        (
            "duplicate kid",
            edit_keys(&env, |k| {
                let dup = k[1].clone();
                k.as_array_mut().unwrap().push(dup);
            }),
            "duplicate kid",
        ),
        (
            "object",
            edit_keys(&env, |k| *k = json!({"keys": k.clone()})),
            "not {\"keys\"",
        ),
        (
            "wrong oct",
            env.replace(
                &format!("JWT_SECRET={SECRET}"),
                &format!("JWT_SECRET={SECRET}-rotated"),
            ),
            "not base64url(JWT_SECRET)",
        ),
        (
            "short secret",
            env.replace(&format!("JWT_SECRET={SECRET}"), "JWT_SECRET=short"),
            "5 characters",
        ),
        (
            "jwks array",
            env.replace("JWT_JWKS='{\"keys\":", "JWT_JWKS='")
                .replace("]}'", "]'"),
            "not an array",
        ),
        (
            "missing from jwks",
            edit_keys(&env, |k| k[1]["kid"] = json!("renamed")),
            "kid renamed: is in JWT_KEYS but not in JWT_JWKS",
        ),
    ];
    for (name, text, says) in cases {
        let p = Project::with_env(&text);
        let (code, out) = check(&p);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(out.contains(says), "{name}: expected {says:?} in\n{out}");
        let env_path = p.file(".env").display().to_string();
        for line in out.lines() {
            assert!(
                line.starts_with(&env_path),
                "{name}: every line names the file: {line}"
            );
            assert!(!line.contains(SECRET), "{name}: the secret leaked: {line}");
        }
    }
}

#[test]
fn check_flags_private_members_in_jwt_jwks() {
    let p = Project::generated("EdDSA");
    let env = p.read(".env");
    let keys: Value = serde_json::from_str(&p.env_value("JWT_KEYS")).unwrap();
    let mut leaked = keys[0].clone();
    leaked["key_ops"] = json!(["verify"]);
    let bad = env
        .lines()
        .map(|l| {
            if l.starts_with("JWT_JWKS=") {
                format!("JWT_JWKS='{}'", json!({"keys":[leaked]}))
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let p = Project::with_env(&bad);
    let (code, out) = check(&p);
    assert_eq!(code, 1);
    assert!(out.contains("private members (d)"), "{out}");
    assert!(!out.contains(keys[0]["d"].as_str().unwrap()));
}

#[test]
fn malformed_jwt_keys_is_exit_1_for_check_and_2_for_derivation() {
    let p = Project::with_env("JWT_KEYS='{not json'\n");
    assert_eq!(check(&p).0, 1);
    p.keyctl(["jwks"])
        .status(2)
        .stdout_is("")
        .stderr_has(".env:1 JWT_KEYS")
        .run();
}

#[test]
fn unreadable_or_unparseable_env_is_named() {
    let p = Project::new();
    p.keyctl(["jwks"]).status(4).stderr_has(".env").run();
    std::fs::create_dir(p.file(".env")).unwrap();
    p.keyctl(["jwks", "--check"]).status(4).run();
    Test::with_env("A=1\nB='open\n")
        .args(["jwks", "--check"])
        .status(1)
        .stdout_has(".env:2")
        .run();
    Test::new()
        .write(".env", b"A=1\nB=\xff\n")
        .args(["jwks", "--check"])
        .status(1)
        .stdout_has(".env:2")
        .stdout_has("UTF-8")
        .run();
    // No project at all.
    Test::new().args(["jwks"]).no_project().status(2).run();
}

#[test]
fn env_file_flag_names_the_file() {
    let p = Project::generated("ES256");
    std::fs::rename(p.file(".env"), p.file("prod.env")).unwrap();
    p.keyctl(["jwks", "--check", "--env-file"])
        .arg(p.file("prod.env"))
        .run();
}

#[test]
fn legacy_fixtures_pass_check_and_explain_derivation() {
    for dir in ["upstream-2026-02", "mirror-singh-inder"] {
        let text = std::fs::read_to_string(fixtures().join(dir).join(".env.example")).unwrap();
        let p = Project::with_env(&text);
        let (code, out) = check(&p);
        assert_eq!(code, 0, "{dir}: {out}");
        assert!(out.contains("legacy"), "{dir}: {out}");
        p.keyctl(["jwks"])
            .status(2)
            .stderr_has("keyctl migrate")
            .run();
    }
}

#[test]
fn every_fixture_env_and_compose_round_trips_byte_for_byte() {
    for dir in std::fs::read_dir(fixtures()).unwrap() {
        let dir = dir.unwrap().path();
        for name in [".env.example", "docker-compose.yml"] {
            let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
                continue;
            };
            for variant in [
                text.clone(),
                text.replace('\n', "\r\n"),
                text.trim_end().to_owned(),
            ] {
                if name == ".env.example" {
                    let doc = keyctl::envfile::EnvFile::parse(&variant).unwrap();
                    assert_eq!(doc.render(), variant, "{}", dir.display());
                } else {
                    let doc = keyctl::compose::Compose::parse(&variant).unwrap();
                    assert_eq!(doc.text(), variant, "{}", dir.display());
                }
            }
        }
    }
}
