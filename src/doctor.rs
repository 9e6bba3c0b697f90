//! The diagnosis behind `keyctl doctor`: every rule keyctl knows (SPEC §1–§3), checked
//! against what each service actually reads, each finding with its place, what breaks and
//! the fix. Reads only; the command renders the findings.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::apikey;
use crate::compose::Role;
use crate::jws;
use crate::key::Alg;
use crate::keyset;
use crate::lifecycle::{self, Phase};
use crate::phase::Step;
use crate::project::{ComposeFile, MAX_EXPIRY, Project};
use crate::verifier::{self, Verdict, View};

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
pub(crate) fn diagnose(project: &Project, now: Timestamp) -> (Option<Phase>, Vec<Finding>) {
    let mut r = Report {
        project,
        dir: project.dir_arg(),
        findings: Vec::new(),
    };
    key_sets(&mut r);
    secrets(&mut r);
    let (phase, keys) = record(&mut r, now);
    wiring(&mut r, keys.as_ref());
    images(&mut r, keys.as_ref());
    api_keys(&mut r, now);
    r.findings.sort_by_key(|f| f.severity);
    (phase, r.findings)
}

/// The sets themselves (every rule of `jwks --check`).
fn key_sets(r: &mut Report<'_>) {
    let dir = r.dir.clone();
    for p in keyset::check(&r.project.key_inputs()) {
        let variable = ["JWT_KEYS", "JWT_JWKS", "JWT_SECRET"]
            .into_iter()
            .find(|v| p.place.ends_with(v));
        let kid = p.key.as_deref().and_then(|k| k.strip_prefix("kid "));
        r.push(Finding::error("key_set", p.place.clone()).variable_opt(variable).kid_opt(kid).says(format!("{}{}", p.key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default(), p.message), "the services read this value at start: Auth refuses to start or verifiers reject tokens", format!("fix the value, then check with: keyctl jwks --check --project {dir}")));
    }
}

/// Secrets: the demo value, file modes, git.
fn secrets(r: &mut Report<'_>) {
    let dir = r.dir.clone();
    let project = r.project;
    if project.env.get("JWT_SECRET") == Some(DEMO_SECRET) {
        r.push(Finding::error("demo_secret", r.env_place("JWT_SECRET")).variable("JWT_SECRET").says("JWT_SECRET is still the public demo value from upstream's .env.example", "anyone can mint a service_role token for this project", format!("start the migration (keyctl migrate --project {dir}) and revoke the legacy secret when it is due; it replaces JWT_SECRET")));
    }
    let env_file = project.env_path.display().to_string();
    if let Some(mode) = project
        .facts
        .env_mode
        .map(|m| m & 0o777)
        .filter(|m| m & 0o077 != 0)
    {
        r.push(Finding::warning("env_readable", env_file.clone()).says(format!(".env is readable by group or others (mode {mode:o}) and holds the private signing keys"), "any local user can mint tokens", format!("chmod 600 {env_file}")));
    }
    if project.facts.env_in_git {
        r.push(Finding::warning("env_in_git", env_file).says(".env is tracked by git", "the private signing keys end up in every clone and in the repository's history", "add .env to .gitignore and run: git rm --cached .env (then rotate the keys if the repository was ever pushed)"));
    }
    for path in &project.facts.readable_key_files {
        r.push(
            Finding::warning("key_file_readable", path.display().to_string()).says(
                "a private key file is readable by group or others",
                "any local user can mint tokens",
                format!("chmod 600 {}", path.display()),
            ),
        );
    }
}

