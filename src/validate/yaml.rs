//! YAML text to a value tree, refusing what serde-based parsers accept silently (duplicate keys,
//! several documents, empty files), and a locator from a YAML path back to line:column.
//! Pure: works on bytes it is handed, never on the filesystem.

use std::fmt;

use serde::Deserialize;
use yaml_serde::Value;

use super::diagnostic::{Diagnostic, DiagnosticKind};
use super::prescan::{prescan_within, Refusal};
use crate::source::{FileBody, SourceFile};

/// One step of a YAML path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index, 0-based.
    Index(usize),
}

/// A path into a YAML document, shown as `groq.rpm` or `mary.fallbacks[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(Vec<Segment>);

impl YamlPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a key.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_owned()));
        p
    }

    /// This path extended by an index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(index));
        p
    }

    /// The path of these segments.
    pub(crate) fn from_segments(segments: Vec<Segment>) -> Self {
        Self(segments)
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Parses `groq.rpm`, `mary.fallbacks[1]` or `[0].name`: keys separated by `.`, indexes in
    /// brackets. The empty string is the root. (A key holding `.` or `[` needs [`YamlPath::key`].)
    ///
    /// ```
    /// use hotconf::YamlPath;
    /// let p = YamlPath::parse("mary.fallbacks[1]");
    /// assert_eq!(p, YamlPath::root().key("mary").key("fallbacks").index(1));
    /// assert_eq!(p.to_string(), "mary.fallbacks[1]");
    /// ```
    pub fn parse(text: &str) -> Self {
        let mut path = Self::root();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(open) = rest.find('[') {
                if open > 0 {
                    path.0.push(Segment::Key(rest[..open].to_owned()));
                }
                rest = &rest[open..];
                while let Some(close) = rest.find(']') {
                    match rest[1..close].parse() {
                        Ok(n) => path.0.push(Segment::Index(n)),
                        Err(_) => path.0.push(Segment::Key(rest[1..close].to_owned())),
                    }
                    rest = &rest[close + 1..];
                }
            } else {
                path.0.push(Segment::Key(rest.to_owned()));
            }
        }
        path
    }

    /// The path of the parent and the last segment, unless this is the root.
    pub fn split_last(&self) -> Option<(YamlPath, &Segment)> {
        let (last, rest) = self.0.split_last()?;
        Some((YamlPath(rest.to_vec()), last))
    }

    /// This path without its first segment, and that segment (a file's stem, for a directory
    /// read as one mapping from stem to document).
    pub fn split_first(&self) -> Option<(&Segment, YamlPath)> {
        let (first, rest) = self.0.split_first()?;
        Some((first, YamlPath(rest.to_vec())))
    }
}

/// A total order on paths in which the paths starting with one path sort right after it.
pub(crate) fn path_order(a: &[Segment], b: &[Segment]) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Greater, Less};
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Segment::Key(x), Segment::Key(y)) => x.cmp(y),
            (Segment::Index(x), Segment::Index(y)) => x.cmp(y),
            (Segment::Key(_), Segment::Index(_)) => Less,
            (Segment::Index(_), Segment::Key(_)) => Greater,
        };
        if o.is_ne() {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A parsed file: its text (for locating paths) and its single document.
#[derive(Debug)]
pub struct ParsedFile<'a> {
    /// The file's name.
    pub name: &'a str,
    /// The file's text.
    pub text: &'a str,
    /// The document.
    pub value: Value,
    /// The significant lines of `text`, split once, on the first diagnostic.
    lines: std::cell::OnceCell<Vec<Line<'a>>>,
    /// Where each key of a long block is, found once for all the diagnostics located in it.
    keys: std::cell::RefCell<KeyIndex<'a>>,
}

impl<'a> ParsedFile<'a> {
    /// A parsed file of `text` holding `value`.
    pub fn new(name: &'a str, text: &'a str, value: Value) -> Self {
        Self { name, text, value, lines: std::cell::OnceCell::new(), keys: Default::default() }
    }

    /// A diagnostic at `path` in this file, with line:column when the path can be found.
    pub fn diagnostic(&self, path: &YamlPath, kind: DiagnosticKind) -> Diagnostic {
        let lines = self.lines.get_or_init(|| significant_lines(self.text));
        let position = locate_in(lines, path, kind.points_at_value(), &mut self.keys.borrow_mut());
        let d = Diagnostic::file(self.name, kind).at_position(position);
        if path.segments().is_empty() {
            d
        } else {
            d.at_path(path.to_string())
        }
    }
}

