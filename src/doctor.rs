//! The diagnosis behind `keyctl doctor`: every rule keyctl knows (SPEC §1–§3), checked
//! against what each service actually reads, each finding with its place, what breaks and
//! the fix. Reads only; the command renders the findings.

use std::os::unix::fs::PermissionsExt;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::apikey;
use crate::change;
use crate::cmd::token::Context;
use crate::compose::Role;
use crate::jws;
use crate::key::Alg;
use crate::keyset;
use crate::lifecycle::{self, Phase};
use crate::verifier::{self, Verdict};

/// The demo `JWT_SECRET` of upstream's `.env.example`.
pub const DEMO_SECRET: &str = "your-super-secret-jwt-token-with-at-least-32-characters-long";
/// API keys expiring within this are reported.
pub const EXPIRY_WARNING: SignedDuration = SignedDuration::from_hours(24 * 30);
/// A revocation overdue by more than this is reported.
pub const OVERDUE: SignedDuration = SignedDuration::from_hours(24 * 7);

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something fails now or on the next restart.
    Error,
    /// Something will fail, or is unsafe.
    Warning,
}

/// One problem.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
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

struct Report<'c> {
    ctx: &'c Context,
    findings: Vec<Finding>,
}

impl Report<'_> {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        severity: Severity,
        code: &'static str,
        place: String,
        service: Option<&str>,
        variable: Option<&str>,
        kid: Option<&str>,
        message: String,
        breaks: &str,
        fix: String,
    ) {
        self.findings.push(Finding {
            severity,
            code,
            place,
            service: service.map(str::to_owned),
            variable: variable.map(str::to_owned),
            kid: kid.map(str::to_owned),
            message,
            breaks: breaks.to_owned(),
            fix,
        });
    }

    fn env_place(&self, var: &str) -> String {
        let p = &self.ctx.project;
        match p.env.entry(var) {
            Some((_, line)) => format!("{}:{line}", p.env_path.display()),
            None => p.env_path.display().to_string(),
        }
    }

    fn project_arg(&self) -> String {
        self.ctx.paths.project.display().to_string()
    }
}

