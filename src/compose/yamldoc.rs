//! Any other YAML file keyctl edits — a Helm values file, a Kubernetes Secret manifest — read
//! and edited with the compose editor's core: the same position index, the same scalar
//! spelling, the same proof by a plain loader that nothing but the intended path changed.
//!
//! [`YamlDoc`] reads values by key path (`secret.apikey.jwtKeys`) and sets one scalar per
//! edit: in place when it exists (in the style it had, when that style can hold the value),
//! else as new block-mapping lines under the deepest mapping that exists. It takes text and
//! returns text; its errors name paths and lines, never a value.

use saphyr_parser::ScalarStyle;

use super::ComposeError;
use super::index::{Kind, NodeId, Tree, block_column, eol_at, line_start, next_line_start};
use super::scalar::render_scalar;
use super::verify::{Plain, load_plain};

/// One YAML document, its text kept byte for byte.
#[derive(Debug, Clone)]
pub struct YamlDoc {
    text: String,
    tree: Tree,
}

/// One item of a block sequence of mappings (`- name: X` / `value: Y`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// 1-based line where the item starts.
    pub line: usize,
    /// Its entries: key and scalar value (`None` for a mapping, sequence or alias value).
    pub fields: Vec<(String, Option<String>)>,
}

impl Item {
    /// The scalar value of `key`, if the item has one.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether the item has `key` at all.
    #[must_use]
    pub fn has(&self, key: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == key)
    }
}

impl YamlDoc {
    /// Indexes `text` (one YAML document).
    ///
    /// # Errors
    /// Invalid YAML, with its line.
    pub fn parse(text: &str) -> Result<YamlDoc, ComposeError> {
        Ok(YamlDoc {
            tree: Tree::parse(text)?,
            text: text.to_owned(),
        })
    }

