//! The one write flow every command that changes a project goes through (migrate, rollback,
//! rewire, revoke, import, and any later writer):
//! load → plan → show → confirm → lock → check nothing changed → apply → report (an
//! interrupted run is recovered under the lock first).
//!
//! A command brings a [`Planner`], a pure function from a loaded [`Project`] to a [`Plan`];
//! this module owns everything around it: the lock, recovery of an interrupted run, the
//! redacted diff, the prompts, [`change::apply`] and the closing report. A refusal or a "no"
//! at the prompt leaves no trace (no lock file, no `.keyctl/`).

use std::path::PathBuf;

use jiff::Timestamp;

use crate::change::{self, FileChange};
use crate::clock;
use crate::error::{Error, Refusal, Result};
use crate::fsio;
use crate::phase::Step;
use crate::project::{Locator, Project};
use crate::state::State;
use crate::ui;

/// How long a run waits for another run's lock before giving up (exit 4).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Services to restart after a step: verifiers first, then the others (Auth last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restarts {
    /// PostgREST, Realtime, Storage, Functions.
    pub verifiers: Vec<String>,
    /// Everything else, Auth last.
    pub others: Vec<String>,
}

impl Restarts {
    /// Whether nothing needs a restart.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.verifiers.is_empty() && self.others.is_empty()
    }
}

/// A change ready to show and apply.
#[derive(Debug)]
pub(crate) struct Plan {
    /// What is done (names the backup directory and the journal).
    pub step: Step,
    /// The headline shown above the summary.
    pub title: String,
    /// What happens, in plain words.
    pub summary: Vec<String>,
    /// Warnings to show before confirming.
    pub warnings: Vec<String>,
    /// The files' old and new texts.
    pub files: Vec<FileChange>,
    /// The state after the step.
    pub state: State,
    /// Services to restart; `None` when there is no compose file to tell.
    pub restart: Option<Restarts>,
    /// What the operator must do besides restarting.
    pub afterwards: Vec<String>,
    /// The backup directory `apply` will use.
    pub backup_dir: PathBuf,
    /// The first line of the report once applied.
    pub done: String,
    /// The next step, when there is one to announce.
    pub next: Option<String>,
}

/// What a planner concluded.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Nothing to do: the full line to print (`nothing to do: …`).
    Nothing(String),
    /// A change to show and apply.
    Apply(Box<Plan>),
}

/// A pure planner: reads only the loaded project, never the disk, never prints.
pub(crate) trait Planner {
    /// Plans the change against `project` at `now`. Refusals are `Err(Error::Refused(_))`.
    ///
    /// # Errors
    /// Bad input (exit 2) or a refusal (exit 3).
    fn plan(&self, project: &Project, now: Timestamp) -> Result<Decision>;

    /// Looks, once, at what the plan depends on outside the files (the running containers,
    /// SPEC §6), right after the project is loaded. Default: nothing.
    fn observe(&mut self, _project: &Project, _loc: &Locator) {}

    /// Records the consent asked for at the prompt after a [`Refusal::NeedsConsent`];
    /// returns `false` when this planner has no consent to give.
    fn grant_consent(&mut self) -> bool {
        false
    }

    /// The question asked before applying.
    fn question(&self) -> &'static str {
        "Apply this step?"
    }
}

/// How the user wants the change applied.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mode {
    /// Apply without asking (never prompts).
    pub yes: bool,
    /// Show the plan and the diff, write nothing.
    pub dry_run: bool,
    /// After writing, run the restart and confirm the containers run the new values.
    pub restart: bool,
    /// Report as JSON on stdout (the plan and diff go to stderr).
    pub json: bool,
}

