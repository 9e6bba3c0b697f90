//! Edit planning: each way of making an environment hold a key, spelled as one [`Splice`]
//! of the text — replace a value, uncomment a line, append an entry, add an
//! `environment:` block — with the change it reports and the value it must read back as.
//!
//! Planning is pure arithmetic on positions and indentation. It never applies a splice,
//! never decides which plan an edit needs (the editor does), and never touches the
//! filesystem; a plan that cannot be made says why in words that name no value.

use std::ops::Range;

use saphyr_parser::ScalarStyle;

use super::Change;
use super::document::{Commented, Compose, Entry};
use super::index::{
    Kind, NodeId, block_column, dash_column, eol_at, line_content_end, line_of, line_start,
};
use super::scalar::render_scalar;

/// One splice of the text.
#[derive(Clone)]
pub(super) struct Splice {
    pub(super) range: Range<usize>,
    pub(super) text: String,
}

/// A planned edit: the splice, what it does, and the value the entry must read back as.
pub(super) type Plan = (Splice, Change, String);

impl Compose {
    /// Replaces the value of the live entry `live` with `wanted`, in its own quote style when
    /// that style can hold it.
    pub(super) fn plan_replace(
        &self,
        live: &Entry,
        key: &str,
        wanted: &str,
    ) -> Result<Plan, String> {
        let t = &self.tree;
        let node = &t.nodes[live.node];
        let Kind::Scalar { value, style } = &node.kind else {
            return Err(format!("the value of {key} is an alias (*…)"));
        };
        if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
            return Err(format!("the value of {key} is a block scalar (| or >)"));
        }
        let raw = &self.text[node.start..node.end];
        let quote = match style {
            ScalarStyle::SingleQuoted => Some('\''),
            ScalarStyle::DoubleQuoted => Some('"'),
            _ => None,
        };
        if let Some(q) = quote
            && !(raw.len() >= 2 && raw.starts_with(q) && raw.ends_with(q))
        {
            return Err(format!("cannot find the quotes around the value of {key}"));
        }
        let change = Change::Replaced { line: live.line };
        let splice = match live.key_node {
            Some(k) if value.is_empty() && node.start == node.end => {
                // `KEY:` with no value: write ` value` after the colon.
                let after_key = t.nodes[k].end;
                let gap = self.text[after_key..]
                    .bytes()
                    .take_while(|b| *b == b' ' || *b == b'\t')
                    .count();
                let colon = after_key + gap;
                if self.text.as_bytes().get(colon) != Some(&b':') {
                    return Err(format!("cannot find the colon after {key}"));
                }
                Splice {
                    range: colon + 1..colon + 1,
                    text: format!(" {}", render_scalar(wanted, ScalarStyle::Plain)),
                }
            }
            Some(_) => Splice {
                range: node.start..node.end,
                text: render_scalar(wanted, *style),
            },
            None => Splice {
                range: node.start..node.end,
                text: render_scalar(&format!("{key}={wanted}"), *style),
            },
        };
        Ok((splice, change, wanted.to_owned()))
    }

    /// The indentation of the entries of a block environment, if it has any.
    fn entry_column(&self, env: NodeId) -> Result<Option<usize>, String> {
        let t = &self.tree;
        let text = &self.text;
        let node = &t.nodes[env];
        let Some(&first) = node.children.first() else {
            return Ok(None);
        };
        let col = match node.kind {
            Kind::Map => block_column(text, t.nodes[first].start),
            Kind::Seq => dash_column(text, t.nodes[first].start),
            _ => return Ok(None),
        };
        col.map(Some)
            .ok_or_else(|| "cannot tell the indentation of its entries".to_owned())
    }

    /// Removes the `#` of the commented-out entry `c`, indenting it like the other entries.
    pub(super) fn plan_uncomment(&self, env: NodeId, c: &Commented) -> Result<Plan, String> {
        let col = self.entry_column(env)?.unwrap_or(c.hash - c.line_start);
        Ok((
            Splice {
                range: c.line_start..c.hash + 1,
                text: " ".repeat(col),
            },
            Change::Uncommented { line: c.line },
            c.value.clone(),
        ))
    }

    /// How far one nesting level indents, judged from `outer` and the keys inside it.
    fn indent_step(&self, outer_key: NodeId, inner_col: usize) -> usize {
        let start = self.tree.nodes[outer_key].start;
        let outer_col = start - line_start(&self.text, start);
        if inner_col > outer_col {
            inner_col - outer_col
        } else {
            2
        }
    }

    /// Appends `KEY: wanted` (or `- KEY=wanted`) after the last entry of the block
    /// environment `env`, or as its first entry when it has none.
    pub(super) fn plan_append(
        &self,
        svc_key: NodeId,
        env_key: NodeId,
        env: NodeId,
        key: &str,
        wanted: &str,
    ) -> Result<Plan, String> {
        let t = &self.tree;
        let text = &self.text;
        let node = &t.nodes[env];
        let env_col = block_column(text, t.nodes[env_key].start)
            .ok_or("cannot tell the indentation of `environment:`")?;
        let list = matches!(node.kind, Kind::Seq);
        let (after, col) = match self.entry_column(env)? {
            Some(col) => (node.end, col),
            None => (
                t.nodes[env_key].end,
                env_col + self.indent_step(svc_key, env_col),
            ),
        };
        let entry = if list {
            format!(
                "- {}",
                render_scalar(&format!("{key}={wanted}"), ScalarStyle::Plain)
            )
        } else {
            format!("{key}: {}", render_scalar(wanted, ScalarStyle::Plain))
        };
        let at = line_content_end(text, after);
        let eol = eol_at(text, after);
        Ok((
            Splice {
                range: at..at,
                text: format!("{eol}{}{entry}", " ".repeat(col)),
            },
            Change::Added {
                line: line_of(text, at) + 1,
            },
            wanted.to_owned(),
        ))
    }

    /// Adds an `environment:` block holding `KEY: wanted` after the last key of `svc`.
    pub(super) fn plan_new_environment(
        &self,
        svc_key: NodeId,
        svc: NodeId,
        key: &str,
        wanted: &str,
    ) -> Result<Plan, String> {
        let t = &self.tree;
        let text = &self.text;
        let node = &t.nodes[svc];
        let Some(&first) = node.children.first() else {
            return Err("the service has no keys".to_owned());
        };
        let col = block_column(text, t.nodes[first].start)
            .ok_or("cannot tell the indentation of its keys")?;
        let step = self.indent_step(svc_key, col);
        let at = line_content_end(text, node.end);
        let eol = eol_at(text, node.end);
        let value = render_scalar(wanted, ScalarStyle::Plain);
        Ok((
            Splice {
                range: at..at,
                text: format!(
                    "{eol}{}environment:{eol}{}{key}: {value}",
                    " ".repeat(col),
                    " ".repeat(col + step)
                ),
            },
            Change::Added {
                line: line_of(text, at) + 2,
            },
            wanted.to_owned(),
        ))
    }
}
