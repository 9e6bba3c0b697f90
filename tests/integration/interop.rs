//! Interop with real clients: tokens keyctl signs verify in PyJWT and node `jose` against
//! keyctl's `JWT_JWKS`; tokens they sign with keyctl's private JWKs verify in keyctl; the PEM
//! files load in `openssl`, Python cryptography and node; tampering is rejected everywhere.

use std::process::Command;

use serde_json::{Map, Value, json};

use crate::support::{Project, Test, jose, pyjwt};
use keyctl::jws;
use keyctl::keyset;

const ALGS: [&str; 4] = ["ES256", "RS256", "EdDSA", "HS256"];

fn claims() -> Map<String, Value> {
    json!({"role":"authenticated","sub":"8f2c","iss":"supabase","iat":1_700_000_000,"exp":4_000_000_000_u64})
        .as_object()
        .unwrap()
        .clone()
}

/// The project's JWT_JWKS as keyctl derives it, and its parsed JWT_KEYS.
fn sets(p: &Project) -> (String, Vec<keyctl::jwk::Jwk>) {
    let v = p.keyctl(["jwks", "--format", "json"]).run().json();
    let keys = keyset::parse_private_set(&p.env_value("JWT_KEYS"), "JWT_KEYS").unwrap();
    (v["JWT_JWKS"].to_string(), keys)
}

fn tamper(token: &str) -> String {
    // Flip one character of the payload: the signature no longer covers it.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let payload = keyctl::b64::decode(&parts[1]).unwrap();
    let forged = String::from_utf8(payload)
        .unwrap()
        .replace("authenticated", "service_role");
    parts[1] = keyctl::b64::encode(forged.as_bytes());
    parts.join(".")
}

/// keyctl's verdict, the way a verifier holding JWT_JWKS decides: find the kid, pin its alg.
fn keyctl_verifies(jwks: &str, token: &str) -> bool {
    let set: Value = serde_json::from_str(jwks).unwrap();
    let Ok(d) = jws::decode(token) else {
        return false;
    };
    set["keys"].as_array().unwrap().iter().any(|k| {
        k.get("kid").and_then(Value::as_str) == d.kid()
            && keyctl::jwk::Jwk::from_json(k).is_ok_and(|j| d.verifies_with(&j.material))
    })
}

#[test]
fn tokens_keyctl_signs_verify_in_pyjwt_and_jose_and_tampering_fails() {
    for alg in ALGS {
        let p = Project::generated(alg);
        let (jwks, keys) = sets(&p);
        let signer = keys.iter().find(|k| k.can_sign()).unwrap();
        let token = jws::sign(&signer.material, signer.kid.as_deref(), &claims()).unwrap();
        let py = pyjwt(&["verify", alg, &token], &jwks);
        assert!(py.ok, "{alg}: PyJWT rejected keyctl's token: {}", py.stderr);
        let js = jose(&["verify", alg, &token], &jwks);
        assert!(js.ok, "{alg}: jose rejected keyctl's token: {}", js.stderr);
        assert!(keyctl_verifies(&jwks, &token));

        let forged = tamper(&token);
        assert!(
            !pyjwt(&["verify", alg, &forged], &jwks).ok,
            "{alg}: PyJWT accepted a tampered token"
        );
        assert!(
            !jose(&["verify", alg, &forged], &jwks).ok,
            "{alg}: jose accepted a tampered token"
        );
        assert!(
            !keyctl_verifies(&jwks, &forged),
            "{alg}: keyctl accepted a tampered token"
        );
    }
}

#[test]
fn tokens_pyjwt_and_jose_sign_with_keyctl_private_jwks_verify_in_keyctl() {
    for alg in ALGS {
        let p = Project::generated(alg);
        let (jwks, keys) = sets(&p);
        let private: Value = serde_json::from_str(&p.env_value("JWT_KEYS")).unwrap();
        let jwk = private[0].to_string();
        let claims = Value::Object(claims()).to_string();
        for (client, ran) in [
            ("PyJWT", pyjwt(&["sign", alg, &claims], &jwk)),
            ("jose", jose(&["sign", alg, &claims], &jwk)),
        ] {
            assert!(
                ran.ok,
                "{alg}: {client} could not sign with keyctl's JWK: {}",
                ran.stderr
            );
            let token = ran.stdout.trim();
            assert!(
                keyctl_verifies(&jwks, token),
                "{alg}: keyctl rejected {client}'s token"
            );
            assert!(
                !keyctl_verifies(&jwks, &tamper(token)),
                "{alg}: keyctl accepted a tampered {client} token"
            );
            let d = jws::decode(token).unwrap();
            assert_eq!(d.kid(), keys[0].kid.as_deref());
        }
    }
}

#[test]
fn legacy_secret_is_used_as_literal_bytes_like_every_client() {
    // A base64-looking secret must not be decoded: PyJWT signs HS256 with the string's bytes,
    // and the kid-less oct key keyctl derives must verify that token in jose and PyJWT.
    let secret = "c2VjcmV0LXRoYXQtbG9va3MtbGlrZS1iYXNlNjQ=xyz0123";
    let keys = Project::new();
    keys.keyctl(["generate", "--format", "pem", "--out"])
        .arg(keys.path())
        .run();
    let v = keys
        .keyctl(["jwks", "--format", "json", "--signing-kid", "legacy"])
        .args(["--legacy-secret-env", "S", "--key"])
        .arg(keys.file("private.pem"))
        .var("S", secret)
        .run()
        .json();
    let jwks = v["JWT_JWKS"].to_string();
    let oct =
        json!({"kty":"oct","k":keyctl::b64::encode(secret.as_bytes()),"alg":"HS256"}).to_string();
    let signed = pyjwt(
        &["sign", "HS256", &Value::Object(claims()).to_string()],
        &oct,
    );
    assert!(signed.ok, "{}", signed.stderr);
    let token = signed.stdout.trim();
    assert_eq!(jws::decode(token).unwrap().kid(), None);
    assert!(
        jose(&["verify", "HS256", token], &jwks).ok,
        "jose rejected the legacy token"
    );
    assert!(
        pyjwt(&["verify", "HS256", token], &jwks).ok,
        "PyJWT rejected the legacy token"
    );
    assert!(keyctl_verifies(&jwks, token));
}

