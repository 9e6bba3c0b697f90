//! keyctl's own directory (`.keyctl/`) and the project lock inside it: a directory is
//! trusted only when it is a real directory owned by the running user and not writable by
//! others; the lock file is opened without following links and only ever truncated when it
//! holds what a keyctl lock holds.

// Part of the one module that touches the filesystem.
#![allow(clippy::disallowed_methods)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{nofollow, nonblock};
use crate::error::{Error, Result};

/// The effective user id of this process.
pub(super) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Creates `dir` with mode 0700 if missing (its parent must exist), then checks it as
/// [`inspect`] does.
fn trusted_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Err(e) = fs::DirBuilder::new().mode(0o700).create(dir)
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(Error::io(dir, &e));
    }
    inspect(
        dir,
        &fs::symlink_metadata(dir).map_err(|e| Error::io(dir, &e))?,
    )
}

/// Whether `dir` (with its metadata `meta`, not following links) is a directory keyctl can
/// trust with its lock, state and backups: not a symbolic link, owned by the user running
/// keyctl, not writable by group or others.
fn inspect(dir: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let place = dir.display().to_string();
    if meta.file_type().is_symlink() {
        return Err(Error::precondition(
            place,
            "is a symbolic link; keyctl keeps its lock, state and backups only in a real directory it owns: replace the link with a directory (mkdir -m 700) holding what it pointed to",
        ));
    }
    if !meta.is_dir() {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            message: "is not a directory".into(),
        });
    }
    let me = euid();
    if meta.uid() != me {
        return Err(Error::precondition(
            place,
            format!(
                "is owned by uid {}, not by the user running keyctl (uid {me}); run keyctl as that user, or chown the directory",
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Error::precondition(
            place,
            format!(
                "is writable by group or others (mode {mode:o}): anyone who can write it can replace keyctl's lock, state or backups; chmod 700 it"
            ),
        ));
    }
    Ok(())
}

/// Checks keyctl's directory `dir` (`root`, or a directory below it) before reading from
/// it, without creating anything: `false` when it does not exist, `true` when it and every
/// directory from `root` down to it is one keyctl can trust (see [`private_dir`]).
/// Read-only commands call this too: a state file or backup in a directory others can write
/// is not evidence.
///
/// # Errors
/// A directory keyctl must not trust (exit 3); a non-directory in the way, or `dir` not
/// inside `root` (exit 4).
pub fn private_dir_if_present(root: &Path, dir: &Path) -> Result<bool> {
    let mut at = root.to_path_buf();
    for part in std::iter::once(None).chain(components_below(root, dir)?.into_iter().map(Some)) {
        if let Some(name) = part {
            at.push(name);
        }
        match fs::symlink_metadata(&at) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(&at, &e)),
            Ok(meta) => inspect(&at, &meta)?,
        }
    }
    Ok(true)
}

/// The names leading from `root` down to `dir`.
fn components_below(root: &Path, dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let outside = || Error::Io {
        path: dir.to_path_buf(),
        message: format!("is not inside {}", root.display()),
    };
    dir.strip_prefix(root)
        .map_err(|_| outside())?
        .components()
        .map(|part| match part {
            std::path::Component::Normal(name) => Ok(name.to_os_string()),
            _ => Err(outside()),
        })
        .collect()
}

/// Creates (mode 0700) or checks `dir`, which is `root` (keyctl's `.keyctl/`, whose parent
/// must exist) or a directory below it, and every directory between them: each must be a
/// real directory (not a link) owned by the running user and not writable by group or
/// others.
///
/// # Errors
/// I/O errors or a non-directory in the way (exit 4); a directory keyctl must not trust
/// (exit 3).
pub fn private_dir(root: &Path, dir: &Path) -> Result<()> {
    trusted_dir(root)?;
    let mut at = root.to_path_buf();
    for name in components_below(root, dir)? {
        at.push(name);
        trusted_dir(&at)?;
    }
    Ok(())
}

/// An exclusive lock on a project, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    file: File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

pub(super) fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Longest lock file keyctl reads (it holds `pid N\n`); a longer one is not keyctl's.
const MAX_LOCK_LEN: u64 = 64;

