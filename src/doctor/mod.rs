//! The diagnosis behind `keyctl doctor`: every rule keyctl knows (SPEC §1–§3), checked
//! against what each service actually reads, each finding with its place, what breaks and
//! the fix. Reads only; the command renders the findings.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::compose::Role;

mod api_keys;
mod causes;
mod config;
mod live;
mod trust;
mod wiring;

use api_keys::api_keys;
use config::{key_sets, record, secrets};
use wiring::{images, wiring};

use crate::lifecycle::Phase;
use crate::project::Project;

/// The demo `JWT_SECRET` of upstream's `.env.example`.
pub(crate) const DEMO_SECRET: &str = "your-super-secret-jwt-token-with-at-least-32-characters-long";
/// API keys expiring within this are reported.
pub(crate) const EXPIRY_WARNING: SignedDuration = SignedDuration::from_hours(24 * 30);
/// A revocation overdue by more than this is reported.
pub(crate) const OVERDUE: SignedDuration = SignedDuration::from_hours(24 * 7);

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    /// Something fails now or on the next restart.
    Error,
    /// Something will fail, or is unsafe.
    Warning,
}

/// One problem.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    /// error or warning.
    pub severity: Severity,
    /// A stable identifier of the rule (`demo_secret`, `not_wired`, …).
    pub code: &'static str,
    /// `file:line` (or file) where it is.
    pub place: String,
    /// The compose service, when one is concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The variable, when one is concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// The key, when one is concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Every service the finding concerns, when it concerns several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Problems this one causes, folded into it (each was a finding of its own before).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<String>,
    /// What is wrong.
    pub message: String,
    /// What breaks because of it.
    pub breaks: String,
    /// How to fix it.
    pub fix: String,
}

impl Finding {
    /// A finding of `severity` for rule `code` at `place`; say what with [`Finding::says`].
    #[must_use]
    pub(crate) fn new(severity: Severity, code: &'static str, place: impl Into<String>) -> Finding {
        Finding {
            severity,
            code,
            place: place.into(),
            service: None,
            variable: None,
            kid: None,
            services: Vec::new(),
            consequences: Vec::new(),
            message: String::new(),
            breaks: String::new(),
            fix: String::new(),
        }
    }

    /// An error.
    #[must_use]
    pub(crate) fn error(code: &'static str, place: impl Into<String>) -> Finding {
        Finding::new(Severity::Error, code, place)
    }

    /// A warning.
    #[must_use]
    pub(crate) fn warning(code: &'static str, place: impl Into<String>) -> Finding {
        Finding::new(Severity::Warning, code, place)
    }

    /// The compose service concerned.
    #[must_use]
    pub(crate) fn service(mut self, service: &str) -> Finding {
        self.service = Some(service.to_owned());
        self
    }

    /// The variable concerned.
    #[must_use]
    pub(crate) fn variable(mut self, variable: &str) -> Finding {
        self.variable = Some(variable.to_owned());
        self
    }

    /// Every service concerned.
    #[must_use]
    pub(crate) fn services(mut self, services: &[String]) -> Finding {
        self.services = services.to_vec();
        self
    }

    /// The variable concerned, if any.
    #[must_use]
    pub(crate) fn variable_opt(mut self, variable: Option<&str>) -> Finding {
        self.variable = variable.map(str::to_owned);
        self
    }

    /// The key concerned, if any.
    #[must_use]
    pub(crate) fn kid_opt(mut self, kid: Option<&str>) -> Finding {
        self.kid = kid.map(str::to_owned);
        self
    }

    /// What is wrong, what breaks because of it, and the fix.
    #[must_use]
    pub(crate) fn says(
        mut self,
        message: impl Into<String>,
        breaks: &str,
        fix: impl Into<String>,
    ) -> Finding {
        self.message = message.into();
        self.breaks = breaks.to_owned();
        self.fix = fix.into();
        self
    }
}

/// What `doctor` found.
pub(crate) struct Diagnosis {
    /// The phase, when it can be told.
    pub phase: Option<Phase>,
    /// The findings, errors first.
    pub findings: Vec<Finding>,
    /// What the live checks did (`None`: not attempted).
    pub live: Option<live::Checked>,
}

struct Report<'p> {
    project: &'p Project,
    dir: String,
    findings: Vec<Finding>,
}

impl Report<'_> {
    fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    fn env_place(&self, var: &str) -> String {
        self.project.line_of(var)
    }
}

/// Runs every check: one finding per problem, errors first, and the phase when it can be
/// told.
#[must_use]
pub(crate) fn diagnose(
    project: &Project,
    now: Timestamp,
    sight: Option<&crate::engine::Sight>,
    live_required: bool,
) -> Diagnosis {
    let mut r = Report {
        project,
        dir: project.dir_arg(),
        findings: Vec::new(),
    };
    trust::recognition(&mut r);
    key_sets(&mut r);
    secrets(&mut r);
    let (phase, keys) = record(&mut r, now);
    trust::split_secrets(&mut r);
    trust::retired_secrets(&mut r);
    wiring(&mut r, keys.as_ref());
    images(&mut r, keys.as_ref());
    trust::migration_blockers(&mut r, phase);
    api_keys(&mut r, now);
    chart_problems(&mut r, keys.as_ref());
    let live = live::live(&mut r, sight, live_required);
    let jwks_readers: Vec<String> = project
        .views()
        .into_iter()
        .filter(|v| v.role != Role::Auth)
        .map(|v| v.service)
        .collect();
    let mut findings = causes::group(r.findings, &r.dir, &jwks_readers);
    findings.sort_by_key(|f| f.severity);
    if let Some(helm) = project.helm() {
        for f in &mut findings {
            for t in [&mut f.place, &mut f.message, &mut f.breaks, &mut f.fix] {
                *t = helm.speak(t);
            }
            f.consequences.iter_mut().for_each(|t| *t = helm.speak(t));
        }
    }
    Diagnosis {
        phase,
        findings,
        live,
    }
}

/// A chart project's own problems (`helm::Model::problems`).
fn chart_problems(r: &mut Report<'_>, keys: Option<&Vec<crate::jwk::Jwk>>) {
    let Some(helm) = r.project.helm() else {
        return;
    };
    let past_legacy = keys.is_some_and(|k| k.iter().any(|k| k.material.alg().is_asymmetric()));
    for p in helm.problems(past_legacy) {
        let f = if p.error {
            Finding::error(p.code, p.place)
        } else {
            Finding::warning(p.code, p.place)
        };
        r.push(f.says(p.message, &p.breaks, p.fix));
    }
}
