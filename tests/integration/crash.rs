//! Crash safety, concurrency and refused writes, with strace fault injection: keyctl is
//! killed or made to fail at every system call of the kinds that matter while it migrates a
//! copy of each fixture, and the project must always be either as it was or exactly one step
//! further, and the next run must finish the step.
#![allow(clippy::print_stderr)] // the figures for docs/RELIABILITY.md, shown with --nocapture

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::Value;

use crate::fsharden::{is_link, linked_project, temps};
use crate::support::{Output, Project, T0};
/// The system calls a kill or an error is injected at.
/// `fdatasync` is the sync of new file contents (all in flight at once, in threads: strace
/// counts calls per thread, so only the first of each thread can be hit), `fsync` the
/// lock's and the directories'.
const SYSCALLS: [&str; 7] = [
    "openat",
    "read",
    "write",
    "fdatasync",
    "fsync",
    "rename",
    "flock",
];
const FIXTURES: [&str; 3] = [
    "upstream-2026-02",
    "mirror-singh-inder",
    "third-party-dokploy",
];

/// One migrate step at T0 under `strace -e inject=INJECT` (strace: scripts/test.sh installs
/// it); any outcome, even a kill.
fn migrate_under_strace(p: &Project, inject: &str) -> Output {
    p.migrate(T0)
        .wrap([
            "strace",
            "-f",
            "-o",
            "/dev/null",
            "-e",
            &format!("inject={inject}"),
        ])
        .any_status()
        .run()
}