/// Runs `planner` on the project at `loc` through the whole flow.
///
/// The plan is made, shown and confirmed before the lock is taken, so a refusal, a missing
/// terminal or a "no" at the prompt leaves no trace (no lock file, no `.keyctl/`). Under the
/// lock the files the plan was made from are read again: if any changed meanwhile (another
/// run, an editor), nothing is written. Only the recovery of an interrupted run plans under
/// the lock, since recovering writes.
///
/// # Errors
/// Whatever the planner refuses, no confirmation (exit 2), the lock (4), I/O (4), the
/// project changed while confirming (3).
pub(crate) fn run(loc: &Locator, mode: Mode, planner: &mut dyn Planner) -> Result<()> {
    let now = clock::now()?;
    let mut project = Project::load(loc, now)?;
    if project.helm().is_some() {
        if mode.restart {
            return Err(Error::usage(
                "--restart drives docker compose; on Kubernetes run the kubectl and helm commands keyctl prints after the step",
            ));
        }
    } else {
        planner.observe(&project, loc);
    }
    if mode.dry_run {
        recover_pending(&project, true)?;
        if let Some(plan) = look(&project, planner, mode, now)? {
            show(&project, &plan, mode.json);
            ui::note("dry run: nothing was written");
        }
        return Ok(());
    }
    if project.state()?.pending.is_some() {
        confirmable(mode.yes)?;
        let _lock = take_lock(&project)?;
        project = Project::load(loc, now)?;
        if recover_pending(&project, false)? {
            project = Project::load(loc, now)?;
        }
        let Some(plan) = look(&project, planner, mode, now)? else {
            return Ok(());
        };
        let private = show_and_confirm(&project, &plan, planner, mode)?;
        return finish(loc, &project, &plan, mode, now, private);
    }
    let seen = inputs(&project);
    let Some(plan) = look(&project, planner, mode, now)? else {
        return Ok(());
    };
    confirmable(mode.yes)?;
    let private = show_and_confirm(&project, &plan, planner, mode)?;
    let _lock = take_lock(&project)?;
    if let Some((path, _)) = inputs(&project)
        .into_iter()
        .zip(&seen)
        .find(|(now, then)| now != *then)
        .map(|(now, _)| now)
    {
        return Err(Refusal::EditedMeanwhile { path }.into());
    }
    finish(loc, &project, &plan, mode, now, private)
}

/// Shows the plan and asks for it (and, on a terminal, for `chmod 600` of a readable `.env`,
/// applied with the step: the returned flag).
fn show_and_confirm(
    project: &Project,
    plan: &Plan,
    planner: &dyn Planner,
    mode: Mode,
) -> Result<bool> {
    show(project, plan, mode.json);
    confirm(mode.yes, planner.question())?;
    Ok(ask_private_mode(project, mode))
}

/// Applies a confirmed plan (under the lock), reports it and runs the restart if asked.
fn finish(
    loc: &Locator,
    project: &Project,
    plan: &Plan,
    mode: Mode,
    now: Timestamp,
    private: bool,
) -> Result<()> {
    change::apply(
        &project.paths,
        plan.step,
        &plan.files,
        plan.state.clone(),
        &plan.backup_dir,
        now,
    )?;
    if private {
        fsio::set_mode(project.keys_file(), 0o600)?;
        ui::note("mode set to 600");
    }
    if mode.json {
        ui::out(&report_json(project, plan).to_string());
    } else {
        ui::out(&report(project, plan));
    }
    if mode.restart
        && let Some(r) = &plan.restart
    {
        crate::restart::run(loc, now, r)?;
    }
    Ok(())
}

/// What every file a plan may be made from holds (`None` when absent or unreadable), the
/// state file included: equal before and under the lock means the plan still stands.
fn inputs(project: &Project) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut files = project.writable_files();
    files.push(project.paths.state.clone());
    files
        .into_iter()
        .map(|f| {
            let bytes = fsio::read_bytes(&f).ok();
            (f, bytes)
        })
        .collect()
}

