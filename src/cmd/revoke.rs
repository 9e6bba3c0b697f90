//! `keyctl revoke legacy|KID`: remove a key from both sets, with the same waits, consent
//! and guarantees as the last step of `keyctl migrate` (the same planner and write flow).

use clap::Args;

use crate::clock;
use crate::cmd::{ProjectArgs, WriteArgs};
use crate::error::{Error, Refusal, Result};
use crate::flow;
use crate::lifecycle::{Phase, Slot};
use crate::migrate::{Expect, Migration, Request};
use crate::project::Project;
use crate::ui;

/// Arguments of `keyctl revoke`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  keyctl revoke legacy --project /srv/supabase --remint-api-keys --yes\n  keyctl revoke 3f1c…-kid --project /srv/supabase --dry-run"
)]
pub(crate) struct RevokeArgs {
    /// `legacy` (the JWT_SECRET key) or the kid of the key to revoke.
    pub key: String,
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    write: WriteArgs,
}

impl RevokeArgs {
    /// Runs the command.
    ///
    /// # Errors
    /// The signing key (3), a wait not over (3), no consent (3), an unknown kid (2).
    pub(crate) fn run(self) -> Result<()> {
        let loc = self.project.locator();
        let project = Project::load(&loc, clock::now()?)?;
        project.compose_to_edit()?;
        let state = project.state()?;
        let snap = project.snapshot()?;
        let wanted = (self.key != "legacy").then_some(self.key.as_str());
        let label = wanted.map_or_else(
            || "the legacy JWT_SECRET key".to_owned(),
            |k| format!("kid {k}"),
        );
        let is = |slot: &Option<Slot>| slot.as_ref().is_some_and(|s| s.kid.as_deref() == wanted);
        let legacy_signs = wanted.is_none() && snap.phase == Phase::Legacy;
        if legacy_signs || (snap.signer.is_some() && is(&snap.signer)) {
            return Err(Refusal::SigningKey { label }.into());
        }
        let expect = Some(Expect {
            phase: snap.phase,
            kid: wanted.map(str::to_owned),
        });
        let request = if snap.phase == Phase::Switched && is(&snap.previous) {
            Request::RevokePrevious
        } else if snap.phase == Phase::DualVerify && is(&snap.new_key) {
            ui::note(&format!(
                "{label} is the standby key: revoking it rolls the project back"
            ));
            Request::Rollback
        } else {
            let already = state.revoked.iter().any(|r| r.kid.as_deref() == wanted)
                || (wanted.is_none() && matches!(snap.phase, Phase::Revoked));
            if already {
                ui::out(&format!("nothing to do: {label} is already revoked"));
                return Ok(());
            }
            return Err(Error::bad(
                project.place("JWT_KEYS"),
                format!(
                    "holds no {label} that can be revoked now (phase {})",
                    snap.phase
                ),
            ));
        };
        let mut m = Migration {
            expect,
            live: true,
            ..self.write.migration(request)
        };
        flow::run(&loc, self.write.mode(), &mut m)
    }
}
