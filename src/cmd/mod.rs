//! One module per subcommand; each holds its clap `Args` and the method that runs it.
pub(crate) mod doctor;
pub(crate) mod export;
pub(crate) mod generate;
pub(crate) mod jwks;
pub(crate) mod migrate;
pub(crate) mod revoke;
pub(crate) mod token;

use std::path::PathBuf;

use clap::Args;

use crate::project::Locator;

/// Where the project is: shared by every command that reads `.env` and the compose file.
#[derive(Debug, Clone, Args)]
pub(crate) struct ProjectArgs {
    /// Project directory holding `.env` and the compose file.
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// The env file (default: DIR/.env).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The compose file (default: compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml beside the env file).
    #[arg(long, value_name = "FILE")]
    pub compose_file: Option<PathBuf>,
}

impl ProjectArgs {
    /// The plain locator the core loads a project from.
    #[must_use]
    pub(crate) fn locator(&self) -> Locator {
        Locator {
            dir: self.project.clone(),
            env_file: self.env_file.clone(),
            compose_file: self.compose_file.clone(),
        }
    }
}
