//! Which service is which, as the user says it, for forks and custom images that keyctl
//! cannot recognise by image: the `[services]` table of `keyctl.toml` beside the `.env`, and
//! `--service-is NAME=ROLE` on the command line (which wins). A role of `none` says "not a
//! Supabase service keyctl handles".

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::compose::Role;

/// The file beside `.env` that names services by hand.
pub(crate) const CONFIG_NAME: &str = "keyctl.toml";

/// A role as the user writes it: `auth`, `rest`, `realtime`, `storage`, `functions`, `kong`
/// or `none`.
///
/// # Errors
/// Any other word, with the list of accepted ones.
pub(crate) fn parse_role(word: &str) -> Result<Option<Role>, String> {
    if word == "none" {
        return Ok(None);
    }
    Role::ALL
        .into_iter()
        .find(|r| r.as_str() == word)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "unknown role {word:?}: use one of auth, rest, realtime, storage, functions, kong, none"
            )
        })
}

/// `NAME=ROLE` from the command line.
///
/// # Errors
/// No `=`, an empty name, or an unknown role.
pub(crate) fn parse_assignment(arg: &str) -> Result<(String, Option<Role>), String> {
    let (name, role) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?}: expected SERVICE=ROLE, e.g. my-auth=auth"))?;
    if name.trim().is_empty() {
        return Err(format!("{arg:?}: the service name is empty"));
    }
    Ok((name.trim().to_owned(), parse_role(role.trim())?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    services: BTreeMap<String, String>,
}

/// The assignments of a `keyctl.toml`.
///
/// # Errors
/// Not TOML, an unknown table or key, or an unknown role (the message names it).
pub(crate) fn parse_config(text: &str) -> Result<Vec<(String, Option<Role>)>, String> {
    let config: Config = toml::from_str(text).map_err(|e| {
        e.to_string()
            .lines()
            .next()
            .unwrap_or("not valid TOML")
            .to_owned()
    })?;
    config
        .services
        .into_iter()
        .map(|(name, role)| {
            parse_role(&role)
                .map(|r| (name.clone(), r))
                .map_err(|e| format!("[services] {name}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_and_config_read_roles() {
        assert_eq!(
            parse_assignment("my-auth=auth").unwrap(),
            ("my-auth".into(), Some(Role::Auth))
        );
        assert_eq!(parse_assignment("x=none").unwrap(), ("x".into(), None));
        assert!(parse_assignment("x").is_err());
        assert!(parse_assignment("x=gotrue").is_err());
        let c = parse_config("[services]\nmy-auth = \"auth\"\napi = \"rest\"\n").unwrap();
        assert_eq!(c.len(), 2);
        assert!(parse_config("[services]\na = \"db\"\n").is_err());
        assert!(parse_config("[other]\n").is_err());
    }
}
