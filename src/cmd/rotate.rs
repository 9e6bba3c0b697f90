//! `keyctl rotate`: after a finished migration, start the next rotation — a new standby key
//! published beside the current signer (phase dual-verify); the same `keyctl migrate` steps
//! then switch and revoke. A scheduled `migrate --yes` never rotates on its own (SPEC §3).

use clap::Args;

use crate::cmd::{ProjectArgs, WriteArgs};
use crate::error::Result;
use crate::flow;
use crate::key::Alg;
use crate::migrate::{Migration, Request};

/// Arguments of `keyctl rotate`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 done, 3 refused (a migration or rotation is unfinished).\nExamples:\n  keyctl rotate --project /srv/supabase --dry-run\n  keyctl rotate --project /srv/supabase --yes   # then: keyctl migrate (switch), keyctl migrate --remint-api-keys (revoke)"
)]
pub(crate) struct RotateArgs {
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    write: WriteArgs,
    /// Algorithm of the new key (ES256 default).
    #[arg(long, value_parser = |s: &str| s.parse::<Alg>())]
    alg: Option<Alg>,
}

impl RotateArgs {
    /// Runs the command.
    ///
    /// # Errors
    /// Mid-migration (3), bad input (2), I/O and locks (4).
    pub(crate) fn run(self) -> Result<()> {
        let loc = self.project.locator();
        let mut m = Migration {
            alg: self.alg.unwrap_or(Alg::Es256),
            live: true,
            ..self.write.migration(Request::Rotate)
        };
        flow::run(&loc, self.write.mode(), &mut m)
    }
}
