//! The supabase-kubernetes chart (0.7.2, commit e88d61f) as data: which values key or
//! Secret key feeds which container variable, under which condition, the chart's defaults
//! keyctl needs when a values file leaves them out, and the chart's naming rules.
//! docs/KUBERNETES.md has the file:line of every row.

/// The chart version this table was read from.
pub(crate) const CHART_VERSION: &str = "0.7.2";

/// The two key blocks of `values.yaml` (`secret.jwt`, `secret.apikey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    /// `secret.jwt`: the legacy secret and the HS256 API keys.
    Jwt,
    /// `secret.apikey`: the asymmetric sets and the opaque and asymmetric API keys.
    Apikey,
}

impl Block {
    /// Its name under `secret:`.
    #[must_use]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Block::Jwt => "jwt",
            Block::Apikey => "apikey",
        }
    }
}

/// One value keyctl manages: the `.env` name the rest of keyctl knows it by (SPEC §1/§2),
/// and its block and logical key in the chart.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Value {
    /// keyctl's (upstream's `.env`) name.
    pub(crate) var: &'static str,
    /// The block.
    pub(crate) block: Block,
    /// The logical key in the block (and in the chart's own Secret).
    pub(crate) key: &'static str,
}

/// Every value the chart takes key material from.
pub(crate) const VALUES: [Value; 9] = [
    Value {
        var: "JWT_SECRET",
        block: Block::Jwt,
        key: "secret",
    },
    Value {
        var: "ANON_KEY",
        block: Block::Jwt,
        key: "anonKey",
    },
    Value {
        var: "SERVICE_ROLE_KEY",
        block: Block::Jwt,
        key: "serviceKey",
    },
    Value {
        var: "JWT_KEYS",
        block: Block::Apikey,
        key: "jwtKeys",
    },
    Value {
        var: "JWT_JWKS",
        block: Block::Apikey,
        key: "jwtJwks",
    },
    Value {
        var: "SUPABASE_PUBLISHABLE_KEY",
        block: Block::Apikey,
        key: "publishableKey",
    },
    Value {
        var: "SUPABASE_SECRET_KEY",
        block: Block::Apikey,
        key: "secretKey",
    },
    Value {
        var: "ANON_KEY_ASYMMETRIC",
        block: Block::Apikey,
        key: "anonKeyAsymmetric",
    },
    Value {
        var: "SERVICE_ROLE_KEY_ASYMMETRIC",
        block: Block::Apikey,
        key: "serviceRoleKeyAsymmetric",
    },
];

/// When a wire exists in the rendered Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// Always.
    Always,
    /// When `secret.apikey.secretRef` or `secret.apikey.jwtKeys` is non-empty.
    KeysSet,
    /// When `secret.apikey.secretRef` or `secret.apikey.jwtJwks` is non-empty.
    JwksSet,
    /// When neither `secret.apikey.secretRef` nor `secret.apikey.jwtJwks` is set.
    JwksUnset,
}

/// One container variable the chart sets from a value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wire {
    /// The component (`deployment.<name>`, `image.<name>`, `environment.<name>`).
    pub(crate) component: &'static str,
    /// The container variable.
    pub(crate) env: &'static str,
    /// keyctl's name of the value it reads ([`VALUES`]).
    pub(crate) var: &'static str,
    /// When it is there.
    pub(crate) when: When,
}

const fn w(component: &'static str, env: &'static str, var: &'static str, when: When) -> Wire {
    Wire {
        component,
        env,
        var,
        when,
    }
}

