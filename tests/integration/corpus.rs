//! The hostile-input corpus (issue 5): malformed and hostile `.env` files, compose files,
//! JWKs, PEM files and state files, each run through the keyctl command that reads it.
//!
//! # Layout
//!
//! One directory per case: `tests/corpus/<kind>/<case-name>/`, `<kind>` one of `env`,
//! `compose`, `jwk`, `pem`, `state` (the `token` corpus has its own runner in `token.rs`).
//! A case directory holds the input files, laid out as they should appear in the project
//! directory, and `expect.txt`, which says how to run the case and what must happen. The
//! runner copies them (mode 0600, as an operator keeps a `.env`) into a fresh temporary
//! directory and runs keyctl there. Lines of `expect.txt` (`#` starts a comment line):
//!
//! | line | meaning |
//! |---|---|
//! | `args: ARG…` | keyctl's arguments, split on whitespace; run in the case's temporary directory |
//! | `exit: N` | the expected exit code |
//! | `stderr: TEXT` | a fragment that must appear on stderr (repeatable; one names the place) |
//! | `stdout: TEXT` | a fragment that must appear on stdout (repeatable; `jwks --check` and `doctor` print their findings there) |
//! | `base: FIXTURE [DIR]` | first copy `../shared/fixtures/FIXTURE/docker-compose.yml`, and its `.env.example` as `.env`, into `DIR` of the temporary directory (default: its top) |
//! | `setup: COMMAND` | a `sh -c` command run after the files are in place, in order (repeatable); `$KEYCTL` is the keyctl binary and `KEYCTL_NOW` is set; it must succeed |
//! | `timeout: SECS` | kill keyctl after this long (default 30): a hang is a failure |
//! | `note: TEXT` | what the case documents (ignored by the runner) |
//!
//! Nothing secret is committed. Files may contain `{{jwk ALG NAME EDIT…}}`, which expands to
//! a private JWK made at test time by `keyctl generate --alg ALG --format jwk --kid NAME` (one
//! key per NAME and case), then edited in order by each EDIT:
//!
//! - `public`: drop the private members, `key_ops: ["verify"]`;
//! - `-M`: remove member `M`; `M=TEXT`: set it to the string `TEXT`; `M:=JSON`: set it to a
//!   JSON value (write spaces inside it as `\u0020`); `M=@OTHER`: copy it from key `OTHER`
//!   (made with the same ALG);
//! - `M~`: flip the lowest bit of base64url member `M`; `M<`: drop its first byte;
//! - `dup:M=TEXT`: add a second member `M` (string `TEXT`) before all the others, so the
//!   object has two members named `M`.
//!
//! Larger or binary inputs (a 50 MB `.env`, deep nesting, PEM keys from `openssl`, a state
//! file that one real `keyctl migrate --yes` step wrote and `sed` then corrupted) are made by
//! `setup:` commands, never committed.
//!
//! # What the runner asserts, for every case
//!
//! keyctl runs with `KEYCTL_NOW=2026-12-01T12:00:00Z`, `NO_COLOR=1`, at most 2 GiB of address
//! space (a file read without bound fails instead of exhausting the machine) and the timeout.
//! Then: the exit code; every fragment; no panic (no `panicked` on stderr, never exit 101 or a
//! signal); for exits 2, 3 and 4, stderr is exactly one line and it starts with `error: `; no
//! control character other than newline and tab on stdout or stderr (a hostile kid must not
//! forge lines or drive the terminal); no private material from the inputs (JSON members
//! `d`, `p`, `q`, `dp`, `dq`, `qi`, `k`, a `JWT_SECRET=` value, the body of a PEM private key)
//! on stderr, nor on stdout unless the command succeeded; and every file and directory in the
//! temporary directory exactly as it was after the setup (bytes, no new file, no `.keyctl/`
//! created): every case is a read-only command or a refusal.
//!
//! `env/` and `compose/` carry a `.gitattributes` that keeps their inputs byte-exact (CRLF,
//! NUL bytes, invalid UTF-8).
//!
//! All cases of a kind run, then one test per kind fails listing every failing case with what
//! keyctl did, so one bug does not hide another. `KEYCTL_CORPUS_SHOW=1 cargo test --test
//! integration corpus -- --nocapture` shows what keyctl did in every case.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Project, copy_fixture, keyctl_bin, repo};