/// Plans once; asks for consent on a terminal when the planner can take it. `None` when
/// there is nothing to do (said on stdout).
fn look(
    project: &Project,
    planner: &mut dyn Planner,
    mode: Mode,
    now: Timestamp,
) -> Result<Option<Box<Plan>>> {
    if let Some(helm) = project.helm() {
        helm.refuse_writes()?;
    }
    let decision = match planner.plan(project, now) {
        Err(Error::Refused(Refusal::NeedsConsent { vars, key, signer }))
            if project.helm().is_some() =>
        {
            let helm = project
                .helm()
                .map(|h| vars.iter().map(|v| h.speak(v)).collect());
            Err(Error::Refused(Refusal::NeedsConsent {
                vars: helm.unwrap_or(vars),
                key,
                signer,
            }))
        }
        Err(e) => Err(match project.helm() {
            Some(helm) => spoken(helm, e),
            None => e,
        }),
        other => other,
    };
    let decision = match decision {
        Err(Error::Refused(Refusal::NeedsConsent { vars, key, signer }))
            if !mode.yes && !mode.dry_run && ui::interactive() =>
        {
            ui::warn(&format!(
                "{} signed by {key}: revoking it breaks every client that holds them; they can be re-minted with {signer}",
                vars.join(" and ")
            ));
            let refusal = Refusal::NeedsConsent { vars, key, signer };
            if ui::confirm("Re-mint ANON_KEY and SERVICE_ROLE_KEY now?") == Some(true)
                && planner.grant_consent()
            {
                planner.plan(project, now)?
            } else {
                return Err(refusal.into());
            }
        }
        other => other?,
    };
    match decision {
        Decision::Nothing(line) => {
            if mode.json {
                ui::out(&serde_json::json!({"done": false, "nothing_to_do": line}).to_string());
            } else {
                ui::out(&line);
            }
            Ok(None)
        }
        Decision::Apply(plan) => onto_files(project, plan).map(Some),
    }
}

/// A refusal about a chart project in its own words (`helm::Model::speak`): places and
/// reasons name the values file and the Secret, not the rendering.
fn spoken(helm: &crate::helm::Model, e: Error) -> Error {
    match e {
        Error::Refused(Refusal::Precondition { place, reason }) => {
            Error::Refused(Refusal::Precondition {
                place: helm.speak(&place),
                reason: helm.speak(&reason),
            })
        }
        Error::Refused(Refusal::ImageTooOld {
            place,
            service,
            image,
            need,
            why,
        }) => Error::Refused(Refusal::ImageTooOld {
            place: helm.speak(&place),
            service,
            image,
            need,
            why,
        }),
        Error::BadInput { place, message } => Error::BadInput {
            place: helm.speak(&place),
            message: helm.speak(&message),
        },
        other => other,
    }
}

/// A chart project's plan, made on the chart's rendering, carried back to the values file
/// and the Secret manifest (`helm::translate`); any other plan as it is.
fn onto_files(project: &Project, mut plan: Box<Plan>) -> Result<Box<Plan>> {
    if let (Some(helm), Some(rendered)) = (project.helm(), project.compose_path()) {
        plan.files = crate::helm::translate(helm, &plan.files, &project.env_path, rendered)?;
        let speak = |t: &mut String| *t = helm.speak(t);
        speak(&mut plan.title);
        speak(&mut plan.done);
        plan.summary.iter_mut().for_each(speak);
        plan.warnings.iter_mut().for_each(speak);
        plan.afterwards.iter_mut().for_each(speak);
        plan.next.iter_mut().for_each(speak);
        if helm.home("JWT_SECRET")
            == Some(&crate::helm::Home::Inline(
                crate::helm::Block::Jwt,
                "secret",
            ))
        {
            for a in &mut plan.afterwards {
                *a = a.replace(
                    "the old secret stays only in keyctl's backup",
                    "the old secret stays in keyctl's backup and in Helm's release history (helm history; each revision keeps its values)",
                );
            }
        }
        let inline = helm.home("JWT_KEYS")
            == Some(&crate::helm::Home::Inline(
                crate::helm::Block::Apikey,
                "jwtKeys",
            ));
        if inline
            && !helm.apikey_moves()
            && plan
                .files
                .iter()
                .any(|f| f.changes() && f.path == helm.loc.values)
        {
            plan.warnings.push(format!(
                "the private keys go inline into {} (secret.apikey.jwtKeys): helm keeps the values of every release revision in the cluster, so they stay readable there after revocation; a Secret of your own (secret.apikey.secretRef, keyctl --k8s-secret) keeps them out",
                helm.loc.values.display()
            ));
        }
    }
    Ok(plan)
}

