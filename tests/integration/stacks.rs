//! The third-party stack corpus (`tests/stacks/`): every real stack walked through every
//! migration step as a user would run it, or refused before anything is written. After every
//! step, an independent checker (`tests/stacks/check_tokens.py`: docker compose resolves each
//! service's environment, PyJWT verifies) confirms that every session token Auth issued or
//! issues, and every API key clients hold, still verifies at every service — but the API keys
//! re-minted with consent at the last step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::support::{Project, T0, repo, run_tool};

/// A stack of the corpus, copied into a temporary project.
struct Stack {
    name: String,
    expect: Value,
    p: Project,
    /// The compose file, relative to the project.
    compose: String,
    /// The `.env` compose reads: beside the compose file.
    env: String,
    /// role -> services, from the by-hand reading.
    roles: BTreeMap<String, Vec<String>>,
}

fn copy_tree(from: &Path, to: &Path) {
    if !from.is_dir() {
        return;
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn check(args: &[&str]) -> String {
    let ran = run_tool(
        "python3",
        &[repo()
            .join("tests/stacks/check_tokens.py")
            .to_str()
            .unwrap()]
        .into_iter()
        .chain(args.iter().copied())
        .collect::<Vec<_>>(),
        "",
    );
    assert!(ran.ok, "check_tokens.py {args:?}: {}", ran.stderr);
    ran.stdout
}

fn secs(t: &str) -> i64 {
    t.parse::<Timestamp>().unwrap().as_second()
}

fn plus(t: &str, mins: i64) -> String {
    (t.parse::<Timestamp>().unwrap() + SignedDuration::from_mins(mins)).to_string()
}

impl Stack {
    fn open(name: &str) -> Stack {
        let dir = repo().join("tests/stacks").join(name);
        let expect: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap())
                .unwrap();
        let p = Project::new();
        copy_tree(&dir.join("published"), p.path());
        copy_tree(&dir.join("ours"), p.path());
        let compose = expect["compose"].as_str().unwrap().to_owned();
        let env = Path::new(&compose)
            .parent()
            .unwrap_or(Path::new(""))
            .join(".env")
            .to_str()
            .unwrap()
            .to_owned();
        // Placeholders of ours/ files: a secret and HS256 API keys made at test time.
        let secret: String = keyctl::apikey::fresh_secret()[..40].to_owned();
        let iat = (secs(T0) - 86_400).to_string();
        let anon = check(&["mint", &secret, "anon", &iat]).trim().to_owned();
        let service = check(&["mint", &secret, "service_role", &iat])
            .trim()
            .to_owned();
        fill(
            p.path(),
            &[
                ("@JWT_SECRET@", &secret),
                ("@ANON_KEY@", &anon),
                ("@SERVICE_ROLE_KEY@", &service),
            ],
        );
        if !p.file(&env).exists() {
            // compose reads no `.env` here (every value is literal or in env_file:); keyctl needs
            // one to exist, so the test gives it an empty one, as `touch .env` would.
            p.write(&env, "");
        }
        let mut roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (role, svc) in expect["services"].as_object().unwrap() {
            let role = role.split(':').next().unwrap();
            if ["auth", "rest", "realtime", "storage", "functions"].contains(&role) {
                roles
                    .entry(role.to_owned())
                    .or_default()
                    .push(svc.as_str().unwrap().to_owned());
            }
        }
        Stack {
            name: name.to_owned(),
            expect,
            p,
            compose,
            env,
            roles,
        }
    }

    /// `--env-file`, `--compose-file`, and `--service-is` for the custom images.
    fn locate(&self) -> Vec<String> {
        let mut args = vec![
            "--env-file".to_owned(),
            self.p.file(&self.env).display().to_string(),
            "--compose-file".to_owned(),
            self.p.file(&self.compose).display().to_string(),
        ];
        for custom in self.expect["custom_images"].as_array().unwrap() {
            let custom = custom.as_str().unwrap();
            if let Some((role, _)) = self.expect["services"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(_, s)| s.as_str() == Some(custom))
                && ["auth", "rest", "realtime", "storage", "functions", "kong"]
                    .contains(&role.as_str())
            {
                args.push("--service-is".into());
                args.push(format!("{custom}={role}"));
            }
        }
        args
    }

    /// Every file of the project, for "nothing was written".
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.p.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    out.insert(e.path(), std::fs::read(e.path()).unwrap());
                }
            }
        }
        out
    }

    /// The independent check at `now`: the session token Auth issues now, the API keys in
    /// the files, and every failure of `tokens`.
    fn verify(&self, now: &str, tokens: &[(String, String)]) -> Checked {
        let tokens: Vec<Value> = tokens
            .iter()
            .map(|(k, t)| json!({"kind": k, "token": t}))
            .collect();
        let out = check(&[
            "check",
            self.p.path().to_str().unwrap(),
            &self.compose,
            &serde_json::to_string(&self.roles).unwrap(),
            &secs(now).to_string(),
            &serde_json::to_string(&tokens).unwrap(),
        ]);
        let v: Value = serde_json::from_str(&out).unwrap();
        let keys = v["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        Checked {
            issued: v["issued"].as_str().unwrap_or_default().to_owned(),
            lifetime: v["lifetime"].as_i64().unwrap(),
            keys,
            failures: v["failures"].as_array().unwrap().clone(),
        }
    }
}