/// The migration record: readable, finished, agreeing with the files, not overdue.
fn record(r: &mut Report<'_>, now: Timestamp) -> (Option<Phase>, Option<Vec<crate::jwk::Jwk>>) {
    let dir = r.dir.clone();
    let project = r.project;
    let state = project.state();
    let keys = project
        .env
        .get_nonempty("JWT_KEYS")
        .and_then(|t| keyset::parse_private_set(t, "JWT_KEYS").ok());
    let phase = match (&state, &keys) {
        (Ok(state), keys) => lifecycle::derive(keys.as_deref().unwrap_or_default(), state)
            .ok()
            .map(|s| (s, state)),
        (Err(_), _) => None,
    };
    match &state {
        Err(e) => r.push(
            Finding::error(
                "state_unreadable",
                project.paths.state.display().to_string(),
            )
            .says(
                e.to_string(),
                "keyctl migrate refuses to run",
                "restore the file from a backup, or move it aside",
            ),
        ),
        Ok(s) if s.pending.is_some() => r.push(
            Finding::warning("interrupted_run", project.paths.state.display().to_string()).says(
                "a keyctl run was interrupted",
                "files may be half-way between two phases",
                format!("run keyctl migrate --project {dir} to recover it"),
            ),
        ),
        Ok(_) => {}
    }
    if let Some((snap, state)) = &phase {
        if let Some(last) = state.events.last()
            && last.phase != snap.phase
        {
            r.push(
                Finding::error("state_disagrees", project.env_path.display().to_string())
                    .variable("JWT_KEYS")
                    .says(
                        format!(
                            "the state file says {} (since {}), JWT_KEYS says {}",
                            last.phase, last.at, snap.phase
                        ),
                        "keyctl migrate refuses to continue",
                        "restore the .env from .keyctl/backups/, or move .keyctl/state.json aside",
                    ),
            );
        }
        if snap.phase == Phase::Switched
            && let Some(switched) = state
                .events
                .iter()
                .rev()
                .find(|e| e.step == Step::Switched)
                .map(|e| e.at)
        {
            let expiry = project
                .env
                .get_nonempty("JWT_EXPIRY")
                .and_then(|v| v.parse().ok())
                .filter(|n| (1..=MAX_EXPIRY).contains(n))
                .unwrap_or(3600);
            if let Some(due) = lifecycle::due_at(Phase::Switched, switched, expiry)
                && now > due + OVERDUE
            {
                r.push(Finding::warning("finish_migration", r.env_place("JWT_KEYS")).variable("JWT_KEYS").says(format!(
                        "the previous key could have been revoked on {due} and is still trusted"
                    ), "a leaked old key or JWT_SECRET still mints valid tokens", format!("keyctl migrate --project {dir} --remint-api-keys")));
            }
        }
    }

    (phase.map(|(s, _)| s.phase), keys)
}

/// Wiring: what each service reads, against `.env`.
fn wiring(r: &mut Report<'_>, keys: Option<&Vec<crate::jwk::Jwk>>) {
    let project = r.project;
    let env = &project.env;
    let views = project.views();
    let wired_kids: Vec<String> = env
        .get_nonempty("JWT_JWKS")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v.get("keys").and_then(|k| k.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|k| k.get("kid").and_then(|k| k.as_str()).map(str::to_owned))
        .collect();
    let past_legacy = keys
        .as_ref()
        .is_some_and(|k| k.iter().any(|k| k.material.alg().is_asymmetric()));
    let Ok(Some(compose_file)) = project.compose_if_present() else {
        return;
    };
    let compose_name = compose_file.path.display().to_string();
    let compose = &compose_file.doc;
    if let Some((line, feature)) = compose.outside_references() {
        r.push(
            Finding::error("compose_include", format!("{compose_name}:{line}")).says(
                format!("the compose file uses {feature}; keyctl does not read the other file"),
                "services defined there are neither checked nor wired by keyctl",
                "merge them into this compose file",
            ),
        );
    }
    for view in &views {
        service_wiring(r, compose_file, view, past_legacy, &wired_kids);
    }
    accepted_methods(r, compose_file, &views, keys);
    eddsa_with_functions(r, compose_file, keys);
    realtime_healthcheck(r, compose_file);
}

