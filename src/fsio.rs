//! The only module that reads or writes files.
//!
//! Reads refuse what keyctl cannot safely interpret (invalid UTF-8, NUL bytes, absurd
//! sizes) with the file and line named. Writes never overwrite unless told to, create
//! private files 0600 from the first byte, and replace through a temporary file in the same
//! directory that is synced and then renamed, so a crash leaves the old or the new file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

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
            return Err(Error::Unsafe(format!(
                "{}: already exists; keyctl never overwrites a key file without --force",
                f.path.display()
            )));
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
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.keyctl-{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
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
