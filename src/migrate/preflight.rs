//! Whether a project is in a state a step can safely start from: the sets pass every rule,
//! past `legacy` every service is wired to them, the API keys match the phase, and no
//! override file shadows what keyctl edits. Pure: reads only the loaded [`Project`].

use crate::apikey;
use crate::compose::Role;
use crate::error::{Error, Refusal, Result};
use crate::images;
use crate::keyset;
use crate::lifecycle::{Phase, Snapshot};
use crate::project::{ComposeFile, Project};
use crate::state::State;

use super::Request;

/// The JWT variables keyctl wires, per service role.
pub const WIRING: [(Role, &str, &str); 5] = [
    (Role::Auth, "GOTRUE_JWT_KEYS", "JWT_KEYS"),
    (Role::Rest, "PGRST_JWT_SECRET", "JWT_JWKS"),
    (Role::Realtime, "API_JWT_JWKS", "JWT_JWKS"),
    (Role::Storage, "JWT_JWKS", "JWT_JWKS"),
    (Role::Functions, "SUPABASE_JWKS", "JWT_JWKS"),
];

/// Services whose compose line does not feed them the variable SPEC §2 wires.
#[must_use]
pub fn wiring_gaps(compose: &ComposeFile) -> Vec<String> {
    let mut gaps = Vec::new();
    for (role, key, var) in WIRING {
        for s in compose.doc.with_role(role) {
            let wired = compose
                .doc
                .env(&s.name, key)
                .is_some_and(|l| l.value.contains(&format!("${{{var}")));
            if !wired {
                gaps.push(format!("{} {key} (wants ${{{var}}})", s.name));
            }
        }
    }
    gaps
}

/// What kind of thing blocks a later step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockerKind {
    /// The compose file is missing or cannot be used.
    Compose,
    /// No Auth service is recognised.
    NoAuth,
    /// A service resolves a different HS256 secret than Auth.
    Split,
    /// The secret is written literally in the compose file.
    LiteralSecret,
    /// Realtime's healthcheck sends an API key in a form keyctl cannot rewrite.
    Healthcheck,
    /// An image older than SPEC §7's floor.
    Image,
}

/// Something that would refuse a later step, with the refusal itself.
#[derive(Debug, Clone)]
pub(crate) struct Blocker {
    /// What it is.
    pub kind: BlockerKind,
    /// The refusal a step would give.
    pub error: Error,
    /// The service concerned, when one is.
    pub service: Option<String>,
    /// The variable concerned, when one is.
    pub var: Option<String>,
}

impl Blocker {
    fn new(kind: BlockerKind, error: Error) -> Blocker {
        Blocker {
            kind,
            error,
            service: None,
            var: None,
        }
    }
}

/// Everything that would refuse a later step of this migration, known before the first one
/// writes anything (issue: "every refusal known at step 1"): no Auth service, services that
/// resolve a different HS256 secret than Auth, a secret written literally in the compose
/// file, a realtime healthcheck keyctl cannot point at an HS256 token, and (unless allowed)
/// images older than SPEC §7's floors. Empty when nothing blocks.
#[must_use]
pub(crate) fn blockers(project: &Project, snap: &Snapshot, allow_old_images: bool) -> Vec<Blocker> {
    let mut out = Vec::new();
    let compose = match project.compose_to_edit() {
        Ok(c) => c,
        Err(e) => return vec![Blocker::new(BlockerKind::Compose, e)],
    };
    let place = compose.path.display().to_string();
    let dir = project.dir_arg();
    if compose.doc.with_role(Role::Auth).is_empty() {
        out.push(Blocker::new(BlockerKind::NoAuth, Error::bad(
            &place,
            "no Auth service (image supabase/gotrue or supabase/auth) found; if a service with another image is Auth, say so: --service-is NAME=auth, or [services] NAME = \"auth\" in keyctl.toml",
        )));
        return out;
    }
    let sources = project.sources();
    let secret = project.secret();
    for split in sources.splits() {
        let from = split
            .traced
            .origin
            .home(split.key)
            .map_or_else(|| "a literal".to_owned(), |h| h.describe());
        out.push(Blocker {
            service: Some(split.service.clone()),
            var: Some(split.key.to_owned()),
            ..Blocker::new(BlockerKind::Split, Error::precondition(
                compose.place(split.traced.line),
                format!(
                    "service {} reads {} from {from}, a different HS256 secret than Auth's ({}): tokens Auth issues already fail there (the split-secret outage), and keyctl cannot tell which one to migrate. Fix: {}; restart, then run again",
                    split.service,
                    split.key,
                    secret.as_ref().map_or("none", |s| s.read_as.as_str()),
                    secret.as_ref().map_or_else(String::new, |s| s.realign(&dir))
                ),
            ))
        });
    }
    let legacy_pending =
        snap.phase == Phase::Legacy || snap.previous.as_ref().is_some_and(|p| p.kid.is_none());
    if legacy_pending && let Some(secret) = &secret {
        if let Some(fixed) = secret.fixed.first() {
            out.push(Blocker::new(BlockerKind::LiteralSecret, Error::precondition(
                &place,
                format!(
                    "the HS256 secret is written literally at {fixed}: keyctl cannot replace it when it revokes the legacy secret, so that service would keep trusting it. Move it into .env (e.g. KEY: ${{JWT_SECRET}}) first"
                ),
            )));
        }
        let legacy = crate::lifecycle::Slot {
            kid: None,
            material: keyset::legacy_material(&secret.value),
        };
        for s in compose.doc.with_role(Role::Realtime) {
            let test = compose.doc.healthcheck_test(&s.name).unwrap_or_default();
            if let Some(var) = super::steps::healthcheck_key_var(project, &test, &legacy)
                && super::steps::rewritable_form(&test, &var).is_none()
            {
                out.push(Blocker {
                    service: Some(s.name.clone()),
                    var: Some(var.clone()),
                    ..Blocker::new(
                        BlockerKind::Healthcheck,
                        Error::precondition(&place, super::steps::unrewritable_healthcheck(&var)),
                    )
                });
            }
        }
    }
    if !allow_old_images && let Err(e) = image_gate(project) {
        out.push(Blocker::new(BlockerKind::Image, e));
    }
    out
}

