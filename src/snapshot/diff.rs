//! Semantic diff: compares two bundles of YAML files value by value and lists each change by its
//! path, old → new, with secret-looking values redacted. Knows YAML, never a schema; never touches
//! the filesystem.

use std::fmt;

use serde::{Deserialize, Serialize};
use yaml_serde::Value;

use super::redact::{classify_key, redact_value, shown, KeyClass, REDACTED};
use crate::source::Sources;

/// One change, at `file` and the YAML `path` inside it (empty for the whole file).
///
/// Serialized with a fixed field order: `{"file", "path", "change", …}`; `change` is one of
/// `modified` (`old`, `new`), `added` (`value`), `removed` (`value`), `file_added`,
/// `file_removed`, `unparsed`. Values are already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The file's name, e.g. `rate_limits.yaml`.
    pub file: String,
    /// The YAML path inside it, e.g. `groq.rpm`; empty for the whole file.
    pub path: String,
    /// What changed.
    #[serde(flatten)]
    pub kind: ChangeKind,
}

/// What changed at a path. Every value is shown as redacted text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChangeKind {
    /// A value changed.
    Modified {
        /// The old value.
        old: String,
        /// The new value.
        new: String,
    },
    /// A key appeared; `value` is shown for scalars and lists, not for mappings.
    Added {
        /// The new value.
        value: Option<String>,
    },
    /// A key disappeared; `value` is shown for scalars and lists, not for mappings.
    Removed {
        /// The old value.
        value: Option<String>,
    },
    /// A file appeared.
    FileAdded,
    /// A file disappeared.
    FileRemoved,
    /// The file's content changed and one side is not valid YAML: no values are shown.
    Unparsed,
}

/// The changes between two bundles, file by file in name order, keys in document order.
///
/// ```
/// use hotconf::snapshot::semantic_diff;
/// use hotconf::{SourceFile, Sources};
/// let old = Sources::from_files([SourceFile::new("rate_limits.yaml", "groq:\n  rpm: 30\n")]);
/// let new = Sources::from_files([SourceFile::new("rate_limits.yaml", "groq:\n  rpm: 60 # busier\n")]);
/// assert_eq!(semantic_diff(&old, &new).to_string(), "rate_limits.groq.rpm: 30 → 60");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SemanticDiff {
    changes: Vec<Change>,
}

impl SemanticDiff {
    /// The changes.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Whether nothing changed in value (comments and formatting are not changes).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many changes.
    pub fn len(&self) -> usize {
        self.changes.len()
    }
}

/// Compares `old` and `new` value by value. Works on any YAML files.
pub fn semantic_diff(old: &Sources, new: &Sources) -> SemanticDiff {
    let mut names: Vec<&str> = old.names().chain(new.names()).collect();
    names.sort_unstable();
    names.dedup();
    let mut changes = Vec::new();
    for name in names {
        let change = |path: &str, kind| Change { file: name.to_owned(), path: path.to_owned(), kind };
        match (old.get(name), new.get(name)) {
            (None, Some(_)) => changes.push(change("", ChangeKind::FileAdded)),
            (Some(_), None) => changes.push(change("", ChangeKind::FileRemoved)),
            (Some(a), Some(b)) if a.body() == b.body() => {}
            (Some(a), Some(b)) => match (parse(a.bytes()), parse(b.bytes())) {
                (Some(a), Some(b)) => {
                    let mut walker = Walker { file: name, changes: &mut changes };
                    walker.walk(&mut Vec::new(), &a, &b, KeyClass::Plain);
                }
                _ => changes.push(change("", ChangeKind::Unparsed)),
            },
            (None, None) => unreachable!("the name comes from one of the two"),
        }
    }
    SemanticDiff { changes }
}

/// The file's value, when it is YAML within the nesting and alias limits (checked first, in
/// linear time, so no stored or candidate file can make a diff slow).
fn parse(bytes: Option<&[u8]>) -> Option<Value> {
    let text = std::str::from_utf8(bytes?).ok()?;
    crate::validate::prescan::prescan(text).ok()?;
    yaml_serde::from_str(text).ok()
}

