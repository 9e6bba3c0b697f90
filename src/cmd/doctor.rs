//! `keyctl doctor`: every problem keyctl can find in a project, one line each, with what
//! breaks and the fix; `--json` for CI gates (schema in docs/JSON.md and `keyctl man`).

use clap::Args;
use serde_json::json;

use crate::clock;
use crate::cmd::ProjectArgs;
use crate::doctor::{self, Severity};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::ui;

/// Arguments of `keyctl doctor`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 no errors (warnings allowed), 1 at least one error.\nEvery finding code and the JSON shape: keyctl man | man -l -   (section JSON OUTPUT)\nExamples:\n  keyctl doctor --project /srv/supabase\n  keyctl doctor --project /srv/supabase --json | jq '.findings[] | select(.severity == \"error\")'"
)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    project: ProjectArgs,
    /// Machine-readable output (the shapes and every finding code: `keyctl man`, JSON OUTPUT; docs/JSON.md in the source).
    #[arg(long)]
    json: bool,
    /// Require the live checks: no reachable Docker engine (or no container of the project) is an error.
    #[arg(long)]
    live: bool,
}

impl DoctorArgs {
    /// Runs the command.
    ///
    /// # Errors
    /// Errors found (exit 1), unreadable input (2, 4).
    pub(crate) fn run(self) -> Result<()> {
        let now = clock::now()?;
        let mut loc = self.project.locator();
        if let Some(helm) = loc.helm.as_mut() {
            helm.diagnose = true;
        }
        let loaded = Project::load(&loc, now).and_then(|p| {
            p.compose_if_present()?;
            Ok(p)
        });
        // A check that cannot parse what it checks has found a problem (SPEC §5): exit 1,
        // reported as a finding.
        let project = match loaded {
            Err(Error::BadInput { place, message }) => return self.unparseable(&place, &message),
            other => other?,
        };
        let compose_path = project.compose_path();
        let sight = Some(super::look(&project, &self.project.locator()));
        let doctor::Diagnosis {
            phase,
            findings,
            live,
        } = doctor::diagnose(&project, now, sight.as_ref(), self.live);
        let errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        let warnings = findings.len() - errors;
        if self.json {
            let v = json!({
                "schema": 1,
                "project": project.paths.project.display().to_string(),
                "env_file": project.env_path.display().to_string(),
                "compose_file": compose_path.as_ref().map(|p| p.display().to_string()),
                "phase": phase.map(|p| p.as_str()),
                "now": now.to_string(),
                "summary": {"errors": errors, "warnings": warnings},
                "live": live,
                "findings": findings,
            });
            ui::out(&serde_json::to_string_pretty(&v).expect("JSON renders"));
        } else {
            let mut text = String::new();
            for f in &findings {
                let tag = match f.severity {
                    Severity::Error => ui::paint("error", "1;31"),
                    Severity::Warning => ui::paint("warning", "1;33"),
                };
                let mut subject = Vec::new();
                if f.services.len() > 1 {
                    subject.push(format!("services {}", f.services.join(", ")));
                } else if let Some(s) = f.services.first().or(f.service.as_ref()) {
                    subject.push(format!("service {s}"));
                }
                if let Some(v) = &f.variable {
                    subject.push(v.clone());
                }
                if let Some(k) = &f.kid {
                    subject.push(format!("kid {k}"));
                }
                let subject = if subject.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", subject.join(", "))
                };
                let line = format!(
                    "{}{subject}: {} — {}. fix: {}",
                    f.place, f.message, f.breaks, f.fix
                );
                text.push_str(&format!("{tag}: {}\n", ui::clean(&line)));
                for c in &f.consequences {
                    text.push_str(&format!("    which causes: {}\n", ui::clean(c)));
                }
            }
            if let Some(l) = live.as_ref().filter(|l| !l.checked) {
                text.push_str(&format!(
                    "note: live checks skipped: {}\n",
                    ui::clean(&l.detail)
                ));
            }
            text.push_str(&format!(
                "{}: phase {}, {errors} error(s), {warnings} warning(s)\n",
                project.env_path.display(),
                phase.map_or("unknown", |p| p.as_str())
            ));
            ui::out(&text);
        }
        if errors > 0 {
            return Err(Error::Problems { count: errors });
        }
        Ok(())
    }

    /// The one finding of a project whose `.env` or compose file does not parse.
    fn unparseable(&self, place: &str, message: &str) -> Result<()> {
        let finding = doctor::Finding::error("unparseable", place).says(
            message.to_owned(),
            "the services (and keyctl) cannot read this file as it is",
            "fix the line named, then run keyctl doctor again",
        );
        if self.json {
            let v = json!({
                "schema": 1,
                "phase": null,
                "summary": {"errors": 1, "warnings": 0},
                "live": null,
                "findings": [finding],
            });
            ui::out(&serde_json::to_string_pretty(&v).expect("JSON renders"));
        } else {
            ui::out(&ui::clean(&format!(
                "{}: {place}: {message} — {}. fix: {}",
                ui::paint("error", "1;31"),
                finding.breaks,
                finding.fix
            )));
        }
        Err(Error::Problems { count: 1 })
    }
}
