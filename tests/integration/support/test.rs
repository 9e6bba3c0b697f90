//! `Test`: one keyctl run, built fluently, in the manner of the `Test` builder of `just`'s
//! test suite: set up the project, give the arguments, say what must happen, `run()`.
//!
//! ```ignore
//! // One run in a fresh project:
//! Test::fixture("upstream-2026-02")
//!     .write("docker-compose.override.yml", text) // files in the temporary project
//!     .args(["migrate", "--yes"])          // `--project DIR` is added (see `Test::run`)
//!     .now(T0)                             // KEYCTL_NOW
//!     .status(3)                           // the expected exit code; 0 unless told
//!     .stderr_has("override")              // also stdout_has, output_has, stdout_is, lacks
//!     .run();                              // -> Output; panics naming every unmet expectation
//!
//! // Several runs on one project: the project outlives each run.
//! let p = Project::fixture("upstream-2026-02");
//! p.migrate(T0).run();                     // `migrate --yes` at T0, must succeed
//! p.migrate(at(10)).status(3).stderr_has("10m 0s left").run();
//! p.keyctl(["jwks", "--check"]).run();
//! ```

use std::ffi::{OsStr, OsString};
use std::time::Duration;

use serde_json::Value;

use super::{Project, keyctl_bin};

/// The commands that read a project, and so get `--project DIR` unless told otherwise.
const TAKES_PROJECT: [&str; 8] = [
    "jwks", "migrate", "revoke", "rotate", "token", "doctor", "export", "import",
];

/// Arguments that name the project's files another way, or need no project.
const NO_PROJECT_WITH: [&str; 5] = ["--project", "--env-file", "--key", "--help", "-h"];

/// One keyctl run in a temporary project.
#[must_use = "a Test does nothing until .run()"]
pub struct Test {
    project: Project,
    args: Vec<OsString>,
    project_arg: Option<bool>,
    vars: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    wrapper: Vec<OsString>,
    in_project_dir: bool,
    timeout: Option<Duration>,
    status: Option<i32>,
    stdout_is: Option<String>,
    stdout_has: Vec<String>,
    stderr_has: Vec<String>,
    output_has: Vec<String>,
    lacks: Vec<String>,
}