/// Parses one file's single YAML document, or says why not.
///
/// Refused: unread, special or over-cap files, non-UTF-8 text, nesting deeper than
/// [`MAX_DEPTH`](super::prescan::MAX_DEPTH) and aliases adding more than
/// [`MAX_ALIAS_NODES`](super::prescan::MAX_ALIAS_NODES) nodes, more than
/// [`MAX_NODES`](super::prescan::MAX_NODES) nodes in all (all found by a linear pre-scan before the
/// parser runs), syntax errors, duplicate keys, empty files (nothing but comments or
/// whitespace), several documents.
// The error is one diagnostic, made once per refused file: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
pub fn parse_file(file: &SourceFile, max_bytes: u64) -> Result<ParsedFile<'_>, Diagnostic> {
    let mut budget = super::prescan::MAX_NODES;
    parse_file_within(file, max_bytes, &mut budget)
}

/// [`parse_file`] out of a bundle's node budget: `budget` is what the files parsed before left
/// (at most the per-file cap), and what this file holds is taken from it. A file that would take
/// more is refused as [`DiagnosticKind::BundleTooLarge`] (or, past the per-file cap alone, as
/// [`DiagnosticKind::TooManyNodes`]).
pub fn parse_file_within<'a>(
    file: &'a SourceFile,
    max_bytes: u64,
    budget: &mut u64,
) -> Result<ParsedFile<'a>, Diagnostic> {
    let name = file.name();
    let bytes = match file.body() {
        FileBody::Bytes(b) => b,
        FileBody::TooLarge { size, limit } => {
            return Err(Diagnostic::file(name, DiagnosticKind::TooLarge { size: *size, limit: *limit }))
        }
        FileBody::Unreadable { kind } => {
            return Err(Diagnostic::file(name, DiagnosticKind::Unreadable { reason: kind.to_string() }))
        }
        FileBody::NotRegular { kind } => {
            return Err(Diagnostic::file(name, DiagnosticKind::NotRegularFile { kind: *kind }))
        }
    };
    if bytes.len() as u64 > max_bytes {
        let kind = DiagnosticKind::TooLarge { size: bytes.len() as u64, limit: max_bytes };
        return Err(Diagnostic::file(name, kind));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        Diagnostic::file(name, DiagnosticKind::NotUtf8).at_position(Some((line, 1)))
    })?;
    // The limits are enforced before the parser runs, so refusing any text costs linear time.
    match prescan_within(text, super::prescan::MAX_NODES) {
        Ok(nodes) if nodes <= *budget => *budget -= nodes,
        Ok(_) => {
            // Under the cap of one file, over what the bundle has left: said where it is crossed
            // (a second linear pass, on this refusal's path only).
            let at = match prescan_within(text, *budget) {
                Err(Refusal::TooManyNodes { line, column }) => Some((line, column)),
                _ => None,
            };
            let kind = DiagnosticKind::BundleTooLarge { measure: "YAML nodes", limit: super::prescan::MAX_NODES };
            return Err(Diagnostic::file(name, kind).at_position(at));
        }
        Err(Refusal::TooDeep { line, column }) => {
            return Err(Diagnostic::file(name, DiagnosticKind::TooDeep).at_position(Some((line, column))))
        }
        Err(Refusal::AliasExpansion { line, column }) => {
            return Err(Diagnostic::file(name, DiagnosticKind::AliasExpansion).at_position(Some((line, column))))
        }
        Err(Refusal::TooManyNodes { line, column }) => {
            return Err(Diagnostic::file(name, DiagnosticKind::TooManyNodes).at_position(Some((line, column))))
        }
    }
    let mut documents = yaml_serde::Deserializer::from_str(text);
    let Some(first) = documents.next() else {
        return Err(Diagnostic::file(name, DiagnosticKind::EmptyFile));
    };
    let value = Value::deserialize(first).map_err(|e| yaml_error(name, text, &e))?;
    if documents.next().is_some() {
        let line = second_document_line(text);
        return Err(Diagnostic::file(name, DiagnosticKind::MultipleDocuments).at_position(line.map(|l| (l, 1))));
    }
    if value.is_null() {
        return Err(Diagnostic::file(name, DiagnosticKind::EmptyFile));
    }
    let parsed = ParsedFile::new(name, text, value);
    if let Some(path) = merge_key(&parsed.value) {
        return Err(parsed.diagnostic(&path, DiagnosticKind::MergeKey));
    }
    Ok(parsed)
}