struct Walker<'a> {
    file: &'a str,
    changes: &'a mut Vec<Change>,
}

impl Walker<'_> {
    fn push(&mut self, path: &[String], kind: ChangeKind) {
        self.changes.push(Change { file: self.file.to_owned(), path: path.join("."), kind });
    }

    fn walk(&mut self, path: &mut Vec<String>, old: &Value, new: &Value, class: KeyClass) {
        if old == new {
            return;
        }
        let (Value::Mapping(old_map), Value::Mapping(new_map)) = (old, new) else {
            let (old, new) = (render(old, class), render(new, class));
            // Two different secrets both show as `<redacted>`: still a change worth listing.
            self.push(path, ChangeKind::Modified { old, new });
            return;
        };
        for (key, old_value) in old_map {
            let key_text = render_key(key);
            let child = child_class(class, &key_text);
            path.push(key_text);
            match new_map.get(key) {
                Some(new_value) => self.walk(path, old_value, new_value, child),
                None => self.push(path, ChangeKind::Removed { value: render_leaf(old_value, child) }),
            }
            path.pop();
        }
        for (key, new_value) in new_map {
            if old_map.contains_key(key) {
                continue;
            }
            let key_text = render_key(key);
            let child = child_class(class, &key_text);
            path.push(key_text);
            self.push(path, ChangeKind::Added { value: render_leaf(new_value, child) });
            path.pop();
        }
    }
}

fn child_class(parent: KeyClass, key: &str) -> KeyClass {
    match parent {
        KeyClass::Secret => KeyClass::Secret,
        _ => classify_key(key),
    }
}

fn render_key(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => render(other, KeyClass::Plain),
    }
}

/// A value worth showing on an added or removed line: scalars and lists, not whole mappings.
fn render_leaf(value: &Value, class: KeyClass) -> Option<String> {
    match value {
        Value::Mapping(_) => None,
        other => Some(render(other, class)),
    }
}

/// A value as one line of flow YAML, with secrets redacted.
fn render(value: &Value, class: KeyClass) -> String {
    if class == KeyClass::Secret {
        return REDACTED.to_owned();
    }
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => shown_scalar(class, n.to_string()),
        Value::String(s) if s.is_empty() => "\"\"".to_owned(),
        Value::String(s) => shown(class, s),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(|v| render(v, class)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Mapping(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    let key = render_key(k);
                    let value = render(v, child_class(class, &key));
                    format!("{}: {value}", redact_value(&key))
                })
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Tagged(tagged) => format!("{} {}", tagged.tag, render(&tagged.value, class)),
    }
}

fn shown_scalar(class: KeyClass, text: String) -> String {
    match class {
        KeyClass::Plain => text,
        _ => shown(class, &text),
    }
}

/// The file's stem: `rate_limits.yaml` → `rate_limits`.
fn stem(file: &str) -> &str {
    file.strip_suffix(".yaml").or_else(|| file.strip_suffix(".yml")).unwrap_or(file)
}

/// `rate_limits.groq.rpm: 30 → 60`, `providers.mistral: added`, `files: settings.yaml added`.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |f: &mut fmt::Formatter<'_>| {
            if self.path.is_empty() {
                write!(f, "{}: ", stem(&self.file))
            } else {
                write!(f, "{}.{}: ", stem(&self.file), self.path)
            }
        };
        match &self.kind {
            ChangeKind::Modified { old, new } => {
                at(f)?;
                write!(f, "{old} → {new}")
            }
            ChangeKind::Added { value: None } => at(f).and_then(|()| f.write_str("added")),
            ChangeKind::Added { value: Some(v) } => at(f).and_then(|()| write!(f, "added ({v})")),
            ChangeKind::Removed { value: None } => at(f).and_then(|()| f.write_str("removed")),
            ChangeKind::Removed { value: Some(v) } => at(f).and_then(|()| write!(f, "removed (was {v})")),
            ChangeKind::FileAdded => write!(f, "files: {} added", self.file),
            ChangeKind::FileRemoved => write!(f, "files: {} removed", self.file),
            ChangeKind::Unparsed => write!(f, "{}: content changed (not valid YAML)", self.file),
        }
    }
}

