//! Scalar encoding: how a value is spelled in YAML so that it reads back as exactly that
//! value.
//!
//! An edit writes a new value in the quote style of the one it replaces when that style can
//! hold it; this module picks the spelling and proves it by reading it back. It only turns
//! strings into YAML text: it never decides where the text goes, never edits a document,
//! and never touches the filesystem.

use std::borrow::Cow;

use saphyr::Scalar;
use saphyr_parser::ScalarStyle;

use super::index::{Kind, Tree};

/// `value` written as a block-context scalar, in `preferred` style when that style reads
/// back as exactly `value`, else single-quoted, else double-quoted (which always does).
pub(super) fn render_scalar(value: &str, preferred: ScalarStyle) -> String {
    for style in [
        preferred,
        ScalarStyle::SingleQuoted,
        ScalarStyle::DoubleQuoted,
    ] {
        if let Some(text) = encode_scalar(value, style)
            && reads_back(&text, value)
        {
            return text;
        }
    }
    encode_double(value)
}

fn encode_scalar(value: &str, style: ScalarStyle) -> Option<String> {
    match style {
        // A plain scalar must stay a string for YAML 1.2 readers and for YAML 1.1 ones
        // (which read `yes`, `on`, `n`… as booleans).
        ScalarStyle::Plain => (!value.is_empty()
            && matches!(
                Scalar::parse_from_cow(Cow::Borrowed(value)),
                Scalar::String(_)
            )
            && !["y", "yes", "n", "no", "on", "off"]
                .contains(&value.to_ascii_lowercase().as_str()))
        .then(|| value.to_owned()),
        ScalarStyle::SingleQuoted => (!value.chars().any(char::is_control))
            .then(|| format!("'{}'", value.replace('\'', "''"))),
        ScalarStyle::DoubleQuoted => Some(encode_double(value)),
        _ => None,
    }
}

fn encode_double(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `text` as the value of a block mapping entry reads back as exactly `value`.
fn reads_back(text: &str, value: &str) -> bool {
    let Ok(tree) = Tree::parse(&format!("k: {text}\n")) else {
        return false;
    };
    let root = &tree.nodes[tree.root];
    matches!(root.kind, Kind::Map)
        && root.children.len() == 2
        && tree.scalar(root.children[1]) == Some(value)
}
