//! The files keyctl trusts and writes (issue 11): its own `.keyctl/` directory and lock file
//! (never followed through a link, never truncated unless keyctl's, refused when another user
//! could have put them there), `.env` and compose files that are symbolic links (written
//! through, the link kept), and runs refused before anything is locked or created. The
//! crash-time parts (temporary files, races) are in `crash.rs`.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Project, T0};

/// Every file under `dir` (recursively, links not followed), relative; none when `dir` is
/// missing.
pub(crate) fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            }
            out.push(e.path().strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

/// keyctl's temporary files anywhere under `dir`, relative.
pub(crate) fn temps(dir: &Path) -> Vec<PathBuf> {
    tree(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.contains(".keyctl-") && name.ends_with(".tmp")
        })
        .collect()
}

/// A `.keyctl/` made by hand (as a previous run would, 0700).
fn keyctl_dir(p: &Project) -> PathBuf {
    let dir = p.file(".keyctl");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

pub(crate) fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Whether the tests run as root (they do in CI: scripts/test.sh installs packages).
fn root() -> bool {
    let probe = Project::new();
    probe.write("probe", "");
    std::fs::metadata(probe.file("probe")).unwrap().uid() == 0
}

#[test]
fn a_lock_file_that_is_a_link_is_refused_and_what_it_points_to_is_untouched() {
    for dangling in [false, true] {
        let p = Project::fixture("upstream-2026-02");
        let elsewhere = Project::new();
        elsewhere.write("precious", "keep me\n");
        let target = elsewhere.file(if dangling { "new-file" } else { "precious" });
        keyctl_dir(&p);
        symlink(&target, p.file(".keyctl/lock")).unwrap();
        let env = p.read(".env");
        p.migrate(T0)
            .status(3)
            .stderr_has("lock: is a symbolic link")
            .run();
        assert_eq!(
            elsewhere.read("precious"),
            "keep me\n",
            "dangling {dangling}"
        );
        assert!(
            !elsewhere.file("new-file").exists(),
            "nothing created there"
        );
        assert!(is_link(&p.file(".keyctl/lock")), "the link is left alone");
        assert_eq!(p.read(".env"), env, "nothing written");
        assert!(!p.file(".keyctl/state.json").exists());
    }
}

#[test]
fn a_lock_file_keyctl_did_not_write_is_never_truncated() {
    // A long file, binary bytes, and a hard link to a file elsewhere holding lock-like text.
    let elsewhere = Project::new();
    elsewhere.write("shared", "pid 1\n");
    for case in ["long", "binary", "hard link"] {
        let p = Project::fixture("upstream-2026-02");
        keyctl_dir(&p);
        let lock = p.file(".keyctl/lock");
        match case {
            "long" => std::fs::write(&lock, "not a lock\n".repeat(20)).unwrap(),
            "binary" => std::fs::write(&lock, b"\x00\x01\x02").unwrap(),
            _ => std::fs::hard_link(elsewhere.file("shared"), &lock).unwrap(),
        }
        let before = std::fs::read(&lock).unwrap();
        let env = p.read(".env");
        p.migrate(T0)
            .status(3)
            .stderr_has("keyctl does not use it as its lock")
            .run();
        assert_eq!(std::fs::read(&lock).unwrap(), before, "{case}: untouched");
        assert_eq!(p.read(".env"), env, "{case}: nothing written");
    }
    assert_eq!(elsewhere.read("shared"), "pid 1\n");
    // A lock keyctl left (`pid N`) is still taken over, with the stale note.
    let p = Project::fixture("upstream-2026-02");
    keyctl_dir(&p);
    p.write(".keyctl/lock", "pid 999999999\n");
    p.migrate(T0).stderr_has("stale lock").run();
    assert_eq!(p.read(".keyctl/lock"), "", "released");
}

#[test]
fn a_keyctl_directory_another_user_could_control_is_refused() {
    let mut cases = vec![
        "link",
        "writable by others",
        "writable by group",
        "backups link",
    ];
    if root() {
        cases.push("another owner");
    }
    for case in cases {
        let p = Project::fixture("upstream-2026-02");
        let elsewhere = Project::new();
        match case {
            "link" => symlink(elsewhere.path(), p.file(".keyctl")).unwrap(),
            "writable by others" | "writable by group" => {
                let dir = keyctl_dir(&p);
                let mode = if case == "writable by others" {
                    0o777
                } else {
                    0o770
                };
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            "backups link" => {
                keyctl_dir(&p);
                symlink(elsewhere.path(), p.file(".keyctl/backups")).unwrap();
            }
            _ => {
                let dir = keyctl_dir(&p);
                std::os::unix::fs::chown(&dir, Some(4242), Some(4242)).unwrap();
            }
        }
        let files_before = tree(p.path());
        let env = p.read(".env");
        let compose = p.read("docker-compose.yml");
        let out = p.migrate(T0).status(3).run();
        let why = match case {
            "link" | "backups link" => "is a symbolic link",
            "another owner" => "is owned by uid 4242",
            _ => "writable by group or others",
        };
        assert!(out.stderr.contains(why), "{case}: {}", out.stderr);
        assert_eq!(
            out.stderr
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count(),
            1,
            "{case}: {}",
            out.stderr
        );
        assert_eq!(p.read(".env"), env, "{case}: .env untouched");
        assert_eq!(p.read("docker-compose.yml"), compose, "{case}");
        assert!(
            tree(elsewhere.path()).is_empty(),
            "{case}: nothing written there"
        );
        if case != "backups link" {
            assert_eq!(tree(p.path()), files_before, "{case}: no file created");
        }
        // A dry run previews the same refusal; doctor reports the directory as a finding
        // and ignores the record in it.
        if case == "backups link" {
            p.keyctl(["migrate", "--dry-run"]).now(T0).run();
        } else {
            p.keyctl(["migrate", "--dry-run"])
                .now(T0)
                .status(3)
                .stderr_has(why)
                .run();
            let report = p
                .keyctl(["doctor", "--json"])
                .now(T0)
                .status(1)
                .run()
                .json();
            let codes: Vec<&str> = report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|f| f["code"].as_str())
                .collect();
            assert!(codes.contains(&"keyctl_dir_unsafe"), "{case}: {codes:?}");
        }
    }
}

/// `real/secret.env` (mode 0640) and `conf/stack.yml`, reached through the links `.env` and
/// `docker-compose.yml`.
pub(crate) fn linked_project() -> Project {
    let p = Project::fixture("upstream-2026-02");
    std::fs::create_dir(p.file("real")).unwrap();
    std::fs::create_dir(p.file("conf")).unwrap();
    std::fs::rename(p.file(".env"), p.file("real/secret.env")).unwrap();
    std::fs::rename(p.file("docker-compose.yml"), p.file("conf/stack.yml")).unwrap();
    p.chmod("real/secret.env", 0o640);
    symlink("real/secret.env", p.file(".env")).unwrap();
    symlink("conf/stack.yml", p.file("docker-compose.yml")).unwrap();
    p
}

#[test]
fn a_linked_env_and_compose_file_are_written_through_and_stay_links() {
    let p = linked_project();
    let (env, compose) = (p.read("real/secret.env"), p.read("conf/stack.yml"));
    p.migrate(T0).run();
    for (link, target) in [
        (".env", "real/secret.env"),
        ("docker-compose.yml", "conf/stack.yml"),
    ] {
        assert!(is_link(&p.file(link)), "{link} is still a link");
        assert_eq!(
            std::fs::read_link(p.file(link)).unwrap(),
            Path::new(target),
            "{link} points where it pointed"
        );
    }
    assert_ne!(p.read("real/secret.env"), env, "the target holds the step");
    assert_ne!(p.read("conf/stack.yml"), compose);
    let keys: Value = serde_json::from_str(&p.env_value("JWT_KEYS")).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2, "dual-verify");
    assert_eq!(
        p.mode("real/secret.env"),
        0o640,
        "the target keeps its mode"
    );
    assert_eq!(p.phase(T0), "dual-verify");
    p.keyctl(["jwks", "--check"]).now(T0).run();
    // The backups are named after (and hold) what was really replaced.
    let backups: Vec<PathBuf> = std::fs::read_dir(p.file(".keyctl/backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(
        std::fs::read_to_string(backups[0].join("secret.env")).unwrap(),
        env
    );
    assert_eq!(
        std::fs::read_to_string(backups[0].join("stack.yml")).unwrap(),
        compose
    );
    assert!(temps(p.path()).is_empty(), "{:?}", temps(p.path()));
}

#[test]
fn a_key_file_replaced_with_force_through_a_link_stays_a_link() {
    let keys = Project::new();
    let vault = Project::new();
    vault.write("private.pem", "old\n");
    std::fs::set_permissions(
        vault.file("private.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    symlink(vault.file("private.pem"), keys.file("private.pem")).unwrap();
    keys.keyctl(["generate", "--format", "pem", "--out"])
        .arg(keys.path())
        .status(3)
        .stderr_has("already exists")
        .run();
    assert_eq!(
        vault.read("private.pem"),
        "old\n",
        "never overwritten unasked"
    );
    keys.keyctl(["generate", "--format", "pem", "--force", "--out"])
        .arg(keys.path())
        .run();
    assert!(is_link(&keys.file("private.pem")), "still a link");
    assert!(
        vault.read("private.pem").contains("PRIVATE KEY"),
        "written through"
    );
    assert_eq!(
        vault.mode("private.pem"),
        0o600,
        "a private key file is 0600"
    );
    assert!(temps(vault.path()).is_empty() && temps(keys.path()).is_empty());
    // A link to nothing is refused, and nothing is created where it points.
    let dangling = Project::new();
    symlink(vault.file("missing.pem"), dangling.file("private.pem")).unwrap();
    dangling
        .keyctl(["generate", "--format", "pem", "--force", "--out"])
        .arg(dangling.path())
        .status(4)
        .stderr_has("symbolic link to nothing")
        .run();
    assert!(!vault.file("missing.pem").exists());
}

#[test]
fn a_run_refused_for_want_of_a_terminal_leaves_no_trace() {
    let p = Project::fixture("upstream-2026-02");
    let before = tree(p.path());
    p.keyctl(["migrate"])
        .now(T0)
        .status(2)
        .stderr_has("no terminal to confirm on")
        .run();
    assert!(!p.file(".keyctl").exists(), "no .keyctl/ created");
    assert_eq!(tree(p.path()), before);
    // The same after a first step, when .keyctl/ exists: no lock file left behind.
    p.migrate(T0).run();
    std::fs::remove_file(p.file(".keyctl/lock")).unwrap();
    p.keyctl(["migrate"])
        .now(crate::support::at(30))
        .status(2)
        .stderr_has("no terminal to confirm on")
        .run();
    assert!(!p.file(".keyctl/lock").exists(), "no lock taken");
}
