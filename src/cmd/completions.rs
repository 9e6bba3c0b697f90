//! `keyctl completions SHELL`: the shell completion script, generated from the clap
//! definitions by `clap_complete` and printed through `ui` (nothing is installed or written).

use clap::Args;
use clap_complete::Shell;

use crate::error::Result;
use crate::ui;

/// Arguments of `keyctl completions`.
#[derive(Debug, Args)]
#[command(
    after_help = "Load it now, or install it for every new shell:\n  source <(keyctl completions bash)\n  keyctl completions bash > ~/.local/share/bash-completion/completions/keyctl\n  keyctl completions zsh > \"${fpath[1]}/_keyctl\"\n  keyctl completions fish > ~/.config/fish/completions/keyctl.fish"
)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: Shell,
}

impl CompletionsArgs {
    /// Prints the completion script for `cmd` (keyctl's whole command line).
    ///
    /// # Errors
    /// Never in practice: the script is generated in memory.
    pub(crate) fn run(self, mut cmd: clap::Command) -> Result<()> {
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, "keyctl", &mut script);
        ui::out(&String::from_utf8_lossy(&script));
        Ok(())
    }
}
