//! A change to a project's files, from plan to disk: the redacted diff shown before writing,
//! and the one way keyctl writes a project — under the lock, after a backup of every file,
//! with a journal in the state file so that an interrupted run is recognised and undone by
//! the next one. Every file ends up either exactly as it was or exactly as planned.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use similar::{ChangeTag, TextDiff};

use crate::envfile::EnvFile;
use crate::error::{Error, Refusal, Result};
use crate::fsio;
use crate::redact::Redaction;

use crate::keyset;
use crate::phase::Step;
use crate::project::{ComposeFile, Paths};
use crate::state::{Pending, PendingFile, State};

/// One file's old and new text (which may hold private keys: `Debug` shows only the path,
/// and both texts are zeroized when dropped).
#[derive(Clone)]
pub(crate) struct FileChange {
    /// The file.
    pub path: PathBuf,
    /// What it holds now.
    pub before: String,
    /// What it will hold.
    pub after: String,
    /// How its lines are redacted in diffs.
    pub redaction: Redaction,
}

impl std::fmt::Debug for FileChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileChange({}, [redacted])", self.path.display())
    }
}

impl Drop for FileChange {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.before.zeroize();
        self.after.zeroize();
    }
}

impl FileChange {
    /// Whether the text changes at all.
    #[must_use]
    pub(crate) fn changes(&self) -> bool {
        self.before != self.after
    }
}

/// A unified diff of the planned changes, secrets redacted.
#[must_use]
pub(crate) fn diff(changes: &[FileChange]) -> String {
    let mut out = String::new();
    for c in changes.iter().filter(|c| c.changes()) {
        out.push_str(&format!(
            "--- {}\n+++ {} (planned)\n",
            c.path.display(),
            c.path.display()
        ));
        let d = TextDiff::from_lines(&c.before, &c.after);
        for hunk in d.unified_diff().context_radius(1).iter_hunks() {
            out.push_str(&format!("{}\n", hunk.header()));
            for change in hunk.iter_changes() {
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                let text = change.value().trim_end_matches(['\n', '\r']);
                let shown = c.redaction.line(text);
                out.push_str(&format!("{sign}{shown}\n"));
            }
        }
    }
    out
}

fn write_state(paths: &Paths, state: &State) -> Result<()> {
    fsio::private_dir(&paths.dir, &paths.dir)?;
    fsio::replace_atomically(&paths.state, state.render().as_bytes(), 0o600)
}

/// Finishes or undoes a run that was interrupted: files already written are put back from
/// their backups, so the project is exactly as it was before that run. Returns a message
/// when there was something to recover.
///
/// # Errors
/// A file changed since the interrupted run in a way keyctl cannot attribute (exit 3).
pub(crate) fn recover(paths: &Paths, files: &[&Path], state: &mut State) -> Result<Option<String>> {
    let Some(pending) = state.pending.clone() else {
        return Ok(None);
    };
    // The journal is only ever about this project's own files and keyctl's own backups; a
    // state file that names anything else was not written by keyctl and is not obeyed.
    let backups = paths.dir.join("backups");
    for f in &pending.files {
        let target = paths.absolute(&f.path);
        let backup = paths.absolute(&f.backup);
        let escapes = |p: &Path| {
            p.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        };
        let canon = |p: &Path| fsio::canonical(p);
        let known = files.iter().any(|k| canon(k) == canon(&target));
        if !known || escapes(&backup) || !backup.starts_with(&backups) {
            return Err(Error::bad(
                paths.state.display().to_string(),
                format!(
                    "the journal of an interrupted run names {} (backup {}), which is not this run's .env, compose file or a keyctl backup; if that run used --env-file/--compose-file, run again with the same ones, otherwise the journal was not written by keyctl",
                    f.path, f.backup
                ),
            ));
        }
    }
    let mut restore = Vec::new();
    for f in &pending.files {
        let path = paths.absolute(&f.path);
        let now = fsio::read_bytes(&path)?;
        let hash = fsio::sha256_hex(&now);
        if hash == f.before {
            continue;
        }
        if hash != f.after {
            return Err(Refusal::Unrecoverable {
                path: path.clone(),
                detail: format!(
                    "an interrupted keyctl run ({} at {}) left this file, and it has been edited since; compare it with {} and remove \"pending\" from {} when resolved",
                    pending.step,
                    pending.started,
                    f.backup,
                    paths.state.display()
                ),
            }
            .into());
        }
        let backup = paths.absolute(&f.backup);
        let old = fsio::read_bytes(&backup)?;
        if fsio::sha256_hex(&old) != f.before {
            return Err(Refusal::Unrecoverable {
                path: backup.clone(),
                detail: format!(
                    "the backup does not match the journal; restore {} by hand",
                    path.display()
                ),
            }
            .into());
        }
        restore.push((path, now, old));
    }
    for (path, now, old) in &restore {
        // Only over exactly what the interrupted run wrote, checked again right before the
        // rename: an edit made meanwhile is never overwritten.
        fsio::replace_if_unchanged(path, now, old)?;
    }
    state.pending = None;
    write_state(paths, state)?;
    Ok(Some(format!(
        "recovered from an interrupted run ({} started {}): {} file(s) restored from backup",
        pending.step,
        pending.started,
        restore.len()
    )))
}

