//! A step in the making: copies of the `.env` and compose documents that the step edits,
//! with the plain-words summary, warnings and follow-ups it collects. Every edit is checked
//! as it is made (SPEC §1 for key sets, the compose editor's own checks). Pure.

use jiff::Timestamp;

use crate::apikey;
use crate::compose::{Compose, ComposeError, EnvEdit, Role};
use crate::envfile::EnvFile;
use crate::error::{Error, Refusal, Result};
use crate::holders::Holders;
use crate::key::{self, Alg, Material};
use crate::keyset::{self, MIN_SECRET_LEN, derive_jwks, legacy_material};
use crate::lifecycle::{KeyList, Slot};
use crate::project::{ComposeFile, Project};
use crate::trust::{Home, KeyHome, Sources};

use super::{ENV_GROUP, KONG_VARS};

pub(super) struct Draft<'p> {
    pub(super) project: &'p Project,
    pub(super) compose_file: &'p ComposeFile,
    /// The files the step edits (`.env`, compose, `env_file:` files, Kong's files).
    pub(super) files: Holders<'p>,
    /// API keys re-minted with the user's consent (their old values may stop working).
    pub(super) consented: Vec<String>,
    pub(super) summary: Vec<String>,
    pub(super) warnings: Vec<String>,
    pub(super) afterwards: Vec<String>,
}

impl<'p> Draft<'p> {
    pub(super) fn new(project: &'p Project, compose_file: &'p ComposeFile) -> Self {
        Draft {
            project,
            compose_file,
            files: Holders::new(project, Some(compose_file), Some(ENV_GROUP)),
            consented: Vec::new(),
            summary: Vec::new(),
            warnings: Vec::new(),
            afterwards: Vec::new(),
        }
    }

    /// The `.env` as the step leaves it.
    pub(super) fn env(&self) -> &EnvFile {
        &self.files.env
    }

    /// The compose document as the step leaves it.
    pub(super) fn compose(&self) -> &Compose {
        self.files
            .compose
            .as_ref()
            .expect("a migration edits a compose file")
    }

    /// The compose document, to edit.
    pub(super) fn compose_mut(&mut self) -> &mut Compose {
        self.files
            .compose
            .as_mut()
            .expect("a migration edits a compose file")
    }

    pub(super) fn compose_error(&self, e: &ComposeError) -> Error {
        Error::bad(self.compose_file.place(e.line), e.message.clone())
    }

    pub(super) fn set_env(&mut self, key: &str, value: &str) -> Result<()> {
        self.files.set_env(key, value)
    }

    /// The files as the step leaves them, for the trust model.
    pub(super) fn sources(&self) -> Sources<'_> {
        self.files.sources()
    }

    /// Sets a variable where it lives: the `.env` or an `env_file:` file.
    pub(super) fn set_home(&mut self, home: &Home, value: &str) -> Result<()> {
        self.files.set_home(home, value)
    }

    /// Replaces the API key `old` with `new` where it is held.
    pub(super) fn replace_key(&mut self, home: &KeyHome, old: &str, new: &str) -> Result<()> {
        self.files.replace_key(home, old, new)
    }

    pub(super) fn set_keys(&mut self, list: &KeyList) -> Result<()> {
        let keys = keyset::render_private_set(&list.pairs(), list.signer).to_string();
        let parsed = keyset::parse_private_set(&keys, "planned JWT_KEYS").map_err(|p| {
            Refusal::InvalidResult {
                problem: p[0].to_string(),
            }
        })?;
        let jwks = derive_jwks(&parsed).to_string();
        self.set_env("JWT_KEYS", &keys)?;
        self.set_env("JWT_JWKS", &jwks)
    }

    /// Wires `key` into every service with `role`: keeps a line that already references
    /// `wanted_var`, uncomments upstream's line, or adds `${wanted_var}`.
    /// [`Draft::wire`] for several `(role, key, variable)` at once, in one batch of edits
    /// ([`Compose::set_envs`]). Returns how many service entries it covered.
    pub(super) fn wire_all(&mut self, wiring: &[(Role, &str, &str)]) -> Result<usize> {
        let mut wanted: Vec<(String, &str, String, [String; 3])> = Vec::new();
        for &(role, key, var) in wiring {
            for s in self.compose().with_role(role) {
                let prefixes = [
                    format!("${{{var}}}"),
                    format!("${{{var}:"),
                    format!("${{{var}-"),
                ];
                wanted.push((s.name.clone(), key, format!("${{{var}}}"), prefixes));
            }
        }
        let checks: Vec<_> = wanted
            .iter()
            .map(|(_, _, _, p)| move |v: &str| p.iter().any(|p| v.starts_with(p.as_str())))
            .collect();
        let edits: Vec<EnvEdit<'_>> = wanted
            .iter()
            .zip(&checks)
            .map(|((service, key, value, _), is_right)| EnvEdit {
                service,
                key,
                wanted: value,
                is_right,
            })
            .collect();
        let result = self.compose_mut().set_envs(&edits);
        if let Err(e) = result {
            return Err(self.compose_error(&e));
        }
        Ok(edits.len())
    }

    pub(super) fn wire_verifiers(&mut self) -> Result<()> {
        if self.compose().with_role(Role::Auth).is_empty() {
            return Err(Error::bad(
                self.compose_file.path.display().to_string(),
                "no Auth service (image supabase/gotrue or supabase/auth) found; if a service with another image is Auth, say so: --service-is NAME=auth, or [services] NAME = \"auth\" in keyctl.toml",
            ));
        }
        self.wire_all(&super::preflight::WIRING)?;
        Ok(())
    }

    /// Adds `alg` to a literal `GOTRUE_JWT_VALID_METHODS` / `GOTRUE_JWT_VALIDMETHODS`.
    pub(super) fn allow_alg(&mut self, alg: Alg) -> Result<()> {
        for s in self.compose().with_role(Role::Auth) {
            // Both spellings, whichever the image reads: an upgrade must not bring back a
            // list that misses the algorithm.
            for key in crate::images::AUTH_METHODS_VARS {
                let Some(line) = self.compose().env(&s.name, key) else {
                    continue;
                };
                if line.value.contains('$') {
                    self.warnings.push(format!(
                        "{} {key} is interpolated; make sure it lists {alg}",
                        self.compose_file.place(Some(line.line)),
                    ));
                    continue;
                }
                if line.value.split(',').any(|m| m.trim() == alg.as_str()) {
                    continue;
                }
                let wanted = if line.value.trim().is_empty() {
                    alg.as_str().to_owned()
                } else {
                    format!("{},{alg}", line.value)
                };
                let w = wanted.clone();
                if let Err(e) =
                    self.compose_mut()
                        .set_env(&s.name, key, &wanted, &move |v: &str| v == w)
                {
                    return Err(self.compose_error(&e));
                }
                self.summary
                    .push(format!("add {alg} to {key} of service {}", s.name));
            }
        }
        Ok(())
    }

    /// At the switch, when the stack has Kong: `*_ASYMMETRIC` API keys signed by the new
    /// key, the opaque keys when absent, and the four variables in Kong's environment.
    pub(super) fn mint_kong_keys(&mut self, new: &Slot, now: Timestamp) -> Result<()> {
        if self.compose().with_role(Role::Kong).is_empty() {
            return Ok(());
        }
        for (var, role) in [
            ("ANON_KEY_ASYMMETRIC", "anon"),
            ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role"),
        ] {
            let token = apikey::mint(&new.material, new.kid.as_deref(), role, now)
                .map_err(|e| Error::bad(var, e.0))?;
            self.set_env(var, &token)?;
        }
        self.summary.push("mint ANON_KEY_ASYMMETRIC and SERVICE_ROLE_KEY_ASYMMETRIC with the new key (Kong swaps the opaque keys for them)".into());
        for (var, prefix) in [
            ("SUPABASE_PUBLISHABLE_KEY", "sb_publishable_"),
            ("SUPABASE_SECRET_KEY", "sb_secret_"),
        ] {
            if self.env().get_nonempty(var).is_none() {
                self.set_env(var, &apikey::opaque(prefix))?;
                self.summary.push(format!("create {var}"));
            }
        }
        let kong: Vec<(Role, &str, &str)> =
            KONG_VARS.iter().map(|v| (Role::Kong, *v, *v)).collect();
        self.wire_all(&kong)?;
        Ok(())
    }
}

