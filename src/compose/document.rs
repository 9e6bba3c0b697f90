//! The document: a compose file's exact text next to its position index, and everything
//! that reads it — services and their roles, live and commented-out `environment:` entries,
//! healthcheck tests — through anchors, aliases and `<<` merges.
//!
//! Reading is kept apart from editing ([`super::editor`]) so that what an edit relies on is
//! the same code every reader uses. Nothing here changes the text, prints, or touches the
//! filesystem; errors name lines and keys, never a value read from the file.

use std::collections::HashMap;

use saphyr::{Yaml, YamlLoader};
use saphyr_parser::SpannedEventReceiver;

use super::index::{Kind, NodeId, Tree, line_content_end, line_of, line_start, next_line_start};
use super::verify::Plain;
use super::{ComposeError, EnvLine, Role, Service, role_of_image};

/// A compose file: its exact text and an index of where its nodes are.
#[derive(Debug, Clone)]
pub struct Compose {
    pub(super) text: String,
    pub(super) tree: Tree,
    /// The `services:` mapping.
    pub(super) services: NodeId,
    /// Roles the user assigned by service name (`keyctl.toml`, `--service`): `None` means
    /// "not a Supabase service keyctl handles", whatever the image says.
    pub(super) assigned: Vec<(String, Option<Role>)>,
    /// The text as a plain YAML reader sees it (aliases expanded, merges applied): what an
    /// edit is verified against.
    pub(super) plain: Vec<Plain>,
    /// The services in file order, with their roles ([`Compose::reindex`]).
    pub(super) listed: Vec<Service>,
    /// Each service's (key, value) nodes by name: a service is found in constant time.
    pub(super) by_name: HashMap<String, (NodeId, NodeId)>,
}

/// A live environment entry and where it sits.
pub(super) struct Entry {
    pub(super) value: String,
    pub(super) line: usize,
    /// Map form: the value node. List form: the item node.
    pub(super) node: NodeId,
    /// Map form: the key node.
    pub(super) key_node: Option<NodeId>,
}

/// A commented-out environment entry.
pub(super) struct Commented {
    pub(super) value: String,
    pub(super) line: usize,
    pub(super) line_start: usize,
    /// Byte offset of the `#`.
    pub(super) hash: usize,
}

impl Compose {
    /// Reads a compose file.
    ///
    /// # Errors
    /// Invalid YAML, more than one document, a top level that is not a mapping, or no
    /// `services:` mapping; the error names the line when there is one.
    pub fn parse(text: &str) -> Result<Compose, ComposeError> {
        // docker compose refuses a mapping with a repeated key; so does keyctl, rather than
        // editing one of the two. The loader reads the events of the index's own pass.
        let mut loader: YamlLoader<'_, Yaml<'_>> = YamlLoader::default();
        loader.allow_duplicate_keys(false);
        let tree = Tree::parse_with(text, &mut |event, span| {
            loader.on_event(event, span);
        })?;
        let strict = loader.error().cloned();
        let plain = if strict.is_none() {
            super::verify::plain_of(&loader.into_documents())
        } else {
            Vec::new()
        };
        if let Some(e) = strict {
            let line = e.marker().line();
            let key = text
                .lines()
                .nth(line.saturating_sub(1))
                .and_then(|l| l.trim_start().split(':').next())
                .filter(|k| !k.is_empty() && k.len() < 100 && !k.contains(['"', '\'', '{', '[']))
                .map(|k| format!(" ({k})"))
                .unwrap_or_default();
            return Err(ComposeError::at(line, format!("{}{key}", e.info())));
        }
        let root = tree.resolve(tree.root);
        if !tree.is_map(root) {
            return Err(ComposeError::at(
                tree.nodes[root].line,
                "the top level is not a mapping (a compose file starts with keys such as `services:`)",
            ));
        }
        let Some((key, value)) = tree.get(root, "services") else {
            return Err(ComposeError::general("no `services:` key"));
        };
        let services = tree.resolve(value);
        if !tree.is_map(services) {
            return Err(ComposeError::at(
                tree.nodes[key].line,
                "`services:` is not a mapping of service names",
            ));
        }
        let mut compose = Compose {
            text: text.to_owned(),
            tree,
            services,
            assigned: Vec::new(),
            plain,
            listed: Vec::new(),
            by_name: HashMap::new(),
        };
        compose.reindex();
        Ok(compose)
    }