/// Writes `changes` and the new `state`: backs up every changed file into
/// `.keyctl/backups/<time>-<step>/`, journals the run, replaces each file atomically
/// (keeping mode and owner; a symbolic link is written through to its target, which is what
/// the backup and the journal name), then records the finished state. Each file is compared
/// with what the plan was made from once before anything is written and again right before
/// its rename. On any error every file is put back as it was.
///
/// Four sync points, in this order (docs/RELIABILITY.md): (1) every new text — backups,
/// journal, finished state, files — written to temporary files and synced together; (2)
/// the backups and the journal renamed into place and their directories synced; (3) the
/// files renamed and their directories synced; (4) the finished state renamed and synced.
/// A crash before (2) leaves the old files and no journal; between (2) and (4), a journal
/// whose backups are durable, which the next run undoes.
///
/// # Errors
/// I/O errors (exit 4), a file that changed on disk since it was read (exit 4), two planned
/// files that are one file (exit 3).
pub(crate) fn apply(
    paths: &Paths,
    step: Step,
    changes: &[FileChange],
    mut state: State,
    backup_dir: &Path,
    now: Timestamp,
) -> Result<()> {
    let changed: Vec<&FileChange> = changes.iter().filter(|c| c.changes()).collect();
    // A last guard: nothing keyctl writes may hold a NUL byte (every reader would refuse it).
    if let Some(c) = changed.iter().find(|c| c.after.contains('\0')) {
        return Err(Refusal::InvalidResult {
            problem: format!("{}: a NUL byte", c.path.display()),
        }
        .into());
    }
    // What each write really replaces: a symbolic link's target.
    let mut targets: Vec<(&FileChange, PathBuf)> = Vec::new();
    for c in &changed {
        let target = fsio::write_target(&c.path)?;
        if let Some((other, _)) = targets
            .iter()
            .find(|(_, t)| fsio::canonical(t) == fsio::canonical(&target))
        {
            return Err(Error::precondition(
                c.path.display().to_string(),
                format!(
                    "is the same file as {} (a link): keyctl cannot edit one file as two; nothing was written",
                    other.path.display()
                ),
            ));
        }
        targets.push((c, target));
    }
    // (1) Every new text in a synced temporary file.
    fsio::private_dir(&paths.dir, &paths.dir)?;
    let mut journal = Vec::new();
    let mut backups = Vec::new();
    for (c, target) in &targets {
        let on_disk = fsio::read_text(target)?;
        if on_disk != c.before {
            return Err(Error::Io {
                path: target.clone(),
                message: "changed on disk while keyctl was running; nothing was written, run again"
                    .into(),
            });
        }
        let name = target
            .file_name()
            .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
        // Two files of one name (`.env` and an `env_file:` `.env` elsewhere) keep two backups.
        let mut backup = backup_dir.join(&name);
        let mut n = 1;
        while journal
            .iter()
            .any(|j: &PendingFile| j.backup == paths.relative(&backup))
        {
            n += 1;
            backup = backup_dir.join(format!("{name}.{n}"));
        }
        // The backup holds exactly what the journal's `before` hash names.
        backups.push(fsio::stage_backup(
            &paths.dir,
            &backup,
            c.before.as_bytes(),
        )?);
        journal.push(PendingFile {
            path: paths.relative(target),
            backup: paths.relative(&backup),
            before: fsio::sha256_hex(c.before.as_bytes()),
            after: fsio::sha256_hex(c.after.as_bytes()),
        });
    }
    let finished = state.clone();
    state.pending = Some(Pending {
        step,
        started: now,
        files: journal,
    });
    // The state as it was on disk, plus the journal: what recovery reads after a crash.
    let mut journaled = crate::project::load_state(paths, now).unwrap_or_default();
    journaled.pending = state.pending.clone();
    let mut journal_file = fsio::stage(&paths.state, journaled.render().as_bytes(), 0o600, false)?;
    let mut finished_file = fsio::stage(&paths.state, finished.render().as_bytes(), 0o600, false)?;
    let mut files = Vec::new();
    for (c, target) in &targets {
        files.push(fsio::stage(target, c.after.as_bytes(), 0, true)?);
    }
    let all: Vec<&fsio::Staged> = backups
        .iter()
        .chain(&files)
        .chain([&journal_file, &finished_file])
        .collect();
    fsio::sync(&all, &[])?;
    // (2) The backups, then the journal, in place and durable.
    // The new backup directory's entry, the journal's, and `.keyctl/`'s own (the lock may
    // just have made it). After the first, these syncs find little left to commit.
    let mut keyctl_dirs = vec![
        backup_dir.to_path_buf(),
        paths.dir.join("backups"),
        paths.dir.clone(),
    ];
    keyctl_dirs.extend(paths.dir.parent().map(Path::to_path_buf));
    for b in &mut backups {
        b.commit(None)?;
    }
    if let Err(e) = journal_file
        .commit(None)
        .and_then(|()| fsio::sync_dirs(&keyctl_dirs))
    {
        // The rename may have happened before the error (a failed directory sync): take the
        // journal back, nothing has been written yet.
        journaled.pending = None;
        let _ = write_state(paths, &journaled);
        return Err(e);
    }
    // (3) The files.
    let mut written: Vec<(&FileChange, &Path)> = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for ((c, target), file) in targets.iter().zip(&mut files) {
        // Compared again with what the plan was made from right before the rename: an edit
        // another program made since the check above is not lost.
        let result = file.commit(Some(c.before.as_bytes()));
        if fsio::holds(target, c.after.as_bytes()) {
            written.push((c, target));
        }
        if let Err(e) = result {
            return Err(undo(paths, &written, journaled, e));
        }
        if !dirs.contains(&file.dir()) {
            dirs.push(file.dir());
        }
    }
    if let Err(e) = fsio::sync_dirs(&dirs) {
        return Err(undo(paths, &written, journaled, e));
    }
    // (4) The finished state.
    if let Err(e) = finished_file
        .commit(None)
        .and_then(|()| fsio::sync_dirs(std::slice::from_ref(&paths.dir)))
    {
        return Err(undo(paths, &written, journaled, e));
    }
    Ok(())
}

