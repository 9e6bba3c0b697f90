//! Whether each service runs what the files say (SPEC §6): the containers the engine reports,
//! compared variable by variable with what the files resolve to now. A container running
//! other values of a key variable is **stale**; one that is stopped, restarting or unhealthy
//! is down. Values are compared, never shown. Pure: the engine is read by `engine.rs`.

use jiff::Timestamp;

use crate::compose::Role;
use crate::engine::Container;
use crate::project::Project;

/// A service as it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Running {
    /// It runs the values the files resolve to.
    Current,
    /// It runs other values of these variables (names only).
    Stale(Vec<String>),
    /// Its container is not running (`exited`, `restarting`, `created`, …).
    Down(String),
    /// Its healthcheck fails.
    Unhealthy,
    /// It has no container.
    Missing,
}

/// One service of the compose project and how it runs.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    /// The compose service.
    pub service: String,
    /// Its role, when recognised.
    pub role: Option<Role>,
    /// Its container's name, when it has one.
    pub container: Option<String>,
    /// When the container was created.
    pub created: Option<Timestamp>,
    /// How it runs.
    pub running: Running,
}

/// Whether a variable carries key material or a secret (what keyctl compares).
#[must_use]
pub(crate) fn is_key_var(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["JWT", "JWKS", "SECRET", "_KEY", "ANON", "SERVICE_ROLE"]
        .iter()
        .any(|w| n.contains(w))
}

/// Every service of the compose file, compared with its containers. Services without a
/// recognised role are listed only when they have a container.
#[must_use]
pub(crate) fn compare(project: &Project, containers: &[Container]) -> Vec<Service> {
    let Ok(Some(compose)) = project.compose_if_present() else {
        return Vec::new();
    };
    let sources = project.sources();
    let mut out = Vec::new();
    for s in compose.doc.services() {
        let mine: Vec<&Container> = containers.iter().filter(|c| c.service == s.name).collect();
        let Some(c) = mine.first() else {
            if s.role.is_some() && s.role != Some(Role::Kong) {
                out.push(Service {
                    service: s.name.clone(),
                    role: s.role,
                    container: None,
                    created: None,
                    running: Running::Missing,
                });
            }
            continue;
        };
        let running = if c.status != "running" {
            Running::Down(c.status.clone())
        } else if c.health.as_deref() == Some("unhealthy") {
            Running::Unhealthy
        } else {
            let mut stale = Vec::new();
            for key in sources.env_keys(&s.name) {
                if !is_key_var(&key) {
                    continue;
                }
                let want = sources.resolved(&s.name, &key).unwrap_or_default();
                let has = mine
                    .iter()
                    .all(|c| c.env.iter().find(|(k, _)| *k == key).map_or("", |(_, v)| v) == want);
                if !has {
                    stale.push(key);
                }
            }
            if stale.is_empty() {
                Running::Current
            } else {
                Running::Stale(stale)
            }
        };
        out.push(Service {
            service: s.name.clone(),
            role: s.role,
            container: Some(c.name.clone()),
            created: c.created,
            running,
        });
    }
    out
}

/// One line for a service that does not run the files' values: what is wrong, never a value.
#[must_use]
pub(crate) fn describe(s: &Service) -> String {
    let container = match (&s.container, s.created) {
        (Some(c), Some(t)) => format!(
            " (container {c}, created {})",
            t.strftime("%Y-%m-%d %H:%M UTC")
        ),
        (Some(c), None) => format!(" (container {c})"),
        _ => String::new(),
    };
    match &s.running {
        Running::Current => format!("{} runs the files' values{container}", s.service),
        Running::Stale(vars) => format!(
            "{} runs other values of {} than the files{container}",
            s.service,
            vars.join(", ")
        ),
        Running::Down(status) => format!("{} is {status}{container}", s.service),
        Running::Unhealthy => format!("{} is unhealthy{container}", s.service),
        Running::Missing => format!("{} has no container", s.service),
    }
}

/// The services a step waits for: the verifiers and Auth, which must run the values of the
/// previous step before signing switches or a key is revoked.
#[must_use]
pub(crate) fn gated(services: &[Service]) -> Vec<&Service> {
    services
        .iter()
        .filter(|s| {
            matches!(
                s.role,
                Some(Role::Auth | Role::Rest | Role::Realtime | Role::Storage | Role::Functions)
            ) && s.running != Running::Current
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_variables_are_told_from_others() {
        for k in [
            "PGRST_JWT_SECRET",
            "GOTRUE_JWT_KEYS",
            "API_JWT_JWKS",
            "SUPABASE_ANON_KEY",
            "ANON_KEY_ASYMMETRIC",
            "SERVICE_ROLE_KEY",
        ] {
            assert!(is_key_var(k), "{k}");
        }
        for k in ["POSTGRES_PASSWORD", "PGRST_DB_SCHEMAS", "GOTRUE_SITE_URL"] {
            assert!(!is_key_var(k), "{k}");
        }
    }
}
