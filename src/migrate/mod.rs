//! The migration and rotation steps of SPEC §3 as a [`Planner`]: what each step does to
//! `.env`, the compose file and the state file, which services must restart, and why a step
//! is refused (a typed [`Refusal`]). Plans are computed in memory from the loaded
//! [`Project`] and validated; only the write flow applies them. Never reads, writes or
//! prints.

mod draft;
mod preflight;
mod restarts;
mod steps;

use jiff::{SignedDuration, Timestamp};

use crate::change;
use crate::engine::Sight;
use crate::error::{Error, Refusal, Result};
use crate::flow::{Decision, Plan, Planner};
use crate::key::Alg;
use crate::lifecycle::{self, Phase, Snapshot};
use crate::live;
use crate::phase::Step;
use crate::project::{self, Project};
use crate::state::{RetiredSecret, State};

use draft::Draft;

pub(crate) use preflight::{BlockerKind, blockers};
pub use preflight::{WIRING, wiring_gaps};
pub(crate) use restarts::add_readers;
pub use restarts::{changed_vars, referenced_vars, restarts};

/// The comment appended above variables keyctl adds to `.env`.
pub const ENV_GROUP: &str = include_str!("../../templates/env-block.txt");

/// The `.env` variable holding realtime's healthcheck token once `ANON_KEY` is asymmetric.
pub const HEALTHCHECK_VAR: &str = crate::trust::HEALTHCHECK_VAR;

/// Variables Kong reads for the opaque API keys (SPEC §2).
pub const KONG_VARS: [&str; 4] = [
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY",
    "ANON_KEY_ASYMMETRIC",
    "SERVICE_ROLE_KEY_ASYMMETRIC",
];

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The next step.
    Next,
    /// Undo the last step.
    Rollback,
    /// Remove the previous key (the last step, as `revoke` runs it).
    RevokePrevious,
    /// Only put the compose wiring back (after a stack upgrade replaced the compose file).
    Rewire,
    /// Start the next rotation after a finished migration (`keyctl rotate`): a new standby key.
    Rotate,
}

/// What a caller decided from an earlier look at the project; re-checked under the lock.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The phase the decision was made in.
    pub phase: Phase,
    /// The key the decision is about (`None`: the legacy secret).
    pub kid: Option<String>,
}

/// A migration request with everything that changes it: the planner of `keyctl migrate`,
/// `migrate rollback|rewire` and `keyctl revoke`.
#[derive(Debug, Clone)]
pub struct Migration {
    /// What to do.
    pub request: Request,
    /// Algorithm of a new key.
    pub alg: Alg,
    /// Skip the waits.
    pub force: bool,
    /// Consent to re-mint `ANON_KEY`/`SERVICE_ROLE_KEY`.
    pub remint: bool,
    /// Only go to this phase (`--to`).
    pub to: Option<Phase>,
    /// What an earlier look saw (`keyctl revoke`).
    pub expect: Option<Expect>,
    /// Proceed although an image is older than SPEC §7's floor (`--allow-old-images`).
    pub allow_old_images: bool,
    /// The running stack, when the command looked (SPEC §6): the gate of the switch and the
    /// revocation.
    pub(crate) sight: Option<Sight>,
    /// Look at the running stack once the project is loaded ([`Planner::observe`]).
    pub(crate) live: bool,
    /// A dry run: show a step that needs consent as it would be, saying consent is needed.
    pub preview: bool,
}

impl Migration {
    /// A request with the defaults (ES256, no force, no consent).
    #[must_use]
    pub fn new(request: Request) -> Migration {
        Migration {
            request,
            alg: Alg::Es256,
            force: false,
            remint: false,
            to: None,
            expect: None,
            allow_old_images: false,
            sight: None,
            live: false,
            preview: false,
        }
    }
}

impl Planner for Migration {
    fn observe(&mut self, project: &Project, loc: &crate::project::Locator) {
        if self.live && self.sight.is_none() {
            self.sight = Some(crate::engine::look(
                &project.compose_project_name(loc.project_name.as_deref()),
            ));
        }
    }

