//! Temporary projects: an empty one, one with a given `.env`, a generated one, a copy of a
//! shared fixture or of the example; reading and writing their files; the migrate step.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use keyctl::key::Material;
use serde_json::Value;
use tempfile::TempDir;

use super::{T0, Test, dotenv_opt, dotenv_value, fixtures, repo};

/// A temporary project directory, removed when the last clone is dropped. Clones share the
/// directory, so a [`Test`] and its [`super::Output`] can hold the project the test holds.
#[derive(Clone)]
pub struct Project {
    dir: Arc<TempDir>,
}

impl Project {
    /// An empty project.
    pub fn new() -> Self {
        Project {
            dir: Arc::new(tempfile::tempdir().expect("temp dir")),
        }
    }

    /// A project whose `.env` is `text`.
    pub fn with_env(text: &str) -> Self {
        let p = Project::new();
        p.write(".env", text);
        p
    }

    /// A project whose `.env` is `keyctl generate --alg ALG --format env`.
    pub fn generated(alg: &str) -> Self {
        let out = Test::new()
            .args(["generate", "--alg", alg, "--format", "env"])
            .run();
        Project::with_env(&out.stdout)
    }

    /// A copy of `../shared/fixtures/NAME` (see [`copy_fixture`]); a fixture without an env
    /// file gets the legacy `.env` its template would fill in (see [`synthesized_env`]).
    pub fn fixture(name: &str) -> Self {
        let p = Project::new();
        copy_fixture(name, p.path());
        if !p.file(".env").exists() {
            p.write(".env", synthesized_env(&p.read("docker-compose.yml")));
        }
        p
    }

    /// A copy of `examples/self-hosted`: its `.env` and compose file.
    pub fn example() -> Self {
        let p = Project::new();
        for f in [".env", "docker-compose.yml"] {
            std::fs::copy(repo().join("examples/self-hosted").join(f), p.file(f))
                .expect("copy the example");
        }
        p
    }

    /// Puts the fixture's compose file back over the project's, as a stack upgrade does.
    pub fn upgrade_compose(&self, fixture: &str) {
        std::fs::copy(
            fixtures().join(fixture).join("docker-compose.yml"),
            self.file("docker-compose.yml"),
        )
        .expect("copy the fixture's compose file");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) {
        std::fs::write(self.file(name), contents).expect("write test file");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).expect("read test file")
    }

    /// Sets a file's permission bits.
    pub fn chmod(&self, name: &str, mode: u32) {
        std::fs::set_permissions(self.file(name), std::fs::Permissions::from_mode(mode))
            .expect("chmod test file");
    }

    /// A file's permission bits.
    pub fn mode(&self, name: &str) -> u32 {
        std::fs::metadata(self.file(name))
            .expect("stat test file")
            .permissions()
            .mode()
            & 0o777
    }

    /// The value of `KEY` in the project's `.env`, as dotenvy reads it.
    pub fn env_value(&self, key: &str) -> String {
        dotenv_value(&self.file(".env"), key)
    }

    /// Like [`Project::env_value`], `None` when `.env` has no `KEY=` line.
    pub fn env_opt(&self, key: &str) -> Option<String> {
        dotenv_opt(&self.file(".env"), key)
    }

    /// `keyctl ARGS` in this project: `--project` is added where the command takes it (see
    /// [`Test::run`]).
    pub fn keyctl<I, S>(&self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Test::in_project(self.clone()).args(args)
    }

    /// One migrate step: `keyctl migrate --yes --project DIR` at `now`, expected to succeed
    /// unless the test says otherwise; add flags with `.args(..)`.
    pub fn migrate(&self, now: impl AsRef<str>) -> Test {
        self.keyctl(["migrate", "--yes"]).now(now)
    }

    /// `keyctl migrate status --json` at `now`, which must succeed.
    pub fn migrate_status(&self, now: impl AsRef<str>) -> Value {
        self.keyctl(["migrate", "status", "--json"])
            .now(now)
            .run()
            .json()
    }

    /// The phase `keyctl migrate status` reports at `now`.
    pub fn phase(&self, now: impl AsRef<str>) -> String {
        self.migrate_status(now)["phase"]
            .as_str()
            .expect("status has a phase")
            .to_owned()
    }
}

/// The one way a fixture becomes project files: `../shared/fixtures/NAME/docker-compose.yml`
/// and, when the fixture has one, its `.env.example` as `.env`, copied into `to` (created if
/// missing). The fixtures themselves are never written.
pub fn copy_fixture(name: &str, to: &Path) {
    let from = fixtures().join(name);
    assert!(from.is_dir(), "no fixture {name}");
    std::fs::create_dir_all(to).expect("create the project directory");
    for (src, dst) in [
        ("docker-compose.yml", "docker-compose.yml"),
        (".env.example", ".env"),
    ] {
        if from.join(src).exists() {
            std::fs::copy(from.join(src), to.join(dst)).expect("copy the fixture");
        }
    }
}

/// The legacy `.env` a template would fill for a compose file that ships none: a random
/// 40-character JWT_SECRET, HS256 API keys signed with it, and a value for every other
/// variable the compose file reads.
pub fn synthesized_env(compose: &str) -> String {
    let secret: String = keyctl::apikey::fresh_secret()[..40].to_owned();
    let oct = Material::Oct(zeroize::Zeroizing::new(secret.as_bytes().to_vec()));
    let now: Timestamp = T0.parse().unwrap();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for part in compose.split("${").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        vars.insert(name, "example".into());
    }
    for empty in [
        "JWT_KEYS",
        "JWT_JWKS",
        "SUPABASE_PUBLISHABLE_KEY",
        "SUPABASE_SECRET_KEY",
        "ANON_KEY_ASYMMETRIC",
        "SERVICE_ROLE_KEY_ASYMMETRIC",
        "OPENAI_API_KEY",
    ] {
        vars.remove(empty);
    }
    vars.insert("JWT_SECRET".into(), secret);
    vars.insert("JWT_EXPIRY".into(), "3600".into());
    vars.insert("POSTGRES_PORT".into(), "5432".into());
    vars.insert(
        "DOCKER_SOCKET_LOCATION".into(),
        "/var/run/docker.sock".into(),
    );
    for (var, role) in [("ANON_KEY", "anon"), ("SERVICE_ROLE_KEY", "service_role")] {
        vars.insert(
            var.into(),
            keyctl::apikey::mint(&oct, None, role, now).unwrap(),
        );
    }
    vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}
