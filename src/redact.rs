//! How a changed file is shown before it is written: the lines of a diff with every
//! credential hidden — `.env` values described by name or content, compose and Kong YAML with
//! JWT-shaped words and secret-looking values hidden, and files of key material (a Helm
//! values file, a Secret manifest) with every value hidden but names.

use crate::envfile::EnvFile;
use crate::jws;

/// How a changed file's lines are shown in a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redaction {
    /// A `.env`: secret values (by name or content) described, not shown.
    Env,
    /// A compose file or Kong's YAML: JWT-shaped words and secret-looking values hidden.
    Yaml,
    /// A file that holds nothing but key material (a Helm values file's `secret:` block, a
    /// Secret manifest): every value hidden but a few structural ones.
    Values,
}

impl Redaction {
    /// `line` as a diff shows it.
    #[must_use]
    pub(crate) fn line(self, line: &str) -> String {
        match self {
            Redaction::Env => redact_env_line(line),
            Redaction::Yaml => redact_yaml_line(line),
            Redaction::Values => redact_values_line(line),
        }
    }
}

/// Variables whose values are shown in diffs only as a summary.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["SECRET", "KEY", "PASSWORD", "TOKEN", "JWKS", "PASS"]
        .iter()
        .any(|w| upper.contains(w))
}

/// A line of `.env` with any secret value replaced by a description of it.
#[must_use]
pub(crate) fn redact_env_line(line: &str) -> String {
    let Ok(doc) = EnvFile::parse(line) else {
        return "<unparsed line, redacted>".into();
    };
    let Some(crate::envfile::LineKind::Entry(e)) = doc.lines().first().map(|l| &l.kind) else {
        return line.to_owned();
    };
    let value = e.value.clone().unwrap_or_default();
    // By content too: a value that carries a credential is redacted whatever its name
    // (`DATABASE_URL=postgres://user:password@…`, a JWT, a long random string).
    if !is_secret_name(&e.key) && !looks_secret(&value) {
        return line.to_owned();
    }
    let summary = describe_secret(&e.key, &value);
    let raw = doc.raw_value(e);
    line.replacen(raw, &summary, 1)
}

fn describe_secret(name: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    if (name == "JWT_KEYS" || name == "JWT_JWKS")
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(value)
    {
        let list = v
            .as_array()
            .or_else(|| v.get("keys").and_then(|k| k.as_array()));
        if let Some(list) = list {
            let keys: Vec<String> = list
                .iter()
                .map(|k| {
                    let alg = k.get("alg").and_then(|a| a.as_str()).unwrap_or("?");
                    let kid = k
                        .get("kid")
                        .and_then(|a| a.as_str())
                        .map_or("legacy".to_owned(), |kid| format!("kid {kid}"));
                    let ops = k
                        .get("key_ops")
                        .and_then(|o| o.as_array())
                        .map(|o| {
                            o.iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join("+")
                        })
                        .unwrap_or_default();
                    format!("{alg} {kid} {ops}")
                })
                .collect();
            return format!(
                "<{}: {}>",
                if name == "JWT_KEYS" {
                    "private set"
                } else {
                    "public set"
                },
                keys.join(", ")
            );
        }
    }
    if let Ok(d) = jws::decode(value) {
        let role = d.claims.get("role").and_then(|r| r.as_str()).unwrap_or("?");
        let kid = d.kid().map_or(String::new(), |k| format!(" kid {k}"));
        return format!("<JWT {}{kid} role {role}>", d.alg().unwrap_or("?"));
    }
    format!("<redacted, {} characters>", value.chars().count())
}

/// Whether a value carries a credential by its content: a URL with a password, a JWT, or a
/// long run of random-looking characters (40 or more, mixed letters and digits).
fn looks_secret(value: &str) -> bool {
    if let Some((_, rest)) = value.split_once("://")
        && let Some((userinfo, _)) = rest.split_once('@')
        && userinfo.contains(':')
    {
        return true;
    }
    if jws::decode(value).is_ok() {
        return true;
    }
    value
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=')))
        .any(|w| {
            w.len() >= 40
                && w.chars().any(|c| c.is_ascii_digit())
                && w.chars().any(|c| c.is_ascii_lowercase())
                && w.chars().any(|c| c.is_ascii_uppercase())
        })
}

