//! Reading one `.env` statement with compose-go's dotenv rules: blank and comment lines,
//! `export`, `KEY=value` and `KEY: value`, single quotes (literal), double quotes (backslash
//! escapes, possibly over several lines), unquoted values ending at ` #`.
//!
//! It reads text and reports where each part sits; it never changes the text, never
//! consults the process environment, and never touches the filesystem. Its errors name the
//! line and the variable, never a value, and never echo a name that is not valid (a broken
//! line can be part of a secret).

use std::ops::Range;

use super::interpolate::{Vars, substitute};
use super::{Entry, LineKind, ParseError, Quote};

fn is_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\u{b}' | '\u{c}' | '\r' | '\u{85}' | '\u{a0}'
    )
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']')
}

/// End of the physical line starting at `pos`: (end of content without `\r\n`, start of next line).
fn line_end(text: &str, pos: usize) -> (usize, usize) {
    match text[pos..].find('\n') {
        Some(i) => {
            let nl = pos + i;
            let content_end = if nl > pos && text.as_bytes()[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            (content_end, nl + 1)
        }
        None => (text.len(), text.len()),
    }
}

type Parsed = (LineKind, usize, usize);

pub(super) fn parse_statement(
    text: &str,
    pos: usize,
    number: usize,
    resolved: &dyn Vars,
) -> Result<Parsed, ParseError> {
    let err = |line: usize, message: String| ParseError { line, message };
    let (content_end, next) = line_end(text, pos);
    let content = &text[pos..content_end];
    let trimmed = content.trim_start_matches(is_space);
    if trimmed.is_empty() {
        return Ok((LineKind::Blank, next, 1));
    }
    if trimmed.starts_with('#') {
        return Ok((LineKind::Comment, next, 1));
    }
    let mut stmt_start = content_end - trimmed.len();
    let mut export = false;
    if let Some(rest) = trimmed.strip_prefix("export ") {
        export = true;
        let rest = rest.trim_start_matches(is_space);
        stmt_start = content_end - rest.len();
    }
    let stmt = &text[stmt_start..content_end];
    let Some(sep) = stmt.find(['=', ':']) else {
        let key = stmt.trim_end_matches(is_space);
        check_key(key).map_err(|m| err(number, m))?;
        return Ok((
            LineKind::Entry(Entry {
                key: key.to_owned(),
                export,
                value_span: content_end..content_end,
                quote: Quote::None,
                value: None,
            }),
            next,
            1,
        ));
    };
    let key = stmt[..sep].trim_end_matches(is_space);
    check_key(key).map_err(|m| err(number, m))?;
    let after_sep = stmt_start + sep + 1;
    let value_start = after_sep
        + (text[after_sep..content_end].len()
            - text[after_sep..content_end]
                .trim_start_matches(is_space)
                .len());
    let first = text[value_start..].chars().next();
    let entry = |value_span: Range<usize>, quote: Quote, value: String| {
        LineKind::Entry(Entry {
            key: key.to_owned(),
            export,
            value_span,
            quote,
            value: Some(value),
        })
    };
    match first {
        Some(q @ ('\'' | '"')) if value_start < content_end => {
            let (raw, close) = scan_quoted(text, value_start, q)
                .ok_or_else(|| err(number, format!("unterminated quoted value for {key}")))?;
            let consumed = 1 + text[value_start..close].matches('\n').count();
            let close_line = number + consumed - 1;
            let (tail_end, tail_next) = line_end(text, close + 1);
            let tail = text[close + 1..tail_end].trim_start_matches(is_space);
            if !tail.is_empty() && !tail.starts_with('#') {
                return Err(err(
                    close_line,
                    format!("unexpected text after the closing quote of {key}"),
                ));
            }
            let value = if q == '"' {
                substitute(&expand_escapes(&raw), resolved).map_err(|m| err(number, m))?
            } else {
                raw
            };
            let quote = if q == '"' {
                Quote::Double
            } else {
                Quote::Single
            };
            Ok((
                entry(value_start..close + 1, quote, value),
                tail_next,
                consumed,
            ))
        }
        _ => {
            let raw = &text[value_start..content_end];
            let raw = raw.find(" #").map_or(raw, |i| &raw[..i]);
            let raw = raw.trim_end_matches(char::is_whitespace);
            let value = substitute(raw, resolved).map_err(|m| err(number, m))?;
            Ok((
                entry(value_start..value_start + raw.len(), Quote::None, value),
                next,
                1,
            ))
        }
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a line with no variable name".into());
    }
    match key.chars().find(|c| !is_key_char(*c)) {
        // The "name" may be a fragment of a secret on a broken line: never echo it.
        Some(c) => Err(format!(
            "unexpected character {c:?} in a variable name (the line is not KEY=value)"
        )),
        None => Ok(()),
    }
}

/// Scans a quoted value starting at the opening quote; returns the unescaped raw content
/// (compose keeps a backslash before anything but the quote itself) and the closing quote's
/// byte offset.
fn scan_quoted(text: &str, open: usize, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut escaped = false;
    let mut chars = text[open + 1..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\r' && matches!(chars.peek(), Some((_, '\n'))) {
            continue;
        }
        if c != quote {
            if !escaped && c == '\\' {
                escaped = true;
                continue;
            }
            if escaped {
                escaped = false;
                out.push('\\');
            }
            out.push(c);
            continue;
        }
        if escaped {
            escaped = false;
            out.push(c);
            continue;
        }
        return Some((out, open + 1 + i));
    }
    None
}

/// Backslash escapes inside double quotes, as compose-go's `expandEscapes`: `\$` becomes
/// `$$` so that interpolation leaves a literal `$`.
fn expand_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some(e @ ('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '"' | '\\')) => {
                chars.next();
                out.push(match e {
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    other => other,
                });
            }
            Some('$') => {
                chars.next();
                out.push_str("$$");
            }
            Some('0') => {
                chars.next();
                let mut n = 0u32;
                for _ in 0..3 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            n = n * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(n).unwrap_or('\u{fffd}'));
            }
            _ => out.push('\\'),
        }
    }
    out
}
