//! The image-version gate (SPEC §7): the oldest tag of each service that understands the
//! asymmetric configuration, and what a compose file's `image:` says against it. Below the
//! floor a service ignores the new variables, so a migration ends in an outage. Also which
//! spelling of a variable a version reads where upstream renamed one. Pure: reads only the
//! image strings it is given.

use crate::compose::{Compose, Role};

/// The floors of SPEC §7, each with what it brings. Kong has none: a `kong:2.8.1` stack keeps
/// the legacy API keys, which the migration re-mints.
const FLOORS: [(Role, [u64; 3], &str); 5] = [
    (
        Role::Auth,
        [2, 158, 0],
        "reads GOTRUE_JWT_KEYS and signs with a kid",
    ),
    (Role::Rest, [13, 0, 0], "chooses the JWKS key by kid"),
    (Role::Realtime, [2, 41, 16], "reads API_JWT_JWKS"),
    (Role::Storage, [0, 47, 0], "reads JWT_JWKS"),
    (
        Role::Functions,
        [1, 47, 0],
        "edge-runtime serves SUPABASE_JWKS",
    ),
];

/// The floors for EdDSA (Ed25519) tokens, SPEC §7: below them a verifier that reads the
/// JWKS still cannot check an `OKP` key. (Edge Functions never verify EdDSA: refused apart.)
const EDDSA_FLOORS: [(Role, [u64; 3], &str); 2] = [
    (
        Role::Realtime,
        [2, 125, 1],
        "verifies EdDSA (Ed25519) tokens",
    ),
    (Role::Storage, [1, 22, 9], "verifies EdDSA (Ed25519) tokens"),
];

/// What the gate found about one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// The tag is older than the floor.
    TooOld {
        /// Compose service name.
        service: String,
        /// The `image:` value.
        image: String,
        /// The first version that works (`v2.158.0`).
        need: String,
        /// What that version brings.
        why: &'static str,
        /// 1-based line of the service key.
        line: usize,
    },
    /// A tag keyctl cannot read as a version.
    Unknown {
        /// Compose service name.
        service: String,
        /// The `image:` value.
        image: String,
        /// 1-based line of the service key.
        line: usize,
    },
}

impl Finding {
    /// The line of the service in the compose file.
    pub(crate) fn line(&self) -> usize {
        match self {
            Finding::TooOld { line, .. } | Finding::Unknown { line, .. } => *line,
        }
    }
}

/// The version an image's tag names (`supabase/gotrue:v2.186.0`); `None` for `latest`, no
/// tag, or a tag that is not a version.
#[must_use]
pub(crate) fn image_version(image: &str) -> Option<[u64; 3]> {
    tag(image).and_then(version)
}

/// The two spellings of Auth's accepted-methods variable: `GOTRUE_JWT_VALIDMETHODS` below
/// v2.187.0, `GOTRUE_JWT_VALID_METHODS` from v2.187.0 (supabase/auth #2334, SPEC §7).
pub(crate) const AUTH_METHODS_VARS: [&str; 2] =
    ["GOTRUE_JWT_VALID_METHODS", "GOTRUE_JWT_VALIDMETHODS"];

/// The spellings an Auth image of `version` reads, in order: the one of its version, or
/// both (the newer first) when the version is unknown.
#[must_use]
pub(crate) fn auth_methods_vars(version: Option<[u64; 3]>) -> &'static [&'static str] {
    match version {
        Some(v) if v >= [2, 187, 0] => &AUTH_METHODS_VARS[..1],
        Some(_) => &AUTH_METHODS_VARS[1..],
        None => &AUTH_METHODS_VARS,
    }
}

/// The tag of an image reference (`repo:tag`, `repo:tag@digest`); `None` without one.
fn tag(image: &str) -> Option<&str> {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, t)| t)
}