    fn plan(&self, project: &Project, now: Timestamp) -> Result<Decision> {
        let state = project.state()?;
        let snap = project.snapshot()?;
        project::reconcile(project, &snap, state)?;
        if let Some(e) = &self.expect {
            let subject = match self.request {
                Request::Rollback => snap.new_key.as_ref().map(|k| k.kid.clone()),
                _ => snap.previous.as_ref().map(|k| k.kid.clone()),
            };
            if snap.phase != e.phase || subject.as_ref() != Some(&e.kid) {
                return Err(Refusal::ChangedMeanwhile { phase: snap.phase }.into());
            }
        }
        preflight::preflight(project, &snap, state, self.request)?;
        if matches!(
            self.request,
            Request::Next | Request::RevokePrevious | Request::Rotate
        ) && let Some(blocker) = preflight::blockers(project, &snap, self.allow_old_images)
            .into_iter()
            .next()
        {
            return Err(blocker.error);
        }
        if let Some(target) = self.to
            && let Some(msg) = target_check(snap.phase, target)?
        {
            return Ok(Decision::Nothing(msg));
        }
        let gated = matches!(
            (self.request, snap.phase),
            (Request::Next, Phase::DualVerify | Phase::Switched)
                | (Request::RevokePrevious, Phase::Switched)
        );
        let live_warnings = if gated {
            live_gate(project, self)?
        } else {
            Vec::new()
        };
        let decision = plan(project, &snap, state, self, now)?;
        Ok(match decision {
            Decision::Apply(mut p) => {
                p.warnings.extend(live_warnings);
                Decision::Apply(p)
            }
            other => other,
        })
    }

    fn grant_consent(&mut self) -> bool {
        self.remint = true;
        true
    }
}

/// SPEC §6: before switching and before revoking, Auth and every verifier must run what the
/// files say (the previous step's values). Returns the notes and warnings to show.
///
/// # Errors
/// [`Refusal::Stale`] with the exact restart command, unless `--force`.
fn live_gate(project: &Project, m: &Migration) -> Result<Vec<String>> {
    let Some(sight) = &m.sight else {
        return Ok(Vec::new());
    };
    let containers = match sight {
        Sight::Unreachable(why) => {
            return Ok(vec![format!("live checks skipped: {why}")]);
        }
        Sight::Seen { containers, .. } if containers.is_empty() => {
            return Ok(vec![
                "live checks skipped: the engine runs no container of this compose project (name it with --project-name if it runs under another)".into(),
            ]);
        }
        Sight::Seen { containers, .. } => containers,
    };
    let services = live::compare(project, containers);
    let behind = live::gated(&services);
    if behind.is_empty() {
        return Ok(Vec::new());
    }
    let detail = behind
        .iter()
        .map(|s| live::describe(s))
        .collect::<Vec<_>>()
        .join("; ");
    let compose = project.compose_to_edit()?;
    let (auth, verifiers): (Vec<&live::Service>, Vec<&live::Service>) = behind
        .iter()
        .partition(|s| s.role == Some(crate::compose::Role::Auth));
    let names = |list: Vec<&live::Service>| {
        list.into_iter()
            .map(|s| s.service.clone())
            .collect::<Vec<_>>()
    };
    let (verifiers, others) = (names(verifiers), names(auth));
    let command = change::restart_command(compose, &project.env_path, &verifiers, &others);
    if m.force {
        return Ok(vec![format!(
            "--force: {detail}; proceeding although they do not run the files' values"
        )]);
    }
    Err(Refusal::Stale { detail, command }.into())
}

/// With `--to`: `Some(message)` when there is nothing to do; an error when the target is not
/// the next phase.
fn target_check(phase: Phase, target: Phase) -> Result<Option<String>> {
    if phase == target {
        return Ok(Some(format!(
            "nothing to do: the project is already in phase {target}"
        )));
    }
    let next = phase.next();
    if next == target {
        return Ok(None);
    }
    if target < phase {
        return Ok(Some(format!(
            "nothing to do: the project is past {target} (phase {phase})"
        )));
    }
    Err(Error::usage(format!(
        "the project is in phase {phase}; the next step goes to {next}, not {target} (one step per run)"
    )))
}

/// What a step left to assemble into a [`Plan`].
struct Outcome<'p> {
    draft: Draft<'p>,
    state: State,
    step: Step,
    to: Phase,
}

