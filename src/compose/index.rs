//! The position index: where every YAML node of a compose file sits in its text, built from
//! `saphyr-parser` events, and the line arithmetic edits are planned with.
//!
//! A plain YAML loader forgets positions, quoting and comments; the editor needs all three
//! to splice one scalar and leave every other byte alone, so this index records, for each
//! node, its kind, its children and its byte range. It only reads: it never changes the
//! text, never decides what an edit is, and never touches the filesystem.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};

use super::ComposeError;

/// A node's place in [`Tree::nodes`].
pub(super) type NodeId = usize;

/// What a node is.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    Scalar {
        value: String,
        style: ScalarStyle,
    },
    Map,
    Seq,
    /// An alias (`*name`) of the anchor with this parser id.
    Alias(usize),
}

/// One YAML node and where its text is.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) kind: Kind,
    /// A `{…}` / `[…]` collection.
    pub(super) flow: bool,
    /// Map: keys and values alternate. Seq: the items.
    pub(super) children: Vec<NodeId>,
    /// Byte offset where the node's text starts: a scalar's opening quote, a flow
    /// collection's bracket, a block collection's first child.
    pub(super) start: usize,
    /// Byte offset just past the node's content (a block scalar's trailing blank lines
    /// and a block collection's trailing comments excluded).
    pub(super) end: usize,
    /// 1-based line of `start`.
    pub(super) line: usize,
}

/// Every node of one YAML document, in event order, with its anchors.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    pub(super) nodes: Vec<Node>,
    anchors: HashMap<usize, NodeId>,
    pub(super) root: NodeId,
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

/// A [`Tree`] under construction: the nodes so far and the collections still open.
struct Builder<'t> {
    text: &'t str,
    nodes: Vec<Node>,
    anchors: HashMap<usize, NodeId>,
    /// The open collections, innermost last.
    stack: Vec<NodeId>,
    root: Option<NodeId>,
}

impl Builder<'_> {
    /// Adds a finished node (a scalar or an alias) to the innermost open collection.
    fn add(&mut self, node: Node, anchor: usize) {
        let id = self.nodes.len();
        self.nodes.push(node);
        if anchor > 0 {
            self.anchors.insert(anchor, id);
        }
        self.attach(id);
    }

    /// A scalar node from its event. `properties`: the scalar has an anchor or a tag.
    fn scalar(
        &self,
        value: String,
        style: ScalarStyle,
        properties: bool,
        (start, end, line): (usize, usize, usize),
    ) -> Node {
        let text = self.text;
        // The span of a scalar with an anchor or a tag starts at those.
        let start = if properties {
            skip_properties(text, start, end)
        } else {
            start
        };
        // saphyr-parser's span of a quoted scalar runs on over trailing spaces and a
        // comment, and a block scalar's over trailing blank lines: end at the closing
        // quote, or the last non-blank character.
        let end = match style {
            ScalarStyle::Literal | ScalarStyle::Folded => start + text[start..end].trim_end().len(),
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                // Never beyond the parser's own end; edits check the quotes.
                quoted_end(text, start).filter(|&e| e <= end).unwrap_or(end)
            }
            _ => end,
        };
        leaf(Kind::Scalar { value, style }, start, end, line)
    }

    /// Opens a mapping or a sequence; its children follow until [`Builder::close`].
    fn open(&mut self, kind: Kind, anchor: usize, (start, end, line): (usize, usize, usize)) {
        let raw = self.text[start..end].trim_end();
        let flow = raw.ends_with(['{', '[']);
        let start = if flow { start + raw.len() - 1 } else { start };
        let mut node = leaf(kind, start, start, line);
        node.flow = flow;
        let id = self.nodes.len();
        self.nodes.push(node);
        if anchor > 0 {
            self.anchors.insert(anchor, id);
        }
        self.stack.push(id);
    }

    /// Closes the innermost open collection at `end` (a flow collection's closing bracket).
    fn close(&mut self, end: usize, line: usize) -> Result<(), ComposeError> {
        let Some(id) = self.stack.pop() else {
            return Err(ComposeError::at(line, "unbalanced YAML collection"));
        };
        let last_end = self.nodes[id].children.last().map(|&c| self.nodes[c].end);
        let node = &mut self.nodes[id];
        if node.flow {
            node.end = end;
        } else if let Some(e) = last_end {
            node.end = e;
        }
        self.attach(id);
        Ok(())
    }

    /// Makes `id` the next child of the innermost open collection, or the root.
    fn attach(&mut self, id: NodeId) {
        let nodes = &mut self.nodes;
        if let Some(&parent) = self.stack.last() {
            let (start, line) = (nodes[id].start, nodes[id].line);
            let p = &mut nodes[parent];
            if p.children.is_empty() && !p.flow {
                p.start = start;
                p.line = line;
            }
            p.children.push(id);
        } else {
            self.root = Some(id);
        }
    }

    /// The finished tree; events that made no node are no document.
    fn finish(self) -> Result<Tree, ComposeError> {
        let root = self
            .root
            .ok_or_else(|| ComposeError::general("the file holds no YAML document"))?;
        Ok(Tree {
            nodes: self.nodes,
            anchors: self.anchors,
            root,
        })
    }
}

