//! `doctor` on chart projects: the classes of problems it finds on compose, found through
//! the chart's rendering, and what only a chart project gets wrong.

use super::{helm, plus, project};
use crate::support::{Project, T0};

#[test]
fn doctor_on_a_values_file_finds_the_demo_secret_and_a_half_wired_set() {
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let values = p.file("values.yaml").display().to_string();
    let out = helm(&p, &["doctor", "--json"], &values, T0);
    let report = out.json();
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"demo_secret"), "{codes:?}");
    // jwtKeys without jwtJwks (docs/KUBERNETES.md problem 4): Auth can sign with a key the
    // verifiers do not know.
    p.keyctl(["migrate", "--yes"])
        .no_project()
        .args(["--helm-values", &values])
        .now(T0)
        .run();
    let text = p.read("values.yaml");
    let half = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("jwtJwks:") {
                "    jwtJwks: \"\""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    p.write("values.yaml", half + "\n");
    let out = helm(&p, &["doctor", "--json"], &values, &plus(T0, 1));
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stdout.contains("JWT_JWKS"), "{}", out.stdout);
}

/// Doctor's codes on a copy of the chart's values file with `edit` applied, at `now`.
fn doctor_codes(edit: &dyn Fn(&str) -> String, now: &str) -> Vec<String> {
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let values = p.file("values.yaml").display().to_string();
    let migrated = p
        .keyctl(["migrate", "--yes"])
        .no_project()
        .args(["--helm-values", &values])
        .now(T0)
        .run();
    assert_eq!(migrated.code, Some(0), "{}", migrated.stderr);
    p.write("values.yaml", edit(&p.read("values.yaml")));
    let out = helm(&p, &["doctor", "--json"], &values, now);
    out.finding_codes()
}

