//! Issue 13's CI recipe, `docs/ci/advance.sh`, run as a scheduled job would run it, on a copy
//! of the upstream fixture with `KEYCTL_NOW` stepping through time: each run applies the one
//! step that is due (or waits), the revocation needs the re-mint consent, a new rotation
//! starts every N days, and the doctor gate fails the job on an error finding.

use std::process::Command;

use crate::support::{Project, at, keyctl_bin, repo};

/// Environment variables of one run.
type Vars<'a> = &'a [(&'a str, &'a str)];

/// One scheduled run at `now` with `vars`: (exit code, stderr).
fn advance(p: &Project, now: &str, vars: &[(&str, &str)]) -> (i32, String) {
    let mut c = Command::new("bash");
    c.arg(repo().join("docs/ci/advance.sh"))
        .current_dir(p.path())
        .env("KEYCTL", keyctl_bin())
        .env("KEYCTL_NOW", now)
        .env("DOCKER_HOST", "unix:///nonexistent/keyctl-test.sock")
        .env("ROTATE_EVERY_DAYS", "30")
        .env("REPORT", p.file("doctor.json"));
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c.output().expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

/// The upstream stack, but with a secret of its own instead of upstream's public demo value
/// (which doctor rightly reports as an error until the migration retires it): a fresh
/// `JWT_SECRET` and API keys re-minted with it by `keyctl token remint`.
fn own_secret_stack() -> Project {
    let p = Project::fixture("upstream-2026-02");
    p.chmod(".env", 0o600);
    let env = p.read(".env");
    let secret: String = keyctl::apikey::fresh_secret();
    let env: String = env
        .lines()
        .map(|l| {
            if l.starts_with("JWT_SECRET=") {
                format!("JWT_SECRET={secret}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    p.write(".env", env);
    p.keyctl(["token", "remint", "--yes"])
        .now(at(-60))
        .var("DOCKER_HOST", "unix:///nonexistent/keyctl-test.sock")
        .run();
    p.keyctl(["doctor"])
        .now(at(-60))
        .stdout_has("0 error(s), 0 warning(s)")
        .run();
    p
}

#[test]
fn the_ci_recipe_advances_one_due_step_per_run_rotates_every_n_days_and_gates_on_doctor() {
    let p = own_secret_stack();
    let remint = [("REMINT_API_KEYS", "1")];
    let day = 24 * 60;
    // (minutes after T0, variables, phase after the run, what the run says)
    let schedule: &[(i64, Vars, &str, &str)] = &[
        (
            0,
            &[],
            "dual-verify",
            "keyctl migrate --project . --yes --to dual-verify",
        ),
        (
            5,
            &[],
            "dual-verify",
            "next step (switched) is due at 2026-12-01T12:20:00Z: waiting",
        ),
        (21, &[], "switched", "--to switched"),
        (60, &[], "switched", "waiting"),
        (
            21 + 81,
            &remint,
            "revoked",
            "--to revoked --remint-api-keys",
        ),
        (
            15 * day,
            &remint,
            "revoked",
            "no step due (rotation every 30 days",
        ),
        (30 * day, &remint, "dual-verify", "keyctl rotate"),
        (30 * day + 21, &remint, "switched", "--to switched"),
        (
            30 * day + 21 + 81,
            &remint,
            "revoked",
            "--to revoked --remint-api-keys",
        ),
        (40 * day, &remint, "revoked", "no step due"),
    ];
    for (mins, vars, phase, says) in schedule {
        let now = at(*mins);
        let (code, stderr) = advance(&p, &now, vars);
        assert_eq!(code, 0, "at {now}:\n{stderr}");
        assert!(
            stderr.contains(says),
            "at {now}, expected {says:?}:\n{stderr}"
        );
        assert!(
            stderr.contains("advance: doctor: 0 error(s)"),
            "the gate passed at {now}:\n{stderr}"
        );
        assert_eq!(p.phase(&now), *phase, "at {now}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&p.read("doctor.json")).expect("the gate's report");
    assert_eq!(report["schema"], 1);
    assert_eq!(report["phase"], "revoked");

    // A second run at the same moment changes nothing: the --to guard and the waits.
    let before = p.read(".env");
    let (code, _) = advance(&p, &at(40 * day), &remint);
    assert_eq!(code, 0);
    assert_eq!(p.read(".env"), before);

    // The gate: a compose file that lost its wiring fails the job, naming the finding and
    // its fix; the report is kept.
    let compose = p.read("docker-compose.yml");
    p.write(
        "docker-compose.yml",
        compose.replace(
            "PGRST_JWT_SECRET: ${JWT_JWKS}",
            "PGRST_JWT_SECRET: ${JWT_SECRET}",
        ),
    );
    let (code, stderr) = advance(&p, &at(41 * day), &remint);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("doctor found errors"), "{stderr}");
    assert!(stderr.contains("not_wired"), "{stderr}");
    assert!(stderr.contains("fix: "), "{stderr}");
    assert!(p.read("doctor.json").contains("not_wired"));
}

#[test]
fn without_consent_the_recipe_stops_at_the_revocation_for_a_person() {
    let p = own_secret_stack();
    for mins in [0, 21] {
        assert_eq!(advance(&p, &at(mins), &[]).0, 0);
    }
    let (code, stderr) = advance(&p, &at(21 + 81), &[]);
    assert_eq!(code, 3, "refused, waiting for consent:\n{stderr}");
    assert!(stderr.contains("--remint-api-keys"), "{stderr}");
    assert_eq!(p.phase(at(21 + 82)), "switched");
    // TARGET=switched: the job stops there and stays green.
    let (code, stderr) = advance(&p, &at(21 + 83), &[("TARGET", "switched")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("at the target phase"), "{stderr}");
}
