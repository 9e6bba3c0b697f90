//! Where a project's files are: the `.env` (`--env-file` or `DIR/.env`), the compose file
//! docker compose would pick, its override files, and keyctl's own `.keyctl/` directory with
//! the state file and the lock. Path arithmetic only: existence checks go through `fsio`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsio;
use crate::state;

/// Compose file names docker compose looks for, in its order of preference.
pub(crate) const COMPOSE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Compose override files docker compose loads beside the main file.
pub(crate) const OVERRIDE_NAMES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// Finds the `.env`: `--env-file` wins, else `DIR/.env`.
///
/// # Errors
/// Neither was given, or the directory is not one.
pub(crate) fn env_path(project: Option<&Path>, env_file: Option<&Path>) -> Result<PathBuf> {
    match (env_file, project) {
        (Some(f), _) => Ok(f.to_path_buf()),
        (None, Some(dir)) => {
            if !fsio::is_dir(dir) {
                // A mistyped --project is a usage error, not a failing disk.
                return Err(Error::usage(format!(
                    "--project {}: no such directory",
                    dir.display()
                )));
            }
            Ok(dir.join(".env"))
        }
        // Like docker compose: the current directory is the project.
        (None, None) if fsio::is_file(Path::new(".env")) => Ok(PathBuf::from(".env")),
        (None, None) => Err(Error::usage(
            "no .env in the current directory: name a project with --project DIR or an env file with --env-file FILE",
        )),
    }
}

/// The directory of `file` (`.` for a bare name).
#[must_use]
pub(crate) fn dir_of(file: &Path) -> &Path {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Finds the compose file: `--compose-file` wins, else the first of [`COMPOSE_NAMES`] in the
/// project directory (the `.env`'s directory).
///
/// # Errors
/// None found.
pub(crate) fn compose_path(env_path: &Path, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let dir = dir_of(env_path);
    COMPOSE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| fsio::is_file(p))
        .ok_or_else(|| Error::Io {
            path: dir.to_path_buf(),
            message: format!(
                "no compose file ({}); name one with --compose-file",
                COMPOSE_NAMES.join(", ")
            ),
        })
}

/// Where a project's keyctl files live.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The project directory (the `.env`'s directory).
    pub project: PathBuf,
    /// `.keyctl/`.
    pub dir: PathBuf,
    /// `.keyctl/state.json`.
    pub state: PathBuf,
    /// `.keyctl/lock`.
    pub lock: PathBuf,
}

impl Paths {
    /// The paths for the project whose `.env` is `env_path`.
    #[must_use]
    pub fn for_env(env_path: &Path) -> Paths {
        let dir = state::dir_for(env_path);
        let project = dir
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        // One record per env file: staging.env and prod.env in one directory do not share.
        let suffix = match env_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
        {
            Some(n) if n != ".env" => format!("-{}", n.trim_start_matches('.')),
            _ => String::new(),
        };
        Paths {
            state: dir.join(format!("state{suffix}.json")),
            lock: dir.join(format!("lock{suffix}")),
            project,
            dir,
        }
    }

    /// `p` relative to the project directory, as the journal records it. A file reached
    /// through a symbolic link is named by its resolved path: relative when it lies in the
    /// project directory (compared resolved too), absolute otherwise.
    #[must_use]
    pub fn relative(&self, p: &Path) -> String {
        if let Ok(inside) = p.strip_prefix(&self.project) {
            return inside.display().to_string();
        }
        let real = fsio::canonical(&self.project);
        p.strip_prefix(&real).unwrap_or(p).display().to_string()
    }

    /// A journal path made absolute again.
    #[must_use]
    pub fn absolute(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.project.join(p)
        }
    }
}