fn yaml_error(file: &str, text: &str, error: &yaml_serde::Error) -> Diagnostic {
    let full = error.to_string();
    // The crate appends " at line L column C"; the location travels in its own fields.
    let message = full.split(" at line ").next().unwrap_or(&full).to_owned();
    // Errors inside a nested value are prefixed with its path: "local: duplicate entry …".
    let duplicate = message.split_once("duplicate entry ").map(|(_, rest)| rest);
    let kind = if let Some(rest) = duplicate {
        let key = rest.strip_prefix("with key ").unwrap_or(rest);
        DiagnosticKind::DuplicateKey { key: key.trim_matches('"').to_owned(), first: None }
    } else if message.contains("recursion limit exceeded") {
        DiagnosticKind::TooDeep
    } else if message.contains("repetition limit exceeded") {
        DiagnosticKind::AliasExpansion
    } else {
        DiagnosticKind::Syntax { message }
    };
    let mut kind = kind;
    let mut position = error.location().map(|l| (l.line() as u32, l.column() as u32));
    if let (DiagnosticKind::DuplicateKey { key, first }, Some((line, column))) = (&mut kind, position) {
        // The parser marks the mapping; point at the second occurrence of the key, and name the first.
        let found = key_lines(text, line, (column as usize).saturating_sub(1), key);
        *first = found.first().copied();
        position = found.get(1).copied().or(position);
    }
    if let DiagnosticKind::Syntax { .. } = kind {
        // The parser notices an unclosed `[` or `{` only where the text ends: report where it opens.
        if let Some((line, column)) = super::prescan::unclosed_flow(text) {
            let open = text
                .lines()
                .nth(line as usize - 1)
                .and_then(|l| l.chars().nth(column as usize - 1))
                .filter(|c| *c == '[' || *c == '{')
                .unwrap_or('[');
            return Diagnostic::file(file, DiagnosticKind::UnclosedFlow { open }).at_position(Some((line, column)));
        }
    }
    Diagnostic::file(file, kind).at_position(position)
}

/// The lines and columns of the first two `key:` at `indent` (a column in characters, as the
/// parser counts) in the mapping that starts at `line`, or in the flow mapping on that line.
fn key_lines(text: &str, line: u32, indent: usize, key: &str) -> Vec<(u32, u32)> {
    let block: Vec<(u32, u32)> = text
        .lines()
        .enumerate()
        .skip((line as usize).saturating_sub(1))
        .filter_map(|(i, l)| {
            let (head, rest) = l.split_at(l.char_indices().nth(indent)?.0);
            head.bytes().all(|b| b == b' ' || b == b'-').then_some((i, rest))
        })
        .filter(|(_, rest)| key_of(rest.trim_start_matches("- ")) == Some(key))
        .take(2)
        .map(|(i, rest)| (i as u32 + 1, (indent + rest.len() - rest.trim_start_matches("- ").len()) as u32 + 1))
        .collect();
    if block.len() == 2 {
        return block;
    }
    // A flow mapping on one line: `{x: 1, x: 2}`.
    let Some(l) = text.lines().nth((line as usize).saturating_sub(1)) else { return block };
    let Some((start, _)) = l.char_indices().nth(indent) else { return block };
    if !l[start..].starts_with('{') {
        return block;
    }
    let items = flow_items(&l[start..]).unwrap_or_default();
    items
        .iter()
        .filter(|(a, b)| {
            let entry = &l[start + a..start + b];
            entry[..flow_colon(entry).unwrap_or(entry.len())].trim().trim_matches(|c| c == '"' || c == '\'') == key
        })
        .take(2)
        .map(|(a, _)| (line, column_at(l, start + a)))
        .collect()
}

/// The path of the first merge key (`<<`) in `value`, if any.
fn merge_key(value: &Value) -> Option<YamlPath> {
    let mut segments = merge_key_reversed(value)?;
    segments.reverse();
    Some(YamlPath::from_segments(segments))
}

