//! The running stack (SPEC §6): a container that runs other values of a key variable than the
//! files, or that is stopped, restarting, unhealthy or missing, is a finding with the exact
//! restart command. Without an engine the checks are skipped (one line; an error with
//! `--live`).

use crate::engine::Sight;
use crate::live::{self, Running};

use super::{Finding, Report};

/// What the live checks did, for the report.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Checked {
    /// Whether the containers were compared.
    pub checked: bool,
    /// Where the engine was reached, or why not.
    pub detail: String,
}

/// The live findings; `required` (`--live`) makes an unreachable engine an error.
pub(super) fn live(r: &mut Report<'_>, sight: Option<&Sight>, required: bool) -> Option<Checked> {
    let project = r.project;
    let sight = sight?;
    let containers = match sight {
        Sight::Unreachable(why) => {
            if required {
                r.push(Finding::error("live_unavailable", project.env_path.display().to_string()).says(
                    format!("--live: {why}"),
                    "keyctl cannot tell whether the containers run what the files say",
                    "start the engine, or point DOCKER_HOST at its socket (Podman: unix://$XDG_RUNTIME_DIR/podman/podman.sock)",
                ));
            }
            return Some(Checked {
                checked: false,
                detail: why.clone(),
            });
        }
        Sight::Seen {
            endpoint,
            containers,
        } => {
            if containers.is_empty() {
                let why = format!(
                    "the engine at {endpoint} runs no container of this compose project (name it with --project-name if it runs under another)"
                );
                if required {
                    r.push(
                        Finding::error("live_unavailable", project.env_path.display().to_string())
                            .says(
                                format!("--live: {why}"),
                                "keyctl cannot tell whether the containers run what the files say",
                                "keyctl doctor --project-name NAME --live",
                            ),
                    );
                }
                return Some(Checked {
                    checked: false,
                    detail: why,
                });
            }
            containers
        }
    };
    let Ok(Some(compose)) = project.compose_if_present() else {
        return None;
    };
    let changed = project
        .facts
        .env_modified
        .map(|t| format!(", .env changed {}", t.strftime("%Y-%m-%d %H:%M UTC")))
        .unwrap_or_default();
    for s in live::compare(project, containers) {
        let fix = || {
            crate::change::restart_command(
                compose,
                &project.env_path,
                std::slice::from_ref(&s.service),
                &[],
            )
        };
        let place = compose.place(
            compose
                .doc
                .services()
                .iter()
                .find(|x| x.name == s.service)
                .map(|x| x.line),
        );
        let finding = match &s.running {
            Running::Current => continue,
            Running::Stale(vars) => Finding::error("stale_container", place)
                .service(&s.service)
                .variable_opt(vars.first().map(String::as_str))
                .says(
                    format!("{}{changed}", live::describe(&s)),
                    "it verifies (or signs) with values the files no longer hold: tokens valid elsewhere get 401 here",
                    fix(),
                ),
            Running::Down(_) | Running::Unhealthy => {
                Finding::error("container_down", place).service(&s.service).says(
                    live::describe(&s),
                    "requests to this service fail",
                    fix(),
                )
            }
            Running::Missing => Finding::warning("container_missing", place)
                .service(&s.service)
                .says(
                    live::describe(&s),
                    "the compose file has this service but the engine runs no container of it",
                    fix(),
                ),
        };
        r.push(finding);
    }
    Some(Checked {
        checked: true,
        detail: match sight {
            Sight::Seen { endpoint, .. } => endpoint.clone(),
            Sight::Unreachable(_) => String::new(),
        },
    })
}