/// One service: its configuration problems, an empty Auth key set, and whether it reads the
/// key set `.env` holds (and every kid in it).
fn service_wiring(
    r: &mut Report<'_>,
    compose_file: &ComposeFile,
    view: &View,
    past_legacy: bool,
    wired_kids: &[String],
) {
    let dir = r.dir.clone();
    let env = &r.project.env;
    let compose_name = compose_file.path.display().to_string();
    let compose = &compose_file.doc;
    let (var, wanted) = match view.role {
        Role::Auth => ("GOTRUE_JWT_KEYS", "JWT_KEYS"),
        Role::Rest => ("PGRST_JWT_SECRET", "JWT_JWKS"),
        Role::Realtime => ("API_JWT_JWKS", "JWT_JWKS"),
        Role::Storage => ("JWT_JWKS", "JWT_JWKS"),
        Role::Functions => ("SUPABASE_JWKS", "JWT_JWKS"),
        Role::Kong => return,
    };
    let line = compose.env(&view.service, var);
    let place = |l: Option<usize>| {
        l.map_or_else(|| compose_name.clone(), |l| format!("{compose_name}:{l}"))
    };
    for p in &view.problems {
        r.push(
            Finding::error("service_config", place(line.as_ref().map(|l| l.line)))
                .service(&view.service)
                .variable(var)
                .says(
                    p.clone(),
                    "the service rejects every token",
                    format!("fix {var} of service {}", view.service),
                ),
        );
    }
    if view.role == Role::Auth
        && let Some(l) = &line
        && env.interpolate(&l.value).is_ok_and(|v| v.trim().is_empty())
    {
        r.push(Finding::error("empty_jwt_keys", place(Some(l.line))).service(&view.service).variable(var).says("GOTRUE_JWT_KEYS resolves to an empty string", "Auth does not start", format!("set JWT_KEYS in .env (keyctl migrate --project {dir}) or use the upstream form ${{JWT_KEYS:-[]}}")));
    }
    if !past_legacy {
        return;
    }
    let reads_wanted = line
        .as_ref()
        .is_some_and(|l| l.value.contains(&format!("${{{wanted}")));
    if !reads_wanted {
        let commented = compose.commented_env(&view.service, var);
        let how = match (&line, &commented) {
            (Some(l), _) => format!("{var} is {} ", l.value),
            (None, Some(c)) => format!("{var} is commented out (line {}) ", c.line),
            (None, None) => format!("{var} is missing "),
        };
        let breaks = if view.role == Role::Auth {
            "Auth keeps signing with JWT_SECRET and does not know the new keys"
        } else {
            "tokens signed with the asymmetric key get 401 from this service"
        };
        r.push(Finding::error("not_wired", place(line.as_ref().or(commented.as_ref()).map(|l| l.line))).service(&view.service).variable(var).says(format!("{how}while .env holds asymmetric keys: service {} does not read {wanted}", view.service), breaks, format!("keyctl migrate --project {dir} wires it (or set {var}: ${{{wanted}}}), then restart {}", view.service)));
        return;
    }
    if view.role != Role::Auth {
        for kid in wired_kids {
            if !view.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                r.push(
                    Finding::error("kid_missing", place(line.as_ref().map(|l| l.line)))
                        .service(&view.service)
                        .variable(var)
                        .kid_opt(Some(kid))
                        .says(
                            format!("service {} does not get kid {kid}", view.service),
                            "tokens signed with that key get 401 from this service",
                            format!("check {var} of service {}", view.service),
                        ),
                );
            }
        }
    }
}

