//! The `.env` document: a lossless model that reads values the way docker compose does.
//!
//! Every line keeps its raw text, and [`EnvFile::render`] of an unmodified document is the
//! input, byte for byte (comments, blank lines, `export`, quotes, CRLF, a missing final
//! newline). Values are read with compose-go's dotenv rules: single quotes are literal,
//! double quotes take backslash escapes and `${…}` interpolation, unquoted values end at
//! ` #` and take interpolation, `KEY: value` is accepted. Interpolation looks only at
//! variables defined earlier in the same file, never at the process environment, so what
//! keyctl reads does not depend on the shell it runs in. This module never touches the
//! filesystem.
//!
//! This file holds the document model and its one edit ([`EnvFile::set`]); `parse` reads
//! one statement at a time and `interpolate` resolves `$NAME` / `${…}` references.

mod interpolate;
mod parse;

use std::collections::HashMap;
use std::ops::Range;

use interpolate::{Vars, substitute};
use parse::parse_statement;

/// How a value is quoted in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// `KEY=value`
    None,
    /// `KEY='value'`
    Single,
    /// `KEY="value"`
    Double,
}

/// One `KEY=value` statement. Its `Debug` form never shows the value.
#[derive(Clone)]
pub struct Entry {
    /// The variable name.
    pub key: String,
    /// Whether the statement starts with `export `.
    pub export: bool,
    /// Byte range of the raw value (quotes included) in the document text.
    pub value_span: Range<usize>,
    /// The quoting of the raw value.
    pub quote: Quote,
    /// The value as compose resolves it; `None` for a bare `KEY` line (taken from the shell).
    pub value: Option<String>,
}

/// What a line of the file holds.
#[derive(Debug, Clone)]
pub enum LineKind {
    /// Only whitespace.
    Blank,
    /// A `#` comment.
    Comment,
    /// A variable, possibly spanning several physical lines (a multi-line quoted value).
    Entry(Entry),
}

/// A statement or a non-statement line, with its place in the text.
#[derive(Debug, Clone)]
pub struct Line {
    /// Byte range in the document, line terminator(s) included.
    pub span: Range<usize>,
    /// 1-based number of the first physical line.
    pub number: usize,
    /// What the line holds.
    pub kind: LineKind,
}

/// Why a `.env` cannot be read, with the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong; never the value itself.
    pub message: String,
}

/// A parsed `.env` document. It holds private keys: `Debug` shows only its shape, and the
/// text and values are zeroized when it is dropped.
#[derive(Clone)]
pub struct EnvFile {
    text: String,
    lines: Vec<Line>,
    /// Each variable's last statement (an index into `lines`): lookups are constant time.
    last: HashMap<String, usize>,
    /// Each variable's last statement that has a value (interpolation skips bare `KEY` lines).
    last_valued: HashMap<String, usize>,
}

impl Vars for EnvFile {
    fn var(&self, name: &str) -> Option<&str> {
        let i = *self.last_valued.get(name)?;
        match &self.lines[i].kind {
            LineKind::Entry(e) => e.value.as_deref(),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("export", &self.export)
            .field("quote", &self.quote)
            .field("value", &self.value.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for EnvFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EnvFile({} lines, {} bytes, [redacted])",
            self.lines.len(),
            self.text.len()
        )
    }
}

impl Drop for EnvFile {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.text.zeroize();
        for line in &mut self.lines {
            if let LineKind::Entry(e) = &mut line.kind
                && let Some(v) = &mut e.value
            {
                v.zeroize();
            }
        }
    }
}

impl EnvFile {
    /// Parses `.env` text.
    ///
    /// # Errors
    /// An invalid variable name, an unterminated quote, text after a closing quote, or a
    /// `${NAME:?message}` whose variable is unset.
    pub fn parse(text: &str) -> Result<EnvFile, ParseError> {
        let mut lines = Vec::new();
        let mut resolved: HashMap<String, String> = HashMap::new();
        let mut last = HashMap::new();
        let mut last_valued = HashMap::new();
        let mut pos = if text.starts_with('\u{feff}') { 3 } else { 0 };
        let mut number = 1;
        // A leading BOM belongs to the first line's span so that render() is the identity.
        let mut line_start = 0;
        while pos < text.len() {
            let (kind, next, consumed_lines) = parse_statement(text, pos, number, &resolved)?;
            if let LineKind::Entry(e) = &kind {
                last.insert(e.key.clone(), lines.len());
                if let Some(v) = &e.value {
                    last_valued.insert(e.key.clone(), lines.len());
                    resolved.insert(e.key.clone(), v.clone());
                }
            }
            lines.push(Line {
                span: line_start..next,
                number,
                kind,
            });
            number += consumed_lines;
            pos = next;
            line_start = next;
        }
        for v in resolved.values_mut() {
            zeroize::Zeroize::zeroize(v);
        }
        Ok(EnvFile {
            text: text.to_owned(),
            lines,
            last,
            last_valued,
        })
    }

