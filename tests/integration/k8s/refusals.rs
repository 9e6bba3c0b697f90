//! Chart projects keyctl must not write: Edge Functions that verify JWTs, a `secretRef`
//! without its Secret, EdDSA below the chart's realtime, charts too old, inputs it cannot
//! see — each refused before anything is written — and the odd inputs it must take.

use super::{check, helm, project, walk};
use crate::support::{T0, run_tool};

#[test]
fn functions_that_verify_jwts_stop_the_migration_before_anything_is_written() {
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let text = p.read("values.yaml").replace(
        "    - name: VERIFY_JWT\n      value: false",
        "    - name: VERIFY_JWT\n      value: true",
    );
    assert!(text.contains("value: true"));
    p.write("values.yaml", &text);
    let out = p
        .keyctl(["migrate", "--yes"])
        .no_project()
        .args(["--helm-values", p.file("values.yaml").to_str().unwrap()])
        .now(T0)
        .any_status()
        .run();
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("VERIFY_JWT"), "{}", out.stderr);
    assert_eq!(p.read("values.yaml"), text);
    assert!(!p.file(".keyctl").exists());
}

#[test]
fn a_secret_ref_without_its_manifest_is_refused() {
    let p = project(&[("ours/values.secretref.yaml", "values.yaml")]);
    let out = p
        .keyctl(["migrate", "--dry-run"])
        .no_project()
        .args(["--helm-values", p.file("values.yaml").to_str().unwrap()])
        .now(T0)
        .any_status()
        .run();
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("--k8s-secret"), "{}", out.stderr);
}

#[test]
fn eddsa_is_refused_while_the_charts_realtime_cannot_verify_it() {
    // The chart pins supabase/realtime v2.102.3; EdDSA needs v2.125.1 (SPEC §7).
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let values = p.file("values.yaml").display().to_string();
    let out = helm(&p, &["migrate", "--yes", "--alg", "EdDSA"], &values, T0);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains("v2.125.1") && out.stderr.contains("values.yaml"),
        "{}",
        out.stderr
    );
    assert!(!p.file(".keyctl").exists());
    let upgraded = p
        .read("values.yaml")
        .replace("tag: \"v2.102.3\"", "tag: \"v2.125.1\"");
    p.write("values.yaml", &upgraded);
    p.keyctl(["migrate", "--yes", "--alg", "EdDSA"])
        .no_project()
        .args(["--helm-values", &values])
        .now(T0)
        .run();
}

/// The chart's values without the `secret.apikey` block (and its comments), as the values of
/// a chart before 0.5.2 look.
fn without_apikey(text: &str) -> String {
    let start = text
        .find("  ## API key material for asymmetric auth support")
        .unwrap();
    let end = text.find("  ## PostgreSQL credentials").unwrap();
    format!("{}{}", &text[..start], &text[end..])
}