/// Auth's accepted methods list every algorithm `JWT_KEYS` trusts.
fn accepted_methods(
    r: &mut Report<'_>,
    compose_file: &ComposeFile,
    views: &[View],
    keys: Option<&Vec<crate::jwk::Jwk>>,
) {
    let env = &r.project.env;
    let compose_name = compose_file.path.display().to_string();
    let compose = &compose_file.doc;
    for view in views.iter().filter(|v| v.role == Role::Auth) {
        for var in ["GOTRUE_JWT_VALID_METHODS", "GOTRUE_JWT_VALIDMETHODS"] {
            let Some(l) = compose.env(&view.service, var) else {
                continue;
            };
            let value = env.interpolate(&l.value).unwrap_or_default();
            if value.trim().is_empty() {
                continue;
            }
            for k in keys.into_iter().flatten() {
                let alg = k.material.alg();
                if !value.split(',').any(|m| m.trim() == alg.as_str()) {
                    r.push(
                        Finding::error("method_not_allowed", format!("{compose_name}:{}", l.line))
                            .service(&view.service)
                            .variable(var)
                            .kid_opt(k.kid.as_deref())
                            .says(
                                format!(
                                    "{var} ({value}) does not list {alg}, which JWT_KEYS trusts"
                                ),
                                "Auth rejects tokens of that algorithm",
                                format!(
                                    "add {alg} to {var}, or remove the line so Auth derives it"
                                ),
                            ),
                    );
                }
            }
        }
    }
}

/// EdDSA signing while the stack has Edge Functions.
fn eddsa_with_functions(
    r: &mut Report<'_>,
    compose_file: &ComposeFile,
    keys: Option<&Vec<crate::jwk::Jwk>>,
) {
    let compose = &compose_file.doc;
    let signer_alg = keys
        .into_iter()
        .flatten()
        .find(|k| k.can_sign())
        .map(|k| k.material.alg());
    if signer_alg == Some(Alg::EdDsa) && !compose.with_role(Role::Functions).is_empty() {
        r.push(
            Finding::warning("eddsa_functions", r.env_place("JWT_KEYS"))
                .variable("JWT_KEYS")
                .says(
                    "Auth signs with EdDSA while the stack has Edge Functions",
                    "Edge Functions (and supabase-js getClaims) cannot verify Ed25519 tokens",
                    "rotate to ES256: keyctl migrate --alg ES256",
                ),
        );
    }
}

/// Realtime's healthcheck still sends an `ANON_KEY` that is no longer HS256.
fn realtime_healthcheck(r: &mut Report<'_>, compose_file: &ComposeFile) {
    let env = &r.project.env;
    let compose_name = compose_file.path.display().to_string();
    let compose = &compose_file.doc;
    for s in compose.with_role(Role::Realtime) {
        let test = compose.healthcheck_test(&s.name).unwrap_or_default();
        if test.contains("${ANON_KEY}")
            && env
                .get_nonempty("ANON_KEY")
                .is_some_and(|t| !apikey::is_hs256(t))
        {
            r.push(Finding::error("realtime_healthcheck", compose_name.clone()).service(&s.name).variable("ANON_KEY").says("realtime's healthcheck sends ANON_KEY, which is no longer an HS256 token", "realtime's management endpoint accepts only HS256: the container is reported unhealthy", format!("point the healthcheck at an HS256 token signed with JWT_SECRET (keyctl migrate sets {} when it revokes the legacy key)", crate::migrate::HEALTHCHECK_VAR)));
        }
    }
}