/// The path of the first merge key under `value`, last segment first: built only when one is
/// found, so looking costs no path per node.
fn merge_key_reversed(value: &Value) -> Option<Vec<Segment>> {
    match value {
        Value::Mapping(map) => map.iter().find_map(|(k, v)| {
            let key = match k {
                Value::String(s) => s.as_str(),
                _ => "",
            };
            let mut segments = if key == "<<" { Vec::new() } else { merge_key_reversed(v)? };
            segments.push(Segment::Key(key.to_owned()));
            Some(segments)
        }),
        Value::Sequence(items) => items.iter().enumerate().find_map(|(i, v)| {
            let mut segments = merge_key_reversed(v)?;
            segments.push(Segment::Index(i));
            Some(segments)
        }),
        Value::Tagged(tagged) => merge_key_reversed(&tagged.value),
        _ => None,
    }
}

/// The line of the `---` that starts a second document, if any.
fn second_document_line(text: &str) -> Option<u32> {
    let mut seen_content = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            if seen_content {
                return Some(i as u32 + 1);
            }
            seen_content = true;
        } else if !t.trim_start().is_empty() && !t.trim_start().starts_with('#') {
            seen_content = true;
        }
    }
    None
}

/// A significant (non-blank, non-comment) line: number, indentation, content after it.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: u32,
    indent: usize,
    content: &'a str,
}

/// Finds the 1-based line and column of `path`'s key (or sequence item) in YAML `text`: block
/// style, and flow collections written on one line (`fallbacks: [a, b]`, `{rpm: 1}`). Returns the
/// deepest position found; `None` when not even the first segment is found.
#[cfg(test)]
pub fn locate(text: &str, path: &YamlPath) -> Option<(u32, u32)> {
    locate_in(&significant_lines(text), path, false, &mut KeyIndex::default())
}

/// Like [`locate`], but a path to `key: value` resolves to where the value starts, when it is on
/// the key's line: where a diagnostic about the value points.
#[cfg(test)]
pub fn locate_value(text: &str, path: &YamlPath) -> Option<(u32, u32)> {
    locate_in(&significant_lines(text), path, true, &mut KeyIndex::default())
}

/// The 1-based column of byte `offset` in `line`, in characters.
fn column_at(line: &str, offset: usize) -> u32 {
    line[..offset.min(line.len())].chars().count() as u32 + 1
}

/// The byte offset, in `content` (a `key: value` line from its key), of the value, when one is
/// written on the line.
fn value_offset(content: &str) -> Option<usize> {
    let quote = content.chars().next().filter(|c| *c == '"' || *c == '\'');
    let key_end = match quote {
        Some(q) => content[1..].find(q)? + 2,
        None => content.find(": ").or_else(|| content.strip_suffix(':').map(str::len))?,
    };
    let after = content[key_end..].strip_prefix(':')?;
    let value = after.trim_start_matches([' ', '\t']);
    (!value.is_empty() && !value.starts_with('#')).then(|| content.len() - value.len())
}

/// The byte offset in `s` (text starting with a flow collection, `[…]` or `{…}`, on one line) of
/// the node at `segments`: a sequence item, a mapping key or (`want_value`) the key's value.
fn flow_offset(s: &str, segments: &[Segment], want_value: bool) -> Option<usize> {
    let Some((segment, rest)) = segments.split_first() else { return Some(0) };
    let items = flow_items(s)?;
    let (start, end) = match (s.as_bytes()[0], segment) {
        (b'[', Segment::Index(n)) => *items.get(*n)?,
        (b'{', Segment::Key(key)) => {
            let (start, end) = *items.iter().find(|(a, b)| {
                let entry = &s[*a..*b];
                let k = entry[..flow_colon(entry).unwrap_or(entry.len())].trim();
                k.trim_matches(|c| c == '"' || c == '\'') == key
            })?;
            if rest.is_empty() && !want_value {
                return Some(start);
            }
            let colon = start + flow_colon(&s[start..end])?;
            let value = s[colon + 1..end].trim_start();
            (end - value.len(), end)
        }
        _ => return None,
    };
    if rest.is_empty() {
        return Some(start);
    }
    let inner = &s[start..end];
    if !inner.starts_with(['[', '{']) {
        return Some(start);
    }
    Some(start + flow_offset(inner, rest, want_value).unwrap_or(0))
}

