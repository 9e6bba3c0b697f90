//! `keyctl import` as a planner: the keys of an encrypted backup (`keybackup`) restored
//! into a project's `.env` through the one write flow, with the state file brought in line
//! with the restored phase. Pure: the backup is opened by the command, the project is
//! loaded by the flow; this module only decides. See `cmd/export.rs` for the whole
//! behaviour of export and import.

use std::path::PathBuf;

use jiff::Timestamp;
use serde_json::Value;

use crate::change::{self, FileChange};
use crate::envfile::EnvFile;
use crate::error::{Error, Result};
use crate::flow::{Decision, Plan, Planner};
use crate::fsio;
use crate::jwk::Jwk;
use crate::jws;
use crate::keybackup::Contents;
use crate::keyset::{self, Inputs};
use crate::lifecycle::{self, Phase};
use crate::migrate::{self, ENV_GROUP};
use crate::phase::Step;
use crate::project::{self, Locator, Project};
use crate::state::{Event, State};

/// An import: the opened backup and where it came from.
#[derive(Debug)]
pub(crate) struct Restore {
    /// The backup's contents.
    pub contents: Contents,
    /// Its `JWT_KEYS`, validated.
    pub keys: Vec<Jwk>,
    /// The backup file (for messages).
    pub input: PathBuf,
    /// Replace a valid, different key set.
    pub force: bool,
    /// Whether the compose file was named on the command line (then it must be readable).
    pub compose_named: bool,
}

impl Planner for Restore {
    fn question(&self) -> &'static str {
        "Write these keys into the project?"
    }

    fn plan(&self, project: &Project, now: Timestamp) -> Result<Decision> {
        let state = project.state()?;
        let mut warnings = Vec::new();
        let (env, changed) = self.restored_env(project, state, &mut warnings)?;
        let file = project.env_path.display().to_string();
        let before = project.env.render().to_owned();
        let after = env.render().to_owned();
        if before == after {
            return Ok(Decision::Nothing(format!(
                "nothing to do: {file} already holds the keys of {}",
                self.input.display()
            )));
        }
        change::validate_env(&env, env.get("JWT_SECRET"))?;
        let mut next_state = state.clone();
        let mut summary = vec![format!(
            "restore the keys backed up on {}{}",
            self.contents.created,
            self.contents
                .phase
                .as_deref()
                .map(|p| format!(" (phase {p})"))
                .unwrap_or_default()
        )];
        if changed.contains(&"JWT_KEYS") {
            summary.push(format!("JWT_KEYS: {}", describe_keys(&self.keys)));
        }
        if changed.contains(&"JWT_JWKS") {
            summary.push("JWT_JWKS: derived from them (public keys only)".into());
        }
        if changed.contains(&"JWT_SECRET") {
            summary.push("JWT_SECRET: replaced by the backup's".into());
        }
        match plan_state(&self.keys, &self.contents, state, now) {
            StatePlan::Keep => {}
            StatePlan::Record(s, note) => {
                next_state = *s;
                summary.push(note);
            }
            StatePlan::Unknown(w) => warnings.push(w),
        }
        let backup_dir =
            change::backup_dir(&project.paths, &project.facts.backups, Step::Import, now);
        if changed.contains(&"JWT_SECRET") && project.env.get_nonempty("JWT_SECRET").is_some() {
            next_state
                .retired_secrets
                .push(migrate::retired_record(project, &backup_dir, now));
        }
        warnings.extend(api_key_warnings(
            &env,
            &self.keys,
            env.get_nonempty("JWT_SECRET"),
            &file,
        ));
        let compose = match project.compose_if_present() {
            Ok(c) => c,
            Err(e) if self.compose_named => return Err(e),
            Err(e) => {
                warnings.push(format!(
                    "{e}; continuing without it (no wiring check, no restart list)"
                ));
                None
            }
        };
        if let Some(c) = compose
            && self.keys.iter().any(|k| k.material.alg().is_asymmetric())
        {
            let gaps = migrate::wiring_gaps(c);
            if !gaps.is_empty() {
                warnings.push(format!(
                    "{} does not feed the keys to {}: run `keyctl migrate rewire --project {}` after this",
                    c.path.display(),
                    gaps.join(", "),
                    project.paths.project.display()
                ));
            }
        }
        let restart = compose.map(|c| migrate::restarts(&project.env, &env, &c.doc, &c.doc));
        Ok(Decision::Apply(Box::new(Plan {
            step: Step::Import,
            title: format!("{file}: import from {}", self.input.display()),
            summary,
            warnings,
            files: vec![FileChange {
                path: project.env_path.clone(),
                before,
                after,
                redaction: crate::redact::Redaction::Env,
            }],
            state: next_state,
            restart,
            afterwards: Vec::new(),
            done: format!(
                "done: {file} holds the restored keys. Backup of the previous file: {}",
                backup_dir.display()
            ),
            backup_dir,
            next: None,
        })))
    }
}

