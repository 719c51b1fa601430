//! Semantic diff: compares two bundles of YAML files value by value and lists each change by its
//! path, old → new, with secret-looking values redacted. Knows YAML, never a schema; never touches
//! the filesystem.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use yaml_serde::Value;

use crate::secret::{classify_key, redact_value, shown, KeyClass, REDACTED};
use crate::source::Sources;

/// One change, at `file` and the YAML `path` inside it (empty for the whole file).
///
/// Serialized with a fixed field order: `{"file", "path", "change", …}`; `change` is one of
/// `modified` (`old`, `new`), `added` (`value`), `removed` (`value`), `file_added`,
/// `file_removed`, `unparsed`. Values keep their YAML types in JSON (numbers, booleans, null,
/// lists, mappings in document order) and are already redacted: a redacted value is the string
/// `"<redacted>"`.
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

/// What changed at a path. Every value is already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChangeKind {
    /// A value changed.
    Modified {
        /// The old value.
        old: DiffValue,
        /// The new value.
        new: DiffValue,
    },
    /// A key appeared, with its value (a whole mapping for a new section).
    Added {
        /// The new value.
        value: DiffValue,
    },
    /// A key disappeared, with the value it had.
    Removed {
        /// The old value.
        value: DiffValue,
    },
    /// A file appeared.
    FileAdded,
    /// A file disappeared.
    FileRemoved,
    /// The file's content changed and one side is not valid YAML: no values are shown.
    Unparsed,
}

/// A value in a diff, redacted, with its YAML type kept: JSON gets numbers as numbers and
/// mappings as objects (keys in document order); `Display` gives one line of flow YAML
/// (`[groq, gemini]`, `{rpm: 30}`).
///
/// ```
/// use hotconf::store::DiffValue;
/// let v = DiffValue::Map(vec![("rpm".into(), DiffValue::Number("30".into()))]);
/// assert_eq!(v.to_string(), "{rpm: 30}");
/// assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"rpm":30}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiffValue {
    /// `null` (or `~`).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as YAML wrote it (`30`, `0.5`); a JSON number when JSON can hold it.
    Number(String),
    /// A string (or a redacted value, `<redacted>`).
    String(String),
    /// A sequence.
    List(Vec<DiffValue>),
    /// A mapping, keys in document order.
    Map(Vec<(String, DiffValue)>),
}

impl DiffValue {
    /// Whether this is a mapping.
    pub fn is_map(&self) -> bool {
        matches!(self, DiffValue::Map(_))
    }
}