fn set_line(text: &str, key: &str, value: &str) -> String {
    text.lines()
        .map(|l| {
            // The entries of `secret.jwt` and `secret.apikey` (four spaces in).
            if l.starts_with(&format!("    {key}:")) {
                format!("    {key}: {value}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn doctor_on_a_values_file_finds_the_same_classes_of_problems_as_on_compose() {
    // Invalid private set: the values are JSON that breaks SPEC §1.
    let codes = doctor_codes(
        &|t| set_line(t, "jwtKeys", "\"[{\\\"kty\\\":\\\"EC\\\"}]\""),
        T0,
    );
    assert!(codes.iter().any(|c| c == "key_set"), "{codes:?}");
    // The legacy key in the sets differs from the secret Auth uses.
    let codes = doctor_codes(
        &|t| {
            set_line(
                t,
                "secret",
                "\"another-secret-of-at-least-thirty-two-characters\"",
            )
        },
        T0,
    );
    assert!(
        !codes.is_empty()
            && codes
                .iter()
                .any(|c| c == "key_set" || c == "split_secret" || c == "api_key_rejected"),
        "{codes:?}"
    );
    // The chart's demo API keys expire on 2027-01-09.
    let codes = doctor_codes(&|t| t.to_owned(), "2027-02-01T00:00:00Z");
    assert!(codes.iter().any(|c| c == "api_key_expired"), "{codes:?}");
    // An image too old for asymmetric keys.
    let codes = doctor_codes(&|t| t.replace("tag: \"v14.12\"", "tag: \"v12.2.0\""), T0);
    assert!(codes.iter().any(|c| c == "image_too_old"), "{codes:?}");
}

fn codes_of(p: &Project, args: &[&str], now: &str) -> Vec<String> {
    p.keyctl(["doctor", "--json"])
        .no_project()
        .args(args)
        .now(now)
        .any_status()
        .run()
        .finding_codes()
}

#[test]
fn doctor_finds_what_only_a_chart_project_gets_wrong() {
    // A Secret without a key the chart references.
    let p = project(&[
        ("ours/values.secretref.yaml", "values.yaml"),
        ("ours/secret.stringdata.yaml", "secret.yaml"),
    ]);
    let args = [
        "--helm-values",
        "values.yaml",
        "--k8s-secret",
        "secret.yaml",
    ];
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            if a.ends_with(".yaml") {
                p.file(a).display().to_string()
            } else {
                (*a).to_owned()
            }
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(!codes_of(&p, &args, T0).contains(&"secret_key_missing".to_owned()));
    let secret = p.read("secret.yaml");
    let without: String = secret
        .lines()
        .filter(|l| !l.trim_start().starts_with("ANON_KEY:"))
        .map(|l| format!("{l}\n"))
        .collect();
    p.write("secret.yaml", &without);
    assert!(codes_of(&p, &args, T0).contains(&"secret_key_missing".to_owned()));
    p.write("secret.yaml", &secret);

    // The chart's values: secretRefKey without secretRef; realtime's list without
    // SEED_SELF_HOST; private keys inline; functions that verify JWTs.
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let values = p.file("values.yaml").display().to_string();
    let args = ["--helm-values", values.as_str()];
    let clean = codes_of(&p, &args, T0);
    for code in [
        "secret_ref_key_unused",
        "seed_self_host_missing",
        "inline_private_keys",
        "functions_without_jwks",
    ] {
        assert!(
            !clean.contains(&code.to_owned()),
            "{code} on the chart's own values: {clean:?}"
        );
    }
    let text = p.read("values.yaml");
    let edited = text
        .replace(
            "    # secretRefKey:\n    #   anonKey: anonKey",
            "    secretRefKey:\n      anonKey: ANON",
        )
        .replace("    - name: SEED_SELF_HOST\n      value: true\n", "")
        .replace(
            "    - name: VERIFY_JWT\n      value: false",
            "    - name: VERIFY_JWT\n      value: true",
        );
    assert_ne!(edited, text);
    p.write("values.yaml", &edited);
    let codes = codes_of(&p, &args, T0);
    for code in [
        "secret_ref_key_unused",
        "seed_self_host_missing",
        "functions_without_jwks",
    ] {
        assert!(
            codes.contains(&code.to_owned()),
            "{code} missing: {codes:?}"
        );
    }
    p.write("values.yaml", &text);
    p.keyctl(["migrate", "--yes"])
        .no_project()
        .args(args)
        .now(T0)
        .run();
    assert!(codes_of(&p, &args, T0).contains(&"inline_private_keys".to_owned()));
}

#[test]
fn environment_maps_of_charts_before_0_7_merge_into_the_charts_defaults() {
    // Before 0.7 `environment.<svc>` was a map, which Helm merges key by key: a map that sets
    // only GOTRUE_JWT_EXP keeps the chart's other entries, and its value sets the wait.
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let text = p.read("values.yaml");
    let start = text
        .find("\n  auth:\n    - name: API_EXTERNAL_URL")
        .unwrap()
        + 1;
    let end = start + text[start..].find("\n  rest:\n").unwrap() + 1;
    let mapped = format!(
        "{}  auth:\n    GOTRUE_JWT_EXP: \"7200\"\n{}",
        &text[..start],
        &text[end..]
    );
    p.write("values.yaml", &mapped);
    let values = p.file("values.yaml").display().to_string();
    let step = |now: &str, extra: &[&str]| {
        p.keyctl(["migrate", "--yes"])
            .no_project()
            .args(["--helm-values", &values])
            .args(extra)
            .now(now)
            .any_status()
            .run()
    };
    assert_eq!(step(T0, &[]).code, Some(0));
    assert_eq!(step(&plus(T0, 21), &[]).code, Some(0));
    // One hour and 20 minutes after the switch would do for GOTRUE_JWT_EXP=3600, not 7200.
    let early = step(&plus(T0, 21 + 81), &["--remint-api-keys"]);
    assert_eq!(early.code, Some(3), "{}", early.stderr);
    assert_eq!(
        step(&plus(T0, 21 + 141), &["--remint-api-keys"]).code,
        Some(0)
    );
}

#[test]
fn in_an_environment_map_the_charts_own_variable_wins() {
    // Before 0.7.1 a user's map entry is rendered before the chart's variable of the same
    // name, so the chart's wins: a map that sets PGRST_JWT_SECRET changes nothing.
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let text = p.read("values.yaml");
    let start = text.find("\n  rest:\n    - name:").unwrap() + 1;
    let rest_end = start + text[start..].find("\n  storage:\n").unwrap() + 1;
    let mapped = format!(
        "{}  rest:\n    PGRST_JWT_SECRET: \"not-the-secret\"\n{}",
        &text[..start],
        &text[rest_end..]
    );
    p.write("values.yaml", &mapped);
    let values = p.file("values.yaml").display().to_string();
    let codes = helm(&p, &["doctor", "--json"], &values, T0).finding_codes();
    assert!(
        !codes
            .iter()
            .any(|c| c == "split_secret" || c == "api_key_rejected"),
        "{codes:?}"
    );
}
