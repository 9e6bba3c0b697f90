//! Kubernetes projects (issue 14): the supabase-kubernetes chart's own values file and our
//! `secretRef` variants with their Secret manifests (`tests/k8s/`), walked legacy → revoked
//! as a user runs it. After every step an independent checker (`tests/k8s/check_chart.py`:
//! the chart's templates read again in Python, the chart's defaults merged under the file as
//! Helm does, PyJWT verifying) confirms that every session token Auth issued or issues and
//! every API key clients hold still verifies at every container — but the API keys re-minted
//! with consent at the last step — and every byte outside the keys keyctl manages is the
//! file's own.

use serde_json::{Value, json};

use crate::support::{Project, T0, repo, run_tool};

pub(crate) fn check(values: &str, secret: &str, now: &str, tokens: &[(String, String)]) -> Value {
    let tokens: Vec<Value> = tokens
        .iter()
        .map(|(k, t)| json!({"kind": k, "token": t}))
        .collect();
    let now = now
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second()
        .to_string();
    let script = repo().join("tests/k8s/check_chart.py");
    let ran = run_tool(
        "python3",
        &[
            script.to_str().unwrap(),
            "check",
            values,
            secret,
            &now,
            &serde_json::to_string(&tokens).unwrap(),
        ],
        "",
    );
    assert!(ran.ok, "check_chart.py: {}", ran.stderr);
    serde_json::from_str(&ran.stdout).unwrap()
}

pub(crate) fn plus(t: &str, mins: i64) -> String {
    (t.parse::<jiff::Timestamp>().unwrap() + jiff::SignedDuration::from_mins(mins)).to_string()
}

pub(crate) fn secs(t: &str) -> i64 {
    t.parse::<jiff::Timestamp>().unwrap().as_second()
}

/// Lines of `before` that `after` lost: each must be a key keyctl manages.
fn only_key_lines_changed(name: &str, before: &str, after: &str) {
    const MANAGED: [&str; 13] = [
        "secret:",
        "anonKey:",
        "serviceKey:",
        "publishableKey:",
        "secretKey:",
        "anonKeyAsymmetric:",
        "serviceRoleKeyAsymmetric:",
        "jwtKeys:",
        "jwtJwks:",
        "secretRef:",
        "secretRefKey:",
        "JWT_",
        "_KEY",
    ];
    let kept: std::collections::HashSet<&str> = after.lines().collect();
    for line in before.lines().filter(|l| !kept.contains(l)) {
        assert!(
            MANAGED
                .iter()
                .any(|m| line.trim_start().starts_with(m) || line.contains(m)),
            "{name}: a line keyctl does not manage changed: {line:?}"
        );
    }
    let before_n = before.lines().count();
    let added = after.lines().count().saturating_sub(before_n);
    assert!(added <= 12, "{name}: {added} lines added");
}

/// The secrets and private key parts the containers get (checker output `env`): what no
/// output of keyctl may show.
fn key_material(look: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for env in look["env"].as_object().unwrap().values() {
        for (k, v) in env.as_object().unwrap() {
            let v = v.as_str().unwrap_or_default();
            if k.ends_with("JWT_SECRET") && v.len() >= 16 {
                out.push(v.to_owned());
            }
            if k == "GOTRUE_JWT_KEYS"
                && let Ok(Value::Array(keys)) = serde_json::from_str::<Value>(v)
            {
                out.extend(
                    keys.iter()
                        .filter_map(|k| k["d"].as_str().map(str::to_owned)),
                );
            }
        }
    }
    out
}

