//! `keyctl generate`: shapes of every output form, files, conversions and refusals.

use std::process::Command;

use serde_json::Value;

use crate::support::{Project, Test};

/// `keyctl generate ARGS`, which must succeed and print JSON.
fn generate_json(args: &[&str]) -> Value {
    Test::new().arg("generate").args(args).run().json()
}

fn b64len(v: &Value) -> usize {
    keyctl::b64::decode(v.as_str().unwrap()).unwrap().len()
}

#[test]
fn es256_private_jwk_has_the_shape_auth_reads() {
    let jwk = generate_json(&["--alg", "ES256", "--format", "jwk"]);
    let names: Vec<&str> = jwk
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        [
            "kty", "crv", "x", "y", "d", "kid", "alg", "use", "key_ops", "ext"
        ]
    );
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["key_ops"], serde_json::json!(["sign", "verify"]));
    assert_eq!(jwk["ext"], true);
    for m in ["x", "y", "d"] {
        assert_eq!(b64len(&jwk[m]), 32, "{m}");
    }
    let kid = jwk["kid"].as_str().unwrap();
    assert_eq!(kid.len(), 36, "default kid is a UUID: {kid}");
}

#[test]
fn ec_fields_are_always_32_bytes_over_many_keys() {
    // About 1 in 128 keys has a coordinate or scalar with a leading zero byte.
    for _ in 0..300 {
        let m = keyctl::key::Material::generate(keyctl::key::Alg::Es256, 0).unwrap();
        let jwk = keyctl::jwk::private_json(&m, Some("k"), true);
        for name in ["x", "y", "d"] {
            assert_eq!(b64len(&jwk[name]), 32);
        }
    }
}