/// Import edits an existing `.env`: refuse early (before asking for a password) when there
/// is none.
///
/// # Errors
/// No such file (exit 4).
pub(crate) fn require_env(loc: &Locator) -> Result<()> {
    let env_path = project::env_path(loc.dir.as_deref(), loc.env_file.as_deref())?;
    if !fsio::exists(&env_path) {
        return Err(Error::Io {
            path: env_path,
            message: "no such file; import edits an existing .env (create an empty one first if the project is new)".into(),
        });
    }
    Ok(())
}

impl Restore {
    /// The `.env` with the backup's values, and the variables that changed.
    fn restored_env(
        &self,
        project: &Project,
        state: &State,
        warnings: &mut Vec<String>,
    ) -> Result<(EnvFile, Vec<&'static str>)> {
        let file = project.env_path.display().to_string();
        let mut env = project.env.clone();
        let mut changed: Vec<&str> = Vec::new();
        let mut set = |env: &mut EnvFile, var: &'static str, value: &str, group| -> Result<()> {
            env.set(var, value, group)
                .map_err(|e| Error::bad(format!("{file} {var}"), e))?;
            changed.push(var);
            Ok(())
        };
        let current_keys = project.env.get("JWT_KEYS");
        // The keys the project trusts now, when they are a valid set beyond the lone legacy key.
        let current_valid = current_keys
            .filter(|t| !t.trim().is_empty())
            .and_then(|t| keyset::parse_private_set(t, "JWT_KEYS").ok())
            .filter(|k| !(k.len() == 1 && keyset::is_legacy(&k[0])));
        match &self.contents.jwt_keys {
            Some(text) if !self.keys.is_empty() => {
                // Keys that disagree with the state file's record are damaged (restoring is the
                // point); keys that agree with it, or a project without a record, are live.
                let damaged = !state.events.is_empty()
                    && current_valid
                        .as_ref()
                        .and_then(|k| lifecycle::derive(k, state).ok())
                        .is_none_or(|snap| !lifecycle::record_agrees(&snap, state));
                if current_valid.is_some() && !damaged && !same_json(current_keys, text) {
                    if !self.force {
                        return Err(Error::precondition(
                            project.place("JWT_KEYS"),
                            "holds a valid key set that differs from the backup's: replacing it would skip the migration's waits and consent and can log users out. Restore only onto a project whose keys are lost or damaged, or pass --force. Nothing was written",
                        ));
                    }
                    warnings.push(
                        "--force: replacing a valid key set; tokens signed by keys the backup lacks stop verifying".into(),
                    );
                }
                if !same_json(current_keys, text) {
                    set(&mut env, "JWT_KEYS", text, Some(ENV_GROUP))?;
                }
                let jwks = keyset::derive_jwks(&self.keys).to_string();
                if !same_json(project.env.get("JWT_JWKS"), &jwks) {
                    set(&mut env, "JWT_JWKS", &jwks, Some(ENV_GROUP))?;
                }
            }
            _ => {
                // A lone legacy oct key is a legacy project (SPEC §3, phase 0).
                let has_keys = current_keys.is_some_and(|t| {
                    !t.trim().is_empty()
                        && serde_json::from_str::<Value>(t)
                            .ok()
                            .is_none_or(|v| v.as_array().is_none_or(|a| !a.is_empty()))
                }) && current_keys
                    .and_then(|t| keyset::parse_private_set(t, "JWT_KEYS").ok())
                    .is_none_or(|k| !(k.len() == 1 && keyset::is_legacy(&k[0])));
                let lone_oct = current_keys
                    .and_then(|t| keyset::parse_private_set(t, "JWT_KEYS").ok())
                    .is_some_and(|k| k.len() == 1 && keyset::is_legacy(&k[0]));
                if lone_oct
                    && let Some(secret) = &self.contents.jwt_secret
                    && project.env.get("JWT_SECRET") != Some(secret.as_str())
                {
                    // Keep the legacy oct key in step with the restored secret.
                    let list = [(keyset::legacy_material(secret), None)];
                    let text = keyset::render_private_set(&list, 0).to_string();
                    let parsed = keyset::parse_private_set(&text, "JWT_KEYS")
                        .map_err(|p| keyset::as_error(&p))?;
                    set(&mut env, "JWT_KEYS", &text, Some(ENV_GROUP))?;
                    set(
                        &mut env,
                        "JWT_JWKS",
                        &keyset::derive_jwks(&parsed).to_string(),
                        Some(ENV_GROUP),
                    )?;
                }
                if has_keys {
                    return Err(Error::precondition(
                        self.input.display().to_string(),
                        format!(
                            "the backup holds only JWT_SECRET (a legacy project) while {} has keys; restoring it would mean removing them, which is a rollback (keyctl migrate rollback), not an import. Nothing was written",
                            project.place("JWT_KEYS")
                        ),
                    ));
                }
            }
        }
        if let Some(secret) = &self.contents.jwt_secret
            && project.env.get("JWT_SECRET") != Some(secret.as_str())
        {
            set(&mut env, "JWT_SECRET", secret, None)?;
        }
        Ok((env, changed))
    }
}