const NOW: &str = "2026-12-01T12:00:00Z";

/// keyctl's address-space limit, in KiB (2 GiB).
const MEMORY_KIB: u64 = 2 * 1024 * 1024;

/// Private JWK members; their values must never be printed.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

#[test]
fn env() {
    run_kind("env", 20);
}

#[test]
fn compose() {
    run_kind("compose", 12);
}

#[test]
fn jwk() {
    run_kind("jwk", 10);
}

#[test]
fn pem() {
    run_kind("pem", 8);
}

#[test]
fn state() {
    run_kind("state", 6);
}

/// One case's `expect.txt`.
#[derive(Debug, Default)]
struct Expect {
    args: Vec<String>,
    exit: i32,
    stderr: Vec<String>,
    stdout: Vec<String>,
    base: Option<(String, Option<String>)>,
    setup: Vec<String>,
    timeout: u64,
}

fn parse_expect(path: &Path) -> Expect {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut e = Expect {
        timeout: 30,
        exit: -1,
        ..Expect::default()
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("{}:{}: not `key: value`", path.display(), n + 1));
        let value = value.trim().to_owned();
        match key {
            "args" => e.args = value.split_whitespace().map(str::to_owned).collect(),
            "exit" => e.exit = value.parse().expect("exit: a number"),
            "stderr" => e.stderr.push(value),
            "stdout" => e.stdout.push(value),
            "base" => {
                let mut words = value.split_whitespace().map(str::to_owned);
                let fixture = words.next().expect("base: a fixture name");
                e.base = Some((fixture, words.next()));
            }
            "setup" => e.setup.push(value),
            "timeout" => e.timeout = value.parse().expect("timeout: seconds"),
            "note" => {}
            other => panic!("{}:{}: unknown key `{other}`", path.display(), n + 1),
        }
    }
    assert!(!e.args.is_empty(), "{}: no `args:`", path.display());
    assert!(e.exit >= 0, "{}: no `exit:`", path.display());
    e
}