/// Images older than the version that understands asymmetric keys (SPEC §7): an error once
/// the project uses them, a warning before (the migration refuses to start).
fn images(r: &mut Report<'_>, keys: Option<&Vec<crate::jwk::Jwk>>) {
    let Ok(Some(compose)) = r.project.compose_if_present() else {
        return;
    };
    let past_legacy = keys.is_some_and(|k| k.iter().any(|k| k.material.alg().is_asymmetric()));
    for f in crate::images::check(&compose.doc) {
        let place = compose.place(Some(f.line()));
        let finding = match f {
            crate::images::Finding::TooOld {
                service,
                image,
                need,
                why,
                ..
            } => {
                let base = if past_legacy {
                    Finding::error("image_too_old", place)
                } else {
                    Finding::warning("image_too_old", place)
                };
                base.service(&service).says(
                    format!("service {service} runs {image}; {need} or newer {why}"),
                    if past_legacy {
                        "this service ignores the asymmetric keys and rejects tokens signed with them"
                    } else {
                        "keyctl migrate refuses to start: after the switch this service would reject every session"
                    },
                    format!(
                        "set the image of {service} to {need} or newer in {}, then: docker compose up -d {service}",
                        compose.path.display()
                    ),
                )
            }
            crate::images::Finding::Unknown { service, image, .. } => {
                Finding::warning("image_tag_unknown", place)
                    .service(&service)
                    .says(
                        format!("cannot tell the version of {image}"),
                        "keyctl cannot check that this service understands asymmetric keys",
                        format!(
                            "pin {service} to a versioned tag (SPEC §7 names the oldest that works)"
                        ),
                    )
            }
        };
        r.push(finding);
    }
}

/// API keys: well-formed, the right role, not expiring, accepted by every service.
fn api_keys(r: &mut Report<'_>, now: Timestamp) {
    let dir = r.dir.clone();
    let project = r.project;
    let env = &project.env;
    let views = project.views();
    let known = project.known();
    for (var, role) in [
        ("ANON_KEY", "anon"),
        ("SERVICE_ROLE_KEY", "service_role"),
        ("ANON_KEY_ASYMMETRIC", "anon"),
        ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role"),
    ] {
        let Some(token) = env.get_nonempty(var) else {
            continue;
        };
        let place = r.env_place(var);
        let d = match jws::decode(token) {
            Ok(d) => d,
            Err(e) => {
                r.push(Finding::error("api_key_malformed", place).variable(var).says(format!("{var} is not a JWT: {e}"), "every request with this key gets 401", format!(
                        "re-mint it: keyctl token sign --project {dir} --role {role} --exp 3650d"
                    )));
                continue;
            }
        };
        let kid = d.kid().map(str::to_owned);
        if d.claims.get("role").and_then(|r| r.as_str()) != Some(role) {
            r.push(
                Finding::error("api_key_role", place.clone())
                    .variable(var)
                    .kid_opt(kid.as_deref())
                    .says(
                        format!(
                            "{var} carries role {:?}, not {role}",
                            d.claims
                                .get("role")
                                .and_then(|r| r.as_str())
                                .unwrap_or("(none)")
                        ),
                        "requests run with the wrong database role",
                        format!("re-mint it with --role {role}"),
                    ),
            );
        }
        if let Some(exp) = d.claims.get("exp").and_then(|e| e.as_i64()) {
            let left = exp - now.as_second();
            if left > 0 && left < EXPIRY_WARNING.as_secs() {
                r.push(Finding::warning("api_key_expiring", place.clone()).variable(var).kid_opt(kid.as_deref()).says(format!("{var} expires on {} (in {})", Timestamp::from_second(exp).map_or_else(|_| exp.to_string(), |t| t.to_string()), lifecycle::human(SignedDuration::from_secs(left))), "every client using it gets 401 from then on", format!("re-mint it (keyctl token sign --project {dir} --role {role} --exp 3650d) and update the clients")));
            }
        }
        for view in &views {
            if let Verdict::Rejected { code, reason } =
                verifier::verify(view, &d, now, &known, None)
            {
                let severity = Severity::Error;
                r.push(Finding::new(severity, "api_key_rejected", place.clone()).service(&view.service).variable(var).kid_opt(kid.as_deref()).says(format!("{var} is rejected by {} ({code}): {reason}", view.service), "every request with this key gets 401 from that service", format!("keyctl token verify \"${var}\" --project {dir} explains it; re-mint with keyctl token sign --project {dir} --role {role} --exp 3650d")));
            }
        }
    }
}
