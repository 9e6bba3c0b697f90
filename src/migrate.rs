//! The migration and rotation steps of SPEC §3 as plans: what each step does to `.env`, the
//! compose file and the state file, which services must restart, and why a step is refused.
//! Plans are computed in memory and validated; only `change::apply` writes them. Never
//! prints.

use std::collections::BTreeSet;
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};

use crate::apikey;
use crate::change::{self, FileChange, Paths};
use crate::compose::{Compose, Role};
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::fsio;
use crate::jwk;
use crate::key::{Alg, Material};
use crate::keyset::{self, MIN_SECRET_LEN, derive_jwks, legacy_material};
use crate::lifecycle::{self, KeyList, Phase, Slot, Snapshot};
use crate::project::{self, Project};
use crate::state::{Event, RetiredSecret, Revoked, State};

/// The comment appended above variables keyctl adds to `.env`.
pub const ENV_GROUP: &str = include_str!("../templates/env-block.txt");

/// Longest `JWT_EXPIRY` keyctl accepts (ten years, in seconds).
pub const MAX_EXPIRY: i64 = 315_360_000;

/// The `.env` variable holding realtime's healthcheck token once `ANON_KEY` is asymmetric.
pub const HEALTHCHECK_VAR: &str = "REALTIME_HEALTHCHECK_TOKEN";

/// Variables Kong reads for the opaque API keys (SPEC §2).
pub const KONG_VARS: [&str; 4] = [
    "SUPABASE_PUBLISHABLE_KEY",
    "SUPABASE_SECRET_KEY",
    "ANON_KEY_ASYMMETRIC",
    "SERVICE_ROLE_KEY_ASYMMETRIC",
];

/// A loaded project: `.env`, compose file, state file.
#[derive(Debug)]
pub struct Stack {
    /// `.env` and its path.
    pub project: Project,
    /// The compose file's path.
    pub compose_path: PathBuf,
    /// The compose file.
    pub compose: Compose,
    /// keyctl's paths for this project.
    pub paths: Paths,
}

impl Stack {
    /// Reads `.env` and the compose file.
    ///
    /// # Errors
    /// Unreadable (exit 4) or unparseable (exit 2) files.
    pub fn load(args: &crate::cmd::ProjectArgs) -> Result<Stack> {
        let project = Project::load(args.project.as_deref(), args.env_file.as_deref())?;
        let compose_path = project::compose_path(&project.env_path, args.compose_file.as_deref())?;
        let text = fsio::read_text(&compose_path)?;
        let compose = Compose::parse(&text).map_err(|e| {
            Error::bad(
                match e.line {
                    Some(l) => format!("{}:{l}", compose_path.display()),
                    None => compose_path.display().to_string(),
                },
                e.message,
            )
        })?;
        if let Some((line, feature)) = compose.outside_references() {
            return Err(Error::bad(
                format!("{}:{line}", compose_path.display()),
                format!(
                    "uses {feature}, which keyctl does not follow: services defined in the other file would not be wired. Merge them into this file first"
                ),
            ));
        }
        let paths = Paths::for_env(&project.env_path);
        Ok(Stack {
            project,
            compose_path,
            compose,
            paths,
        })
    }