    /// The first use of a feature that pulls services or settings from another file
    /// (`include:` at the top level, `extends:` in a service), which keyctl does not follow:
    /// `(line, feature)`.
    #[must_use]
    pub fn outside_references(&self) -> Option<(usize, &'static str)> {
        self.text.lines().enumerate().find_map(|(i, line)| {
            if line.starts_with("include:") {
                Some((i + 1, "include:"))
            } else if line.starts_with(' ') && line.trim_start().starts_with("extends:") {
                Some((i + 1, "extends:"))
            } else {
                None
            }
        })
    }

    /// The top-level `name:` (the compose project name), when the file sets one.
    #[must_use]
    pub fn project_name(&self) -> Option<String> {
        self.text.lines().find_map(|l| {
            let v = l.strip_prefix("name:")?.trim();
            let v = v.trim_matches(|c| c == '"' || c == '\'');
            (!v.is_empty()).then(|| v.to_owned())
        })
    }

    /// The document text; for an unedited document, exactly the parsed input.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every service, in file order.
    #[must_use]
    pub fn services(&self) -> &[Service] {
        &self.listed
    }

    /// Lists the services (with their roles, as assigned or as their images say) and indexes
    /// them by name; a later key of the same name wins, as in YAML.
    pub(super) fn reindex(&mut self) {
        let t = &self.tree;
        let mut listed = Vec::new();
        let mut by_name = HashMap::new();
        for (k, v) in t.pairs(self.services) {
            let Some(name) = t.scalar(k) else { continue };
            if name == "<<" {
                continue;
            }
            by_name.insert(name.to_owned(), (k, v));
            let svc = t.resolve(v);
            let image = t
                .get_merged(svc, "image", 0)
                .and_then(|i| t.scalar(i))
                .map(str::to_owned);
            let assigned = self.assigned.iter().rev().find(|(n, _)| n == name);
            listed.push(Service {
                name: name.to_owned(),
                role: match assigned {
                    Some((_, role)) => *role,
                    None => image.as_deref().and_then(role_of_image),
                },
                image,
                line: t.nodes[k].line,
            });
        }
        self.listed = listed;
        self.by_name = by_name;
    }

    /// Says which role a service plays (or `None`: none keyctl handles), overriding what its
    /// image says. Names that are no service are returned, so the caller can report them.
    pub fn assign_roles(&mut self, roles: &[(String, Option<Role>)]) -> Vec<String> {
        let mut unknown = Vec::new();
        for (name, role) in roles {
            if self.by_name.contains_key(name) {
                self.assigned.push((name.clone(), *role));
            } else {
                unknown.push(name.clone());
            }
        }
        self.reindex();
        unknown
    }

    /// The host side of `service`'s bind mounts (`./volumes/api/kong.yml` of
    /// `./volumes/api/kong.yml:/home/kong/temp.yml:ro`, or a long-form `source:`), as written.
    #[must_use]
    pub fn mounts(&self, service: &str) -> Vec<String> {
        let t = &self.tree;
        let Some((_, svc)) = self.service_node(service) else {
            return Vec::new();
        };
        let Some(node) = t.get_merged(t.resolve(svc), "volumes", 0) else {
            return Vec::new();
        };
        let node = t.resolve(node);
        if !matches!(t.nodes[node].kind, Kind::Seq) {
            return Vec::new();
        }
        t.nodes[node]
            .children
            .iter()
            .filter_map(|&c| {
                let c = t.resolve(c);
                match t.nodes[c].kind {
                    Kind::Scalar { .. } => {
                        let v = t.scalar(c)?;
                        let host = v.split(':').next()?;
                        (host.starts_with('.') || host.starts_with('/')).then(|| host.to_owned())
                    }
                    Kind::Map => t
                        .get_merged(c, "source", 0)
                        .and_then(|p| t.scalar(p))
                        .filter(|h| h.starts_with('.') || h.starts_with('/'))
                        .map(str::to_owned),
                    _ => None,
                }
            })
            .collect()
    }

    /// The services whose image plays `role`, in file order.
    #[must_use]
    pub fn with_role(&self, role: Role) -> Vec<Service> {
        self.listed
            .iter()
            .filter(|s| s.role == Some(role))
            .cloned()
            .collect()
    }

