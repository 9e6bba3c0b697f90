//! The one model of a self-hosted Supabase project: everything keyctl knows about a stack,
//! loaded once. [`Project::load`] reads the `.env`, the compose file with its override files,
//! the state file, the backups that hold retired secrets, and the file facts the warnings
//! need (modes, git); after loading, nothing in the project model touches the disk. Every
//! command reads a stack through it; planners and checks take a `&Project`.

mod helm;
mod paths;
mod roles;

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::compose::{Compose, Role};
use crate::envfile::EnvFile;
use crate::error::{Error, Refusal, Result};
use crate::fsio;
use crate::jwk::Jwk;
use crate::key::Material;
use crate::keyset::{self, Inputs};
use crate::lifecycle::{self, Snapshot};
use crate::state::State;
use crate::trust::{self, Mounted, Sources};
use crate::verifier::{Known, View};

pub(crate) use self::paths::{
    COMPOSE_NAMES, OVERRIDE_NAMES, Paths, compose_path, dir_of, env_path,
};
pub(crate) use self::roles::CONFIG_NAME;
pub(crate) use self::roles::parse_assignment;

/// Longest `JWT_EXPIRY` keyctl accepts (ten years, in seconds).
pub(crate) const MAX_EXPIRY: i64 = 315_360_000;

/// Where a project is, as the user named it (the command line converts into this).
#[derive(Debug, Clone, Default)]
pub struct Locator {
    /// The project directory (`--project`).
    pub dir: Option<PathBuf>,
    /// The env file (`--env-file`), else `DIR/.env`.
    pub env_file: Option<PathBuf>,
    /// The compose file (`--compose-file`), else the one docker compose would pick.
    pub compose_file: Option<PathBuf>,
    /// Roles named on the command line (`--service-is NAME=ROLE`); they win over `keyctl.toml`.
    pub services: Vec<(String, Option<Role>)>,
    /// The compose project name (`--project-name`), else the one compose derives.
    pub project_name: Option<String>,
    /// A Helm chart project (`--helm-values`) instead of a compose project.
    pub(crate) helm: Option<crate::helm::Locator>,
}

