//! Which Supabase service an image is: the [`Role`] of an image reference, whatever its
//! registry host, tag or digest (SPEC §2).
//!
//! Roles are decided from the image string alone: this module never looks at the compose
//! text, never guesses from a service's name, and never touches the filesystem.

/// The Supabase services keyctl wires keys into, recognised by image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Auth (GoTrue): reads `GOTRUE_JWT_KEYS`.
    Auth,
    /// PostgREST: reads `PGRST_JWT_SECRET`.
    Rest,
    /// Realtime: reads `API_JWT_JWKS`.
    Realtime,
    /// Storage: reads `JWT_JWKS`.
    Storage,
    /// Edge Functions: reads `SUPABASE_JWKS`.
    Functions,
    /// The Kong API gateway: matches API keys.
    Kong,
}

impl Role {
    /// Every role, in the order the table of SPEC §2 lists them.
    pub const ALL: [Role; 6] = [
        Role::Auth,
        Role::Rest,
        Role::Realtime,
        Role::Storage,
        Role::Functions,
        Role::Kong,
    ];

    /// The role's short name: `auth`, `rest`, `realtime`, `storage`, `functions`, `kong`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Auth => "auth",
            Role::Rest => "rest",
            Role::Realtime => "realtime",
            Role::Storage => "storage",
            Role::Functions => "functions",
            Role::Kong => "kong",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role of an image reference (SPEC §2), whatever its registry host, tag or digest.
///
/// auth: the repository contains `gotrue` or is `supabase/auth`; rest: `postgrest`;
/// realtime: `supabase/realtime`; storage: `storage-api`; functions: `edge-runtime`;
/// kong: `kong`. `${…}` interpolations are read as text.
#[must_use]
pub fn role_of_image(image: &str) -> Option<Role> {
    let repo = image_repository(image).to_ascii_lowercase();
    let is = |name: &str| repo == name || repo.ends_with(&format!("/{name}"));
    if repo.contains("gotrue") || is("supabase/auth") {
        Some(Role::Auth)
    } else if repo.contains("postgrest") {
        Some(Role::Rest)
    } else if is("supabase/realtime") {
        Some(Role::Realtime)
    } else if repo.contains("storage-api") {
        Some(Role::Storage)
    } else if repo.contains("edge-runtime") {
        Some(Role::Functions)
    } else if repo.contains("kong") {
        Some(Role::Kong)
    } else {
        None
    }
}

/// The repository of an image reference: no registry host, tag or digest. Separators
/// inside `${…}` do not count.
fn image_repository(image: &str) -> &str {
    let image = image.trim();
    let bytes = image.as_bytes();
    let mut seps: Vec<(usize, u8)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth > 0 => depth -= 1,
            b @ (b'/' | b':' | b'@') if depth == 0 => seps.push((i, b)),
            _ => {}
        }
        i += 1;
    }
    let end = seps
        .iter()
        .find(|(_, b)| *b == b'@')
        .map_or(image.len(), |(i, _)| *i);
    let name_start = seps
        .iter()
        .rev()
        .find(|(i, b)| *b == b'/' && *i < end)
        .map_or(0, |(i, _)| i + 1);
    let end = seps
        .iter()
        .find(|(i, b)| *b == b':' && *i >= name_start && *i < end)
        .map_or(end, |(i, _)| *i);
    let repo = &image[..end];
    if let Some((slash, _)) = seps.iter().find(|(i, b)| *b == b'/' && *i < end) {
        let host = &repo[..*slash];
        if host.contains(['.', ':', '$']) || host == "localhost" {
            return &repo[slash + 1..];
        }
    }
    repo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_of_image_ignores_host_tag_and_digest() {
        assert_eq!(
            role_of_image("public.ecr.aws/supabase/gotrue:v2.186.0"),
            Some(Role::Auth)
        );
        assert_eq!(role_of_image("supabase/auth:latest"), Some(Role::Auth));
        assert_eq!(role_of_image("supabase/auth"), Some(Role::Auth));
        assert_eq!(
            role_of_image("supabase/gotrue:${AUTH_TAG:-v2}"),
            Some(Role::Auth)
        );
        assert_eq!(
            role_of_image("supabase/auth:${AUTH_TAG:-v2/x}"),
            Some(Role::Auth)
        );
        assert_eq!(
            role_of_image("${REGISTRY:-docker.io}/supabase/realtime:v2"),
            Some(Role::Realtime)
        );
        assert_eq!(
            role_of_image("localhost:5000/supabase/realtime@sha256:abcd"),
            Some(Role::Realtime)
        );
        assert_eq!(role_of_image("postgrest/postgrest:v14.5"), Some(Role::Rest));
        assert_eq!(
            role_of_image("supabase/storage-api:v1.44.2"),
            Some(Role::Storage)
        );
        assert_eq!(
            role_of_image("supabase/edge-runtime:v1.70.3"),
            Some(Role::Functions)
        );
        assert_eq!(role_of_image("kong:2.8.1"), Some(Role::Kong));
        assert_eq!(role_of_image("supabase/postgres:15.8.1.085"), None);
        assert_eq!(role_of_image("supabase/postgres-meta:v0.95.2"), None);
        assert_eq!(role_of_image("supabase/studio:2026.02.16"), None);
        assert_eq!(role_of_image("someone/realtime:v1"), None);
        assert_eq!(role_of_image("supabase/authz:v1"), None);
    }
}