/// The chart's wiring of key material (docs/KUBERNETES.md §2a), in template order.
pub(crate) const WIRES: &[Wire] = &[
    w("auth", "GOTRUE_JWT_SECRET", "JWT_SECRET", When::Always),
    w("auth", "GOTRUE_JWT_KEYS", "JWT_KEYS", When::KeysSet),
    w("rest", "PGRST_JWT_SECRET", "JWT_JWKS", When::JwksSet),
    w("rest", "PGRST_JWT_SECRET", "JWT_SECRET", When::JwksUnset),
    w(
        "rest",
        "PGRST_APP_SETTINGS_JWT_SECRET",
        "JWT_SECRET",
        When::Always,
    ),
    w("realtime", "JWT_SECRET", "JWT_SECRET", When::Always),
    w("realtime", "METRICS_JWT_SECRET", "JWT_SECRET", When::Always),
    w("realtime", "API_JWT_SECRET", "JWT_SECRET", When::Always),
    w("realtime", "API_JWT_JWKS", "JWT_JWKS", When::JwksSet),
    w("storage", "PGRST_JWT_SECRET", "JWT_SECRET", When::Always),
    w("storage", "AUTH_JWT_SECRET", "JWT_SECRET", When::Always),
    w("storage", "JWT_JWKS", "JWT_JWKS", When::JwksSet),
    w("storage", "ANON_KEY", "ANON_KEY", When::Always),
    w("storage", "SERVICE_KEY", "SERVICE_ROLE_KEY", When::Always),
    w("functions", "JWT_SECRET", "JWT_SECRET", When::Always),
    w("functions", "SUPABASE_ANON_KEY", "ANON_KEY", When::Always),
    w(
        "functions",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SERVICE_ROLE_KEY",
        When::Always,
    ),
    w(
        "functions",
        "SUPABASE_PUBLISHABLE_KEY",
        "SUPABASE_PUBLISHABLE_KEY",
        When::Always,
    ),
    w(
        "functions",
        "SUPABASE_SECRET_KEY",
        "SUPABASE_SECRET_KEY",
        When::Always,
    ),
    w("kong", "SUPABASE_ANON_KEY", "ANON_KEY", When::Always),
    w(
        "kong",
        "SUPABASE_SERVICE_KEY",
        "SERVICE_ROLE_KEY",
        When::Always,
    ),
    w(
        "kong",
        "SUPABASE_PUBLISHABLE_KEY",
        "SUPABASE_PUBLISHABLE_KEY",
        When::Always,
    ),
    w(
        "kong",
        "SUPABASE_SECRET_KEY",
        "SUPABASE_SECRET_KEY",
        When::Always,
    ),
    w(
        "kong",
        "ANON_KEY_ASYMMETRIC",
        "ANON_KEY_ASYMMETRIC",
        When::Always,
    ),
    w(
        "kong",
        "SERVICE_ROLE_KEY_ASYMMETRIC",
        "SERVICE_ROLE_KEY_ASYMMETRIC",
        When::Always,
    ),
    w("studio", "AUTH_JWT_SECRET", "JWT_SECRET", When::Always),
    w("studio", "SUPABASE_ANON_KEY", "ANON_KEY", When::Always),
    w(
        "studio",
        "SUPABASE_SERVICE_KEY",
        "SERVICE_ROLE_KEY",
        When::Always,
    ),
];

/// The components keyctl models, in restart order: the verifiers, then Kong and Studio,
/// Auth last. (db reads `JWT_SECRET` only on first initialisation; the others read no key.)
pub(crate) const COMPONENTS: [&str; 7] = [
    "rest",
    "realtime",
    "storage",
    "functions",
    "kong",
    "studio",
    "auth",
];

/// The chart's default image of a component (`values.yaml:582-669`), for values files
/// that leave `image.<component>` out.
#[must_use]
pub(crate) fn default_image(component: &str) -> Option<(&'static str, &'static str)> {
    Some(match component {
        "auth" => ("supabase/gotrue", "v2.189.0"),
        "rest" => ("postgrest/postgrest", "v14.12"),
        "realtime" => ("supabase/realtime", "v2.102.3"),
        "storage" => ("supabase/storage-api", "v1.60.4"),
        "functions" => ("supabase/edge-runtime", "v1.74.0"),
        "kong" => ("kong/kong", "3.9.1"),
        "studio" => ("supabase/studio", "2026.07.07-sha-a6a04f2"),
        _ => return None,
    })
}

/// The entries of the chart's default `environment.<component>` keyctl reads (the same in
/// every chart from 0.5.1 to 0.7.2), for values files that leave them out: a list (0.7.1 on)
/// is replaced as a whole by a file that sets it, a map (before) is merged key by key.
#[must_use]
pub(crate) fn default_environment(component: &str) -> &'static [(&'static str, &'static str)] {
    match component {
        "auth" => &[("GOTRUE_JWT_EXP", "3600")],
        "realtime" => &[("SEED_SELF_HOST", "true")],
        "functions" => &[("VERIFY_JWT", "false")],
        _ => &[],
    }
}

/// Whether a component is enabled by default (`deployment.<component>.enabled`).
#[must_use]
pub(crate) fn enabled_by_default(component: &str) -> bool {
    !matches!(component, "analytics" | "vector" | "minio")
}

/// The Deployment name of `component` for release `release` (the chart's
/// `supabase.<component>.fullname`): `fullnameOverride`, else the release when it contains
/// the name, else `<release>-<name>`, the name being `nameOverride` or `supabase-<component>`;
/// truncated to 63 characters without a trailing `-`.
#[must_use]
pub(crate) fn deployment_name(
    release: &str,
    component: &str,
    name_override: Option<&str>,
    fullname_override: Option<&str>,
) -> String {
    let full = match fullname_override.filter(|s| !s.is_empty()) {
        Some(f) => f.to_owned(),
        None => {
            let name = name_override
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("supabase-{component}"), str::to_owned);
            if release.contains(&name) {
                release.to_owned()
            } else {
                format!("{release}-{name}")
            }
        }
    };
    let cut: String = full.chars().take(63).collect();
    cut.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_chart_helpers() {
        assert_eq!(
            deployment_name("demo", "auth", None, None),
            "demo-supabase-auth"
        );
        assert_eq!(
            deployment_name("supabase-auth-x", "auth", None, None),
            "supabase-auth-x"
        );
        assert_eq!(deployment_name("r", "rest", Some("api"), None), "r-api");
        assert_eq!(
            deployment_name("r", "rest", None, Some("my-rest")),
            "my-rest"
        );
        assert_eq!(
            deployment_name(&"x".repeat(70), "rest", None, None).len(),
            63
        );
    }
}