    /// `JWT_KEYS` parsed (empty when absent, empty or `[]`).
    ///
    /// # Errors
    /// `JWT_KEYS` that breaks a rule of SPEC §1 (bad input, exit 2).
    pub fn keys(&self) -> Result<Vec<jwk::Jwk>> {
        match self.project.value("JWT_KEYS") {
            Some((text, place)) if !text.trim().is_empty() => {
                keyset::parse_private_set(text, &place).map_err(|p| keyset::as_error(&p))
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The phase and key roles.
    ///
    /// # Errors
    /// Invalid `JWT_KEYS` (exit 2) or keys whose roles cannot be told (exit 3).
    pub fn snapshot(&self, state: &State) -> Result<Snapshot> {
        let keys = self.keys()?;
        lifecycle::derive(&keys, state)
            .map_err(|e| Error::Unsafe(format!("{}: {e}", self.project.place("JWT_KEYS"))))
    }

    /// `JWT_EXPIRY` in seconds (3600 when unset).
    ///
    /// # Errors
    /// Not a positive integer.
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
        let mut expiry = match self.project.env.get_nonempty("JWT_EXPIRY") {
            None => 3600,
            Some(v) => parse(v, self.project.place("JWT_EXPIRY"))?,
        };
        // Auth's own setting wins where the compose file sets it differently: the wait must
        // cover the longest-lived token Auth really issues.
        for s in self.compose.with_role(Role::Auth) {
            if let Some(line) = self.compose.env(&s.name, "GOTRUE_JWT_EXP") {
                let value = self
                    .project
                    .env
                    .interpolate(&line.value)
                    .unwrap_or_default();
                if !value.trim().is_empty() {
                    expiry = expiry.max(parse(
                        &value,
                        format!(
                            "{}:{} GOTRUE_JWT_EXP",
                            self.compose_path.display(),
                            line.line
                        ),
                    )?);
                }
            }
        }
        Ok(expiry)
    }
}

/// The state file must agree with the files: its last event's phase and signer are what the
/// files show.
///
/// # Errors
/// They disagree (exit 3), with what differs.
pub fn reconcile(stack: &Stack, snap: &Snapshot, state: &State) -> Result<()> {
    let Some(last) = state.events.last() else {
        return Ok(());
    };
    let signer = snap.signer.as_ref().and_then(|s| s.kid.clone());
    let mut differs = Vec::new();
    if last.phase != snap.phase.as_str() {
        differs.push(format!(
            "the state file says {} (since {}), the files say {}",
            last.phase, last.at, snap.phase
        ));
    } else if last.signer != signer {
        differs.push(format!(
            "the state file says the signing key is {}, JWT_KEYS says {}",
            last.signer.as_deref().unwrap_or("the legacy secret"),
            signer.as_deref().unwrap_or("the legacy secret")
        ));
    } else if snap.phase == Phase::DualVerify
        && let Some(new) = &snap.new_key
        && last.kid != new.kid
    {
        differs.push(format!(
            "the state file says kid {} is the new key, JWT_KEYS holds {}",
            last.kid.as_deref().unwrap_or("?"),
            new.kid.as_deref().unwrap_or("?")
        ));
    }
    if differs.is_empty() {
        return Ok(());
    }
    Err(Error::Unsafe(format!(
        "{} was edited outside keyctl: {}; restore it from .keyctl/backups/, or move {} aside to start the record afresh (timers then need --force)",
        stack.project.env_path.display(),
        differs.join("; "),
        stack.paths.state.display()
    )))
}

/// The JWT variables keyctl wires, per service role.
pub const WIRING: [(Role, &str, &str); 5] = [
    (Role::Auth, "GOTRUE_JWT_KEYS", "JWT_KEYS"),
    (Role::Rest, "PGRST_JWT_SECRET", "JWT_JWKS"),
    (Role::Realtime, "API_JWT_JWKS", "JWT_JWKS"),
    (Role::Storage, "JWT_JWKS", "JWT_JWKS"),
    (Role::Functions, "SUPABASE_JWKS", "JWT_JWKS"),
];

/// Compose override files docker compose loads beside the main file.
pub const OVERRIDE_NAMES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// Services whose compose line does not feed them the variable SPEC §2 wires.
#[must_use]
pub fn wiring_gaps(stack: &Stack) -> Vec<String> {
    let mut gaps = Vec::new();
    for (role, key, var) in WIRING {
        for s in stack.compose.with_role(role) {
            let wired = stack
                .compose
                .env(&s.name, key)
                .is_some_and(|l| l.value.contains(&format!("${{{var}")));
            if !wired {
                gaps.push(format!("{} {key} (wants ${{{var}}})", s.name));
            }
        }
    }
    gaps
}

/// Checks that the project is in a state a step can safely start from: the sets pass every
/// rule, past `legacy` every service is wired to them, the API keys match the phase, and no
/// override file shadows what keyctl edits.
///
/// # Errors
/// Refused (exit 3) with what is wrong and what to do.
pub fn preflight(stack: &Stack, snap: &Snapshot, state: &State, request: Request) -> Result<()> {
    let dir = stack.paths.project.display().to_string();
    // Every later computation (waits, hints) relies on a sane JWT_EXPIRY: check it first.
    stack.jwt_expiry()?;
    for name in OVERRIDE_NAMES {
        let path = stack.compose_path.with_file_name(name);
        if let Ok(text) = fsio::read_text(&path)
            && let Some((_, key, _)) = WIRING.iter().find(|(_, key, _)| text.contains(key))
        {
            return Err(Error::Unsafe(format!(
                "{}: sets {key}, which keyctl manages in {}; docker compose would apply the override over keyctl's wiring. Move the JWT lines into the main compose file",
                path.display(),
                stack.compose_path.display()
            )));
        }
    }
    for s in stack.compose.with_role(Role::Rest) {
        if let Some(l) = stack.compose.env(&s.name, "PGRST_JWT_SECRET_IS_BASE64")
            && stack
                .project
                .env
                .interpolate(&l.value)
                .is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return Err(Error::Unsafe(format!(
                "{}:{} PGRST_JWT_SECRET_IS_BASE64 is true: with a JWKS, PostgREST would base64-decode the JSON and reject every token. Remove the line first",
                stack.compose_path.display(),
                l.line
            )));
        }
    }
    if snap.phase == Phase::Legacy {
        return Ok(());
    }
    let problems = keyset::check(&crate::cmd::jwks::project_inputs(&stack.project));
    if let Some(p) = problems.first() {
        return Err(Error::Unsafe(format!(
            "{p}; fix the key sets first (keyctl jwks --check --project {dir})"
        )));
    }
    if request != Request::Rewire {
        let gaps = wiring_gaps(stack);
        if !gaps.is_empty() {
            return Err(Error::Unsafe(format!(
                "{} does not feed the keys to {}: those services still verify with JWT_SECRET only. Run `keyctl migrate rewire --project {dir}`, restart, then continue",
                stack.compose_path.display(),
                gaps.join(", ")
            )));
        }
    }
    if snap.phase == Phase::Revoked && state.events.is_empty() {
        let hs256: Vec<&str> = apikey::ROLES
            .iter()
            .filter(|(var, _)| {
                stack
                    .project
                    .env
                    .get_nonempty(var)
                    .is_some_and(apikey::is_hs256)
            })
            .map(|(var, _)| *var)
            .collect();
        if !hs256.is_empty() {
            return Err(Error::Unsafe(format!(
                "JWT_KEYS holds only an asymmetric signing key, but {} {} HS256: the stack still relies on JWT_SECRET, and keyctl has no record of a migration. Empty JWT_KEYS and JWT_JWKS (or restore the .env) and start from legacy with keyctl migrate",
                hs256.join(" and "),
                if hs256.len() == 1 { "is" } else { "are" }
            )));
        }
    }
    Ok(())
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The next step.
    Next,
    /// Undo the last step.
    Rollback,
    /// Remove the previous key (the last step, as `revoke` runs it).
    RevokePrevious,
    /// Only put the compose wiring back (after a stack upgrade replaced the compose file).
    Rewire,
}

/// Options that change a step.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Algorithm of a new key.
    pub alg: Alg,
    /// Skip the waits.
    pub force: bool,
    /// Consent to re-mint `ANON_KEY`/`SERVICE_ROLE_KEY`.
    pub remint: bool,
}

