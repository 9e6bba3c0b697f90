//! Build script: names the git commit the binary is built from in `--version`
//! (`KEYCTL_VERSION`, e.g. `0.1.0 (commit aea4578)`), when it is known.
//!
//! The commit comes from `KEYCTL_BUILD_COMMIT` (for builds from a source archive) or from
//! `git rev-parse --short=7 HEAD` when this package is the top of a git work tree. Anything
//! else — no git, not a repository, a package unpacked inside someone else's repository —
//! falls back silently to the bare version: a build never fails for it. The text depends only
//! on the commit, not on the state of the work tree, so two builds of one commit agree.

// A build script runs git and talks to cargo on stdout; clippy.toml's layering is for src/.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KEYCTL_BUILD_COMMIT");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = std::env::var("KEYCTL_BUILD_COMMIT")
        .ok()
        .filter(|c| valid(c))
        .or_else(git_commit);
    let full = match commit {
        Some(c) => format!("{version} (commit {c})"),
        None => version,
    };
    println!("cargo:rustc-env=KEYCTL_VERSION={full}");
}

/// A short hexadecimal commit id, nothing else (the value ends up in `--version`).
fn valid(commit: &str) -> bool {
    (7..=40).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `git rev-parse`, and only for the work tree whose top is this package.
fn git_commit() -> Option<String> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let top = git(&manifest, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(&manifest).ok()? {
        return None;
    }
    // Build again when HEAD moves: HEAD itself, the branch it names, and packed refs.
    for path in ["HEAD", "packed-refs"] {
        rerun_if_changed(&manifest, path);
    }
    if let Some(branch) = git(&manifest, &["symbolic-ref", "-q", "HEAD"]) {
        rerun_if_changed(&manifest, &branch);
    }
    let commit = git(&manifest, &["rev-parse", "--short=7", "HEAD"])?;
    valid(&commit).then_some(commit)
}

fn rerun_if_changed(dir: &Path, git_path: &str) {
    if let Some(p) = git(dir, &["rev-parse", "--git-path", git_path]) {
        let p = dir.join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}
