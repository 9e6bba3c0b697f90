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
use crate::jws;
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

/// How a changed file's lines are shown in a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redaction {
    /// A `.env`: secret values (by name or content) described, not shown.
    Env,
    /// A compose file or Kong's YAML: JWT-shaped words and secret-looking values hidden.
    Yaml,
    /// A file that holds nothing but key material (a Helm values file's `secret:` block, a
    /// Secret manifest): every value hidden but a few structural ones.
    Values,
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

/// Variables whose values are shown in diffs only as a summary.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["SECRET", "KEY", "PASSWORD", "TOKEN", "JWKS", "PASS"]
        .iter()
        .any(|w| upper.contains(w))
}

/// A line of `.env` with any secret value replaced by a description of it.
#[must_use]
pub(crate) fn redact_env_line(line: &str) -> String {
    let Ok(doc) = EnvFile::parse(line) else {
        return "<unparsed line, redacted>".into();
    };
    let Some(crate::envfile::LineKind::Entry(e)) = doc.lines().first().map(|l| &l.kind) else {
        return line.to_owned();
    };
    let value = e.value.clone().unwrap_or_default();
    // By content too: a value that carries a credential is redacted whatever its name
    // (`DATABASE_URL=postgres://user:password@…`, a JWT, a long random string).
    if !is_secret_name(&e.key) && !looks_secret(&value) {
        return line.to_owned();
    }
    let summary = describe_secret(&e.key, &value);
    let raw = doc.raw_value(e);
    line.replacen(raw, &summary, 1)
}

fn describe_secret(name: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    if (name == "JWT_KEYS" || name == "JWT_JWKS")
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(value)
    {
        let list = v
            .as_array()
            .or_else(|| v.get("keys").and_then(|k| k.as_array()));
        if let Some(list) = list {
            let keys: Vec<String> = list
                .iter()
                .map(|k| {
                    let alg = k.get("alg").and_then(|a| a.as_str()).unwrap_or("?");
                    let kid = k
                        .get("kid")
                        .and_then(|a| a.as_str())
                        .map_or("legacy".to_owned(), |kid| format!("kid {kid}"));
                    let ops = k
                        .get("key_ops")
                        .and_then(|o| o.as_array())
                        .map(|o| {
                            o.iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join("+")
                        })
                        .unwrap_or_default();
                    format!("{alg} {kid} {ops}")
                })
                .collect();
            return format!(
                "<{}: {}>",
                if name == "JWT_KEYS" {
                    "private set"
                } else {
                    "public set"
                },
                keys.join(", ")
            );
        }
    }
    if let Ok(d) = jws::decode(value) {
        let role = d.claims.get("role").and_then(|r| r.as_str()).unwrap_or("?");
        let kid = d.kid().map_or(String::new(), |k| format!(" kid {k}"));
        return format!("<JWT {}{kid} role {role}>", d.alg().unwrap_or("?"));
    }
    format!("<redacted, {} characters>", value.chars().count())
}

/// Whether a value carries a credential by its content: a URL with a password, a JWT, or a
/// long run of random-looking characters (40 or more, mixed letters and digits).
fn looks_secret(value: &str) -> bool {
    if let Some((_, rest)) = value.split_once("://")
        && let Some((userinfo, _)) = rest.split_once('@')
        && userinfo.contains(':')
    {
        return true;
    }
    if jws::decode(value).is_ok() {
        return true;
    }
    value
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=')))
        .any(|w| {
            w.len() >= 40
                && w.chars().any(|c| c.is_ascii_digit())
                && w.chars().any(|c| c.is_ascii_lowercase())
                && w.chars().any(|c| c.is_ascii_uppercase())
        })
}