    /// The live entry for `key` in `service`'s environment (the last one if repeated),
    /// read through anchors, aliases and `<<` merges.
    #[must_use]
    pub fn env(&self, service: &str, key: &str) -> Option<EnvLine> {
        let (_, svc) = self.service_node(service)?;
        let env = self
            .tree
            .get_merged(self.tree.resolve(svc), "environment", 0)?;
        let e = self.lookup_env(env, key, 0)?;
        Some(EnvLine {
            key: key.to_owned(),
            value: e.value,
            line: e.line,
            commented: false,
        })
    }

    /// The last commented-out entry for `key` inside `service`'s environment block:
    /// `#KEY: value` in a mapping, `#- KEY=value` in a list (`#` directly followed by the
    /// entry, so prose such as `# For Podman, use: KEY: …` does not count).
    #[must_use]
    pub fn commented_env(&self, service: &str, key: &str) -> Option<EnvLine> {
        self.commented_entries(service, key).pop().map(|c| EnvLine {
            key: key.to_owned(),
            value: c.value,
            line: c.line,
            commented: true,
        })
    }

    /// The healthcheck `test` of `service` as one string (a list joined with spaces).
    #[must_use]
    pub fn healthcheck_test(&self, service: &str) -> Option<String> {
        let items = self.healthcheck_items(service)?;
        let values: Vec<&str> = items.iter().filter_map(|&i| self.tree.scalar(i)).collect();
        Some(values.join(" "))
    }

    /// The files `service` reads through `env_file:` (a path, a list of paths, or a list of
    /// `{path, required}` maps), in compose's order: later files win. Paths are as written,
    /// relative to the compose file's directory.
    #[must_use]
    pub fn env_files(&self, service: &str) -> Vec<String> {
        let t = &self.tree;
        let Some((_, svc)) = self.service_node(service) else {
            return Vec::new();
        };
        let Some(node) = t.get_merged(t.resolve(svc), "env_file", 0) else {
            return Vec::new();
        };
        let path_of = |id: NodeId| -> Option<String> {
            let id = t.resolve(id);
            match t.nodes[id].kind {
                Kind::Scalar { .. } => t.scalar(id).map(str::to_owned),
                Kind::Map => t
                    .get_merged(id, "path", 0)
                    .and_then(|p| t.scalar(p))
                    .map(str::to_owned),
                _ => None,
            }
        };
        match t.nodes[node].kind {
            Kind::Seq => t.nodes[node]
                .children
                .iter()
                .filter_map(|&c| path_of(c))
                .collect(),
            _ => path_of(node).into_iter().collect(),
        }
    }

    /// The variable names of `service`'s `environment:` (through merges), in no set order.
    #[must_use]
    pub fn env_keys(&self, service: &str) -> Vec<String> {
        let Some((_, svc)) = self.service_node(service) else {
            return Vec::new();
        };
        let Some(env) = self
            .tree
            .get_merged(self.tree.resolve(svc), "environment", 0)
        else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        self.collect_env_keys(env, 0, &mut keys);
        keys.sort();
        keys.dedup();
        keys
    }

    fn collect_env_keys(&self, env: NodeId, depth: usize, keys: &mut Vec<String>) {
        let t = &self.tree;
        let env = t.resolve(env);
        match t.nodes[env].kind {
            Kind::Map => {
                for (k, _) in t.pairs(env) {
                    if let Some(k) = t.scalar(k).filter(|k| *k != "<<") {
                        keys.push(k.to_owned());
                    }
                }
                if depth < 16 {
                    for m in t.merge_sources(env) {
                        self.collect_env_keys(m, depth + 1, keys);
                    }
                }
            }
            Kind::Seq => {
                for &item in &t.nodes[env].children {
                    if let Some(text) = t.scalar(t.resolve(item)) {
                        keys.push(text.split_once('=').map_or(text, |(k, _)| k).to_owned());
                    }
                }
            }
            _ => {}
        }
    }

    /// The last `services` entry named `service`: (key node, value node).
    pub(super) fn service_node(&self, service: &str) -> Option<(NodeId, NodeId)> {
        self.by_name.get(service).copied()
    }