/// Refuses a forward step while a service runs an image older than SPEC §7's floor.
///
/// # Errors
/// [`Refusal::ImageTooOld`] for the first such service.
pub(crate) fn image_gate(project: &Project) -> Result<()> {
    let compose = project.compose_to_edit()?;
    for f in images::check(&compose.doc) {
        if let images::Finding::TooOld {
            service,
            image,
            need,
            why,
            line,
        } = f
        {
            return Err(Refusal::ImageTooOld {
                place: compose.place(Some(line)),
                service,
                image,
                need,
                why: why.to_owned(),
            }
            .into());
        }
    }
    Ok(())
}

/// Warnings about images: tags keyctl cannot read, and old images let through by
/// `--allow-old-images`.
pub(crate) fn image_warnings(compose: &ComposeFile, allowed_old: bool) -> Vec<String> {
    images::check(&compose.doc)
        .into_iter()
        .filter_map(|f| match f {
            images::Finding::Unknown { service, image, line } => Some(format!(
                "{}: cannot tell the version of {image} (service {service}); check it is at least the version SPEC §7 names for it",
                compose.place(Some(line))
            )),
            images::Finding::TooOld { service, image, need, line, .. } if allowed_old => Some(format!(
                "--allow-old-images: {}: service {service} runs {image}, older than {need}; it will reject tokens signed with the new key",
                compose.place(Some(line))
            )),
            images::Finding::TooOld { .. } => None,
        })
        .collect()
}

/// Checks the preconditions of `request` in the phase `snap` describes.
///
/// # Errors
/// Refused (exit 3) with what is wrong and what to do; a bad `JWT_EXPIRY` (exit 2).
pub(super) fn preflight(
    project: &Project,
    snap: &Snapshot,
    state: &State,
    request: Request,
) -> Result<()> {
    let compose = project.compose_to_edit()?;
    let dir = project.dir_arg();
    // Every later computation (waits, hints) relies on a sane JWT_EXPIRY: check it first.
    project.jwt_expiry()?;
    for o in &compose.overrides {
        if let Some((_, key, _)) = WIRING.iter().find(|(_, key, _)| o.text.contains(key)) {
            return Err(Error::precondition(
                o.path.display().to_string(),
                format!(
                    "sets {key}, which keyctl manages in {}; docker compose would apply the override over keyctl's wiring. Move the JWT lines into the main compose file",
                    compose.path.display()
                ),
            ));
        }
    }
    for s in compose.doc.with_role(Role::Rest) {
        if let Some(l) = compose.doc.env(&s.name, "PGRST_JWT_SECRET_IS_BASE64")
            && project
                .env
                .interpolate(&l.value)
                .is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return Err(Error::precondition(
                format!("{} PGRST_JWT_SECRET_IS_BASE64", compose.place(Some(l.line))),
                "is true: with a JWKS, PostgREST would base64-decode the JSON and reject every token. Remove the line first",
            ));
        }
    }
    if snap.phase == Phase::Legacy {
        return Ok(());
    }
    if let Some(p) = keyset::check(&project.key_inputs()).first() {
        let place = match &p.key {
            Some(k) => format!("{} {k}", p.place),
            None => p.place.clone(),
        };
        return Err(Error::precondition(
            place,
            format!(
                "{}; fix the key sets first (keyctl jwks --check {dir})",
                p.message
            ),
        ));
    }
    if request != Request::Rewire {
        let gaps = wiring_gaps(compose);
        if !gaps.is_empty() {
            return Err(Error::precondition(
                compose.path.display().to_string(),
                format!(
                    "does not feed the keys to {}: those services still verify with JWT_SECRET only. Run `keyctl migrate rewire {dir}`, restart, then continue",
                    gaps.join(", ")
                ),
            ));
        }
    }
    if snap.phase == Phase::Revoked && state.events.is_empty() {
        let hs256: Vec<&str> = apikey::ROLES
            .iter()
            .filter(|(var, _)| project.env.get_nonempty(var).is_some_and(apikey::is_hs256))
            .map(|(var, _)| *var)
            .collect();
        if !hs256.is_empty() {
            return Err(Error::precondition(
                project.place("JWT_KEYS"),
                format!(
                    "holds only an asymmetric signing key, but {} {} HS256: the stack still relies on JWT_SECRET, and keyctl has no record of a migration. Empty JWT_KEYS and JWT_JWKS (or restore the .env) and start from legacy with keyctl migrate",
                    hs256.join(" and "),
                    if hs256.len() == 1 { "is" } else { "are" }
                ),
            ));
        }
    }
    Ok(())
}