/// The plan, the redacted diff and the warnings.
fn show(project: &Project, plan: &Plan, json: bool) {
    let mut text = format!("{}\n", plan.title);
    for line in &plan.summary {
        text.push_str(&format!("  - {line}\n"));
    }
    let shown = change::diff(&plan.files);
    if shown.is_empty() {
        text.push_str("no file changes\n");
    } else {
        text.push('\n');
        text.push_str(&shown);
    }
    if json {
        ui::err_out(&text);
    } else {
        ui::out(&text);
    }
    for w in &plan.warnings {
        ui::warn(w);
    }
    if project.facts.env_in_git {
        ui::warn(&format!(
            "{} is tracked by git: the private keys keyctl writes would be committed; add it to .gitignore and run git rm --cached on it",
            project.keys_file().display()
        ));
    }
    if let Some(mode) = readable_mode(project) {
        ui::warn(&format!(
            "{} is readable by group or others (mode {mode:o}) and will hold private keys: chmod 600 it",
            project.keys_file().display()
        ));
    }
}

fn readable_mode(project: &Project) -> Option<u32> {
    project.facts.env_mode.filter(|m| m & 0o077 != 0)
}

/// The offered fix for a readable `.env`, asked once the step is confirmed on a terminal
/// (applied with the step).
fn ask_private_mode(project: &Project, mode: Mode) -> bool {
    readable_mode(project).is_some()
        && !mode.yes
        && ui::interactive()
        && ui::confirm(&format!(
            "Make {} readable by its owner only (mode 600) too?",
            project.keys_file().display()
        )) == Some(true)
}

/// What was done, as JSON: the step, the files written, the backup, the services to restart
/// (verifiers first), what to do afterwards and next.
fn report_json(project: &Project, plan: &Plan) -> serde_json::Value {
    let restart = plan
        .restart
        .as_ref()
        .map(|r| match kubernetes_commands(project, plan, r) {
            Some(commands) => serde_json::json!({"verifiers": r.verifiers, "others": r.others,
            "command": commands.join(" && "), "commands": commands,
            "notes": project.helm().map(|h| crate::helm::rollout_notes(h, &plan.files))}),
            None => {
                serde_json::json!({"verifiers": r.verifiers, "others": r.others, "command": project
            .compose_if_present()
            .ok()
            .flatten()
            .map(|c| change::restart_command(c, &project.env_path, &r.verifiers, &r.others))})
            }
        });
    serde_json::json!({
        "done": true,
        "step": plan.step,
        "files": plan.files.iter().filter(|f| f.changes()).map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
        "backup": plan.backup_dir.display().to_string(),
        "restart": restart,
        "afterwards": plan.afterwards,
        "next": plan.next,
    })
}

/// What was done, what to restart, what to do next.
fn report(project: &Project, plan: &Plan) -> String {
    let mut done = format!("{}\n", plan.done);
    if let Some(commands) = plan
        .restart
        .as_ref()
        .and_then(|r| kubernetes_commands(project, plan, r))
    {
        done.push_str("roll it out (the Secret and the release, then the verifiers, Auth last):\n");
        for c in commands {
            done.push_str(&format!("  {c}\n"));
        }
        if let Some(helm) = project.helm() {
            for n in crate::helm::rollout_notes(helm, &plan.files) {
                done.push_str(&format!("note: {n}\n"));
            }
        }
        for a in &plan.afterwards {
            done.push_str(&format!("then: {a}\n"));
        }
        if let Some(next) = &plan.next {
            done.push_str(&format!("next: {next}\n"));
        }
        return done;
    }
    match (&plan.restart, project.compose_if_present()) {
        (Some(r), _) if r.is_empty() => {
            done.push_str("no service reads a changed value: nothing to restart\n");
        }
        (Some(r), Ok(Some(compose))) => done.push_str(&format!(
            "restart the services whose inputs changed (verifiers first):\n  {}\n",
            change::restart_command(compose, &project.env_path, &r.verifiers, &r.others)
        )),
        _ => done.push_str(
            "restart every service that reads JWT_KEYS, JWT_JWKS or JWT_SECRET (verifiers first, auth last)\n",
        ),
    }
    for a in &plan.afterwards {
        done.push_str(&format!("then: {a}\n"));
    }
    if let Some(next) = &plan.next {
        done.push_str(&format!("next: {next}\n"));
    }
    done
}

