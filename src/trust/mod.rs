//! The trust model: what each service verifies with and what Auth signs with, computed from
//! what every service resolves (its `environment:` interpolated with `.env`, its `env_file:`
//! files), never from assumed variable names. It finds the HS256 secret Auth uses today and
//! every variable that holds it, the services that resolve a different one (the split-secret
//! outage), and every API key clients hold (`.env`, `env_file:` files, literal keys in Kong's
//! declarative file or the compose file) with the key that issued it. Pure: it reads a
//! [`Sources`], which the loaded project or a planned step provides.

mod invariant;
mod origin;

use std::collections::BTreeSet;

use zeroize::Zeroizing;

use crate::compose::{Compose, Role};
use crate::envfile::{EnvFile, LineKind};
use crate::jwk::Jwk;
use crate::jws;
use crate::key::Material;
use crate::keyset;
use crate::verifier::{self, View};

pub(crate) use invariant::{Issuer, check as check_invariant, refusal};
pub(crate) use origin::{Home, Origin};

/// The variable realtime's healthcheck token lives in once keyctl manages it; it is not an
/// API key clients hold.
pub(crate) const HEALTHCHECK_VAR: &str = "REALTIME_HEALTHCHECK_TOKEN";

/// A file a service mounts that may hold literal API keys (Kong's declarative `kong.yml`).
#[derive(Debug, Clone)]
pub struct Mounted {
    /// The path as the compose file writes it (`./volumes/api/kong.yml`).
    pub written: String,
    /// Its text, when it could be read.
    pub text: Option<String>,
}

/// The files one view of a project reads: as loaded, or as a step plans to leave them.
#[derive(Clone, Copy)]
pub(crate) struct Sources<'a> {
    /// The `.env`.
    pub env: &'a EnvFile,
    /// The compose document, when there is one.
    pub compose: Option<&'a Compose>,
    /// The `env_file:` files by the path the compose file writes.
    pub env_files: &'a [(String, Option<EnvFile>)],
    /// `env_file:` paths that are the `.env` itself.
    pub env_alias: &'a [String],
    /// Files Kong mounts.
    pub mounted: &'a [Mounted],
}

/// A value one service resolves, and where it comes from.
#[derive(Debug, Clone)]
pub(crate) struct Traced {
    /// The value the container gets.
    pub value: String,
    /// Where it comes from.
    pub origin: Origin,
    /// The compose line, when the value comes from an `environment:` entry.
    pub line: Option<usize>,
}

/// One service reading an HS256 secret.
#[derive(Debug, Clone)]
pub(crate) struct SecretUse {
    /// The compose service.
    pub service: String,
    /// The container variable (`PGRST_JWT_SECRET`).
    pub key: &'static str,
    /// What it resolves to, and from where.
    pub traced: Traced,
}

/// The HS256 secret Auth signs (or verifies kid-less tokens) with, and where it lives.
#[derive(Debug, Clone)]
pub(crate) struct Secret {
    /// Its value.
    pub value: Zeroizing<String>,
    /// Every variable keyctl can rewrite that holds it (`.env`, `env_file:` files).
    pub homes: Vec<Home>,
    /// Places that hold it where keyctl cannot rewrite it (a literal in the compose file).
    pub fixed: Vec<String>,
    /// What Auth reads it through, for messages: `auth GOTRUE_JWT_SECRET <- .env SERVICE_PASSWORD_JWT`.
    pub read_as: String,
}

impl Secret {
    /// The `.env` variable that holds it, when one does (what a service can be pointed at).
    #[must_use]
    pub(crate) fn env_var(&self) -> Option<&str> {
        self.homes.iter().find_map(|h| match h {
            Home::Env(v) => Some(v.as_str()),
            Home::EnvFile { .. } => None,
        })
    }

    /// What to do about services that resolve another secret: the command that points them
    /// at it, or, when it lives nowhere keyctl can point at, the edit that comes first.
    #[must_use]
    pub(crate) fn realign(&self, dir: &str) -> String {
        match self.env_var() {
            Some(var) => format!(
                "keyctl migrate rewire {dir} --yes (points them at ${{{var}}}, the variable Auth reads)"
            ),
            None => format!(
                "Auth's secret is not in .env: put it there (JWT_SECRET=… and GOTRUE_JWT_SECRET: ${{JWT_SECRET}}), then keyctl migrate rewire {dir} --yes points the others at it"
            ),
        }
    }
}