/// A compose (or other YAML) line with credentials redacted: JWT-shaped words, the value of
/// an `environment:` entry whose name or content is secret (`KEY: value`, `- KEY=value`), and
/// the password of a URL.
#[must_use]
pub(crate) fn redact_yaml_line(line: &str) -> String {
    // The length said is the value's own, so the original line is split (a JWT would
    // otherwise be counted as `<redacted JWT>`).
    let trimmed = line.trim_start();
    let item = trimmed.strip_prefix("- ").unwrap_or(trimmed);
    let split = item
        .split_once(": ")
        .or_else(|| item.split_once('='))
        .filter(|(k, _)| {
            let k = k.trim();
            k.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if let Some((key, value)) = split {
        let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
        if !v.is_empty() && !v.contains('$') && (is_secret_name(key.trim()) || looks_secret(v)) {
            let at = line.len() - value.len();
            return format!(
                "{}<redacted, {} characters>",
                redact_tokens(&line[..at]),
                v.chars().count()
            );
        }
    }
    redact_tokens(line)
}

/// Keys whose values are names, never key material: shown in a [`Redaction::Values`] diff.
const STRUCTURAL_KEYS: [&str; 10] = [
    "apiVersion",
    "kind",
    "name",
    "namespace",
    "type",
    "secretRef",
    "enabled",
    "repository",
    "tag",
    "fullnameOverride",
];

/// A line of a file of key material with its value hidden: `key: <redacted, N characters>`
/// (quoted keys, keys with `-` or `.` too), except the structural keys; a line that is not
/// `key: value` (a block scalar's text, a list item) is hidden whole.
#[must_use]
pub(crate) fn redact_values_line(line: &str) -> String {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed == "---" {
        return line.to_owned();
    }
    if trimmed.starts_with('#') {
        // A commented-out key is still a key (old values kept as comments).
        let indent = &line[..line.len() - trimmed.len()];
        return format!(
            "{indent}# <comment, {} characters>",
            trimmed.chars().count()
        );
    }
    let indent = &line[..line.len() - trimmed.len()];
    let key_end = match trimmed.chars().next() {
        Some(q @ ('"' | '\'')) => trimmed[1..].find(q).map(|i| i + 2),
        _ => trimmed.find(':'),
    };
    let Some(key_end) = key_end else {
        return format!("{indent}<redacted line>");
    };
    let (key, rest) = trimmed.split_at(key_end);
    let Some(value) = rest.strip_prefix(':') else {
        return format!("{indent}<redacted line>");
    };
    let value = value.trim();
    let bare_key = key.trim_matches(|c| c == '"' || c == '\'');
    if value.is_empty()
        || value == "\"\""
        || value == "''"
        || value.starts_with('#')
        || STRUCTURAL_KEYS.contains(&bare_key)
    {
        return line.to_owned();
    }
    let v = value.trim_matches(|c| c == '"' || c == '\'');
    format!(
        "{indent}{key}: <redacted, {} characters>",
        v.chars().count()
    )
}

/// A line with every JWT-shaped word (an API key in Kong's declarative file) replaced by
/// `<redacted JWT>`.
#[must_use]
pub(crate) fn redact_tokens(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("eyJ") {
        out.push_str(&rest[..at]);
        let word = &rest[at..];
        let len = word
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(word.len());
        if word[..len].matches('.').count() == 2 {
            out.push_str("<redacted JWT>");
        } else {
            out.push_str(&word[..len]);
        }
        rest = &word[len..];
    }
    out.push_str(rest);
    out
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
                let shown = match c.redaction {
                    Redaction::Env => redact_env_line(text),
                    Redaction::Yaml => redact_yaml_line(text),
                    Redaction::Values => redact_values_line(text),
                };
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
    fn values_lines_hide_every_value_but_structural_ones() {
        assert_eq!(
            redact_values_line("  jwt-secret: abc123"),
            "  jwt-secret: <redacted, 6 characters>"
        );
        assert_eq!(
            redact_values_line("  \"secret\": 'x y'"),
            "  \"secret\": <redacted, 3 characters>"
        );
        assert_eq!(
            redact_values_line("    secretRef: supabase-jwt"),
            "    secretRef: supabase-jwt"
        );
        assert_eq!(redact_values_line("  name: s"), "  name: s");
        assert_eq!(redact_values_line("    jwtKeys: \"\""), "    jwtKeys: \"\"");
        assert_eq!(
            redact_values_line("      old secret text"),
            "      <redacted line>"
        );
        assert_eq!(redact_values_line("  apikey:"), "  apikey:");
        assert_eq!(
            redact_values_line("  # k: v"),
            "  # <comment, 6 characters>"
        );
    }

    #[test]
    fn redaction_goes_by_content_too() {
        let url = redact_env_line("DATABASE_URL=postgres://app:hunter2-pw@db:5432/postgres");
        assert!(!url.contains("hunter2"), "{url}");
        assert_eq!(
            redact_env_line("SITE_URL=http://localhost:3000"),
            "SITE_URL=http://localhost:3000"
        );
        let yaml =
            redact_yaml_line("      GOTRUE_JWT_SECRET: a-literal-secret-in-the-compose-file-0123");
        assert!(!yaml.contains("literal-secret"), "{yaml}");
        let list = redact_yaml_line("      - DB_URL=postgres://u:p4ss@h/db");
        assert!(!list.contains("p4ss"), "{list}");
        assert_eq!(
            redact_yaml_line("      PGRST_JWT_SECRET: ${JWT_JWKS}"),
            "      PGRST_JWT_SECRET: ${JWT_JWKS}"
        );
        assert_eq!(
            redact_yaml_line("    image: kong:2.8.1"),
            "    image: kong:2.8.1"
        );
    }

    #[test]
    fn redaction_hides_values_but_says_what_they_are() {
        assert_eq!(
            redact_env_line("JWT_SECRET=abcdef"),
            "JWT_SECRET=<redacted, 6 characters>"
        );
        assert_eq!(redact_env_line("SITE_URL=http://x"), "SITE_URL=http://x");
        let keys = r#"JWT_KEYS='[{"kty":"oct","k":"c2VjcmV0","alg":"HS256","key_ops":["sign","verify"]}]'"#;
        let shown = redact_env_line(keys);
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("HS256 legacy sign+verify"), "{shown}");
        assert_eq!(redact_env_line("# comment"), "# comment");
    }

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