/// On a chart project: the commands that roll the step out (`helm::restart_commands`).
fn kubernetes_commands(project: &Project, plan: &Plan, r: &Restarts) -> Option<Vec<String>> {
    let helm = project.helm()?;
    let changed: Vec<&std::path::Path> = plan
        .files
        .iter()
        .filter(|f| f.changes())
        .map(|f| f.path.as_path())
        .collect();
    Some(crate::helm::restart_commands(helm, &changed, r))
}

/// Takes the project lock (waiting briefly), reporting a stale one left by a killed run, and
/// removes the temporary files such a run left: in `.keyctl/` and its backup directories,
/// and beside every file a step may write (beside a symbolic link's target, where its
/// temporary file is made), only those of that file.
fn take_lock(project: &Project) -> Result<fsio::Lock> {
    let paths = &project.paths;
    let (lock, stale) = fsio::lock(&paths.lock, LOCK_WAIT)?;
    if let Some(note) = stale {
        ui::note(&note);
    }
    let mut temps = fsio::remove_stale_temps(&paths.dir, None)?;
    let backups = paths.dir.join("backups");
    for run in fsio::entry_names(&backups) {
        temps += fsio::remove_stale_temps(&backups.join(run), None)?;
    }
    let mut beside: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for file in project.writable_files() {
        let Ok(target) = fsio::write_target(&file) else {
            continue;
        };
        let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let dir = crate::project::dir_of(&target).to_path_buf();
        match beside.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, names)) => names.push(name),
            None => beside.push((dir, vec![name])),
        }
    }
    for (dir, names) in &beside {
        temps += fsio::remove_stale_temps(dir, Some(names))?;
    }
    if temps > 0 {
        ui::note(&format!(
            "removed {temps} temporary file(s) left by an interrupted keyctl run"
        ));
    }
    Ok(lock)
}

/// Undoes an interrupted run recorded in the state file (under the lock). Returns whether
/// files changed, so the caller reads them again. A dry run refuses instead.
fn recover_pending(project: &Project, dry_run: bool) -> Result<bool> {
    let mut state = project.state()?.clone();
    if state.pending.is_none() {
        return Ok(false);
    }
    if dry_run {
        return Err(Refusal::Interrupted {
            state: project.paths.state.clone(),
        }
        .into());
    }
    // The journal may name the compose file too.
    let writable = project.writable_files();
    let files: Vec<&std::path::Path> = writable.iter().map(PathBuf::as_path).collect();
    if let Some(note) = change::recover(&project.paths, &files, &mut state)? {
        ui::warn(&note);
    }
    Ok(true)
}

/// Whether a change can be confirmed: `--yes`, or a terminal to ask on.
///
/// # Errors
/// No terminal and no `--yes` (exit 2).
fn confirmable(yes: bool) -> Result<()> {
    if yes || ui::interactive() {
        return Ok(());
    }
    Err(Error::usage(
        "no terminal to confirm on: pass --yes to apply, or --dry-run to only show the plan; nothing was written",
    ))
}

/// Asks `question` on a terminal unless `--yes`; without a terminal, refuses (exit 2).
///
/// # Errors
/// No terminal and no `--yes`, or the user said no.
pub(crate) fn confirm(yes: bool, question: &str) -> Result<()> {
    confirmable(yes)?;
    if yes {
        return Ok(());
    }
    match ui::confirm(question) {
        Some(true) => Ok(()),
        _ => Err(Error::usage("cancelled; nothing was written")),
    }
}