/// Where an API key is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyHome {
    /// A variable keyctl can rewrite.
    Var(Home),
    /// Literal text in a mounted file (Kong's declarative configuration), at a line.
    Mounted {
        /// The path as written in the compose file.
        file: String,
        /// 1-based line.
        line: usize,
    },
    /// A literal value in the compose file.
    Compose {
        /// The service.
        service: String,
        /// The variable.
        key: String,
        /// 1-based line.
        line: usize,
    },
}

impl KeyHome {
    /// How to name it.
    #[must_use]
    pub(crate) fn describe(&self) -> String {
        match self {
            KeyHome::Var(h) => h.describe(),
            KeyHome::Mounted { file, line } => format!("{file}:{line}"),
            KeyHome::Compose { service, key, line } => {
                format!("compose line {line} ({service} {key})")
            }
        }
    }
}

/// An API key clients hold.
#[derive(Debug, Clone)]
pub(crate) struct ApiKey {
    /// The JWT.
    pub token: String,
    /// Its `role` claim.
    pub role: String,
    /// Every place it is held.
    pub homes: Vec<KeyHome>,
}

impl ApiKey {
    /// The first place, for messages (`.env ANON_KEY`).
    #[must_use]
    pub(crate) fn name(&self) -> String {
        self.homes
            .first()
            .map_or_else(|| "an API key".into(), KeyHome::describe)
    }
}

/// The container variables that hold an HS256 secret, per role (SPEC §2: still HS256 after
/// a migration, by design). `PGRST_JWT_SECRET` of PostgREST counts only while it is a plain
/// secret, not a JWKS.
const SECRET_VARS: [(Role, &str); 6] = [
    (Role::Auth, "GOTRUE_JWT_SECRET"),
    (Role::Rest, "PGRST_JWT_SECRET"),
    (Role::Realtime, "API_JWT_SECRET"),
    (Role::Storage, "AUTH_JWT_SECRET"),
    (Role::Storage, "PGRST_JWT_SECRET"),
    (Role::Functions, "JWT_SECRET"),
];

impl<'a> Sources<'a> {
    /// What `service` resolves `key` to, and from where: its `environment:` entry, else the
    /// last of its `env_file:` files that sets it.
    #[must_use]
    pub(crate) fn trace(&self, service: &str, key: &str) -> Option<Traced> {
        let compose = self.compose?;
        if let Some(l) = compose.env(service, key) {
            return Some(Traced {
                value: self.env.interpolate(&l.value).unwrap_or_default(),
                origin: origin::trace(&l.value, self.env),
                line: Some(l.line),
            });
        }
        compose.env_files(service).iter().rev().find_map(|name| {
            if self.env_alias.contains(name) {
                return self.env.get(key).map(|v| Traced {
                    value: v.to_owned(),
                    origin: Origin::Env(key.to_owned()),
                    line: None,
                });
            }
            let file = self.env_files.iter().find(|(n, _)| n == name)?.1.as_ref()?;
            file.get(key).map(|v| Traced {
                value: v.to_owned(),
                origin: Origin::EnvFile(name.clone()),
                line: None,
            })
        })
    }

    /// The variable names `service`'s environment sets (its `environment:` entries and its
    /// `env_file:` files).
    #[must_use]
    pub(crate) fn env_keys(&self, service: &str) -> Vec<String> {
        self.compose
            .map(|c| env_keys(c, service, self))
            .unwrap_or_default()
    }

    /// What `service` resolves `key` to.
    #[must_use]
    pub(crate) fn resolved(&self, service: &str, key: &str) -> Option<String> {
        self.trace(service, key).map(|t| t.value)
    }

    /// How each recognised service verifies tokens. Without a compose file: as SPEC §2 wires
    /// a project, from `.env` alone.
    #[must_use]
    pub(crate) fn views(&self) -> Vec<View> {
        match self.compose {
            Some(c) => verifier::views(c, &|s, k| self.resolved(s, k)),
            None => verifier::expected_views(self.env),
        }
    }

    /// Every service's HS256 secret variable that resolves to a non-empty plain secret.
    #[must_use]
    pub(crate) fn secret_uses(&self) -> Vec<SecretUse> {
        let Some(compose) = self.compose else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in compose.services() {
            let Some(role) = s.role else { continue };
            for (r, key) in SECRET_VARS {
                if r != role {
                    continue;
                }
                let Some(traced) = self.trace(&s.name, key) else {
                    continue;
                };
                let v = traced.value.trim_start();
                if v.is_empty() || v.starts_with('{') || v.starts_with('[') {
                    continue;
                }
                out.push(SecretUse {
                    service: s.name.clone(),
                    key,
                    traced,
                });
            }
        }
        out
    }