impl Tree {
    /// Indexes the one YAML document of `text`.
    ///
    /// # Errors
    /// Invalid YAML, a second document, or none; the error names the line when it can.
    pub(super) fn parse(text: &str) -> Result<Tree, ComposeError> {
        Tree::parse_with(text, &mut |_, _| {})
    }

    /// [`Tree::parse`], handing every event to `also` as well (a plain loader reading the
    /// same text in the same pass: the text is scanned once).
    pub(super) fn parse_with<'t>(
        text: &'t str,
        also: &mut dyn FnMut(Event<'t>, Span),
    ) -> Result<Tree, ComposeError> {
        let index = CharIndex::new(text);
        let mut builder = Builder {
            text,
            nodes: Vec::new(),
            anchors: HashMap::new(),
            stack: Vec::new(),
            root: None,
        };
        let mut documents = 0;
        let mut parser = Parser::new_from_str(text);
        while let Some(next) = parser.next_event() {
            let (event, span) = next.map_err(|e| scan_error(&e))?;
            also(event.clone(), span);
            let start = index.byte(span.start.index());
            let end = index.byte(span.end.index());
            let line = span.start.line();
            let at = (start, end, line);
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(ComposeError::at(
                            line,
                            "a second YAML document; a compose file holds one",
                        ));
                    }
                }
                Event::Scalar(value, style, anchor, tag) => {
                    let properties = anchor > 0 || tag.is_some();
                    let node = builder.scalar(value.into_owned(), style, properties, at);
                    builder.add(node, anchor);
                }
                Event::Alias(id) => builder.add(leaf(Kind::Alias(id), start, end, line), 0),
                Event::MappingStart(anchor, _) => builder.open(Kind::Map, anchor, at),
                Event::SequenceStart(anchor, _) => builder.open(Kind::Seq, anchor, at),
                Event::MappingEnd | Event::SequenceEnd => builder.close(end, line)?,
                _ => {}
            }
        }
        builder.finish()
    }

    /// The node an alias names (following aliases of aliases), or `id` itself.
    pub(super) fn resolve(&self, mut id: NodeId) -> NodeId {
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

    /// The value of a scalar node.
    pub(super) fn scalar(&self, id: NodeId) -> Option<&str> {
        match &self.nodes[id].kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Whether `id` is a mapping (aliases not followed).
    pub(super) fn is_map(&self, id: NodeId) -> bool {
        matches!(self.nodes[id].kind, Kind::Map)
    }

    /// A mapping's (key, value) pairs in order; none for anything else.
    pub(super) fn pairs(&self, map: NodeId) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        let children: &[NodeId] = if self.is_map(map) {
            &self.nodes[map].children
        } else {
            &[]
        };
        children.chunks_exact(2).map(|c| (c[0], c[1]))
    }

    /// The last direct entry of `map` under `key`: (key node, value node).
    pub(super) fn get(&self, map: NodeId, key: &str) -> Option<(NodeId, NodeId)> {
        self.pairs(map)
            .filter(|(k, _)| self.scalar(*k) == Some(key))
            .last()
    }

    /// The maps a `<<` key of `map` merges in, in priority order.
    pub(super) fn merge_sources(&self, map: NodeId) -> Vec<NodeId> {
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
    pub(super) fn get_merged(&self, map: NodeId, key: &str, depth: usize) -> Option<NodeId> {
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

    /// `id` and every node below it, in document order.
    pub(super) fn descendants(&self, id: NodeId, out: &mut Vec<NodeId>) {
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

/// A node with no children yet.
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

// ---------------------------------------------------------------------------------------
// Line helpers
// ---------------------------------------------------------------------------------------

/// Where the line holding `pos` starts.
pub(super) fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// Where the line holding `pos` ends, before its `\n` or `\r\n`.
pub(super) fn line_content_end(text: &str, pos: usize) -> usize {
    let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    if end > pos && text.as_bytes()[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// Where the line after the one holding `pos` starts (the text's length on the last line).
pub(super) fn next_line_start(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

/// The 1-based line holding `pos`.
pub(super) fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line ending of the line holding `pos`, else the file's first, else `\n`.
pub(super) fn eol_at(text: &str, pos: usize) -> &'static str {
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
pub(super) fn block_column(text: &str, pos: usize) -> Option<usize> {
    let prefix = &text[line_start(text, pos)..pos];
    prefix.bytes().all(|b| b == b' ').then_some(prefix.len())
}

/// The column of the `-` of a block sequence item that starts at `pos`.
pub(super) fn dash_column(text: &str, pos: usize) -> Option<usize> {
    let prefix = text[line_start(text, pos)..pos].trim_end_matches(' ');
    let before = prefix.strip_suffix('-')?;
    before.bytes().all(|b| b == b' ').then_some(before.len())
}

#[cfg(test)]
mod tests {
    use super::super::Compose;
    use super::super::test_support::starts;

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
}
