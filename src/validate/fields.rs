//! Typed reading of a parsed YAML tree that records every problem instead of stopping at the first,
//! each at its YAML path and line. A [`Schema`](super::Schema) builds its config with it.

use yaml_serde::Value;

use super::diagnostic::{Diagnostic, DiagnosticKind};
use super::yaml::{ParsedFile, YamlPath};

/// The most diagnostics one file reports; the rest are counted in one closing diagnostic, so a
/// file of 50,000 unknown keys costs linear time to judge and stays readable.
pub const MAX_DIAGNOSTICS_PER_FILE: usize = 100;

/// Reads values of one parsed file, collecting diagnostics (at most
/// [`MAX_DIAGNOSTICS_PER_FILE`], then a count of the others).
#[derive(Debug)]
pub struct Checker<'a, 'f> {
    file: &'a ParsedFile<'f>,
    diagnostics: Vec<Diagnostic>,
    not_shown: usize,
}

/// A mapping's entries with string keys, in file order.
pub type Entries<'v> = Vec<(&'v str, &'v Value)>;

impl<'a, 'f> Checker<'a, 'f> {
    /// A checker for `file`.
    pub fn new(file: &'a ParsedFile<'f>) -> Self {
        Self { file, diagnostics: Vec::new(), not_shown: 0 }
    }

    /// Records a problem at `path` (only counted once the file has
    /// [`MAX_DIAGNOSTICS_PER_FILE`]).
    pub fn report(&mut self, path: &YamlPath, kind: DiagnosticKind) {
        if self.diagnostics.len() < MAX_DIAGNOSTICS_PER_FILE {
            self.diagnostics.push(self.file.diagnostic(path, kind));
        } else {
            self.not_shown += 1;
        }
    }

    /// The diagnostics recorded, then one saying how many more were found, if any.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        if self.not_shown > 0 {
            let kind = DiagnosticKind::MoreProblems { count: self.not_shown };
            self.diagnostics.push(Diagnostic::file(self.file.name, kind));
        }
        self.diagnostics
    }

    /// The entries of a mapping whose keys are all strings; reports a non-mapping or a non-string key.
    pub fn mapping<'v>(&mut self, value: &'v Value, path: &YamlPath) -> Option<Entries<'v>> {
        let Value::Mapping(map) = value else {
            self.wrong_type(value, path, "a mapping");
            return None;
        };
        let mut entries = Vec::with_capacity(map.len());
        for (k, v) in map {
            match k.as_str() {
                Some(key) => entries.push((key, v)),
                None => self.wrong_type(k, path, "string keys"),
            }
        }
        Some(entries)
    }

    /// Reports every key of `entries` not in `allowed`, suggesting the closest allowed key.
    /// Keys for which `special` returns a kind are reported with that kind instead.
    pub fn known_keys(
        &mut self,
        entries: &Entries<'_>,
        path: &YamlPath,
        allowed: &[&'static str],
        special: impl Fn(&str) -> Option<DiagnosticKind>,
    ) {
        for (key, _) in entries {
            if allowed.contains(key) {
                continue;
            }
            let kind = special(key).unwrap_or_else(|| DiagnosticKind::UnknownKey {
                key: (*key).to_owned(),
                suggestion: closest(key, allowed),
            });
            self.report(&path.key(key), kind);
        }
    }

    /// The value of `key`, reporting it missing when absent.
    pub fn required<'v>(&mut self, entries: &Entries<'v>, path: &YamlPath, key: &'static str) -> Option<&'v Value> {
        let value = optional(entries, key);
        if value.is_none() {
            self.report(path, DiagnosticKind::MissingKey { key });
        }
        value
    }

    /// A positive integer that fits in a `u64`.
    pub fn positive_integer(&mut self, value: &Value, path: &YamlPath) -> Option<u64> {
        match value {
            Value::Number(n) if n.as_u64().is_some_and(|n| n > 0) => n.as_u64(),
            Value::Number(n) if n.as_i64().is_some() || n.as_u64().is_some() => {
                self.report(path, DiagnosticKind::NotPositive { value: n.to_string() });
                None
            }
            _ => {
                self.wrong_type(value, path, "a positive integer");
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    pub fn integer_in(
        &mut self,
        value: &Value,
        path: &YamlPath,
        min: u64,
        max: u64,
        range: &'static str,
    ) -> Option<u64> {
        match value {
            Value::Number(n) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Some(v),
                _ if n.is_f64() => {
                    self.wrong_type(value, path, "an integer");
                    None
                }
                _ => {
                    self.report(path, DiagnosticKind::OutOfRange { value: n.to_string(), range });
                    None
                }
            },
            _ => {
                self.wrong_type(value, path, "an integer");
                None
            }
        }
    }

    /// A number (integer or decimal) in `(0, max]`.
    pub fn positive_number(&mut self, value: &Value, path: &YamlPath, max: f64, range: &'static str) -> Option<f64> {
        match value {
            Value::Number(n) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if v > 0.0 && v <= max {
                    Some(v)
                } else {
                    self.report(path, DiagnosticKind::OutOfRange { value: n.to_string(), range });
                    None
                }
            }
            _ => {
                self.wrong_type(value, path, "a number");
                None
            }
        }
    }

    /// A boolean.
    pub fn boolean(&mut self, value: &Value, path: &YamlPath) -> Option<bool> {
        let b = value.as_bool();
        if b.is_none() {
            self.wrong_type(value, path, "true or false");
        }
        b
    }

    /// A non-empty string.
    pub fn string<'v>(&mut self, value: &'v Value, path: &YamlPath) -> Option<&'v str> {
        match value.as_str() {
            Some("") => {
                self.report(path, DiagnosticKind::EmptyString);
                None
            }
            Some(s) => Some(s),
            None => {
                self.wrong_type(value, path, "a string");
                None
            }
        }
    }

    /// A list.
    pub fn sequence<'v>(&mut self, value: &'v Value, path: &YamlPath) -> Option<&'v [Value]> {
        let s = value.as_sequence().map(Vec::as_slice);
        if s.is_none() {
            self.wrong_type(value, path, "a list");
        }
        s
    }

    /// Reports `value` as not being `expected`.
    pub fn wrong_type(&mut self, value: &Value, path: &YamlPath, expected: &'static str) {
        self.report(path, DiagnosticKind::WrongType { expected, found: type_name(value) });
    }
}

/// The value of `key` in `entries`.
pub fn optional<'v>(entries: &Entries<'v>, key: &str) -> Option<&'v Value> {
    entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// How a person calls the type of `value`.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// The allowed key within edit distance 2 of `key`, if any. Keys whose lengths differ by more
/// than 2 are never compared (the distance is at least the difference), so a huge key costs
/// linear time.
fn closest(key: &str, allowed: &[&'static str]) -> Option<&'static str> {
    let len = key.chars().count();
    allowed
        .iter()
        .filter(|a| a.chars().count().abs_diff(len) <= 2)
        .map(|a| (edit_distance(key, a), *a))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggestions() {
        assert_eq!(super::closest("burts", &["rpm", "burst", "tokens_per_minute"]), Some("burst"));
        assert_eq!(super::closest("color", &["rpm", "burst"]), None);
    }
}