/// Puts `written` files back (each only while it still holds what keyctl wrote) and clears
/// the journal only when every one is verifiably back; otherwise the journal stays, so the
/// next run recovers from the backups (or says which file was edited meanwhile).
fn undo(
    paths: &Paths,
    written: &[(&FileChange, &Path)],
    mut journaled: State,
    cause: Error,
) -> Error {
    let mut restored = true;
    for (w, target) in written.iter().rev() {
        let back = fsio::replace_if_unchanged(target, w.after.as_bytes(), w.before.as_bytes())
            .is_ok()
            && fsio::holds(target, w.before.as_bytes());
        restored &= back;
    }
    journaled.pending = None;
    if restored && write_state(paths, &journaled).is_ok() {
        return cause;
    }
    Error::Io {
        path: paths.state.clone(),
        message: format!(
            "{cause}; the files could not all be put back: run keyctl migrate again to recover them from the backups"
        ),
    }
}

/// A fresh backup directory for a run of `step` at `now`: `.keyctl/backups/<time>-<step>`,
/// with a number added when `taken` (the names already in `.keyctl/backups/`) has it.
#[must_use]
pub(crate) fn backup_dir(paths: &Paths, taken: &[String], step: Step, now: Timestamp) -> PathBuf {
    let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let base = format!("{stamp}-{step}");
    let mut name = base.clone();
    let mut n = 1;
    while taken.contains(&name) {
        n += 1;
        name = format!("{base}-{n}");
    }
    paths.dir.join("backups").join(name)
}