#[test]
fn every_alg_has_its_members() {
    let rsa = generate_json(&["--alg", "RS256", "--format", "jwk"]);
    for m in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
        assert!(rsa.get(m).is_some(), "RSA {m}");
    }
    assert_eq!(b64len(&rsa["n"]), 256);
    let ed = generate_json(&["--alg", "EdDSA", "--format", "jwk"]);
    assert_eq!(
        (ed["kty"].as_str(), ed["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    let hs = generate_json(&["--alg", "HS256", "--format", "jwk"]);
    assert_eq!(hs["kty"], "oct");
    assert!(
        hs["kid"].is_string(),
        "a new HS256 key has a kid; only the legacy key has none"
    );
    assert_eq!(b64len(&hs["k"]), 32);
}

#[test]
fn rsa_bits_are_honoured() {
    let rsa = generate_json(&[
        "--alg",
        "RS256",
        "--rsa-bits",
        "3072",
        "--format",
        "public-jwk",
    ]);
    assert_eq!(b64len(&rsa["n"]), 384);
}

#[test]
fn weak_or_odd_rsa_sizes_are_usage_errors() {
    for bits in ["1024", "2047", "abc"] {
        Test::new()
            .args(["generate", "--alg", "RS256", "--rsa-bits", bits])
            .status(2)
            .stdout_is("")
            .run();
    }
}

#[test]
fn public_jwk_has_no_private_member() {
    for alg in ["ES256", "RS256", "EdDSA"] {
        let jwk = generate_json(&["--alg", alg, "--format", "public-jwk"]);
        for m in keyctl::jwk::PRIVATE_MEMBERS {
            assert!(jwk.get(m).is_none(), "{alg} {m}");
        }
        assert_eq!(jwk["key_ops"], serde_json::json!(["verify"]));
    }
}

#[test]
fn kid_choices() {
    let jwk = generate_json(&["--kid", "my-key-2026", "--format", "public-jwk"]);
    assert_eq!(jwk["kid"], "my-key-2026");
    let jwk = generate_json(&["--kid-format", "thumbprint", "--format", "jwk"]);
    let m = keyctl::jwk::Jwk::from_json(&jwk).unwrap().material;
    assert_eq!(jwk["kid"].as_str().unwrap(), keyctl::jwk::thumbprint(&m));
}

#[test]
fn json_format_holds_every_form() {
    let v = generate_json(&["--alg", "EdDSA", "--format", "json"]);
    assert!(
        v["private_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    assert!(
        v["public_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN PUBLIC KEY")
    );
    assert_eq!(v["private_jwk"]["kid"], v["kid"]);
    assert!(v["env"]["JWT_KEYS"].as_str().unwrap().starts_with("[{"));
    assert!(
        v["env"]["JWT_JWKS"]
            .as_str()
            .unwrap()
            .starts_with("{\"keys\"")
    );
}

#[test]
fn env_format_is_quoted_and_reads_back_with_dotenvy() {
    let p = Project::generated("RS256");
    let text = p.read(".env");
    assert!(text.starts_with("JWT_KEYS='[{"), "{text}");
    assert!(text.contains("\nJWT_JWKS='{\"keys\":[{"));
    let parsed: Value = serde_json::from_str(&p.env_value("JWT_KEYS")).unwrap();
    assert_eq!(parsed[0]["alg"], "RS256");
    p.keyctl(["jwks", "--check"]).run();
}

#[test]
fn out_writes_private_files_0600_and_never_overwrites() {
    let p = Project::new();
    let pem = || {
        p.keyctl(["generate", "--format", "pem", "--out"])
            .arg(p.path())
    };
    pem().stdout_is("").run();
    assert_eq!(p.mode("private.pem"), 0o600);
    assert_eq!(p.mode("public.pem"), 0o644);
    let before = p.read("private.pem");
    pem().status(3).stderr_has("already exists").run();
    assert_eq!(
        p.read("private.pem"),
        before,
        "a refused run leaves the file alone"
    );
    pem().arg("--force").run();
    assert_ne!(p.read("private.pem"), before);
    assert_eq!(p.mode("private.pem"), 0o600);
}

#[test]
fn out_refuses_before_writing_anything_when_one_target_exists() {
    let p = Project::new();
    p.write("public.jwk.json", "{}");
    p.keyctl(["generate", "--format", "jwk", "--out"])
        .arg(p.path())
        .status(3)
        .run();
    assert!(!p.file("private.jwk.json").exists());
}

#[test]
fn out_into_a_missing_directory_is_an_io_error() {
    let p = Project::new();
    p.keyctl(["generate", "--out"])
        .arg(p.file("nope/deeper"))
        .status(4)
        .run();
}

#[test]
fn hs256_has_no_pem() {
    Test::new()
        .args(["generate", "--alg", "HS256", "--format", "pem"])
        .status(2)
        .stdout_is("")
        .run();
}

#[test]
fn eddsa_warns_about_edge_functions() {
    Test::new()
        .args(["generate", "--alg", "EdDSA"])
        .stderr_has("Edge Functions")
        .run();
}

#[test]
fn never_prompts_without_a_terminal() {
    // stdin is not a terminal under the test harness: the default (ES256 private JWK) follows.
    let jwk = generate_json(&[]);
    assert_eq!(jwk["alg"], "ES256");
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `keyctl generate --format public-jwk --from-pem NAME` (expected to succeed unless told).
fn from_pem(p: &Project, name: &str) -> Test {
    p.keyctl(["generate", "--format", "public-jwk", "--from-pem"])
        .arg(p.file(name))
}

#[test]
fn from_pem_reads_every_container_openssl_writes() {
    let p = Project::new();
    let f = |n: &str| p.file(n).to_str().unwrap().to_owned();
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &f("sec1.pem"),
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &f("p8.pem"),
    ]);
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", &f("ed.pem")]);
    openssl(&["genrsa", "-traditional", "-out", &f("rsa1.pem"), "2048"]);
    openssl(&[
        "pkey",
        "-in",
        &f("p8.pem"),
        "-pubout",
        "-out",
        &f("spki.pem"),
    ]);
    openssl(&[
        "rsa",
        "-in",
        &f("rsa1.pem"),
        "-RSAPublicKey_out",
        "-out",
        &f("rsapub.pem"),
    ]);
    for (name, kty) in [
        ("sec1.pem", "EC"),
        ("p8.pem", "EC"),
        ("ed.pem", "OKP"),
        ("rsa1.pem", "RSA"),
        ("spki.pem", "EC"),
        ("rsapub.pem", "RSA"),
    ] {
        let jwk = from_pem(&p, name).run().json();
        assert_eq!(jwk["kty"], kty, "{name}");
    }
    // The converted public key is the one openssl derives from the private key.
    let jwk = from_pem(&p, "p8.pem").run().json();
    let m = keyctl::jwk::Jwk::from_json(&jwk).unwrap().material;
    assert_eq!(m.public_pem().unwrap(), p.read("spki.pem"));
}

#[test]
fn from_pem_refuses_what_supabase_cannot_use_without_echoing_it() {
    let p = Project::new();
    let f = |n: &str| p.file(n).to_str().unwrap().to_owned();
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        &f("p384.pem"),
    ]);
    openssl(&["genrsa", "-out", &f("rsa1024.pem"), "1024"]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-aes256",
        "-pass",
        "pass:pw",
        "-out",
        &f("enc.pem"),
    ]);
    openssl(&[
        "genrsa",
        "-traditional",
        "-aes256",
        "-passout",
        "pass:pw",
        "-out",
        &f("enc1.pem"),
        "2048",
    ]);
    p.write(
        "garbage.pem",
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    );
    p.write("text.pem", "hello\n");
    for (name, says) in [
        ("p384.pem", "P-384"),
        ("rsa1024.pem", "RSA-1024"),
        ("enc.pem", "encrypted"),
        ("enc1.pem", "encrypted"),
        ("garbage.pem", "malformed"),
        ("text.pem", "not a PEM"),
    ] {
        let err = from_pem(&p, name).status(2).stdout_is("").run().stderr;
        assert!(err.contains(says), "{name}: {err}");
        assert!(err.contains(name), "the error names the file: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        for line in p
            .read(name)
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
        {
            assert!(!err.contains(line), "{name}: key material in the error");
        }
    }
}