/// A compose (or other YAML) line with credentials redacted: JWT-shaped words, the value of
/// an `environment:` entry whose name or content is secret (`KEY: value`, `- KEY=value`), and
/// the password of a URL.
#[must_use]
pub(crate) fn redact_yaml_line(line: &str) -> String {
    // The length said is the value's own, so the original line is split (a JWT would
    // otherwise be counted as `<redacted JWT>`).
    let trimmed = line.trim_start();
    let item = trimmed.strip_prefix("- ").unwrap_or(trimmed);
    let split = item
        .split_once(": ")
        .or_else(|| item.split_once('='))
        .filter(|(k, _)| {
            let k = k.trim();
            k.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if let Some((key, value)) = split {
        let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
        if !v.is_empty() && !v.contains('$') && (is_secret_name(key.trim()) || looks_secret(v)) {
            let at = line.len() - value.len();
            return format!(
                "{}<redacted, {} characters>",
                redact_tokens(&line[..at]),
                v.chars().count()
            );
        }
    }
    redact_tokens(line)
}

/// Keys whose values are names, never key material: shown in a [`Redaction::Values`] diff.
const STRUCTURAL_KEYS: [&str; 10] = [
    "apiVersion",
    "kind",
    "name",
    "namespace",
    "type",
    "secretRef",
    "enabled",
    "repository",
    "tag",
    "fullnameOverride",
];

/// A line of a file of key material with its value hidden: `key: <redacted, N characters>`
/// (quoted keys, keys with `-` or `.` too), except the structural keys; a line that is not
/// `key: value` (a block scalar's text, a list item) is hidden whole.
#[must_use]
pub(crate) fn redact_values_line(line: &str) -> String {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed == "---" {
        return line.to_owned();
    }
    if trimmed.starts_with('#') {
        // A commented-out key is still a key (old values kept as comments).
        let indent = &line[..line.len() - trimmed.len()];
        return format!(
            "{indent}# <comment, {} characters>",
            trimmed.chars().count()
        );
    }
    let indent = &line[..line.len() - trimmed.len()];
    let key_end = match trimmed.chars().next() {
        Some(q @ ('"' | '\'')) => trimmed[1..].find(q).map(|i| i + 2),
        _ => trimmed.find(':'),
    };
    let Some(key_end) = key_end else {
        return format!("{indent}<redacted line>");
    };
    let (key, rest) = trimmed.split_at(key_end);
    let Some(value) = rest.strip_prefix(':') else {
        return format!("{indent}<redacted line>");
    };
    let value = value.trim();
    let bare_key = key.trim_matches(|c| c == '"' || c == '\'');
    if value.is_empty()
        || value == "\"\""
        || value == "''"
        || value.starts_with('#')
        || STRUCTURAL_KEYS.contains(&bare_key)
    {
        return line.to_owned();
    }
    let v = value.trim_matches(|c| c == '"' || c == '\'');
    format!(
        "{indent}{key}: <redacted, {} characters>",
        v.chars().count()
    )
}

/// A line with every JWT-shaped word (an API key in Kong's declarative file) replaced by
/// `<redacted JWT>`.
#[must_use]
pub(crate) fn redact_tokens(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("eyJ") {
        out.push_str(&rest[..at]);
        let word = &rest[at..];
        let len = word
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(word.len());
        if word[..len].matches('.').count() == 2 {
            out.push_str("<redacted JWT>");
        } else {
            out.push_str(&word[..len]);
        }
        rest = &word[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_lines_hide_every_value_but_structural_ones() {
        assert_eq!(
            redact_values_line("  jwt-secret: abc123"),
            "  jwt-secret: <redacted, 6 characters>"
        );
        assert_eq!(
            redact_values_line("  \"secret\": 'x y'"),
            "  \"secret\": <redacted, 3 characters>"
        );
        assert_eq!(
            redact_values_line("    secretRef: supabase-jwt"),
            "    secretRef: supabase-jwt"
        );
        assert_eq!(redact_values_line("  name: s"), "  name: s");
        assert_eq!(redact_values_line("    jwtKeys: \"\""), "    jwtKeys: \"\"");
        assert_eq!(
            redact_values_line("      old secret text"),
            "      <redacted line>"
        );
        assert_eq!(redact_values_line("  apikey:"), "  apikey:");
        assert_eq!(
            redact_values_line("  # k: v"),
            "  # <comment, 6 characters>"
        );
    }

    #[test]
    fn redaction_goes_by_content_too() {
        let url = redact_env_line("DATABASE_URL=postgres://app:hunter2-pw@db:5432/postgres");
        assert!(!url.contains("hunter2"), "{url}");
        assert_eq!(
            redact_env_line("SITE_URL=http://localhost:3000"),
            "SITE_URL=http://localhost:3000"
        );
        let yaml =
            redact_yaml_line("      GOTRUE_JWT_SECRET: a-literal-secret-in-the-compose-file-0123");
        assert!(!yaml.contains("literal-secret"), "{yaml}");
        let list = redact_yaml_line("      - DB_URL=postgres://u:p4ss@h/db");
        assert!(!list.contains("p4ss"), "{list}");
        assert_eq!(
            redact_yaml_line("      PGRST_JWT_SECRET: ${JWT_JWKS}"),
            "      PGRST_JWT_SECRET: ${JWT_JWKS}"
        );
        assert_eq!(
            redact_yaml_line("    image: kong:2.8.1"),
            "    image: kong:2.8.1"
        );
    }

    #[test]
    fn redaction_hides_values_but_says_what_they_are() {
        assert_eq!(
            redact_env_line("JWT_SECRET=abcdef"),
            "JWT_SECRET=<redacted, 6 characters>"
        );
        assert_eq!(redact_env_line("SITE_URL=http://x"), "SITE_URL=http://x");
        let keys = r#"JWT_KEYS='[{"kty":"oct","k":"c2VjcmV0","alg":"HS256","key_ops":["sign","verify"]}]'"#;
        let shown = redact_env_line(keys);
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("HS256 legacy sign+verify"), "{shown}");
        assert_eq!(redact_env_line("# comment"), "# comment");
    }
}
