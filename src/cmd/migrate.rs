//! `keyctl migrate` (one step of SPEC §3), `migrate status`, `migrate plan`,
//! `migrate rollback` and `migrate rewire`: the arguments, and the read-only reports. Steps
//! run through the one write flow (`flow::run`) with the `migrate::Migration` planner.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::clock;
use crate::cmd::{ProjectArgs, WriteArgs};
use crate::error::Result;
use crate::flow;
use crate::key::Alg;
use crate::lifecycle::{self, Phase, Snapshot};
use crate::migrate::{Migration, Request};
use crate::project::{self, Project};
use crate::ui;

/// A phase named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Target {
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

/// Arguments of `keyctl migrate`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Steps (one per run): legacy -> dual-verify -> switched -> revoked; once asymmetric, the next run starts a rotation.\nExamples:\n  keyctl migrate status --project /srv/supabase\n  keyctl migrate --project /srv/supabase --dry-run\n  keyctl migrate --project /srv/supabase --yes\n  KEYCTL_NOW=2026-12-01T14:00:00Z keyctl migrate --project ./rehearsal --yes --remint-api-keys"
)]
pub(crate) struct MigrateArgs {
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
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
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
    pub(crate) fn run(self) -> Result<()> {
        match self.action {
            Some(Action::Status { project, json }) => status(&project, json),
            Some(Action::Plan { project, json }) => route(&project, json),
            Some(Action::Rewire { project, write }) => flow::run(
                &project.locator(),
                write.mode(),
                &mut write.migration(Request::Rewire),
            ),
            Some(Action::Rollback { project, write }) => flow::run(
                &project.locator(),
                write.mode(),
                &mut write.migration(Request::Rollback),
            ),
            None => {
                let loc = self.project.locator();
                let mut m = Migration {
                    alg: self.alg.unwrap_or(Alg::Es256),
                    to: self.to.map(Target::phase),
                    live: true,
                    ..self.write.migration(Request::Next)
                };
                flow::run(&loc, self.write.mode(), &mut m)
            }
        }
    }
}

/// Per service, whether it runs the files' values (SPEC §6): JSON and text.
fn live_status(project: &Project, loc: &crate::project::Locator) -> (Value, String) {
    let sight = Some(super::look(project, loc));
    match sight {
        Some(crate::engine::Sight::Seen {
            endpoint,
            containers,
        }) if !containers.is_empty() => {
            let services = crate::live::compare(project, &containers);
            let mut text = String::from("live:\n");
            let list: Vec<Value> = services
                .iter()
                .map(|s| {
                    text.push_str(&format!("  {}\n", crate::live::describe(s)));
                    let (running, vars) = match &s.running {
                        crate::live::Running::Current => ("current", vec![]),
                        crate::live::Running::Stale(v) => ("stale", v.clone()),
                        crate::live::Running::Down(_) => ("down", vec![]),
                        crate::live::Running::Unhealthy => ("unhealthy", vec![]),
                        crate::live::Running::Missing => ("missing", vec![]),
                    };
                    json!({"service": s.service, "container": s.container, "running": running, "variables": vars, "created": s.created.map(|t| t.to_string())})
                })
                .collect();
            (
                json!({"checked": true, "endpoint": endpoint, "services": list}),
                text,
            )
        }
        Some(crate::engine::Sight::Seen { endpoint, .. }) => {
            let why = format!("the engine at {endpoint} runs no container of this compose project");
            (
                json!({"checked": false, "reason": why}),
                format!("live:    skipped: {why}\n"),
            )
        }
        Some(crate::engine::Sight::Unreachable(why)) => (
            json!({"checked": false, "reason": why}),
            format!("live:    skipped: {why}\n"),
        ),
        None => (json!({"checked": false}), String::new()),
    }
}

fn load(project: &ProjectArgs) -> Result<Project> {
    Project::load(&project.locator(), clock::now()?)
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

fn status(args: &ProjectArgs, as_json: bool) -> Result<()> {
    let now = clock::now()?;
    let project = load(args)?;
    project.compose_to_edit()?;
    let state = project.state()?;
    let snap = project.snapshot()?;
    let disagreement = project::reconcile(&project, &snap, state)
        .err()
        .map(|e| e.to_string());
    let expiry = project.jwt_expiry()?;
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
    let (live_json, live_text) = live_status(&project, &args.locator());
    if as_json {
        let v = json!({
            "project": project.paths.project.display().to_string(),
            "env_file": project.env_path.display().to_string(),
            "compose_file": project.compose_path().map(|p| p.display().to_string()),
            "phase": snap.phase.as_str(),
            "keys": keys.iter().map(|(kid, alg, st)| json!({"kid": kid, "alg": alg, "state": st})).collect::<Vec<Value>>(),
            "revoked": state.revoked.iter().map(|r| json!({"kid": r.kid, "at": r.at.to_string()})).collect::<Vec<Value>>(),
            "next": {"step": next, "allowed_at": due.map(|t| t.to_string()), "wait_seconds": wait},
            "history": state.events.iter().map(|e| json!({"step": e.step, "at": e.at.to_string(), "phase": e.phase, "kid": e.kid})).collect::<Vec<Value>>(),
            "interrupted_run": state.pending.is_some(),
            "disagreement": disagreement,
            "live": live_json,
            "now": now.to_string(),
        });
        ui::out(&serde_json::to_string_pretty(&v).expect("JSON renders"));
        return Ok(());
    }
    let mut text = format!(
        "project: {}\nphase:   {}\nkeys:\n",
        project.paths.project.display(),
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
    text.push_str(&live_text);
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

fn route(args: &ProjectArgs, as_json: bool) -> Result<()> {
    let project = load(args)?;
    project.compose_to_edit()?;
    let snap = project.snapshot()?;
    let expiry = project.jwt_expiry()?;
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
    let blocked: Vec<String> = if snap.phase == Phase::Revoked {
        Vec::new()
    } else {
        crate::migrate::blockers(&project, &snap, false)
            .into_iter()
            .map(|b| b.error.to_string())
            .collect()
    };
    if as_json {
        let v = json!({
            "phase": snap.phase.as_str(),
            "complete": snap.phase == Phase::Revoked,
            "blocked": blocked,
            "steps": steps.iter().skip(start).map(|(phase, what)| json!({"to": phase.as_str(), "what": what})).collect::<Vec<Value>>(),
        });
        ui::out(&serde_json::to_string_pretty(&v).expect("JSON renders"));
        return Ok(());
    }
    let mut text = format!("phase now: {}\n", snap.phase);
    if snap.phase == Phase::Revoked {
        text.push_str("the migration is complete; the route below is the next rotation (keyctl rotate starts it)\n");
    }
    for b in &blocked {
        text.push_str(&format!("blocked: {b}\n"));
    }
    for (i, (phase, what)) in steps.iter().enumerate().skip(start) {
        text.push_str(&format!("{}. -> {phase}: {what}\n", i + 1 - start));
    }
    ui::out(&text);
    Ok(())
}
