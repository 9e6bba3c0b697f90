//! The only module that reads or writes files.
//!
//! Reads refuse what keyctl cannot safely interpret (invalid UTF-8, NUL bytes, absurd
//! sizes) with the file and line named. Writes never overwrite unless told to, create
//! private files 0600 from the first byte, and replace through a temporary file in the same
//! directory that is synced and then renamed, so a crash leaves the old or the new file.

// The one module that touches the filesystem and starts processes.
#![allow(clippy::disallowed_methods)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Refusal, Result};

/// Largest text file keyctl reads (`.env` and compose files are a few kilobytes).
pub const MAX_TEXT_LEN: u64 = 8 * 1024 * 1024;

/// Reads a UTF-8 text file.
///
/// # Errors
/// I/O errors (exit 4); a file over [`MAX_TEXT_LEN`], invalid UTF-8 or a NUL byte (bad
/// input, exit 2), named with the line.
pub fn read_text(path: &Path) -> Result<String> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, &e))?;
    if meta.is_dir() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            message: "is a directory, expected a file".into(),
        });
    }
    if !meta.is_file() {
        // A FIFO would block forever, /dev/zero would never end.
        return Err(Error::Io {
            path: path.to_path_buf(),
            message: "is not a regular file".into(),
        });
    }
    if meta.len() > MAX_TEXT_LEN {
        return Err(Error::bad(
            path.display().to_string(),
            format!("{} bytes is too large (limit {MAX_TEXT_LEN})", meta.len()),
        ));
    }
    let bytes = fs::read(path).map_err(|e| Error::io(path, &e))?;
    let line_at = |offset: usize| 1 + bytes[..offset].iter().filter(|b| **b == b'\n').count();
    let text = String::from_utf8(bytes.clone()).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        Error::bad(
            format!("{}:{}", path.display(), line_at(at)),
            "not valid UTF-8",
        )
    })?;
    if let Some(at) = text.find('\0') {
        return Err(Error::bad(
            format!("{}:{}", path.display(), line_at(at)),
            "contains a NUL byte",
        ));
    }
    Ok(text)
}

/// How a new file's permissions are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    /// Holds private key material: 0600.
    Private,
    /// Public material: 0644.
    Public,
}

impl Privacy {
    fn mode(self) -> u32 {
        match self {
            Privacy::Private => 0o600,
            Privacy::Public => 0o644,
        }
    }
}

/// One file to write.
#[derive(Debug)]
pub struct NewFile {
    /// Where.
    pub path: PathBuf,
    /// What.
    pub contents: Vec<u8>,
    /// With which mode.
    pub privacy: Privacy,
}

/// Writes a group of new files: checks all targets first, so that either every file is
/// written or (on a refusal) none is. Without `force`, an existing target is refused
/// (exit 3). With `force`, each is replaced atomically.
///
/// # Errors
/// An existing target without `force`; any I/O error (files already written in this call
/// are removed again).
pub fn write_new_files(files: &[NewFile], force: bool) -> Result<()> {
    for f in files {
        if let Some(parent) = f.path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(Error::Io {
                path: parent.to_path_buf(),
                message: "is not a directory".into(),
            });
        }
        if !force && fs::symlink_metadata(&f.path).is_ok() {
            return Err(Refusal::Exists {
                path: f.path.clone(),
            }
            .into());
        }
    }
    let mut done: Vec<&Path> = Vec::new();
    for f in files {
        let result = if force {
            replace_atomically(&f.path, &f.contents, f.privacy.mode())
        } else {
            create_new(&f.path, &f.contents, f.privacy.mode())
        };
        if let Err(e) = result {
            if !force {
                for p in done {
                    let _ = fs::remove_file(p);
                }
            }
            return Err(e);
        }
        done.push(&f.path);
    }
    Ok(())
}

fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io(path, &e))?;
    // The umask may have removed bits from `mode`, never added them; set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            let _ = fs::remove_file(path);
            Error::io(path, &e)
        })
}

/// Replaces `path` with `contents` through a synced temporary file in the same directory
/// and a rename, then syncs the directory.
///
/// # Errors
/// Any I/O error; the original file is untouched and the temporary file removed.
pub fn replace_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    replace_as(path, contents, mode, None)
}

fn replace_as(path: &Path, contents: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut salt = [0u8; 4];
    let _ = getrandom::fill(&mut salt);
    let salt: String = salt.iter().map(|b| format!("{b:02x}")).collect();
    // PID and a random part: a container may give every run the same PID.
    let tmp = dir.join(format!(".{name}.keyctl-{}-{salt}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, &e)
    })
}

