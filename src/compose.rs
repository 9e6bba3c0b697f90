//! docker-compose files: find the Supabase services by image, read and edit their
//! `environment:` entries, and prove that nothing else changed.
//!
//! A [`Compose`] keeps the text exactly as given (comments, blank lines, quoting, anchors,
//! CRLF, a missing final newline) next to an index of node positions taken from
//! `saphyr-parser` events. Every edit is a narrow splice of that text: one scalar's raw
//! text, the `#` of one commented-out line, or lines inserted after the last entry. After
//! each splice the old and the new text are both read by a plain YAML loader and compared
//! ([`verify_edit`]); if anything other than the intended
//! `services.<svc>.environment.<KEY>` (or `services.<svc>.healthcheck.test`) differs, the
//! edit is refused and the document stays as it was. Comments are invisible to a YAML
//! parser, so commented-out upstream entries (`#GOTRUE_JWT_KEYS: …`) are found by scanning
//! the lines of the service's environment block.
//!
//! This module never touches the filesystem and never prints: it takes text and returns
//! text. Its errors name lines, services and keys, never a value read from the file (a
//! compose file can hold a literal secret).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use saphyr::{Scalar, Yaml, YamlLoader};
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};

// ---------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------

/// The Supabase services keyctl wires keys into, recognised by image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Auth (GoTrue): reads `GOTRUE_JWT_KEYS`.
    Auth,
    /// PostgREST: reads `PGRST_JWT_SECRET`.
    Rest,
    /// Realtime: reads `API_JWT_JWKS`.
    Realtime,
    /// Storage: reads `JWT_JWKS`.
    Storage,
    /// Edge Functions: reads `SUPABASE_JWKS`.
    Functions,
    /// The Kong API gateway: matches API keys.
    Kong,
}

impl Role {
    /// Every role, in the order the table of SPEC §2 lists them.
    pub const ALL: [Role; 6] = [
        Role::Auth,
        Role::Rest,
        Role::Realtime,
        Role::Storage,
        Role::Functions,
        Role::Kong,
    ];

    /// The role's short name: `auth`, `rest`, `realtime`, `storage`, `functions`, `kong`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Auth => "auth",
            Role::Rest => "rest",
            Role::Realtime => "realtime",
            Role::Storage => "storage",
            Role::Functions => "functions",
            Role::Kong => "kong",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role of an image reference (SPEC §2), whatever its registry host, tag or digest.
///
/// auth: the repository contains `gotrue` or is `supabase/auth`; rest: `postgrest`;
/// realtime: `supabase/realtime`; storage: `storage-api`; functions: `edge-runtime`;
/// kong: `kong`. `${…}` interpolations are read as text.
#[must_use]
pub fn role_of_image(image: &str) -> Option<Role> {
    let repo = image_repository(image).to_ascii_lowercase();
    let is = |name: &str| repo == name || repo.ends_with(&format!("/{name}"));
    if repo.contains("gotrue") || is("supabase/auth") {
        Some(Role::Auth)
    } else if repo.contains("postgrest") {
        Some(Role::Rest)
    } else if is("supabase/realtime") {
        Some(Role::Realtime)
    } else if repo.contains("storage-api") {
        Some(Role::Storage)
    } else if repo.contains("edge-runtime") {
        Some(Role::Functions)
    } else if repo.contains("kong") {
        Some(Role::Kong)
    } else {
        None
    }
}

/// The repository of an image reference: no registry host, tag or digest. Separators
/// inside `${…}` do not count.
fn image_repository(image: &str) -> &str {
    let image = image.trim();
    let bytes = image.as_bytes();
    let mut seps: Vec<(usize, u8)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth > 0 => depth -= 1,
            b @ (b'/' | b':' | b'@') if depth == 0 => seps.push((i, b)),
            _ => {}
        }
        i += 1;
    }
    let end = seps
        .iter()
        .find(|(_, b)| *b == b'@')
        .map_or(image.len(), |(i, _)| *i);
    let name_start = seps
        .iter()
        .rev()
        .find(|(i, b)| *b == b'/' && *i < end)
        .map_or(0, |(i, _)| i + 1);
    let end = seps
        .iter()
        .find(|(i, b)| *b == b':' && *i >= name_start && *i < end)
        .map_or(end, |(i, _)| *i);
    let repo = &image[..end];
    if let Some((slash, _)) = seps.iter().find(|(i, b)| *b == b'/' && *i < end) {
        let host = &repo[..*slash];
        if host.contains(['.', ':', '$']) || host == "localhost" {
            return &repo[slash + 1..];
        }
    }
    repo
}

// ---------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------

/// One entry of the top-level `services:` mapping.
#[derive(Debug, Clone)]
pub struct Service {
    /// The service's key.
    pub name: String,
    /// The Supabase role its image says it plays.
    pub role: Option<Role>,
    /// The `image:` value, if it has one.
    pub image: Option<String>,
    /// 1-based line of the service key.
    pub line: usize,
}

/// One environment entry as YAML reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvLine {
    /// The variable name.
    pub key: String,
    /// The value as YAML reads it, quotes removed (e.g. `${JWT_KEYS:-[]}`); empty for
    /// `KEY:` with no value or a list item `- KEY`.
    pub value: String,
    /// 1-based line of the entry.
    pub line: usize,
    /// Whether the entry is a commented-out line (`#KEY: value`).
    pub commented: bool,
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing needed changing; the text is byte-identical.
    Unchanged,
    /// A commented-out entry had its `#` removed; `line` is 1-based.
    Uncommented { line: usize },
    /// An entry (or an `environment:` block holding it) was inserted; `line` is the entry's.
    Added { line: usize },
    /// A value was replaced in place; `line` is the entry's.
    Replaced { line: usize },
}

/// Why a compose file cannot be read or edited, with the line when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct ComposeError {
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// What is wrong; never a value read from the file.
    pub message: String,
}