    /// A variable assigned twice with different values: `(name, first line, later line)`.
    /// Compose takes the last, another reader of the file may take the first: which one the
    /// services run is a guess.
    #[must_use]
    pub fn conflicting_assignment(&self) -> Option<(&str, usize, usize)> {
        // Each name's distinct values, with the line each first appeared on.
        let mut seen: HashMap<&str, Vec<(Option<&str>, usize)>> = HashMap::new();
        for l in &self.lines {
            let LineKind::Entry(e) = &l.kind else {
                continue;
            };
            let values = seen.entry(e.key.as_str()).or_default();
            if let Some((_, first)) = values.iter().find(|(v, _)| *v != e.value.as_deref()) {
                return Some((e.key.as_str(), *first, l.number));
            }
            if values.is_empty() {
                values.push((e.value.as_deref(), l.number));
            }
        }
        None
    }

    /// The document text; for an unmodified document, exactly the parsed input.
    #[must_use]
    pub fn render(&self) -> &str {
        &self.text
    }

    /// Every line, in order.
    #[must_use]
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The last statement for `key` (compose lets a later line win) and its line number.
    #[must_use]
    pub fn entry(&self, key: &str) -> Option<(&Entry, usize)> {
        let l = &self.lines[*self.last.get(key)?];
        match &l.kind {
            LineKind::Entry(e) => Some((e, l.number)),
            _ => None,
        }
    }

    /// The resolved value of `key`, if it is set in the file.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entry(key).and_then(|(e, _)| e.value.as_deref())
    }

    /// The resolved value of `key`, treating an empty value like an absent one.
    #[must_use]
    pub fn get_nonempty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Interpolates `text` (a compose value such as `${JWT_JWKS:-${JWT_SECRET}}`) with this
    /// file's variables, as docker compose does with its `.env` (unset variables read as
    /// empty; the shell environment is not consulted).
    ///
    /// # Errors
    /// Malformed interpolation or a `${NAME:?message}` whose variable is unset.
    pub fn interpolate(&self, text: &str) -> Result<String, String> {
        if !text.contains('$') {
            return Ok(text.to_owned());
        }
        substitute(text, self)
    }

    /// The raw text of a statement's value (quotes included).
    #[must_use]
    pub fn raw_value(&self, entry: &Entry) -> &str {
        &self.text[entry.value_span.clone()]
    }
}

/// What [`EnvFile::set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvChange {
    /// The variable already had this value; not a byte changed.
    Unchanged,
    /// An existing value was replaced (on this 1-based line).
    Replaced(usize),
    /// An existing empty `KEY=` was filled in place.
    Filled(usize),
    /// The variable was absent and was appended.
    Appended(usize),
}