#[test]
fn pem_files_load_in_openssl_python_and_node() {
    for alg in ["ES256", "RS256", "EdDSA"] {
        let p = Project::new();
        p.keyctl(["generate", "--alg", alg, "--format", "pem", "--out"])
            .arg(p.path())
            .run();
        let private = p.file("private.pem");
        let public = p.file("public.pem");
        let out = Command::new("openssl")
            .arg("pkey")
            .arg("-in")
            .arg(&private)
            .arg("-pubout")
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{alg}: openssl pkey: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            p.read("public.pem"),
            "{alg}: openssl derives the same public key"
        );
        let out = Command::new("openssl")
            .args(["pkey", "-pubin", "-noout", "-in"])
            .arg(&public)
            .output()
            .unwrap();
        assert!(out.status.success(), "{alg}: openssl pkey -pubin");
        let (a, b) = (private.to_str().unwrap(), public.to_str().unwrap());
        let py = pyjwt(&["pem", a, b], "");
        assert!(py.ok, "{alg}: Python cryptography: {}", py.stderr);
        let js = jose(&["pem", a, b], "");
        assert!(js.ok, "{alg}: node crypto: {}", js.stderr);
    }
}

#[test]
fn thumbprint_kids_match_jose() {
    for alg in ["ES256", "RS256", "EdDSA"] {
        let jwk = Test::new()
            .args(["generate", "--alg", alg, "--kid-format", "thumbprint"])
            .args(["--format", "public-jwk"])
            .run()
            .json();
        let ran = jose(&["thumbprint"], &jwk.to_string());
        assert!(ran.ok, "{}", ran.stderr);
        assert_eq!(ran.stdout.trim(), jwk["kid"].as_str().unwrap(), "{alg}");
    }
}

/// keyctl's verdict for Storage and Edge Functions is jose's: the same token, with each kind
/// of claim and `crit` header, is accepted by node `jose` (`jwtVerify`, no clock tolerance)
/// exactly when keyctl says Edge Functions accept it (both on the real clock, with values far
/// from any boundary).
#[test]
fn claim_checks_for_jose_services_agree_with_node_jose() {
    let p = Project::generated("ES256");
    let (jwks, keys) = sets(&p);
    let signer = keys.iter().find(|k| k.can_sign()).unwrap();
    let kid = signer.kid.clone().unwrap();
    let now = jiff::Timestamp::now().as_second();
    let header = json!({"alg":"ES256","typ":"JWT","kid": kid});
    let cases = [
        (header.clone(), json!({"role":"anon","exp": now + 3600})),
        (
            header.clone(),
            json!({"role":"anon","exp": (now + 3600).to_string()}),
        ),
        (header.clone(), json!({"role":"anon","exp": null})),
        (
            header.clone(),
            json!({"role":"anon","exp": now as f64 + 3600.5}),
        ),
        (header.clone(), json!({"role":"anon","exp": now - 3600})),
        (header.clone(), json!({"role":"anon","exp": i64::MAX})),
        (header.clone(), json!({"role":"anon","iat": "yesterday"})),
        (header.clone(), json!({"role":"anon","iat": null})),
        (header.clone(), json!({"role":"anon","iat": now + 86_400})),
        (header.clone(), json!({"role":"anon","nbf": now + 3600})),
        (header.clone(), json!({"role":"anon","nbf": i64::MIN})),
        (header.clone(), json!({"role":"anon","aud": 5, "iss": 7})),
        (
            json!({"alg":"ES256","kid": kid, "crit": ["exp"], "exp": 1}),
            json!({"role":"anon"}),
        ),
        (
            json!({"alg":"ES256","kid": kid, "crit": ["b64"], "b64": true}),
            json!({"role":"anon"}),
        ),
    ];
    let mut accepted = 0;
    let n = cases.len();
    for (header, claims) in cases {
        let input = format!(
            "{}.{}",
            keyctl::b64::encode(header.to_string().as_bytes()),
            keyctl::b64::encode(claims.to_string().as_bytes())
        );
        let token = format!(
            "{input}.{}",
            keyctl::b64::encode(&signer.material.sign(input.as_bytes()).unwrap())
        );
        let node = jose(&["verify", "ES256", &token], &jwks);
        let v = p
            .keyctl([
                "token",
                "verify",
                &token,
                "--json",
                "--service",
                "functions",
            ])
            .any_status()
            .run()
            .json();
        assert_eq!(
            v["results"][0]["valid"].as_bool(),
            Some(node.ok),
            "{header} {claims}: jose says {}; keyctl says {v}",
            node.stderr.trim()
        );
        accepted += usize::from(node.ok);
    }
    assert!((4..n - 4).contains(&accepted), "{accepted} of {n} accepted");
}