impl fmt::Display for DiffValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiffValue::Null => f.write_str("null"),
            DiffValue::Bool(b) => write!(f, "{b}"),
            DiffValue::Number(n) => f.write_str(n),
            DiffValue::String(s) if s.is_empty() => f.write_str("\"\""),
            DiffValue::String(s) => f.write_str(s),
            DiffValue::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            DiffValue::Map(entries) => {
                f.write_str("{")?;
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}: {value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl Serialize for DiffValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            DiffValue::Null => serializer.serialize_unit(),
            DiffValue::Bool(b) => serializer.serialize_bool(*b),
            DiffValue::Number(n) => {
                if let Ok(i) = n.parse::<i64>() {
                    serializer.serialize_i64(i)
                } else if let Ok(u) = n.parse::<u64>() {
                    serializer.serialize_u64(u)
                } else {
                    match n.parse::<f64>() {
                        Ok(x) if x.is_finite() => serializer.serialize_f64(x),
                        // `.inf`, `.nan`, `0x1F`: JSON has no such number; kept as written.
                        _ => serializer.serialize_str(n),
                    }
                }
            }
            DiffValue::String(s) => serializer.serialize_str(s),
            DiffValue::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            DiffValue::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for DiffValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = DiffValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a diff value")
            }
            fn visit_unit<E>(self) -> Result<DiffValue, E> {
                Ok(DiffValue::Null)
            }
            fn visit_none<E>(self) -> Result<DiffValue, E> {
                Ok(DiffValue::Null)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<DiffValue, D::Error> {
                DiffValue::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<DiffValue, E> {
                Ok(DiffValue::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<DiffValue, E> {
                Ok(DiffValue::Number(n.to_string()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<DiffValue, E> {
                Ok(DiffValue::Number(n.to_string()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<DiffValue, E> {
                Ok(DiffValue::Number(n.to_string()))
            }
            fn visit_str<E>(self, s: &str) -> Result<DiffValue, E> {
                Ok(DiffValue::String(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<DiffValue, E> {
                Ok(DiffValue::String(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<DiffValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(DiffValue::List(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<DiffValue, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(DiffValue::Map(entries))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The changes between two bundles, file by file in name order, keys in document order.
///
/// ```
/// use hotconf::store::semantic_diff;
/// use hotconf::{SourceFile, Sources};
/// let old = Sources::from_files([SourceFile::new("rate_limits.yaml", "groq:\n  rpm: 30\n")]);
/// let new = Sources::from_files([SourceFile::new("rate_limits.yaml", "groq:\n  rpm: 60 # busier\n")]);
/// assert_eq!(semantic_diff(&old, &new).to_string(), "rate_limits.groq.rpm: 30 → 60");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SemanticDiff {
    changes: Vec<Change>,
    /// Shown without the file's stem: a one-file config's paths are inside the file, as its
    /// diagnostics' are (`workers: 4 → 8`, where `app.yaml:2:10: workers: …`).
    #[serde(skip)]
    one_file: bool,
}

impl SemanticDiff {
    /// This diff shown as a one-file config's: paths inside the file, without its stem, in the
    /// one form its diagnostics use.
    pub(crate) fn of_one_file(mut self) -> Self {
        self.one_file = true;
        self
    }

    /// The changes (feature `store`; `Display` and `Serialize` give them without it).
    #[cfg(feature = "store")]
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
    semantic_diff_from(old, new, &mut DiffMemo::default())
}

/// The documents a diff parsed on its new side, by name and exact bytes: a reloader's next diff
/// starts from that same content (the version it now runs), so each change parses its changed
/// files once, not twice.
#[derive(Debug, Default)]
pub(crate) struct DiffMemo {
    kept: HashMap<String, (Vec<u8>, Option<Value>)>,
}

/// [`semantic_diff`], taking `old`'s documents from `memo` where it holds the same bytes, and
/// leaving in it the documents of `new` it parsed.
pub(crate) fn semantic_diff_from(old: &Sources, new: &Sources, memo: &mut DiffMemo) -> SemanticDiff {
    let mut kept = HashMap::new();
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
            (Some(a), Some(b)) => {
                let old_value = match memo.kept.remove(name) {
                    Some((bytes, value)) if Some(&bytes[..]) == a.bytes() => value,
                    _ => parse(a.bytes()),
                };
                let new_value = parse(b.bytes());
                match (&old_value, &new_value) {
                    (Some(a), Some(b)) => {
                        let mut walker = Walker { file: name, changes: &mut changes };
                        walker.walk(&mut Vec::new(), a, b, KeyClass::Plain);
                    }
                    _ => changes.push(change("", ChangeKind::Unparsed)),
                }
                if let Some(bytes) = b.bytes() {
                    kept.insert(name.to_owned(), (bytes.to_vec(), new_value));
                }
            }
            (None, None) => unreachable!("the name comes from one of the two"),
        }
    }
    memo.kept = kept;
    SemanticDiff { changes, one_file: false }
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
                None => self.push(path, ChangeKind::Removed { value: render(old_value, child) }),
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
            self.push(path, ChangeKind::Added { value: render(new_value, child) });
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
        other => render(other, KeyClass::Plain).to_string(),
    }
}

/// A value with secrets redacted and its type kept.
fn render(value: &Value, class: KeyClass) -> DiffValue {
    if class == KeyClass::Secret {
        return DiffValue::String(REDACTED.to_owned());
    }
    match value {
        Value::Null => DiffValue::Null,
        Value::Bool(b) => DiffValue::Bool(*b),
        Value::Number(n) if class == KeyClass::Plain => DiffValue::Number(n.to_string()),
        Value::Number(n) => DiffValue::String(shown(class, &n.to_string())),
        Value::String(s) if s.is_empty() => DiffValue::String(String::new()),
        Value::String(s) => DiffValue::String(shown(class, s)),
        Value::Sequence(items) => DiffValue::List(items.iter().map(|v| render(v, class)).collect()),
        Value::Mapping(map) => DiffValue::Map(
            map.iter()
                .map(|(k, v)| {
                    let key = render_key(k);
                    let value = render(v, child_class(class, &key));
                    (redact_value(&key), value)
                })
                .collect(),
        ),
        Value::Tagged(tagged) => DiffValue::String(format!("{} {}", tagged.tag, render(&tagged.value, class))),
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
            // A whole section's values are in the JSON; the line stays short.
            ChangeKind::Added { value } if value.is_map() => at(f).and_then(|()| f.write_str("added")),
            ChangeKind::Added { value } => at(f).and_then(|()| write!(f, "added ({value})")),
            ChangeKind::Removed { value } if value.is_map() => at(f).and_then(|()| f.write_str("removed")),
            ChangeKind::Removed { value } => at(f).and_then(|()| write!(f, "removed (was {value})")),
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
            match &change.kind {
                ChangeKind::Modified { .. } | ChangeKind::Added { .. } | ChangeKind::Removed { .. }
                    if self.one_file && !change.path.is_empty() =>
                {
                    let inside = Change { file: String::new(), path: change.path.clone(), kind: change.kind.clone() };
                    write!(f, "{}", inside.to_string().trim_start_matches('.'))?;
                }
                _ => write!(f, "{change}")?,
            }
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
        check(
            "g: {}\n",
            "g:\n  credentials:\n    user: a\n    pass: b\n",
            &["providers.g.credentials: added (<redacted>)"],
        );
        check("g: {}\n", "g:\n  headers: {Authorization: Bearer x}\n", &["providers.g.headers: added"]);
        check(
            "g:\n  headers: {Authorization: a}\n",
            "g:\n  headers: {Authorization: b}\n",
            &["providers.g.headers.Authorization: <redacted> → <redacted>"],
        );
        check("g: 1\n", "g:\n  token: x\n", &["providers.g: 1 → {token: <redacted>}"]);
    }

    /// The JSON form keeps types, shows an added or removed section's values, and redacts.
    #[test]
    fn json_values_typed() {
        let json = |old: &str, new: &str| {
            let diff = semantic_diff(&bundle(&[("p.yaml", old)]), &bundle(&[("p.yaml", new)]));
            serde_json::to_string(&diff).unwrap()
        };
        assert_eq!(
            json("g:\n  rpm: 30\n  on: false\n", "g:\n  rpm: 60\n  on: true\n"),
            r#"[{"file":"p.yaml","path":"g.rpm","change":"modified","old":30,"new":60},{"file":"p.yaml","path":"g.on","change":"modified","old":false,"new":true}]"#
        );
        assert_eq!(
            json("a: {}\n", "a: {}\nmistral:\n  model: m\n  rpm: 5\n  api_key: sk-live\n  f: [x, 0.5, null]\n"),
            r#"[{"file":"p.yaml","path":"mistral","change":"added","value":{"model":"m","rpm":5,"api_key":"<redacted>","f":["x",0.5,null]}}]"#
        );
        assert_eq!(
            json("a: {}\nc:\n  rpm: 1\n", "a: {}\n"),
            r#"[{"file":"p.yaml","path":"c","change":"removed","value":{"rpm":1}}]"#
        );
        // Read back (the audit log): the same value, keys still in order.
        let text = json("a: {}\n", "a: {}\nz:\n  b: 1\n  a: [true]\n");
        let back: SemanticDiff = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn files_added_and_removed() {
        let old = bundle(&[("a.yaml", "x: 1\n"), ("b.yaml", "y: 1\n")]);
        let new = bundle(&[("a.yaml", "x: 1\n"), ("settings.yaml", "z: 1\n")]);
        assert_eq!(semantic_diff(&old, &new).to_string(), "files: b.yaml removed\nfiles: settings.yaml added");
    }

    #[test]
    fn a_memo_parses_each_changed_file_once_and_never_answers_for_other_bytes() {
        let v1 = bundle(&[("a.yaml", "x: 1\n"), ("b.yaml", "y: 1\n")]);
        let v2 = bundle(&[("a.yaml", "x: 2\n"), ("b.yaml", "y: 1\n")]);
        let v3 = bundle(&[("a.yaml", "x: 3\n"), ("b.yaml", "y: 1\n")]);
        let mut memo = DiffMemo::default();
        assert_eq!(semantic_diff_from(&v1, &v2, &mut memo).to_string(), "a.x: 1 → 2");
        // It keeps the new side's changed file only.
        assert_eq!(memo.kept.keys().collect::<Vec<_>>(), ["a.yaml"]);
        // The next diff takes its old side from the memo: a planted document for those same bytes
        // is what it compares against, so the file was not parsed again.
        memo.kept.get_mut("a.yaml").unwrap().1 = yaml_serde::from_str("x: 20\n").ok();
        assert_eq!(semantic_diff_from(&v2, &v3, &mut memo).to_string(), "a.x: 20 → 3");
        // Kept for other bytes than the old side's: parsed afresh, as without a memo.
        memo.kept.insert("a.yaml".into(), (b"x: 9\n".to_vec(), yaml_serde::from_str("x: 9\n").ok()));
        assert_eq!(semantic_diff_from(&v2, &v3, &mut memo).to_string(), semantic_diff(&v2, &v3).to_string());
    }
}