/// A freshly generated key with a random UUID kid.
pub(super) fn new_slot(alg: Alg) -> Result<Slot> {
    let material = Material::generate(alg, 2048).map_err(|e| Error::bad("generate", e.0))?;
    Ok(Slot {
        kid: Some(key::new_uuid()?),
        material,
    })
}

/// The HS256 secret Auth uses today (wherever it is stored) as a key-list slot.
pub(super) fn legacy_slot(project: &Project) -> Result<Slot> {
    let auth = project.compose_if_present().ok().flatten().and_then(|c| {
        c.doc
            .with_role(crate::compose::Role::Auth)
            .into_iter()
            .next()
    });
    let via = auth.as_ref().and_then(|a| {
        match project
            .sources()
            .trace(&a.name, "GOTRUE_JWT_SECRET")?
            .origin
        {
            crate::trust::Origin::Env(v) | crate::trust::Origin::Default(v) => Some(v),
            _ => None,
        }
    });
    let secret = project.secret().ok_or_else(|| match (&auth, &via) {
        (Some(_), Some(var)) => Error::bad(
            project.place(var),
            "is not set: Auth reads its secret from it (GOTRUE_JWT_SECRET), so there is no legacy secret to keep trusting",
        ),
        (Some(a), None) => Error::precondition(
            project.compose_path().map_or_else(String::new, |p| p.display().to_string()),
            format!(
                "Auth (service {}) resolves no GOTRUE_JWT_SECRET from its environment or env_file: files; if its image sets it from another variable inside the container, keyctl cannot see that. Set GOTRUE_JWT_SECRET in its environment (e.g. GOTRUE_JWT_SECRET: ${{JWT_SECRET}}), then run again",
                a.name
            ),
        ),
        (None, _) => Error::bad(
            project.place("JWT_SECRET"),
            "is not set: there is no legacy secret to keep trusting",
        ),
    })?;
    let place = project.secret_place(&secret);
    if secret.value.chars().count() < MIN_SECRET_LEN {
        return Err(Error::precondition(
            place,
            format!(
                "is {} characters; PostgREST 13 refuses secrets shorter than {MIN_SECRET_LEN}, so it cannot go into JWT_JWKS. Rotate it first",
                secret.value.chars().count()
            ),
        ));
    }
    Ok(Slot {
        kid: None,
        material: legacy_material(&secret.value),
    })
}

/// The kid of a token's header (`Some(None)`: a token without kid; `None`: not a JWT).
pub(super) fn kid_of(token: &str) -> Option<Option<String>> {
    crate::jws::decode(token)
        .ok()
        .map(|d| d.kid().map(str::to_owned))
}