/// The `:` that ends a flow mapping entry's key, outside quotes.
fn flow_colon(entry: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in entry.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, ':') => return Some(i),
            _ => {}
        }
    }
    None
}

/// The items of the flow collection `s` starts with, as byte ranges (trimmed), up to its closing
/// bracket or the end of the line.
fn flow_items(s: &str) -> Option<Vec<(usize, usize)>> {
    let mut items = Vec::new();
    let (mut depth, mut quote, mut start) = (0usize, None, 1usize);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}' | ',') if depth == 1 => {
                let item = s[start..i].trim();
                if !item.is_empty() {
                    let a = start + (s[start..i].len() - s[start..i].trim_start().len());
                    items.push((a, a + item.len()));
                }
                start = i + 1;
                if c != ',' {
                    return Some(items);
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            (None, '#') if depth > 0 && s[..i].ends_with(' ') => break,
            _ => {}
        }
    }
    Some(items)
}

fn significant_lines(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let content = raw.trim_start_matches(' ');
            let t = content.trim();
            if t.is_empty() || t.starts_with('#') || t == "---" {
                return None;
            }
            Some(Line { number: i as u32 + 1, indent: raw.len() - content.len(), content })
        })
        .collect()
}

/// [`locate`] over lines split once. Each step narrows to the block under the segment found, by
/// index into `lines`, without copying it.
/// The keys of the blocks of more than [`KeyIndex::SCAN`] lines that a diagnostic was located in,
/// each block indexed once: locating a file's 100 diagnostics costs one pass over a long block,
/// not one pass each.
#[derive(Debug, Default)]
struct KeyIndex<'a> {
    /// By block (its first line's number and indentation, and its length): each key at the
    /// block's indentation and the position of its first line in the block.
    blocks: std::collections::HashMap<(u32, usize, usize), std::collections::HashMap<&'a str, usize>>,
}

impl<'a> KeyIndex<'a> {
    /// Blocks up to this long are scanned.
    const SCAN: usize = 64;

    /// The position in `block` of the line holding `key` at the block's indentation.
    fn position(&mut self, block: &[Line<'a>], key: &str) -> Option<usize> {
        let indent = block.first()?.indent;
        let at_indent = |l: &Line<'a>| if l.indent == indent { key_of(l.content) } else { None };
        if block.len() <= Self::SCAN {
            return block.iter().position(|l| at_indent(l) == Some(key));
        }
        let keys = self.blocks.entry((block[0].number, indent, block.len())).or_insert_with(|| {
            let mut keys = std::collections::HashMap::new();
            for (i, line) in block.iter().enumerate() {
                if let Some(k) = at_indent(line) {
                    keys.entry(k).or_insert(i);
                }
            }
            keys
        });
        keys.get(key).copied()
    }
}

fn locate_in<'a>(lines: &[Line<'a>], path: &YamlPath, want_value: bool, keys: &mut KeyIndex<'a>) -> Option<(u32, u32)> {
    let mut block: std::borrow::Cow<'_, [Line<'a>]> = std::borrow::Cow::Borrowed(lines);
    let mut found = None;
    // The line of the last node found, and the byte offset in it of its value, if written there.
    let mut value: Option<(Line<'_>, usize)> = None;
    let mut matched = 0;
    for (depth, segment) in path.segments().iter().enumerate() {
        let Some(first) = block.first() else {
            // A flow collection on the line of the node found last.
            let Some((line, at)) = value else { return found };
            let text = &line.content[at..];
            if !text.starts_with(['[', '{']) {
                return found;
            }
            let Some(offset) = flow_offset(text, &path.segments()[depth..], want_value) else { return found };
            return Some((line.number, line.indent as u32 + column_at(line.content, at + offset)));
        };
        let indent = first.indent;
        let child = match segment {
            Segment::Key(key) => {
                let Some(i) = keys.position(&block, key) else {
                    break;
                };
                found = Some((block[i].number, block[i].indent as u32 + 1));
                value = value_offset(block[i].content).map(|at| (block[i], at));
                let end = block_end(&block, i, indent);
                match block {
                    std::borrow::Cow::Borrowed(lines) => std::borrow::Cow::Borrowed(&lines[i + 1..end]),
                    std::borrow::Cow::Owned(lines) => std::borrow::Cow::Owned(lines[i + 1..end].to_vec()),
                }
            }
            Segment::Index(n) => {
                let items: Vec<usize> =
                    (0..block.len()).filter(|&i| block[i].indent == indent && is_item(block[i].content)).collect();
                let Some(&i) = items.get(*n) else { break };
                let mut item = block[i];
                found = Some((item.number, item.indent as u32 + 1));
                let end = items.iter().find(|&&j| j > i).copied().unwrap_or_else(|| block_end(&block, i, indent));
                let rest = item.content[1..].trim_start_matches(' ');
                item.indent += item.content.len() - rest.len();
                item.content = rest;
                let mut child = vec![item];
                child.extend_from_slice(&block[i + 1..end]);
                if item.content.trim().is_empty() {
                    child.remove(0);
                    value = None;
                } else {
                    found = Some((item.number, item.indent as u32 + 1));
                    value = Some((item, 0));
                    if item.content.starts_with(['[', '{']) && child.len() == 1 {
                        // A flow collection as the item (`- [a, b]`): looked into on its line.
                        child.clear();
                    }
                }
                std::borrow::Cow::Owned(child)
            }
        };
        block = child;
        matched += 1;
    }
    match (want_value, value, path.segments().last()) {
        (true, Some((line, at)), Some(Segment::Key(_))) if matched == path.segments().len() => {
            Some((line.number, line.indent as u32 + column_at(line.content, at)))
        }
        _ => found,
    }
}

