//! The project's own configuration: the key sets (every rule of `jwks --check`), the
//! secrets (demo value, modes, git) and the migration record.

use jiff::Timestamp;

use crate::keyset;
use crate::lifecycle::{self, Phase};
use crate::phase::Step;

use super::{DEMO_SECRET, Finding, OVERDUE, Report};

/// The sets themselves (every rule of `jwks --check`).
pub(super) fn key_sets(r: &mut Report<'_>) {
    let dir = r.dir.clone();
    for p in keyset::check(&r.project.key_inputs()) {
        let variable = ["JWT_KEYS", "JWT_JWKS", "JWT_SECRET"]
            .into_iter()
            .find(|v| p.place.ends_with(v));
        let kid = p.key.as_deref().and_then(|k| k.strip_prefix("kid "));
        r.push(Finding::error("key_set", p.place.clone()).variable_opt(variable).kid_opt(kid).says(format!("{}{}", p.key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default(), p.message), "the services read this value at start: Auth refuses to start or verifiers reject tokens", format!("fix the value, then check with: keyctl jwks --check {dir}")));
    }
}

/// Secrets: the demo value, file modes, git.
pub(super) fn secrets(r: &mut Report<'_>) {
    let dir = r.dir.clone();
    let project = r.project;
    if let Some(secret) = project.secret().filter(|s| s.value.as_str() == DEMO_SECRET) {
        let var = secret
            .homes
            .first()
            .map_or("JWT_SECRET", |h| h.var())
            .to_owned();
        // What replaces the secret depends on how far the migration is.
        let fix = match project.snapshot().ok().map(|s| s.phase) {
            Some(Phase::Legacy) | None => format!(
                "start the migration (keyctl migrate {dir}) and revoke the legacy secret when it is due; the revocation replaces {var}"
            ),
            Some(Phase::DualVerify) => format!(
                "finish the migration: switch signing, then revoke the legacy secret when it is due (keyctl migrate {dir} at each step); the revocation replaces {var}"
            ),
            Some(Phase::Switched) => format!(
                "revoke the legacy secret when it is due (keyctl migrate {dir}); the revocation replaces {var}"
            ),
            Some(Phase::Revoked) => format!(
                "the migration is finished, so nothing signs with {var} any more, but services still verify with it: put a fresh random value in {var} (e.g. openssl rand -base64 48) and restart every service that reads it"
            ),
        };
        r.push(Finding::error("demo_secret", r.env_place(&var)).variable(&var).says(format!("{var} (the HS256 secret Auth uses) is still the public demo value from upstream's .env.example"), "anyone can mint a service_role token for this project", fix));
    }
    let env_file = project.keys_file().display().to_string();
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
pub(super) fn record(
    r: &mut Report<'_>,
    now: Timestamp,
) -> (Option<Phase>, Option<Vec<crate::jwk::Jwk>>) {
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
        Err(crate::error::Error::Refused(crate::error::Refusal::Precondition {
            place,
            reason,
        })) => {
            r.push(Finding::error("keyctl_dir_unsafe", place.clone()).says(
                format!("keyctl's directory {reason}"),
                "its state file and backups are not evidence: doctor ignores them and every writing command refuses",
                "make it a real directory owned by the user running keyctl, mode 700",
            ));
        }
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
                format!("run keyctl migrate {dir} to recover it"),
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
            let expiry = project.jwt_expiry().unwrap_or(3600);
            if let Some(due) = lifecycle::due_at(Phase::Switched, switched, expiry)
                && now > due + OVERDUE
            {
                r.push(Finding::warning("finish_migration", r.env_place("JWT_KEYS")).variable("JWT_KEYS").says(format!(
                        "the previous key could have been revoked on {due} and is still trusted"
                    ), "a leaked old key or JWT_SECRET still mints valid tokens", format!("keyctl migrate {dir} --remint-api-keys")));
            }
        }
    }

    (phase.map(|(s, _)| s.phase), keys)
}