/// Plans what `m.request` does to the project now.
fn plan(
    project: &Project,
    snap: &Snapshot,
    state: &State,
    m: &Migration,
    now: Timestamp,
) -> Result<Decision> {
    let compose = project.compose_to_edit()?;
    let mut draft = Draft::new(project, compose);
    let state = state.clone();
    draft
        .warnings
        .extend(preflight::image_warnings(compose, m.allow_old_images));
    let outcome = match (m.request, snap.phase) {
        (Request::Next, Phase::Legacy) | (Request::Rotate, Phase::Revoked) => {
            steps::publish(draft, state, snap, m, now)?
        }
        (Request::Next, Phase::Revoked) => {
            return Ok(Decision::Nothing(format!(
                "nothing to do: the migration is complete (phase revoked). To rotate to a new key, run keyctl rotate {}",
                project.dir_arg()
            )));
        }
        (Request::Rotate, Phase::Legacy) => {
            return Err(Refusal::WrongPhase {
                phase: snap.phase,
                reason: format!(
                    "the project still signs with the legacy secret: migrate first (keyctl migrate {}); rotate starts the next rotation after a finished migration",
                    project.dir_arg()
                ),
            }
            .into());
        }
        (Request::Rotate, Phase::DualVerify | Phase::Switched) => {
            let step = if snap.phase == Phase::DualVerify {
                "switch signing"
            } else {
                "revoke the previous key"
            };
            return Err(Refusal::WrongPhase {
                phase: snap.phase,
                reason: format!(
                    "a migration or rotation is unfinished (phase {}): {step} first with keyctl migrate {}",
                    snap.phase,
                    project.dir_arg()
                ),
            }
            .into());
        }
        (Request::Next, Phase::DualVerify) => steps::switch(draft, state, snap, m, now)?,
        (Request::Next | Request::RevokePrevious, Phase::Switched) => {
            steps::revoke(draft, state, snap, m, now)?
        }
        (Request::RevokePrevious, Phase::Legacy | Phase::Revoked) => {
            return Ok(Decision::Nothing(
                "nothing to do: the previous key is already revoked; nothing to do".into(),
            ));
        }
        (Request::RevokePrevious, Phase::DualVerify) => {
            return Err(Refusal::WrongPhase {
                phase: snap.phase,
                reason: "the previous key still signs (phase dual-verify); switch first with keyctl migrate, or roll back with keyctl migrate rollback".into(),
            }
            .into());
        }
        (Request::Rollback, Phase::Legacy) => {
            return Ok(Decision::Nothing(
                "nothing to do: the project is legacy: nothing to roll back".into(),
            ));
        }
        (Request::Rollback, Phase::Revoked) => {
            return Err(Refusal::WrongPhase {
                phase: snap.phase,
                reason: "the previous key has been revoked: that step cannot be undone (start a rotation with keyctl migrate instead)".into(),
            }
            .into());
        }
        (Request::Rollback, Phase::DualVerify) => {
            steps::withdraw_standby(draft, state, snap, m, now)?
        }
        (Request::Rollback, Phase::Switched) => steps::unswitch(draft, state, snap, now)?,
        (Request::Rewire, phase) => match steps::rewire(draft, state, snap, phase, now)? {
            Some(outcome) => outcome,
            None if phase == Phase::Legacy => {
                return Ok(Decision::Nothing(
                    "nothing to do: the project is legacy: the first step wires the compose file"
                        .into(),
                ));
            }
            None => {
                return Ok(Decision::Nothing(
                    "nothing to do: every service already reads JWT_KEYS / JWT_JWKS".into(),
                ));
            }
        },
    };
    Ok(Decision::Apply(Box::new(assemble(
        project, snap, outcome, now,
    )?)))
}

/// Turns a step's outcome into a plan: the file changes, restarts, backup and report.
fn assemble(project: &Project, snap: &Snapshot, o: Outcome<'_>, now: Timestamp) -> Result<Plan> {
    let Outcome {
        draft,
        mut state,
        step,
        to,
    } = o;
    invariant(project, snap, &draft, step, now)?;
    let compose = draft.compose_file;
    let changed = draft.files.changes()?;
    let files = changed.files;
    let mut restart = restarts(&project.env, draft.env(), &compose.doc, draft.compose());
    restarts::add_readers(
        &mut restart,
        draft.compose(),
        &changed.env_files,
        changed.kong,
    );
    let backup_dir = change::backup_dir(&project.paths, &project.facts.backups, step, now);
    if step == Step::Revoked && snap.previous.as_ref().is_some_and(|p| p.kid.is_none()) {
        state
            .retired_secrets
            .push(retired_record(project, &backup_dir, now));
    }
    let next = next_step_hint(to, &state, project)?;
    Ok(Plan {
        step,
        title: format!(
            "{}: {} -> {to} ({step})",
            project.env_path.display(),
            snap.phase
        ),
        summary: draft.summary,
        warnings: draft.warnings,
        files,
        state,
        restart: Some(restart),
        afterwards: draft.afterwards,
        done: format!(
            "done: {} is now in phase {to}. Backup: {}",
            project.env_path.display(),
            backup_dir.display()
        ),
        backup_dir,
        next,
    })
}