/// How many calls of each kind one uninterrupted run makes.
fn syscall_counts(fixture: &str) -> BTreeMap<String, usize> {
    let p = Project::fixture(fixture);
    let log = p.file("strace.log");
    let trace = format!("trace={}", SYSCALLS.join(","));
    p.migrate(T0)
        .wrap(["strace", "-f", "-o", log.to_str().unwrap(), "-e", &trace])
        .run();
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        if let Some(name) = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.split('(').next())
            && SYSCALLS.contains(&name)
        {
            *counts.entry(name.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// Every file is its old version or a complete new one; the backups hold the originals.
fn assert_old_or_new(
    p: &Project,
    original_env: &[u8],
    original_compose: &[u8],
    expected_compose: &[u8],
    what: &str,
) {
    let compose = read(&p.file("docker-compose.yml")).unwrap();
    assert!(
        compose == original_compose || compose == expected_compose,
        "{what}: compose is neither old nor new"
    );
    let env = read(&p.file(".env")).unwrap();
    if env != original_env {
        let doc = keyctl::envfile::EnvFile::parse(std::str::from_utf8(&env).unwrap())
            .unwrap_or_else(|e| panic!("{what}: .env damaged: {e}"));
        let keys = doc.get("JWT_KEYS").unwrap_or_default();
        let parsed = keyctl::keyset::parse_private_set(keys, "JWT_KEYS")
            .unwrap_or_else(|_| panic!("{what}: JWT_KEYS damaged"));
        assert_eq!(
            parsed.len(),
            2,
            "{what}: .env is not the dual-verify version"
        );
    }
    if let Ok(entries) = std::fs::read_dir(p.file(".keyctl/backups")) {
        for dir in entries.flatten() {
            if let Some(b) = read(&dir.path().join(".env")) {
                assert!(
                    b == original_env,
                    "{what}: a backup of .env is not the original"
                );
            }
            if let Some(b) = read(&dir.path().join("docker-compose.yml")) {
                assert!(
                    b == original_compose,
                    "{what}: a backup of the compose file is not the original"
                );
            }
        }
    }
    if let Some(state) = read(&p.file(".keyctl/state.json")) {
        serde_json::from_slice::<Value>(&state)
            .unwrap_or_else(|_| panic!("{what}: state file damaged"));
    }
}

/// SIGKILL at each call of each kind, for every fixture: at least 200 crash points.
#[test]
fn killed_at_every_system_call_the_project_is_old_or_new_and_the_next_run_finishes() {
    let mut tried = 0;
    let mut stale_locks = 0;
    for fixture in FIXTURES {
        let reference = Project::fixture(fixture);
        reference.migrate(T0).run();
        let expected_compose = read(&reference.file("docker-compose.yml")).unwrap();
        for (syscall, count) in syscall_counts(fixture) {
            // Every write, sync, rename and lock; every third open and read (they are many,
            // and mostly before anything is written), so the run fits in CI time.
            let step = if matches!(syscall.as_str(), "openat" | "read") {
                3
            } else {
                1
            };
            for when in (1..=count).step_by(step) {
                let what = format!("{fixture}: kill at {syscall} #{when}");
                let p = Project::fixture(fixture);
                let (env, compose) = (
                    read(&p.file(".env")).unwrap(),
                    read(&p.file("docker-compose.yml")).unwrap(),
                );
                let out = migrate_under_strace(&p, &format!("{syscall}:signal=KILL:when={when}"));
                assert!(!out.stderr.contains("panicked"), "{what}");
                assert_old_or_new(&p, &env, &compose, &expected_compose, &what);
                let held = std::fs::read_to_string(p.file(".keyctl/lock"))
                    .is_ok_and(|l| !l.trim().is_empty());
                let rerun = p.migrate(T0).any_status().run();
                let (stdout, stderr) = (&rerun.stdout, &rerun.stderr);
                // The killed run may have finished its step before dying (at its last writes).
                assert!(
                    rerun.code == Some(0) || stderr.contains("not yet"),
                    "{what}: rerun failed: {stderr}"
                );
                // A rerun that takes the lock reports a dead holder's line; one that refuses
                // decides before locking.
                if held && rerun.code == Some(0) {
                    assert!(
                        stderr.contains("stale lock"),
                        "{what}: a dead holder's lock is reported: {stderr}"
                    );
                    stale_locks += 1;
                }
                assert!(
                    stdout.contains("dual-verify") || stderr.contains("not yet"),
                    "{what}: {stdout}"
                );
                assert!(
                    read(&p.file("docker-compose.yml")).unwrap() == expected_compose,
                    "{what}: same compose as an uninterrupted run"
                );
                p.keyctl(["jwks", "--check"]).now(T0).run();
                let v = p.migrate_status(T0);
                assert_eq!(v["phase"], "dual-verify", "{what}");
                assert_eq!(v["interrupted_run"], false, "{what}");
                let left = temps(p.path());
                assert!(left.is_empty(), "{what}: temporary files left: {left:?}");
                tried += 1;
            }
        }
    }
    eprintln!("crash points tried: {tried}; damaged files: 0; stale locks reported: {stale_locks}");
    assert!(tried >= 200, "only {tried} crash points");
}

/// Errors the disk can return at each step of the commit: exit 4, a clear one-line error,
/// and every file exactly as before (no temporary file or journal left behind).
#[test]
fn a_disk_that_refuses_the_write_changes_nothing() {
    let mut tried = 0;
    for (syscall, error, count) in [
        ("write", "ENOSPC", 12),
        ("fsync", "EIO", 11),
        ("fdatasync", "EIO", 1),
        ("rename", "EACCES", 4),
        ("openat", "EROFS", 57),
    ] {
        for when in 1..=count {
            let what = format!("{syscall}={error} #{when}");
            let p = Project::fixture("upstream-2026-02");
            let before: Vec<Option<Vec<u8>>> = [".env", "docker-compose.yml"]
                .iter()
                .map(|f| read(&p.file(f)))
                .collect();
            let out = migrate_under_strace(&p, &format!("{syscall}:error={error}:when={when}"));
            let stderr = &out.stderr;
            assert!(!stderr.contains("panicked"), "{what}: {stderr}");
            if out.code == Some(0) {
                // The failed call was one keyctl does not depend on (e.g. a write to stdout).
                continue;
            }
            tried += 1;
            assert!(
                matches!(out.code, Some(2 | 4)),
                "{what}: exit {:?}: {stderr}",
                out.code
            );
            let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
            assert_eq!(errors.len(), 1, "{what}: {stderr}");
            let after: Vec<Option<Vec<u8>>> = [".env", "docker-compose.yml"]
                .iter()
                .map(|f| read(&p.file(f)))
                .collect();
            assert!(
                after == before,
                "{what}: files changed after a refused write"
            );
            let leftovers: Vec<String> = std::fs::read_dir(p.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
            if let Some(state) = read(&p.file(".keyctl/state.json")) {
                let v: Value = serde_json::from_slice(&state).unwrap();
                assert!(
                    v.get("pending").is_none(),
                    "{what}: the journal was left behind although every file is back"
                );
            }
        }
    }
    eprintln!("refused writes tried: {tried}; files changed: 0");
    assert!(tried >= 15, "only {tried} refused writes exercised");
}

/// Two runs at once: one applies the step, the other waits for the lock, gives up after a few
/// seconds with exit 4 naming the holder, and the project shows exactly one step.
#[test]
fn two_runs_at_once_apply_exactly_one_step() {
    let p = Project::fixture("upstream-2026-02");
    // The first run is slowed down at its first rename, so it holds the lock past the wait.
    let slow = {
        let p = p.clone();
        std::thread::spawn(move || migrate_under_strace(&p, "rename:delay_enter=5000000:when=1"))
    };
    // Wait until the first run holds the lock.
    let lock = p.file(".keyctl/lock");
    for _ in 0..200 {
        if std::fs::read_to_string(&lock).is_ok_and(|l| l.starts_with("pid ")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    p.migrate(T0)
        .status(4)
        .stderr_has("locked by keyctl pid")
        .run();
    let first = slow.join().unwrap();
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let state: Value = serde_json::from_str(&p.read(".keyctl/state.json")).unwrap();
    assert_eq!(
        state["events"].as_array().unwrap().len(),
        1,
        "exactly one step applied"
    );
}

/// Killed at each sync (the temporary files are complete, not yet renamed): every temporary
/// file keyctl left is 0600 whatever the mode of the file it replaces (`.env` is 0644 here),
/// and the next run removes them all, in `.keyctl/backups/*` too, and keeps `.env`'s mode.
#[test]
fn killed_while_writing_temporary_files_are_private_and_the_next_run_removes_them() {
    let (mut beside_env, mut in_backups) = (0, 0);
    // Every problem of every kill point, reported together.
    let mut problems = Vec::new();
    // The sync of the new contents (all temporary files complete), then each later sync.
    let points = std::iter::once(("fdatasync", 1)).chain((1..100).map(|w| ("fsync", w)));
    for (syscall, when) in points {
        let what = format!("kill at {syscall} #{when}");
        let p = Project::fixture("upstream-2026-02");
        p.chmod(".env", 0o644);
        let out = migrate_under_strace(&p, &format!("{syscall}:signal=KILL:when={when}"));
        if out.code == Some(0) {
            if syscall == "fsync" {
                break;
            }
            continue;
        }
        let left = temps(p.path());
        for t in &left {
            let mode = std::fs::metadata(p.path().join(t)).unwrap().mode() & 0o777;
            if mode != 0o600 {
                problems.push(format!("{what}: {} is {mode:o}", t.display()));
            }
            if t.starts_with(".keyctl/backups") {
                in_backups += 1;
            } else if t.to_string_lossy().starts_with("..env.keyctl-") {
                beside_env += 1;
            }
        }
        let rerun = p.migrate(T0).any_status().run();
        assert!(
            rerun.code == Some(0) || rerun.stderr.contains("not yet"),
            "{what}: {}",
            rerun.stderr
        );
        if !left.is_empty()
            && !rerun
                .stderr
                .contains("temporary file(s) left by an interrupted keyctl run")
        {
            problems.push(format!("{what}: the rerun did not say it removed {left:?}"));
        }
        let after = temps(p.path());
        if !after.is_empty() {
            problems.push(format!("{what}: left after the next run: {after:?}"));
        }
        if p.mode(".env") != 0o644 {
            problems.push(format!("{what}: .env is {:o}", p.mode(".env")));
        }
        assert_eq!(p.phase(T0), "dual-verify", "{what}");
    }
    eprintln!("temporary files seen: {beside_env} beside .env, {in_backups} in backups");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        beside_env > 0 && in_backups > 0,
        "the kills hit the temporary files"
    );
}

/// `.env` and the compose file are links (`real/secret.env`, `conf/stack.yml`): killed at
/// each rename, the journal names the files really written, the next run recovers or
/// finishes through the links, and both stay links.
#[test]
fn killed_while_writing_linked_files_the_journal_names_their_targets() {
    let mut journaled = 0;
    for when in 1..100 {
        let what = format!("kill at rename #{when}");
        let p = linked_project();
        let out = migrate_under_strace(&p, &format!("rename:signal=KILL:when={when}"));
        if out.code == Some(0) {
            break;
        }
        if let Some(state) = read(&p.file(".keyctl/state.json")) {
            let v: Value = serde_json::from_slice(&state).unwrap();
            if let Some(files) = v["pending"]["files"].as_array() {
                journaled += 1;
                let mut named: Vec<&str> =
                    files.iter().filter_map(|f| f["path"].as_str()).collect();
                named.sort_unstable();
                assert_eq!(named, ["conf/stack.yml", "real/secret.env"], "{what}");
                for f in files {
                    let backup = p.file(f["backup"].as_str().unwrap());
                    assert!(backup.is_file(), "{what}: {}", backup.display());
                }
            }
        }
        for link in [".env", "docker-compose.yml"] {
            assert!(is_link(&p.file(link)), "{what}: {link} is still a link");
        }
        let rerun = p.migrate(T0).any_status().run();
        assert!(
            rerun.code == Some(0) || rerun.stderr.contains("not yet"),
            "{what}: {}",
            rerun.stderr
        );
        for link in [".env", "docker-compose.yml"] {
            assert!(
                is_link(&p.file(link)),
                "{what}: {link} is still a link after the rerun"
            );
        }
        assert_eq!(p.phase(T0), "dual-verify", "{what}");
        p.keyctl(["jwks", "--check"]).now(T0).run();
        let left = temps(p.path());
        assert!(left.is_empty(), "{what}: {left:?}");
    }
    assert!(journaled >= 2, "only {journaled} kills left a journal");
}

/// Another program edits `.env` (or the compose file) while keyctl is writing — after keyctl
/// checked the files, backed them up and journaled the run, before it renames its new version
/// over them: the edit is not lost. keyctl, slowed at its third rename (the journal's, after
/// the two backups), finds the file changed right before its own rename, puts back anything
/// it wrote (the compose file is written first) and exits 4; a rerun then applies the step
/// to the edited files.
#[test]
fn an_edit_made_while_keyctl_writes_is_not_overwritten() {
    use std::io::Write;
    for edited in [".env", "docker-compose.yml"] {
        let p = Project::fixture("upstream-2026-02");
        let (env, compose) = (p.read(".env"), p.read("docker-compose.yml"));
        let slow = {
            let p = p.clone();
            std::thread::spawn(move || {
                migrate_under_strace(&p, "rename:delay_enter=2000000:when=3")
            })
        };
        // The journal's temporary file exists during the delay.
        let mut waiting = true;
        for _ in 0..400 {
            if temps(&p.file(".keyctl"))
                .iter()
                .any(|t| t.to_string_lossy().starts_with(".state.json.keyctl-"))
            {
                waiting = false;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!waiting, "{edited}: keyctl never reached its journal");
        std::fs::OpenOptions::new()
            .append(true)
            .open(p.file(edited))
            .unwrap()
            .write_all(b"# edited meanwhile\n")
            .unwrap();
        let out = slow.join().unwrap();
        assert_eq!(out.code, Some(4), "{edited}: {}", out.stderr);
        assert!(
            out.stderr.contains("changed on disk"),
            "{edited}: {}",
            out.stderr
        );
        let (want_env, want_compose) = if edited == ".env" {
            (format!("{env}# edited meanwhile\n"), compose.clone())
        } else {
            (env.clone(), format!("{compose}# edited meanwhile\n"))
        };
        assert_eq!(p.read(".env"), want_env, "{edited}: .env");
        assert_eq!(
            p.read("docker-compose.yml"),
            want_compose,
            "{edited}: compose"
        );
        let state: Value = serde_json::from_str(&p.read(".keyctl/state.json")).unwrap();
        assert!(state.get("pending").is_none(), "{edited}: no journal left");
        assert!(
            temps(p.path()).is_empty(),
            "{edited}: {:?}",
            temps(p.path())
        );
        p.migrate(T0).run();
        assert!(
            p.read(edited).contains("# edited meanwhile"),
            "{edited}: kept"
        );
        assert_eq!(p.phase(T0), "dual-verify");
    }
}