    /// The HS256 secret Auth uses: the oct key Auth signs with (`GOTRUE_JWT_KEYS`), else its
    /// `GOTRUE_JWT_SECRET`. Without a compose file or an Auth service: `.env`'s `JWT_SECRET`.
    #[must_use]
    pub(crate) fn secret(&self) -> Option<Secret> {
        let auth = self
            .compose
            .and_then(|c| c.with_role(Role::Auth).into_iter().next());
        let (value, read_as) = match &auth {
            Some(a) => {
                let signing_oct = self
                    .resolved(&a.name, "GOTRUE_JWT_KEYS")
                    .and_then(|t| keyset::parse_private_set(&t, "GOTRUE_JWT_KEYS").ok())
                    .and_then(|keys| keys.into_iter().find(Jwk::can_sign))
                    .filter(keyset::is_legacy)
                    .and_then(|k| match k.material {
                        Material::Oct(b) => String::from_utf8(b.to_vec()).ok(),
                        _ => None,
                    });
                let t = self.trace(&a.name, "GOTRUE_JWT_SECRET");
                let value = signing_oct
                    .or_else(|| t.as_ref().map(|t| t.value.clone()))
                    .filter(|v| !v.is_empty())?;
                let via = t
                    .as_ref()
                    .and_then(|t| t.origin.home("GOTRUE_JWT_SECRET"))
                    .map_or_else(
                        || "a literal in the compose file".to_owned(),
                        |h| h.describe(),
                    );
                (value, format!("{} GOTRUE_JWT_SECRET <- {via}", a.name))
            }
            None => (
                self.env.get_nonempty("JWT_SECRET")?.to_owned(),
                ".env JWT_SECRET".to_owned(),
            ),
        };
        let mut homes = BTreeSet::new();
        let mut fixed = Vec::new();
        for (name, v) in entries(self.env) {
            if v == value {
                homes.insert(Home::Env(name));
            }
        }
        for (file, env) in self.env_files {
            for (name, v) in env.iter().flat_map(entries) {
                if v == value {
                    homes.insert(Home::EnvFile {
                        file: file.clone(),
                        var: name,
                    });
                }
            }
        }
        if let Some(c) = self.compose {
            // Only `environment:` entries: a variable a service reads from an `env_file:`
            // (the `.env` included) is one of the files' entries, found above.
            for s in c.services() {
                for key in c.env_keys(&s.name) {
                    let Some(t) = self.trace(&s.name, &key) else {
                        continue;
                    };
                    if t.value != value {
                        continue;
                    }
                    match t.origin.home(&key) {
                        Some(h) => {
                            homes.insert(h);
                        }
                        None => fixed.push(format!(
                            "compose line {} ({} {key})",
                            t.line.unwrap_or_default(),
                            s.name
                        )),
                    }
                }
            }
        }
        Some(Secret {
            value: Zeroizing::new(value),
            homes: homes.into_iter().collect(),
            fixed,
            read_as,
        })
    }

    /// Every `(service, variable)` whose resolved value passes `is` (a retired secret still
    /// trusted somewhere), with where it comes from.
    #[must_use]
    pub(crate) fn holders(&self, is: &dyn Fn(&str) -> bool) -> Vec<(String, String, Traced)> {
        let Some(c) = self.compose else {
            return Vec::new();
        };
        // The `env_file:` entries that pass, found once per file: a service reading a file
        // holds a passing value only under one of these names.
        let passing = |env: &EnvFile| -> Vec<String> {
            entries(env)
                .into_iter()
                .filter(|(_, v)| is(v))
                .map(|(k, _)| k)
                .collect()
        };
        let in_env = passing(self.env);
        let in_files: Vec<(&String, Vec<String>)> = self
            .env_files
            .iter()
            .filter_map(|(n, f)| f.as_ref().map(|f| (n, passing(f))))
            .collect();
        let mut out = Vec::new();
        for s in c.services() {
            let mut keys: BTreeSet<String> = c.env_keys(&s.name).into_iter().collect();
            for name in c.env_files(&s.name) {
                if self.env_alias.contains(&name) {
                    keys.extend(in_env.iter().cloned());
                } else if let Some((_, k)) = in_files.iter().find(|(n, _)| **n == name) {
                    keys.extend(k.iter().cloned());
                }
            }
            for key in keys {
                if let Some(t) = self.trace(&s.name, &key)
                    && is(&t.value)
                {
                    out.push((s.name.clone(), key, t));
                }
            }
        }
        out
    }

