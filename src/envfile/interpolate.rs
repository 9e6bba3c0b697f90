//! compose-go's template interpolation of `.env` values: `$$`, `$NAME`, `${NAME}` and the
//! `${NAME[:]-default}`, `${NAME[:]?error}`, `${NAME[:]+replacement}` forms, nested.
//!
//! Variables come only from the [`Vars`] it is given, all taken from the `.env` itself: it
//! never reads the process environment, never touches the filesystem, and its errors
//! name a variable or the `${…}` expression at fault, never a variable's value.

use std::collections::HashMap;

/// Where interpolation looks a variable up: each lookup is a hash lookup, so interpolating
/// is linear in the text whatever the size of the file.
pub(super) trait Vars {
    /// The value last given for `name`, if any.
    fn var(&self, name: &str) -> Option<&str>;
}

impl Vars for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// compose-go template interpolation: `$$`, `$NAME`, `${NAME}`, and `${NAME[:]-default}`,
/// `${NAME[:]?error}`, `${NAME[:]+replacement}` with nesting.
pub(super) fn substitute(s: &str, resolved: &dyn Vars) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let close = matching_brace(r).ok_or("unterminated ${ in a value")?;
            out.push_str(&braced(&r[..close], resolved)?);
            rest = &r[close + 1..];
        } else {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(resolved.var(&rest[..len]).unwrap_or(""));
                rest = &rest[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn braced(inner: &str, resolved: &dyn Vars) -> Result<String, String> {
    let name_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(name_len);
    if name.is_empty() {
        return Err(format!("invalid interpolation ${{{inner}}}"));
    }
    let value = resolved.var(name);
    let (colon, op) = match op.strip_prefix(':') {
        Some(o) => (true, o),
        None => (false, op),
    };
    let unset = |v: Option<&str>| v.is_none() || (colon && v == Some(""));
    let Some(kind) = op.chars().next() else {
        return Ok(value.unwrap_or("").to_owned());
    };
    let arg = &op[kind.len_utf8()..];
    match kind {
        '-' if unset(value) => substitute(arg, resolved),
        '-' => Ok(value.unwrap_or("").to_owned()),
        '+' if unset(value) => Ok(String::new()),
        '+' => substitute(arg, resolved),
        '?' if unset(value) => Err(format!("required variable {name} is missing a value")),
        '?' => Ok(value.unwrap_or("").to_owned()),
        _ => Err(format!("invalid interpolation ${{{inner}}}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the envfile property test: an operator that is a multi-byte character was
    /// sliced inside the character and panicked.
    #[test]
    fn a_multibyte_character_after_the_name_is_an_error_not_a_panic() {
        assert!(
            substitute("${Aਾ}", &HashMap::new())
                .unwrap_err()
                .contains("invalid interpolation")
        );
        assert!(substitute("${A:ఫ}", &HashMap::new()).is_err());
    }
}