/// Walks one chart project through the migration; `secret` is the manifest's name in the
/// project, when the project has one.
pub(crate) fn walk(p: &Project, name: &str, secret: Option<&str>) {
    let values = p.file("values.yaml").display().to_string();
    let manifest = secret.map(|s| p.file(s).display().to_string());
    let secret_arg = manifest.clone().unwrap_or_else(|| "-".into());
    let mut locate = vec![
        "--helm-values".to_owned(),
        values.clone(),
        "--release".into(),
        "demo".into(),
        "--chart-version".into(),
        "0.7.2".into(),
    ];
    if let Some(m) = &manifest {
        locate.extend(["--k8s-secret".to_owned(), m.clone()]);
    }
    let before = plus(T0, -1);
    let first = check(&values, &secret_arg, &before, &[]);
    let lifetime = first["lifetime"].as_i64().unwrap();
    let mut sessions = vec![(
        "a session issued before step 1".to_owned(),
        first["issued"].as_str().unwrap().to_owned(),
        secs(&before) + lifetime,
    )];
    let held: Vec<String> = first["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert!(!held.is_empty(), "{name}: no API keys found");
    let switch_at = plus(T0, 21);
    let revoke_at = plus(&switch_at, lifetime / 60 + 21);
    for (label, now, extra, phase) in [
        ("step 1", T0.to_owned(), vec![], "dual-verify"),
        ("step 2", switch_at, vec![], "switched"),
        ("step 3", revoke_at, vec!["--remint-api-keys"], "revoked"),
    ] {
        let texts_before: Vec<String> = std::iter::once(&values)
            .chain(manifest.as_ref())
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        let out = p
            .keyctl(["migrate", "--yes"])
            .no_project()
            .args(&locate)
            .args(&extra)
            .now(&now)
            .any_status()
            .run();
        assert_eq!(out.code, Some(0), "{name}: {label}: {}", out.stderr);
        assert!(
            out.stdout
                .contains("rollout restart deployment/demo-supabase-"),
            "{name}: {label}: {}",
            out.stdout
        );
        if label == "step 3" {
            // Edge Functions hand the API keys to functions (VERIFY_JWT or not): restarted.
            assert!(
                out.stdout.contains("deployment/demo-supabase-functions"),
                "{name}: {label}: {}",
                out.stdout
            );
        }
        // No key material in what keyctl said, before or after the step.
        for material in key_material(&check(&values, &secret_arg, &now, &[]))
            .iter()
            .chain(&key_material(&first))
        {
            assert!(
                !out.stdout.contains(material.as_str()) && !out.stderr.contains(material.as_str()),
                "{name}: {label}: key material printed"
            );
        }
        let status = p
            .keyctl(["migrate", "status", "--json"])
            .no_project()
            .args(&locate[..2])
            .args(
                manifest
                    .iter()
                    .flat_map(|m| ["--k8s-secret".to_owned(), m.clone()]),
            )
            .now(&now)
            .run()
            .json();
        assert_eq!(status["phase"], phase, "{name}: {label}");
        if manifest.is_some() {
            let text = std::fs::read_to_string(&values).unwrap();
            assert!(
                !text.contains("kty"),
                "{name}: {label}: key material went into the values file"
            );
        }
        for (f, text) in std::iter::once(&values)
            .chain(manifest.as_ref())
            .zip(&texts_before)
        {
            only_key_lines_changed(name, text, &std::fs::read_to_string(f).unwrap());
        }
        let now_look = check(&values, &secret_arg, &now, &[]);
        let keys: Vec<String> = now_look["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        let mut tokens: Vec<(String, String)> = sessions
            .iter()
            .filter(|(_, _, exp)| *exp > secs(&now))
            .map(|(k, t, _)| (k.clone(), t.clone()))
            .collect();
        let issued = now_look["issued"].as_str().unwrap().to_owned();
        tokens.push((format!("a session issued after {label}"), issued.clone()));
        for k in held
            .iter()
            .filter(|k| label != "step 3" || keys.contains(k))
            .chain(&keys)
        {
            tokens.push(("an API key clients hold".into(), k.clone()));
        }
        let verdict = check(&values, &secret_arg, &now, &tokens);
        assert_eq!(
            verdict["failures"],
            json!([]),
            "{name}: {label}: tokens rejected"
        );
        sessions.push((
            format!("a session issued after {label}"),
            issued,
            secs(&now) + lifetime,
        ));
        if label == "step 3" {
            // The legacy secret trusts nothing any more: the HS256 keys clients held are gone.
            let old: Vec<(String, String)> = held
                .iter()
                .filter(|k| !keys.contains(k))
                .map(|k| ("a retired HS256 key".into(), k.clone()))
                .collect();
            assert!(!old.is_empty(), "{name}: no key was re-minted");
            let rejected = check(&values, &secret_arg, &now, &old);
            assert!(
                rejected["failures"].as_array().unwrap().len() >= old.len() * 3,
                "{name}: retired keys still verify: {rejected}"
            );
        }
    }
}

pub(crate) fn project(files: &[(&str, &str)]) -> Project {
    let p = Project::new();
    for (from, to) in files {
        let text = std::fs::read_to_string(repo().join("tests/k8s").join(from)).unwrap();
        p.write(to, text);
        p.chmod(to, 0o600);
    }
    p
}

#[test]
fn the_charts_values_file_walks_from_legacy_to_revoked() {
    let p = project(&[("published/values.yaml", "values.yaml")]);
    walk(&p, "published values.yaml", None);
    let doctor = p
        .keyctl(["doctor"])
        .no_project()
        .args(["--helm-values", p.file("values.yaml").to_str().unwrap()])
        .now(plus(T0, 200))
        .any_status()
        .run();
    assert_eq!(doctor.code, Some(0), "{}", doctor.stdout);
}

#[test]
fn a_secret_manifest_as_string_data_walks_from_legacy_to_revoked() {
    let p = project(&[
        ("ours/values.secretref.yaml", "values.yaml"),
        ("ours/secret.stringdata.yaml", "secret.yaml"),
    ]);
    let old_secret = std::fs::read_to_string(repo().join("tests/k8s/ours/secret.stringdata.yaml"))
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("JWT_SECRET: ").map(str::to_owned))
        .unwrap();
    walk(&p, "secretRef + stringData", Some("secret.yaml"));
    let values = p.read("values.yaml");
    assert!(
        values.contains("secretRef: \"supabase-jwt-keys\""),
        "{values}"
    );
    assert!(
        !p.read("secret.yaml").contains(&old_secret),
        "the retired secret is still in the Secret"
    );
    // A token signed with the retired secret is explained from keyctl's backup of the Secret.
    let iat = (secs(T0) - 60).to_string();
    let minted = run_tool(
        "python3",
        &[
            repo()
                .join("tests/stacks/check_tokens.py")
                .to_str()
                .unwrap(),
            "mint",
            &old_secret,
            "anon",
            &iat,
        ],
        "",
    );
    assert!(minted.ok, "{}", minted.stderr);
    let out = p
        .keyctl(["token", "verify"])
        .no_project()
        .args(["--helm-values", p.file("values.yaml").to_str().unwrap()])
        .args(["--k8s-secret", p.file("secret.yaml").to_str().unwrap()])
        .arg(minted.stdout.trim())
        .now(plus(T0, 300))
        .any_status()
        .run();
    assert!(
        out.stdout.contains("signed with the JWT_SECRET retired on"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_secret_manifest_as_base64_data_walks_from_legacy_to_revoked() {
    let p = project(&[
        ("ours/values.override-secretref.yaml", "values.yaml"),
        ("ours/secret.data.yaml", "secret.yaml"),
    ]);
    walk(&p, "override file + data", Some("secret.yaml"));
    let secret = p.read("secret.yaml");
    assert!(!secret.contains("stringData"), "{secret}");
}

#[test]
fn doctor_on_a_values_file_finds_the_demo_secret_and_a_half_wired_set() {
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let values = p.file("values.yaml").display().to_string();
    let out = p
        .keyctl(["doctor", "--json"])
        .no_project()
        .args(["--helm-values", &values])
        .now(T0)
        .any_status()
        .run();
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
    let out = p
        .keyctl(["doctor", "--json"])
        .no_project()
        .args(["--helm-values", &values])
        .now(plus(T0, 1))
        .any_status()
        .run();
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stdout.contains("JWT_JWKS"), "{}", out.stdout);
}

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
    let out = p
        .keyctl(["doctor", "--json"])
        .no_project()
        .args(["--helm-values", &values])
        .now(now)
        .any_status()
        .run();
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
fn a_chart_project_rolls_back_a_switch_without_rejecting_a_token() {
    let p = project(&[
        ("ours/values.secretref.yaml", "values.yaml"),
        ("ours/secret.data.yaml", "secret.yaml"),
    ]);
    let values = p.file("values.yaml").display().to_string();
    let secret = p.file("secret.yaml").display().to_string();
    let args = [
        "--helm-values",
        values.as_str(),
        "--k8s-secret",
        secret.as_str(),
    ];
    let before = check(&values, &secret, T0, &[]);
    let mut tokens = vec![(
        "a session before step 1".to_owned(),
        before["issued"].as_str().unwrap().to_owned(),
    )];
    for (now, sub) in [
        (T0.to_owned(), None),
        (plus(T0, 21), None),
        (plus(T0, 25), Some("rollback")),
    ] {
        let mut cmd = p.keyctl(["migrate"]).no_project();
        if let Some(sub) = sub {
            cmd = cmd.arg(sub);
        }
        let out = cmd.arg("--yes").args(args).now(&now).any_status().run();
        assert_eq!(out.code, Some(0), "{now}: {}", out.stderr);
        let look = check(&values, &secret, &now, &[]);
        tokens.push((
            format!("a session at {now}"),
            look["issued"].as_str().unwrap().to_owned(),
        ));
        for k in look["api_keys"].as_array().unwrap() {
            tokens.push(("an API key".into(), k.as_str().unwrap().to_owned()));
        }
        let verdict = check(&values, &secret, &now, &tokens);
        assert_eq!(verdict["failures"], json!([]), "{now}");
    }
    let status = p
        .keyctl(["migrate", "status", "--json"])
        .no_project()
        .args(args)
        .now(plus(T0, 26))
        .run()
        .json();
    assert_eq!(status["phase"], "dual-verify");
}

#[test]
fn eddsa_is_refused_while_the_charts_realtime_cannot_verify_it() {
    // The chart pins supabase/realtime v2.102.3; EdDSA needs v2.125.1 (SPEC §7).
    let p = project(&[("published/values.yaml", "values.yaml")]);
    let values = p.file("values.yaml").display().to_string();
    let out = p
        .keyctl(["migrate", "--yes", "--alg", "EdDSA"])
        .no_project()
        .args(["--helm-values", &values])
        .now(T0)
        .any_status()
        .run();
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
    let codes = p
        .keyctl(["doctor", "--json"])
        .no_project()
        .args(["--helm-values", &values])
        .now(T0)
        .any_status()
        .run()
        .finding_codes();
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
    let codes = p
        .keyctl(["doctor", "--json"])
        .no_project()
        .args(["--helm-values", &values])
        .now(T0)
        .any_status()
        .run()
        .finding_codes();
    assert!(
        !codes
            .iter()
            .any(|c| c == "split_secret" || c == "api_key_rejected"),
        "{codes:?}"
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
    let out = p
        .keyctl(["migrate", "--yes"])
        .no_project()
        .args(["--helm-values", &values])
        .now(T0)
        .any_status()
        .run();
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