/// The end (exclusive) of the block that starts after line `i` at `indent`: the next line at a
/// smaller indent, or at the same indent that is not a sequence item of this key.
fn block_end(block: &[Line<'_>], i: usize, indent: usize) -> usize {
    let own_item = is_item(block[i].content);
    (i + 1..block.len())
        .find(|&j| block[j].indent < indent || (block[j].indent == indent && (own_item || !is_item(block[j].content))))
        .unwrap_or(block.len())
}

fn is_item(content: &str) -> bool {
    content == "-" || content.starts_with("- ")
}

/// The key of a `key: value` line, unquoted.
fn key_of(content: &str) -> Option<&str> {
    let quote = content.chars().next().filter(|c| *c == '"' || *c == '\'');
    if let Some(q) = quote {
        let end = content[1..].find(q)? + 1;
        return content[end + 1..].starts_with(':').then(|| &content[1..end]);
    }
    let colon = content.find(": ").or_else(|| content.strip_suffix(':').map(str::len))?;
    Some(content[..colon].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segments: &[&str]) -> YamlPath {
        segments.iter().fold(YamlPath::root(), |p, s| match s.parse::<usize>() {
            Ok(n) => p.index(n),
            Err(_) => p.key(s),
        })
    }

    #[test]
    fn locates_keys_in_long_blocks_through_the_index_as_by_scanning() {
        // 300 keys at the top, then a block of 300 keys under `local`: both past KeyIndex::SCAN.
        let top: String = (0..300).map(|i| format!("k{i}: 1\n")).collect();
        let inner: String = (0..300).map(|i| format!("  j{i}: {i}\n")).collect();
        let text = format!("{top}local:\n{inner}last: 2\n");
        let file = ParsedFile::new("f.yaml", &text, Value::Null);
        for (p, expected) in [
            ("k0", Some((1, 1))),
            ("k299", Some((300, 1))),
            ("local", Some((301, 1))),
            ("local.j0", Some((302, 3))),
            ("local.j250", Some((552, 3))),
            ("last", Some((602, 1))),
            ("local.nope", Some((301, 1))),
            ("nope", None),
        ] {
            let d = file.diagnostic(&YamlPath::parse(p), DiagnosticKind::MergeKey);
            let at = d.to_string();
            let position = expected.map(|(l, c)| format!("f.yaml:{l}:{c}:"));
            match position {
                Some(prefix) => assert!(at.starts_with(&prefix), "{p}: {at}"),
                None => assert!(at.starts_with("f.yaml: "), "{p}: {at}"),
            }
        }
        // Every diagnostic of a long block is located through one index of it.
        assert_eq!(file.keys.borrow().blocks.len(), 2);
    }

    #[test]
    fn locates_block_paths() {
        let text = "# limits\ngroq:\n  rpm: 30\n  burst: 5\ngemini:\n  rpm: 0\nmary:\n  primary: groq\n  fallbacks:\n    - gemini\n    - groq\nlist:\n- a: 1\n  b: 2\n- a: 3\n";
        type Case<'a> = (&'a [&'a str], Option<(u32, u32)>);
        let cases: &[Case<'_>] = &[
            (&["groq"], Some((2, 1))),
            (&["groq", "burst"], Some((4, 3))),
            (&["gemini", "rpm"], Some((6, 3))),
            (&["gemini", "nope"], Some((5, 1))),
            (&["mary", "fallbacks", "1"], Some((11, 7))),
            (&["list", "1", "a"], Some((15, 3))),
            (&["list", "0", "b"], Some((14, 3))),
            (&["absent"], None),
        ];
        for (segments, expected) in cases {
            assert_eq!(locate(text, &path(segments)), *expected, "{segments:?}");
        }
    }

    #[test]
    fn duplicate_keys_after_multibyte_characters_are_located_without_panicking() {
        let cases: &[(&str, Option<(u32, u32)>)] =
            &[("ééé: {x: 1, x: 2}\n", Some((1, 13))), ("a:\n  é: 1\n  é: 2\n", Some((3, 3)))];
        for (text, position) in cases {
            let file = SourceFile::new("f.yaml", *text);
            let d = parse_file(&file, 1 << 20).unwrap_err();
            assert_eq!(d.kind.code(), "duplicate-key", "{text}");
            assert_eq!(d.line.zip(d.column), *position, "{text}");
        }
    }

    #[test]
    fn locates_values_and_flow_collections() {
        let text =
            "a:\n  rpm: 30 # c\n  fallbacks: [x, \"y z\", w]\n  nested: {k: [1, {m: 2}], j: v}\nlist:\n  - [p, q]\n";
        type Case<'a> = (&'a [&'a str], bool, Option<(u32, u32)>);
        let cases: &[Case<'_>] = &[
            (&["a", "rpm"], false, Some((2, 3))),
            (&["a", "rpm"], true, Some((2, 8))),
            (&["a", "fallbacks", "0"], false, Some((3, 15))),
            (&["a", "fallbacks", "1"], false, Some((3, 18))),
            (&["a", "fallbacks", "2"], true, Some((3, 25))),
            (&["a", "fallbacks", "9"], false, Some((3, 3))),
            (&["a", "nested", "k", "1", "m"], true, Some((4, 23))),
            (&["a", "nested", "j"], false, Some((4, 28))),
            (&["a", "nested", "j"], true, Some((4, 31))),
            (&["a", "absent"], true, Some((1, 1))),
            (&["list", "0", "1"], false, Some((6, 9))),
        ];
        for (segments, value, expected) in cases {
            let found = if *value { locate_value(text, &path(segments)) } else { locate(text, &path(segments)) };
            assert_eq!(found, *expected, "{segments:?} value={value}");
        }
    }

    #[test]
    fn unclosed_flow_is_reported_where_it_opens_and_merge_keys_are_refused() {
        let cases: &[(&str, &str, (u32, u32))] = &[
            ("a: 1\nb: [x, y\nc: 2\n", "unclosed-flow", (2, 4)),
            ("a:\n  b: {x: [1, 2]\n", "unclosed-flow", (2, 6)),
            ("base: &b\n  x: 1\nc:\n  <<: *b\n", "merge-key", (4, 3)),
            ("a: 1\na: 2\n", "duplicate-key", (2, 1)),
        ];
        for (text, code, position) in cases {
            let d = parse_file(&SourceFile::new("f.yaml", *text), 1 << 20).unwrap_err();
            assert_eq!((d.kind.code(), d.line.zip(d.column)), (*code, Some(*position)), "{text}");
        }
        let d = parse_file(&SourceFile::new("f.yaml", "a: 1\nb: 2\na: 3\n"), 1 << 20).unwrap_err();
        assert_eq!(d.kind, DiagnosticKind::DuplicateKey { key: "a".into(), first: Some((1, 1)) });
    }

    #[test]
    fn path_display() {
        assert_eq!(path(&["mary", "fallbacks", "1"]).to_string(), "mary.fallbacks[1]");
    }
}