/// One change a line; nothing for an empty diff.
impl fmt::Display for SemanticDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, change) in self.changes.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{change}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    fn bundle(files: &[(&str, &str)]) -> Sources {
        Sources::from_files(files.iter().map(|(n, b)| SourceFile::new(*n, *b)))
    }

    /// Diffs one file's two versions and returns the lines a person reads.
    fn check(old: &str, new: &str, expected: &[&str]) {
        let diff = semantic_diff(&bundle(&[("providers.yaml", old)]), &bundle(&[("providers.yaml", new)]));
        let text = diff.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn cases() {
        check("a: 1\n", "a: 1 # comment\n", &[]);
        check("groq:\n  rpm: 30\n", "groq:\n  rpm: 60\n", &["providers.groq.rpm: 30 → 60"]);
        check(
            "mary:\n  fallbacks: [groq, gemini]\n",
            "mary:\n  fallbacks: [gemini]\n",
            &["providers.mary.fallbacks: [groq, gemini] → [gemini]"],
        );
        check("a: {}\n", "a: {}\nmistral:\n  model: m\n", &["providers.mistral: added"]);
        check("a: {}\ncerebras:\n  rpm: 1\n", "a: {}\n", &["providers.cerebras: removed"]);
        check("a:\n  x: 1\n", "a:\n  x: 1\n  y: 2\n", &["providers.a.y: added (2)"]);
        check("a:\n  x: 1\n  y: 2\n", "a:\n  x: 1\n", &["providers.a.y: removed (was 2)"]);
        check("a: [\n", "a: 1\n", &["providers.yaml: content changed (not valid YAML)"]);
        check("a: 1\n", "a:\n  b: 1\n", &["providers.a: 1 → {b: 1}"]);
    }

    #[test]
    fn secrets_redacted_env_names_shown() {
        check("g:\n  api_key: aaa\n", "g:\n  api_key: bbb\n", &["providers.g.api_key: <redacted> → <redacted>"]);
        check(
            "g:\n  api_key_env: GROQ_API_KEY\n",
            "g:\n  api_key_env: GROQ_KEY\n",
            &["providers.g.api_key_env: GROQ_API_KEY → GROQ_KEY"],
        );
        check(
            "g:\n  base_url: https://a.example/v1\n",
            "g:\n  base_url: https://u:pw@a.example/v1\n",
            &["providers.g.base_url: https://a.example/v1 → https://<redacted>@a.example/v1"],
        );
        check(
            "g:\n  notify: https://example.com\n",
            "g:\n  notify: https://hooks.slack.com/services/T/B/C\n",
            &["providers.g.notify: https://example.com → <redacted>"],
        );
        check("g: {}\n", "g:\n  credentials:\n    user: a\n    pass: b\n", &["providers.g.credentials: added"]);
        check("g: {}\n", "g:\n  headers: {Authorization: Bearer x}\n", &["providers.g.headers: added"]);
        check(
            "g:\n  headers: {Authorization: a}\n",
            "g:\n  headers: {Authorization: b}\n",
            &["providers.g.headers.Authorization: <redacted> → <redacted>"],
        );
        check("g: 1\n", "g:\n  token: x\n", &["providers.g: 1 → {token: <redacted>}"]);
    }

    #[test]
    fn files_added_and_removed() {
        let old = bundle(&[("a.yaml", "x: 1\n"), ("b.yaml", "y: 1\n")]);
        let new = bundle(&[("a.yaml", "x: 1\n"), ("settings.yaml", "z: 1\n")]);
        assert_eq!(semantic_diff(&old, &new).to_string(), "files: b.yaml removed\nfiles: settings.yaml added");
    }
}
