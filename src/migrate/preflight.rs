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
                "{}; fix the key sets first (keyctl jwks --check --project {dir})",
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
                    "does not feed the keys to {}: those services still verify with JWT_SECRET only. Run `keyctl migrate rewire --project {dir}`, restart, then continue",
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