/// A step ready to apply.
#[derive(Debug)]
pub struct Plan {
    /// `dual-verify`, `switched`, `revoked`, `rollback`.
    pub step: &'static str,
    /// Phase before.
    pub from: Phase,
    /// Phase after.
    pub to: Phase,
    /// What happens, in plain words.
    pub summary: Vec<String>,
    /// Warnings to show before confirming.
    pub warnings: Vec<String>,
    /// The files' old and new texts.
    pub files: Vec<FileChange>,
    /// The state after the step.
    pub state: State,
    /// Services to restart: verifiers first, then the others.
    pub restart: (Vec<String>, Vec<String>),
    /// What the operator must do besides restarting.
    pub afterwards: Vec<String>,
    /// The backup directory `apply` will use.
    pub backup_dir: PathBuf,
}

/// Why a step cannot run yet or at all.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// A wait is not over.
    NotDue {
        /// What is waited for.
        what: String,
        /// When it is allowed.
        at: Timestamp,
        /// How long is left.
        remaining: SignedDuration,
    },
    /// Needs consent to re-mint the API keys.
    NeedsConsent(String),
}

/// The outcome of planning.
#[derive(Debug)]
pub enum Planned {
    /// A step to show and apply.
    Step(Box<Plan>),
    /// Nothing to do (and why).
    Nothing(String),
    /// Refused (exit 3).
    Refused(Refusal),
}

struct Draft<'s> {
    stack: &'s Stack,
    env: EnvFile,
    compose: Compose,
    summary: Vec<String>,
    warnings: Vec<String>,
    afterwards: Vec<String>,
}

impl<'s> Draft<'s> {
    fn new(stack: &'s Stack) -> Self {
        Draft {
            stack,
            env: stack.project.env.clone(),
            compose: stack.compose.clone(),
            summary: Vec::new(),
            warnings: Vec::new(),
            afterwards: Vec::new(),
        }
    }

    fn set_env(&mut self, key: &str, value: &str) -> Result<()> {
        self.env
            .set(key, value, Some(ENV_GROUP))
            .map(|_| ())
            .map_err(|e| Error::bad(self.stack.project.place(key), e))
    }

    fn set_keys(&mut self, list: &KeyList) -> Result<()> {
        let keys = keyset::render_private_set(&list.pairs(), list.signer).to_string();
        let parsed = keyset::parse_private_set(&keys, "planned JWT_KEYS")
            .map_err(|p| Error::Unsafe(format!("refusing to write: {}", p[0])))?;
        let jwks = derive_jwks(&parsed).to_string();
        self.set_env("JWT_KEYS", &keys)?;
        self.set_env("JWT_JWKS", &jwks)
    }

    /// Wires `var` into every service with `role`: keeps a line that already references
    /// `wanted_var`, uncomments upstream's line, or adds `${wanted_var}`.
    fn wire(&mut self, role: Role, key: &str, wanted_var: &str) -> Result<usize> {
        let services = self.compose.with_role(role);
        let wanted = format!("${{{wanted_var}}}");
        let prefix_plain = format!("${{{wanted_var}}}");
        let prefix_default = format!("${{{wanted_var}:");
        let prefix_default2 = format!("${{{wanted_var}-");
        let is_right = move |v: &str| {
            v.starts_with(&prefix_plain)
                || v.starts_with(&prefix_default)
                || v.starts_with(&prefix_default2)
        };
        for s in &services {
            self.compose
                .set_env(&s.name, key, &wanted, &is_right)
                .map_err(|e| compose_error(&self.stack.compose_path, &e))?;
        }
        Ok(services.len())
    }