    /// The live entry for `key` in the environment `env` (the last one if repeated), read
    /// through aliases and `<<` merges.
    pub(super) fn lookup_env(&self, env: NodeId, key: &str, depth: usize) -> Option<Entry> {
        let t = &self.tree;
        let env = t.resolve(env);
        match t.nodes[env].kind {
            Kind::Map => {
                let explicit = t
                    .pairs(env)
                    .filter(|(k, _)| t.scalar(*k) == Some(key))
                    .filter_map(|(k, v)| {
                        let value = t.scalar(t.resolve(v))?;
                        Some(Entry {
                            value: value.to_owned(),
                            line: t.nodes[k].line,
                            node: v,
                            key_node: Some(k),
                        })
                    })
                    .last();
                if explicit.is_some() || depth > 16 {
                    return explicit;
                }
                t.merge_sources(env)
                    .into_iter()
                    .find_map(|m| self.lookup_env(m, key, depth + 1))
            }
            Kind::Seq => t.nodes[env].children.iter().rev().find_map(|&item| {
                let text = t.scalar(t.resolve(item))?;
                let (k, v) = text.split_once('=').unwrap_or((text, ""));
                (k == key).then(|| Entry {
                    value: v.to_owned(),
                    line: t.nodes[item].line,
                    node: item,
                    key_node: None,
                })
            }),
            _ => None,
        }
    }

    /// The scalar items of `service`'s `healthcheck.test` (one for a string test), aliases
    /// resolved.
    pub(super) fn healthcheck_items(&self, service: &str) -> Option<Vec<NodeId>> {
        let t = &self.tree;
        let (_, svc) = self.service_node(service)?;
        let hc = t.get_merged(t.resolve(svc), "healthcheck", 0)?;
        let test = t.get_merged(hc, "test", 0)?;
        match t.nodes[test].kind {
            Kind::Scalar { .. } => Some(vec![test]),
            Kind::Seq => t.nodes[test]
                .children
                .iter()
                .map(|&c| t.scalar(t.resolve(c)).map(|_| t.resolve(c)))
                .collect(),
            _ => None,
        }
    }

    /// Every commented-out entry for `key` in `service`'s own environment block, in file
    /// order.
    pub(super) fn commented_entries(&self, service: &str, key: &str) -> Vec<Commented> {
        let t = &self.tree;
        let text = &self.text;
        let Some((_, svc)) = self.service_node(service) else {
            return Vec::new();
        };
        let Some((env_key, env)) = t.get(svc, "environment") else {
            return Vec::new();
        };
        let node = &t.nodes[env];
        let (map_form, list_form) = match &node.kind {
            _ if node.flow => return Vec::new(),
            Kind::Map => (true, false),
            Kind::Seq => (false, true),
            Kind::Scalar { value, .. } if value.is_empty() => (true, true),
            _ => return Vec::new(),
        };
        let key_start = t.nodes[env_key].start;
        let key_col = key_start - line_start(text, key_start);
        let content_end = if matches!(node.kind, Kind::Scalar { .. }) {
            t.nodes[env_key].end
        } else {
            node.end
        };
        // Lines that continue a multi-line scalar are text, not comments.
        let mut inside = Vec::new();
        t.descendants(env, &mut inside);
        let scalar_spans: Vec<(usize, usize)> = inside
            .iter()
            .map(|&i| &t.nodes[i])
            .filter(|n| matches!(n.kind, Kind::Scalar { .. }))
            .map(|n| (n.start, n.end))
            .collect();
        let mut out = Vec::new();
        let mut pos = next_line_start(text, t.nodes[env_key].end);
        while pos < text.len() {
            let end = line_content_end(text, pos);
            let line = &text[pos..end];
            let body = line.trim_start_matches([' ', '\t']);
            let indent = line.len() - body.len();
            let is_comment = body.starts_with('#');
            if pos >= content_end && !body.is_empty() && (!is_comment || indent <= key_col) {
                break;
            }
            let in_scalar = scalar_spans.iter().any(|&(s, e)| s < pos && pos < e);
            if is_comment
                && indent > key_col
                && !in_scalar
                && let Some(value) = parse_commented(&body[1..], key, map_form, list_form)
            {
                out.push(Commented {
                    value,
                    line: line_of(text, pos),
                    line_start: pos,
                    hash: pos + indent,
                });
            }
            pos = next_line_start(text, pos);
        }
        out
    }
}

