//! The only module that reads or writes files.
//!
//! Reads refuse what keyctl cannot safely interpret (invalid UTF-8, NUL bytes, absurd
//! sizes) with the file and line named. Writes never overwrite unless told to, create
//! private files 0600 from the first byte, and replace through a temporary file in the same
//! directory that is synced and then renamed, so a crash leaves the old or the new file.

// The one module that touches the filesystem and starts processes.
#![allow(clippy::disallowed_methods)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Refusal, Result};

mod lock;
mod staged;

use lock::pid_alive;
pub use lock::{Lock, lock, private_dir, private_dir_if_present};
pub use staged::{Staged, stage, stage_backup, sync, sync_dirs};

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
/// (exit 3). With `force`, each is replaced atomically; a symbolic link is written through
/// to its target (see [`write_target`]) and stays a link.
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
        // A link is written through: one to nothing is refused before anything is written.
        write_target(&f.path)?;
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
    // `create_new` is O_CREAT|O_EXCL: it never follows a link, never opens an existing file.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, &e))?;
    // The umask may have removed bits from the mode, never added them; set it exactly, and
    // only once the contents are on disk.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all())
        .and_then(|()| file.set_permissions(fs::Permissions::from_mode(mode)))
        .map_err(|e| {
            let _ = fs::remove_file(path);
            Error::io(path, &e)
        })
}

/// The file a write to `path` replaces: `path` itself, or, when `path` is a symbolic link,
/// the file it points to (links resolved all the way). keyctl writes through links: the
/// link stays a link and its target gets the new contents.
///
/// # Errors
/// A link whose target does not exist (exit 4).
pub fn write_target(path: &Path) -> Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "is a symbolic link to nothing (its target does not exist); nothing was written"
                    .into()
            } else {
                format!("is a symbolic link keyctl cannot follow: {e}")
            },
        }),
        _ => Ok(path.to_path_buf()),
    }
}

/// The mode a replaced file ends up with.
#[derive(Clone, Copy)]
enum FinalMode {
    /// Exactly these bits.
    Set(u32),
    /// The replaced file's mode and owner (0600 for a new file).
    Keep,
}

/// Replaces `path` with `contents` through a synced temporary file in the same directory
/// and a rename, then syncs the directory. A symbolic link is written through (see
/// [`write_target`]). The temporary file is 0600 until just before the rename.
///
/// # Errors
/// Any I/O error; the original file is untouched and the temporary file removed.
pub fn replace_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    replace_as(path, contents, FinalMode::Set(mode), None).map(drop)
}

/// The name of keyctl's temporary file for `name`: `.NAME.keyctl-PID-SALT.tmp`, recognised
/// by [`remove_stale_temps`].
fn temp_name(name: &str) -> String {
    let mut salt = [0u8; 4];
    let _ = getrandom::fill(&mut salt);
    let salt: String = salt.iter().map(|b| format!("{b:02x}")).collect();
    // PID and a random part: a container may give every run the same PID.
    format!(".{name}.keyctl-{}-{salt}.tmp", std::process::id())
}

/// One file replaced through [`stage`]: the temp file is created 0600 (it may hold private
/// keys the replaced file did not), given the replaced file's owner while still empty,
/// filled and synced; then, when `expect` is given, the target is read again and must still
/// hold exactly `expect` (an edit made meanwhile by another program is never overwritten);
/// only then does the temp file get its final mode and replace the target, and the
/// directory is synced. Returns the file actually replaced.
fn replace_as(
    path: &Path,
    contents: &[u8],
    mode: FinalMode,
    expect: Option<&[u8]>,
) -> Result<PathBuf> {
    let mut staged = match mode {
        FinalMode::Set(m) => stage(path, contents, m, false)?,
        FinalMode::Keep => stage(path, contents, 0, true)?,
    };
    sync(&[&staged], &[])?;
    staged.commit(expect)?;
    sync_dirs(&[staged.dir()])?;
    Ok(staged.target().to_path_buf())
}

/// `O_NONBLOCK`: opening a FIFO never waits for a writer.
pub(super) fn nonblock() -> i32 {
    rustix::fs::OFlags::NONBLOCK.bits().cast_signed()
}

/// `O_NOFOLLOW`: a symbolic link in the last component is not opened.
pub(super) fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits().cast_signed()
}

/// Whether `path` holds exactly `expect`, reading at most one byte more than that and never
/// blocking (a FIFO put in its place reads as different).
fn still_holds(path: &Path, expect: &[u8]) -> std::io::Result<bool> {
    use std::io::Read;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nonblock())
        .open(path)?;
    let mut now = Vec::with_capacity(expect.len());
    let limit = u64::try_from(expect.len())
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    match file.take(limit).read_to_end(&mut now) {
        Ok(_) => Ok(now == expect),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// SHA-256 of `bytes`, as lowercase hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(bytes) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// Replaces an existing file atomically, keeping its mode and owner (a symbolic link is
/// written through), only while the file still holds exactly `before`: it is
/// read again after the new contents are synced, right before the rename, so an edit made
/// by another program since keyctl read it is not overwritten.
///
/// # Errors
/// The file no longer holds `before` (exit 4, the file untouched), or any I/O error.
pub fn replace_if_unchanged(path: &Path, before: &[u8], contents: &[u8]) -> Result<PathBuf> {
    replace_as(path, contents, FinalMode::Keep, Some(before))
}

/// Removes temporary files that a killed keyctl run left in `dir` (`.NAME.keyctl-PID-X.tmp`
/// whose PID is no longer running, or is ours: the caller holds the project lock, so no run
/// of ours is writing). With `names`, only the temporary files of those file names (in a
/// directory keyctl shares with other files). Returns how many were removed.
///
/// # Errors
/// A temporary file that cannot be removed.
pub fn remove_stale_temps(dir: &Path, names: Option<&[String]>) -> Result<usize> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((head, rest)) = name
            .strip_suffix(".tmp")
            .and_then(|n| n.rsplit_once(".keyctl-"))
        else {
            continue;
        };
        let Some(of) = head.strip_prefix('.') else {
            continue;
        };
        if names.is_some_and(|names| !names.iter().any(|n| n == of)) {
            continue;
        }
        let Some(pid) = rest
            .split_once('-')
            .filter(|(_, salt)| !salt.is_empty() && salt.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
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
/// `false` when git is not installed or the file is not in a repository. git is asked only
/// when a `.git` is found in the file's directory or above it (or `GIT_DIR` is set): most
/// projects are not repositories, and starting git costs more than the rest of a run.
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
    let in_repository = std::env::var_os("GIT_DIR").is_some()
        || canonical(dir)
            .ancestors()
            .any(|d| fs::symlink_metadata(d.join(".git")).is_ok());
    if !in_repository {
        return false;
    }
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