    /// The text, exactly as given.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    fn node(&self, path: &[&str]) -> Option<NodeId> {
        let mut id = self.tree.resolve(self.tree.root);
        for key in path {
            id = self.tree.get_merged(id, key, 0)?;
        }
        Some(self.tree.resolve(id))
    }

    /// The scalar at `path` and its line; `None` when absent or not a scalar. A YAML null
    /// (`key:` alone, `~`) reads as the empty string.
    #[must_use]
    pub fn scalar(&self, path: &[&str]) -> Option<(String, usize)> {
        let id = self.node(path)?;
        let node = &self.tree.nodes[id];
        match &node.kind {
            Kind::Scalar { value, style } => {
                let null = *style == ScalarStyle::Plain && matches!(value.as_str(), "~" | "null");
                Some((if null { String::new() } else { value.clone() }, node.line))
            }
            _ => None,
        }
    }

    /// Whether anything is at `path`.
    #[must_use]
    pub fn has(&self, path: &[&str]) -> bool {
        self.node(path).is_some()
    }

    /// Whether `path` holds a sequence.
    #[must_use]
    pub fn is_seq(&self, path: &[&str]) -> bool {
        self.node(path)
            .is_some_and(|id| matches!(self.tree.nodes[id].kind, Kind::Seq))
    }

    /// The line of the key at the end of `path` (or of the deepest key of it that exists).
    #[must_use]
    pub fn line(&self, path: &[&str]) -> Option<usize> {
        let mut id = self.tree.resolve(self.tree.root);
        let mut line = None;
        for key in path {
            let (k, v) = self.tree.get(id, key)?;
            line = Some(self.tree.nodes[k].line);
            id = self.tree.resolve(v);
        }
        line
    }

    /// The entries of the mapping at `path`: key, scalar value (`None` when not a scalar)
    /// and line. Empty when it is absent or not a mapping.
    #[must_use]
    pub fn entries(&self, path: &[&str]) -> Vec<(String, Option<String>, usize)> {
        let Some(map) = self.node(path) else {
            return Vec::new();
        };
        self.tree
            .pairs(map)
            .filter_map(|(k, v)| {
                let key = self.tree.scalar(k)?.to_owned();
                let v = self.tree.resolve(v);
                Some((
                    key,
                    self.tree.scalar(v).map(str::to_owned),
                    self.tree.nodes[k].line,
                ))
            })
            .collect()
    }

    /// The items of the sequence at `path` that are mappings.
    #[must_use]
    pub fn items(&self, path: &[&str]) -> Vec<Item> {
        let Some(seq) = self.node(path) else {
            return Vec::new();
        };
        if !matches!(self.tree.nodes[seq].kind, Kind::Seq) {
            return Vec::new();
        }
        self.tree.nodes[seq]
            .children
            .iter()
            .map(|&c| self.tree.resolve(c))
            .filter(|&c| self.tree.is_map(c))
            .map(|m| Item {
                line: self.tree.nodes[m].line,
                fields: self
                    .tree
                    .pairs(m)
                    .filter_map(|(k, v)| {
                        let v = self.tree.resolve(v);
                        Some((
                            self.tree.scalar(k)?.to_owned(),
                            self.tree.scalar(v).map(str::to_owned),
                        ))
                    })
                    .collect(),
            })
            .collect()
    }

    /// The text with the string `value` at `path`: the scalar there replaced in place, or,
    /// when keys are missing, new lines under the deepest block mapping of `path` that
    /// exists. Proven by reading both texts with a plain loader: they must differ only at
    /// `path`.
    ///
    /// # Errors
    /// `path` holds a mapping or sequence, crosses a flow collection or an alias, or the
    /// edit would change anything else.
    pub fn set(&self, path: &[&str], value: &str) -> Result<String, ComposeError> {
        let dotted = path.join(".");
        let (found, depth, key) = self.deepest(path);
        let node = &self.tree.nodes[found];
        let text = if depth == path.len() {
            let Kind::Scalar { style, .. } = &node.kind else {
                return Err(ComposeError::at(
                    node.line,
                    format!("{dotted} is not a single value; keyctl only writes a string there"),
                ));
            };
            // Where the value's text starts: a bare `key:` has none (insert after the colon),
            // a block scalar starts at its `|` or `>` header.
            let after_colon = key.and_then(|k| {
                let end = self.tree.nodes[k].end;
                let rest = &self.text[end..];
                let i = rest.find(':')?;
                rest[..i].trim().is_empty().then_some(end + i + 1)
            });
            let (start, end, rendered) = match (style, after_colon) {
                (ScalarStyle::Literal | ScalarStyle::Folded, Some(colon)) => {
                    let header = self.text[colon..node.start.max(colon)]
                        .find(['|', '>'])
                        .map_or(node.start, |i| colon + i);
                    (
                        header,
                        node.end.max(header),
                        render_scalar(value, ScalarStyle::DoubleQuoted),
                    )
                }
                // An empty value: nothing to replace, the new one goes right after the colon.
                _ if node.start == node.end
                    || self.text[node.start..node.end].trim().is_empty() =>
                {
                    let at = after_colon.unwrap_or(node.start);
                    (
                        at,
                        at,
                        format!(" {}", render_scalar(value, ScalarStyle::DoubleQuoted)),
                    )
                }
                _ => (node.start, node.end, render_scalar(value, *style)),
            };
            format!("{}{rendered}{}", &self.text[..start], &self.text[end..])
        } else {
            self.insert(found, &path[depth..], value, &dotted)?
        };
        self.prove(&text, path, value, &dotted)?;
        Ok(text)
    }

    /// The deepest node along `path` that exists directly (no `<<` merges, aliases only at
    /// the end), and how many keys of `path` it took.
    fn deepest(&self, path: &[&str]) -> (NodeId, usize, Option<NodeId>) {
        let mut id = self.tree.root;
        let mut last_key = None;
        for (i, key) in path.iter().enumerate() {
            match self.tree.get(id, key) {
                Some((k, v)) => {
                    id = v;
                    last_key = Some(k);
                }
                None => return (id, i, None),
            }
        }
        (id, path.len(), last_key)
    }

    fn insert(
        &self,
        map: NodeId,
        missing: &[&str],
        value: &str,
        dotted: &str,
    ) -> Result<String, ComposeError> {
        let node = &self.tree.nodes[map];
        let refuse = |why: &str| {
            ComposeError::at(
                node.line,
                format!("cannot add {dotted}: {why}; add it by hand (an empty string is enough)"),
            )
        };
        if !self.tree.is_map(map) {
            return Err(refuse("what holds it is not a mapping"));
        }
        if node.flow {
            return Err(refuse("what holds it is written as a {…} mapping"));
        }
        let Some(&first) = node.children.first() else {
            return Err(refuse("what holds it is an empty mapping"));
        };
        let first_start = self.tree.nodes[first].start;
        let column = block_column(&self.text, first_start)
            .ok_or_else(|| refuse("its first key does not start a line"))?;
        let eol = eol_at(&self.text, first_start);
        let mut at = if node.end > 0 && self.text[..node.end].ends_with('\n') {
            node.end
        } else {
            next_line_start(&self.text, node.end)
        };
        // Never split a line: insert at the start of the line after the mapping's content.
        at = at.max(line_start(&self.text, at));
        let mut lines = String::new();
        if at == self.text.len() && !self.text.is_empty() && !self.text.ends_with('\n') {
            lines.push_str(eol);
        }
        for (i, key) in missing.iter().enumerate() {
            let indent = " ".repeat(column + 2 * i);
            let key = render_scalar(key, ScalarStyle::Plain);
            if i + 1 == missing.len() {
                let rendered = render_scalar(value, ScalarStyle::DoubleQuoted);
                lines.push_str(&format!("{indent}{key}: {rendered}{eol}"));
            } else {
                lines.push_str(&format!("{indent}{key}:{eol}"));
            }
        }
        Ok(format!("{}{lines}{}", &self.text[..at], &self.text[at..]))
    }

    fn prove(
        &self,
        after: &str,
        path: &[&str],
        value: &str,
        dotted: &str,
    ) -> Result<(), ComposeError> {
        let fail = |why: String| {
            ComposeError::general(format!("editing {dotted} {why}; nothing was changed"))
        };
        let before = load_plain(&self.text)
            .map_err(|e| fail(format!("could not read the file back ({e})")))?;
        let after =
            load_plain(after).map_err(|e| fail(format!("would make invalid YAML ({e})")))?;
        let mut expected = before;
        let Some(root) = expected.first_mut() else {
            return Err(fail("found no document".into()));
        };
        if !put(root, path, value) {
            return Err(fail("crosses something that is not a mapping".into()));
        }
        if expected != after {
            return Err(fail("would change something besides it".into()));
        }
        Ok(())
    }
}