/// The zero-downtime invariant on the planned files: every token Auth issued or may issue
/// during the step, and every API key clients hold (but those re-minted with consent),
/// verifies at every service after it.
///
/// # Errors
/// [`Refusal::WouldBreak`] naming the first service, variable and token kind.
fn invariant(
    project: &Project,
    snap: &Snapshot,
    draft: &Draft<'_>,
    step: Step,
    now: Timestamp,
) -> Result<()> {
    let before = match &snap.signer {
        Some(s) => s.clone(),
        None => draft::legacy_slot(project)?,
    };
    let after = crate::keyset::parse_private_set(
        draft.env().get("JWT_KEYS").unwrap_or("[]"),
        "planned JWT_KEYS",
    )
    .ok()
    .and_then(|keys| keys.into_iter().find(crate::jwk::Jwk::can_sign))
    .map(|k| lifecycle::Slot {
        kid: if crate::keyset::is_legacy(&k) {
            None
        } else {
            k.kid
        },
        material: k.material,
    });
    let mut slots = vec![(before, true)];
    slots.extend(after.map(|a| (a, false)));
    if snap.phase == Phase::Switched && step != Step::Revoked {
        slots.extend(snap.previous.clone().map(|p| (p, true)));
    }
    let issuers: Vec<crate::trust::Issuer<'_>> = slots
        .iter()
        .map(|(s, before)| crate::trust::Issuer {
            material: &s.material,
            kid: s.kid.as_deref(),
            label: s.label(),
            before: *before,
        })
        .collect();
    let current = project.sources();
    crate::trust::check_invariant(&current, &draft.sources(), &issuers, &draft.consented, now)
        .map_err(crate::trust::refusal)
}

/// The state file's record of a `JWT_SECRET` replaced by this run: where its value stays.
#[must_use]
pub fn retired_record(
    project: &Project,
    backup_dir: &std::path::Path,
    now: Timestamp,
) -> RetiredSecret {
    let name = project
        .env_path
        .file_name()
        .map_or_else(|| ".env".into(), |n| n.to_string_lossy().into_owned());
    let held = backup_dir.join(name);
    let secret = project.secret();
    RetiredSecret {
        at: now,
        backup: held
            .strip_prefix(&project.paths.project)
            .map_or_else(|_| held.display().to_string(), |p| p.display().to_string()),
        var: secret.as_ref().and_then(|s| s.env_var().map(str::to_owned)),
        sha256: secret.map(|s| crate::fsio::sha256_hex(s.value.as_bytes())),
    }
}

/// Checks a wait; `Ok(())` when it is over or forced (with a warning).
///
/// # Errors
/// [`Refusal::NotDue`] with the time left, or [`Refusal::NoRecord`].
fn wait(
    since: Option<Timestamp>,
    wait: SignedDuration,
    now: Timestamp,
    force: bool,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let Some(since) = since else {
        if force {
            warnings.push(format!(
                "--force: no record of when this phase began; {what}"
            ));
            return Ok(());
        }
        return Err(Refusal::NoRecord { what: what.into() }.into());
    };
    let at = since + wait;
    if now >= at {
        return Ok(());
    }
    let remaining = now.duration_until(at);
    if force {
        warnings.push(format!(
            "--force: skipping the wait ({} left) for {what}",
            lifecycle::human(remaining)
        ));
        return Ok(());
    }
    Err(Refusal::NotDue {
        what: what.to_owned(),
        at,
        remaining,
    }
    .into())
}

/// The next step and when it is due, after reaching `phase`.
fn next_step_hint(phase: Phase, state: &State, project: &Project) -> Result<Option<String>> {
    let dir = project.dir_arg();
    let since = state.events.last().map(|e| e.at);
    Ok(match phase {
        Phase::DualVerify => since.map(|t| {
            format!(
                "switch signing with `keyctl migrate {dir}` after {} (20 minutes from now)",
                t + lifecycle::PUBLISH_WAIT
            )
        }),
        Phase::Switched => {
            let expiry = project.jwt_expiry()?;
            since.and_then(|t| lifecycle::due_at(Phase::Switched, t, expiry)).map(|at| {
                format!("revoke the previous key with `keyctl migrate {dir} --remint-api-keys` after {at} (JWT_EXPIRY + 20 minutes)")
            })
        }
        Phase::Legacy | Phase::Revoked => None,
    })
}