/// The value of a commented-out entry for `key`, given the text after its `#`.
fn parse_commented(rest: &str, key: &str, map_form: bool, list_form: bool) -> Option<String> {
    if map_form && rest.strip_prefix(key).is_some_and(|r| r.starts_with(':')) {
        let tree = Tree::parse(rest).ok()?;
        let root = &tree.nodes[tree.root];
        if matches!(root.kind, Kind::Map)
            && root.children.len() == 2
            && tree.scalar(root.children[0]) == Some(key)
        {
            return tree.scalar(root.children[1]).map(str::to_owned);
        }
    }
    if list_form && let Some(item) = rest.strip_prefix('-') {
        let item = item.trim_start_matches(' ').trim_start_matches(['"', '\'']);
        if !item.strip_prefix(key).is_some_and(|r| r.starts_with('=')) {
            return None;
        }
        let tree = Tree::parse(rest).ok()?;
        let root = &tree.nodes[tree.root];
        if matches!(root.kind, Kind::Seq) && root.children.len() == 1 {
            let (k, v) = tree.scalar(root.children[0])?.split_once('=')?;
            return (k == key).then(|| v.to_owned());
        }
    }
    None
}

/// Whether `key` is a variable name keyctl writes: `[A-Za-z_][A-Za-z0-9_]*`.
pub(super) fn is_env_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{line_diff, starts};
    use super::super::{Change, EnvLine};
    use super::*;

    #[test]
    fn env_files_in_every_form_in_order() {
        let c = Compose::parse(
            "services:\n  a:\n    env_file: one.env\n  b:\n    env_file:\n      - one.env\n      - path: two.env\n        required: false\n  c:\n    image: x\n",
        )
        .unwrap();
        assert_eq!(c.env_files("a"), ["one.env"]);
        assert_eq!(c.env_files("b"), ["one.env", "two.env"]);
        assert!(c.env_files("c").is_empty());
        assert!(c.env_files("missing").is_empty());
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = Compose::parse("services:\n  auth:\n    image: [x\n  rest: {}\n").unwrap_err();
        assert!(
            e.line.is_some() && e.message.contains("not valid YAML"),
            "{e}"
        );
        let e = Compose::parse("name: x\n").unwrap_err();
        assert_eq!(e.to_string(), "no `services:` key");
        let e = Compose::parse("name: x\nservices:\n  - a\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = Compose::parse("- a\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        let e = Compose::parse("services: {}\n---\nservices: {}\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(Compose::parse("").is_err());
    }

    #[test]
    fn commented_entries_are_hash_then_key() {
        let text = "services:\n  auth:\n    image: supabase/gotrue\n    environment:\n      A: b\n      # GOTRUE_JWT_KEYS: ${SPACED}\n      # For Podman, use: GOTRUE_JWT_KEYS: ${JWT_KEYS}\n          #GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}  # deeper\n    #GOTRUE_JWT_KEYS: ${OUTSIDE}\n    volumes: []\n";
        let mut c = Compose::parse(text).unwrap();
        let found = c.commented_env("auth", "GOTRUE_JWT_KEYS").unwrap();
        assert_eq!(found.value, "${JWT_KEYS:-[]}");
        assert_eq!(found.line, 8);
        assert!(found.commented);
        assert_eq!(
            c.set_env(
                "auth",
                "GOTRUE_JWT_KEYS",
                "${JWT_KEYS}",
                &starts("${JWT_KEYS")
            )
            .unwrap(),
            Change::Uncommented { line: 8 }
        );
        let (removed, added) = line_diff(text, c.text());
        assert_eq!(
            removed,
            ["          #GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}  # deeper\n"]
        );
        assert_eq!(
            added,
            ["      GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}  # deeper\n"]
        );
        // A commented value that is not right is left alone and a live line is added.
        let mut c = Compose::parse(text).unwrap();
        assert_eq!(
            c.set_env("auth", "GOTRUE_JWT_KEYS", "${JWT_KEYS}", &|v| v
                == "${JWT_KEYS}")
                .unwrap(),
            Change::Added { line: 6 }
        );
    }

    #[test]
    fn env_reads_both_forms_and_the_last_duplicate() {
        let text = "services:\n  a:\n    environment:\n      - X=1\n      - Y\n      - X=2=3\n";
        let c = Compose::parse(text).unwrap();
        assert_eq!(
            c.env("a", "X"),
            Some(EnvLine {
                key: "X".into(),
                value: "2=3".into(),
                line: 6,
                commented: false
            })
        );
        assert_eq!(c.env("a", "Y").unwrap().value, "");
        assert_eq!(c.env("a", "Z"), None);
    }
}
