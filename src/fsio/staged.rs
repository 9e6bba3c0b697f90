//! Staged replacement of several files as one durable step: each new version is written to
//! a private temporary file beside its target ([`stage`]), all of them are made durable
//! together ([`sync`]: concurrent `fsync`s, which a journaling filesystem commits at once),
//! and only then renamed over their targets, in the order the caller needs, each group of
//! renames followed by the durable directory entries ([`sync_dirs`]). A write step costs a
//! few sync points instead of two per file. A staged file that is never committed is
//! removed when dropped.

// Part of the one module that touches the filesystem.
#![allow(clippy::disallowed_methods)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{still_holds, temp_name, write_target};
use crate::error::{Error, Result};

/// A new version of a file, written to its temporary file and not yet renamed.
#[derive(Debug)]
pub struct Staged {
    file: File,
    tmp: PathBuf,
    target: PathBuf,
    mode: u32,
    committed: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The directory `path` is in (`.` for a bare name).
fn dir_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Writes `contents` to a new temporary file beside `path`'s write target (a symbolic link
/// is written through, see [`write_target`]): created 0600 with the owner the target will
/// keep, not yet synced. `keep` keeps the replaced file's mode and owner (0600 for a new
/// file); otherwise the file ends up with `mode`.
///
/// # Errors
/// Any I/O error (the temporary file is removed).
pub fn stage(path: &Path, contents: &[u8], mode: u32, keep: bool) -> Result<Staged> {
    use std::os::unix::fs::MetadataExt;
    let target = write_target(path)?;
    let existing = fs::metadata(&target).ok();
    let (mode, owner) = if keep {
        (
            existing.as_ref().map_or(0o600, |m| m.mode() & 0o7777),
            existing.as_ref().map(|m| (m.uid(), m.gid())),
        )
    } else {
        (mode, None)
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir_of(&target).join(temp_name(&name));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(&target, &e))?;
    let staged = Staged {
        file: file.try_clone().map_err(|e| Error::io(&target, &e))?,
        tmp,
        target,
        mode,
        committed: false,
    };
    let mut write = || -> std::io::Result<()> {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        if let Some((uid, gid)) = owner {
            let meta = file.metadata()?;
            if (meta.uid(), meta.gid()) != (uid, gid) {
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
            }
        }
        file.write_all(contents)
    };
    write().map_err(|e| Error::io(&staged.target, &e))?;
    Ok(staged)
}

/// Stages `contents` (what a file held before keyctl changed it) as the new backup file
/// `dst` in keyctl's directory `root`, mode 0600: renamed into place only once synced, so a
/// backup is complete or absent. Its directories are created or checked as
/// [`super::private_dir`] does.
///
/// # Errors
/// I/O errors; `dst` existing already; an untrusted directory (exit 3).
pub fn stage_backup(root: &Path, dst: &Path, contents: &[u8]) -> Result<Staged> {
    if let Some(dir) = dst.parent() {
        super::private_dir(root, dir)?;
    }
    if fs::symlink_metadata(dst).is_ok() {
        return Err(Error::Io {
            path: dst.to_path_buf(),
            message: "already exists".into(),
        });
    }
    stage(dst, contents, 0o600, false)
}

impl Staged {
    /// The file this replaces (a link's target).
    #[must_use]
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The directory whose entry the rename changes.
    #[must_use]
    pub fn dir(&self) -> PathBuf {
        dir_of(&self.target)
    }

    /// Renames the (synced) temporary file over the target; with `expect`, only while the
    /// target still holds exactly that (read right before the rename: an edit another
    /// program made since is never overwritten). The directory is not synced: see
    /// [`sync_dirs`].
    ///
    /// # Errors
    /// The target changed (exit 4, untouched), or any I/O error.
    pub fn commit(&mut self, expect: Option<&[u8]>) -> Result<()> {
        if let Some(expect) = expect
            && !still_holds(&self.target, expect).map_err(|e| Error::io(&self.target, &e))?
        {
            return Err(Error::Io {
                path: self.target.clone(),
                message: "changed on disk while keyctl was writing it (another program edited it); keyctl did not overwrite it; run again".into(),
            });
        }
        if self.mode != 0o600 {
            self.file
                .set_permissions(fs::Permissions::from_mode(self.mode))
                .map_err(|e| Error::io(&self.target, &e))?;
        }
        fs::rename(&self.tmp, &self.target).map_err(|e| Error::io(&self.target, &e))?;
        self.committed = true;
        Ok(())
    }
}

/// Makes every staged file's contents durable (`fdatasync`, all in flight at once: a
/// journaling filesystem commits them together), then the directories `dirs` (entries made
/// before), one after the other (the first commit usually carries the others).
///
/// # Errors
/// The first failed sync, naming its file.
pub fn sync(staged: &[&Staged], dirs: &[PathBuf]) -> Result<()> {
    let one = |s: &&Staged| s.file.sync_data().map_err(|e| Error::io(&s.target, &e));
    match staged {
        [] => {}
        [s] => one(s)?,
        _ => std::thread::scope(|scope| {
            let running: Vec<_> = staged.iter().map(|s| scope.spawn(move || one(s))).collect();
            running
                .into_iter()
                .map(|t| {
                    t.join().unwrap_or_else(|_| {
                        Err(Error::Io {
                            path: PathBuf::from("."),
                            message: "a sync did not finish".into(),
                        })
                    })
                })
                .collect::<Result<Vec<()>>>()
        })
        .map(drop)?,
    }
    sync_dirs(dirs)
}

/// Makes the entries of `dirs` durable (renames and new files made in them).
///
/// # Errors
/// The first failed sync, naming its directory.
pub fn sync_dirs(dirs: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, &e))?;
    }
    Ok(())
}
