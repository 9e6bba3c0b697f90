//! Where a service's value comes from: the `.env` variable a compose `${…}` reads, the
//! literal default that applies because that variable is unset, an `env_file:` file, or text
//! written in the compose file itself. Knowing the origin is what lets keyctl find "the
//! variable that holds the secret" instead of assuming it is `JWT_SECRET`. Pure.

use crate::envfile::EnvFile;

/// The origin of a resolved value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A `.env` variable, read through `${NAME}` (or `$NAME`).
    Env(String),
    /// The literal default of `${NAME:-default}`, because `NAME` is not set in `.env`:
    /// setting `NAME` in `.env` changes it.
    Default(String),
    /// Text written in the compose file, no interpolation.
    Literal,
    /// The service's `env_file:` file of that name (the same variable name).
    EnvFile(String),
    /// Several pieces (`${A}${B}`, `${A:+…}`): nothing keyctl can rewrite alone.
    Composite,
}

/// Where a value can be changed, when keyctl can change it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Home {
    /// A `.env` variable.
    Env(String),
    /// A variable of an `env_file:` file (path as written in the compose file).
    EnvFile {
        /// The file, as the compose file names it.
        file: String,
        /// The variable.
        var: String,
    },
}

impl Home {
    /// How to name it in messages: `.env JWT_SECRET`, `keys.env ANON_KEY`.
    #[must_use]
    pub(crate) fn describe(&self) -> String {
        match self {
            Home::Env(var) => format!(".env {var}"),
            Home::EnvFile { file, var } => format!("{file} {var}"),
        }
    }

    /// The variable name.
    #[must_use]
    pub(crate) fn var(&self) -> &str {
        match self {
            Home::Env(var) | Home::EnvFile { var, .. } => var,
        }
    }
}

impl Origin {
    /// The home of a value of `key` with this origin, when keyctl can rewrite it there.
    #[must_use]
    pub(crate) fn home(&self, key: &str) -> Option<Home> {
        match self {
            Origin::Env(var) | Origin::Default(var) => Some(Home::Env(var.clone())),
            Origin::EnvFile(file) => Some(Home::EnvFile {
                file: file.clone(),
                var: key.to_owned(),
            }),
            Origin::Literal | Origin::Composite => None,
        }
    }
}

/// The origin of a compose `environment:` value, as compose-go interpolates it with `env`.
#[must_use]
pub(crate) fn trace(text: &str, env: &EnvFile) -> Origin {
    if !text.contains('$') {
        return Origin::Literal;
    }
    let Some((name, op, rest)) = single_expression(text) else {
        return Origin::Composite;
    };
    let value = env.get(name);
    let defaulted = match op {
        "" | "?" | ":?" => false,
        ":-" => value.is_none_or(str::is_empty),
        "-" => value.is_none(),
        _ => return Origin::Composite,
    };
    if !defaulted {
        return Origin::Env(name.to_owned());
    }
    if rest.contains('$') {
        match trace(rest, env) {
            Origin::Literal => Origin::Default(name.to_owned()),
            other => other,
        }
    } else {
        Origin::Default(name.to_owned())
    }
}

/// `(NAME, operator, rest)` when `text` is one `$NAME` or `${NAME…}` and nothing else.
fn single_expression(text: &str) -> Option<(&str, &str, &str)> {
    let name_len = |s: &str| {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    if let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
        // The closing brace must be the one matching `${`.
        let mut depth = 0usize;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => return (i == inner.len()).then_some(("", "", "")),
                '}' => depth -= 1,
                _ => {}
            }
        }
        let n = name_len(inner);
        if n == 0 {
            return None;
        }
        let (name, after) = inner.split_at(n);
        for op in [":-", ":?", ":+", "-", "?", "+"] {
            if let Some(rest) = after.strip_prefix(op) {
                return Some((name, op, rest));
            }
        }
        return after.is_empty().then_some((name, "", ""));
    }
    let rest = text.strip_prefix('$')?;
    let n = name_len(rest);
    (n > 0 && n == rest.len()).then_some((rest, "", ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(text: &str) -> EnvFile {
        EnvFile::parse(text).unwrap()
    }

    #[test]
    fn origins_follow_compose_interpolation() {
        let e = env("A=1\nEMPTY=\n");
        assert_eq!(trace("literal", &e), Origin::Literal);
        assert_eq!(trace("${A}", &e), Origin::Env("A".into()));
        assert_eq!(trace("$A", &e), Origin::Env("A".into()));
        assert_eq!(trace("${B}", &e), Origin::Env("B".into()));
        assert_eq!(trace("${A:-x}", &e), Origin::Env("A".into()));
        assert_eq!(trace("${B:-x}", &e), Origin::Default("B".into()));
        assert_eq!(trace("${EMPTY:-x}", &e), Origin::Default("EMPTY".into()));
        assert_eq!(trace("${EMPTY-x}", &e), Origin::Env("EMPTY".into()));
        assert_eq!(trace("${B:-${A}}", &e), Origin::Env("A".into()));
        assert_eq!(trace("${B:-${C:-z}}", &e), Origin::Default("C".into()));
        assert_eq!(trace("${A}${A}", &e), Origin::Composite);
        assert_eq!(trace("x${A}", &e), Origin::Composite);
        assert_eq!(trace("${A:+y}", &e), Origin::Composite);
        assert_eq!(trace("${A:?need it}", &e), Origin::Env("A".into()));
    }
}