/// Runs every check.
#[must_use]
pub fn diagnose(
    ctx: &Context,
    compose_path: Option<&std::path::Path>,
    now: Timestamp,
) -> (Option<Phase>, Vec<Finding>) {
    let mut r = Report {
        ctx,
        findings: Vec::new(),
    };
    let env = &ctx.project.env;
    let dir = r.project_arg();

    // 1. The sets themselves (every rule of `jwks --check`).
    for p in keyset::check(&crate::cmd::jwks::project_inputs(&ctx.project)) {
        let variable = ["JWT_KEYS", "JWT_JWKS", "JWT_SECRET"]
            .into_iter()
            .find(|v| p.place.ends_with(v));
        let kid = p.key.as_deref().and_then(|k| k.strip_prefix("kid "));
        r.add(Severity::Error, "key_set", p.place.clone(), None, variable, kid, format!("{}{}", p.key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default(), p.message), "the services read this value at start: Auth refuses to start or verifiers reject tokens", format!("fix the value, then check with: keyctl jwks --check --project {dir}"));
    }

    // 2. Secrets.
    if env.get("JWT_SECRET") == Some(DEMO_SECRET) {
        r.add(Severity::Error, "demo_secret", r.env_place("JWT_SECRET"), None, Some("JWT_SECRET"), None, "JWT_SECRET is still the public demo value from upstream's .env.example".into(), "anyone can mint a service_role token for this project", format!("start the migration (keyctl migrate --project {dir}) and revoke the legacy secret when it is due; it replaces JWT_SECRET"));
    }
    if let Ok(meta) = std::fs::metadata(&ctx.project.env_path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            r.add(Severity::Warning, "env_readable", ctx.project.env_path.display().to_string(), None, None, None, format!(".env is readable by group or others (mode {mode:o}) and holds the private signing keys"), "any local user can mint tokens", format!("chmod 600 {}", ctx.project.env_path.display()));
        }
    }
    if crate::project::tracked_by_git(&ctx.project.env_path) {
        r.add(Severity::Warning, "env_in_git", ctx.project.env_path.display().to_string(), None, None, None, ".env is tracked by git".into(), "the private signing keys end up in every clone and in the repository's history", "add .env to .gitignore and run: git rm --cached .env (then rotate the keys if the repository was ever pushed)".into());
    }
    if let Ok(entries) = std::fs::read_dir(&ctx.paths.project) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let private =
                name.ends_with(".pem") || name.ends_with(".jwk.json") || name == "keys.env";
            let Ok(meta) = e.metadata() else { continue };
            if private
                && meta.is_file()
                && meta.permissions().mode() & 0o077 != 0
                && std::fs::read_to_string(e.path())
                    .is_ok_and(|t| t.contains("PRIVATE KEY") || t.contains("\"d\""))
            {
                r.add(
                    Severity::Warning,
                    "key_file_readable",
                    e.path().display().to_string(),
                    None,
                    None,
                    None,
                    "a private key file is readable by group or others".into(),
                    "any local user can mint tokens",
                    format!("chmod 600 {}", e.path().display()),
                );
            }
        }
    }

    // 3. The migration record.
    let state = change::load_state(&ctx.paths, now);
    let keys = env
        .get_nonempty("JWT_KEYS")
        .and_then(|t| keyset::parse_private_set(t, "JWT_KEYS").ok());
    let phase = match (&state, &keys) {
        (Ok(state), keys) => lifecycle::derive(keys.as_deref().unwrap_or_default(), state)
            .ok()
            .map(|s| (s, state)),
        (Err(_), _) => None,
    };
    match &state {
        Err(e) => r.add(
            Severity::Error,
            "state_unreadable",
            ctx.paths.state.display().to_string(),
            None,
            None,
            None,
            e.to_string(),
            "keyctl migrate refuses to run",
            "restore the file from a backup, or move it aside".into(),
        ),
        Ok(s) if s.pending.is_some() => r.add(
            Severity::Warning,
            "interrupted_run",
            ctx.paths.state.display().to_string(),
            None,
            None,
            None,
            "a keyctl run was interrupted".into(),
            "files may be half-way between two phases",
            format!("run keyctl migrate --project {dir} to recover it"),
        ),
        Ok(_) => {}
    }
    if let Some((snap, state)) = &phase {
        if let Some(last) = state.events.last()
            && last.phase != snap.phase.as_str()
        {
            r.add(
                Severity::Error,
                "state_disagrees",
                ctx.project.env_path.display().to_string(),
                None,
                Some("JWT_KEYS"),
                None,
                format!(
                    "the state file says {} (since {}), JWT_KEYS says {}",
                    last.phase, last.at, snap.phase
                ),
                "keyctl migrate refuses to continue",
                "restore the .env from .keyctl/backups/, or move .keyctl/state.json aside".into(),
            );
        }
        if snap.phase == Phase::Switched
            && let Some(switched) = state
                .events
                .iter()
                .rev()
                .find(|e| e.step == "switched")
                .map(|e| e.at)
        {
            let expiry = env
                .get_nonempty("JWT_EXPIRY")
                .and_then(|v| v.parse().ok())
                .filter(|n| (1..=crate::migrate::MAX_EXPIRY).contains(n))
                .unwrap_or(3600);
            if let Some(due) = lifecycle::due_at(Phase::Switched, switched, expiry)
                && now > due + OVERDUE
            {
                r.add(
                    Severity::Warning,
                    "finish_migration",
                    r.env_place("JWT_KEYS"),
                    None,
                    Some("JWT_KEYS"),
                    None,
                    format!(
                        "the previous key could have been revoked on {due} and is still trusted"
                    ),
                    "a leaked old key or JWT_SECRET still mints valid tokens",
                    format!("keyctl migrate --project {dir} --remint-api-keys"),
                );
            }
        }
    }

    // 4. Wiring: what each service reads, against .env.
    let views = ctx.views();
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
    let compose_name =
        compose_path.map_or_else(|| "compose file".to_owned(), |p| p.display().to_string());
    if let Some(compose) = &ctx.compose {
        if let Some((line, feature)) = compose.outside_references() {
            r.add(
                Severity::Error,
                "compose_include",
                format!("{compose_name}:{line}"),
                None,
                None,
                None,
                format!("the compose file uses {feature}; keyctl does not read the other file"),
                "services defined there are neither checked nor wired by keyctl",
                "merge them into this compose file".into(),
            );
        }
        for view in &views {
            let (var, wanted) = match view.role {
                Role::Auth => ("GOTRUE_JWT_KEYS", "JWT_KEYS"),
                Role::Rest => ("PGRST_JWT_SECRET", "JWT_JWKS"),
                Role::Realtime => ("API_JWT_JWKS", "JWT_JWKS"),
                Role::Storage => ("JWT_JWKS", "JWT_JWKS"),
                Role::Functions => ("SUPABASE_JWKS", "JWT_JWKS"),
                Role::Kong => continue,
            };
            let line = compose.env(&view.service, var);
            let place = |l: Option<usize>| {
                l.map_or_else(|| compose_name.clone(), |l| format!("{compose_name}:{l}"))
            };
            for p in &view.problems {
                r.add(
                    Severity::Error,
                    "service_config",
                    place(line.as_ref().map(|l| l.line)),
                    Some(&view.service),
                    Some(var),
                    None,
                    p.clone(),
                    "the service rejects every token",
                    format!("fix {var} of service {}", view.service),
                );
            }
            if view.role == Role::Auth
                && let Some(l) = &line
                && env.interpolate(&l.value).is_ok_and(|v| v.trim().is_empty())
            {
                r.add(Severity::Error, "empty_jwt_keys", place(Some(l.line)), Some(&view.service), Some(var), None, "GOTRUE_JWT_KEYS resolves to an empty string".into(), "Auth does not start", format!("set JWT_KEYS in .env (keyctl migrate --project {dir}) or use the upstream form ${{JWT_KEYS:-[]}}"));
            }
            if !past_legacy {
                continue;
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
                r.add(Severity::Error, "not_wired", place(line.as_ref().or(commented.as_ref()).map(|l| l.line)), Some(&view.service), Some(var), None, format!("{how}while .env holds asymmetric keys: service {} does not read {wanted}", view.service), breaks, format!("keyctl migrate --project {dir} wires it (or set {var}: ${{{wanted}}}), then restart {}", view.service));
                continue;
            }
            if view.role != Role::Auth {
                for kid in &wired_kids {
                    if !view.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                        r.add(
                            Severity::Error,
                            "kid_missing",
                            place(line.as_ref().map(|l| l.line)),
                            Some(&view.service),
                            Some(var),
                            Some(kid),
                            format!("service {} does not get kid {kid}", view.service),
                            "tokens signed with that key get 401 from this service",
                            format!("check {var} of service {}", view.service),
                        );
                    }
                }
            }
        }
        // Accepted methods.
        for view in views.iter().filter(|v| v.role == Role::Auth) {
            for var in ["GOTRUE_JWT_VALID_METHODS", "GOTRUE_JWT_VALIDMETHODS"] {
                let Some(l) = compose.env(&view.service, var) else {
                    continue;
                };
                let value = env.interpolate(&l.value).unwrap_or_default();
                if value.trim().is_empty() {
                    continue;
                }
                for k in keys.iter().flatten() {
                    let alg = k.material.alg();
                    if !value.split(',').any(|m| m.trim() == alg.as_str()) {
                        r.add(
                            Severity::Error,
                            "method_not_allowed",
                            format!("{compose_name}:{}", l.line),
                            Some(&view.service),
                            Some(var),
                            k.kid.as_deref(),
                            format!("{var} ({value}) does not list {alg}, which JWT_KEYS trusts"),
                            "Auth rejects tokens of that algorithm",
                            format!("add {alg} to {var}, or remove the line so Auth derives it"),
                        );
                    }
                }
            }
        }
        // EdDSA with Edge Functions.
        let signer_alg = keys
            .iter()
            .flatten()
            .find(|k| k.can_sign())
            .map(|k| k.material.alg());
        if signer_alg == Some(Alg::EdDsa) && !compose.with_role(Role::Functions).is_empty() {
            r.add(
                Severity::Warning,
                "eddsa_functions",
                r.env_place("JWT_KEYS"),
                None,
                Some("JWT_KEYS"),
                None,
                "Auth signs with EdDSA while the stack has Edge Functions".into(),
                "Edge Functions (and supabase-js getClaims) cannot verify Ed25519 tokens",
                "rotate to ES256: keyctl migrate --alg ES256".into(),
            );
        }
        // Realtime's healthcheck.
        for s in compose.with_role(Role::Realtime) {
            let test = compose.healthcheck_test(&s.name).unwrap_or_default();
            if test.contains("${ANON_KEY}")
                && env
                    .get_nonempty("ANON_KEY")
                    .is_some_and(|t| !apikey::is_hs256(t))
            {
                r.add(Severity::Error, "realtime_healthcheck", compose_name.clone(), Some(&s.name), Some("ANON_KEY"), None, "realtime's healthcheck sends ANON_KEY, which is no longer an HS256 token".into(), "realtime's management endpoint accepts only HS256: the container is reported unhealthy", format!("point the healthcheck at an HS256 token signed with JWT_SECRET (keyctl migrate sets {} when it revokes the legacy key)", crate::migrate::HEALTHCHECK_VAR));
            }
        }
    }

    // 5. API keys.
    let known = ctx.known(now);
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
                r.add(
                    Severity::Error,
                    "api_key_malformed",
                    place,
                    None,
                    Some(var),
                    None,
                    format!("{var} is not a JWT: {e}"),
                    "every request with this key gets 401",
                    format!(
                        "re-mint it: keyctl token sign --project {dir} --role {role} --exp 3650d"
                    ),
                );
                continue;
            }
        };
        let kid = d.kid().map(str::to_owned);
        if d.claims.get("role").and_then(|r| r.as_str()) != Some(role) {
            r.add(
                Severity::Error,
                "api_key_role",
                place.clone(),
                None,
                Some(var),
                kid.as_deref(),
                format!(
                    "{var} carries role {:?}, not {role}",
                    d.claims
                        .get("role")
                        .and_then(|r| r.as_str())
                        .unwrap_or("(none)")
                ),
                "requests run with the wrong database role",
                format!("re-mint it with --role {role}"),
            );
        }
        if let Some(exp) = d.claims.get("exp").and_then(|e| e.as_i64()) {
            let left = exp - now.as_second();
            if left > 0 && left < EXPIRY_WARNING.as_secs() {
                r.add(Severity::Warning, "api_key_expiring", place.clone(), None, Some(var), kid.as_deref(), format!("{var} expires on {} (in {})", Timestamp::from_second(exp).map_or_else(|_| exp.to_string(), |t| t.to_string()), lifecycle::human(SignedDuration::from_secs(left))), "every client using it gets 401 from then on", format!("re-mint it (keyctl token sign --project {dir} --role {role} --exp 3650d) and update the clients"));
            }
        }
        for view in &views {
            if let Verdict::Rejected { code, reason } =
                verifier::verify(view, &d, now, &known, None)
            {
                let severity = Severity::Error;
                r.add(severity, "api_key_rejected", place.clone(), Some(&view.service), Some(var), kid.as_deref(), format!("{var} is rejected by {} ({code}): {reason}", view.service), "every request with this key gets 401 from that service", format!("keyctl token verify \"${var}\" --project {dir} explains it; re-mint with keyctl token sign --project {dir} --role {role} --exp 3650d"));
            }
        }
    }
    r.findings.sort_by_key(|f| f.severity);
    (phase.map(|(s, _)| s.phase), r.findings)
}
