//! The fixes `keyctl doctor` prints as commands, as planners of the one write flow:
//! [`Remint`] (`keyctl token remint`) signs API keys again with the key Auth signs with and
//! writes them wherever they are held; [`JwksRepair`] (`keyctl jwks --repair`) derives
//! `JWT_JWKS` from `JWT_KEYS` again. Neither changes the keys Auth signs with nor the
//! migration record. Edits go through [`Holders`]; this module turns them into a
//! [`Plan`] with the services to restart. Pure: never reads, writes or prints.

mod jwks;
mod remint;

use jiff::Timestamp;

use crate::change;

use crate::error::Result;
use crate::flow::{Decision, Plan, Restarts};
use crate::holders::{Changed, Holders};
use crate::phase::Step;
use crate::project::Project;

pub(crate) use jwks::JwksRepair;
pub(crate) use remint::Remint;

/// What a fix says about itself, besides its file changes.
struct Told {
    step: Step,
    title: String,
    summary: Vec<String>,
    warnings: Vec<String>,
    afterwards: Vec<String>,
    /// The first line of the report, before ". Backup: DIR".
    done: String,
    /// Why there is nothing to do when the edits change no file (after `nothing to do: `).
    unchanged: String,
}

/// The plan of a fix: the changed files, the state file as it is, the services that read a
/// changed value, a fresh backup directory; nothing to do when no file changes.
///
/// # Errors
/// A planned `.env`-style file that breaks SPEC §1 (a bug guard).
fn finish(
    project: &Project,
    holders: &Holders<'_>,
    told: Told,
    now: Timestamp,
) -> Result<Decision> {
    let changed = holders.changes()?;
    if changed.files.is_empty() {
        return Ok(Decision::Nothing(format!(
            "nothing to do: {}",
            told.unchanged
        )));
    }
    let restart = restarts(project, holders, &changed);
    let backup_dir = change::backup_dir(&project.paths, &project.facts.backups, told.step, now);
    Ok(Decision::Apply(Box::new(Plan {
        step: told.step,
        title: told.title,
        summary: told.summary,
        warnings: told.warnings,
        files: changed.files,
        state: project.state()?.clone(),
        restart,
        afterwards: told.afterwards,
        done: format!("{}. Backup: {}", told.done, backup_dir.display()),
        backup_dir,
        next: None,
    })))
}

/// The services whose inputs change: those that interpolate a changed `.env` variable or
/// whose compose block changed ([`crate::migrate::restarts`]), those that read a changed
/// `env_file:` file, and Kong when its mounted file changed. `None` without a compose file.
fn restarts(project: &Project, holders: &Holders<'_>, changed: &Changed) -> Option<Restarts> {
    let compose_file = project.compose_if_present().ok().flatten()?;
    let after = holders.compose.as_ref()?;
    let mut r = crate::migrate::restarts(&project.env, &holders.env, &compose_file.doc, after);
    crate::migrate::add_readers(&mut r, after, &changed.env_files, changed.kong);
    Some(r)
}
