//! One module per subcommand; each holds its clap `Args` and the method that runs it.
pub(crate) mod completions;
pub(crate) mod doctor;
pub(crate) mod export;
pub(crate) mod generate;
pub(crate) mod jwks;
pub(crate) mod man;
pub(crate) mod migrate;
pub(crate) mod revoke;
pub(crate) mod rotate;
pub(crate) mod token;

use std::path::PathBuf;

use clap::Args;

use crate::compose::Role;
use crate::flow::Mode;
use crate::migrate::{Migration, Request};
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
    /// The compose file, as `docker compose -f` takes it (default: compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml beside the env file).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub compose_file: Option<PathBuf>,
    /// Say which service plays which role, for custom images (repeatable; ROLE: auth, rest, realtime, storage, functions, kong or none). Overrides keyctl.toml.
    #[arg(long = "service-is", value_name = "SERVICE=ROLE", value_parser = parse_service)]
    pub services: Vec<(String, Option<Role>)>,
    /// The compose project name, as `docker compose -p` takes it (default: as compose derives it).
    #[arg(long, value_name = "NAME", env = "COMPOSE_PROJECT_NAME")]
    pub project_name: Option<String>,
    /// Kubernetes: the supabase-kubernetes Helm chart's values file instead of a compose project (.keyctl/ goes beside it).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["project", "env_file", "compose_file"])]
    pub helm_values: Option<PathBuf>,
    /// Kubernetes: the manifest of the Secret the values file's secretRef names (stringData or data).
    #[arg(long, value_name = "FILE", requires = "helm_values")]
    pub k8s_secret: Option<PathBuf>,
    /// Kubernetes: the Helm release, for the Deployment names in the printed commands (default: $RELEASE in them).
    #[arg(long, value_name = "NAME", requires = "helm_values")]
    pub release: Option<String>,
    /// Kubernetes: the namespace for the printed commands (default: the Secret manifest's, else none).
    #[arg(long, short = 'n', value_name = "NS", requires = "helm_values")]
    pub namespace: Option<String>,
    /// Kubernetes: the chart reference for the printed `helm upgrade` (default: supabase/supabase).
    #[arg(long, value_name = "REF", requires = "helm_values")]
    pub chart: Option<String>,
    /// Kubernetes: the chart version the release runs, for the printed `helm upgrade --version` (default: $CHART_VERSION in it).
    #[arg(long, value_name = "VERSION", requires = "helm_values")]
    pub chart_version: Option<String>,
}

fn parse_service(arg: &str) -> Result<(String, Option<Role>), String> {
    crate::project::parse_assignment(arg)
}

impl ProjectArgs {
    /// The plain locator the core loads a project from.
    #[must_use]
    pub(crate) fn locator(&self) -> Locator {
        Locator {
            dir: self.project.clone(),
            env_file: self.env_file.clone(),
            compose_file: self.compose_file.clone(),
            services: self.services.clone(),
            project_name: self.project_name.clone(),
            helm: self.helm_values.clone().map(|values| crate::helm::Locator {
                values,
                secret: self.k8s_secret.clone(),
                release: self.release.clone(),
                namespace: self.namespace.clone(),
                chart: self.chart.clone(),
                chart_version: self.chart_version.clone(),
                diagnose: false,
            }),
        }
    }
}

/// Flags of the writing commands that have no wait and need no consent (the fixes `doctor`
/// prints): apply without asking, or only show.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApplyArgs {
    /// Apply without asking (for CI); never prompts.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show the plan and the diff, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// After writing, restart the services whose inputs changed (docker compose, verifiers first, Auth last), wait until they run and confirm they run the new values.
    #[arg(long)]
    pub restart: bool,
    /// Report as JSON on stdout (the plan and the diff go to stderr; errors as JSON too).
    #[arg(long)]
    pub json: bool,
}

impl ApplyArgs {
    /// How the flow applies the change.
    #[must_use]
    pub(crate) fn mode(&self) -> Mode {
        Mode {
            yes: self.yes,
            dry_run: self.dry_run,
            restart: self.restart,
            json: self.json,
        }
    }
}

/// Flags of every command that writes.
#[derive(Debug, Clone, Args)]
pub(crate) struct WriteArgs {
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Skip a wait that is not over (prints a warning).
    #[arg(long)]
    pub force: bool,
    /// Consent to re-mint ANON_KEY and SERVICE_ROLE_KEY when the key that signed them is revoked.
    #[arg(long)]
    pub remint_api_keys: bool,
    /// Proceed although a service's image is older than the version that understands asymmetric keys (that service will reject the new tokens).
    #[arg(long)]
    pub allow_old_images: bool,
}

impl WriteArgs {
    /// How the flow applies the change.
    #[must_use]
    pub(crate) fn mode(&self) -> Mode {
        self.apply.mode()
    }

    /// `request` with this command line's force and consent.
    #[must_use]
    pub(crate) fn migration(&self, request: Request) -> Migration {
        Migration {
            force: self.force,
            remint: self.remint_api_keys,
            allow_old_images: self.allow_old_images,
            preview: self.apply.dry_run,
            ..Migration::new(request)
        }
    }
}

/// What the engine shows of the loaded `project`'s compose project (SPEC §6), named as
/// `loc` says (`--project-name`) or as compose derives it.
#[must_use]
pub(crate) fn look(project: &crate::project::Project, loc: &Locator) -> crate::engine::Sight {
    if project.helm().is_some() {
        return crate::engine::Sight::Unreachable(
            "a Kubernetes project: keyctl reads the values file and the Secret manifest, not the cluster (kubectl rollout status shows the pods)".into(),
        );
    }
    crate::engine::look(&project.compose_project_name(loc.project_name.as_deref()))
}