impl ComposeError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        ComposeError {
            line: Some(line),
            message: message.into(),
        }
    }

    fn general(message: impl Into<String>) -> Self {
        ComposeError {
            line: None,
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Position index built from parser events
// ---------------------------------------------------------------------------------------

type NodeId = usize;

#[derive(Debug, Clone)]
enum Kind {
    Scalar { value: String, style: ScalarStyle },
    Map,
    Seq,
    Alias(usize),
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    /// A `{…}` / `[…]` collection.
    flow: bool,
    /// Map: keys and values alternate. Seq: the items.
    children: Vec<NodeId>,
    /// Byte offset where the node's text starts: a scalar's opening quote, a flow
    /// collection's bracket, a block collection's first child.
    start: usize,
    /// Byte offset just past the node's content (a block scalar's trailing blank lines
    /// and a block collection's trailing comments excluded).
    end: usize,
    /// 1-based line of `start`.
    line: usize,
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
    anchors: HashMap<usize, NodeId>,
    root: NodeId,
}

/// Maps the parser's character indices to byte offsets.
struct CharIndex {
    len: usize,
    bytes: Option<Vec<usize>>,
}

impl CharIndex {
    fn new(text: &str) -> Self {
        let bytes = (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect());
        CharIndex {
            len: text.len(),
            bytes,
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.bytes {
            None => char_index.min(self.len),
            Some(v) => v.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

fn scan_error(e: &ScanError) -> ComposeError {
    ComposeError::at(e.marker().line(), format!("not valid YAML: {}", e.info()))
}

impl Tree {
    fn parse(text: &str) -> Result<Tree, ComposeError> {
        let index = CharIndex::new(text);
        let mut nodes: Vec<Node> = Vec::new();
        let mut anchors = HashMap::new();
        let mut stack: Vec<NodeId> = Vec::new();
        let mut root = None;
        let mut documents = 0;
        let mut parser = Parser::new_from_str(text);
        while let Some(next) = parser.next_event() {
            let (event, span) = next.map_err(|e| scan_error(&e))?;
            let start = index.byte(span.start.index());
            let end = index.byte(span.end.index());
            let line = span.start.line();
            let (node, anchor) = match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(ComposeError::at(
                            line,
                            "a second YAML document; a compose file holds one",
                        ));
                    }
                    continue;
                }
                Event::Scalar(value, style, anchor, tag) => {
                    // The span of a scalar with an anchor or a tag starts at those.
                    let start = if anchor > 0 || tag.is_some() {
                        skip_properties(text, start, end)
                    } else {
                        start
                    };
                    // saphyr-parser's span of a quoted scalar runs on over trailing spaces
                    // and a comment, and a block scalar's over trailing blank lines: end
                    // at the closing quote, or the last non-blank character.
                    let end = match style {
                        ScalarStyle::Literal | ScalarStyle::Folded => {
                            start + text[start..end].trim_end().len()
                        }
                        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                            // Never beyond the parser's own end; edits check the quotes.
                            quoted_end(text, start).filter(|&e| e <= end).unwrap_or(end)
                        }
                        _ => end,
                    };
                    let kind = Kind::Scalar {
                        value: value.into_owned(),
                        style,
                    };
                    (leaf(kind, start, end, line), anchor)
                }
                Event::Alias(id) => (leaf(Kind::Alias(id), start, end, line), 0),
                Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                    let kind = if matches!(event, Event::MappingStart(..)) {
                        Kind::Map
                    } else {
                        Kind::Seq
                    };
                    let raw = text[start..end].trim_end();
                    let flow = raw.ends_with(['{', '[']);
                    let start = if flow { start + raw.len() - 1 } else { start };
                    let mut node = leaf(kind, start, start, line);
                    node.flow = flow;
                    let id = nodes.len();
                    nodes.push(node);
                    if anchor > 0 {
                        anchors.insert(anchor, id);
                    }
                    stack.push(id);
                    continue;
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let Some(id) = stack.pop() else {
                        return Err(ComposeError::at(line, "unbalanced YAML collection"));
                    };
                    let last_end = nodes[id].children.last().map(|&c| nodes[c].end);
                    let node = &mut nodes[id];
                    if node.flow {
                        node.end = end;
                    } else if let Some(e) = last_end {
                        node.end = e;
                    }
                    attach(&mut nodes, &stack, &mut root, id);
                    continue;
                }
                _ => continue,
            };
            let id = nodes.len();
            nodes.push(node);
            if anchor > 0 {
                anchors.insert(anchor, id);
            }
            attach(&mut nodes, &stack, &mut root, id);
        }
        let root = root.ok_or_else(|| ComposeError::general("the file holds no YAML document"))?;
        Ok(Tree {
            nodes,
            anchors,
            root,
        })
    }

    fn resolve(&self, mut id: NodeId) -> NodeId {
        for _ in 0..64 {
            match self.nodes[id].kind {
                Kind::Alias(anchor) => match self.anchors.get(&anchor) {
                    Some(&target) => id = target,
                    None => return id,
                },
                _ => return id,
            }
        }
        id
    }

    fn scalar(&self, id: NodeId) -> Option<&str> {
        match &self.nodes[id].kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    fn is_map(&self, id: NodeId) -> bool {
        matches!(self.nodes[id].kind, Kind::Map)
    }

    fn pairs(&self, map: NodeId) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        let children: &[NodeId] = if self.is_map(map) {
            &self.nodes[map].children
        } else {
            &[]
        };
        children.chunks_exact(2).map(|c| (c[0], c[1]))
    }

    /// The last direct entry of `map` under `key`: (key node, value node).
    fn get(&self, map: NodeId, key: &str) -> Option<(NodeId, NodeId)> {
        self.pairs(map)
            .filter(|(k, _)| self.scalar(*k) == Some(key))
            .last()
    }

    /// The maps a `<<` key of `map` merges in, in priority order.
    fn merge_sources(&self, map: NodeId) -> Vec<NodeId> {
        let Some((_, m)) = self.get(map, "<<") else {
            return Vec::new();
        };
        let m = self.resolve(m);
        match self.nodes[m].kind {
            Kind::Map => vec![m],
            Kind::Seq => self.nodes[m]
                .children
                .iter()
                .map(|&c| self.resolve(c))
                .filter(|&c| self.is_map(c))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The value of `key` in `map`, explicit or through `<<` merges (explicit keys win,
    /// earlier merged maps win), aliases resolved.
    fn get_merged(&self, map: NodeId, key: &str, depth: usize) -> Option<NodeId> {
        if let Some((_, v)) = self.get(map, key) {
            return Some(self.resolve(v));
        }
        if depth > 16 {
            return None;
        }
        self.merge_sources(map)
            .into_iter()
            .find_map(|m| self.get_merged(m, key, depth + 1))
    }

    fn descendants(&self, id: NodeId, out: &mut Vec<NodeId>) {
        out.push(id);
        for &c in &self.nodes[id].children {
            self.descendants(c, out);
        }
    }
}

/// Where a node's content starts after its `&anchor` and `!tag` properties.
fn skip_properties(text: &str, start: usize, end: usize) -> usize {
    let bytes = text.as_bytes();
    let mut pos = start;
    while pos < end && matches!(bytes[pos], b'&' | b'!') {
        while pos < end && !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        while pos < end && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
    }
    pos
}

/// Just past the closing quote of the quoted scalar that opens at `start`.
fn quoted_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let quote = *bytes.get(start).filter(|b| matches!(b, b'\'' | b'"'))?;
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 1,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 1,
            b if b == quote => return Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    None
}

fn leaf(kind: Kind, start: usize, end: usize, line: usize) -> Node {
    Node {
        kind,
        flow: false,
        children: Vec::new(),
        start,
        end,
        line,
    }
}

fn attach(nodes: &mut [Node], stack: &[NodeId], root: &mut Option<NodeId>, id: NodeId) {
    if let Some(&parent) = stack.last() {
        let (start, line) = (nodes[id].start, nodes[id].line);
        let p = &mut nodes[parent];
        if p.children.is_empty() && !p.flow {
            p.start = start;
            p.line = line;
        }
        p.children.push(id);
    } else {
        *root = Some(id);
    }
}

// ---------------------------------------------------------------------------------------
// Line helpers
// ---------------------------------------------------------------------------------------

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// Where the line holding `pos` ends, before its `\n` or `\r\n`.
fn line_content_end(text: &str, pos: usize) -> usize {
    let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    if end > pos && text.as_bytes()[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// Where the line after the one holding `pos` starts (the text's length on the last line).
fn next_line_start(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line ending of the line holding `pos`, else the file's first, else `\n`.
fn eol_at(text: &str, pos: usize) -> &'static str {
    let end = line_content_end(text, pos);
    let rest = &text[end..];
    if rest.starts_with("\r\n") {
        "\r\n"
    } else if rest.starts_with('\n') {
        "\n"
    } else {
        match text.find('\n') {
            Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
            _ => "\n",
        }
    }
}

/// The column of `pos` when only spaces precede it on its line.
fn block_column(text: &str, pos: usize) -> Option<usize> {
    let prefix = &text[line_start(text, pos)..pos];
    prefix.bytes().all(|b| b == b' ').then_some(prefix.len())
}

/// The column of the `-` of a block sequence item that starts at `pos`.
fn dash_column(text: &str, pos: usize) -> Option<usize> {
    let prefix = text[line_start(text, pos)..pos].trim_end_matches(' ');
    let before = prefix.strip_suffix('-')?;
    before.bytes().all(|b| b == b' ').then_some(before.len())
}

fn is_env_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------------------
// Scalar rendering
// ---------------------------------------------------------------------------------------

/// `value` written as a block-context scalar, in `preferred` style when that style reads
/// back as exactly `value`, else single-quoted, else double-quoted (which always does).
fn render_scalar(value: &str, preferred: ScalarStyle) -> String {
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

// ---------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------

/// A compose file: its exact text and an index of where its nodes are.
#[derive(Debug, Clone)]
pub struct Compose {
    text: String,
    tree: Tree,
    services: NodeId,
}

/// A live environment entry and where it sits.
struct Entry {
    value: String,
    line: usize,
    /// Map form: the value node. List form: the item node.
    node: NodeId,
    /// Map form: the key node.
    key_node: Option<NodeId>,
}

/// A commented-out environment entry.
struct Commented {
    value: String,
    line: usize,
    line_start: usize,
    /// Byte offset of the `#`.
    hash: usize,
}

/// One splice of the text.
struct Splice {
    range: Range<usize>,
    text: String,
}

impl Compose {
    /// Reads a compose file.
    ///
    /// # Errors
    /// Invalid YAML, more than one document, a top level that is not a mapping, or no
    /// `services:` mapping; the error names the line when there is one.
    pub fn parse(text: &str) -> Result<Compose, ComposeError> {
        let tree = Tree::parse(text)?;
        // docker compose refuses a mapping with a repeated key; so does keyctl, rather than
        // editing one of the two.
        let mut loader: YamlLoader<'_, Yaml<'_>> = YamlLoader::default();
        loader.allow_duplicate_keys(false);
        let mut parser = Parser::new_from_str(text);
        let strict = parser
            .load(&mut loader, true)
            .err()
            .or_else(|| loader.error().cloned());
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
        Ok(Compose {
            text: text.to_owned(),
            tree,
            services,
        })
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

    /// The document text; for an unedited document, exactly the parsed input.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every service, in file order.
    #[must_use]
    pub fn services(&self) -> Vec<Service> {
        let t = &self.tree;
        t.pairs(self.services)
            .filter_map(|(k, v)| {
                let name = t.scalar(k)?;
                if name == "<<" {
                    return None;
                }
                let svc = t.resolve(v);
                let image = t
                    .get_merged(svc, "image", 0)
                    .and_then(|i| t.scalar(i))
                    .map(str::to_owned);
                Some(Service {
                    name: name.to_owned(),
                    role: image.as_deref().and_then(role_of_image),
                    image,
                    line: t.nodes[k].line,
                })
            })
            .collect()
    }

    /// The services whose image plays `role`, in file order.
    #[must_use]
    pub fn with_role(&self, role: Role) -> Vec<Service> {
        self.services()
            .into_iter()
            .filter(|s| s.role == Some(role))
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

    /// Makes `service`'s environment hold `key`.
    ///
    /// A live entry whose value `is_right` is left alone ([`Change::Unchanged`]); a live
    /// entry that is not has its value replaced by `wanted` in its own quote style when that
    /// style can hold it ([`Change::Replaced`]); else a commented-out entry whose value
    /// `is_right` is uncommented, its text kept ([`Change::Uncommented`]); else
    /// `KEY: wanted` (or `- KEY=wanted`) is appended after the last entry, or an
    /// `environment:` block is added to the service ([`Change::Added`]).
    ///
    /// # Errors
    /// No such service; a service or environment that cannot be edited in place (an alias,
    /// a `<<` merge, a flow collection, a block-scalar value); or an edit that would change
    /// anything else ([`verify_edit`]). The text is unchanged on every error.
    pub fn set_env(
        &mut self,
        service: &str,
        key: &str,
        wanted: &str,
        is_right: &dyn Fn(&str) -> bool,
    ) -> Result<Change, ComposeError> {
        if !is_env_name(key) {
            return Err(ComposeError::general(format!(
                "`{key}` is not a variable name keyctl can write"
            )));
        }
        let Some((svc_key, svc)) = self.service_node(service) else {
            return Err(ComposeError::general(format!("no service `{service}`")));
        };
        if let Some(live) = self.env(service, key)
            && is_right(&live.value)
        {
            return Ok(Change::Unchanged);
        }
        let t = &self.tree;
        let svc_line = t.nodes[svc_key].line;
        let refuse = |line: usize, why: &str| {
            ComposeError::at(
                line,
                format!("cannot set {key} in service `{service}`: {why}; edit it by hand"),
            )
        };
        match t.nodes[svc].kind {
            Kind::Map if t.nodes[svc].flow => return Err(refuse(svc_line, "it is a flow mapping")),
            Kind::Map => {}
            Kind::Alias(_) => return Err(refuse(svc_line, "the service is an alias (*…)")),
            _ => return Err(refuse(svc_line, "the service is not a mapping")),
        }
        let (splice, change, expected) = match t.get(svc, "environment") {
            None => {
                if t.get_merged(svc, "environment", 0).is_some() {
                    return Err(refuse(svc_line, "its environment comes from a `<<` merge"));
                }
                self.plan_new_environment(svc_key, svc, key, wanted)
                    .map_err(|why| refuse(svc_line, &why))?
            }
            Some((env_key, env)) => {
                let env_line = t.nodes[env_key].line;
                let node = &t.nodes[env];
                match &node.kind {
                    Kind::Alias(_) => {
                        return Err(refuse(env_line, "its environment is an alias (*…)"));
                    }
                    Kind::Map | Kind::Seq if node.flow => {
                        return Err(refuse(
                            env_line,
                            "its environment is a flow collection ({…} or […])",
                        ));
                    }
                    Kind::Map if t.get(env, "<<").is_some() => {
                        return Err(refuse(env_line, "its environment holds a `<<` merge"));
                    }
                    Kind::Map | Kind::Seq => {}
                    Kind::Scalar { value, style }
                        if value.is_empty() && *style == ScalarStyle::Plain => {}
                    Kind::Scalar { .. } => {
                        return Err(refuse(
                            env_line,
                            "its environment is neither a mapping nor a list",
                        ));
                    }
                }
                if let Some(live) = self.lookup_env(env, key, 0) {
                    self.plan_replace(&live, key, wanted)
                        .map_err(|why| refuse(live.line, &why))?
                } else if let Some(c) = self
                    .commented_entries(service, key)
                    .into_iter()
                    .rev()
                    .find(|c| is_right(&c.value))
                {
                    self.plan_uncomment(env, &c)
                        .map_err(|why| refuse(c.line, &why))?
                } else {
                    self.plan_append(svc_key, env_key, env, key, wanted)
                        .map_err(|why| refuse(env_line, &why))?
                }
            }
        };
        let line = match &change {
            Change::Uncommented { line } | Change::Added { line } | Change::Replaced { line } => {
                *line
            }
            Change::Unchanged => svc_line,
        };
        let intended = [(service.to_owned(), key.to_owned())];
        self.apply(&[splice], &intended, &[], line, |new| {
            match new.env(service, key) {
                Some(e) if e.value == expected => Ok(()),
                _ => Err(format!(
                    "services.{service}.environment.{key} would not read back as intended"
                )),
            }
        })
        .map_err(|e| ComposeError {
            line: e.line,
            message: format!("cannot set {key} in service `{service}`: {}", e.message),
        })?;
        Ok(change)
    }

    /// The healthcheck `test` of `service` as one string (a list joined with spaces).
    #[must_use]
    pub fn healthcheck_test(&self, service: &str) -> Option<String> {
        let items = self.healthcheck_items(service)?;
        let values: Vec<&str> = items.iter().filter_map(|&i| self.tree.scalar(i)).collect();
        Some(values.join(" "))
    }

    /// Replaces every `from` with `to` inside `service`'s `healthcheck.test`, a narrow edit
    /// of those scalars' text only.
    ///
    /// # Errors
    /// No such service or healthcheck test, a test reached through an alias or merge, a
    /// `from` that the file spells with escapes, or an edit that would change anything but
    /// that test. The text is unchanged on every error.
    pub fn replace_in_healthcheck(
        &mut self,
        service: &str,
        from: &str,
        to: &str,
    ) -> Result<Change, ComposeError> {
        let refuse = |line: Option<usize>, why: &str| {
            Err(ComposeError {
                line,
                message: format!("cannot edit the healthcheck of `{service}`: {why}"),
            })
        };
        if from.is_empty() {
            return refuse(None, "nothing to replace");
        }
        let Some((svc_key, svc)) = self.service_node(service) else {
            return refuse(None, "no such service");
        };
        let svc_line = self.tree.nodes[svc_key].line;
        let Some(items) = self.healthcheck_items(service) else {
            return refuse(Some(svc_line), "it has no healthcheck test");
        };
        let t = &self.tree;
        let old_values: Vec<String> = items
            .iter()
            .filter_map(|&i| t.scalar(i).map(str::to_owned))
            .collect();
        if !old_values.iter().any(|v| v.contains(from)) {
            return Ok(Change::Unchanged);
        }
        // The test must be written in this service's own text, not reached through an alias.
        let direct = t
            .get(svc, "healthcheck")
            .map(|(_, h)| h)
            .filter(|&h| t.is_map(h))
            .and_then(|h| t.get(h, "test"))
            .map(|(_, test)| test);
        let Some(test) = direct else {
            return refuse(
                Some(svc_line),
                "its test comes from an alias or a `<<` merge",
            );
        };
        let direct_items: Vec<NodeId> = match t.nodes[test].kind {
            Kind::Scalar { .. } => vec![test],
            Kind::Seq => t.nodes[test].children.clone(),
            _ => Vec::new(),
        };
        if direct_items != items {
            return refuse(Some(t.nodes[test].line), "its test holds aliases");
        }
        let mut splices = Vec::new();
        let mut first_line = None;
        for &i in &items {
            let node = &t.nodes[i];
            if !t.scalar(i).is_some_and(|v| v.contains(from)) {
                continue;
            }
            let raw = &self.text[node.start..node.end];
            if !raw.contains(from) {
                return refuse(
                    Some(node.line),
                    "the text to replace is written with escapes",
                );
            }
            first_line.get_or_insert(node.line);
            splices.push(Splice {
                range: node.start..node.end,
                text: raw.replace(from, to),
            });
        }
        let line = first_line.unwrap_or(svc_line);
        let expected: Vec<String> = old_values.iter().map(|v| v.replace(from, to)).collect();
        self.apply(&splices, &[], &[service.to_owned()], line, |new| {
            let got: Option<Vec<String>> = new.healthcheck_items(service).map(|items| {
                items
                    .iter()
                    .filter_map(|&i| new.tree.scalar(i).map(str::to_owned))
                    .collect()
            });
            if got.as_ref() == Some(&expected) {
                Ok(())
            } else {
                Err(format!(
                    "services.{service}.healthcheck.test would not read back as intended"
                ))
            }
        })
        .map_err(|e| ComposeError {
            line: e.line,
            message: format!("cannot edit the healthcheck of `{service}`: {}", e.message),
        })?;
        Ok(Change::Replaced { line })
    }

    // -- reading helpers ----------------------------------------------------------------

    /// The last `services` entry named `service`: (key node, value node).
    fn service_node(&self, service: &str) -> Option<(NodeId, NodeId)> {
        self.tree.get(self.services, service)
    }

    fn lookup_env(&self, env: NodeId, key: &str, depth: usize) -> Option<Entry> {
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

    fn healthcheck_items(&self, service: &str) -> Option<Vec<NodeId>> {
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

    fn commented_entries(&self, service: &str, key: &str) -> Vec<Commented> {
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

    // -- edit planning ------------------------------------------------------------------

    fn plan_replace(
        &self,
        live: &Entry,
        key: &str,
        wanted: &str,
    ) -> Result<(Splice, Change, String), String> {
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

    fn plan_uncomment(
        &self,
        env: NodeId,
        c: &Commented,
    ) -> Result<(Splice, Change, String), String> {
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

    fn plan_append(
        &self,
        svc_key: NodeId,
        env_key: NodeId,
        env: NodeId,
        key: &str,
        wanted: &str,
    ) -> Result<(Splice, Change, String), String> {
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

    fn plan_new_environment(
        &self,
        svc_key: NodeId,
        svc: NodeId,
        key: &str,
        wanted: &str,
    ) -> Result<(Splice, Change, String), String> {
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

    /// Applies `splices`, verifies the result and, only if it holds, takes it.
    fn apply(
        &mut self,
        splices: &[Splice],
        intended: &[(String, String)],
        healthcheck_of: &[String],
        line: usize,
        check: impl Fn(&Compose) -> Result<(), String>,
    ) -> Result<(), ComposeError> {
        let mut order: Vec<&Splice> = splices.iter().collect();
        order.sort_by_key(|s| std::cmp::Reverse(s.range.start));
        let mut new = self.text.clone();
        for s in order {
            new.replace_range(s.range.clone(), &s.text);
        }
        let fail = |m: String| ComposeError::at(line, format!("{m}; nothing was changed"));
        verify_edit(&self.text, &new, intended, healthcheck_of).map_err(fail)?;
        let parsed = Compose::parse(&new).map_err(|e| fail(e.to_string()))?;
        check(&parsed).map_err(fail)?;
        *self = parsed;
        Ok(())
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

// ---------------------------------------------------------------------------------------
// Semantic verification
// ---------------------------------------------------------------------------------------

/// A YAML value as a plain reader sees it, aliases expanded and `<<` merges applied.
#[derive(Debug, Clone, PartialEq)]
enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    Float(String),
    Str(String),
    Seq(Vec<Plain>),
    Map(BTreeMap<String, Plain>),
    Tagged(String, Box<Plain>),
    Bad,
}

fn load_plain(text: &str) -> Result<Vec<Plain>, String> {
    let mut loader: YamlLoader<'_, Yaml<'_>> = YamlLoader::default();
    loader.allow_duplicate_keys(true);
    let mut parser = Parser::new_from_str(text);
    let describe = |e: &ScanError| format!("line {}: {}", e.marker().line(), e.info());
    parser.load(&mut loader, true).map_err(|e| describe(&e))?;
    if let Some(e) = loader.error() {
        return Err(describe(e));
    }
    Ok(loader.into_documents().iter().map(to_plain).collect())
}

fn to_plain(y: &Yaml<'_>) -> Plain {
    match y {
        Yaml::Value(s) => scalar_plain(s),
        Yaml::Representation(s, _, _) => Plain::Str(s.to_string()),
        Yaml::Sequence(items) => Plain::Seq(items.iter().map(to_plain).collect()),
        Yaml::Mapping(m) => {
            let mut out = BTreeMap::new();
            let mut merged: BTreeMap<String, Plain> = BTreeMap::new();
            for (k, v) in m {
                if matches!(k, Yaml::Value(Scalar::String(s)) if s == "<<") {
                    let sources: Vec<&Yaml<'_>> = match v {
                        Yaml::Sequence(items) => items.iter().collect(),
                        other => vec![other],
                    };
                    for source in sources {
                        if let Plain::Map(entries) = to_plain(source) {
                            for (mk, mv) in entries {
                                merged.entry(mk).or_insert(mv);
                            }
                        }
                    }
                } else {
                    out.insert(key_text(k), to_plain(v));
                }
            }
            for (k, v) in merged {
                out.entry(k).or_insert(v);
            }
            Plain::Map(out)
        }
        Yaml::Tagged(tag, inner) => Plain::Tagged(tag.to_string(), Box::new(to_plain(inner))),
        Yaml::Alias(_) | Yaml::BadValue => Plain::Bad,
    }
}

fn scalar_plain(s: &Scalar<'_>) -> Plain {
    match s {
        Scalar::Null => Plain::Null,
        Scalar::Boolean(b) => Plain::Bool(*b),
        Scalar::Integer(i) => Plain::Int(*i),
        Scalar::FloatingPoint(f) => Plain::Float(f.to_string()),
        Scalar::String(s) => Plain::Str(s.to_string()),
    }
}

fn key_text(k: &Yaml<'_>) -> String {
    match to_plain(k) {
        Plain::Str(s) => s,
        Plain::Null => "null".to_owned(),
        Plain::Bool(b) => b.to_string(),
        Plain::Int(i) => i.to_string(),
        Plain::Float(f) => f,
        other => format!("{other:?}"),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The first difference between `a` and `b`, as a path; never the values.
fn first_diff(path: &str, a: &Plain, b: &Plain) -> Option<String> {
    let here = if path.is_empty() {
        "the document"
    } else {
        path
    };
    match (a, b) {
        (Plain::Map(x), Plain::Map(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    None => return Some(format!("{} (removed)", join(path, k))),
                    Some(vb) => {
                        if let Some(d) = first_diff(&join(path, k), va, vb) {
                            return Some(d);
                        }
                    }
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{} (added)", join(path, k)))
        }
        (Plain::Seq(x), Plain::Seq(y)) => {
            if x.len() != y.len() {
                return Some(format!(
                    "{here} (a list of {} items became {})",
                    x.len(),
                    y.len()
                ));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (va, vb))| first_diff(&format!("{path}[{i}]"), va, vb))
        }
        _ if a == b => None,
        _ => Some(format!("{here} (changed)")),
    }
}

/// Like [`first_diff`] on two maps, skipping the keys in `skip`.
fn first_diff_except(
    path: &str,
    a: &BTreeMap<String, Plain>,
    b: &BTreeMap<String, Plain>,
    skip: &[&str],
) -> Option<String> {
    let strip = |m: &BTreeMap<String, Plain>| {
        Plain::Map(
            m.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    };
    first_diff(path, &strip(a), &strip(b))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvForm {
    Absent,
    Map,
    List,
}

/// An environment as KEY -> value, for both the map and the list form.
fn env_entries(env: Option<&Plain>) -> Option<(EnvForm, BTreeMap<String, Plain>)> {
    match env {
        None | Some(Plain::Null) => Some((EnvForm::Absent, BTreeMap::new())),
        Some(Plain::Map(m)) => Some((EnvForm::Map, m.clone())),
        Some(Plain::Seq(items)) => {
            let mut out = BTreeMap::new();
            for item in items {
                let Plain::Str(s) = item else {
                    return None;
                };
                match s.split_once('=') {
                    Some((k, v)) => out.insert(k.to_owned(), Plain::Str(v.to_owned())),
                    None => out.insert(s.clone(), Plain::Null),
                };
            }
            Some((EnvForm::List, out))
        }
        Some(_) => None,
    }
}

fn compare_service(
    path: &str,
    a: &Plain,
    b: &Plain,
    env_keys: &[&str],
    healthcheck: bool,
) -> Option<String> {
    let (Plain::Map(x), Plain::Map(y)) = (a, b) else {
        return first_diff(path, a, b);
    };
    let mut skip = Vec::new();
    if !env_keys.is_empty() {
        skip.push("environment");
    }
    if healthcheck {
        skip.push("healthcheck");
    }
    if let Some(d) = first_diff_except(path, x, y, &skip) {
        return Some(d);
    }
    if !env_keys.is_empty() {
        let env_path = join(path, "environment");
        let (ea, eb) = (x.get("environment"), y.get("environment"));
        match (env_entries(ea), env_entries(eb)) {
            (Some((fa, ma)), Some((fb, mb))) => {
                if fa != EnvForm::Absent && fb == EnvForm::Absent {
                    return Some(format!("{env_path} (removed)"));
                }
                if fa != EnvForm::Absent && fa != fb {
                    return Some(format!("{env_path} (changed between a map and a list)"));
                }
                if let Some(d) = first_diff_except(&env_path, &ma, &mb, env_keys) {
                    return Some(d);
                }
            }
            _ => {
                let none = Plain::Null;
                if let Some(d) = first_diff(&env_path, ea.unwrap_or(&none), eb.unwrap_or(&none)) {
                    return Some(d);
                }
            }
        }
    }
    if healthcheck {
        let hc_path = join(path, "healthcheck");
        match (x.get("healthcheck"), y.get("healthcheck")) {
            (Some(Plain::Map(ha)), Some(Plain::Map(hb))) => {
                if let Some(d) = first_diff_except(&hc_path, ha, hb, &["test"]) {
                    return Some(d);
                }
            }
            (ha, hb) => {
                let none = Plain::Null;
                if let Some(d) = first_diff(&hc_path, ha.unwrap_or(&none), hb.unwrap_or(&none)) {
                    return Some(d);
                }
            }
        }
    }
    None
}

/// Reads `old` and `new` with a plain YAML loader and requires them to be equal except at
/// `services.<svc>.environment.<KEY>` for the `intended` (svc, KEY) pairs (an environment is
/// compared as KEY -> value, list items `KEY=value`) and `services.<svc>.healthcheck.test`
/// for the services in `healthcheck_of`. Aliases are expanded and `<<` merges applied
/// before comparing.
///
/// # Errors
/// A description of the first unexpected difference (a path, never a value), or of a text
/// that is not valid YAML.
pub fn verify_edit(
    old: &str,
    new: &str,
    intended: &[(String, String)],
    healthcheck_of: &[String],
) -> Result<(), String> {
    let a = load_plain(old).map_err(|e| format!("the original is not valid YAML ({e})"))?;
    let b = load_plain(new).map_err(|e| format!("the edited text is not valid YAML ({e})"))?;
    if a.len() != b.len() {
        return Err("the number of YAML documents changed".to_owned());
    }
    let unexpected = |d: String| Err(format!("an unexpected change at {d}"));
    for (i, (da, db)) in a.iter().zip(&b).enumerate() {
        let (Plain::Map(ra), Plain::Map(rb), 0) = (da, db, i) else {
            if let Some(d) = first_diff("", da, db) {
                return unexpected(d);
            }
            continue;
        };
        if let Some(d) = first_diff_except("", ra, rb, &["services"]) {
            return unexpected(d);
        }
        let (Some(Plain::Map(sa)), Some(Plain::Map(sb))) = (ra.get("services"), rb.get("services"))
        else {
            let none = Plain::Null;
            let (sa, sb) = (ra.get("services"), rb.get("services"));
            if let Some(d) = first_diff("services", sa.unwrap_or(&none), sb.unwrap_or(&none)) {
                return unexpected(d);
            }
            continue;
        };
        if let Some(name) = sb.keys().find(|k| !sa.contains_key(*k)) {
            return unexpected(format!("services.{name} (added)"));
        }
        for (name, va) in sa {
            let path = format!("services.{name}");
            let Some(vb) = sb.get(name) else {
                return unexpected(format!("{path} (removed)"));
            };
            let env_keys: Vec<&str> = intended
                .iter()
                .filter(|(s, _)| s == name)
                .map(|(_, k)| k.as_str())
                .collect();
            let healthcheck = healthcheck_of.iter().any(|s| s == name);
            if let Some(d) = compare_service(&path, va, vb, &env_keys, healthcheck) {
                return unexpected(d);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/upstream-2026-02/docker-compose.yml"
    ));
    const MIRROR: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/mirror-singh-inder/docker-compose.yml"
    ));
    const DOKPLOY: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/third-party-dokploy/docker-compose.yml"
    ));
    const FIXTURES: [&str; 3] = [UPSTREAM, MIRROR, DOKPLOY];

    fn starts(prefix: &'static str) -> impl Fn(&str) -> bool {
        move |v: &str| v.starts_with(prefix)
    }

    /// Lines removed from `a` and lines added in `b` (terminators kept), by an LCS diff.
    fn line_diff(a: &str, b: &str) -> (Vec<String>, Vec<String>) {
        let x: Vec<&str> = a.split_inclusive('\n').collect();
        let y: Vec<&str> = b.split_inclusive('\n').collect();
        let mut lcs = vec![vec![0usize; y.len() + 1]; x.len() + 1];
        for i in (0..x.len()).rev() {
            for j in (0..y.len()).rev() {
                lcs[i][j] = if x[i] == y[j] {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        while i < x.len() || j < y.len() {
            if i < x.len() && j < y.len() && x[i] == y[j] {
                i += 1;
                j += 1;
            } else if j < y.len() && (i == x.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
                added.push(y[j].to_owned());
                j += 1;
            } else {
                removed.push(x[i].to_owned());
                i += 1;
            }
        }
        (removed, added)
    }

    /// The keyctl wiring of SPEC §2 for one compose file, as (service, key, wanted, prefix).
    fn wiring(c: &Compose) -> Vec<(String, &'static str, &'static str, &'static str)> {
        let mut out = Vec::new();
        let table: [(Role, &str, &str, &str); 9] = [
            (Role::Auth, "GOTRUE_JWT_KEYS", "${JWT_KEYS}", "${JWT_KEYS"),
            (Role::Rest, "PGRST_JWT_SECRET", "${JWT_JWKS}", "${JWT_JWKS"),
            (Role::Realtime, "API_JWT_JWKS", "${JWT_JWKS}", "${JWT_JWKS"),
            (Role::Storage, "JWT_JWKS", "${JWT_JWKS}", "${JWT_JWKS"),
            (
                Role::Functions,
                "SUPABASE_JWKS",
                "${JWT_JWKS}",
                "${JWT_JWKS",
            ),
            (
                Role::Kong,
                "SUPABASE_PUBLISHABLE_KEY",
                "${SUPABASE_PUBLISHABLE_KEY}",
                "${SUPABASE_PUBLISHABLE_KEY",
            ),
            (
                Role::Kong,
                "SUPABASE_SECRET_KEY",
                "${SUPABASE_SECRET_KEY}",
                "${SUPABASE_SECRET_KEY",
            ),
            (
                Role::Kong,
                "ANON_KEY_ASYMMETRIC",
                "${ANON_KEY_ASYMMETRIC}",
                "${ANON_KEY_ASYMMETRIC",
            ),
            (
                Role::Kong,
                "SERVICE_ROLE_KEY_ASYMMETRIC",
                "${SERVICE_ROLE_KEY_ASYMMETRIC}",
                "${SERVICE_ROLE_KEY_ASYMMETRIC",
            ),
        ];
        for (role, key, wanted, prefix) in table {
            for s in c.with_role(role) {
                out.push((s.name, key, wanted, prefix));
            }
        }
        out
    }

    /// Applies the whole wiring; returns (service, key, change) in table order.
    fn wire(c: &mut Compose) -> Vec<(String, &'static str, Change)> {
        wiring(c)
            .into_iter()
            .map(|(svc, key, wanted, prefix)| {
                let change = c.set_env(&svc, key, wanted, &starts(prefix)).unwrap();
                // The reported line is where the entry is now.
                let env = c.env(&svc, key).unwrap();
                if let Change::Added { line }
                | Change::Replaced { line }
                | Change::Uncommented { line } = change
                {
                    assert_eq!(line, env.line, "{svc} {key}");
                }
                assert!(env.value.starts_with(prefix));
                (svc, key, change)
            })
            .collect()
    }

    fn kind_of(change: &Change) -> &'static str {
        match change {
            Change::Unchanged => "unchanged",
            Change::Uncommented { .. } => "uncommented",
            Change::Added { .. } => "added",
            Change::Replaced { .. } => "replaced",
        }
    }

    fn crlf(text: &str) -> String {
        text.replace('\n', "\r\n")
    }

    #[test]
    fn parse_then_text_is_identity() {
        for text in FIXTURES {
            for variant in [
                text.to_owned(),
                crlf(text),
                text.trim_end_matches('\n').to_owned(),
                crlf(text.trim_end_matches('\n')),
            ] {
                assert_eq!(Compose::parse(&variant).unwrap().text(), variant);
            }
        }
    }

    #[test]
    fn roles_are_found_by_image() {
        let expect = [
            (UPSTREAM, "kong:2.8.1"),
            (MIRROR, "kong/kong:3.9.1"),
            (DOKPLOY, "kong/kong:3.9.1"),
        ];
        for (text, kong_image) in expect {
            let c = Compose::parse(text).unwrap();
            for (role, name) in [
                (Role::Auth, "auth"),
                (Role::Rest, "rest"),
                (Role::Realtime, "realtime"),
                (Role::Storage, "storage"),
                (Role::Functions, "functions"),
                (Role::Kong, "kong"),
            ] {
                let found = c.with_role(role);
                assert_eq!(found.len(), 1, "{role}");
                assert_eq!(found[0].name, name);
                assert_eq!(role.as_str(), name);
            }
            let kong = &c.with_role(Role::Kong)[0];
            assert_eq!(kong.image.as_deref(), Some(kong_image));
            for s in c.services() {
                if [
                    "studio",
                    "db",
                    "meta",
                    "imgproxy",
                    "analytics",
                    "vector",
                    "supavisor",
                ]
                .contains(&s.name.as_str())
                {
                    assert_eq!(s.role, None, "{}", s.name);
                }
            }
        }
        let c = Compose::parse(UPSTREAM).unwrap();
        let names: Vec<String> = c.services().into_iter().map(|s| s.name).collect();
        assert_eq!(names[..3], ["studio", "kong", "auth"]);
        assert_eq!(c.services()[0].line, 12);
        assert_eq!(Role::ALL.len(), 6);
    }

    #[test]
    fn role_of_image_ignores_host_tag_and_digest() {
        assert_eq!(
            role_of_image("public.ecr.aws/supabase/gotrue:v2.186.0"),
            Some(Role::Auth)
        );
        assert_eq!(role_of_image("supabase/auth:latest"), Some(Role::Auth));
        assert_eq!(role_of_image("supabase/auth"), Some(Role::Auth));
        assert_eq!(
            role_of_image("supabase/gotrue:${AUTH_TAG:-v2}"),
            Some(Role::Auth)
        );
        assert_eq!(
            role_of_image("supabase/auth:${AUTH_TAG:-v2/x}"),
            Some(Role::Auth)
        );
        assert_eq!(
            role_of_image("${REGISTRY:-docker.io}/supabase/realtime:v2"),
            Some(Role::Realtime)
        );
        assert_eq!(
            role_of_image("localhost:5000/supabase/realtime@sha256:abcd"),
            Some(Role::Realtime)
        );
        assert_eq!(role_of_image("postgrest/postgrest:v14.5"), Some(Role::Rest));
        assert_eq!(
            role_of_image("supabase/storage-api:v1.44.2"),
            Some(Role::Storage)
        );
        assert_eq!(
            role_of_image("supabase/edge-runtime:v1.70.3"),
            Some(Role::Functions)
        );
        assert_eq!(role_of_image("kong:2.8.1"), Some(Role::Kong));
        assert_eq!(role_of_image("supabase/postgres:15.8.1.085"), None);
        assert_eq!(role_of_image("supabase/postgres-meta:v0.95.2"), None);
        assert_eq!(role_of_image("supabase/studio:2026.02.16"), None);
        assert_eq!(role_of_image("someone/realtime:v1"), None);
        assert_eq!(role_of_image("supabase/authz:v1"), None);
    }

    #[test]
    fn upstream_gets_every_line_added_and_a_second_run_changes_nothing() {
        let mut c = Compose::parse(UPSTREAM).unwrap();
        let changes = wire(&mut c);
        let kinds: Vec<(String, &str, &str)> = changes
            .iter()
            .map(|(s, k, ch)| (s.clone(), *k, kind_of(ch)))
            .collect();
        let expected = [
            ("auth", "GOTRUE_JWT_KEYS", "added"),
            ("rest", "PGRST_JWT_SECRET", "replaced"),
            ("realtime", "API_JWT_JWKS", "added"),
            ("storage", "JWT_JWKS", "added"),
            ("functions", "SUPABASE_JWKS", "added"),
            ("kong", "SUPABASE_PUBLISHABLE_KEY", "added"),
            ("kong", "SUPABASE_SECRET_KEY", "added"),
            ("kong", "ANON_KEY_ASYMMETRIC", "added"),
            ("kong", "SERVICE_ROLE_KEY_ASYMMETRIC", "added"),
        ];
        let expected: Vec<(String, &str, &str)> = expected
            .iter()
            .map(|(s, k, ch)| ((*s).to_owned(), *k, *ch))
            .collect();
        assert_eq!(kinds, expected);

        let (removed, added) = line_diff(UPSTREAM, c.text());
        assert_eq!(removed, ["      PGRST_JWT_SECRET: ${JWT_SECRET}\n"]);
        assert_eq!(
            added,
            [
                "      SUPABASE_PUBLISHABLE_KEY: ${SUPABASE_PUBLISHABLE_KEY}\n",
                "      SUPABASE_SECRET_KEY: ${SUPABASE_SECRET_KEY}\n",
                "      ANON_KEY_ASYMMETRIC: ${ANON_KEY_ASYMMETRIC}\n",
                "      SERVICE_ROLE_KEY_ASYMMETRIC: ${SERVICE_ROLE_KEY_ASYMMETRIC}\n",
                "      GOTRUE_JWT_KEYS: ${JWT_KEYS}\n",
                "      PGRST_JWT_SECRET: ${JWT_JWKS}\n",
                "      API_JWT_JWKS: ${JWT_JWKS}\n",
                "      JWT_JWKS: ${JWT_JWKS}\n",
                "      SUPABASE_JWKS: ${JWT_JWKS}\n",
            ]
        );
        // Each line went in after the last live entry of its service.
        let after = |entry: &str| {
            let i = c.text().find(entry).unwrap();
            let before = &c.text()[..i];
            before.lines().last().unwrap().trim().to_owned()
        };
        assert_eq!(
            after("      GOTRUE_JWT_KEYS"),
            "GOTRUE_SMS_AUTOCONFIRM: ${ENABLE_PHONE_AUTOCONFIRM}"
        );
        assert_eq!(
            after("      API_JWT_JWKS"),
            "DISABLE_HEALTHCHECK_LOGGING: \"true\""
        );
        assert_eq!(
            after("      SUPABASE_JWKS"),
            "VERIFY_JWT: \"${FUNCTIONS_VERIFY_JWT}\""
        );
        assert_eq!(
            c.env("rest", "PGRST_JWT_SECRET").unwrap().value,
            "${JWT_JWKS}"
        );

        let first = c.text().to_owned();
        let again = wire(&mut c);
        assert!(again.iter().all(|(_, _, ch)| *ch == Change::Unchanged));
        assert_eq!(c.text(), first);
    }

    #[test]
    fn crlf_file_gets_the_same_edits_with_crlf_lines() {
        let mut lf = Compose::parse(UPSTREAM).unwrap();
        wire(&mut lf);
        let mut c = Compose::parse(&crlf(UPSTREAM)).unwrap();
        wire(&mut c);
        assert_eq!(c.text(), crlf(lf.text()));
    }

    #[test]
    fn mirror_uncomments_upstream_lines_and_keeps_the_rest() {
        let mut c = Compose::parse(MIRROR).unwrap();
        assert_eq!(
            c.commented_env("auth", "GOTRUE_JWT_KEYS").unwrap().value,
            "${JWT_KEYS:-[]}"
        );
        assert!(c.env("auth", "GOTRUE_JWT_KEYS").is_none());
        // Prose comments that mention a key are not entries.
        assert!(c.commented_env("rest", "PGRST_JWT_SECRET").is_none());
        let changes = wire(&mut c);
        let kinds: Vec<(&str, &str)> = changes.iter().map(|(_, k, ch)| (*k, kind_of(ch))).collect();
        assert_eq!(
            kinds,
            [
                ("GOTRUE_JWT_KEYS", "uncommented"),
                ("PGRST_JWT_SECRET", "unchanged"),
                ("API_JWT_JWKS", "uncommented"),
                ("JWT_JWKS", "uncommented"),
                ("SUPABASE_JWKS", "uncommented"),
                ("SUPABASE_PUBLISHABLE_KEY", "unchanged"),
                ("SUPABASE_SECRET_KEY", "unchanged"),
                ("ANON_KEY_ASYMMETRIC", "unchanged"),
                ("SERVICE_ROLE_KEY_ASYMMETRIC", "unchanged"),
            ]
        );
        let (removed, added) = line_diff(MIRROR, c.text());
        assert_eq!(
            removed,
            [
                "      #GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}\n",
                "      #API_JWT_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
                "      #JWT_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
                "      #SUPABASE_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
            ]
        );
        assert_eq!(
            added,
            [
                "      GOTRUE_JWT_KEYS: ${JWT_KEYS:-[]}\n",
                "      API_JWT_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
                "      JWT_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
                "      SUPABASE_JWKS: ${JWT_JWKS:-{\"keys\":[]}}\n",
            ]
        );
        assert!(c.text().contains(
            "      # For Podman, use: GOTRUE_JWT_KEYS: ${JWT_KEYS}\n      GOTRUE_JWT_KEYS"
        ));
        assert_eq!(
            c.env("realtime", "API_JWT_JWKS").unwrap().value,
            "${JWT_JWKS:-{\"keys\":[]}}"
        );
        assert_eq!(
            c.env("rest", "PGRST_JWT_SECRET").unwrap().value,
            "${JWT_JWKS:-${JWT_SECRET}}"
        );
        let first = c.text().to_owned();
        assert!(
            wire(&mut c)
                .iter()
                .all(|(_, _, ch)| *ch == Change::Unchanged)
        );
        assert_eq!(c.text(), first);
    }

    #[test]
    fn dokploy_keeps_what_is_there_and_adds_the_rest() {
        let mut c = Compose::parse(DOKPLOY).unwrap();
        let kinds: Vec<(&str, &str)> = wire(&mut c)
            .iter()
            .map(|(_, k, ch)| (*k, kind_of(ch)))
            .collect();
        assert_eq!(
            kinds,
            [
                ("GOTRUE_JWT_KEYS", "unchanged"),
                ("PGRST_JWT_SECRET", "replaced"),
                ("API_JWT_JWKS", "added"),
                ("JWT_JWKS", "added"),
                ("SUPABASE_JWKS", "added"),
                ("SUPABASE_PUBLISHABLE_KEY", "unchanged"),
                ("SUPABASE_SECRET_KEY", "unchanged"),
                ("ANON_KEY_ASYMMETRIC", "unchanged"),
                ("SERVICE_ROLE_KEY_ASYMMETRIC", "unchanged"),
            ]
        );
        let (removed, added) = line_diff(DOKPLOY, c.text());
        assert_eq!(removed.len(), 1);
        assert_eq!(added.len(), 4);
    }

    /// Rewrites `service`'s map-form environment as a list, values kept: `KEY: v` becomes
    /// `- KEY=v` (quoted values keep their quotes around the whole item), `#KEY: v` becomes
    /// `#- KEY=v`.
    fn to_list_form(text: &str, service: &str) -> String {
        fn item(entry: &str) -> Option<String> {
            let (k, v) = entry.split_once(": ")?;
            if !is_env_name(k) {
                return None;
            }
            Some(
                if let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                    format!("- \"{k}={inner}\"")
                } else if let Some(inner) = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))
                {
                    format!("- '{k}={inner}'")
                } else {
                    format!("- {k}={v}")
                },
            )
        }
        let (mut in_service, mut in_env) = (false, false);
        let mut out = String::new();
        for line in text.split_inclusive('\n') {
            let body = line.trim_end_matches(['\n', '\r']);
            let eol = &line[body.len()..];
            let trimmed = body.trim_start();
            let indent = body.len() - trimmed.len();
            let structural = !trimmed.is_empty() && !trimmed.starts_with('#');
            if structural && indent == 2 {
                in_service = trimmed == format!("{service}:");
                in_env = false;
            } else if structural && indent == 4 {
                in_env = in_service && trimmed == "environment:";
            } else if in_env && indent == 6 {
                let converted = match trimmed.strip_prefix('#') {
                    Some(rest) => item(rest).map(|i| format!("#{i}")),
                    None => item(trimmed),
                };
                if let Some(c) = converted {
                    out.push_str(&format!("      {c}{eol}"));
                    continue;
                }
            }
            out.push_str(line);
        }
        out
    }

    #[test]
    fn list_form_environment_supports_add_replace_and_uncomment() {
        let mut text = to_list_form(UPSTREAM, "rest");
        text = to_list_form(&text, "realtime");
        let mirror = to_list_form(MIRROR, "auth");
        assert!(text.contains("      - PGRST_JWT_SECRET=${JWT_SECRET}\n"));
        assert!(text.contains("      - \"PGRST_DB_USE_LEGACY_GUCS=false\"\n"));
        assert!(mirror.contains("      #- GOTRUE_JWT_KEYS=${JWT_KEYS:-[]}\n"));

        // Same values read from both forms.
        let map = Compose::parse(UPSTREAM).unwrap();
        let mut c = Compose::parse(&text).unwrap();
        for key in [
            "PGRST_JWT_SECRET",
            "PGRST_DB_USE_LEGACY_GUCS",
            "PGRST_DB_URI",
        ] {
            assert_eq!(
                c.env("rest", key).unwrap().value,
                map.env("rest", key).unwrap().value
            );
        }
        assert!(verify_edit(UPSTREAM, &text, &[], &[]).is_err());

        let replaced = c
            .set_env(
                "rest",
                "PGRST_JWT_SECRET",
                "${JWT_JWKS}",
                &starts("${JWT_JWKS"),
            )
            .unwrap();
        assert!(matches!(replaced, Change::Replaced { .. }));
        let added = c
            .set_env(
                "realtime",
                "API_JWT_JWKS",
                "${JWT_JWKS}",
                &starts("${JWT_JWKS"),
            )
            .unwrap();
        assert!(matches!(added, Change::Added { .. }));
        let (removed, new_lines) = line_diff(&text, c.text());
        assert_eq!(removed, ["      - PGRST_JWT_SECRET=${JWT_SECRET}\n"]);
        assert_eq!(
            new_lines,
            [
                "      - PGRST_JWT_SECRET=${JWT_JWKS}\n",
                "      - API_JWT_JWKS=${JWT_JWKS}\n"
            ]
        );

        let mut m = Compose::parse(&mirror).unwrap();
        assert_eq!(
            m.commented_env("auth", "GOTRUE_JWT_KEYS").unwrap().value,
            "${JWT_KEYS:-[]}"
        );
        let change = m
            .set_env(
                "auth",
                "GOTRUE_JWT_KEYS",
                "${JWT_KEYS}",
                &starts("${JWT_KEYS"),
            )
            .unwrap();
        assert!(matches!(change, Change::Uncommented { .. }));
        let (removed, new_lines) = line_diff(&mirror, m.text());
        assert_eq!(removed, ["      #- GOTRUE_JWT_KEYS=${JWT_KEYS:-[]}\n"]);
        assert_eq!(new_lines, ["      - GOTRUE_JWT_KEYS=${JWT_KEYS:-[]}\n"]);
        assert_eq!(
            m.set_env(
                "auth",
                "GOTRUE_JWT_KEYS",
                "${JWT_KEYS}",
                &starts("${JWT_KEYS")
            )
            .unwrap(),
            Change::Unchanged
        );
    }

    const SMALL: &str = "services:\n  rest:\n    image: postgrest/postgrest:v12\n    environment:\n      PGRST_JWT_SECRET: \"${JWT_SECRET}\"   # kept\n      OTHER: '${JWT_SECRET}'\n      EMPTY:\n    command: postgrest\n";

    #[test]
    fn replace_keeps_the_quote_style() {
        let mut c = Compose::parse(SMALL).unwrap();
        c.set_env(
            "rest",
            "PGRST_JWT_SECRET",
            "${JWT_JWKS}",
            &starts("${JWT_JWKS"),
        )
        .unwrap();
        c.set_env("rest", "OTHER", "${JWT_JWKS}", &starts("${JWT_JWKS"))
            .unwrap();
        c.set_env("rest", "EMPTY", "${JWT_JWKS}", &starts("${JWT_JWKS"))
            .unwrap();
        assert_eq!(
            c.text(),
            "services:\n  rest:\n    image: postgrest/postgrest:v12\n    environment:\n      PGRST_JWT_SECRET: \"${JWT_JWKS}\"   # kept\n      OTHER: '${JWT_JWKS}'\n      EMPTY: ${JWT_JWKS}\n    command: postgrest\n"
        );
        // Values that need escaping are escaped for the style, or change style.
        let tricky = "it's \"q\" \\ #x";
        c.set_env("rest", "PGRST_JWT_SECRET", tricky, &|v| v == tricky)
            .unwrap();
        c.set_env("rest", "OTHER", tricky, &|v| v == tricky)
            .unwrap();
        assert!(
            c.text()
                .contains("PGRST_JWT_SECRET: \"it's \\\"q\\\" \\\\ #x\"   # kept\n")
        );
        assert!(c.text().contains("OTHER: 'it''s \"q\" \\ #x'\n"));
        assert_eq!(c.env("rest", "OTHER").unwrap().value, tricky);
        let line = "a\nb";
        c.set_env("rest", "OTHER", line, &|v| v == line).unwrap();
        assert!(c.text().contains("OTHER: \"a\\nb\"\n"));
        // A plain value that YAML would read as a number is quoted.
        c.set_env("rest", "EMPTY", "123", &|v| v == "123").unwrap();
        assert!(c.text().contains("EMPTY: '123'\n"));
        c.set_env("rest", "EMPTY", "on", &|v| v == "on").unwrap();
        assert!(c.text().contains("EMPTY: 'on'\n"));

        let list = "services:\n  rest:\n    image: postgrest/postgrest\n    environment:\n      - \"PGRST_JWT_SECRET=${JWT_SECRET}\"\n      - 'B=${X}'\n";
        let mut c = Compose::parse(list).unwrap();
        c.set_env(
            "rest",
            "PGRST_JWT_SECRET",
            "${JWT_JWKS}",
            &starts("${JWT_JWKS"),
        )
        .unwrap();
        c.set_env("rest", "B", "${Y}", &starts("${Y")).unwrap();
        assert_eq!(
            c.text(),
            "services:\n  rest:\n    image: postgrest/postgrest\n    environment:\n      - \"PGRST_JWT_SECRET=${JWT_JWKS}\"\n      - 'B=${Y}'\n"
        );
    }

    #[test]
    fn adds_an_environment_block_and_keeps_a_missing_final_newline() {
        let text = "services:\n  functions:\n    image: supabase/edge-runtime:v1\n    command:\n      - start\n  db:\n    image: supabase/postgres\n    environment:\n      A: b";
        let mut c = Compose::parse(text).unwrap();
        assert_eq!(
            c.set_env(
                "functions",
                "SUPABASE_JWKS",
                "${JWT_JWKS}",
                &starts("${JWT_JWKS")
            )
            .unwrap(),
            Change::Added { line: 7 }
        );
        assert_eq!(
            c.set_env("db", "JWT_JWKS", "${JWT_JWKS}", &starts("${JWT_JWKS"))
                .unwrap(),
            Change::Added { line: 12 }
        );
        assert_eq!(
            c.text(),
            "services:\n  functions:\n    image: supabase/edge-runtime:v1\n    command:\n      - start\n    environment:\n      SUPABASE_JWKS: ${JWT_JWKS}\n  db:\n    image: supabase/postgres\n    environment:\n      A: b\n      JWT_JWKS: ${JWT_JWKS}"
        );
        // An empty `environment:` gets its first entry, CRLF kept.
        let text = "services:\r\n  auth:\r\n    image: supabase/gotrue\r\n    environment:\r\n    restart: always\r\n";
        let mut c = Compose::parse(text).unwrap();
        c.set_env(
            "auth",
            "GOTRUE_JWT_KEYS",
            "${JWT_KEYS}",
            &starts("${JWT_KEYS"),
        )
        .unwrap();
        assert_eq!(
            c.text(),
            "services:\r\n  auth:\r\n    image: supabase/gotrue\r\n    environment:\r\n      GOTRUE_JWT_KEYS: ${JWT_KEYS}\r\n    restart: always\r\n"
        );
    }

    #[test]
    fn refuses_environments_it_cannot_edit_in_place() {
        let cases = [
            (
                "flow map",
                "services:\n  auth:\n    image: supabase/gotrue\n    environment: {A: b}\n",
                "flow collection",
            ),
            (
                "flow list",
                "services:\n  auth:\n    image: supabase/gotrue\n    environment: [A=b]\n",
                "flow collection",
            ),
            (
                "alias",
                "x-env: &common\n  A: b\nservices:\n  auth:\n    image: supabase/gotrue\n    environment: *common\n",
                "is an alias",
            ),
            (
                "merge inside",
                "x-env: &common\n  A: b\nservices:\n  auth:\n    image: supabase/gotrue\n    environment:\n      <<: *common\n      C: d\n",
                "holds a `<<` merge",
            ),
            (
                "merged service",
                "x-svc: &svc\n  environment:\n    A: b\nservices:\n  auth:\n    <<: *svc\n    image: supabase/gotrue\n",
                "comes from a `<<` merge",
            ),
            (
                "shared anchor",
                "services:\n  auth:\n    image: supabase/gotrue\n    environment: &env\n      A: b\n  other:\n    image: x\n    environment: *env\n",
                "services.other.environment.GOTRUE_JWT_KEYS",
            ),
            (
                "block scalar",
                "services:\n  auth:\n    image: supabase/gotrue\n    environment:\n      GOTRUE_JWT_KEYS: |\n        old\n",
                "block scalar",
            ),
        ];
        for (what, text, why) in cases {
            let mut c = Compose::parse(text).unwrap();
            let err = c
                .set_env(
                    "auth",
                    "GOTRUE_JWT_KEYS",
                    "${JWT_KEYS}",
                    &starts("${JWT_KEYS"),
                )
                .unwrap_err();
            assert!(err.line.is_some(), "{what}: {err}");
            assert!(err.message.contains(why), "{what}: {err}");
            assert_eq!(c.text(), text, "{what}");
        }
        // Nothing to change is fine even where editing is not.
        let text = "services:\n  auth:\n    image: supabase/gotrue\n    environment: {GOTRUE_JWT_KEYS: '${JWT_KEYS}'}\n";
        let mut c = Compose::parse(text).unwrap();
        assert_eq!(
            c.set_env(
                "auth",
                "GOTRUE_JWT_KEYS",
                "${JWT_KEYS}",
                &starts("${JWT_KEYS")
            )
            .unwrap(),
            Change::Unchanged
        );
        let mut c = Compose::parse(UPSTREAM).unwrap();
        assert!(c.set_env("nope", "A", "b", &|_| false).is_err());
        assert!(c.set_env("auth", "A B", "b", &|_| false).is_err());
        assert_eq!(c.text(), UPSTREAM);
    }

    #[test]
    fn anchors_elsewhere_do_not_stop_an_edit() {
        let text = "x-common: &common\n  restart: unless-stopped\n  environment:\n    SHARED: x\nservices:\n  auth:\n    <<: *common\n    image: supabase/gotrue\n    environment:\n      A: b\n  other:\n    <<: *common\n    image: supabase/studio\n";
        let mut c = Compose::parse(text).unwrap();
        assert_eq!(c.env("other", "SHARED").unwrap().value, "x");
        assert!(c.env("auth", "SHARED").is_none());
        let change = c
            .set_env(
                "auth",
                "GOTRUE_JWT_KEYS",
                "${JWT_KEYS}",
                &starts("${JWT_KEYS"),
            )
            .unwrap();
        assert_eq!(change, Change::Added { line: 11 });
        assert!(
            c.text()
                .contains("      A: b\n      GOTRUE_JWT_KEYS: ${JWT_KEYS}\n  other:")
        );
    }

    #[test]
    fn verify_edit_catches_unintended_changes() {
        let intended = [("rest".to_owned(), "PGRST_JWT_SECRET".to_owned())];
        // The first PGRST_JWT_SECRET is rest's; storage has one too.
        let good = UPSTREAM.replacen(
            "      PGRST_JWT_SECRET: ${JWT_SECRET}\n",
            "      PGRST_JWT_SECRET: ${JWT_JWKS}\n",
            1,
        );
        assert_eq!(verify_edit(UPSTREAM, &good, &intended, &[]), Ok(()));
        assert!(verify_edit(UPSTREAM, &good, &[], &[]).is_err());
        // Formatting and comments are invisible to the check.
        let reformatted = good.replace("# Usage\n", "# usage\n");
        assert_eq!(verify_edit(UPSTREAM, &reformatted, &intended, &[]), Ok(()));

        let bad = good.replace(
            "      PGRST_APP_SETTINGS_JWT_SECRET: ${JWT_SECRET}\n",
            "      PGRST_APP_SETTINGS_JWT_SECRET: ${JWT_JWKS}\n",
        );
        let err = verify_edit(UPSTREAM, &bad, &intended, &[]).unwrap_err();
        assert!(
            err.contains("services.rest.environment.PGRST_APP_SETTINGS_JWT_SECRET"),
            "{err}"
        );
        assert!(!err.contains("JWT_JWKS}"), "values never appear: {err}");
        let bad = good.replace("    image: kong:2.8.1\n", "    image: kong:3\n");
        let err = verify_edit(UPSTREAM, &bad, &intended, &[]).unwrap_err();
        assert!(err.contains("services.kong.image"), "{err}");
        let err = verify_edit(UPSTREAM, "services: [", &intended, &[]).unwrap_err();
        assert!(err.contains("not valid YAML"), "{err}");
        // A change seen through a `<<` merge is caught where it lands.
        let old = "x: &a\n  K: 1\nservices:\n  s:\n    environment:\n      <<: *a\n";
        let new = "x: &a\n  K: 2\nservices:\n  s:\n    environment:\n      <<: *a\n";
        let intended = [("s".to_owned(), "K".to_owned())];
        let err = verify_edit(old, new, &intended, &[]).unwrap_err();
        assert!(err.starts_with("an unexpected change at x.K"), "{err}");
    }

    #[test]
    fn realtime_healthcheck_edit_changes_one_line() {
        for text in [UPSTREAM, MIRROR] {
            let mut c = Compose::parse(text).unwrap();
            let before = c.healthcheck_test("realtime").unwrap();
            assert!(before.starts_with("CMD-SHELL curl -sSfL"));
            let change = c
                .replace_in_healthcheck("realtime", "${ANON_KEY}", "${REALTIME_HEALTHCHECK_KEY}")
                .unwrap();
            assert!(matches!(change, Change::Replaced { .. }));
            let (removed, added) = line_diff(text, c.text());
            assert_eq!(removed.len(), 1);
            assert_eq!(added.len(), 1);
            assert_eq!(
                added[0],
                removed[0].replace("${ANON_KEY}", "${REALTIME_HEALTHCHECK_KEY}")
            );
            assert_eq!(
                c.healthcheck_test("realtime").unwrap(),
                before.replace("${ANON_KEY}", "${REALTIME_HEALTHCHECK_KEY}")
            );
            let edited = c.text().to_owned();
            assert_eq!(
                c.replace_in_healthcheck("realtime", "${ANON_KEY}", "${REALTIME_HEALTHCHECK_KEY}")
                    .unwrap(),
                Change::Unchanged
            );
            assert_eq!(c.text(), edited);
        }
        let c = Compose::parse(MIRROR).unwrap();
        assert_eq!(
            c.healthcheck_test("kong").as_deref(),
            Some("CMD kong health")
        );
        assert_eq!(c.healthcheck_test("meta"), None);
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
    fn offsets_survive_a_bom_and_non_ascii_text() {
        let text = "\u{feff}# Straße — ünïcödé\nservices:\n  auth:\n    image: supabase/gotrue # “quoted”\n    environment:\n      NOTE: \"é—\"  # ü\n      A: &a '${X}' # ß\n";
        let mut c = Compose::parse(text).unwrap();
        assert_eq!(c.text(), text);
        c.set_env("auth", "NOTE", "${Y}", &starts("${Y")).unwrap();
        c.set_env("auth", "A", "${Z}", &starts("${Z")).unwrap();
        c.set_env(
            "auth",
            "GOTRUE_JWT_KEYS",
            "${JWT_KEYS}",
            &starts("${JWT_KEYS"),
        )
        .unwrap();
        assert_eq!(
            c.text(),
            "\u{feff}# Straße — ünïcödé\nservices:\n  auth:\n    image: supabase/gotrue # “quoted”\n    environment:\n      NOTE: \"${Y}\"  # ü\n      A: &a '${Z}' # ß\n      GOTRUE_JWT_KEYS: ${JWT_KEYS}\n"
        );
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
        let c = Compose::parse(UPSTREAM).unwrap();
        let e = c.env("realtime", "DB_AFTER_CONNECT_QUERY").unwrap();
        assert_eq!(e.value, "SET search_path TO _realtime");
        assert_eq!(c.env("studio", "HOSTNAME").unwrap().value, "::");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        const IMAGES: [&str; 4] = [
            "supabase/gotrue:v2",
            "postgrest/postgrest:v14",
            "supabase/realtime:v2",
            "redis:7",
        ];

        #[derive(Debug, Clone)]
        struct Svc {
            image: usize,
            list: bool,
            entries: Vec<(String, String)>,
            commented: Option<String>,
        }

        fn svc() -> impl Strategy<Value = Svc> {
            (
                0..IMAGES.len(),
                any::<bool>(),
                prop::collection::vec(("[A-E]{1,2}", "[a-z0-9]{0,6}|\\$\\{[A-Z]{1,4}\\}"), 0..4),
                prop::option::of("[A-E]{1,2}"),
            )
                .prop_map(|(image, list, entries, commented)| Svc {
                    image,
                    list,
                    entries,
                    commented,
                })
        }

        fn render(svcs: &[Svc]) -> String {
            let mut t = String::from("services:\n");
            for (i, s) in svcs.iter().enumerate() {
                t.push_str(&format!("  s{i}:\n    image: {}\n", IMAGES[s.image]));
                if s.entries.is_empty() && s.commented.is_none() {
                    continue;
                }
                t.push_str("    environment:\n");
                let mut seen = std::collections::HashSet::new();
                for (k, v) in &s.entries {
                    // A repeated mapping key is invalid YAML (and refused); list form may repeat.
                    if !s.list && !seen.insert(k.clone()) {
                        continue;
                    }
                    let v = if v.is_empty() {
                        "x".to_owned()
                    } else {
                        v.clone()
                    };
                    if s.list {
                        t.push_str(&format!("      - {k}={v}\n"));
                    } else {
                        t.push_str(&format!("      {k}: \"{v}\"\n"));
                    }
                }
                if let Some(c) = &s.commented {
                    if s.list {
                        t.push_str(&format!("      #- {c}=${{C}}\n"));
                    } else {
                        t.push_str(&format!("      #{c}: ${{C}}\n"));
                    }
                }
                if s.entries.is_empty() {
                    t.push_str(if s.list {
                        "      - Z=z\n"
                    } else {
                        "      Z: z\n"
                    });
                }
            }
            t
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1500))]

            /// Any edit changes the one intended entry: every other entry of every service reads
            /// the same afterwards, and at most two lines of text differ.
            #[test]
            fn an_edit_touches_only_its_entry(svcs in prop::collection::vec(svc(), 1..4), target in any::<prop::sample::Index>(), key in "[A-E]{1,2}", wanted in "\\$\\{[A-Z]{1,4}\\}") {
                let text = render(&svcs);
                let mut c = Compose::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                let names: Vec<String> = c.services().into_iter().map(|s| s.name).collect();
                let service = target.get(&names).clone();
                let keys: Vec<String> = ["A", "B", "C", "D", "E", "AA", "AB", "Z"].iter().map(|k| (*k).to_owned()).collect();
                let before: Vec<(String, String, Option<String>)> = names.iter().flat_map(|n| keys.iter().map(move |k| (n.clone(), k.clone()))).map(|(n, k)| { let v = c.env(&n, &k).map(|e| e.value); (n, k, v) }).collect();
                let w = wanted.clone();
                match c.set_env(&service, &key, &wanted, &move |v: &str| v == w) {
                    Err(_) => prop_assert_eq!(c.text(), text.as_str(), "a refused edit leaves the text"),
                    Ok(_) => {
                        prop_assert_eq!(c.env(&service, &key).map(|e| e.value), Some(wanted.clone()));
                        for (n, k, v) in before {
                            if n == service && k == key { continue; }
                            prop_assert_eq!(c.env(&n, &k).map(|e| e.value), v, "{}.{} changed", n, k);
                        }
                        let old: Vec<&str> = text.lines().collect();
                        let new: Vec<&str> = c.text().lines().collect();
                        let kept = old.iter().filter(|l| new.contains(l)).count();
                        prop_assert!(old.len() - kept <= 1 && new.len() <= old.len() + 2, "too many lines changed:\n{}\n---\n{}", text, c.text());
                    }
                }
            }
        }
    }
}
