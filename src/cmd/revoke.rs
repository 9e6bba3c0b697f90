//! `keyctl revoke legacy|KID`: remove a key from both sets, with the same waits, consent
//! and guarantees as the last step of `keyctl migrate`.

use clap::Args;

use crate::change;
use crate::clock;
use crate::cmd::ProjectArgs;
use crate::cmd::migrate::{Expect, WriteArgs, execute_expecting};
use crate::error::{Error, Result};
use crate::key::Alg;
use crate::lifecycle::Phase;
use crate::migrate::{Request, Stack};
use crate::ui;

/// Arguments of `keyctl revoke`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  keyctl revoke legacy --project /srv/supabase --remint-api-keys --yes\n  keyctl revoke 3f1c…-kid --project /srv/supabase --dry-run"
)]
pub struct RevokeArgs {
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
    pub fn run(self) -> Result<()> {
        let now = clock::now()?;
        let stack = Stack::load(&self.project)?;
        let state = change::load_state(&stack.paths, now)?;
        let snap = stack.snapshot(&state)?;
        let wanted = (self.key != "legacy").then_some(self.key.as_str());
        let label = wanted.map_or_else(
            || "the legacy JWT_SECRET key".to_owned(),
            |k| format!("kid {k}"),
        );
        let is = |slot: &Option<crate::lifecycle::Slot>| {
            slot.as_ref().is_some_and(|s| s.kid.as_deref() == wanted)
        };
        let legacy_signs = wanted.is_none() && snap.phase == Phase::Legacy;
        if legacy_signs || (snap.signer.is_some() && is(&snap.signer)) {
            return Err(Error::Unsafe(format!(
                "{label} is the signing key: switch to another key first (keyctl migrate), then revoke it"
            )));
        }
        let expect = Some(Expect {
            phase: snap.phase,
            kid: wanted.map(str::to_owned),
        });
        if snap.phase == Phase::Switched && is(&snap.previous) {
            return execute_expecting(
                &self.project,
                &self.write,
                Request::RevokePrevious,
                Alg::Es256,
                None,
                expect,
            );
        }
        if snap.phase == Phase::DualVerify && is(&snap.new_key) {
            ui::note(&format!(
                "{label} is the standby key: revoking it rolls the project back"
            ));
            return execute_expecting(
                &self.project,
                &self.write,
                Request::Rollback,
                Alg::Es256,
                None,
                expect,
            );
        }
        let already = state.revoked.iter().any(|r| r.kid.as_deref() == wanted)
            || (wanted.is_none() && matches!(snap.phase, Phase::Revoked));
        if already {
            ui::out(&format!("nothing to do: {label} is already revoked"));
            return Ok(());
        }
        Err(Error::bad(
            stack.project.place("JWT_KEYS"),
            format!(
                "holds no {label} that can be revoked now (phase {})",
                snap.phase
            ),
        ))
    }
}
