//! `keyctl migrate` (one step of SPEC §3), `migrate status`, `migrate plan` and
//! `migrate rollback`; also the shared flow — lock, recover, plan, show, confirm, apply —
//! that `keyctl revoke` runs too.

use clap::{Args, Subcommand, ValueEnum};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::change::{self, diff};
use crate::clock;
use crate::cmd::ProjectArgs;
use crate::error::{Error, Result};
use crate::fsio;
use crate::key::Alg;
use crate::lifecycle::{self, Phase, Snapshot};
use crate::migrate::{self, Options, Planned, Refusal, Request, Stack};
use crate::state::State;
use crate::ui;

/// How long a run waits for another run's lock before giving up (exit 4).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// A phase named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// New key published, previous key signing.
    DualVerify,
    /// New key signing.
    Switched,
    /// Previous key revoked.
    Revoked,
}

impl Target {
    fn phase(self) -> Phase {
        match self {
            Target::DualVerify => Phase::DualVerify,
            Target::Switched => Phase::Switched,
            Target::Revoked => Phase::Revoked,
        }
    }
}

/// Flags of every command that writes.
#[derive(Debug, Clone, Args)]
pub struct WriteArgs {
    /// Apply without asking (for CI); never prompts.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show the plan and the diff, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Skip a wait that is not over (prints a warning).
    #[arg(long)]
    pub force: bool,
    /// Consent to re-mint ANON_KEY and SERVICE_ROLE_KEY when the key that signed them is revoked.
    #[arg(long)]
    pub remint_api_keys: bool,
}