/// What the checker saw.
struct Checked {
    /// A session token Auth issues now.
    issued: String,
    /// How long Auth's sessions live (GOTRUE_JWT_EXP), in seconds.
    lifetime: i64,
    /// The API keys in the files.
    keys: Vec<String>,
    /// Every rejected token: service, kind, reason.
    failures: Vec<Value>,
}

pub(crate) fn fill(dir: &Path, pairs: &[(&str, &str)]) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            fill(&e.path(), pairs);
        } else if let Ok(mut text) = std::fs::read_to_string(e.path())
            && pairs.iter().any(|(k, _)| text.contains(k))
        {
            for (k, v) in pairs {
                text = text.replace(k, v);
            }
            std::fs::write(e.path(), text).unwrap();
        }
    }
}

/// What happened to one stack.
enum Walk {
    /// Every step taken; the migration is complete.
    Migrated,
    /// Refused before anything was written, with keyctl's reason.
    Refused(String),
}

/// Walks `stack` through the migration with `flags` on every step, checking the invariant
/// after every step.
fn walk(stack: &Stack, flags: &[&str]) -> Walk {
    let mut locate = stack.locate();
    locate.extend(flags.iter().map(|f| (*f).to_owned()));
    let step = |now: &str, extra: &[&str]| {
        stack
            .p
            .keyctl(["migrate", "--yes"])
            .no_project()
            .args(&locate)
            .args(extra)
            .now(now)
            .any_status()
            .run()
    };
    // Tokens clients hold before the migration: a session Auth issued a minute ago, and the
    // API keys in the files.
    let before = plus(T0, -1);
    let first_look = stack.verify(&before, &[]);
    let lifetime = first_look.lifetime;
    let mut sessions: Vec<(String, String, i64)> = Vec::new();
    if !first_look.issued.is_empty() {
        sessions.push((
            "a session issued before step 1".into(),
            first_look.issued,
            secs(&before) + lifetime,
        ));
    }
    let mut held: Vec<String> = first_look.keys;
    let baseline = stack.verify(
        &before,
        &held
            .iter()
            .map(|k| ("api key".to_owned(), k.clone()))
            .chain(sessions.iter().map(|(k, t, _)| (k.clone(), t.clone())))
            .collect::<Vec<_>>(),
    );
    let baseline: Vec<(String, String)> = baseline
        .failures
        .iter()
        .map(|f| {
            (
                f["service"].as_str().unwrap().to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let files = stack.snapshot();
    let first = step(T0, &[]);
    if first.code != Some(0) {
        assert!(
            first.code == Some(2) || first.code == Some(3),
            "{}: step 1 exit {:?}: {}",
            stack.name,
            first.code,
            first.stderr
        );
        assert!(
            stack.snapshot() == files,
            "{}: refused, but files changed",
            stack.name
        );
        return Walk::Refused(first.stderr.trim().to_owned());
    }
    let switch_at = plus(T0, 21);
    let revoke_at = plus(&switch_at, lifetime / 60 + 21);
    for (label, now, extra) in [
        ("step 1 (dual-verify)", T0.to_owned(), vec![]),
        ("step 2 (switched)", switch_at.clone(), vec![]),
        (
            "step 3 (revoked)",
            revoke_at.clone(),
            vec!["--remint-api-keys"],
        ),
    ] {
        if label != "step 1 (dual-verify)" {
            let out = step(&now, &extra);
            assert_eq!(out.code, Some(0), "{}: {label}: {}", stack.name, out.stderr);
        }
        let live: Vec<(String, String)> = sessions
            .iter()
            .filter(|(_, _, exp)| *exp > secs(&now))
            .map(|(k, t, _)| (k.clone(), t.clone()))
            .collect();
        let Checked { issued, keys, .. } = stack.verify(&now, &[]);
        let consented: Vec<String> = if label.starts_with("step 3") {
            held.iter().filter(|k| !keys.contains(k)).cloned().collect()
        } else {
            Vec::new()
        };
        let mut tokens = live;
        tokens.push((format!("a session issued after {label}"), issued.clone()));
        for k in held.iter().chain(&keys) {
            if !consented.contains(k) {
                tokens.push(("an API key clients hold".into(), k.clone()));
            }
        }
        let failures = stack.verify(&now, &tokens).failures;
        let new: Vec<&Value> = failures
            .iter()
            .filter(|f| {
                !baseline.contains(&(
                    f["service"].as_str().unwrap().to_owned(),
                    f["kind"].as_str().unwrap().to_owned(),
                ))
            })
            .collect();
        assert!(
            new.is_empty(),
            "{}: after {label}, valid tokens are rejected: {new:#?}",
            stack.name
        );
        sessions.push((
            format!("a session issued after {label}"),
            issued,
            secs(&now) + lifetime,
        ));
        for k in keys {
            if !held.contains(&k) {
                held.push(k);
            }
        }
        held.retain(|k| !consented.contains(k));
    }
    Walk::Migrated
}

/// What each stack must come to: migrated (`refusal` None), or refused at step 1 for this
/// reason (a word of keyctl's message), which `doctor` reports beforehand as `finding`.
/// Stacks refused only for their old images are walked again with `--allow-old-images`, so
/// that what they exercise (literal keys in kong.yml, no db) is still migrated and checked.
struct Outcome {
    stack: &'static str,
    refusal: Option<&'static str>,
    finding: Option<&'static str>,
}

const fn migrates(stack: &'static str) -> Outcome {
    Outcome {
        stack,
        refusal: None,
        finding: None,
    }
}

const fn refused(stack: &'static str, refusal: &'static str, finding: &'static str) -> Outcome {
    Outcome {
        stack,
        refusal: Some(refusal),
        finding: Some(finding),
    }
}

const OUTCOMES: [Outcome; 10] = [
    // Four Auth services, two literal secrets: the split-secret outage.
    refused("authjs-multi-auth-literal", "split-secret", "split_secret"),
    // APP_JWT_TOKEN with ${NAME:-default} everywhere; healthcheck ${ANON_KEY:-…} rewritten.
    migrates("composemgr-supabase"),
    // SERVICE_PASSWORD_JWT, list-form environment, renamed services.
    migrates("coolify-supabase"),
    refused(
        "dokploy-pre0225-demo-secret",
        "--allow-old-images",
        "image_too_old",
    ),
    refused(
        "ezzaouia-2022-external-db",
        "--allow-old-images",
        "image_too_old",
    ),
    migrates("pigsty-external-pg"),
    refused(
        "spoketowork-kong-literal",
        "--allow-old-images",
        "image_too_old",
    ),
    refused(
        "studyu-2023-split-db",
        "--allow-old-images",
        "image_too_old",
    ),
    // Every secret written literally in the compose file: nothing keyctl could retire.
    refused(
        "synth-anchored-envfile-literals",
        "written literally",
        "secret_literal",
    ),
    // The images set GOTRUE_JWT_SECRET inside the container: keyctl cannot see it.
    refused(
        "webysther-ghcr-images",
        "resolves no GOTRUE_JWT_SECRET",
        "auth_secret_unresolved",
    ),
];

/// `keyctl doctor --json` on the stack at `now`: its finding codes.
fn doctor_codes(stack: &Stack, now: &str) -> Vec<String> {
    let out = stack
        .p
        .keyctl(["doctor", "--json"])
        .no_project()
        .args(stack.locate())
        .now(now)
        .any_status()
        .run();
    out.finding_codes()
}

/// Codes that must never remain after a finished migration.
const AFTER_MIGRATION: [&str; 4] = [
    "split_secret",
    "retired_secret_trusted",
    "not_wired",
    "api_key_rejected",
];

/// Walks every stack of the corpus; each must migrate, or be refused before any write.
#[test]
fn every_stack_of_the_corpus_is_walked_without_rejecting_a_valid_token() {
    let dir = repo().join("tests/stacks");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.path()
                .join("expect.json")
                .exists()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    let listed: Vec<&str> = OUTCOMES.iter().map(|o| o.stack).collect();
    assert_eq!(
        names, listed,
        "every stack of tests/stacks has an expected outcome"
    );
    let mut report = String::new();
    let mut wrong = Vec::new();
    for o in OUTCOMES {
        let name = o.stack;
        let stack = Stack::open(name);
        let before = doctor_codes(&stack, T0);
        if let Some(code) = o.finding
            && !before.iter().any(|c| c == code)
        {
            wrong.push(format!(
                "{name}: doctor does not report {code} before step 1: {before:?}"
            ));
        }
        let got = walk(&stack, &[]);
        match (&got, o.refusal) {
            (Walk::Migrated, None) => {
                report.push_str(&format!("{name}: migrated\n"));
                let after = doctor_codes(&stack, &plus(T0, 24 * 60));
                if let Some(c) = after.iter().find(|c| AFTER_MIGRATION.contains(&c.as_str())) {
                    wrong.push(format!(
                        "{name}: doctor reports {c} after the migration: {after:?}"
                    ));
                }
            }
            (Walk::Refused(why), Some(word)) if why.contains(word) => {
                report.push_str(&format!("{name}: refused at step 1: {why}\n"));
                if word == "--allow-old-images" {
                    match walk(&Stack::open(name), &["--allow-old-images"]) {
                        Walk::Migrated => {
                            report.push_str(&format!("{name}: migrated with --allow-old-images\n"))
                        }
                        Walk::Refused(why) => wrong.push(format!(
                            "{name}: refused even with --allow-old-images: {why}"
                        )),
                    }
                }
            }
            (Walk::Migrated, Some(word)) => {
                wrong.push(format!("{name}: migrated, expected a refusal ({word})"));
            }
            (Walk::Refused(why), _) => wrong.push(format!("{name}: refused: {why}")),
        }
    }
    assert!(wrong.is_empty(), "{}\n{report}", wrong.join("\n"));
}

/// The checker can fail: a verifier put back on the old secret after the switch rejects the
/// sessions Auth now signs with the new key, and the checker says so.
#[test]
fn the_independent_checker_sees_a_broken_verifier() {
    let stack = Stack::open("pigsty-external-pg");
    let locate = stack.locate();
    for now in [T0.to_owned(), plus(T0, 21)] {
        stack
            .p
            .keyctl(["migrate", "--yes"])
            .no_project()
            .args(&locate)
            .now(now)
            .run();
    }
    let now = plus(T0, 22);
    let healthy = stack.verify(&now, &[]);
    let token = vec![("a session".to_owned(), healthy.issued.clone())];
    assert!(stack.verify(&now, &token).failures.is_empty());
    let compose = stack.p.read(&stack.compose);
    let line = compose
        .lines()
        .find(|l| l.trim_start().starts_with("PGRST_JWT_SECRET:"))
        .unwrap()
        .to_owned();
    let indent = &line[..line.len() - line.trim_start().len()];
    stack.p.write(
        &stack.compose,
        compose.replace(&line, &format!("{indent}PGRST_JWT_SECRET: ${{JWT_SECRET}}")),
    );
    let failures = stack.verify(&now, &token).failures;
    assert!(
        failures.iter().any(|f| f["service"] == "rest"),
        "{failures:#?}"
    );
}