    fn wire_verifiers(&mut self) -> Result<()> {
        if self.compose.with_role(Role::Auth).is_empty() {
            return Err(Error::bad(
                self.stack.compose_path.display().to_string(),
                "no Auth service (image supabase/gotrue or supabase/auth) found",
            ));
        }
        self.wire(Role::Auth, "GOTRUE_JWT_KEYS", "JWT_KEYS")?;
        self.wire(Role::Rest, "PGRST_JWT_SECRET", "JWT_JWKS")?;
        self.wire(Role::Realtime, "API_JWT_JWKS", "JWT_JWKS")?;
        self.wire(Role::Storage, "JWT_JWKS", "JWT_JWKS")?;
        self.wire(Role::Functions, "SUPABASE_JWKS", "JWT_JWKS")?;
        Ok(())
    }

    /// Adds `alg` to a literal `GOTRUE_JWT_VALID_METHODS` / `GOTRUE_JWT_VALIDMETHODS`.
    fn allow_alg(&mut self, alg: Alg) -> Result<()> {
        for s in self.compose.with_role(Role::Auth) {
            for key in ["GOTRUE_JWT_VALID_METHODS", "GOTRUE_JWT_VALIDMETHODS"] {
                let Some(line) = self.compose.env(&s.name, key) else {
                    continue;
                };
                if line.value.contains('$') {
                    self.warnings.push(format!(
                        "{}:{} {key} is interpolated; make sure it lists {alg}",
                        self.stack.compose_path.display(),
                        line.line
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
                self.compose
                    .set_env(&s.name, key, &wanted, &move |v: &str| v == w)
                    .map_err(|e| compose_error(&self.stack.compose_path, &e))?;
                self.summary
                    .push(format!("add {alg} to {key} of service {}", s.name));
            }
        }
        Ok(())
    }
}

fn compose_error(path: &std::path::Path, e: &crate::compose::ComposeError) -> Error {
    Error::bad(
        match e.line {
            Some(l) => format!("{}:{l}", path.display()),
            None => path.display().to_string(),
        },
        e.message.clone(),
    )
}

fn new_slot(alg: Alg) -> Result<Slot> {
    let material = Material::generate(alg, 2048).map_err(|e| Error::bad("generate", e.0))?;
    Ok(Slot {
        kid: Some(crate::cmd::generate::new_uuid()?),
        material,
    })
}

fn legacy_slot(stack: &Stack) -> Result<Slot> {
    let place = stack.project.place("JWT_SECRET");
    let secret = stack
        .project
        .env
        .get_nonempty("JWT_SECRET")
        .ok_or_else(|| {
            Error::bad(
                &place,
                "is not set: there is no legacy secret to keep trusting",
            )
        })?;
    if secret.chars().count() < MIN_SECRET_LEN {
        return Err(Error::Unsafe(format!(
            "{place}: is {} characters; PostgREST 13 refuses secrets shorter than {MIN_SECRET_LEN}, so it cannot go into JWT_JWKS. Rotate it first",
            secret.chars().count()
        )));
    }
    Ok(Slot {
        kid: None,
        material: legacy_material(secret),
    })
}

fn event(
    step: &str,
    at: Timestamp,
    phase: Phase,
    kid: Option<&str>,
    signer: Option<&str>,
) -> Event {
    Event::new(step, at, phase.as_str(), kid, signer)
}

/// Plans what `request` does to the project now.
///
/// # Errors
/// Bad input (exit 2) or unsafe situations (exit 3) found while planning.
pub fn plan(
    stack: &Stack,
    snap: &Snapshot,
    state: &State,
    request: Request,
    opts: Options,
    now: Timestamp,
) -> Result<Planned> {
    let mut draft = Draft::new(stack);
    let mut state = state.clone();
    let (step, to) = match (request, snap.phase) {
        (Request::Next, Phase::Legacy | Phase::Revoked) => {
            let current = match snap.phase {
                Phase::Legacy => legacy_slot(stack)?,
                _ => snap
                    .signer
                    .clone()
                    .expect("a revoked-phase project has a signer"),
            };
            if snap.phase == Phase::Legacy
                && let Some(signer) = &snap.signer
                && !keyset::same_key(&signer.material, &current.material)
            {
                return Err(Error::Unsafe(format!(
                    "{}: the legacy oct key is not JWT_SECRET; fix that first (keyctl jwks --check)",
                    stack.project.place("JWT_KEYS")
                )));
            }
            let new = new_slot(opts.alg)?;
            let new_kid = new.kid.clone();
            draft.summary.push(format!("publish a new {} key (kid {}) as standby: every verifier trusts it before it signs", opts.alg, new_kid.as_deref().unwrap_or("?")));
            draft
                .summary
                .push(format!("{} keeps signing", current.label()));
            if opts.alg == Alg::EdDsa {
                draft.warnings.push("EdDSA: Edge Functions and supabase-js auth.getClaims() cannot verify Ed25519 tokens; ES256 is verified everywhere".into());
            }
            if opts.alg == Alg::Hs256 {
                return Err(Error::Usage("--alg HS256 would migrate to another shared secret; choose ES256, RS256 or EdDSA".into()));
            }
            let signer_kid = current.kid.clone();
            draft.set_keys(&lifecycle::publish(current, new))?;
            draft.wire_verifiers()?;
            draft.allow_alg(opts.alg)?;
            state.events.push(event(
                "dual-verify",
                now,
                Phase::DualVerify,
                new_kid.as_deref(),
                signer_kid.as_deref(),
            ));
            ("dual-verify", Phase::DualVerify)
        }
        (Request::Next, Phase::DualVerify) => {
            let (new, previous) = (
                snap.new_key.clone().expect("dual-verify has a new key"),
                snap.previous.clone().expect("and a previous one"),
            );
            let published = state.last("dual-verify", new.kid.as_deref()).map(|e| e.at);
            if let Some(r) = wait(
                published,
                lifecycle::PUBLISH_WAIT,
                now,
                opts.force,
                &format!(
                    "switching to kid {}: its publication must reach every JWKS cache (20 minutes)",
                    new.kid.as_deref().unwrap_or("?")
                ),
                &mut draft.warnings,
            )? {
                return Ok(Planned::Refused(r));
            }
            draft
                .summary
                .push(format!("sign with {} from now on", new.label()));
            draft.summary.push(format!(
                "{} keeps verifying the tokens it issued until they expire",
                previous.label()
            ));
            mint_kong_keys(&mut draft, &new, now)?;
            let kid = new.kid.clone();
            draft.set_keys(&lifecycle::switch(previous, new))?;
            state.events.push(event(
                "switched",
                now,
                Phase::Switched,
                kid.as_deref(),
                kid.as_deref(),
            ));
            ("switched", Phase::Switched)
        }
        (Request::Next | Request::RevokePrevious, Phase::Switched) => {
            let (signer, previous) = (
                snap.signer.clone().expect("switched has a signer"),
                snap.previous.clone().expect("and a previous key"),
            );
            let switched = state.last("switched", signer.kid.as_deref()).map(|e| e.at);
            let expiry = stack.jwt_expiry()?;
            let grace = SignedDuration::from_secs(expiry) + lifecycle::REVOKE_GRACE;
            if let Some(r) = wait(
                switched,
                grace,
                now,
                opts.force,
                &format!(
                    "revoking {}: every token it signed must expire first (JWT_EXPIRY {expiry}s + 20 minutes)",
                    previous.label()
                ),
                &mut draft.warnings,
            )? {
                return Ok(Planned::Refused(r));
            }
            if let Some(r) = revoke_previous(&mut draft, &mut state, &signer, &previous, opts, now)?
            {
                return Ok(Planned::Refused(r));
            }
            let kid = signer.kid.clone();
            state.events.push(event(
                "revoked",
                now,
                Phase::Revoked,
                previous.kid.as_deref(),
                kid.as_deref(),
            ));
            ("revoked", Phase::Revoked)
        }
        (Request::RevokePrevious, Phase::Legacy | Phase::Revoked) => {
            return Ok(Planned::Nothing(
                "the previous key is already revoked; nothing to do".into(),
            ));
        }
        (Request::RevokePrevious, Phase::DualVerify) => {
            return Err(Error::Unsafe("the previous key still signs (phase dual-verify); switch first with keyctl migrate, or roll back with keyctl migrate rollback".into()));
        }
        (Request::Rollback, Phase::Legacy) => {
            return Ok(Planned::Nothing(
                "the project is legacy: nothing to roll back".into(),
            ));
        }
        (Request::Rollback, Phase::Revoked) => {
            return Err(Error::Unsafe("the previous key has been revoked: that step cannot be undone (start a rotation with keyctl migrate instead)".into()));
        }
        (Request::Rollback, Phase::DualVerify) => {
            let (new, previous) = (
                snap.new_key.clone().expect("new"),
                snap.previous.clone().expect("previous"),
            );
            let back = if previous.kid.is_none() {
                Phase::Legacy
            } else {
                Phase::Revoked
            };
            // If the new key was signing before a rollback from `switched`, tokens it issued
            // may still be alive: withdrawing it must wait like any revocation.
            let signed = state
                .events
                .iter()
                .any(|e| e.step == "switched" && e.kid == new.kid);
            if signed {
                let since = state
                    .events
                    .iter()
                    .rev()
                    .find(|e| e.step == "rollback" && e.kid == new.kid)
                    .map(|e| e.at);
                let expiry = stack.jwt_expiry()?;
                let grace = SignedDuration::from_secs(expiry) + lifecycle::REVOKE_GRACE;
                if let Some(r) = wait(
                    since,
                    grace,
                    now,
                    opts.force,
                    &format!(
                        "withdrawing {}: it signed tokens before the rollback, and they must expire first (JWT_EXPIRY {expiry}s + 20 minutes)",
                        new.label()
                    ),
                    &mut draft.warnings,
                )? {
                    return Ok(Planned::Refused(r));
                }
                state.revoked.push(Revoked {
                    kid: new.kid.clone(),
                    at: now,
                    public_jwk: Some(jwk::public_json(&new.material, new.kid.as_deref())),
                });
                draft.summary.push(format!("withdraw {} (it signed before the rollback; its tokens have expired) and keep {} alone", new.label(), previous.label()));
                for (var, role) in [
                    ("ANON_KEY_ASYMMETRIC", "anon"),
                    ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role"),
                ] {
                    if draft
                        .env
                        .get_nonempty(var)
                        .and_then(kid_of)
                        .is_some_and(|k| k == new.kid)
                    {
                        if previous.kid.is_some() {
                            let token = apikey::mint(
                                &previous.material,
                                previous.kid.as_deref(),
                                role,
                                now,
                            )
                            .map_err(|e| Error::bad(var, e.0))?;
                            draft.set_env(var, &token)?;
                            draft
                                .summary
                                .push(format!("re-mint {var} with {}", previous.label()));
                        } else {
                            draft.warnings.push(format!("{var} was signed by the withdrawn key and no asymmetric key remains to re-mint it: Kong's opaque keys stop working until the next migration"));
                        }
                    }
                }
            } else {
                draft.summary.push(format!(
                    "withdraw the standby {} (it never signed) and keep {} alone",
                    new.label(),
                    previous.label()
                ));
            }
            let signer_kid = previous.kid.clone();
            draft.set_keys(&lifecycle::alone(previous))?;
            draft.afterwards.push("the compose wiring stays in place; JWT_KEYS and JWT_JWKS keep the remaining key, so nothing is written empty".into());
            state.events.push(event(
                "rollback",
                now,
                back,
                new.kid.as_deref(),
                signer_kid.as_deref(),
            ));
            ("rollback", back)
        }
        (Request::Rewire, phase) => {
            if phase == Phase::Legacy {
                return Ok(Planned::Nothing(
                    "the project is legacy: the first step wires the compose file".into(),
                ));
            }
            draft.wire_verifiers()?;
            if matches!(phase, Phase::Switched | Phase::Revoked) {
                for var in KONG_VARS {
                    if draft.env.get_nonempty(var).is_some() {
                        draft.wire(Role::Kong, var, var)?;
                    }
                }
            }
            if draft.compose.text() == stack.compose.text() {
                return Ok(Planned::Nothing(
                    "every service already reads JWT_KEYS / JWT_JWKS".into(),
                ));
            }
            draft.summary.push("put back the lines that feed JWT_KEYS and JWT_JWKS to the services (no key changes)".into());
            // Services that now get the key set for the first time have not seen the standby
            // key: its 20-minute wait starts again from here.
            if phase == Phase::DualVerify
                && let (Some(new), Some(signer)) = (&snap.new_key, &snap.signer)
            {
                state.events.push(event(
                    "dual-verify",
                    now,
                    Phase::DualVerify,
                    new.kid.as_deref(),
                    signer.kid.as_deref(),
                ));
                draft.summary.push("restart the 20-minute wait before the switch: the re-wired services see the new key only from their restart".into());
            }
            ("rewire", phase)
        }
        (Request::Rollback, Phase::Switched) => {
            let (new, previous) = (
                snap.signer.clone().expect("signer"),
                snap.previous.clone().expect("previous"),
            );
            draft.summary.push(format!(
                "sign with {} again; {} keeps verifying the tokens it issued",
                previous.label(),
                new.label()
            ));
            let signer_kid = previous.kid.clone();
            let new_kid = new.kid.clone();
            draft.set_keys(&lifecycle::publish(previous, new))?;
            state.events.push(event(
                "rollback",
                now,
                Phase::DualVerify,
                new_kid.as_deref(),
                signer_kid.as_deref(),
            ));
            ("rollback", Phase::DualVerify)
        }
    };
    change::validate_env(&draft.env)?;
    let files = vec![
        FileChange {
            path: stack.compose_path.clone(),
            before: stack.compose.text().to_owned(),
            after: draft.compose.text().to_owned(),
            is_env: false,
        },
        FileChange {
            path: stack.project.env_path.clone(),
            before: stack.project.env.render().to_owned(),
            after: draft.env.render().to_owned(),
            is_env: true,
        },
    ];
    let restart = restarts(stack, &draft.env, &draft.compose);
    let backup_dir = change::backup_dir(&stack.paths, step, now);
    if step == "revoked" && snap.previous.as_ref().is_some_and(|p| p.kid.is_none()) {
        state.retired_secrets.push(RetiredSecret {
            at: now,
            backup: backup_dir
                .join(
                    stack
                        .project
                        .env_path
                        .file_name()
                        .map_or_else(|| ".env".into(), |n| n.to_string_lossy().into_owned()),
                )
                .strip_prefix(&stack.paths.project)
                .map_or_else(
                    |_| backup_dir.display().to_string(),
                    |p| p.display().to_string(),
                ),
        });
    }
    Ok(Planned::Step(Box::new(Plan {
        step,
        from: snap.phase,
        to,
        summary: draft.summary,
        warnings: draft.warnings,
        files,
        state,
        restart,
        afterwards: draft.afterwards,
        backup_dir,
    })))
}

/// Checks a wait; `Ok(Some(refusal))` when it is not over and not forced.
fn wait(
    since: Option<Timestamp>,
    wait: SignedDuration,
    now: Timestamp,
    force: bool,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Refusal>> {
    let Some(since) = since else {
        if force {
            warnings.push(format!(
                "--force: no record of when this phase began; {what}"
            ));
            return Ok(None);
        }
        return Err(Error::Unsafe(format!(
            "the state file has no record of when this phase began, so the wait cannot be checked ({what}); if that time has surely passed, run again with --force"
        )));
    };
    let at = since + wait;
    if now >= at {
        return Ok(None);
    }
    let remaining = now.duration_until(at);
    if force {
        warnings.push(format!(
            "--force: skipping the wait ({} left) for {what}",
            lifecycle::human(remaining)
        ));
        return Ok(None);
    }
    Ok(Some(Refusal::NotDue {
        what: what.to_owned(),
        at,
        remaining,
    }))
}

fn kid_of(token: &str) -> Option<Option<String>> {
    crate::jws::decode(token)
        .ok()
        .map(|d| d.kid().map(str::to_owned))
}

/// At the switch, when the stack has Kong: `*_ASYMMETRIC` API keys signed by the new key, the
/// opaque keys when absent, and the four variables in Kong's environment.
fn mint_kong_keys(draft: &mut Draft<'_>, new: &Slot, now: Timestamp) -> Result<()> {
    if draft.compose.with_role(Role::Kong).is_empty() {
        return Ok(());
    }
    for (var, role) in [
        ("ANON_KEY_ASYMMETRIC", "anon"),
        ("SERVICE_ROLE_KEY_ASYMMETRIC", "service_role"),
    ] {
        let token = apikey::mint(&new.material, new.kid.as_deref(), role, now)
            .map_err(|e| Error::bad(var, e.0))?;
        draft.set_env(var, &token)?;
    }
    draft.summary.push("mint ANON_KEY_ASYMMETRIC and SERVICE_ROLE_KEY_ASYMMETRIC with the new key (Kong swaps the opaque keys for them)".into());
    for (var, prefix) in [
        ("SUPABASE_PUBLISHABLE_KEY", "sb_publishable_"),
        ("SUPABASE_SECRET_KEY", "sb_secret_"),
    ] {
        if draft.env.get_nonempty(var).is_none() {
            draft.set_env(var, &apikey::opaque(prefix))?;
            draft.summary.push(format!("create {var}"));
        }
    }
    for var in KONG_VARS {
        draft.wire(Role::Kong, var, var)?;
    }
    Ok(())
}

fn revoke_previous(
    draft: &mut Draft<'_>,
    state: &mut State,
    signer: &Slot,
    previous: &Slot,
    opts: Options,
    now: Timestamp,
) -> Result<Option<Refusal>> {
    // API keys signed by the key being revoked stop working: re-mint them, with consent.
    let signed_by_previous: Vec<&str> = apikey::ROLES
        .iter()
        .filter(|(var, _)| {
            draft
                .env
                .get_nonempty(var)
                .and_then(kid_of)
                .is_some_and(|kid| kid == previous.kid)
        })
        .map(|(var, _)| *var)
        .collect();
    if !signed_by_previous.is_empty() && !opts.remint {
        return Ok(Some(Refusal::NeedsConsent(format!(
            "{} {} signed by {}: revoking it breaks every client that holds them. Re-run with --remint-api-keys to re-mint them with {} (clients then need the new anon key)",
            signed_by_previous.join(" and "),
            if signed_by_previous.len() == 1 {
                "is"
            } else {
                "are"
            },
            previous.label(),
            signer.label()
        ))));
    }
    for (var, role) in apikey::ROLES {
        if signed_by_previous.contains(&var) {
            let token = apikey::mint(&signer.material, signer.kid.as_deref(), role, now)
                .map_err(|e| Error::bad(var, e.0))?;
            draft.set_env(var, &token)?;
            draft.summary.push(format!(
                "re-mint {var} with {} (a client-visible change)",
                signer.label()
            ));
            draft.afterwards.push(format!(
                "give every client the new {var} (frontends, mobile apps, server code)"
            ));
        }
    }
    draft.summary.push(format!(
        "revoke {}: it leaves JWT_KEYS and JWT_JWKS",
        previous.label()
    ));
    draft.set_keys(&lifecycle::alone(signer.clone()))?;
    if previous.kid.is_none() {
        let secret = apikey::fresh_secret();
        draft.set_env("JWT_SECRET", &secret)?;
        draft.summary.push("replace JWT_SECRET with a fresh random value, so no HS256 token held by a client verifies anywhere".into());
        let token = apikey::mint(&legacy_material(&secret), None, "anon", now)
            .map_err(|e| Error::bad(HEALTHCHECK_VAR, e.0))?;
        draft.set_env(HEALTHCHECK_VAR, &token)?;
        for s in draft.compose.with_role(Role::Realtime) {
            let test = draft.compose.healthcheck_test(&s.name).unwrap_or_default();
            if !referenced_vars(&test).contains("ANON_KEY") {
                continue;
            }
            let form = ["${ANON_KEY}", "$ANON_KEY"].into_iter().find(|f| {
                test.match_indices(f).all(|(i, m)| {
                    !test[i + m.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                }) && test.contains(f)
            });
            let Some(form) = form else {
                return Err(Error::Unsafe(format!(
                    "{}: realtime's healthcheck uses ANON_KEY in a form keyctl does not rewrite; change it to ${{{HEALTHCHECK_VAR}}} by hand (realtime only accepts HS256 there), then run again",
                    draft.stack.compose_path.display()
                )));
            };
            draft
                .compose
                .replace_in_healthcheck(&s.name, form, &format!("${{{HEALTHCHECK_VAR}}}"))
                .map_err(|e| compose_error(&draft.stack.compose_path, &e))?;
            draft.summary.push(format!("point realtime's healthcheck at {HEALTHCHECK_VAR}, an HS256 token its management endpoint accepts"));
        }
        draft.afterwards.push("storage signed URLs and any HS256 token minted with the old JWT_SECRET stop working; the old secret stays only in keyctl's backup".into());
        state.revoked.push(Revoked {
            kid: None,
            at: now,
            public_jwk: None,
        });
    } else {
        state.revoked.push(Revoked {
            kid: previous.kid.clone(),
            at: now,
            public_jwk: Some(jwk::public_json(
                &previous.material,
                previous.kid.as_deref(),
            )),
        });
    }
    Ok(None)
}

/// Services whose resolved inputs change: their compose block changed, or it references a
/// `.env` variable whose value changed. Verifiers first, Auth last.
fn restarts(
    stack: &Stack,
    env_after: &EnvFile,
    compose_after: &Compose,
) -> (Vec<String>, Vec<String>) {
    let before = &stack.project.env;
    let mut changed_vars = BTreeSet::new();
    for line in before.lines().iter().chain(env_after.lines()) {
        if let crate::envfile::LineKind::Entry(e) = &line.kind
            && before.get(&e.key) != env_after.get(&e.key)
        {
            changed_vars.insert(e.key.clone());
        }
    }
    let blocks_before = service_blocks(stack.compose.text(), &stack.compose);
    let blocks_after = service_blocks(compose_after.text(), compose_after);
    let mut verifiers = Vec::new();
    let mut others = Vec::new();
    let mut auth = Vec::new();
    for service in compose_after.services() {
        let after = blocks_after
            .iter()
            .find(|(n, _)| *n == service.name)
            .map(|(_, t)| t.as_str())
            .unwrap_or_default();
        let before = blocks_before
            .iter()
            .find(|(n, _)| *n == service.name)
            .map(|(_, t)| t.as_str())
            .unwrap_or_default();
        let touched = after != before
            || referenced_vars(after)
                .iter()
                .any(|v| changed_vars.contains(v));
        if !touched {
            continue;
        }
        match service.role {
            Some(Role::Rest | Role::Realtime | Role::Storage | Role::Functions) => {
                verifiers.push(service.name)
            }
            Some(Role::Auth) => auth.push(service.name),
            _ => others.push(service.name),
        }
    }
    others.extend(auth);
    (verifiers, others)
}

/// Each service's block of text: from its key line to the next service's key line (or the
/// next top-level key).
fn service_blocks(text: &str, compose: &Compose) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let services = compose.services();
    let mut out = Vec::new();
    for (i, s) in services.iter().enumerate() {
        let start = s.line.saturating_sub(1);
        let mut end = services
            .get(i + 1)
            .map_or(lines.len(), |n| n.line.saturating_sub(1));
        if let Some(top) = lines[start + 1..end.max(start + 1)]
            .iter()
            .position(|l| !l.starts_with([' ', '\t', '#', '\r', '\n']) && !l.is_empty())
        {
            end = start + 1 + top;
        }
        out.push((s.name.clone(), lines[start..end.max(start)].concat()));
    }
    out
}

/// Variable names a text interpolates (`$NAME`, `${NAME…}`).
fn referenced_vars(text: &str) -> BTreeSet<String> {
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
}