/// A tag as up to three numbers (`v2.186.0`, `14.5`, `0.53.0-alpine`); `None` when it does
/// not start with a version.
fn version(tag: &str) -> Option<[u64; 3]> {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    let core = t.split(['-', '+', '_']).next().unwrap_or(t);
    let mut out = [0u64; 3];
    let mut parts = core.split('.');
    for (i, slot) in out.iter_mut().enumerate() {
        match parts.next() {
            Some(p) => *slot = p.parse().ok()?,
            None if i > 0 => break,
            None => return None,
        }
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

/// Every service of the compose file whose image is older than its floor, or whose tag
/// cannot be read. `latest` and an image without a tag count as new enough.
pub(crate) fn check(compose: &Compose) -> Vec<Finding> {
    check_against(compose, &FLOORS)
}

/// Every service whose image is older than the version that verifies EdDSA (SPEC §7).
pub(crate) fn check_eddsa(compose: &Compose) -> Vec<Finding> {
    check_against(compose, &EDDSA_FLOORS)
        .into_iter()
        .filter(|f| matches!(f, Finding::TooOld { .. }))
        .collect()
}

fn check_against(compose: &Compose, floors: &[(Role, [u64; 3], &'static str)]) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in compose.services() {
        let (Some(role), Some(image)) = (s.role, s.image.as_deref()) else {
            continue;
        };
        let Some((_, floor, why)) = floors.iter().find(|(r, _, _)| *r == role) else {
            continue;
        };
        let Some(tag) = tag(image) else { continue };
        if tag == "latest" {
            continue;
        }
        match version(tag) {
            Some(v) if v < *floor => out.push(Finding::TooOld {
                service: s.name.clone(),
                image: image.to_owned(),
                need: format!("v{}.{}.{}", floor[0], floor[1], floor[2]),
                why,
                line: s.line,
            }),
            Some(_) => {}
            None => out.push(Finding::Unknown {
                service: s.name.clone(),
                image: image.to_owned(),
                line: s.line,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(images: &[(&str, &str)]) -> Vec<Finding> {
        let mut yaml = String::from("services:\n");
        for (name, image) in images {
            yaml.push_str(&format!("  {name}:\n    image: {image}\n"));
        }
        check(&Compose::parse(&yaml).unwrap())
    }

    #[test]
    fn versions_are_read_like_tags() {
        assert_eq!(version("v2.186.0"), Some([2, 186, 0]));
        assert_eq!(version("14.5"), Some([14, 5, 0]));
        assert_eq!(version("v13"), Some([13, 0, 0]));
        assert_eq!(version("0.53.0-alpine"), Some([0, 53, 0]));
        assert_eq!(version("stable"), None);
        assert_eq!(version("1.2.3.4"), None);
        assert_eq!(
            tag("registry:5000/supabase/gotrue:v2.47.0@sha256:ab"),
            Some("v2.47.0")
        );
        assert_eq!(tag("registry:5000/supabase/gotrue"), None);
    }

    #[test]
    fn a_2023_stack_is_too_old_and_current_upstream_is_not() {
        let old = findings(&[
            ("auth", "supabase/gotrue:v2.47.0"),
            ("rest", "postgrest/postgrest:v11.2.0"),
            ("storage", "supabase/storage-api:v0.28.0"),
            ("functions", "supabase/edge-runtime:v1.22.4"),
            ("realtime", "supabase/realtime:v2.10.1"),
            ("kong", "kong:2.8.1"),
        ]);
        let too_old: Vec<&str> = old
            .iter()
            .filter_map(|f| match f {
                Finding::TooOld { service, .. } => Some(service.as_str()),
                Finding::Unknown { .. } => None,
            })
            .collect();
        assert_eq!(
            too_old,
            ["auth", "rest", "storage", "functions", "realtime"]
        );
        assert!(matches!(&old[0], Finding::TooOld { need, .. } if need == "v2.158.0"));
        let new = findings(&[
            ("auth", "supabase/gotrue:v2.186.0"),
            ("rest", "postgrest/postgrest:v14.5"),
            ("storage", "supabase/storage-api:v1.44.2"),
            ("functions", "supabase/edge-runtime:v1.70.3"),
            ("realtime", "supabase/realtime:v2.78.15"),
            ("auth2", "supabase/auth:latest"),
            ("rest2", "postgrest/postgrest"),
        ]);
        assert!(new.is_empty(), "{new:?}");
    }

    #[test]
    fn an_unreadable_tag_is_unknown_not_too_old() {
        let f = findings(&[("auth", "supabase/gotrue:stable")]);
        assert!(matches!(&f[..], [Finding::Unknown { service, .. }] if service == "auth"));
        assert_eq!(
            findings(&[("auth", "supabase/gotrue:${AUTH_TAG}")]).len(),
            1
        );
    }
}