    /// Services whose HS256 secret differs from Auth's: tokens Auth issues fail there.
    #[must_use]
    pub(crate) fn splits(&self) -> Vec<SecretUse> {
        let Some(secret) = self.secret() else {
            return Vec::new();
        };
        self.secret_uses()
            .into_iter()
            .filter(|u| u.traced.value != *secret.value)
            .collect()
    }

    /// Every API key clients may hold: JWTs with a `role` claim in `.env`, the `env_file:`
    /// files, literal compose values and Kong's mounted files, merged by value.
    #[must_use]
    pub(crate) fn api_keys(&self) -> Vec<ApiKey> {
        let mut keys: Vec<ApiKey> = Vec::new();
        let mut add = |token: &str, home: KeyHome| {
            let Some(role) = api_key_role(token) else {
                return;
            };
            match keys.iter_mut().find(|k| k.token == token) {
                Some(k) => {
                    if !k.homes.contains(&home) {
                        k.homes.push(home);
                    }
                }
                None => keys.push(ApiKey {
                    token: token.to_owned(),
                    role,
                    homes: vec![home],
                }),
            }
        };
        for (name, v) in entries(self.env) {
            if name != HEALTHCHECK_VAR {
                add(&v, KeyHome::Var(Home::Env(name)));
            }
        }
        for (file, env) in self.env_files {
            for (name, v) in env.iter().flat_map(entries) {
                add(
                    &v,
                    KeyHome::Var(Home::EnvFile {
                        file: file.clone(),
                        var: name,
                    }),
                );
            }
        }
        if let Some(c) = self.compose {
            for s in c.services() {
                for key in env_keys(
                    c,
                    &s.name,
                    &Sources {
                        env_files: &[],
                        env_alias: &[],
                        ..*self
                    },
                ) {
                    if let Some(l) = c.env(&s.name, &key)
                        && !l.value.contains('$')
                    {
                        add(
                            &l.value,
                            KeyHome::Compose {
                                service: s.name.clone(),
                                key,
                                line: l.line,
                            },
                        );
                    }
                }
            }
        }
        for m in self.mounted {
            let Some(text) = &m.text else { continue };
            for (line, token) in literal_tokens(text) {
                add(
                    token,
                    KeyHome::Mounted {
                        file: m.written.clone(),
                        line,
                    },
                );
            }
        }
        keys
    }
}

/// `(name, value)` of every entry of an env file.
fn entries(env: &EnvFile) -> Vec<(String, String)> {
    env.lines()
        .iter()
        .filter_map(|l| match &l.kind {
            LineKind::Entry(e) => e.value.clone().map(|v| (e.key.clone(), v)),
            _ => None,
        })
        .collect()
}

/// The variable names a service's environment sets (its `environment:` entries and its
/// `env_file:` files).
fn env_keys(compose: &Compose, service: &str, sources: &Sources<'_>) -> Vec<String> {
    let mut keys: BTreeSet<String> = compose.env_keys(service).into_iter().collect();
    for name in compose.env_files(service) {
        if sources.env_alias.contains(&name) {
            keys.extend(entries(sources.env).into_iter().map(|(k, _)| k));
        } else if let Some((_, Some(f))) = sources.env_files.iter().find(|(n, _)| *n == name) {
            keys.extend(entries(f).into_iter().map(|(k, _)| k));
        }
    }
    keys.into_iter().collect()
}

/// The `role` claim of a value that is a JWT carrying one (`anon`, `service_role`, …).
fn api_key_role(value: &str) -> Option<String> {
    if !value.starts_with("eyJ") {
        return None;
    }
    let d = jws::decode(value).ok()?;
    d.claims
        .get("role")
        .and_then(|r| r.as_str())
        .map(str::to_owned)
}

/// JWT-shaped words in a text file, with their 1-based line.
fn literal_tokens(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("eyJ") {
            let word = &rest[at..];
            let len = word
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .unwrap_or(word.len());
            let token = &word[..len];
            if token.matches('.').count() == 2 {
                out.push((i + 1, token));
            }
            rest = &word[len..];
        }
    }
    out
}

/// Replaces every occurrence of `old` (a whole JWT) in `text` with `new`.
#[must_use]
pub(crate) fn replace_token(text: &str, old: &str, new: &str) -> String {
    text.replace(old, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_tokens_are_found_with_their_lines() {
        let text = "a: 1\n  - key: eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2ln\nb: eyJ.not\n";
        let found = literal_tokens(text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 2);
        assert!(found[0].1.ends_with(".c2ln"));
    }
}
