//! Issue 13 on the real Docker engine of `engine.rs`: the static binary that
//! `scripts/build-static.sh` makes, the image the shipped `Containerfile` builds from it
//! (nothing in it but the binary: no toolchain, no libc, no shell), and keyctl run in that
//! image exactly as the README says — `doctor` and a whole migration, legacy to revoked, as
//! the owner of the files, who is not root — with every file owned and moded as the same
//! static binary leaves them when run on the host. Then the README's compose snippet, with the
//! Docker socket mounted, sees the running stack.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::engine::{Engine, compose_bin, text};
use crate::support::{T0, at, copy_fixture, repo};

/// The owner of the project files: an unprivileged uid and gid with no name on either side.
const OWNER: u32 = 4242;

fn tag() -> String {
    format!("keyctl:{}", env!("CARGO_PKG_VERSION"))
}

/// `scripts/build-static.sh` into `dist`: the binary's path (the script refuses a binary
/// that is not static).
fn build_static(dist: &Path) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo().join("scripts/build-static.sh"))
        .env("DIST", dist)
        .output()
        .unwrap();
    assert!(out.status.success(), "build-static.sh: {}", text(&out));
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let name = format!("keyctl-{}-x86_64-linux", env!("CARGO_PKG_VERSION"));
    assert_eq!(bin, dist.join(&name));
    // The checksum file checks.
    let check = Command::new("sha256sum")
        .args(["-c", &format!("{name}.sha256")])
        .current_dir(dist)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    assert!(
        text(&ldd).contains("statically linked") || text(&ldd).contains("not a dynamic"),
        "ldd: {}",
        text(&ldd)
    );
    bin
}

/// The fenced block of README.md that starts with a line beginning with `first`.
fn readme_block(first: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut lines = readme.lines().skip_while(|l| !l.starts_with(first));
    let mut block = String::new();
    for line in lines.by_ref() {
        if line.starts_with("```") {
            break;
        }
        block.push_str(line);
        block.push('\n');
    }
    assert!(!block.is_empty(), "README has no block starting {first:?}");
    block
}

/// The README's one-liner, `docker run … IMAGE doctor`, split as (options before the image,
/// the image).
fn one_liner() -> (String, String) {
    let block = readme_block("docker run --rm --user");
    let line = block
        .lines()
        .find(|l| l.ends_with(" doctor"))
        .expect("README: docker run … doctor")
        .trim_end_matches(" doctor");
    let (options, image) = line.rsplit_once(' ').unwrap();
    assert_eq!(image, tag(), "README's image is this version's");
    (options.to_owned(), image.to_owned())
}

/// `sh -c SCRIPT` in `dir` as the owner of the files (uid and gid OWNER, no other group), with
/// the engine: the documented commands are shell text (`$(id -u)`, `$PWD`).
fn as_owner(e: &Engine, dir: &Path, home: &Path, script: &str) -> std::process::Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={OWNER}"),
            &format!("--regid={OWNER}"),
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("DOCKER_HOST", e.host())
        .output()
        .unwrap()
}

