//! Editable copies of every file that holds a value the services or the clients read — the
//! `.env`, the compose document, the `env_file:` files and Kong's mounted declarative files —
//! and the edits that put a value where it lives: a variable in its home (`.env` or an
//! `env_file:` file), an API key in every place the trust model found it (a variable, a
//! literal in Kong's file, a literal compose value). A planner edits the copies, then
//! [`Holders::changes`] turns them into the file changes the write flow applies. Every edit
//! goes through the documents' own checked editors. Pure: never reads, writes or prints.

use crate::change::{self, FileChange};
use crate::compose::{Compose, ComposeError};
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::project::{ComposeFile, Project};
use crate::trust::{Home, KeyHome, Mounted, Sources};

/// The copies a step edits, as it will leave them.
pub(crate) struct Holders<'p> {
    project: &'p Project,
    compose_file: Option<&'p ComposeFile>,
    /// The comment put above a variable added to the `.env`.
    group: Option<&'static str>,
    /// The `.env`.
    pub(crate) env: EnvFile,
    /// The compose document, when the project has one.
    pub(crate) compose: Option<Compose>,
    /// The `env_file:` files, by the path the compose file writes.
    pub(crate) env_files: Vec<(String, Option<EnvFile>)>,
    /// Kong's mounted files.
    pub(crate) mounted: Vec<Mounted>,
}

/// What the edits change on disk.
pub(crate) struct Changed {
    /// Every file whose text changes.
    pub files: Vec<FileChange>,
    /// The `env_file:` files that change, as the compose file writes them.
    pub env_files: Vec<String>,
    /// Whether one of Kong's mounted files changes.
    pub kong: bool,
}

impl<'p> Holders<'p> {
    /// Copies of `project`'s files (and of `compose_file`'s, when there is one); variables
    /// added to the `.env` go under `group`.
    #[must_use]
    pub(crate) fn new(
        project: &'p Project,
        compose_file: Option<&'p ComposeFile>,
        group: Option<&'static str>,
    ) -> Self {
        Holders {
            project,
            compose_file,
            group,
            env: project.env.clone(),
            compose: compose_file.map(|c| c.doc.clone()),
            env_files: compose_file
                .map(|c| c.env_files.clone())
                .unwrap_or_default(),
            mounted: compose_file.map(|c| c.mounted.clone()).unwrap_or_default(),
        }
    }

    /// The files as the edits leave them, for the trust model.
    #[must_use]
    pub(crate) fn sources(&self) -> Sources<'_> {
        Sources {
            env: &self.env,
            compose: self.compose.as_ref(),
            env_files: &self.env_files,
            env_alias: self.compose_file.map_or(&[], |c| c.env_alias.as_slice()),
            mounted: &self.mounted,
        }
    }

    fn compose_error(&self, e: &ComposeError) -> Error {
        match self.compose_file {
            Some(c) => Error::bad(c.place(e.line), e.message.clone()),
            None => Error::bad("compose file", e.message.clone()),
        }
    }

    /// Sets a `.env` variable (added under the group comment when it is new).
    ///
    /// # Errors
    /// A value the `.env` rules cannot write (exit 2).
    pub(crate) fn set_env(&mut self, key: &str, value: &str) -> Result<()> {
        self.env
            .set(key, value, self.group)
            .map(|_| ())
            .map_err(|e| Error::bad(self.project.place(key), e))
    }

    /// Sets a variable where it lives: the `.env` or an `env_file:` file.
    ///
    /// # Errors
    /// An `env_file:` file that could not be read or parsed, a value that cannot be written.
    pub(crate) fn set_home(&mut self, home: &Home, value: &str) -> Result<()> {
        match home {
            Home::Env(var) => self.set_env(var, value),
            Home::EnvFile { file, var } => {
                let place = match self.compose_file {
                    Some(c) => format!("{} {var}", c.beside(file).display()),
                    None => format!("{file} {var}"),
                };
                let f = self
                    .env_files
                    .iter_mut()
                    .find(|(n, _)| n == file)
                    .and_then(|(_, f)| f.as_mut())
                    .ok_or_else(|| Error::bad(&place, "cannot be read or parsed"))?;
                f.set(var, value, None)
                    .map(|_| ())
                    .map_err(|e| Error::bad(place, e))
            }
        }
    }

    /// Replaces the API key `old` with `new` where `home` holds it.
    ///
    /// # Errors
    /// A file that could not be read, an edit the document's editor refuses.
    pub(crate) fn replace_key(&mut self, home: &KeyHome, old: &str, new: &str) -> Result<()> {
        match home {
            KeyHome::Var(h) => self.set_home(h, new),
            KeyHome::Mounted { file, .. } => {
                let m = self
                    .mounted
                    .iter_mut()
                    .find(|m| m.written == *file)
                    .and_then(|m| m.text.as_mut())
                    .ok_or_else(|| Error::bad(file, "cannot be read"))?;
                *m = crate::trust::replace_token(m, old, new);
                Ok(())
            }
            KeyHome::Compose { service, key, .. } => {
                let wanted = new.to_owned();
                let Some(compose) = self.compose.as_mut() else {
                    return Err(Error::bad(home.describe(), "no compose file to edit"));
                };
                match compose.set_env(service, key, new, &move |v: &str| v == wanted) {
                    Ok(_) => Ok(()),
                    Err(e) => Err(self.compose_error(&e)),
                }
            }
        }
    }

    /// The files whose text the edits change, each `.env`-style file checked against SPEC §1
    /// first.
    ///
    /// # Errors
    /// A planned `.env` or `env_file:` file that breaks a rule of SPEC §1 (a bug guard).
    pub(crate) fn changes(&self) -> Result<Changed> {
        let mut out = Changed {
            files: Vec::new(),
            env_files: Vec::new(),
            kong: false,
        };
        // The compose file first, then the `.env`: the order the diff shows and the write
        // follows.
        if let (Some(compose), Some(doc)) = (self.compose_file, &self.compose)
            && doc.text() != compose.doc.text()
        {
            out.files.push(FileChange {
                path: compose.path.clone(),
                before: compose.doc.text().to_owned(),
                after: doc.text().to_owned(),
                redaction: crate::redact::Redaction::Yaml,
            });
        }
        if self.env.render() != self.project.env.render() {
            let secret = self.sources().secret();
            change::validate_env(&self.env, secret.as_ref().map(|s| s.value.as_str()))?;
            out.files.push(FileChange {
                path: self.project.env_path.clone(),
                before: self.project.env.render().to_owned(),
                after: self.env.render().to_owned(),
                redaction: crate::redact::Redaction::Env,
            });
        }
        let Some(compose) = self.compose_file else {
            return Ok(out);
        };
        for ((name, before), (_, after)) in compose.env_files.iter().zip(&self.env_files) {
            if let (Some(b), Some(a)) = (before, after)
                && b.render() != a.render()
            {
                change::validate_env(a, None)?;
                out.files.push(FileChange {
                    path: compose.beside(name),
                    before: b.render().to_owned(),
                    after: a.render().to_owned(),
                    redaction: crate::redact::Redaction::Env,
                });
                out.env_files.push(name.clone());
            }
        }
        for (before, after) in compose.mounted.iter().zip(&self.mounted) {
            if let (Some(b), Some(a)) = (&before.text, &after.text)
                && b != a
            {
                out.files.push(FileChange {
                    path: compose.beside(&before.written),
                    before: b.clone(),
                    after: a.clone(),
                    redaction: crate::redact::Redaction::Yaml,
                });
                out.kong = true;
            }
        }
        Ok(out)
    }
}