/// Issue 11's rough edges of `generate`: conflicting flags are errors, `--out` is checked
/// before a key is made, and a converted key gets the same kid every time.
#[test]
fn conflicting_flags_fail_and_a_converted_key_keeps_a_stable_kid() {
    Test::new()
        .args(["generate", "--alg", "ES256", "--rsa-bits", "3072"])
        .status(2)
        .stderr_has("--rsa-bits")
        .run();
    Test::new()
        .args(["generate", "--kid", "k1", "--kid-format", "thumbprint"])
        .status(2)
        .run();
    Test::new()
        .args([
            "generate",
            "--alg",
            "ES256",
            "--format",
            "pem",
            "--out",
            "/nonexistent/keys",
        ])
        .status(4)
        .stderr_has("no such directory")
        .run();
    // A PEM converted twice: the same kid (its thumbprint).
    let p = Project::new();
    let pem = Test::new()
        .args(["generate", "--alg", "ES256", "--format", "pem"])
        .run()
        .stdout;
    let private = pem
        .split("-----BEGIN PUBLIC KEY-----")
        .next()
        .unwrap()
        .to_owned();
    p.write("key.pem", &private);
    let kid = |format: &str| -> String {
        let out = Test::new()
            .arg("generate")
            .arg("--from-pem")
            .arg(p.file("key.pem"))
            .args(["--format", format])
            .run();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v["kid"].as_str().unwrap().to_owned()
    };
    assert_eq!(kid("jwk"), kid("public-jwk"), "same key in, same kid out");
    // A private JWK from stdin keeps its kid; its public half is printed.
    let jwk = Test::new()
        .args(["generate", "--alg", "ES256", "--kid", "my-key"])
        .run()
        .stdout;
    let out = Test::new()
        .args(["generate", "--from-pem", "-", "--format", "public-jwk"])
        .stdin(jwk)
        .run();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["kid"], "my-key");
    assert!(v.get("d").is_none(), "public only");
}