#[test]
fn a_chart_older_than_0_5_2_is_refused_before_anything_is_written() {
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let old = without_apikey(&p.read("values.yaml"));
    p.write("values.yaml", &old);
    let values = p.file("values.yaml").display().to_string();
    let migrate = |extra: &[&str]| {
        p.keyctl(["migrate", "--yes"])
            .no_project()
            .args(["--helm-values", &values])
            .args(extra)
            .now(T0)
            .any_status()
            .run()
    };
    for extra in [&[][..], &["--chart-version", "0.5.1"][..]] {
        let out = migrate(extra);
        assert_eq!(out.code, Some(3), "{extra:?}: {}", out.stderr);
        assert!(out.stderr.contains("0.5.2"), "{}", out.stderr);
        assert_eq!(p.read("values.yaml"), old);
        assert!(!p.file(".keyctl").exists());
    }
    let codes = helm(&p, &["doctor", "--json"], &values, T0).finding_codes();
    assert!(
        codes.contains(&"chart_version_unknown".to_owned()),
        "{codes:?}"
    );
    // Said to run a newer chart: the block is added where the chart reads it.
    let out = migrate(&["--chart-version", "0.6.3"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let check = check(&values, "-", T0, &[]);
    assert!(
        check["env"]["auth"]["GOTRUE_JWT_KEYS"]
            .as_str()
            .is_some_and(|k| k.contains("\"kid\"")),
        "{check}"
    );
}

#[test]
fn review_cases_odd_keys_empty_values_newlines_value_from_and_modes() {
    // A Secret key with a dash and a value that ends with a newline (echo … | base64), a
    // values file whose jwtKeys is a bare `jwtKeys:`: walked, nothing printed.
    let p = project(&[
        ("ours/values.secretref.yaml", "values.yaml"),
        ("ours/secret.data.yaml", "secret.yaml"),
    ]);
    let values = p
        .read("values.yaml")
        .replace("      secret: JWT_SECRET", "      secret: jwt-secret")
        .replace("    jwtKeys: \"\"", "    jwtKeys:");
    p.write("values.yaml", &values);
    let secret = p.read("secret.yaml");
    let old = secret
        .lines()
        .find_map(|l| l.trim().strip_prefix("JWT_SECRET: "))
        .unwrap()
        .to_owned();
    p.write(
        "secret.yaml",
        secret.replace(&format!("JWT_SECRET: {old}"), &format!("jwt-secret: {old}")),
    );
    walk(&p, "odd keys", Some("secret.yaml"));

    // The same secret with a trailing newline: the project loads and doctor reads it, and the
    // migration refuses to build a key from it, writing nothing.
    let p = project(&[
        ("ours/values.secretref.yaml", "values.yaml"),
        ("ours/secret.data.yaml", "secret.yaml"),
    ]);
    let plain = String::from_utf8(base64_decode(&old)).unwrap();
    let with_newline = base64_encode(format!("{plain}\n").as_bytes());
    let secret = secret.replace(
        &format!("JWT_SECRET: {old}"),
        &format!("JWT_SECRET: {with_newline}"),
    );
    p.write("secret.yaml", &secret);
    let args = [
        "--helm-values".to_owned(),
        p.file("values.yaml").display().to_string(),
        "--k8s-secret".to_owned(),
        p.file("secret.yaml").display().to_string(),
    ];
    let doctor = p
        .keyctl(["doctor", "--json"])
        .no_project()
        .args(&args)
        .now(T0)
        .any_status()
        .run();
    assert!(
        doctor.code == Some(0) || doctor.code == Some(1),
        "{}",
        doctor.stderr
    );
    let out = p
        .keyctl(["migrate", "--yes"])
        .no_project()
        .args(&args)
        .now(T0)
        .any_status()
        .run();
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("printf"), "{}", out.stderr);
    assert_eq!(p.read("secret.yaml"), secret);
    assert!(!p.file(".keyctl").exists());

    // valueFrom on a variable the chart wires: refused, named.
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let text = p.read("values.yaml").replace(
        "    - name: GOTRUE_JWT_EXP\n      value: \"3600\"",
        "    - name: GOTRUE_JWT_EXP\n      valueFrom:\n        configMapKeyRef: {name: auth, key: exp}",
    );
    p.write("values.yaml", &text);
    let values = p.file("values.yaml").display().to_string();
    let out = helm(&p, &["migrate", "--yes"], &values, T0);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains("GOTRUE_JWT_EXP") && out.stderr.contains("valueFrom"),
        "{}",
        out.stderr
    );
    assert_eq!(p.read("values.yaml"), text);

    // The mode check is about the file that holds the keys: the Secret manifest.
    let p = project(&[
        ("ours/values.secretref.yaml", "values.yaml"),
        ("ours/secret.stringdata.yaml", "secret.yaml"),
    ]);
    p.chmod("secret.yaml", 0o644);
    let out = p
        .keyctl(["doctor", "--json"])
        .no_project()
        .args(["--helm-values", p.file("values.yaml").to_str().unwrap()])
        .args(["--k8s-secret", p.file("secret.yaml").to_str().unwrap()])
        .now(T0)
        .any_status()
        .run();
    let readable = out.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "env_readable")
        .cloned()
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        readable["place"].as_str().unwrap().ends_with("secret.yaml"),
        "{readable}"
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    let ran = run_tool(
        "python3",
        &[
            "-c",
            "import base64,sys; sys.stdout.buffer.write(base64.b64decode(sys.argv[1]))",
            s,
        ],
        "",
    );
    assert!(ran.ok);
    ran.stdout.into_bytes()
}

fn base64_encode(b: &[u8]) -> String {
    let ran = run_tool(
        "python3",
        &[
            "-c",
            "import base64,sys; print(base64.b64encode(sys.argv[1].encode()).decode())",
            std::str::from_utf8(b).unwrap(),
        ],
        "",
    );
    assert!(ran.ok);
    ran.stdout.trim().to_owned()
}

#[test]
fn a_chart_version_keyctl_cannot_read_or_a_pre_release_of_0_5_3_is_refused() {
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let values = p.file("values.yaml").display().to_string();
    for version in ["0.5.3-rc1", "latest", "0.5.x", " V0.5.1"] {
        let out = helm(
            &p,
            &["migrate", "--dry-run", "--chart-version", version],
            &values,
            T0,
        );
        assert_eq!(out.code, Some(3), "{version}: {}", out.stderr);
    }
    // A secretRef without its Secret: only doctor reads such a project.
    let p = project(&[("ours/values.secretref.yaml", "values.yaml")]);
    let values = p.file("values.yaml").display().to_string();
    let status = helm(&p, &["migrate", "status"], &values, T0);
    assert_eq!(status.code, Some(3), "{}", status.stdout);
    assert!(status.stderr.contains("--k8s-secret"), "{}", status.stderr);
}