/// SHA-256 of `bytes`, as lowercase hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates `dir` (and parents) with mode 0700 if missing.
///
/// # Errors
/// I/O errors, or a non-directory in the way.
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, &e))
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

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Takes the lock file `path`, waiting up to `wait` for another run to finish. Returns the
/// lock and, when a previous holder died without releasing it cleanly, a note saying so.
///
/// # Errors
/// Another live run holds it (exit 4, naming its pid), or I/O errors.
pub fn lock(path: &Path, wait: std::time::Duration) -> Result<(Lock, Option<String>)> {
    use std::io::{Read, Seek};
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, &e))?;
    let start = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let who = holder.split_whitespace().nth(1).map_or_else(
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
    let mut previous = String::new();
    let _ = file.read_to_string(&mut previous);
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
    // One write, so a crash cannot leave half a line.
    let _ = file.write_all(format!("pid {}\n", std::process::id()).as_bytes());
    let _ = file.sync_all();
    Ok((Lock { file }, stale))
}

/// Copies `src` to the new file `dst` with mode 0600 (a backup of a file holding secrets),
/// through a synced temporary file and a rename, so a backup is complete or absent.
///
/// # Errors
/// I/O errors; `dst` existing already.
pub fn backup(src: &Path, dst: &Path) -> Result<()> {
    let contents = fs::read(src).map_err(|e| Error::io(src, &e))?;
    if let Some(dir) = dst.parent() {
        private_dir(dir)?;
    }
    if fs::symlink_metadata(dst).is_ok() {
        return Err(Error::Io {
            path: dst.to_path_buf(),
            message: "already exists".into(),
        });
    }
    replace_atomically(dst, &contents, 0o600)
}

/// Replaces an existing file atomically, keeping its mode and owner (a new file gets 0600).
///
/// # Errors
/// Any I/O error; the original is untouched.
pub fn replace_keeping_mode(path: &Path, contents: &[u8]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).ok();
    let mode = meta.as_ref().map_or(0o600, |m| m.mode() & 0o7777);
    let owner = meta.map(|m| (m.uid(), m.gid()));
    replace_as(path, contents, mode, owner)
}

/// Removes temporary files that a killed keyctl run left in `dir` (`.NAME.keyctl-PID-X.tmp`
/// whose PID is no longer running, or is ours: the caller holds the project lock, so no run
/// of ours is writing). Returns how many were removed.
///
/// # Errors
/// The directory cannot be listed.
pub fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_suffix(".tmp")
            .and_then(|n| n.rsplit_once(".keyctl-"))
            .filter(|(head, _)| head.starts_with('.'))
            .and_then(|(_, rest)| {
                rest.split('-')
                    .next()
                    .and_then(|pid| pid.parse::<u32>().ok())
            })
        else {
            continue;
        };
        if pid == std::process::id() || !pid_alive(pid) {
            fs::remove_file(entry.path()).map_err(|e| Error::io(&entry.path(), &e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Reads a file's bytes (journal checks compare hashes of whole files).
///
/// # Errors
/// I/O errors (exit 4).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, &e))
}

/// Whether the file at `path` holds exactly `bytes`.
#[must_use]
pub fn holds(path: &Path, bytes: &[u8]) -> bool {
    fs::read(path).is_ok_and(|b| b == bytes)
}

/// The names of the entries of `dir` (none when it cannot be read).
#[must_use]
pub fn entry_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `path` with links resolved, or as given when it cannot be resolved.
#[must_use]
pub fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Whether `path` is a directory (following links).
#[must_use]
pub fn is_dir(path: &Path) -> bool {
    path.is_dir()
}

/// Whether `path` is a regular file (following links).
#[must_use]
pub fn is_file(path: &Path) -> bool {
    path.is_file()
}

/// Whether anything (even a dangling link) is at `path`.
#[must_use]
pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Reads a text file that may be absent: `Ok(None)` when nothing is there.
///
/// # Errors
/// As [`read_text`], for a file that exists.
pub fn read_text_if_present(path: &Path) -> Result<Option<String>> {
    if exists(path) {
        read_text(path).map(Some)
    } else {
        Ok(None)
    }
}

/// A regular file in a directory, with its permission bits.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// Its path.
    pub path: PathBuf,
    /// Its file name.
    pub name: String,
    /// Permission bits.
    pub mode: u32,
}

/// The regular files directly in `dir` (none when it cannot be read).
#[must_use]
pub fn regular_files(dir: &Path) -> Vec<DirEntry> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| DirEntry {
                path: e.path(),
                name: e.file_name().to_string_lossy().into_owned(),
                mode: meta.permissions().mode() & 0o7777,
            })
        })
        .collect()
}

/// Whether `path` is tracked by a git repository (its private keys would be committed).
/// `false` when git is not installed or the file is not in a repository.
#[must_use]
pub fn tracked_by_git(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "--error-unmatch", "--"])
        .arg(name)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The permission bits of `path`, if it exists.
#[must_use]
pub fn mode(path: &Path) -> Option<u32> {
    fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// When `path` was last modified, if it exists.
#[must_use]
pub fn modified(path: &Path) -> Option<jiff::Timestamp> {
    let t = fs::metadata(path).ok()?.modified().ok()?;
    jiff::Timestamp::try_from(t).ok()
}

/// Sets the permission bits of an existing file (the fix offered for a readable `.env`).
///
/// # Errors
/// I/O errors.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| Error::io(path, &e))
}