/// An override file beside the compose file, which docker compose applies on top of it.
#[derive(Debug, Clone)]
pub struct Override {
    /// Its path.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// The compose file and what docker compose loads with it.
#[derive(Debug, Clone)]
pub struct ComposeFile {
    /// Its path.
    pub path: PathBuf,
    /// The lossless document.
    pub doc: Compose,
    /// Override files present beside it.
    pub overrides: Vec<Override>,
    /// The files services read through `env_file:`, by the path as written (`None`: it
    /// could not be read or parsed; compose would refuse to start that service).
    pub env_files: Vec<(String, Option<EnvFile>)>,
    /// `env_file:` paths that name the project's `.env` itself (read through it, written once).
    pub env_alias: Vec<String>,
    /// The YAML files Kong mounts (its declarative configuration may hold literal API keys).
    pub mounted: Vec<Mounted>,
}

impl ComposeFile {
    /// The file an `env_file:` or mount path names, relative to the compose file.
    #[must_use]
    pub fn beside(&self, written: &str) -> PathBuf {
        dir_of(&self.path).join(written)
    }
}

impl ComposeFile {
    /// `FILE:LINE` (or `FILE`) for messages.
    #[must_use]
    pub fn place(&self, line: Option<usize>) -> String {
        match line {
            Some(l) => format!("{}:{l}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }
}

/// Facts about the files that warnings need (read at load, so checks stay pure).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The `.env`'s permission bits.
    pub env_mode: Option<u32>,
    /// Whether git tracks the `.env`.
    pub env_in_git: bool,
    /// Private key files in the project directory readable by group or others.
    pub readable_key_files: Vec<PathBuf>,
    /// The names already taken in `.keyctl/backups/`.
    pub backups: Vec<String>,
    /// When the `.env` was last changed (a container older than that may run old values).
    pub env_modified: Option<Timestamp>,
}

/// A `JWT_SECRET` keyctl replaced, read back from its backup (for explaining signatures).
#[derive(Debug, Clone)]
pub(crate) struct RetiredSecret {
    /// When it was replaced.
    pub at: Timestamp,
    /// The secret as an HS256 key.
    pub material: Material,
}

/// A loaded project.
#[derive(Debug)]
pub struct Project {
    /// The `.env` file.
    pub env_path: PathBuf,
    /// Its parsed contents.
    pub env: EnvFile,
    /// keyctl's paths for this project.
    pub paths: Paths,
    /// File facts for warnings.
    pub facts: Facts,
    compose: Option<Result<ComposeFile>>,
    compose_path: Option<PathBuf>,
    state: Result<State>,
    retired: Vec<RetiredSecret>,
    /// [`Project::secret`], worked out once.
    secret: std::sync::OnceLock<Option<trust::Secret>>,
    /// A Helm chart project: the values file (and Secret manifest) this project renders.
    helm: Option<crate::helm::Model>,
}

impl Project {
    /// Reads everything keyctl may need about the project at `loc`.
    ///
    /// The `.env` must exist and parse; a compose file that is missing or unreadable is
    /// kept as an error that only the commands needing it report ([`Project::compose`]).
    ///
    /// # Errors
    /// The `.env` cannot be read (exit 4) or parsed (exit 2, with the line).
    pub fn load(loc: &Locator, now: Timestamp) -> Result<Project> {
        if let Some(helm) = &loc.helm {
            return Project::load_helm(helm, now);
        }
        let env_path = env_path(loc.dir.as_deref(), loc.env_file.as_deref())?;
        let text = fsio::read_text(&env_path)?;
        let env = EnvFile::parse(&text)
            .map_err(|e| Error::bad(format!("{}:{}", env_path.display(), e.line), e.message))?;
        if let Some((key, first, later)) = env.conflicting_assignment() {
            return Err(Error::bad(
                format!("{}:{later}", env_path.display()),
                format!(
                    "{key} is set twice with different values (lines {first} and {later}); docker compose uses the last, other readers the first. Keep one"
                ),
            ));
        }
        let paths = Paths::for_env(&env_path);
        let compose_path = compose_path(&env_path, loc.compose_file.as_deref()).ok();
        let roles = assigned_roles(&env_path, &loc.services)?;
        let compose = compose_path
            .clone()
            .map(|p| load_compose(p, &roles, &env_path));
        let state = load_state(&paths, now);
        let retired = state
            .as_ref()
            .map_or_else(|_| Vec::new(), |s| retired(&paths, s));
        let facts = Facts {
            env_mode: fsio::mode(&env_path),
            env_in_git: fsio::tracked_by_git(&env_path),
            readable_key_files: readable_key_files(&paths.project),
            backups: fsio::entry_names(&paths.dir.join("backups")),
            env_modified: fsio::modified(&env_path),
        };
        Ok(Project {
            compose_path,
            env_path,
            env,
            paths,
            facts,
            compose,
            state,
            retired,
            secret: std::sync::OnceLock::new(),
            helm: None,
        })
    }

    /// The file that holds the private keys: the `.env`, or for a chart project the Secret
    /// manifest when there is one, else the values file (file-mode and git checks are about it).
    #[must_use]
    pub fn keys_file(&self) -> &Path {
        match &self.helm {
            Some(h) => h
                .secret
                .as_ref()
                .map_or(h.loc.values.as_path(), |s| s.path.as_path()),
            None => &self.env_path,
        }
    }

    /// The chart project this is, if it is one.
    #[must_use]
    pub(crate) fn helm(&self) -> Option<&crate::helm::Model> {
        self.helm.as_ref()
    }

    /// The compose file; an error when there is none or it cannot be read.
    ///
    /// # Errors
    /// No compose file (exit 4), unreadable (4) or unparseable (2, with the line).
    pub fn compose(&self) -> Result<&ComposeFile> {
        match &self.compose {
            Some(Ok(c)) => Ok(c),
            Some(Err(e)) => Err(e.clone()),
            None => Err(Error::Io {
                path: dir_of(&self.env_path).to_path_buf(),
                message: format!(
                    "no compose file ({}); name one with --compose-file",
                    COMPOSE_NAMES.join(", ")
                ),
            }),
        }
    }

    /// The compose file when there is one; an error only when it exists and is broken.
    ///
    /// # Errors
    /// As [`Project::compose`], except that a missing default file is `None`.
    pub fn compose_if_present(&self) -> Result<Option<&ComposeFile>> {
        match &self.compose {
            None => Ok(None),
            Some(Ok(c)) => Ok(Some(c)),
            Some(Err(e)) => Err(e.clone()),
        }
    }

    /// The compose file as the writing commands need it: present, parsed, and without
    /// references to other files keyctl would not follow.
    ///
    /// # Errors
    /// As [`Project::compose`]; `include:`/`extends:` of another file (exit 2).
    pub fn compose_to_edit(&self) -> Result<&ComposeFile> {
        let c = self.compose()?;
        if let Some((line, feature)) = c.doc.outside_references() {
            return Err(Error::bad(
                c.place(Some(line)),
                format!(
                    "uses {feature}, which keyctl does not follow: services defined in the other file would not be wired. Merge them into this file first"
                ),
            ));
        }
        Ok(c)
    }

    /// The compose file's path, when there is one (even one that does not parse).
    #[must_use]
    pub fn compose_path(&self) -> Option<&Path> {
        self.compose_path.as_deref()
    }

    /// The state file.
    ///
    /// # Errors
    /// Unreadable (exit 4) or invalid (exit 2, naming the file).
    pub fn state(&self) -> Result<&State> {
        self.state.as_ref().map_err(Clone::clone)
    }

    /// Every file a step may write: the `.env`, the compose file, its `env_file:` files and
    /// Kong's mounted files (what recovery after a crash may put back).
    #[must_use]
    pub(crate) fn writable_files(&self) -> Vec<PathBuf> {
        if let Some(helm) = &self.helm {
            return helm.files();
        }
        let mut files = vec![self.env_path.clone()];
        files.extend(self.compose_path.clone());
        if let Ok(Some(c)) = self.compose_if_present() {
            files.extend(c.env_files.iter().map(|(n, _)| c.beside(n)));
            files.extend(c.mounted.iter().map(|m| c.beside(&m.written)));
        }
        files
    }

    /// The retired secrets keyctl can still read from its backups, as text.
    #[must_use]
    pub(crate) fn retired_secrets(&self) -> Vec<(Timestamp, String)> {
        self.retired
            .iter()
            .filter_map(|r| match &r.material {
                Material::Oct(b) => String::from_utf8(b.to_vec()).ok().map(|s| (r.at, s)),
                _ => None,
            })
            .collect()
    }

    /// Whether `value` is a secret keyctl retired (by its recorded hash or its backup), and
    /// when it was retired.
    #[must_use]
    pub(crate) fn retired_at(&self, value: &str) -> Option<Timestamp> {
        if value.is_empty() {
            return None;
        }
        let hash = fsio::sha256_hex(value.as_bytes());
        let by_hash = self.state.as_ref().ok().and_then(|s| {
            s.retired_secrets
                .iter()
                .find(|r| r.sha256.as_deref() == Some(hash.as_str()))
                .map(|r| r.at)
        });
        by_hash.or_else(|| {
            self.retired_secrets()
                .into_iter()
                .find(|(_, s)| s == value)
                .map(|(at, _)| at)
        })
    }

    /// The compose project name, as docker compose derives it: `named` (`--project-name`,
    /// `COMPOSE_PROJECT_NAME` of the environment), else `.env`'s `COMPOSE_PROJECT_NAME`, else
    /// the compose file's top-level `name:`, else its directory's name, lowercased, with
    /// characters compose does not allow removed.
    #[must_use]
    pub(crate) fn compose_project_name(&self, named: Option<&str>) -> String {
        let chosen = named
            .map(str::to_owned)
            .or_else(|| {
                self.env
                    .get_nonempty("COMPOSE_PROJECT_NAME")
                    .map(str::to_owned)
            })
            .or_else(|| {
                self.compose_if_present()
                    .ok()
                    .flatten()
                    .and_then(|c| c.doc.project_name())
            });
        let raw = chosen.unwrap_or_else(|| {
            let dir = self.compose_path().map_or_else(
                || dir_of(&self.env_path).to_path_buf(),
                |p| dir_of(p).to_path_buf(),
            );
            fsio::canonical(&dir)
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        });
        raw.to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .skip_while(|c| !c.is_ascii_alphanumeric())
            .collect()
    }

    /// How to name this project on a command line: `--project DIR`, or for a chart project
    /// `--helm-values FILE` (with `--k8s-secret FILE`).
    #[must_use]
    pub fn dir_arg(&self) -> String {
        match &self.helm {
            Some(h) => {
                let mut arg = format!("--helm-values {}", h.loc.values.display());
                if let Some(s) = &h.loc.secret {
                    arg.push_str(&format!(" --k8s-secret {}", s.display()));
                }
                arg
            }
            None => format!("--project {}", self.paths.project.display()),
        }
    }

    /// `FILE:LINE VAR` for a variable set in the `.env`, or `FILE VAR` when it is not.
    #[must_use]
    pub fn place(&self, var: &str) -> String {
        if let Some(helm) = &self.helm {
            return helm.place(var);
        }
        match self.env.entry(var) {
            Some((_, line)) => format!("{}:{line} {var}", self.env_path.display()),
            None => format!("{} {var}", self.env_path.display()),
        }
    }

    /// `FILE:LINE` of a variable in the `.env` (or `FILE`).
    #[must_use]
    pub fn line_of(&self, var: &str) -> String {
        if let Some(helm) = &self.helm {
            return helm.place(var);
        }
        match self.env.entry(var) {
            Some((_, line)) => format!("{}:{line}", self.env_path.display()),
            None => self.env_path.display().to_string(),
        }
    }

    /// A variable's value with its place, if set.
    #[must_use]
    pub fn value(&self, var: &str) -> Option<(&str, String)> {
        self.env.get(var).map(|v| (v, self.place(var)))
    }

    /// The three values SPEC §1 checks, with their places.
    #[must_use]
    pub fn key_inputs(&self) -> Inputs<'_> {
        Inputs {
            jwt_keys: self.value("JWT_KEYS"),
            jwt_jwks: self.value("JWT_JWKS"),
            jwt_secret: self.secret_value(),
        }
    }

    /// The HS256 secret Auth uses, borrowed from the variable that holds it, with its place;
    /// `.env`'s `JWT_SECRET` when no variable holds it.
    #[must_use]
    pub(crate) fn secret_value(&self) -> Option<(&str, String)> {
        let secret = self.secret()?;
        for home in &secret.homes {
            let found = match home {
                trust::Home::Env(var) => self.value(var),
                trust::Home::EnvFile { file, var } => self
                    .compose_if_present()
                    .ok()
                    .flatten()
                    .and_then(|c| c.env_files.iter().find(|(n, _)| n == file))
                    .and_then(|(_, f)| f.as_ref()?.get(var))
                    .map(|v| (v, format!("{file} {var}"))),
            };
            if let Some((v, place)) = found.filter(|(v, _)| *v == secret.value.as_str()) {
                return Some((v, place));
            }
        }
        self.value("JWT_SECRET")
    }

    /// `JWT_KEYS` parsed (empty when absent, empty or `[]`).
    ///
    /// # Errors
    /// `JWT_KEYS` that breaks a rule of SPEC §1 (bad input, exit 2).
    pub fn keys(&self) -> Result<Vec<Jwk>> {
        match self.value("JWT_KEYS") {
            Some((text, place)) if !text.trim().is_empty() => {
                keyset::parse_private_set(text, &place).map_err(|p| keyset::as_error(&p))
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The phase and key roles.
    ///
    /// # Errors
    /// Invalid `JWT_KEYS` or state file (exit 2), keys whose roles cannot be told (exit 3).
    pub fn snapshot(&self) -> Result<Snapshot> {
        let keys = self.keys()?;
        lifecycle::derive(&keys, self.state()?)
            .map_err(|e| Error::precondition(self.place("JWT_KEYS"), e.to_string()))
    }

    /// The key Auth signs with now: the signer in `JWT_KEYS`, or the legacy `JWT_SECRET`.
    ///
    /// # Errors
    /// Invalid `JWT_KEYS`, or no key at all.
    pub fn signer(&self) -> Result<(Material, Option<String>)> {
        if let Some(k) = self.keys()?.into_iter().find(Jwk::can_sign) {
            return Ok(if keyset::is_legacy(&k) {
                (k.material, None)
            } else {
                (k.material, k.kid)
            });
        }
        let secret = self.secret().ok_or_else(|| {
            Error::bad(
                self.place("JWT_SECRET"),
                "no JWT_KEYS and no HS256 secret for Auth (GOTRUE_JWT_SECRET or JWT_SECRET): nothing to sign with",
            )
        })?;
        Ok((keyset::legacy_material(&secret.value), None))
    }

    /// The files as loaded, for the trust model.
    #[must_use]
    pub(crate) fn sources(&self) -> Sources<'_> {
        match self.compose_if_present() {
            Ok(Some(c)) => Sources {
                env: &self.env,
                compose: Some(&c.doc),
                env_files: &c.env_files,
                env_alias: &c.env_alias,
                mounted: &c.mounted,
            },
            _ => Sources {
                env: &self.env,
                compose: None,
                env_files: &[],
                env_alias: &[],
                mounted: &[],
            },
        }
    }

    /// The HS256 secret Auth uses today and every variable that holds it (SPEC §3: "the
    /// legacy secret" is what Auth signs with, wherever it is stored).
    #[must_use]
    pub(crate) fn secret(&self) -> Option<trust::Secret> {
        self.secret.get_or_init(|| self.sources().secret()).clone()
    }

    /// `FILE:LINE VAR` (or `FILE VAR`) of the first variable keyctl can rewrite that holds
    /// the secret, for messages.
    #[must_use]
    pub(crate) fn secret_place(&self, secret: &trust::Secret) -> String {
        match secret.homes.first() {
            Some(trust::Home::Env(var)) => self.place(var),
            Some(trust::Home::EnvFile { file, var }) => format!("{file} {var}"),
            None => secret.read_as.clone(),
        }
    }

    /// `JWT_EXPIRY` in seconds (3600 when unset), or Auth's larger `GOTRUE_JWT_EXP`.
    ///
    /// # Errors
    /// Not a number of seconds from 1 to [`MAX_EXPIRY`] (exit 2).
    pub fn jwt_expiry(&self) -> Result<i64> {
        let parse = |v: &str, place: String| -> Result<i64> {
            v.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_EXPIRY).contains(n))
                .ok_or_else(|| {
                    Error::bad(
                        place,
                        format!("must be a number of seconds from 1 to {MAX_EXPIRY}"),
                    )
                })
        };
        let mut expiry = match self.env.get_nonempty("JWT_EXPIRY") {
            None => 3600,
            Some(v) => parse(v, self.place("JWT_EXPIRY"))?,
        };
        // Auth's own setting wins where the compose file sets it differently: the wait must
        // cover the longest-lived token Auth really issues.
        let Ok(Some(c)) = self.compose_if_present() else {
            return Ok(expiry);
        };
        let sources = self.sources();
        for s in c.doc.with_role(Role::Auth) {
            if let Some(t) = sources.trace(&s.name, "GOTRUE_JWT_EXP")
                && !t.value.trim().is_empty()
            {
                let place = match t.line {
                    Some(l) => format!("{} GOTRUE_JWT_EXP", c.place(Some(l))),
                    None => format!("{} GOTRUE_JWT_EXP (service {})", c.place(None), s.name),
                };
                expiry = expiry.max(parse(&t.value, place)?);
            }
        }
        Ok(expiry)
    }

    /// What each service verifies with. Without a compose file: what each service would
    /// read if it were wired as SPEC §2 says.
    #[must_use]
    pub fn views(&self) -> Vec<View> {
        self.sources().views()
    }

    /// Keys keyctl knows that may explain a bad signature: the current `.env` values (a
    /// service with a stale copy), revoked keys, retired secrets.
    #[must_use]
    pub fn known(&self) -> Vec<Known> {
        let env = &self.env;
        let mut known = Vec::new();
        if let Some(s) = self.secret() {
            known.push(Known::new(
                format!("the HS256 secret Auth uses ({}): this service has a stale or different copy (restart it, or fix its compose line)", s.read_as),
                &keyset::legacy_material(&s.value),
                None,
            ));
        }
        if let Some(keys) = env
            .get_nonempty("JWT_KEYS")
            .and_then(|t| keyset::parse_private_set(t, "JWT_KEYS").ok())
        {
            for k in keys.into_iter().filter(|k| k.kid.is_some()) {
                known.push(Known::new(
                    format!("{} kid {} from .env JWT_KEYS, which this service does not have (restart it, or wire JWT_JWKS: keyctl migrate)", k.material.alg(), k.kid.as_deref().unwrap_or_default()),
                    &k.material,
                    k.kid,
                ));
            }
        }
        if let Ok(state) = &self.state {
            for r in &state.revoked {
                if let Some(m) = r.public_jwk.as_ref().and_then(|j| Jwk::from_json(j).ok()) {
                    known.push(Known::new(
                        format!(
                            "kid {}, which this project revoked on {}",
                            r.kid.as_deref().unwrap_or("?"),
                            r.at
                        ),
                        &m.material,
                        r.kid.clone(),
                    ));
                }
            }
        }
        for r in &self.retired {
            known.push(Known::new(
                format!("the JWT_SECRET retired on {}", r.at),
                &r.material,
                None,
            ));
        }
        known
    }
}

/// Reads the state file (a missing one is an empty state), once `.keyctl/` is checked.
///
/// # Errors
/// Unreadable (exit 4), invalid (exit 2, naming the file), or in a `.keyctl/` keyctl must
/// not trust (exit 3).
pub(crate) fn load_state(paths: &Paths, now: Timestamp) -> Result<State> {
    // A record in a directory others can write (or a link to one) is not evidence.
    if !fsio::private_dir_if_present(&paths.dir, &paths.dir)? {
        return Ok(State::default());
    }
    let Some(text) = fsio::read_text_if_present(&paths.state)? else {
        return Ok(State::default());
    };
    State::parse(&text, now).map_err(|e| Error::bad(paths.state.display().to_string(), e))
}

/// Reads and parses the compose file at `path` and the override files beside it.
fn load_compose(
    path: PathBuf,
    roles: &[(String, Option<Role>)],
    env_path: &Path,
) -> Result<ComposeFile> {
    let text = fsio::read_text(&path)?;
    let mut doc = Compose::parse(&text).map_err(|e| {
        Error::bad(
            match e.line {
                Some(l) => format!("{}:{l}", path.display()),
                None => path.display().to_string(),
            },
            e.message,
        )
    })?;
    let unknown = doc.assign_roles(roles);
    if let Some(name) = unknown.first() {
        return Err(Error::bad(
            path.display().to_string(),
            format!("has no service {name:?}, which keyctl.toml or --service-is names"),
        ));
    }
    let dir = dir_of(&path).to_path_buf();
    let mut mounted = Vec::new();
    for service in doc.with_role(Role::Kong) {
        for written in doc.mounts(&service.name) {
            if (written.ends_with(".yml") || written.ends_with(".yaml"))
                && !mounted.iter().any(|m: &Mounted| m.written == written)
            {
                let text = fsio::read_text(&dir.join(&written)).ok();
                mounted.push(Mounted { written, text });
            }
        }
    }
    let mut env_files: Vec<(String, Option<EnvFile>)> = Vec::new();
    let mut env_alias = Vec::new();
    let env_real = fsio::canonical(env_path);
    for service in doc.services() {
        for name in doc.env_files(&service.name) {
            if env_files.iter().any(|(n, _)| *n == name) || env_alias.contains(&name) {
                continue;
            }
            if fsio::canonical(&dir.join(&name)) == env_real {
                env_alias.push(name);
                continue;
            }
            let env = fsio::read_text(&dir.join(&name))
                .ok()
                .and_then(|t| EnvFile::parse(&t).ok());
            env_files.push((name, env));
        }
    }
    let mut overrides = Vec::new();
    for name in OVERRIDE_NAMES {
        let o = path.with_file_name(name);
        // An unreadable override file is not keyctl's to judge; docker compose will say.
        if let Ok(Some(text)) = fsio::read_text_if_present(&o) {
            overrides.push(Override { path: o, text });
        }
    }
    Ok(ComposeFile {
        path,
        doc,
        overrides,
        env_files,
        env_alias,
        mounted,
    })
}

/// The roles `keyctl.toml` beside the `.env` assigns, then those of the command line.
///
/// # Errors
/// An unreadable (exit 4) or invalid (exit 2) `keyctl.toml`.
fn assigned_roles(
    env_path: &Path,
    flags: &[(String, Option<Role>)],
) -> Result<Vec<(String, Option<Role>)>> {
    let config = dir_of(env_path).join(CONFIG_NAME);
    let mut roles = match fsio::read_text_if_present(&config)? {
        Some(text) => {
            roles::parse_config(&text).map_err(|e| Error::bad(config.display().to_string(), e))?
        }
        None => Vec::new(),
    };
    roles.extend(flags.iter().cloned());
    Ok(roles)
}

/// The retired secrets whose backups can be read, confined to `.keyctl/`.
fn retired(paths: &Paths, state: &State) -> Vec<RetiredSecret> {
    let mut out = Vec::new();
    for r in &state.retired_secrets {
        let backup = paths.absolute(&r.backup);
        // Inside `.keyctl/`, lexically and through directories keyctl can trust.
        let trusted = confined(&backup, &paths.dir)
            && backup
                .parent()
                .is_some_and(|d| fsio::private_dir_if_present(&paths.dir, d).unwrap_or(false));
        if !trusted {
            continue;
        }
        let var = r.var.as_deref().unwrap_or("JWT_SECRET");
        let secret = fsio::read_text(&backup)
            .ok()
            .and_then(|t| EnvFile::parse(&t).ok())
            .and_then(|e| e.get_nonempty(var).map(keyset::legacy_material));
        if let Some(material) = secret {
            out.push(RetiredSecret { at: r.at, material });
        }
    }
    out
}

/// Whether `path` stays inside `dir` (no `..` leaving it).
fn confined(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir)
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

/// Private key files in `dir` readable by group or others.
fn readable_key_files(dir: &Path) -> Vec<PathBuf> {
    fsio::regular_files(dir)
        .into_iter()
        .filter(|e| {
            (e.name.ends_with(".pem") || e.name.ends_with(".jwk.json") || e.name == "keys.env")
                && e.mode & 0o077 != 0
                && fsio::read_text(&e.path)
                    .is_ok_and(|t| t.contains("PRIVATE KEY") || t.contains("\"d\""))
        })
        .map(|e| e.path)
        .collect()
}

/// `Refusal::StateDisagrees` unless the state file's last event says what the files say.
///
/// # Errors
/// They disagree (exit 3), with what differs.
pub(crate) fn reconcile(project: &Project, snap: &Snapshot, state: &State) -> Result<()> {
    let differs = lifecycle::disagreements(snap, state);
    if differs.is_empty() {
        return Ok(());
    }
    Err(Refusal::StateDisagrees {
        env: project.env_path.clone(),
        differs,
        state: project.paths.state.clone(),
    }
    .into())
}
