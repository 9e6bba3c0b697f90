//! Shared helpers: the keyctl command, temporary projects, the shared fixtures, and the
//! external clients.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// `keyctl` with a clean, deterministic environment.
pub fn keyctl() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin!("keyctl"));
    cmd.env_remove("KEYCTL_NOW").env("NO_COLOR", "1");
    cmd
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/fixtures`: read-only real-world files; tests copy them before writing.
pub fn fixtures() -> PathBuf {
    let dir = repo().join("../shared/fixtures");
    assert!(
        dir.is_dir(),
        "{} is missing: the tests need ../shared beside the checkout",
        dir.display()
    );
    dir
}

/// A temporary project directory.
pub struct Project {
    pub dir: TempDir,
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A project whose `.env` is `text`.
    pub fn with_env(text: &str) -> Self {
        let p = Project::new();
        p.write(".env", text);
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.file(name), text).expect("write test file");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).expect("read test file")
    }

    /// A project made with `keyctl generate --alg ALG --format env`.
    pub fn generated(alg: &str) -> Self {
        let out = keyctl()
            .args(["generate", "--alg", alg, "--format", "env"])
            .output()
            .expect("run keyctl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Project::with_env(&String::from_utf8(out.stdout).unwrap())
    }
}

/// The output of an external client.
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs an external program with `stdin`; panics (never skips) when it cannot start.
pub fn run_tool(program: &str, args: &[&str], stdin: &str) -> Ran {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(repo().join("tests/interop"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): run scripts/test.sh, which installs the interop clients"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let ran = Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !ran.stderr.contains("ModuleNotFoundError") && !ran.stderr.contains("ERR_MODULE_NOT_FOUND"),
        "{program} is missing a package: run scripts/test.sh\n{}",
        ran.stderr
    );
    ran
}

/// PyJWT + cryptography (tests/interop/pyjwt_tool.py).
pub fn pyjwt(args: &[&str], stdin: &str) -> Ran {
    let mut all = vec!["pyjwt_tool.py"];
    all.extend_from_slice(args);
    run_tool("python3", &all, stdin)
}

/// node jose (tests/interop/jose_tool.mjs).
pub fn jose(args: &[&str], stdin: &str) -> Ran {
    let mut all = vec!["jose_tool.mjs"];
    all.extend_from_slice(args);
    run_tool("node", &all, stdin)
}

/// A value from an env file, read by dotenvy (an independent reader) from the last
/// `KEY=` line. Only that line is given to dotenvy: it disagrees with compose on lines keyctl
/// never writes (unquoted spaces, `${X:-d}`), which real `.env` files contain.
pub fn dotenv_value(path: &Path, key: &str) -> String {
    dotenv_opt(path, key).unwrap_or_else(|| panic!("{key} not in {}", path.display()))
}

/// Like [`dotenv_value`], `None` when the file has no `KEY=` line.
pub fn dotenv_opt(path: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).expect("read env file");
    let line = text.lines().rev().find(|l| {
        l.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with('='))
    })?;
    let value = dotenvy::from_read_iter(line.as_bytes())
        .map(|r| r.expect("dotenvy parses the line keyctl wrote"))
        .find(|(k, _)| k == key)
        .expect("dotenvy reads the key")
        .1;
    Some(value)
}
