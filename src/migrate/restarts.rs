//! Which services must restart after a change: those whose compose block changed, those
//! that interpolate a variable whose value changed, and those that read the whole `.env`
//! through `env_file:`. Verifiers first, Auth last (SPEC §3). Pure.

use std::collections::BTreeSet;

use crate::compose::{Compose, Role};
use crate::envfile::{EnvFile, LineKind};
use crate::flow::Restarts;

/// The variables whose value differs between `before` and `after`.
#[must_use]
pub fn changed_vars(before: &EnvFile, after: &EnvFile) -> BTreeSet<String> {
    let mut changed = BTreeSet::new();
    for line in before.lines().iter().chain(after.lines()) {
        if let LineKind::Entry(e) = &line.kind
            && before.get(&e.key) != after.get(&e.key)
        {
            changed.insert(e.key.clone());
        }
    }
    changed
}

/// Services whose resolved inputs change between the two versions of the files.
#[must_use]
pub fn restarts(
    env_before: &EnvFile,
    env_after: &EnvFile,
    compose_before: &Compose,
    compose_after: &Compose,
) -> Restarts {
    let changed = changed_vars(env_before, env_after);
    let blocks_before = service_blocks(compose_before);
    let blocks_after = service_blocks(compose_after);
    let mut r = Restarts::default();
    let mut auth = Vec::new();
    for service in compose_after.services() {
        let find = |blocks: &[(String, String)]| {
            blocks
                .iter()
                .find(|(n, _)| *n == service.name)
                .map(|(_, t)| t.clone())
                .unwrap_or_default()
        };
        let (before, after) = (find(&blocks_before), find(&blocks_after));
        let touched = after != before
            || referenced_vars(&after).iter().any(|v| changed.contains(v))
            || (after.contains("env_file") && !changed.is_empty());
        if !touched {
            continue;
        }
        match service.role {
            Some(Role::Rest | Role::Realtime | Role::Storage | Role::Functions) => {
                r.verifiers.push(service.name.clone());
            }
            Some(Role::Auth) => auth.push(service.name.clone()),
            _ => r.others.push(service.name.clone()),
        }
    }
    r.others.extend(auth);
    r
}

/// Adds the services that read a changed `env_file:` file, and Kong when its mounted
/// declarative file changed (verifiers first, Auth last, as [`restarts`] orders them).
pub(crate) fn add_readers(r: &mut Restarts, compose: &Compose, env_files: &[String], kong: bool) {
    for service in compose.services() {
        let reads = compose
            .env_files(&service.name)
            .iter()
            .any(|f| env_files.contains(f))
            || (kong && service.role == Some(Role::Kong));
        if !reads || r.verifiers.contains(&service.name) || r.others.contains(&service.name) {
            continue;
        }
        match service.role {
            Some(Role::Rest | Role::Realtime | Role::Storage | Role::Functions) => {
                r.verifiers.push(service.name.clone());
            }
            Some(Role::Auth) => r.others.push(service.name.clone()),
            _ => {
                let at = r
                    .others
                    .iter()
                    .position(|n| compose.with_role(Role::Auth).iter().any(|a| a.name == *n))
                    .unwrap_or(r.others.len());
                r.others.insert(at, service.name.clone());
            }
        }
    }
}

/// Each service's block of text: from its key line to the next service's key line (or the
/// next top-level key).
fn service_blocks(compose: &Compose) -> Vec<(String, String)> {
    let lines: Vec<&str> = compose.text().split_inclusive('\n').collect();
    let services = compose.services();
    let mut out = Vec::new();
    for (i, s) in services.iter().enumerate() {
        let start = s.line.saturating_sub(1).min(lines.len());
        let mut end = services
            .get(i + 1)
            .map_or(lines.len(), |n| n.line.saturating_sub(1))
            .clamp(start, lines.len());
        if let Some(top) = lines[(start + 1).min(end)..end]
            .iter()
            .position(|l| !l.starts_with([' ', '\t', '#', '\r', '\n']) && !l.is_empty())
        {
            end = start + 1 + top;
        }
        out.push((s.name.clone(), lines[start..end].concat()));
    }
    out
}

/// Variable names a text interpolates (`$NAME`, `${NAME…}`; `$$` escapes).
#[must_use]
pub fn referenced_vars(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let mut j = i + 1;
            if j < b.len() && b[j] == b'$' {
                i = j + 1;
                continue;
            }
            if j < b.len() && b[j] == b'{' {
                j += 1;
            }
            let start = j;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start {
                out.insert(text[start..j].to_owned());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_referenced_variables() {
        let v = referenced_vars("a: ${JWT_JWKS:-${JWT_SECRET}} $$NOT $ANON_KEY");
        assert_eq!(
            v.into_iter().collect::<Vec<_>>(),
            ["ANON_KEY", "JWT_JWKS", "JWT_SECRET"]
        );
    }

    #[test]
    fn references_finds_compose_interpolations_only() {
        let references = |text: &str, var: &str| referenced_vars(text).contains(var);
        assert!(references("X: ${JWT_SECRET}", "JWT_SECRET"));
        assert!(references("X: ${JWT_JWKS:-${JWT_SECRET}}", "JWT_SECRET"));
        assert!(references("X: $JWT_SECRET\n", "JWT_SECRET"));
        assert!(!references("X: ${JWT_SECRET_FILE}", "JWT_SECRET"));
        assert!(!references("X: $$JWT_SECRET", "JWT_SECRET"));
        assert!(!references("JWT_SECRET: x", "JWT_SECRET"));
    }

    #[test]
    fn env_file_readers_restart_when_anything_changed() {
        let compose = Compose::parse(
            "services:\n  auth:\n    image: supabase/gotrue:v2.180.0\n    env_file: .env\n  rest:\n    image: postgrest/postgrest:v13.0.0\n    environment:\n      PGRST_JWT_SECRET: ${JWT_SECRET}\n",
        )
        .unwrap();
        let before = EnvFile::parse("JWT_SECRET=a\nOTHER=1\n").unwrap();
        let after = EnvFile::parse("JWT_SECRET=a\nOTHER=2\n").unwrap();
        let r = restarts(&before, &after, &compose, &compose);
        assert_eq!(r.others, ["auth"]);
        assert!(r.verifiers.is_empty());
        let r = restarts(&before, &before, &compose, &compose);
        assert!(r.is_empty());
    }

    #[test]
    fn readers_of_a_changed_env_file_and_kong_restart_before_auth() {
        let compose = Compose::parse(
            "services:\n  auth:\n    image: supabase/gotrue:v2.180.0\n    env_file: keys.env\n  rest:\n    image: postgrest/postgrest:v13.0.0\n    env_file: keys.env\n  kong:\n    image: kong:2.8.1\n  studio:\n    image: supabase/studio:x\n",
        )
        .unwrap();
        let mut r = Restarts::default();
        add_readers(&mut r, &compose, &["keys.env".into()], true);
        assert_eq!(r.verifiers, ["rest"]);
        assert_eq!(r.others, ["kong", "auth"]);
        let mut r = Restarts::default();
        add_readers(&mut r, &compose, &[], false);
        assert!(r.is_empty());
    }
}