/// Parses and checks a key set and secret as they would be written: `JWT_KEYS` strictly,
/// then every rule of SPEC §1 with `JWT_JWKS` derived from it. An empty set (`[]`) is none.
pub(crate) fn validate(
    keys: Option<&str>,
    secret: Option<&str>,
    place: &dyn Fn(&str) -> String,
) -> Result<Vec<Jwk>> {
    let keys_text = keys.filter(|t| !t.trim().is_empty());
    let parsed = match keys_text {
        Some(text) => {
            keyset::parse_private_set(text, &place("JWT_KEYS")).map_err(|p| keyset::as_error(&p))?
        }
        None => Vec::new(),
    };
    let jwks = keyset::derive_jwks(&parsed).to_string();
    let inputs = Inputs {
        jwt_keys: keys_text
            .filter(|_| !parsed.is_empty())
            .map(|t| (t, place("JWT_KEYS"))),
        jwt_jwks: (!parsed.is_empty()).then(|| (jwks.as_str(), place("JWT_JWKS (derived)"))),
        jwt_secret: secret.map(|s| (s, place("JWT_SECRET"))),
    };
    let problems = keyset::check(&inputs);
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(keyset::as_error(&problems))
    }
}

/// `ES256 kid X (signing), HS256 legacy`: a secret-free list of a set.
#[must_use]
pub(crate) fn describe_keys(keys: &[Jwk]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "{} {}{}",
                k.material.alg(),
                k.kid.as_deref().map_or_else(
                    || "legacy JWT_SECRET key".to_owned(),
                    |kid| format!("kid {kid}")
                ),
                if k.can_sign() { " (signing)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether two JSON texts hold the same value (an unparsable one equals nothing).
fn same_json(a: Option<&str>, b: &str) -> bool {
    let parse = |t: &str| serde_json::from_str::<Value>(t).ok();
    a.and_then(parse).is_some_and(|a| Some(a) == parse(b))
}

/// What the import does to the state file (see the module docs): the new state and a line
/// for the plan, or a warning when the phase of the keys cannot be told.
pub(crate) enum StatePlan {
    Keep,
    Record(Box<State>, String),
    Unknown(String),
}

pub(crate) fn plan_state(
    keys: &[Jwk],
    contents: &Contents,
    state: &State,
    now: Timestamp,
) -> StatePlan {
    if let Ok(snap) = lifecycle::derive(keys, state)
        && (lifecycle::record_agrees(&snap, state)
            || (state.events.is_empty() && matches!(snap.phase, Phase::Legacy | Phase::Revoked)))
    {
        return StatePlan::Keep;
    }
    // The phase the keys mean without the old record; two asymmetric keys need the backup's
    // word on which one is new.
    let hint = match (&contents.new_kid, contents.phase.as_deref()) {
        (Some(kid), Some("dual-verify" | "switched")) => {
            let mut s = State::default();
            s.events.push(Event::new(
                Step::DualVerify,
                now,
                Phase::DualVerify,
                Some(kid),
                None,
            ));
            s
        }
        _ => State::default(),
    };
    let snap = match lifecycle::derive(keys, &hint) {
        Ok(snap) => snap,
        Err(e) => {
            return StatePlan::Unknown(format!(
                "keyctl migrate cannot tell the phase of the restored keys ({e}); the state file is left as it is"
            ));
        }
    };
    let kid = |slot: &Option<lifecycle::Slot>| slot.as_ref().and_then(|s| s.kid.clone());
    let (signer, new, previous) = (kid(&snap.signer), kid(&snap.new_key), kid(&snap.previous));
    let mut next = state.clone();
    match snap.phase {
        Phase::Legacy => next
            .events
            .push(Event::new(Step::Import, now, Phase::Legacy, None, None)),
        Phase::Revoked => next.events.push(Event::new(
            Step::Import,
            now,
            Phase::Revoked,
            None,
            signer.as_deref(),
        )),
        Phase::DualVerify => next.events.push(Event::new(
            Step::DualVerify,
            now,
            Phase::DualVerify,
            new.as_deref(),
            previous.as_deref(),
        )),
        Phase::Switched => {
            next.events.push(Event::new(
                Step::DualVerify,
                now,
                Phase::DualVerify,
                new.as_deref(),
                previous.as_deref(),
            ));
            next.events.push(Event::new(
                Step::Switched,
                now,
                Phase::Switched,
                new.as_deref(),
                new.as_deref(),
            ));
        }
    }
    // Bug guard: the record must now read as the files do.
    match lifecycle::derive(keys, &next) {
        Ok(check) if check.phase == snap.phase && lifecycle::record_agrees(&check, &next) => {}
        _ => {
            return StatePlan::Unknown(
                "the state file could not be brought in line with the restored keys; it is left as it is".into(),
            );
        }
    }
    let note = match snap.phase {
        Phase::DualVerify | Phase::Switched => format!(
            "state file: phase {} recorded as reached now; the wait before the next step starts over when the services restart with these keys",
            snap.phase
        ),
        _ => format!("state file: phase {} recorded", snap.phase),
    };
    StatePlan::Record(Box::new(next), note)
}

/// API keys in the `.env` that no restored key (nor the restored `JWT_SECRET`) signed.
fn api_key_warnings(env: &EnvFile, keys: &[Jwk], secret: Option<&str>, file: &str) -> Vec<String> {
    let mut out = Vec::new();
    for var in [
        "ANON_KEY",
        "SERVICE_ROLE_KEY",
        "ANON_KEY_ASYMMETRIC",
        "SERVICE_ROLE_KEY_ASYMMETRIC",
    ] {
        let Some(token) = env.get_nonempty(var) else {
            continue;
        };
        let Ok(d) = jws::decode(token) else {
            continue;
        };
        let signed = match d.kid() {
            Some(kid) => keys
                .iter()
                .any(|k| k.kid.as_deref() == Some(kid) && d.verifies_with(&k.material)),
            None => secret.is_some_and(|s| d.verifies_with(&keyset::legacy_material(s))),
        };
        if !signed {
            out.push(format!(
                "{file} {var} is not signed by a restored key: clients that send it will be rejected; restore it from the same .env backup or mint new API keys (keyctl doctor explains)"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Alg, Material};

    const SECRET: &str = "a-test-secret-that-is-long-enough-0123";

    fn set(specs: &[(Option<&str>, bool)]) -> Vec<Jwk> {
        let pairs: Vec<(Material, Option<String>)> = specs
            .iter()
            .map(|(kid, _)| match kid {
                None => (keyset::legacy_material(SECRET), None),
                Some(k) => (
                    Material::generate(Alg::Es256, 2048).unwrap(),
                    Some((*k).to_owned()),
                ),
            })
            .collect();
        let signer = specs.iter().position(|(_, s)| *s).unwrap();
        let text = keyset::render_private_set(&pairs, signer).to_string();
        keyset::parse_private_set(&text, "JWT_KEYS").unwrap()
    }

    fn contents(phase: Option<&str>, new_kid: Option<&str>) -> Contents {
        Contents {
            created: "2026-11-30T12:00:00Z".parse().unwrap(),
            phase: phase.map(str::to_owned),
            new_kid: new_kid.map(str::to_owned),
            jwt_keys: None,
            jwt_secret: None,
        }
    }

    fn now() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn recorded(plan: StatePlan) -> State {
        match plan {
            StatePlan::Record(s, _) => *s,
            StatePlan::Keep => panic!("kept"),
            StatePlan::Unknown(w) => panic!("unknown: {w}"),
        }
    }

    #[test]
    fn a_fresh_project_gets_the_phase_recorded_as_of_now() {
        let keys = set(&[(None, true), (Some("new"), false)]);
        let s = recorded(plan_state(
            &keys,
            &contents(None, None),
            &State::default(),
            now(),
        ));
        let snap = lifecycle::derive(&keys, &s).unwrap();
        assert_eq!(snap.phase, Phase::DualVerify);
        assert!(lifecycle::record_agrees(&snap, &s));
        assert_eq!(s.last(Step::DualVerify, Some("new")).unwrap().at, now());

        let keys = set(&[(None, false), (Some("new"), true)]);
        let s = recorded(plan_state(
            &keys,
            &contents(None, None),
            &State::default(),
            now(),
        ));
        assert_eq!(s.last(Step::Switched, Some("new")).unwrap().at, now());
        assert_eq!(lifecycle::derive(&keys, &s).unwrap().phase, Phase::Switched);
    }

    #[test]
    fn an_agreeing_record_is_kept_and_legacy_needs_none() {
        let keys = set(&[(None, true), (Some("new"), false)]);
        let s = recorded(plan_state(
            &keys,
            &contents(None, None),
            &State::default(),
            now(),
        ));
        assert!(matches!(
            plan_state(&keys, &contents(None, None), &s, now()),
            StatePlan::Keep
        ));
        let legacy = set(&[(None, true)]);
        assert!(matches!(
            plan_state(&legacy, &contents(None, None), &State::default(), now()),
            StatePlan::Keep
        ));
        // A record of another phase gets an import event that matches the files.
        let s = recorded(plan_state(&legacy, &contents(None, None), &s, now()));
        assert_eq!(s.events.last().unwrap().step, Step::Import);
        assert!(lifecycle::record_agrees(
            &lifecycle::derive(&legacy, &s).unwrap(),
            &s
        ));
    }

    #[test]
    fn two_asymmetric_keys_need_the_backups_word() {
        let keys = set(&[(Some("old"), false), (Some("new"), true)]);
        assert!(matches!(
            plan_state(&keys, &contents(None, None), &State::default(), now()),
            StatePlan::Unknown(_)
        ));
        let s = recorded(plan_state(
            &keys,
            &contents(Some("switched"), Some("new")),
            &State::default(),
            now(),
        ));
        let snap = lifecycle::derive(&keys, &s).unwrap();
        assert_eq!(snap.phase, Phase::Switched);
        assert_eq!(snap.new_key.unwrap().kid.as_deref(), Some("new"));
    }
}
