//! The compose editor (`keyctl::compose`) on the real-world compose files of
//! `../shared/fixtures`: every Supabase service found by image, keyctl's wiring added,
//! uncommented or replaced line by line, a second run changing nothing, and `verify_edit`
//! catching what an edit must not touch. Edits of small inline YAML are unit tests beside
//! the code in `src/compose/`.

use std::sync::OnceLock;

use keyctl::compose::{Change, Compose, Role, verify_edit};

use crate::support::fixtures;

/// `docker-compose.yml` of the fixture directory `dir`, read once per test run.
fn compose_fixture(dir: &str, cell: &'static OnceLock<String>) -> &'static str {
    cell.get_or_init(|| {
        let path = fixtures().join(dir).join("docker-compose.yml");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    })
}

/// Supabase's own compose file (February 2026).
fn upstream() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    compose_fixture("upstream-2026-02", &TEXT)
}

/// A community mirror that keeps the upstream entries commented out.
fn mirror() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    compose_fixture("mirror-singh-inder", &TEXT)
}

/// Dokploy's template.
fn dokploy() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    compose_fixture("third-party-dokploy", &TEXT)
}

fn every_fixture() -> [&'static str; 3] {
    [upstream(), mirror(), dokploy()]
}

fn starts(prefix: &'static str) -> impl Fn(&str) -> bool {
    move |v: &str| v.starts_with(prefix)
}