/// Sets `path` in `plain` to the string `value`, making mappings as needed.
fn put(plain: &mut Plain, path: &[&str], value: &str) -> bool {
    let Some((first, rest)) = path.split_first() else {
        *plain = Plain::Str(value.to_owned());
        return true;
    };
    if matches!(plain, Plain::Null) {
        *plain = Plain::Map(std::collections::BTreeMap::new());
    }
    let Plain::Map(map) = plain else {
        return false;
    };
    let child = map.entry((*first).to_owned()).or_insert(Plain::Null);
    if rest.is_empty() {
        *child = Plain::Str(value.to_owned());
        true
    } else {
        put(child, rest, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: &str = "# top\nsecret:\n  jwt:\n    anonKey: \"a\"\n    secret: plain-one # keep\n  apikey:\n    jwtKeys: \"\"\n\n    # secretRef: x\nenvironment:\n  auth:\n    - name: GOTRUE_JWT_EXP\n      value: \"3600\"\n    - name: FROM\n      valueFrom:\n        secretKeyRef: {name: s, key: k}\n";

    #[test]
    fn reads_scalars_entries_and_items() {
        let d = YamlDoc::parse(VALUES).unwrap();
        assert_eq!(
            d.scalar(&["secret", "jwt", "secret"]),
            Some(("plain-one".into(), 5))
        );
        assert_eq!(d.scalar(&["secret", "apikey", "jwtKeys"]).unwrap().0, "");
        assert!(d.scalar(&["secret", "nope"]).is_none());
        let e = d.entries(&["secret", "jwt"]);
        assert_eq!(e.len(), 2);
        let items = d.items(&["environment", "auth"]);
        assert_eq!(items[0].get("value"), Some("3600"));
        assert!(items[1].has("valueFrom") && items[1].get("valueFrom").is_none());
    }

    #[test]
    fn replaces_in_place_and_keeps_every_other_byte() {
        let d = YamlDoc::parse(VALUES).unwrap();
        let t = d.set(&["secret", "jwt", "secret"], "new: value").unwrap();
        assert_eq!(t, VALUES.replace("plain-one # keep", "'new: value' # keep"));
        let t = d
            .set(&["secret", "apikey", "jwtKeys"], "[{\"k\":1}]")
            .unwrap();
        assert_eq!(
            t,
            VALUES.replace("jwtKeys: \"\"", "jwtKeys: \"[{\\\"k\\\":1}]\"")
        );
        assert_eq!(
            YamlDoc::parse(&t)
                .unwrap()
                .scalar(&["secret", "apikey", "jwtKeys"])
                .unwrap()
                .0,
            "[{\"k\":1}]"
        );
    }

    #[test]
    fn adds_missing_keys_under_the_deepest_mapping() {
        let d = YamlDoc::parse(VALUES).unwrap();
        let t = d.set(&["secret", "apikey", "secretRef"], "s").unwrap();
        let back = YamlDoc::parse(&t).unwrap();
        assert_eq!(
            back.scalar(&["secret", "apikey", "secretRef"]).unwrap().0,
            "s"
        );
        assert!(t.contains("    jwtKeys: \"\"\n    secretRef: \"s\"\n"));
        let t = d
            .set(&["secret", "apikey", "secretRefKey", "jwtKeys"], "JWT_KEYS")
            .unwrap();
        assert!(t.contains("    secretRefKey:\n      jwtKeys: \"JWT_KEYS\"\n"));
        let t = d.set(&["other", "x"], "1").unwrap();
        assert!(t.ends_with("other:\n  x: \"1\"\n"));
    }

    #[test]
    fn writes_over_a_bare_key_and_a_block_scalar() {
        let d = YamlDoc::parse("a:\n  k:\n  b: x\n").unwrap();
        let t = d.set(&["a", "k"], "v").unwrap();
        assert_eq!(t, "a:\n  k: \"v\"\n  b: x\n");
        let d = YamlDoc::parse("a:\n  k: # note\n  b: x\n").unwrap();
        let t = d.set(&["a", "k"], "v").unwrap();
        assert_eq!(
            YamlDoc::parse(&t).unwrap().scalar(&["a", "k"]).unwrap().0,
            "v"
        );
        assert!(t.contains("# note"));
        let d = YamlDoc::parse("a:\n  k: |\n    old\n    text\n  b: x\n").unwrap();
        let t = d.set(&["a", "k"], "new").unwrap();
        assert_eq!(t, "a:\n  k: \"new\"\n  b: x\n");
        let d = YamlDoc::parse("a:\n  k: >-\n    old\n\n  b: x\n").unwrap();
        let t = d.set(&["a", "k"], "new").unwrap();
        assert_eq!(
            YamlDoc::parse(&t).unwrap().scalar(&["a", "b"]).unwrap().0,
            "x"
        );
        assert_eq!(
            YamlDoc::parse(&t).unwrap().scalar(&["a", "k"]).unwrap().0,
            "new"
        );
    }

    #[test]
    fn refuses_what_it_cannot_write_exactly() {
        let d = YamlDoc::parse(VALUES).unwrap();
        assert!(d.set(&["secret", "jwt"], "x").is_err());
        let flow = YamlDoc::parse("secret: {jwt: {}}\n").unwrap();
        assert!(flow.set(&["secret", "jwt", "secret"], "x").is_err());
    }
}
