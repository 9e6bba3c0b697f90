//! What the trust model finds: services keyctl does not recognise (no Auth, no verifier, no
//! compose file), services that resolve a different HS256 secret than Auth (the split-secret
//! outage), services that still resolve a secret keyctl retired, and what would block a later
//! step of the migration (a literal secret, a healthcheck keyctl cannot rewrite).

use crate::compose::Role;
use crate::lifecycle::Phase;
use crate::migrate::{BlockerKind, blockers};

use super::{Finding, Report};

/// No compose file, no Auth, no verifier: keyctl would check (or wire) nothing.
pub(super) fn recognition(r: &mut Report<'_>) {
    let dir = r.dir.clone();
    let project = r.project;
    let compose = match project.compose_if_present() {
        Ok(Some(c)) => c,
        Ok(None) => {
            r.push(Finding::warning("no_compose", project.env_path.display().to_string()).says(
                "no compose file was found beside the .env: keyctl checks the .env alone, as if every service were wired the upstream way",
                "problems in how the services read their keys go unreported",
                format!("keyctl doctor {dir} --compose-file PATH/TO/docker-compose.yml"),
            ));
            return;
        }
        Err(_) => return,
    };
    let place = compose.path.display().to_string();
    let services: Vec<String> = compose
        .doc
        .services()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    if compose.doc.with_role(Role::Auth).is_empty() {
        r.push(Finding::warning("no_auth", &place).says(
            format!("no service is recognised as Auth (image supabase/gotrue or supabase/auth) among: {}", services.join(", ")),
            "keyctl cannot tell which secret Auth signs with; keyctl migrate refuses to start",
            format!("name it: keyctl doctor {dir} --service-is SERVICE=auth (or add [services] SERVICE = \"auth\" to keyctl.toml beside .env)"),
        ));
    }
    for a in compose.doc.with_role(Role::Auth) {
        let resolved = project
            .sources()
            .resolved(&a.name, "GOTRUE_JWT_SECRET")
            .is_some_and(|v| !v.is_empty());
        if !resolved {
            r.push(Finding::error("auth_secret_unresolved", &place).service(&a.name).variable("GOTRUE_JWT_SECRET").says(
                format!("Auth (service {}) resolves no GOTRUE_JWT_SECRET from its environment or env_file: files", a.name),
                "keyctl cannot tell which secret Auth signs with (an image that sets it inside the container is invisible to it); keyctl migrate refuses to start",
                format!("set GOTRUE_JWT_SECRET: ${{JWT_SECRET}} in the environment of {} (with JWT_SECRET in .env), then keyctl doctor {dir}", a.name),
            ));
        }
    }
    let verifiers = [Role::Rest, Role::Realtime, Role::Storage, Role::Functions];
    if verifiers
        .iter()
        .all(|v| compose.doc.with_role(*v).is_empty())
    {
        r.push(Finding::warning("no_verifier", &place).says(
            "no service is recognised as PostgREST, Realtime, Storage or Edge Functions",
            "keyctl checks and wires no verifier: a migration would leave them on the old secret",
            format!("name them: keyctl doctor {dir} --service-is SERVICE=rest (roles: rest, realtime, storage, functions; or a [services] table in keyctl.toml beside .env)"),
        ));
    }
}

/// One service variable with another secret: service, variable, compose line.
type SplitUse = (String, &'static str, Option<usize>);

/// Services that resolve another HS256 secret than Auth, grouped by where that value comes
/// from (one cause, however many services read it).
pub(super) fn split_secrets(r: &mut Report<'_>) {
    let dir = r.dir.clone();
    let project = r.project;
    let Ok(Some(compose)) = project.compose_if_present() else {
        return;
    };
    let Some(secret) = project.secret() else {
        return;
    };
    let mut groups: Vec<(String, Vec<SplitUse>)> = Vec::new();
    for u in project.sources().splits() {
        let from = u.traced.origin.home(u.key).map_or_else(
            || "a literal in the compose file".to_owned(),
            |h| h.describe(),
        );
        let entry = (u.service.clone(), u.key, u.traced.line);
        match groups.iter_mut().find(|(f, _)| *f == from) {
            Some((_, list)) => list.push(entry),
            None => groups.push((from, vec![entry])),
        }
    }
    for (from, uses) in groups {
        let names: Vec<String> = uses.iter().map(|(s, k, _)| format!("{s} {k}")).collect();
        let services: Vec<&str> = uses.iter().map(|(s, _, _)| s.as_str()).collect();
        let owned: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
        let (first, key, line) = &uses[0];
        r.push(
            Finding::error("split_secret", compose.place(*line))
                .service(first)
                .services(&owned)
                .variable(key)
                .says(
                    format!(
                        "{} read(s) the HS256 secret from {from}, which differs from the one Auth uses ({})",
                        names.join(", "),
                        secret.read_as
                    ),
                    &format!("every token Auth issues gets 401 \"invalid signature\" from {}; keyctl migrate refuses to start", services.join(", ")),
                    format!("{}, then restart {}", secret.realign(&dir), services.join(" ")),
                ),
        );
    }
}

/// After a revocation, no service may resolve a secret keyctl retired.
pub(super) fn retired_secrets(r: &mut Report<'_>) {
    let dir = r.dir.clone();
    let project = r.project;
    let Ok(Some(compose)) = project.compose_if_present() else {
        return;
    };
    let sources = project.sources();
    for (service, key, t) in sources.holders(&|v| project.retired_at(v).is_some()) {
        let at = project
            .retired_at(&t.value)
            .expect("a holder of a retired secret");
        r.push(
            Finding::error("retired_secret_trusted", compose.place(t.line))
                .service(&service)
                .variable(&key)
                .says(
                    format!("service {service} resolves {key} to the secret keyctl retired on {at}"),
                    "the revoked secret still mints tokens this service accepts: the revocation is incomplete",
                    format!("keyctl migrate rewire {dir} --yes (points it at Auth's current secret), then restart {service}"),
                ),
        );
    }
}

/// What would refuse a later step of the migration, reported before the first one.
pub(super) fn migration_blockers(r: &mut Report<'_>, phase: Option<Phase>) {
    let project = r.project;
    let (Some(phase), Ok(snap)) = (phase, project.snapshot()) else {
        return;
    };
    if phase == Phase::Revoked {
        return;
    }
    for b in blockers(project, &snap, true) {
        let code = match b.kind {
            BlockerKind::LiteralSecret => "secret_literal",
            BlockerKind::Healthcheck => "healthcheck_form",
            // Reported by their own checks.
            BlockerKind::Compose
            | BlockerKind::NoAuth
            | BlockerKind::Split
            | BlockerKind::Image => continue,
        };
        let text = b.error.to_string();
        let (place, message) = text.split_once(": ").unwrap_or(("", text.as_str()));
        let mut f = Finding::warning(code, place).says(
            message.to_owned(),
            "keyctl migrate refuses to start until it is fixed (the last step could not be taken safely)",
            match b.kind {
                BlockerKind::Healthcheck => {
                    let var = b.var.as_deref().unwrap_or("ANON_KEY");
                    format!("edit realtime's healthcheck so it sends plain ${{{var}}} (no default or other expression); keyctl rewrites that form at the last step")
                }
                _ => "move the secret into .env and reference it from the compose file".to_owned(),
            },
        );
        if let Some(s) = &b.service {
            f = f.service(s);
        }
        if let Some(v) = &b.var {
            f = f.variable(v);
        }
        r.push(f);
    }
}
