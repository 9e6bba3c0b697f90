//! `--restart`: after a write, the restart a step asks for, run by keyctl itself (SPEC §6):
//! `docker compose up -d --force-recreate` for the services whose inputs changed, verifiers
//! first and Auth last, with the same project directory, files, env file and project name;
//! then a bounded wait until each container runs (and is healthy where it has a healthcheck),
//! and a check through the Engine API that each runs the values just written. A failure names
//! the service and its last log lines with key values redacted; the files stay as written.

use std::time::Duration;

use crate::engine::{self, ComposeRun, Sight};
use crate::error::{Error, Result};
use crate::flow::Restarts;
use crate::live::{self, Running};
use crate::project::{Locator, Project};
use crate::ui;

/// How long each restart may take to become ready (`KEYCTL_RESTART_TIMEOUT` seconds).
fn timeout() -> Duration {
    let secs = std::env::var("KEYCTL_RESTART_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Restarts `restarts` of the project at `loc` (read again: the files as written) and
/// confirms each service runs the new values.
///
/// # Errors
/// No engine, compose failed, a container not ready in time or still running other values
/// (exit 4): the files are written and valid; the message says what to do.
pub(crate) fn run(loc: &Locator, now: jiff::Timestamp, restarts: &Restarts) -> Result<()> {
    if restarts.is_empty() {
        return Ok(());
    }
    let project = Project::load(loc, now)?;
    let compose = project.compose()?;
    let name = project.compose_project_name(loc.project_name.as_deref());
    let failed = |message: String| Error::Io {
        path: compose.path.clone(),
        message: format!(
            "the files are written (and valid), but {message}; fix it and run the restart again, or undo the step with keyctl migrate rollback"
        ),
    };
    if let Sight::Unreachable(why) = engine::look(&name) {
        return Err(failed(format!("--restart needs the Docker engine: {why}")));
    }
    // Absolute paths: compose runs in the project directory.
    let abs = |p: &std::path::Path| crate::fsio::canonical(p);
    let mut files = vec![abs(&compose.path)];
    files.extend(compose.overrides.iter().map(|o| abs(&o.path)));
    let run = ComposeRun {
        dir: abs(crate::project::dir_of(&compose.path)),
        files,
        env_file: abs(&project.env_path),
        name: name.clone(),
    };
    let mut all = Vec::new();
    for group in [&restarts.verifiers, &restarts.others] {
        if group.is_empty() {
            continue;
        }
        ui::note(&format!("restarting {}", group.join(" ")));
        engine::recreate(&run, group).map_err(&failed)?;
        all.extend(group.iter().cloned());
    }
    let containers = match engine::wait_ready(&name, &all, timeout(), &|line| ui::note(line)) {
        Ok(c) => c,
        Err(waiting) => {
            let (service, why) = &waiting[0];
            return Err(failed(format!(
                "service {service} is not ready after the restart ({why}){}",
                last_logs(&project, &name, service)
            )));
        }
    };
    let behind: Vec<String> = live::compare(&project, &containers)
        .iter()
        .filter(|s| all.contains(&s.service) && s.running != Running::Current)
        .map(live::describe)
        .collect();
    if let Some(first) = behind.first() {
        return Err(failed(format!("after the restart {first}")));
    }
    ui::note(&format!(
        "restarted and confirmed: {} run the values just written",
        all.join(", ")
    ));
    Ok(())
}

/// `; last log lines: …` of `service`'s container, key values and JWTs redacted.
fn last_logs(project: &Project, name: &str, service: &str) -> String {
    let Sight::Seen { containers, .. } = engine::look(name) else {
        return String::new();
    };
    let Some(c) = containers.iter().find(|c| c.service == service) else {
        return String::new();
    };
    let secrets: Vec<String> = c
        .env
        .iter()
        .filter(|(k, v)| live::is_key_var(k) && v.len() >= 8)
        .map(|(_, v)| v.clone())
        .chain(project.secret().map(|s| s.value.to_string()))
        .collect();
    let lines: Vec<String> = engine::logs(&c.id, 10)
        .into_iter()
        .map(|l| {
            let mut l = crate::redact::redact_tokens(&l);
            for s in &secrets {
                l = l.replace(s.as_str(), "<redacted>");
            }
            ui::clean(&l)
        })
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its last log lines: {}", lines.join(" | "))
    }
}
