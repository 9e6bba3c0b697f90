//! A self-hosted Supabase project on disk: where its `.env` is, and the values keyctl reads
//! from it with their places (`.env:37`). Reading only; edits go through `fsio`.

use std::path::{Path, PathBuf};

use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::fsio;

/// A loaded project.
#[derive(Debug)]
pub struct Project {
    /// The `.env` file.
    pub env_path: PathBuf,
    /// Its parsed contents.
    pub env: EnvFile,
}

/// Finds the `.env`: `--env-file` wins, else `DIR/.env`.
///
/// # Errors
/// Neither was given, or the directory has no `.env`.
pub fn env_path(project: Option<&Path>, env_file: Option<&Path>) -> Result<PathBuf> {
    match (env_file, project) {
        (Some(f), _) => Ok(f.to_path_buf()),
        (None, Some(dir)) => {
            if !dir.is_dir() {
                return Err(Error::Io {
                    path: dir.to_path_buf(),
                    message: "is not a directory".into(),
                });
            }
            Ok(dir.join(".env"))
        }
        (None, None) => Err(Error::Usage(
            "name a project with --project DIR or an env file with --env-file FILE".into(),
        )),
    }
}

impl Project {
    /// Reads and parses the project's `.env`.
    ///
    /// # Errors
    /// The file cannot be read (exit 4) or parsed (exit 2, with the line).
    pub fn load(project: Option<&Path>, env_file: Option<&Path>) -> Result<Project> {
        let env_path = env_path(project, env_file)?;
        let text = fsio::read_text(&env_path)?;
        let env = EnvFile::parse(&text)
            .map_err(|e| Error::bad(format!("{}:{}", env_path.display(), e.line), e.message))?;
        Ok(Project { env_path, env })
    }

    /// `FILE:LINE VAR` for a variable set in the `.env`, or `FILE VAR` when it is not.
    #[must_use]
    pub fn place(&self, var: &str) -> String {
        match self.env.entry(var) {
            Some((_, line)) => format!("{}:{line} {var}", self.env_path.display()),
            None => format!("{} {var}", self.env_path.display()),
        }
    }

    /// A variable's value with its place, if set.
    #[must_use]
    pub fn value(&self, var: &str) -> Option<(&str, String)> {
        self.env.get(var).map(|v| (v, self.place(var)))
    }
}

/// Compose file names docker compose looks for, in its order of preference.
pub const COMPOSE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Finds the compose file: `--compose-file` wins, else the first of [`COMPOSE_NAMES`] in the
/// project directory (the `.env`'s directory).
///
/// # Errors
/// None found.
pub fn compose_path(env_path: &Path, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let dir = env_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    COMPOSE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Io {
            path: dir.to_path_buf(),
            message: format!(
                "no compose file ({}); name one with --compose-file",
                COMPOSE_NAMES.join(", ")
            ),
        })
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