impl EnvFile {
    /// Sets `key` to `value`: replaces only the value span of the last statement for `key`,
    /// fills an empty `KEY=` in place, or appends `KEY=value` at the end (after the
    /// `group` comment block, which is added once if the file does not hold it yet). The
    /// value is written per [`quote_value`]; every other byte stays as it was. The result is
    /// re-read and must differ from the old document in `key` alone.
    ///
    /// # Errors
    /// A value keyctl will not quote, or (a bug guard) an edit that would change anything
    /// else.
    pub fn set(
        &mut self,
        key: &str,
        value: &str,
        group: Option<&str>,
    ) -> Result<EnvChange, String> {
        let quoted = quote_value(value)?;
        // Every statement for `key`, last first: an earlier, shadowed line must not keep an old
        // secret either.
        let statements: Vec<(Entry, usize)> = self
            .lines
            .iter()
            .rev()
            .filter_map(|l| match &l.kind {
                LineKind::Entry(e) if e.key == key => Some((e.clone(), l.number)),
                _ => None,
            })
            .collect();
        if !statements.is_empty()
            && statements
                .iter()
                .all(|(e, _)| e.value.as_deref() == Some(value))
        {
            return Ok(EnvChange::Unchanged);
        }
        let (text, change) = if let Some((last, line)) = statements.first() {
            let mut text = self.text.clone();
            for (e, _) in &statements {
                // An empty value before an inline comment must be quoted, or compose would read
                // the comment as the value.
                let rest = &self.text[e.value_span.end..];
                let followed = !rest.starts_with(['\r', '\n']) && !rest.is_empty();
                let quoted = if quoted.is_empty() && followed {
                    "''".to_owned()
                } else {
                    quoted.clone()
                };
                let replacement = if e.value.is_none() {
                    format!("={quoted}")
                } else {
                    quoted
                };
                text.replace_range(e.value_span.clone(), &replacement);
            }
            let was_empty = last.value.as_deref() == Some("") && last.value_span.is_empty();
            (
                text,
                if was_empty {
                    EnvChange::Filled(*line)
                } else {
                    EnvChange::Replaced(*line)
                },
            )
        } else {
            let nl = if self.text.contains("\r\n") {
                "\r\n"
            } else {
                "\n"
            };
            let mut text = self.text.clone();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push_str(nl);
            }
            if let Some(group) =
                group.filter(|g| !self.text.contains(g.lines().next().unwrap_or_default()))
            {
                if !text.is_empty() && !text.ends_with(&format!("{nl}{nl}")) {
                    text.push_str(nl);
                }
                for line in group.lines() {
                    text.push_str(line);
                    text.push_str(nl);
                }
            }
            let line = 1 + text.matches('\n').count();
            text.push_str(&format!("{key}={quoted}{nl}"));
            (text, EnvChange::Appended(line))
        };
        let edited =
            EnvFile::parse(&text).map_err(|e| format!("the edit would not parse ({e})"))?;
        if edited.get(key) != Some(value) {
            return Err(format!("the edit of {key} would not read back as written"));
        }
        // Every other line keeps its raw text; an append only adds lines at the end. (Values
        // that interpolate `key` change with it, by design.)
        let others = |f: &EnvFile| -> Vec<String> {
            f.lines
                .iter()
                .filter(|l| !matches!(&l.kind, LineKind::Entry(e) if e.key == key))
                .map(|l| {
                    f.text[l.span.clone()]
                        .trim_end_matches(['\r', '\n'])
                        .to_owned()
                })
                .collect()
        };
        let (before, after) = (others(self), others(&edited));
        if !after.starts_with(&before) {
            return Err(format!("the edit of {key} would change other lines"));
        }
        *self = edited;
        Ok(change)
    }
}