/// What a run did. `code` is `None` when keyctl was killed by a signal.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout parsed as JSON lines (`token verify - --json`: one object a line).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!(
                        "stdout line is not JSON ({e}): {l}\nstdout:\n{}",
                        self.stdout
                    )
                })
            })
            .collect()
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The `code` of every finding of `doctor --json`, in its order.
    #[track_caller]
    pub fn finding_codes(&self) -> Vec<String> {
        self.json()["findings"]
            .as_array()
            .unwrap_or_else(|| panic!("no findings array:\n{}", self.stdout))
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect()
    }

    /// stdout then stderr, for checks that do not care which stream.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl Test {
    /// A run in a new, empty project.
    pub fn new() -> Self {
        Test::in_project(Project::new())
    }

    /// A run in a copy of `../shared/fixtures/NAME` ([`Project::fixture`]).
    pub fn fixture(name: &str) -> Self {
        Test::in_project(Project::fixture(name))
    }

    /// A run in a project whose `.env` is `text`.
    pub fn with_env(text: &str) -> Self {
        Test::in_project(Project::with_env(text))
    }

    /// A run in `project` (also [`Project::keyctl`]).
    pub fn in_project(project: Project) -> Self {
        Test {
            project,
            args: Vec::new(),
            project_arg: None,
            vars: Vec::new(),
            stdin: None,
            wrapper: Vec::new(),
            in_project_dir: false,
            timeout: None,
            status: Some(0),
            stdout_is: None,
            stdout_has: Vec::new(),
            stderr_has: Vec::new(),
            output_has: Vec::new(),
            lacks: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Always add `--project DIR`.
    pub fn project(mut self) -> Self {
        self.project_arg = Some(true);
        self
    }

    /// Never add `--project DIR`.
    pub fn no_project(mut self) -> Self {
        self.project_arg = Some(false);
        self
    }

    /// Writes a file of the project now, before the run.
    pub fn write(self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        self.project.write(name, contents);
        self
    }

    /// `KEYCTL_NOW` (unset unless given).
    pub fn now(self, now: impl AsRef<str>) -> Self {
        self.var("KEYCTL_NOW", now.as_ref())
    }

    /// An environment variable for keyctl.
    pub fn var(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.vars
            .push((key.into(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable from keyctl's environment.
    pub fn unset(mut self, key: &str) -> Self {
        self.vars.push((key.into(), None));
        self
    }

    /// keyctl's stdin (otherwise an empty pipe: never a terminal).
    pub fn stdin(mut self, text: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(text.into());
        self
    }

    /// Runs keyctl through `PROGRAM ARGS… keyctl …` (strace, sh).
    pub fn wrap<I, S>(mut self, program_and_args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.wrapper = program_and_args
            .into_iter()
            .map(|a| a.as_ref().to_owned())
            .collect();
        self
    }

    /// Runs keyctl under this umask (through `sh`).
    pub fn umask(self, umask: &str) -> Self {
        self.wrap(["sh", "-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
    }

    /// Runs keyctl with the project directory as its working directory.
    pub fn in_project_dir(mut self) -> Self {
        self.in_project_dir = true;
        self
    }

    /// Kills keyctl after this long (`Output::code` is then `None`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The expected exit code (0 unless told).
    pub fn status(mut self, code: i32) -> Self {
        self.status = Some(code);
        self
    }

    /// Any exit code, even a signal: the caller looks at `Output::code`.
    pub fn any_status(mut self) -> Self {
        self.status = None;
        self
    }

    /// stdout must be exactly `text`.
    pub fn stdout_is(mut self, text: &str) -> Self {
        self.stdout_is = Some(text.into());
        self
    }

    /// stdout must contain `text` (repeatable).
    pub fn stdout_has(mut self, text: impl Into<String>) -> Self {
        self.stdout_has.push(text.into());
        self
    }

    /// stderr must contain `text` (repeatable).
    pub fn stderr_has(mut self, text: impl Into<String>) -> Self {
        self.stderr_has.push(text.into());
        self
    }

    /// stdout followed by stderr ([`Output::text`]) must contain `text` (repeatable), for
    /// messages whose stream does not matter.
    pub fn output_has(mut self, text: impl Into<String>) -> Self {
        self.output_has.push(text.into());
        self
    }

    /// stdout followed by stderr may not contain `text` (repeatable). A failure does not print
    /// `text`, which may be a secret.
    pub fn lacks(mut self, text: impl Into<String>) -> Self {
        self.lacks.push(text.into());
        self
    }

    /// Whether `run` adds `--project DIR`: as told by [`Test::project`] or
    /// [`Test::no_project`]; otherwise when the command reads a project and no argument
    /// names its files another way (`--project`, `--env-file`, `--key`) or asks for help.
    fn adds_project(&self) -> bool {
        self.project_arg.unwrap_or_else(|| {
            self.args
                .first()
                .is_some_and(|c| TAKES_PROJECT.iter().any(|t| c == t))
                && !self
                    .args
                    .iter()
                    .any(|a| NO_PROJECT_WITH.iter().any(|n| a == n))
        })
    }

    /// Runs keyctl (`NO_COLOR=1`, no `KEYCTL_NOW` unless given, stdin never a terminal) and
    /// checks every expectation; panics listing each unmet one with what keyctl printed.
    #[track_caller]
    pub fn run(self) -> Output {
        let mut args = self.args.clone();
        if self.adds_project() {
            args.push("--project".into());
            args.push(self.project.path().into());
        }
        let out = self
            .command(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} ({e}): run scripts/test.sh", self.program()));
        // keyctl prints only UTF-8; a run killed by a signal may stop inside a character.
        let mut problems = Vec::new();
        let code = out.status.code();
        let mut text = |stream: &str, bytes: Vec<u8>| {
            String::from_utf8(bytes).unwrap_or_else(|e| {
                if code.is_some() {
                    problems.push(format!("{stream} is not UTF-8"));
                }
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            })
        };
        let output = Output {
            code,
            stdout: text("stdout", out.stdout),
            stderr: text("stderr", out.stderr),
        };
        problems.extend(self.unmet(&output));
        if !problems.is_empty() {
            self.fail(&args, &output, &problems);
        }
        output
    }

    /// The program started: keyctl, or the wrapper's.
    fn program(&self) -> String {
        self.wrapper
            .first()
            .map_or_else(|| "keyctl".into(), |p| p.to_string_lossy().into_owned())
    }

    fn command(&self, args: &[OsString]) -> assert_cmd::Command {
        let mut cmd = match self.wrapper.split_first() {
            None => assert_cmd::Command::new(keyctl_bin()),
            Some((program, rest)) => {
                let mut cmd = assert_cmd::Command::new(program);
                cmd.args(rest).arg(keyctl_bin());
                cmd
            }
        };
        cmd.args(args).env_remove("KEYCTL_NOW").env("NO_COLOR", "1");
        for (key, value) in &self.vars {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        if let Some(stdin) = &self.stdin {
            cmd.write_stdin(stdin.clone());
        }
        if let Some(t) = self.timeout {
            cmd.timeout(t);
        }
        if self.in_project_dir {
            cmd.current_dir(self.project.path());
        }
        cmd
    }

    /// The expectations `output` does not meet.
    fn unmet(&self, output: &Output) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(want) = self.status
            && output.code != Some(want)
        {
            let got = output
                .code
                .map_or_else(|| "none (killed by a signal)".into(), |c| c.to_string());
            problems.push(format!("exit {got}, expected {want}"));
        }
        if let Some(want) = &self.stdout_is
            && output.stdout != *want
        {
            problems.push(format!("stdout is not {want:?}"));
        }
        let all = output.text();
        for (stream, wanted, got) in [
            ("stdout", &self.stdout_has, &output.stdout),
            ("stderr", &self.stderr_has, &output.stderr),
            ("the output", &self.output_has, &all),
        ] {
            for want in wanted {
                if !got.contains(want.as_str()) {
                    problems.push(format!("{stream} lacks {want:?}"));
                }
            }
        }
        for (n, unwanted) in self.lacks.iter().enumerate() {
            if all.contains(unwanted.as_str()) {
                problems.push(format!("the output holds unwanted text #{}", n + 1));
            }
        }
        problems
    }

    /// Panics with the command, the unmet expectations and the output (withheld when it
    /// holds unwanted text, which may be a secret).
    #[track_caller]
    fn fail(&self, args: &[OsString], output: &Output, problems: &[String]) -> ! {
        let command: Vec<String> = self
            .wrapper
            .iter()
            .chain([&OsString::from("keyctl")])
            .chain(args)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let (stdout, stderr) = if problems.iter().any(|p| p.contains("unwanted text")) {
            ("<withheld: it holds unwanted text>", "<withheld>")
        } else {
            (output.stdout.as_str(), output.stderr.as_str())
        };
        panic!(
            "{}\n  - {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            command.join(" "),
            problems.join("\n  - "),
        );
    }
}

/// The builder fails a run on each kind of unmet expectation, without showing unwanted text,
/// and adds `--project` only where the command reads a project.
#[test]
fn the_builder_fails_on_every_unmet_expectation() {
    let cases = [
        ("exit 4, expected 0", Test::new().args(["jwks", "--check"])),
        (
            "stdout lacks",
            Test::new().arg("generate").stdout_has("no such text"),
        ),
        (
            "stderr lacks",
            Test::new().arg("generate").stderr_has("no such text"),
        ),
        (
            "the output lacks",
            Test::new().arg("generate").output_has("no such text"),
        ),
        ("stdout is not", Test::new().arg("generate").stdout_is("")),
        (
            "unwanted text #1",
            Test::new().arg("generate").lacks("\"kty\""),
        ),
    ];
    for (says, test) in cases {
        let err =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test.run())).expect_err(says);
        let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains(says), "{says}: {message}");
        if says.starts_with("unwanted") {
            assert!(!message.contains("\"kty\""), "the unwanted text is shown");
        }
    }
    assert!(Test::new().args(["migrate", "status"]).adds_project());
    assert!(!Test::new().arg("generate").adds_project());
    assert!(!Test::new().args(["jwks", "--key", "k"]).adds_project());
    assert!(!Test::new().args(["export", "--help"]).adds_project());
    assert!(!Test::new().arg("jwks").no_project().adds_project());
    assert!(
        Test::new()
            .args(["jwks", "--key", "k"])
            .project()
            .adds_project()
    );
}