#[allow(clippy::print_stderr)] // the figures for docs/RELIABILITY.md, shown with --nocapture
fn run_kind(kind: &str, min_cases: usize) {
    let dir = repo().join("tests/corpus").join(kind);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for case in &cases {
        let name = format!("{kind}/{}", case.file_name().unwrap().to_string_lossy());
        if let Err(report) = run_case(case) {
            failures.push(format!("{name}\n{report}"));
        }
    }
    eprintln!(
        "hostile inputs ({kind}): {} cases, {} handled as expected, {} not",
        cases.len(),
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(
        cases.len() >= min_cases,
        "corpus {kind} has {} cases, expected at least {min_cases}",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} {kind} cases fail:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Runs one case; `Err` lists what went wrong and what keyctl did. With
/// `KEYCTL_CORPUS_SHOW` set, prints what keyctl did in every case.
#[allow(clippy::print_stderr)]
fn run_case(case: &Path) -> Result<(), String> {
    let expect = parse_expect(&case.join("expect.txt"));
    let project = Project::new();
    let root = project.path();
    if let Some((fixture, sub)) = &expect.base {
        let to = sub
            .as_ref()
            .map_or_else(|| root.to_path_buf(), |s| root.join(s));
        copy_fixture(fixture, &to);
        for file in ["docker-compose.yml", ".env"] {
            if to.join(file).exists() {
                private(&to.join(file));
            }
        }
    }
    let mut keys = Keys::default();
    copy_case(case, root, &mut keys)?;
    for cmd in &expect.setup {
        let out = std::process::Command::new("sh")
            .args(["-c", cmd])
            .current_dir(root)
            .env("KEYCTL", keyctl_bin())
            .env("KEYCTL_NOW", NOW)
            .env("NO_COLOR", "1")
            .output()
            .expect("run sh");
        if !out.status.success() {
            return Err(format!(
                "  setup `{cmd}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let before = snapshot(root);
    let secrets = secrets(&before);

    let started = Instant::now();
    let out = project
        .keyctl(&expect.args)
        .no_project()
        .in_project_dir()
        .wrap([
            "sh",
            "-c",
            &format!("ulimit -v {MEMORY_KIB} && exec \"$0\" \"$@\""),
        ])
        .now(NOW)
        .timeout(Duration::from_secs(expect.timeout))
        .any_status()
        .run();
    let hung = started.elapsed() >= Duration::from_secs(expect.timeout);
    let after = snapshot(root);

    let mut problems = Vec::new();
    let (code, stdout, stderr) = (out.code, out.stdout, out.stderr);
    let args = expect.args.join(" ");
    let did = format!(
        "  keyctl {args}\n  exit {}; stderr: {}",
        code.map_or_else(|| "none (killed by a signal)".to_owned(), |c| c.to_string()),
        shorten(&stderr)
    );
    if code.is_none() {
        problems.push(if hung {
            format!("no answer within {} s: killed", expect.timeout)
        } else {
            "killed by a signal (a crash)".to_owned()
        });
    }
    if code == Some(101) || stderr.contains("panicked") {
        problems.push("panicked".into());
    }
    if let Some(c) = code
        && c != expect.exit
    {
        problems.push(format!("exit {c}, expected {}", expect.exit));
    }
    for f in &expect.stderr {
        if !stderr.contains(f.as_str()) {
            problems.push(format!("stderr lacks {f:?}"));
        }
    }
    for f in &expect.stdout {
        if !stdout.contains(f.as_str()) {
            problems.push(format!("stdout lacks {f:?} (stdout: {})", shorten(&stdout)));
        }
    }
    if matches!(code, Some(2..=4)) {
        let lines = stderr.lines().count();
        if lines != 1 || !stderr.starts_with("error: ") {
            problems.push(format!(
                "stderr is {lines} line(s), expected one `error: …` line"
            ));
        }
    }
    for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        if let Some(c) = text
            .chars()
            .find(|c| c.is_control() && *c != '\n' && *c != '\t')
        {
            problems.push(format!("{stream} holds the control character {c:?}"));
        }
    }
    for s in &secrets {
        if stderr.contains(s.as_str()) {
            problems.push("stderr holds private material from the input".into());
        }
        if code != Some(0) && stdout.contains(s.as_str()) {
            problems.push("stdout of a failed run holds private material from the input".into());
        }
    }
    problems.extend(diff(&before, &after));
    if std::env::var_os("KEYCTL_CORPUS_SHOW").is_some() {
        eprintln!("{}\n{did}", case.display());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.dedup();
        Err(format!("{did}\n  - {}", problems.join("\n  - ")))
    }
}

fn shorten(s: &str) -> String {
    let s = s.trim_end();
    if s.len() <= 400 {
        return format!("{s:?}");
    }
    let mut end = 400;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &s[..end], s.len())
}

/// Project files are 0600, as an operator keeps a `.env` (so keyctl's permission warning,
/// not the input under test, does not add a stderr line).
fn private(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Copies the case's files (not `expect.txt`) into `to`, expanding `{{jwk …}}`.
fn copy_case(from: &Path, to: &Path, keys: &mut Keys) -> Result<(), String> {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if from.join("expect.txt") == entry.path() {
            continue;
        }
        let dst = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_case(&entry.path(), &dst, keys)?;
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        let bytes = match std::str::from_utf8(&bytes) {
            Ok(text) if text.contains("{{jwk ") => keys.expand(text)?.into_bytes(),
            _ => bytes,
        };
        std::fs::write(&dst, bytes).unwrap();
        private(&dst);
    }
    Ok(())
}

/// Keys made for one case, by name.
#[derive(Default)]
struct Keys {
    made: HashMap<String, Value>,
}

impl Keys {
    fn get(&mut self, alg: &str, name: &str) -> Result<Value, String> {
        if let Some(k) = self.made.get(name) {
            return Ok(k.clone());
        }
        let out = std::process::Command::new(keyctl_bin())
            .args(["generate", "--alg", alg, "--format", "jwk", "--kid", name])
            .env("KEYCTL_NOW", NOW)
            .output()
            .expect("run keyctl generate");
        if !out.status.success() {
            return Err(format!(
                "  keyctl generate --alg {alg} --kid {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let key: Value = serde_json::from_slice(&out.stdout).expect("generate prints a JWK");
        self.made.insert(name.to_owned(), key.clone());
        Ok(key)
    }

    /// Replaces every `{{jwk ALG NAME EDIT…}}` in `text`.
    fn expand(&mut self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{jwk ") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").ok_or("  an unclosed {{jwk …")? + start;
            out.push_str(&self.jwk(&rest[start + 6..end])?);
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn jwk(&mut self, spec: &str) -> Result<String, String> {
        let mut words = spec.split_whitespace();
        let (Some(alg), Some(name)) = (words.next(), words.next()) else {
            return Err(format!("  {{{{jwk {spec}}}}}: needs ALG and NAME"));
        };
        let mut key = self.get(alg, name)?;
        let mut dups = Vec::new();
        for edit in words {
            let obj = key.as_object_mut().expect("a JWK is an object");
            if edit == "public" {
                for m in PRIVATE_MEMBERS {
                    if m != "k" {
                        obj.remove(m);
                    }
                }
                obj.insert("key_ops".into(), serde_json::json!(["verify"]));
            } else if let Some(m) = edit.strip_prefix("dup:") {
                let (m, v) = m.split_once('=').ok_or("  dup:M=TEXT")?;
                dups.push(format!("{}:{}", Value::from(m), Value::from(v)));
            } else if let Some(m) = edit.strip_prefix('-') {
                obj.remove(m);
            } else if let Some(m) = edit.strip_suffix('~') {
                let mut bytes = b64_member(obj, m)?;
                *bytes.last_mut().ok_or("  empty member")? ^= 1;
                obj.insert(m.into(), keyctl::b64::encode(&bytes).into());
            } else if let Some(m) = edit.strip_suffix('<') {
                let bytes = b64_member(obj, m)?;
                obj.insert(m.into(), keyctl::b64::encode(&bytes[1..]).into());
            } else if let Some((m, json)) = edit.split_once(":=") {
                let v: Value =
                    serde_json::from_str(json).map_err(|e| format!("  {edit}: not JSON ({e})"))?;
                obj.insert(m.into(), v);
            } else if let Some((m, v)) = edit.split_once('=') {
                if let Some(other) = v.strip_prefix('@') {
                    let src = self.get(alg, other)?;
                    let value = src.get(m).cloned().ok_or(format!("  {other} has no {m}"))?;
                    key.as_object_mut().unwrap().insert(m.into(), value);
                } else {
                    obj.insert(m.into(), v.into());
                }
            } else {
                return Err(format!("  {{{{jwk {spec}}}}}: unknown edit {edit}"));
            }
        }
        let text = key.to_string();
        Ok(if dups.is_empty() {
            text
        } else {
            format!("{{{},{}", dups.join(","), &text[1..])
        })
    }
}

fn b64_member(obj: &serde_json::Map<String, Value>, m: &str) -> Result<Vec<u8>, String> {
    obj.get(m)
        .and_then(Value::as_str)
        .and_then(keyctl::b64::decode)
        .ok_or(format!("  member {m} is not base64url"))
}

/// What a path in the case directory is.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    File(Vec<u8>),
    Dir,
    Symlink(PathBuf),
    Other(&'static str),
}

/// Every path under `root` (relative), never following symlinks nor reading a FIFO.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut all = BTreeMap::new();
    walk(root, root, &mut all);
    all
}

fn walk(root: &Path, dir: &Path, all: &mut BTreeMap<PathBuf, Node>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        let ty = std::fs::symlink_metadata(&path).unwrap().file_type();
        let node = if ty.is_symlink() {
            Node::Symlink(std::fs::read_link(&path).unwrap())
        } else if ty.is_dir() {
            walk(root, &path, all);
            Node::Dir
        } else if ty.is_file() {
            Node::File(std::fs::read(&path).unwrap())
        } else if ty.is_fifo() {
            Node::Other("fifo")
        } else {
            Node::Other("special file")
        };
        all.insert(rel, node);
    }
}

fn diff(before: &BTreeMap<PathBuf, Node>, after: &BTreeMap<PathBuf, Node>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, node) in after {
        match before.get(path) {
            None => out.push(format!("created {}", path.display())),
            Some(old) if old != node => out.push(format!("changed {}", path.display())),
            Some(_) => {}
        }
    }
    for path in before.keys() {
        if !after.contains_key(path) {
            out.push(format!("removed {}", path.display()));
        }
    }
    out
}

/// Private material in the inputs: JSON private members, `JWT_SECRET` values, PEM private
/// key bodies (16 characters or more, so that a fragment cannot match by chance).
fn secrets(files: &BTreeMap<PathBuf, Node>) -> Vec<String> {
    let mut found = Vec::new();
    for node in files.values() {
        let Node::File(bytes) = node else { continue };
        if bytes.len() > 1 << 20 {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        for m in PRIVATE_MEMBERS {
            json_strings(&text, m, &mut found);
        }
        let mut in_private_pem = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("-----BEGIN") {
                in_private_pem = line.contains("PRIVATE KEY");
            } else if line.starts_with("-----END") {
                in_private_pem = false;
            } else if in_private_pem && !line.contains(':') {
                found.push(line.to_owned());
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            if let Some(v) = line.strip_prefix("JWT_SECRET=") {
                found.push(v.trim_matches(['\'', '"']).to_owned());
            }
        }
    }
    found.retain(|s| s.len() >= 16);
    found.sort();
    found.dedup();
    found
}

/// The string values of every `"member": "…"` in `text`.
fn json_strings(text: &str, member: &str, found: &mut Vec<String>) {
    let needle = format!("\"{member}\"");
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        rest = &rest[at + needle.len()..];
        let after = rest.trim_start();
        let Some(after) = after.strip_prefix(':') else {
            continue;
        };
        let Some(value) = after.trim_start().strip_prefix('"') else {
            continue;
        };
        if let Some(end) = value.find('"') {
            found.push(value[..end].to_owned());
        }
    }
}

/// The runner's own checks catch what they claim to: a leaked private member, a changed
/// or created file.
#[test]
fn runner_sees_leaks_and_writes() {
    let mut files = BTreeMap::new();
    files.insert(
        PathBuf::from("key.json"),
        Node::File(br#"{"kty":"EC","d" : "c2VjcmV0LXNjYWxhci1ub3QtcmVhbA","kid":"k"}"#.to_vec()),
    );
    files.insert(
        PathBuf::from(".env"),
        Node::File(b"export JWT_SECRET='corpus-test-secret-not-real-0123456789'\n".to_vec()),
    );
    let found = secrets(&files);
    assert!(
        found.contains(&"c2VjcmV0LXNjYWxhci1ub3QtcmVhbA".to_owned()),
        "{found:?}"
    );
    assert!(
        found.contains(&"corpus-test-secret-not-real-0123456789".to_owned()),
        "{found:?}"
    );
    let mut after = BTreeMap::new();
    after.insert(PathBuf::from("key.json"), Node::File(b"{}".to_vec()));
    after.insert(PathBuf::from(".keyctl"), Node::Dir);
    let d = diff(&files, &after);
    assert!(d.contains(&"changed key.json".to_owned()), "{d:?}");
    assert!(d.contains(&"created .keyctl".to_owned()), "{d:?}");
    assert!(d.contains(&"removed .env".to_owned()), "{d:?}");
}