/// Arguments of `keyctl migrate`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Steps (one per run): legacy -> dual-verify -> switched -> revoked; once asymmetric, the next run starts a rotation.\nExamples:\n  keyctl migrate status --project /srv/supabase\n  keyctl migrate --project /srv/supabase --dry-run\n  keyctl migrate --project /srv/supabase --yes\n  KEYCTL_NOW=2026-12-01T14:00:00Z keyctl migrate --project ./rehearsal --yes --remint-api-keys"
)]
pub struct MigrateArgs {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    write: WriteArgs,
    /// Algorithm of the new key (ES256 default; EdDSA is not verified by Edge Functions or supabase-js).
    #[arg(long, value_parser = |s: &str| s.parse::<Alg>())]
    alg: Option<Alg>,
    /// Only go to this phase: nothing to do (exit 0) when the project is already there.
    #[arg(long, value_enum)]
    to: Option<Target>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// The phase (derived from the files), each key's state, the next step and its timer.
    Status {
        #[command(flatten)]
        project: ProjectArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The whole remaining route, step by step.
    Plan {
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Put back the compose lines that feed JWT_KEYS/JWT_JWKS (after an upgrade replaced the compose file); no key changes.
    Rewire {
        #[command(flatten)]
        project: ProjectArgs,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Undo the last step while that is safe (dual-verify -> previous, switched -> dual-verify).
    Rollback {
        #[command(flatten)]
        project: ProjectArgs,
        #[command(flatten)]
        write: WriteArgs,
    },
}

impl MigrateArgs {
    /// Runs the command.
    ///
    /// # Errors
    /// Bad input (2), refusals (3), I/O and locks (4).
    pub fn run(self) -> Result<()> {
        match self.action {
            Some(Action::Status { project, json }) => status(&project, json),
            Some(Action::Plan { project }) => route(&project),
            Some(Action::Rewire { project, write }) => {
                execute(&project, &write, Request::Rewire, Alg::Es256, None)
            }
            Some(Action::Rollback { project, write }) => {
                execute(&project, &write, Request::Rollback, Alg::Es256, None)
            }
            None => execute(
                &self.project,
                &self.write,
                Request::Next,
                self.alg.unwrap_or(Alg::Es256),
                self.to.map(Target::phase),
            ),
        }
    }
}

fn load(project: &ProjectArgs, now: Timestamp) -> Result<(Stack, State)> {
    let stack = Stack::load(project)?;
    let state = change::load_state(&stack.paths, now)?;
    Ok((stack, state))
}

/// What a caller decided from an unlocked look at the project; re-checked under the lock.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The phase the decision was made in.
    pub phase: Phase,
    /// The key the decision is about (`None`: the legacy secret).
    pub kid: Option<String>,
}

/// Lock, recover an interrupted run, plan `request`, show it, confirm, apply.
///
/// # Errors
/// As for `migrate`.
pub fn execute(
    project: &ProjectArgs,
    write: &WriteArgs,
    request: Request,
    alg: Alg,
    to: Option<Phase>,
) -> Result<()> {
    execute_expecting(project, write, request, alg, to, None)
}

/// [`execute`], refusing when the project under the lock is not what `expect` saw.
///
/// # Errors
/// As for `migrate`; exit 3 when the project changed in between.
pub fn execute_expecting(
    project: &ProjectArgs,
    write: &WriteArgs,
    request: Request,
    alg: Alg,
    to: Option<Phase>,
    expect: Option<Expect>,
) -> Result<()> {
    let now = clock::now()?;
    let (mut stack, mut state) = load(project, now)?;
    if !write.dry_run && state.pending.is_none() {
        // A first look without the lock: a refusal leaves no trace (no lock, no .keyctl/).
        match decide(
            &stack,
            &state,
            write,
            request,
            alg,
            to,
            expect.as_ref(),
            now,
            false,
        )? {
            Outcome::Finished => return Ok(()),
            Outcome::Ask | Outcome::Step(_) => {}
        }
    }
    let _lock = if write.dry_run {
        None
    } else {
        let lock = take_lock(&stack.paths)?;
        // Read again under the lock: another run may have finished while we waited.
        (stack, state) = load(project, now)?;
        Some(lock)
    };
    let files = [
        stack.project.env_path.as_path(),
        stack.compose_path.as_path(),
    ];
    if recover_pending(&stack.paths, &files, &mut state, write.dry_run)? {
        (stack, state) = load(project, now)?;
    }
    let plan = match decide(
        &stack,
        &state,
        write,
        request,
        alg,
        to,
        expect.as_ref(),
        now,
        true,
    )? {
        Outcome::Finished => return Ok(()),
        Outcome::Ask => unreachable!("consent is asked for under the lock"),
        Outcome::Step(plan) => plan,
    };
    let mut text = format!(
        "{}: {} -> {} ({})\n",
        stack.project.env_path.display(),
        plan.from,
        plan.to,
        plan.step
    );
    for line in &plan.summary {
        text.push_str(&format!("  - {line}\n"));
    }
    let shown = diff(&plan.files);
    if shown.is_empty() {
        text.push_str("no file changes\n");
    } else {
        text.push('\n');
        text.push_str(&shown);
    }
    ui::out(&text);
    for w in &plan.warnings {
        ui::warn(w);
    }
    if crate::project::tracked_by_git(&stack.project.env_path) {
        ui::warn(&format!(
            "{} is tracked by git: the private keys keyctl writes would be committed; add it to .gitignore and run git rm --cached on it",
            stack.project.env_path.display()
        ));
    }
    let readable = fsio::mode(&stack.project.env_path).filter(|m| m & 0o077 != 0);
    if let Some(mode) = readable {
        ui::warn(&format!(
            "{} is readable by group or others (mode {mode:o}) and will hold private keys: chmod 600 it",
            stack.project.env_path.display()
        ));
    }
    if write.dry_run {
        ui::note("dry run: nothing was written");
        return Ok(());
    }
    confirm(write.yes, "Apply this step?")?;
    // The offered fix for a readable .env, once the step is confirmed.
    if readable.is_some()
        && !write.yes
        && ui::interactive()
        && ui::confirm("Make the .env readable by its owner only (mode 600) too?") == Some(true)
    {
        fsio::set_mode(&stack.project.env_path, 0o600)?;
        ui::note("mode set to 600");
    }
    change::apply(
        &stack.paths,
        plan.step,
        &plan.files,
        plan.state.clone(),
        &plan.backup_dir,
        now,
    )?;
    let mut done = format!(
        "done: {} is now in phase {}. Backup: {}\n",
        stack.project.env_path.display(),
        plan.to,
        plan.backup_dir.display()
    );
    let (verifiers, others) = &plan.restart;
    if verifiers.is_empty() && others.is_empty() {
        done.push_str("no service reads a changed value: nothing to restart\n");
    } else {
        done.push_str(&format!(
            "restart the services whose inputs changed (verifiers first):\n  {}\n",
            change::restart_command(
                &stack.compose_path,
                &stack.project.env_path,
                verifiers,
                others
            )
        ));
    }
    for a in &plan.afterwards {
        done.push_str(&format!("then: {a}\n"));
    }
    if let Ok(Some(next)) = next_step_hint(plan.to, &plan.state, &stack) {
        done.push_str(&format!("next: {next}\n"));
    }
    ui::out(&done);
    Ok(())
}

/// What a look at the project concluded.
enum Outcome {
    /// Reported already (nothing to do).
    Finished,
    /// Consent must be asked for, under the lock.
    Ask,
    /// A step to show and apply.
    Step(Box<migrate::Plan>),
}

/// Everything that decides a step, read-only: derive the phase, check the record, the
/// expectation and the preconditions, plan. Refusals are errors.
#[allow(clippy::too_many_arguments)]
fn decide(
    stack: &Stack,
    state: &State,
    write: &WriteArgs,
    request: Request,
    alg: Alg,
    to: Option<Phase>,
    expect: Option<&Expect>,
    now: Timestamp,
    locked: bool,
) -> Result<Outcome> {
    let snap = stack.snapshot(state)?;
    migrate::reconcile(stack, &snap, state)?;
    if let Some(e) = expect {
        let subject = match request {
            Request::Rollback => snap.new_key.as_ref().map(|k| k.kid.clone()),
            _ => snap.previous.as_ref().map(|k| k.kid.clone()),
        };
        if snap.phase != e.phase || subject.as_ref() != Some(&e.kid) {
            return Err(Error::Unsafe(format!(
                "the project changed while keyctl waited for the lock (now in phase {}); nothing was written, run again",
                snap.phase
            )));
        }
    }
    migrate::preflight(stack, &snap, state, request)?;
    if let Some(target) = to
        && let Some(msg) = target_check(snap.phase, target)?
    {
        ui::out(&msg);
        return Ok(Outcome::Finished);
    }
    let mut opts = Options {
        alg,
        force: write.force,
        remint: write.remint_api_keys,
    };
    let mut planned = migrate::plan(stack, &snap, state, request, opts, now)?;
    if let Planned::Refused(Refusal::NeedsConsent(why)) = &planned
        && !write.yes
        && !write.dry_run
        && ui::interactive()
    {
        if !locked {
            // Ask once the lock is held.
            return Ok(Outcome::Ask);
        }
        ui::warn(why);
        if ui::confirm("Re-mint ANON_KEY and SERVICE_ROLE_KEY now?") == Some(true) {
            opts.remint = true;
            planned = migrate::plan(stack, &snap, state, request, opts, now)?;
        }
    }
    let plan = match planned {
        Planned::Nothing(why) => {
            ui::out(&format!("nothing to do: {why}"));
            return Ok(Outcome::Finished);
        }
        Planned::Refused(Refusal::NotDue {
            what,
            at,
            remaining,
        }) => {
            return Err(Error::Unsafe(format!(
                "not yet: {what}; allowed at {at} ({} left). Nothing was written; --force skips the wait",
                lifecycle::human(remaining)
            )));
        }
        Planned::Refused(Refusal::NeedsConsent(why)) => {
            return Err(Error::Unsafe(format!("{why}. Nothing was written")));
        }
        Planned::Step(plan) => plan,
    };
    Ok(Outcome::Step(plan))
}

/// Takes the project lock (waiting briefly), reporting a stale one left by a killed run, and
/// removes the temporary files such a run left. Every writing command starts here.
///
/// # Errors
/// Another live run holds the lock (exit 4), I/O.
pub fn take_lock(paths: &change::Paths) -> Result<fsio::Lock> {
    let (lock, stale) = fsio::lock(&paths.lock, LOCK_WAIT)?;
    if let Some(note) = stale {
        ui::note(&note);
    }
    let temps = fsio::remove_stale_temps(&paths.project)? + fsio::remove_stale_temps(&paths.dir)?;
    if temps > 0 {
        ui::note(&format!(
            "removed {temps} temporary file(s) left by an interrupted keyctl run"
        ));
    }
    Ok(lock)
}

/// Undoes an interrupted run recorded in `state` (under the lock). Returns whether files
/// changed, so the caller reads them again. A dry run refuses instead.
///
/// # Errors
/// A dry run with an interrupted run pending (exit 3), or what `change::recover` refuses.
pub fn recover_pending(
    paths: &change::Paths,
    files: &[&std::path::Path],
    state: &mut State,
    dry_run: bool,
) -> Result<bool> {
    if state.pending.is_none() {
        return Ok(false);
    }
    if dry_run {
        return Err(Error::Unsafe(format!(
            "{}: a keyctl run was interrupted; run without --dry-run to recover first",
            paths.state.display()
        )));
    }
    if let Some(note) = change::recover(paths, files, state)? {
        ui::warn(&note);
    }
    Ok(true)
}

/// Asks `question` on a terminal unless `--yes`; without a terminal, refuses (exit 2).
///
/// # Errors
/// No terminal and no `--yes`, or the user said no.
pub fn confirm(yes: bool, question: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !ui::interactive() {
        return Err(Error::Usage(
            "no terminal to confirm on: pass --yes to apply, or --dry-run to only show the plan; nothing was written".into(),
        ));
    }
    match ui::confirm(question) {
        Some(true) => Ok(()),
        _ => Err(Error::Usage("cancelled; nothing was written".into())),
    }
}

fn order(p: Phase) -> u8 {
    match p {
        Phase::Legacy => 0,
        Phase::DualVerify => 1,
        Phase::Switched => 2,
        Phase::Revoked => 3,
    }
}

/// With `--to`: `Some(message)` when there is nothing to do; an error when the target is not
/// the next phase.
fn target_check(phase: Phase, target: Phase) -> Result<Option<String>> {
    if phase == target {
        return Ok(Some(format!(
            "nothing to do: the project is already in phase {target}"
        )));
    }
    let next = match phase {
        Phase::Legacy | Phase::Revoked => Phase::DualVerify,
        Phase::DualVerify => Phase::Switched,
        Phase::Switched => Phase::Revoked,
    };
    if next == target {
        return Ok(None);
    }
    if order(target) < order(phase) {
        return Ok(Some(format!(
            "nothing to do: the project is past {target} (phase {phase})"
        )));
    }
    Err(Error::Usage(format!(
        "the project is in phase {phase}; the next step goes to {next}, not {target} (one step per run)"
    )))
}

fn next_step_hint(phase: Phase, state: &State, stack: &Stack) -> Result<Option<String>> {
    let project = stack
        .project
        .env_path
        .parent()
        .map_or(".".into(), |p| p.display().to_string());
    let since = state.events.last().map(|e| e.at);
    Ok(match phase {
        Phase::DualVerify => since.map(|t| format!("switch signing with `keyctl migrate --project {project}` after {} (20 minutes from now)", t + lifecycle::PUBLISH_WAIT)),
        Phase::Switched => {
            let expiry = stack.jwt_expiry()?;
            since.and_then(|t| lifecycle::due_at(Phase::Switched, t, expiry)).map(|at| {
                format!("revoke the previous key with `keyctl migrate --project {project} --remint-api-keys` after {at} (JWT_EXPIRY + 20 minutes)")
            })
        }
        Phase::Legacy | Phase::Revoked => None,
    })
}

fn key_states(snap: &Snapshot) -> Vec<(Option<String>, String, &'static str)> {
    let mut out = Vec::new();
    let mut push = |slot: &lifecycle::Slot, state| {
        out.push((slot.kid.clone(), slot.material.alg().to_string(), state))
    };
    match snap.phase {
        Phase::Legacy | Phase::Revoked => {
            if let Some(s) = &snap.signer {
                push(s, "in use");
            }
        }
        Phase::DualVerify => {
            push(snap.previous.as_ref().expect("previous"), "in use");
            push(snap.new_key.as_ref().expect("new"), "standby");
        }
        Phase::Switched => {
            push(snap.new_key.as_ref().expect("new"), "in use");
            push(snap.previous.as_ref().expect("previous"), "previously used");
        }
    }
    out
}

fn status(project: &ProjectArgs, as_json: bool) -> Result<()> {
    let now = clock::now()?;
    let (stack, state) = load(project, now)?;
    let snap = stack.snapshot(&state)?;
    let disagreement = migrate::reconcile(&stack, &snap, &state)
        .err()
        .map(|e| e.to_string());
    let expiry = stack.jwt_expiry()?;
    let since = state.events.last().map(|e| e.at);
    let (next, due) = match snap.phase {
        Phase::Legacy => (
            "dual-verify: publish a new asymmetric key beside JWT_SECRET",
            None,
        ),
        Phase::DualVerify => (
            "switch: sign with the new key",
            since.and_then(|t| lifecycle::due_at(Phase::DualVerify, t, expiry)),
        ),
        Phase::Switched => (
            "revoke: remove the previous key (needs --remint-api-keys while it signed ANON_KEY/SERVICE_ROLE_KEY)",
            since.and_then(|t| lifecycle::due_at(Phase::Switched, t, expiry)),
        ),
        Phase::Revoked => ("rotation: publish the next key as standby", None),
    };
    let wait = due.map(|at| now.duration_until(at).as_secs().max(0));
    let keys = key_states(&snap);
    if as_json {
        let v = json!({
            "project": stack.paths.project.display().to_string(),
            "env_file": stack.project.env_path.display().to_string(),
            "compose_file": stack.compose_path.display().to_string(),
            "phase": snap.phase.as_str(),
            "keys": keys.iter().map(|(kid, alg, st)| json!({"kid": kid, "alg": alg, "state": st})).collect::<Vec<Value>>(),
            "revoked": state.revoked.iter().map(|r| json!({"kid": r.kid, "at": r.at.to_string()})).collect::<Vec<Value>>(),
            "next": {"step": next, "allowed_at": due.map(|t| t.to_string()), "wait_seconds": wait},
            "history": state.events.iter().map(|e| json!({"step": e.step, "at": e.at.to_string(), "phase": e.phase, "kid": e.kid})).collect::<Vec<Value>>(),
            "interrupted_run": state.pending.is_some(),
            "disagreement": disagreement,
            "now": now.to_string(),
        });
        ui::out(&serde_json::to_string_pretty(&v).expect("JSON renders"));
        return Ok(());
    }
    let mut text = format!(
        "project: {}\nphase:   {}\nkeys:\n",
        stack.paths.project.display(),
        snap.phase
    );
    for (kid, alg, st) in &keys {
        text.push_str(&format!(
            "  {:<8} {:<40} {st}\n",
            alg,
            kid.as_deref().unwrap_or("(legacy JWT_SECRET)")
        ));
    }
    for r in &state.revoked {
        text.push_str(&format!(
            "  {:<8} {:<40} revoked {}\n",
            "",
            r.kid.as_deref().unwrap_or("(legacy JWT_SECRET)"),
            r.at
        ));
    }
    text.push_str(&format!("next:    {next}\n"));
    if let (Some(at), Some(w)) = (due, wait) {
        if w > 0 {
            text.push_str(&format!(
                "         allowed at {at} (in {})\n",
                lifecycle::human(jiff::SignedDuration::from_secs(w))
            ));
        } else {
            text.push_str(&format!("         allowed now (since {at})\n"));
        }
    }
    if state.pending.is_some() {
        text.push_str(
            "warning: a keyctl run was interrupted; the next `keyctl migrate` recovers it\n",
        );
    }
    if let Some(d) = &disagreement {
        text.push_str(&format!("warning: {d}\n"));
    }
    ui::out(&text);
    Ok(())
}

fn route(project: &ProjectArgs) -> Result<()> {
    let now = clock::now()?;
    let (stack, state) = load(project, now)?;
    let snap = stack.snapshot(&state)?;
    let expiry = stack.jwt_expiry()?;
    let previous =
        if snap.phase == Phase::Legacy || snap.previous.as_ref().is_some_and(|p| p.kid.is_none()) {
            "the legacy JWT_SECRET".to_owned()
        } else {
            "the previous key".to_owned()
        };
    let steps = [
        (Phase::DualVerify, "publish a new key as standby beside the current signer; wire JWT_KEYS/JWT_JWKS into auth, rest, realtime, storage, functions; restart the verifiers, then auth".to_owned()),
        (Phase::Switched, "wait 20 minutes after publishing, then sign with the new key (Kong gets the *_ASYMMETRIC and opaque keys); restart auth (and kong)".to_owned()),
        (Phase::Revoked, format!("wait JWT_EXPIRY ({expiry}s) + 20 minutes after switching, then revoke {previous}; with the legacy secret this re-mints ANON_KEY/SERVICE_ROLE_KEY (--remint-api-keys) and replaces JWT_SECRET")),
    ];
    let start = match snap.phase {
        Phase::Legacy | Phase::Revoked => 0,
        Phase::DualVerify => 1,
        Phase::Switched => 2,
    };
    let mut text = format!("phase now: {}\n", snap.phase);
    if snap.phase == Phase::Revoked {
        text.push_str("the migration is complete; the route below is the next rotation\n");
    }
    for (i, (phase, what)) in steps.iter().enumerate().skip(start) {
        text.push_str(&format!("{}. -> {phase}: {what}\n", i + 1 - start));
    }
    ui::out(&text);
    Ok(())
}
