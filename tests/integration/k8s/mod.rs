//! Kubernetes projects (issue 14): the supabase-kubernetes chart's own values file and our
//! `secretRef` variants with their Secret manifests (`tests/k8s/`), walked legacy → revoked
//! as a user runs it. After every step an independent checker (`tests/k8s/check_chart.py`:
//! the chart's templates read again in Python, the chart's defaults merged under the file as
//! Helm does, PyJWT verifying) confirms that every session token Auth issued or issues and
//! every API key clients hold still verifies at every container — but the API keys re-minted
//! with consent at the last step — and every byte outside the keys keyctl manages is the
//! file's own.

mod doctor;
mod refusals;

use serde_json::{Value, json};

use crate::support::{Output, Project, T0, repo, run_tool};

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

/// `keyctl ARGS --helm-values VALUES` in `p` at `now`, whatever its exit.
pub(crate) fn helm(p: &Project, args: &[&str], values: &str, now: &str) -> Output {
    p.keyctl(args)
        .no_project()
        .args(["--helm-values", values])
        .now(now)
        .any_status()
        .run()
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