/// Lines removed from `a` and lines added in `b` (terminators kept), by an LCS diff.
fn line_diff(a: &str, b: &str) -> (Vec<String>, Vec<String>) {
    let x: Vec<&str> = a.split_inclusive('\n').collect();
    let y: Vec<&str> = b.split_inclusive('\n').collect();
    let mut lcs = vec![vec![0usize; y.len() + 1]; x.len() + 1];
    for i in (0..x.len()).rev() {
        for j in (0..y.len()).rev() {
            lcs[i][j] = if x[i] == y[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    while i < x.len() || j < y.len() {
        if i < x.len() && j < y.len() && x[i] == y[j] {
            i += 1;
            j += 1;
        } else if j < y.len() && (i == x.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            added.push(y[j].to_owned());
            j += 1;
        } else {
            removed.push(x[i].to_owned());
            i += 1;
        }
    }
    (removed, added)
}

/// The keyctl wiring of SPEC §2 for one compose file, as (service, key, wanted, prefix).
fn wiring(c: &Compose) -> Vec<(String, &'static str, &'static str, &'static str)> {
    let mut out = Vec::new();
    let table: [(Role, &str, &str, &str); 9] = [
        (Role::Auth, "GOTRUE_JWT_KEYS", "${JWT_KEYS}", "${JWT_KEYS"),
        (Role::Rest, "PGRST_JWT_SECRET", "${JWT_JWKS}", "${JWT_JWKS"),
        (Role::Realtime, "API_JWT_JWKS", "${JWT_JWKS}", "${JWT_JWKS"),
        (Role::Storage, "JWT_JWKS", "${JWT_JWKS}", "${JWT_JWKS"),
        (
            Role::Functions,
            "SUPABASE_JWKS",
            "${JWT_JWKS}",
            "${JWT_JWKS",
        ),
        (
            Role::Kong,
            "SUPABASE_PUBLISHABLE_KEY",
            "${SUPABASE_PUBLISHABLE_KEY}",
            "${SUPABASE_PUBLISHABLE_KEY",
        ),
        (
            Role::Kong,
            "SUPABASE_SECRET_KEY",
            "${SUPABASE_SECRET_KEY}",
            "${SUPABASE_SECRET_KEY",
        ),
        (
            Role::Kong,
            "ANON_KEY_ASYMMETRIC",
            "${ANON_KEY_ASYMMETRIC}",
            "${ANON_KEY_ASYMMETRIC",
        ),
        (
            Role::Kong,
            "SERVICE_ROLE_KEY_ASYMMETRIC",
            "${SERVICE_ROLE_KEY_ASYMMETRIC}",
            "${SERVICE_ROLE_KEY_ASYMMETRIC",
        ),
    ];
    for (role, key, wanted, prefix) in table {
        for s in c.with_role(role) {
            out.push((s.name, key, wanted, prefix));
        }
    }
    out
}

/// Applies the whole wiring; returns (service, key, change) in table order.
fn wire(c: &mut Compose) -> Vec<(String, &'static str, Change)> {
    wiring(c)
        .into_iter()
        .map(|(svc, key, wanted, prefix)| {
            let change = c.set_env(&svc, key, wanted, &starts(prefix)).unwrap();
            // The reported line is where the entry is now.
            let env = c.env(&svc, key).unwrap();
            if let Change::Added { line }
            | Change::Replaced { line }
            | Change::Uncommented { line } = change
            {
                assert_eq!(line, env.line, "{svc} {key}");
            }
            assert!(env.value.starts_with(prefix));
            (svc, key, change)
        })
        .collect()
}

fn kind_of(change: &Change) -> &'static str {
    match change {
        Change::Unchanged => "unchanged",
        Change::Uncommented { .. } => "uncommented",
        Change::Added { .. } => "added",
        Change::Replaced { .. } => "replaced",
    }
}

fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

#[test]
fn parse_then_text_is_identity() {
    for text in every_fixture() {
        for variant in [
            text.to_owned(),
            crlf(text),
            text.trim_end_matches('\n').to_owned(),
            crlf(text.trim_end_matches('\n')),
        ] {
            assert_eq!(Compose::parse(&variant).unwrap().text(), variant);
        }
    }
}

#[test]
fn roles_are_found_by_image() {
    let expect = [
        (upstream(), "kong:2.8.1"),
        (mirror(), "kong/kong:3.9.1"),
        (dokploy(), "kong/kong:3.9.1"),
    ];
    for (text, kong_image) in expect {
        let c = Compose::parse(text).unwrap();
        for (role, name) in [
            (Role::Auth, "auth"),
            (Role::Rest, "rest"),
            (Role::Realtime, "realtime"),
            (Role::Storage, "storage"),
            (Role::Functions, "functions"),
            (Role::Kong, "kong"),
        ] {
            let found = c.with_role(role);
            assert_eq!(found.len(), 1, "{role}");
            assert_eq!(found[0].name, name);
            assert_eq!(role.as_str(), name);
        }
        let kong = &c.with_role(Role::Kong)[0];
        assert_eq!(kong.image.as_deref(), Some(kong_image));
        for s in c.services() {
            if [
                "studio",
                "db",
                "meta",
                "imgproxy",
                "analytics",
                "vector",
                "supavisor",
            ]
            .contains(&s.name.as_str())
            {
                assert_eq!(s.role, None, "{}", s.name);
            }
        }
    }
    let c = Compose::parse(upstream()).unwrap();
    let names: Vec<String> = c.services().iter().map(|s| s.name.clone()).collect();
    assert_eq!(names[..3], ["studio", "kong", "auth"]);
    assert_eq!(c.services()[0].line, 12);
    assert_eq!(Role::ALL.len(), 6);
}

#[test]
fn upstream_gets_every_line_added_and_a_second_run_changes_nothing() {
    let mut c = Compose::parse(upstream()).unwrap();
    let changes = wire(&mut c);
    let kinds: Vec<(String, &str, &str)> = changes
        .iter()
        .map(|(s, k, ch)| (s.clone(), *k, kind_of(ch)))
        .collect();
    let expected = [
        ("auth", "GOTRUE_JWT_KEYS", "added"),
        ("rest", "PGRST_JWT_SECRET", "replaced"),
        ("realtime", "API_JWT_JWKS", "added"),
        ("storage", "JWT_JWKS", "added"),
        ("functions", "SUPABASE_JWKS", "added"),
        ("kong", "SUPABASE_PUBLISHABLE_KEY", "added"),
        ("kong", "SUPABASE_SECRET_KEY", "added"),
        ("kong", "ANON_KEY_ASYMMETRIC", "added"),
        ("kong", "SERVICE_ROLE_KEY_ASYMMETRIC", "added"),
    ];
    let expected: Vec<(String, &str, &str)> = expected
        .iter()
        .map(|(s, k, ch)| ((*s).to_owned(), *k, *ch))
        .collect();
    assert_eq!(kinds, expected);

    let (removed, added) = line_diff(upstream(), c.text());
    assert_eq!(removed, ["      PGRST_JWT_SECRET: ${JWT_SECRET}\n"]);
    assert_eq!(
        added,
        [
            "      SUPABASE_PUBLISHABLE_KEY: ${SUPABASE_PUBLISHABLE_KEY}\n",
            "      SUPABASE_SECRET_KEY: ${SUPABASE_SECRET_KEY}\n",
            "      ANON_KEY_ASYMMETRIC: ${ANON_KEY_ASYMMETRIC}\n",
            "      SERVICE_ROLE_KEY_ASYMMETRIC: ${SERVICE_ROLE_KEY_ASYMMETRIC}\n",
            "      GOTRUE_JWT_KEYS: ${JWT_KEYS}\n",
            "      PGRST_JWT_SECRET: ${JWT_JWKS}\n",
            "      API_JWT_JWKS: ${JWT_JWKS}\n",
            "      JWT_JWKS: ${JWT_JWKS}\n",
            "      SUPABASE_JWKS: ${JWT_JWKS}\n",
        ]
    );
    // Each line went in after the last live entry of its service.
    let after = |entry: &str| {
        let i = c.text().find(entry).unwrap();
        let before = &c.text()[..i];
        before.lines().last().unwrap().trim().to_owned()
    };
    assert_eq!(
        after("      GOTRUE_JWT_KEYS"),
        "GOTRUE_SMS_AUTOCONFIRM: ${ENABLE_PHONE_AUTOCONFIRM}"
    );
    assert_eq!(
        after("      API_JWT_JWKS"),
        "DISABLE_HEALTHCHECK_LOGGING: \"true\""
    );
    assert_eq!(
        after("      SUPABASE_JWKS"),
        "VERIFY_JWT: \"${FUNCTIONS_VERIFY_JWT}\""
    );
    assert_eq!(
        c.env("rest", "PGRST_JWT_SECRET").unwrap().value,
        "${JWT_JWKS}"
    );

    let first = c.text().to_owned();
    let again = wire(&mut c);
    assert!(again.iter().all(|(_, _, ch)| *ch == Change::Unchanged));
    assert_eq!(c.text(), first);
}

#[test]
fn crlf_file_gets_the_same_edits_with_crlf_lines() {
    let mut lf = Compose::parse(upstream()).unwrap();
    wire(&mut lf);
    let mut c = Compose::parse(&crlf(upstream())).unwrap();
    wire(&mut c);
    assert_eq!(c.text(), crlf(lf.text()));
}

#[test]
fn mirror_uncomments_upstream_lines_and_keeps_the_rest() {
    let mut c = Compose::parse(mirror()).unwrap();
    assert_eq!(
        c.commented_env("auth", "GOTRUE_JWT_KEYS").unwrap().value,
        "${JWT_KEYS:-[]}"
    );
    assert!(c.env("auth", "GOTRUE_JWT_KEYS").is_none());
    // Prose comments that mention a key are not entries.
    assert!(c.commented_env("rest", "PGRST_JWT_SECRET").is_none());
    let changes = wire(&mut c);
    let kinds: Vec<(&str, &str)> = changes.iter().map(|(_, k, ch)| (*k, kind_of(ch))).collect();
    assert_eq!(
        kinds,
        [
            ("GOTRUE_JWT_KEYS", "uncommented"),
            ("PGRST_JWT_SECRET", "unchanged"),
            ("API_JWT_JWKS", "uncommented"),
            ("JWT_JWKS", "uncommented"),
            ("SUPABASE_JWKS", "uncommented"),
            ("SUPABASE_PUBLISHABLE_KEY", "unchanged"),
            ("SUPABASE_SECRET_KEY", "unchanged"),
            ("ANON_KEY_ASYMMETRIC", "unchanged"),
            ("SERVICE_ROLE_KEY_ASYMMETRIC", "unchanged"),
        ]
    );
    let (removed, added) = line_diff(mirror(), c.text());
    assert_eq!(
        removed,
        [
            "      #GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}\n",
            "      #API_JWT_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
            "      #JWT_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
            "      #SUPABASE_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
        ]
    );
    assert_eq!(
        added,
        [
            "      GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}\n",
            "      API_JWT_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
            "      JWT_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
            "      SUPABASE_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
        ]
    );
    assert!(
        c.text().contains(
            "      # For Podman, use: GOTRUE_JWT_KEYS: ${JWT_KEYS}\n      GOTRUE_JWT_KEYS"
        )
    );
    assert_eq!(
        c.env("realtime", "API_JWT_JWKS").unwrap().value,
        "${JWT_JWKS:-{\"keys\":[]}}"
    );
    assert_eq!(
        c.env("rest", "PGRST_JWT_SECRET").unwrap().value,
        "${JWT_JWKS:-${JWT_SECRET}}"
    );
    let first = c.text().to_owned();
    assert!(
        wire(&mut c)
            .iter()
            .all(|(_, _, ch)| *ch == Change::Unchanged)
    );
    assert_eq!(c.text(), first);
}

#[test]
fn dokploy_keeps_what_is_there_and_adds_the_rest() {
    let mut c = Compose::parse(dokploy()).unwrap();
    let kinds: Vec<(&str, &str)> = wire(&mut c)
        .iter()
        .map(|(_, k, ch)| (*k, kind_of(ch)))
        .collect();
    assert_eq!(
        kinds,
        [
            ("GOTRUE_JWT_KEYS", "unchanged"),
            ("PGRST_JWT_SECRET", "replaced"),
            ("API_JWT_JWKS", "added"),
            ("JWT_JWKS", "added"),
            ("SUPABASE_JWKS", "added"),
            ("SUPABASE_PUBLISHABLE_KEY", "unchanged"),
            ("SUPABASE_SECRET_KEY", "unchanged"),
            ("ANON_KEY_ASYMMETRIC", "unchanged"),
            ("SERVICE_ROLE_KEY_ASYMMETRIC", "unchanged"),
        ]
    );
    let (removed, added) = line_diff(dokploy(), c.text());
    assert_eq!(removed.len(), 1);
    assert_eq!(added.len(), 4);
}

/// A variable name keyctl writes, `[A-Za-z_][A-Za-z0-9_]*` (the compose module's own check
/// is private).
fn is_env_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Rewrites `service`'s map-form environment as a list, values kept: `KEY: v` becomes
/// `- KEY=v` (quoted values keep their quotes around the whole item), `#KEY: v` becomes
/// `#- KEY=v`.
fn to_list_form(text: &str, service: &str) -> String {
    fn item(entry: &str) -> Option<String> {
        let (k, v) = entry.split_once(": ")?;
        if !is_env_name(k) {
            return None;
        }
        Some(
            if let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                format!("- \"{k}={inner}\"")
            } else if let Some(inner) = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                format!("- '{k}={inner}'")
            } else {
                format!("- {k}={v}")
            },
        )
    }
    let (mut in_service, mut in_env) = (false, false);
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let eol = &line[body.len()..];
        let trimmed = body.trim_start();
        let indent = body.len() - trimmed.len();
        let structural = !trimmed.is_empty() && !trimmed.starts_with('#');
        if structural && indent == 2 {
            in_service = trimmed == format!("{service}:");
            in_env = false;
        } else if structural && indent == 4 {
            in_env = in_service && trimmed == "environment:";
        } else if in_env && indent == 6 {
            let converted = match trimmed.strip_prefix('#') {
                Some(rest) => item(rest).map(|i| format!("#{i}")),
                None => item(trimmed),
            };
            if let Some(c) = converted {
                out.push_str(&format!("      {c}{eol}"));
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

#[test]
fn list_form_environment_supports_add_replace_and_uncomment() {
    let mut text = to_list_form(upstream(), "rest");
    text = to_list_form(&text, "realtime");
    let mirror = to_list_form(mirror(), "auth");
    assert!(text.contains("      - PGRST_JWT_SECRET=${JWT_SECRET}\n"));
    assert!(text.contains("      - \"PGRST_DB_USE_LEGACY_GUCS=false\"\n"));
    assert!(mirror.contains("      #- GOTRUE_JWT_KEYS=${JWT_KEYS:-[]}\n"));

    // Same values read from both forms.
    let map = Compose::parse(upstream()).unwrap();
    let mut c = Compose::parse(&text).unwrap();
    for key in [
        "PGRST_JWT_SECRET",
        "PGRST_DB_USE_LEGACY_GUCS",
        "PGRST_DB_URI",
    ] {
        assert_eq!(
            c.env("rest", key).unwrap().value,
            map.env("rest", key).unwrap().value
        );
    }
    assert!(verify_edit(upstream(), &text, &[], &[]).is_err());

    let replaced = c
        .set_env(
            "rest",
            "PGRST_JWT_SECRET",
            "${JWT_JWKS}",
            &starts("${JWT_JWKS"),
        )
        .unwrap();
    assert!(matches!(replaced, Change::Replaced { .. }));
    let added = c
        .set_env(
            "realtime",
            "API_JWT_JWKS",
            "${JWT_JWKS}",
            &starts("${JWT_JWKS"),
        )
        .unwrap();
    assert!(matches!(added, Change::Added { .. }));
    let (removed, new_lines) = line_diff(&text, c.text());
    assert_eq!(removed, ["      - PGRST_JWT_SECRET=${JWT_SECRET}\n"]);
    assert_eq!(
        new_lines,
        [
            "      - PGRST_JWT_SECRET=${JWT_JWKS}\n",
            "      - API_JWT_JWKS=${JWT_JWKS}\n"
        ]
    );

    let mut m = Compose::parse(&mirror).unwrap();
    assert_eq!(
        m.commented_env("auth", "GOTRUE_JWT_KEYS").unwrap().value,
        "${JWT_KEYS:-[]}"
    );
    let change = m
        .set_env(
            "auth",
            "GOTRUE_JWT_KEYS",
            "${JWT_KEYS}",
            &starts("${JWT_KEYS"),
        )
        .unwrap();
    assert!(matches!(change, Change::Uncommented { .. }));
    let (removed, new_lines) = line_diff(&mirror, m.text());
    assert_eq!(removed, ["      #- GOTRUE_JWT_KEYS=${JWT_KEYS:-[]}\n"]);
    assert_eq!(new_lines, ["      - GOTRUE_JWT_KEYS=${JWT_KEYS:-[]}\n"]);
    assert_eq!(
        m.set_env(
            "auth",
            "GOTRUE_JWT_KEYS",
            "${JWT_KEYS}",
            &starts("${JWT_KEYS")
        )
        .unwrap(),
        Change::Unchanged
    );
}

#[test]
fn set_env_refuses_an_unknown_service_or_name_and_keeps_the_text() {
    let mut c = Compose::parse(upstream()).unwrap();
    assert!(c.set_env("nope", "A", "b", &|_| false).is_err());
    assert!(c.set_env("auth", "A B", "b", &|_| false).is_err());
    assert_eq!(c.text(), upstream());
}

#[test]
fn verify_edit_catches_unintended_changes() {
    let intended = [("rest".to_owned(), "PGRST_JWT_SECRET".to_owned())];
    // The first PGRST_JWT_SECRET is rest's; storage has one too.
    let good = upstream().replacen(
        "      PGRST_JWT_SECRET: ${JWT_SECRET}\n",
        "      PGRST_JWT_SECRET: ${JWT_JWKS}\n",
        1,
    );
    assert_eq!(verify_edit(upstream(), &good, &intended, &[]), Ok(()));
    assert!(verify_edit(upstream(), &good, &[], &[]).is_err());
    // Formatting and comments are invisible to the check.
    let reformatted = good.replace("# Usage\n", "# usage\n");
    assert_eq!(
        verify_edit(upstream(), &reformatted, &intended, &[]),
        Ok(())
    );

    let bad = good.replace(
        "      PGRST_APP_SETTINGS_JWT_SECRET: ${JWT_SECRET}\n",
        "      PGRST_APP_SETTINGS_JWT_SECRET: ${JWT_JWKS}\n",
    );
    let err = verify_edit(upstream(), &bad, &intended, &[]).unwrap_err();
    assert!(
        err.contains("services.rest.environment.PGRST_APP_SETTINGS_JWT_SECRET"),
        "{err}"
    );
    assert!(!err.contains("JWT_JWKS}"), "values never appear: {err}");
    let bad = good.replace("    image: kong:2.8.1\n", "    image: kong:3\n");
    let err = verify_edit(upstream(), &bad, &intended, &[]).unwrap_err();
    assert!(err.contains("services.kong.image"), "{err}");
    let err = verify_edit(upstream(), "services: [", &intended, &[]).unwrap_err();
    assert!(err.contains("not valid YAML"), "{err}");
    // A change seen through a `<<` merge is caught where it lands.
    let old = "x: &a\n  K: 1\nservices:\n  s:\n    environment:\n      <<: *a\n";
    let new = "x: &a\n  K: 2\nservices:\n  s:\n    environment:\n      <<: *a\n";
    let intended = [("s".to_owned(), "K".to_owned())];
    let err = verify_edit(old, new, &intended, &[]).unwrap_err();
    assert!(err.starts_with("an unexpected change at x.K"), "{err}");
}

#[test]
fn realtime_healthcheck_edit_changes_one_line() {
    for text in [upstream(), mirror()] {
        let mut c = Compose::parse(text).unwrap();
        let before = c.healthcheck_test("realtime").unwrap();
        assert!(before.starts_with("CMD-SHELL curl -sSfL"));
        let change = c
            .replace_in_healthcheck("realtime", "${ANON_KEY}", "${REALTIME_HEALTHCHECK_KEY}")
            .unwrap();
        assert!(matches!(change, Change::Replaced { .. }));
        let (removed, added) = line_diff(text, c.text());
        assert_eq!(removed.len(), 1);
        assert_eq!(added.len(), 1);
        assert_eq!(
            added[0],
            removed[0].replace("${ANON_KEY}", "${REALTIME_HEALTHCHECK_KEY}")
        );
        assert_eq!(
            c.healthcheck_test("realtime").unwrap(),
            before.replace("${ANON_KEY}", "${REALTIME_HEALTHCHECK_KEY}")
        );
        let edited = c.text().to_owned();
        assert_eq!(
            c.replace_in_healthcheck("realtime", "${ANON_KEY}", "${REALTIME_HEALTHCHECK_KEY}")
                .unwrap(),
            Change::Unchanged
        );
        assert_eq!(c.text(), edited);
    }
    let c = Compose::parse(mirror()).unwrap();
    assert_eq!(
        c.healthcheck_test("kong").as_deref(),
        Some("CMD kong health")
    );
    assert_eq!(c.healthcheck_test("meta"), None);
}

#[test]
fn env_reads_values_with_spaces_and_colons() {
    let c = Compose::parse(upstream()).unwrap();
    let e = c.env("realtime", "DB_AFTER_CONNECT_QUERY").unwrap();
    assert_eq!(e.value, "SET search_path TO _realtime");
    assert_eq!(c.env("studio", "HOSTNAME").unwrap().value, "::");
}