/// At most [`MAX_LOCK_LEN`] + 1 bytes of the lock file, from its start.
fn read_lock(file: &mut File) -> Vec<u8> {
    use std::io::{Read, Seek};
    let mut bytes = Vec::new();
    let _ = file.rewind();
    let _ = file.take(MAX_LOCK_LEN + 1).read_to_end(&mut bytes);
    bytes
}

/// Whether `bytes` can be a lock file keyctl wrote: short printable ASCII (`pid N\n`, or
/// part of it, or nothing).
fn looks_like_lock(bytes: &[u8]) -> bool {
    bytes.len() as u64 <= MAX_LOCK_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
}

/// Opens the lock file without following a link: created new (0600), or an existing one
/// that must be a regular file with one link, owned by the running user, holding what a
/// keyctl lock holds. Only such a file is ever truncated.
fn open_lock(path: &Path) -> Result<File> {
    use std::os::unix::fs::MetadataExt;
    let place = path.display().to_string();
    let created = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    let mut file = match created {
        Ok(f) => return Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::precondition(
                    place,
                    "is a symbolic link, not keyctl's lock file; keyctl does not open it (it would write where it points): remove the link",
                ));
            }
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(nofollow() | nonblock())
                .open(path)
                .map_err(|e| Error::io(path, &e))?
        }
        Err(e) => return Err(Error::io(path, &e)),
    };
    let meta = file.metadata().map_err(|e| Error::io(path, &e))?;
    let refuse = |why: String| {
        Err(Error::precondition(
            place.clone(),
            format!(
                "{why}; keyctl does not use it as its lock: remove it if no keyctl run is using it"
            ),
        ))
    };
    if !meta.is_file() {
        return refuse("is not a regular file".into());
    }
    if meta.nlink() != 1 {
        return refuse(format!(
            "has {} hard links (it is also another file)",
            meta.nlink()
        ));
    }
    if meta.uid() != euid() {
        return refuse(format!(
            "is owned by uid {}, not by the user running keyctl (uid {})",
            meta.uid(),
            euid()
        ));
    }
    if !looks_like_lock(&read_lock(&mut file)) {
        return refuse("does not hold a keyctl lock (\"pid N\")".into());
    }
    Ok(file)
}

/// Takes the lock file `path` (in keyctl's `.keyctl/`, created 0700 or checked, see
/// [`private_dir`]), waiting up to `wait` for another run to finish. Returns the lock and,
/// when a previous holder died without releasing it cleanly, a note saying so.
///
/// # Errors
/// Another live run holds it (exit 4, naming its pid), or I/O errors (exit 4); an unsafe
/// `.keyctl/` or a lock file that is a link or not keyctl's (exit 3).
pub fn lock(path: &Path, wait: std::time::Duration) -> Result<(Lock, Option<String>)> {
    use std::io::Seek;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    private_dir(dir, dir)?;
    let mut file = open_lock(path)?;
    let start = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(fs::TryLockError::WouldBlock) => {
                let holder = String::from_utf8_lossy(&read_lock(&mut file)).into_owned();
                let who = holder
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<u32>().ok())
                    .map_or_else(
                        || "another keyctl run".to_owned(),
                        |pid| format!("keyctl pid {pid}"),
                    );
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    message: format!("locked by {who}; wait for it to finish and run again"),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(path, &e)),
        }
    }
    let previous = read_lock(&mut file);
    if !looks_like_lock(&previous) {
        // Written between our check and the lock by something that is not keyctl.
        return Err(Error::precondition(
            path.display().to_string(),
            "does not hold a keyctl lock (\"pid N\"); keyctl does not use it as its lock: remove it if no keyctl run is using it",
        ));
    }
    let previous = String::from_utf8_lossy(&previous).into_owned();
    // We hold the lock, so whoever wrote `previous` is gone (or is us, in a reused PID).
    let stale = match previous
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u32>().ok())
    {
        Some(pid) => Some(format!(
            "cleared a stale lock left by keyctl pid {pid}, which is no longer running"
        )),
        _ if !previous.trim().is_empty() => {
            Some("cleared a stale lock left by an interrupted keyctl run".to_owned())
        }
        _ => None,
    };
    let _ = file.set_len(0);
    let _ = file.rewind();
    // One write, so a crash cannot leave half a line. Not synced: the line only names the
    // holder in messages, and the lock itself (flock) dies with the process anyway.
    let _ = file.write_all(format!("pid {}\n", std::process::id()).as_bytes());
    Ok((Lock { file }, stale))
}