/// A copy of the upstream fixture owned by OWNER: `.env` 0600, the compose file 0644.
fn owned_fixture(dir: &Path) {
    copy_fixture("upstream-2026-02", dir);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join(".env"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(
        dir.join("docker-compose.yml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    chown_r(dir);
}

fn chown_r(path: &Path) {
    let out = Command::new("chown")
        .args(["-R", &format!("{OWNER}:{OWNER}")])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// Every file and directory under `dir`: relative path → (kind, mode, uid, gid).
fn tree(dir: &Path) -> BTreeMap<String, (char, u32, u32, u32)> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<String, (char, u32, u32, u32)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let kind = if m.is_dir() { 'd' } else { 'f' };
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            into.insert(rel, (kind, m.mode() & 0o7777, m.uid(), m.gid()));
            if m.is_dir() {
                walk(root, &path, into);
            }
        }
    }
    let mut all = BTreeMap::new();
    walk(dir, dir, &mut all);
    all
}

fn phase(status: &str) -> String {
    let v: Value = serde_json::from_str(status).unwrap_or_else(|e| panic!("{e}: {status}"));
    v["phase"].as_str().unwrap().to_owned()
}

#[test]
fn the_image_runs_doctor_and_a_whole_migration_as_the_owner_of_the_files() {
    let work = tempfile::Builder::new()
        .prefix("keyctl-image")
        .tempdir_in("/tmp")
        .unwrap();
    let w = work.path();
    std::fs::set_permissions(w, std::fs::Permissions::from_mode(0o755)).unwrap();

    // 1. The static binary (a release build: minutes on a fresh checkout, so before the
    //    engine starts), and the image the shipped Containerfile makes of it (the classic
    //    builder: FROM scratch needs no registry).
    let bin = build_static(&w.join("dist"));
    let e = Engine::start();
    let built = Command::new("/usr/bin/docker")
        .args(["build", "-q", "-f"])
        .arg(repo().join("Containerfile"))
        .args([
            "--build-arg",
            &format!("VERSION={}", env!("CARGO_PKG_VERSION")),
            "-t",
            &tag(),
        ])
        .arg(w)
        .env("DOCKER_HOST", e.host())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(built.status.success(), "docker build: {}", text(&built));
    let config: Value = serde_json::from_str(&e.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        &tag(),
    ]))
    .unwrap();
    assert_eq!(config["User"], "65532:65532", "non-root by default");
    assert_eq!(config["WorkingDir"], "/project");
    assert_eq!(config["Entrypoint"][0], "/usr/local/bin/keyctl");

    // 2. The image holds the binary and nothing else: no toolchain, no libc, no shell. So
    //    every run below is the static binary running without the Rust toolchain.
    let id = e.docker(&["create", &tag()]).trim().to_owned();
    let export = Command::new("/usr/bin/docker")
        .args(["export", &id])
        .env("DOCKER_HOST", e.host())
        .output()
        .unwrap();
    e.docker(&["rm", &id]);
    let listing = Command::new("tar")
        .args(["-tv"])
        .stdin({
            let f = w.join("image.tar");
            std::fs::write(&f, &export.stdout).unwrap();
            std::fs::File::open(f).unwrap()
        })
        .output()
        .unwrap();
    let files: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter(|l| l.starts_with('-'))
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect();
    // Docker adds empty mount points (/etc/hosts, /etc/resolv.conf, /etc/hostname,
    // /dev/console, /.dockerenv) to every container's file system.
    let own: Vec<&String> = files
        .iter()
        .filter(|f| !f.starts_with("etc/") && !f.starts_with("dev/") && *f != ".dockerenv")
        .collect();
    assert_eq!(own, ["usr/local/bin/keyctl"], "{files:?}");
    let shell = Command::new("/usr/bin/docker")
        .args([
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            &tag(),
            "-c",
            "true",
        ])
        .env("DOCKER_HOST", e.host())
        .output()
        .unwrap();
    assert!(!shell.status.success(), "the image has no shell");

    // 3. The owner of the files is an ordinary user who may talk to the engine (as the
    //    docker group allows).
    let sock = e.socket();
    std::os::unix::fs::chown(&sock, None, Some(OWNER)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o660)).unwrap();
    let home = w.join("home");
    std::fs::create_dir(&home).unwrap();
    chown_r(&home);
    let inside = w.join("inside");
    let host = w.join("host");
    owned_fixture(&inside);
    owned_fixture(&host);

    // 4. The README's one-liner, verbatim, from the project directory.
    let (options, image) = one_liner();
    let doctor = as_owner(&e, &inside, &home, &format!("{options} {image} doctor"));
    assert_eq!(doctor.status.code(), Some(1), "{}", text(&doctor));
    assert!(
        text(&doctor).contains("demo value") && text(&doctor).contains("phase legacy"),
        "{}",
        text(&doctor)
    );
    // Without --user keyctl is uid 65532: it cannot read the owner's mode-600 .env.
    let stranger = as_owner(
        &e,
        &inside,
        &home,
        &format!("docker run --rm -v \"$PWD:/project\" {image} migrate --yes"),
    );
    assert_eq!(stranger.status.code(), Some(4), "{}", text(&stranger));
    assert!(!inside.join(".keyctl").exists(), "nothing written");

    // 5. The whole migration in the container, the clock passed in: dual-verify, switched
    //    after 20 minutes, revoked (with consent to re-mint the API keys) after JWT_EXPIRY +
    //    20 minutes. The same steps on the host copy with the same static binary, as the
    //    same user.
    let steps: [(String, &str); 3] = [
        (T0.to_owned(), "migrate --yes"),
        (at(21), "migrate --yes"),
        (at(21 + 81), "migrate --yes --remint-api-keys"),
    ];
    for (now, args) in &steps {
        let ran = as_owner(
            &e,
            &inside,
            &home,
            &format!("{options} -e KEYCTL_NOW={now} {image} {args}"),
        );
        assert!(ran.status.success(), "{args} at {now}: {}", text(&ran));
        let ran = as_owner(
            &e,
            &host,
            &home,
            &format!("KEYCTL_NOW={now} {} {args}", bin.display()),
        );
        assert!(ran.status.success(), "host {args} at {now}: {}", text(&ran));
    }
    let status = as_owner(
        &e,
        &inside,
        &home,
        &format!(
            "{options} -e KEYCTL_NOW={} {image} migrate status --json",
            at(21 + 82)
        ),
    );
    assert!(status.status.success(), "{}", text(&status));
    assert_eq!(phase(&String::from_utf8_lossy(&status.stdout)), "revoked");

    // 6. Owned and moded as on the host: the same tree, file for file.
    let (a, b) = (tree(&inside), tree(&host));
    assert_eq!(a, b, "container run vs host run");
    assert_eq!(a[".env"], ('f', 0o600, OWNER, OWNER));
    assert_eq!(a["docker-compose.yml"], ('f', 0o644, OWNER, OWNER));
    assert_eq!(a[".keyctl"], ('d', 0o700, OWNER, OWNER));
    assert!(
        a.iter()
            .filter(|(k, _)| k.starts_with(".keyctl/backups/") && k.matches('/').count() == 3)
            .all(|(_, v)| v.0 == 'f' && v.1 == 0o600 && v.2 == OWNER),
        "backups 0600 and the owner's: {a:#?}"
    );
    assert!(
        a.keys()
            .filter(|k| k.starts_with(".keyctl/backups/"))
            .count()
            >= 6,
        "{a:#?}"
    );

    // 7. The README's compose snippet, socket mounted (the engine's, and its group), sees
    //    the running stack: the stand-ins started from the migrated files run its values.
    e.up_in(&inside, "");
    let snippet = readme_block("services:")
        .replace(
            "      # - /var/run/docker.sock:/var/run/docker.sock",
            &format!("      - {}:/var/run/docker.sock", sock.display()),
        )
        .replace(
            "    # group_add: [\"${DOCKER_GID:-0}\"]",
            &format!("    group_add: [\"{OWNER}\"]"),
        );
    assert!(snippet.contains(&format!("image: {}", tag())), "{snippet}");
    assert!(snippet.contains("/var/run/docker.sock\n") && snippet.contains("group_add: ["));
    std::fs::write(inside.join("keyctl.compose.yml"), snippet).unwrap();
    let run = Command::new(compose_bin())
        .args([
            "-f",
            "docker-compose.yml",
            "-f",
            "keyctl.compose.yml",
            "run",
            "--rm",
            "-e",
            &format!("KEYCTL_NOW={}", at(21 + 83)),
            "keyctl",
            "doctor",
            "--json",
            "--live",
        ])
        .current_dir(&inside)
        .env("DOCKER_HOST", e.host())
        .env("KEYCTL_USER", format!("{OWNER}:{OWNER}"))
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_slice(&run.stdout).unwrap_or_else(|err| panic!("{err}: {}", text(&run)));
    assert_eq!(report["live"]["checked"], true, "{report:#}");
    assert_eq!(report["phase"], "revoked");
    assert_eq!(report["summary"]["errors"], 0, "{report:#}");
    assert!(run.status.success(), "{}", text(&run));
    e.compose_in(&inside, "", &["down", "-t", "0"]);
}