/// Renders a value the way keyctl writes it (SPEC §1): unquoted when it matches
/// `^[A-Za-z0-9_./:+=-]*$`, single-quoted when it holds no `'` and no newline, else refused.
///
/// # Errors
/// A value that needs escapes keyctl will not invent.
pub fn quote_value(value: &str) -> Result<String, String> {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_./:+=-".contains(c))
    {
        Ok(value.to_owned())
    } else if !value.contains('\'') && !value.contains('\n') && !value.contains('\r') {
        Ok(format!("'{value}'"))
    } else {
        Err("the value holds a single quote or a newline, which keyctl will not escape".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(text: &str, key: &str) -> Option<String> {
        EnvFile::parse(text).unwrap().get(key).map(str::to_owned)
    }

    #[test]
    fn reads_values_like_compose() {
        assert_eq!(get("A=1\n", "A").as_deref(), Some("1"));
        assert_eq!(get("A=x # c\n", "A").as_deref(), Some("x"));
        assert_eq!(get("A=x#c\n", "A").as_deref(), Some("x#c"));
        assert_eq!(get("A='x # $B'\n", "A").as_deref(), Some("x # $B"));
        assert_eq!(get("B=2\nA=\"$B-${B}\"\n", "A").as_deref(), Some("2-2"));
        assert_eq!(get("A=\"a\\tb\\n\"\n", "A").as_deref(), Some("a\tb\n"));
        assert_eq!(get("A=\"\\$B\"\n", "A").as_deref(), Some("$B"));
        assert_eq!(get("A=${X:-d}\n", "A").as_deref(), Some("d"));
        assert_eq!(get("X=\nA=${X-d}\n", "A").as_deref(), Some(""));
        assert_eq!(get("export A=1\n", "A").as_deref(), Some("1"));
        assert_eq!(get("A: 1\n", "A").as_deref(), Some("1"));
        assert_eq!(get("A = 1\r\n", "A").as_deref(), Some("1"));
        assert_eq!(get("A='it\\'s'\n", "A").as_deref(), Some("it's"));
        assert_eq!(get("A=a b c\n", "A").as_deref(), Some("a b c"));
        assert_eq!(get("A=\"l1\nl2\"\nB=3", "B").as_deref(), Some("3"));
        assert_eq!(get("A=\"l1\r\nl2\"\r\n", "A").as_deref(), Some("l1\nl2"));
        assert_eq!(get("A=1\nA=2\n", "A").as_deref(), Some("2"));
        assert_eq!(get("A\n", "A"), None);
    }

    #[test]
    fn json_values_read_back_intact() {
        let json = r#"[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]"#;
        let text = format!("JWT_KEYS={}\n", quote_value(json).unwrap());
        assert_eq!(get(&text, "JWT_KEYS").as_deref(), Some(json));
        // Unquoted JSON also reads intact (compose reads to the end of the line).
        assert_eq!(get(&format!("K={json}\n"), "K").as_deref(), Some(json));
    }

    #[test]
    fn render_is_identity() {
        for text in [
            "",
            "A=1",
            "\u{feff}A=1\n",
            "# c\n\nexport A='x' # trailing\r\nB=\"m\nl\"\n  C = 3  \n",
        ] {
            assert_eq!(EnvFile::parse(text).unwrap().render(), text);
        }
    }

    #[test]
    fn a_variable_set_twice_differently_names_both_lines() {
        let f = EnvFile::parse("A=1\nB=2\nA=3\n").unwrap();
        assert_eq!(f.conflicting_assignment(), Some(("A", 1, 3)));
        // The same value twice is harmless.
        let f = EnvFile::parse("A=1\nA=1\n").unwrap();
        assert_eq!(f.conflicting_assignment(), None);
    }

    #[test]
    fn errors_name_the_line() {
        let e = EnvFile::parse("A=1\nB='open\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unterminated"));
        let e = EnvFile::parse("A=1\n\nB C=1\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = EnvFile::parse("A=\"x\"\"y\"\n").unwrap_err();
        assert!(e.message.contains("after the closing quote"));
    }

    #[test]
    fn line_numbers_follow_multiline_values() {
        let f = EnvFile::parse("A=\"1\n2\n3\"\nB=4\n").unwrap();
        assert_eq!(f.entry("B").unwrap().1, 4);
    }

    #[test]
    fn set_replaces_only_the_value_span() {
        let text = "# c\r\nexport A='old' # keep\r\nB=2\r\n";
        let mut f = EnvFile::parse(text).unwrap();
        assert_eq!(
            f.set("A", "{\"x\":1}", None).unwrap(),
            EnvChange::Replaced(2)
        );
        assert_eq!(f.render(), "# c\r\nexport A='{\"x\":1}' # keep\r\nB=2\r\n");
        assert_eq!(f.set("A", "{\"x\":1}", None).unwrap(), EnvChange::Unchanged);
    }

    #[test]
    fn set_fills_empty_and_appends_under_the_group_once() {
        let mut f = EnvFile::parse("A=\nB=1").unwrap();
        assert_eq!(f.set("A", "v", None).unwrap(), EnvChange::Filled(1));
        assert_eq!(
            f.set("C", "x y", Some("# group\n")).unwrap(),
            EnvChange::Appended(5)
        );
        assert_eq!(
            f.set("D", "z", Some("# group\n")).unwrap(),
            EnvChange::Appended(6)
        );
        assert_eq!(f.render(), "A=v\nB=1\n\n# group\nC='x y'\nD=z\n");
    }

    #[test]
    fn set_refuses_values_it_cannot_quote_and_keeps_the_file() {
        let mut f = EnvFile::parse("A=1\n").unwrap();
        assert!(f.set("A", "it's", None).is_err());
        assert_eq!(f.render(), "A=1\n");
    }

    #[test]
    fn set_rewrites_shadowed_statements_and_allows_dependents() {
        let mut f = EnvFile::parse("S=old\nANON=${S}-x\nS=old2\n").unwrap();
        f.set("S", "new", None).unwrap();
        assert_eq!(f.render(), "S=new\nANON=${S}-x\nS=new\n");
        assert_eq!(f.get("ANON"), Some("new-x"));
    }

    #[test]
    fn debug_never_shows_values() {
        let f = EnvFile::parse("JWT_SECRET=very-secret-value\n").unwrap();
        assert!(!format!("{f:?}").contains("very-secret"));
        let (e, _) = f.entry("JWT_SECRET").unwrap();
        assert!(!format!("{e:?}").contains("very-secret"));
    }

    #[test]
    fn key_errors_never_echo_the_line() {
        let e = EnvFile::parse("MIGHAgEAMBMG+secretish=\n").unwrap_err();
        assert!(!e.message.contains("MIGHA"), "{e}");
    }

    #[test]
    fn set_on_a_bare_key_adds_the_equals_sign() {
        let mut f = EnvFile::parse("A\n").unwrap();
        f.set("A", "1", None).unwrap();
        assert_eq!(f.render(), "A=1\n");
    }

    #[test]
    fn quoting_rules() {
        assert_eq!(quote_value("eyJ.a-b_c").unwrap(), "eyJ.a-b_c");
        assert_eq!(quote_value("{\"a\":1}").unwrap(), "'{\"a\":1}'");
        assert_eq!(quote_value("").unwrap(), "");
        assert!(quote_value("it's").is_err());
        assert!(quote_value("a\nb").is_err());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn line() -> impl Strategy<Value = String> {
            let key = "[A-Z_][A-Z0-9_]{0,8}";
            let unquoted =
                "([A-Za-z0-9_./:+=#-]|\\$\\{[A-Z]{1,3}(:-[a-z]{0,3})?\\}){0,6}( #[ a-z]{0,5})?";
            let single = "'[^'\\\\\r\n]{0,12}'";
            let double = "\"([^\"\\\\$]|\\\\[nt\"$\\\\]|\n){0,10}\"";
            prop_oneof![
                Just(String::new()),
                "[ \t]{0,3}#[^\r\n]{0,20}",
                (
                    prop_oneof![Just(""), Just("export ")],
                    key,
                    prop_oneof![Just("="), Just(" = "), Just(": ")],
                    prop_oneof![unquoted.boxed(), single.boxed(), double.boxed()]
                )
                    .prop_map(|(e, k, sep, v)| format!("{e}{k}{sep}{v}")),
            ]
        }

        fn document() -> impl Strategy<Value = String> {
            (
                prop::collection::vec((line(), prop_oneof![Just("\n"), Just("\r\n")]), 0..12),
                any::<bool>(),
            )
                .prop_map(|(lines, final_newline)| {
                    let mut text: String = lines.iter().map(|(l, nl)| format!("{l}{nl}")).collect();
                    if !final_newline {
                        while text.ends_with('\n') || text.ends_with('\r') {
                            text.pop();
                        }
                    }
                    text
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn render_of_a_parsed_document_is_the_input(text in document()) {
                // The generator writes only valid statements: every document must parse.
                let doc = EnvFile::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text:?}")))?;
                prop_assert_eq!(doc.render(), text.as_str());
            }

            #[test]
            fn arbitrary_text_parses_or_errs_without_panicking(text in "\\PC{0,200}") {
                if let Ok(doc) = EnvFile::parse(&text) {
                    prop_assert_eq!(doc.render(), text.as_str());
                }
            }

            #[test]
            fn one_edit_changes_only_that_key(text in document(), value in "[A-Za-z0-9 {}\":,\\[\\]_.-]{0,30}", pick in any::<prop::sample::Index>()) {
                let Ok(mut doc) = EnvFile::parse(&text) else { return Ok(()) };
                let keys: Vec<String> = doc.lines().iter().filter_map(|l| match &l.kind {
                    LineKind::Entry(e) => Some(e.key.clone()),
                    _ => None,
                }).collect();
                if keys.is_empty() { return Ok(()) }
                let key = pick.get(&keys).clone();
                let untouched = |d: &EnvFile| -> Vec<String> {
                    d.lines().iter()
                        .filter(|l| !matches!(&l.kind, LineKind::Entry(e) if e.key == key))
                        .map(|l| d.render()[l.span.clone()].trim_end_matches(['\r', '\n']).to_owned())
                        .collect()
                };
                let before = untouched(&doc);
                doc.set(&key, &value, None).map_err(TestCaseError::fail)?;
                prop_assert_eq!(doc.get(&key), Some(value.as_str()));
                prop_assert_eq!(untouched(&doc), before);
            }
        }
    }
}