/// The `docker compose … up -d --force-recreate` command line(s) for `services`: verifiers
/// first, then everything else (Auth last of all), as SPEC §3 orders restarts. With the
/// default file names the command runs in the project directory, so compose loads exactly
/// what it always loads (override files, `COMPOSE_FILE`); otherwise it names the files.
#[must_use]
pub(crate) fn restart_command(
    compose: &ComposeFile,
    env_file: &Path,
    verifiers: &[String],
    others: &[String],
) -> String {
    let compose_file = compose.path.as_path();
    let dir = compose_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = compose_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let default_env = env_file.parent() == compose_file.parent()
        && env_file.file_name().is_some_and(|n| n == ".env");
    let (prefix, base) = if crate::project::COMPOSE_NAMES.contains(&name.as_str()) && default_env {
        (
            format!("cd {} && ", shell_word(&dir.display().to_string())),
            "docker compose up -d --force-recreate".to_owned(),
        )
    } else {
        let mut files = format!("-f {}", shell_word(&compose_file.display().to_string()));
        for o in &compose.overrides {
            files.push_str(&format!(
                " -f {}",
                shell_word(&o.path.display().to_string())
            ));
        }
        let env = if default_env {
            String::new()
        } else {
            format!(
                " --env-file {}",
                shell_word(&env_file.display().to_string())
            )
        };
        (
            String::new(),
            format!("docker compose {files}{env} up -d --force-recreate"),
        )
    };
    let mut parts = Vec::new();
    if !verifiers.is_empty() {
        parts.push(format!("{base} {}", verifiers.join(" ")));
    }
    if !others.is_empty() {
        parts.push(format!("{base} {}", others.join(" ")));
    }
    format!("{prefix}{}", parts.join(" && "))
}

pub(crate) fn shell_word(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Checks the `.env` a change would write against every rule of SPEC §1.
///
/// # Errors
/// Each problem, as bad input naming the would-be value (a bug guard: plans are built from
/// validated parts).
pub(crate) fn validate_env(after: &EnvFile, secret: Option<&str>) -> Result<()> {
    let inputs = keyset::Inputs {
        jwt_keys: after
            .get("JWT_KEYS")
            .map(|v| (v, "planned JWT_KEYS".to_owned())),
        jwt_jwks: after
            .get("JWT_JWKS")
            .map(|v| (v, "planned JWT_JWKS".to_owned())),
        jwt_secret: secret.map(|v| (v, "the planned HS256 secret".to_owned())),
    };
    let problems = keyset::check(&inputs);
    match problems.first() {
        None => Ok(()),
        Some(p) => Err(Refusal::InvalidResult {
            problem: p.to_string(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_orders_verifiers_first() {
        let file = |path: &str| ComposeFile {
            path: path.into(),
            doc: crate::compose::Compose::parse("services: {}\n").unwrap(),
            overrides: Vec::new(),
            env_files: Vec::new(),
            env_alias: Vec::new(),
            mounted: Vec::new(),
        };
        let c = restart_command(
            &file("/srv/docker-compose.yml"),
            Path::new("/srv/.env"),
            &["rest".into()],
            &["auth".into()],
        );
        assert_eq!(
            c,
            "cd /srv && docker compose up -d --force-recreate rest && docker compose up -d --force-recreate auth"
        );
        let c = restart_command(
            &file("/srv/stack.yml"),
            Path::new("/srv/prod.env"),
            &[],
            &["auth".into()],
        );
        assert_eq!(
            c,
            "docker compose -f /srv/stack.yml --env-file /srv/prod.env up -d --force-recreate auth"
        );
    }
}
