//! The log schema in `docs/operations.md` ("Logs") against the binary: every event name the
//! source logs (`event = "…"`) is in the table and every one in the table is logged somewhere, and
//! every JSON line a test sees (through [`crate::service::Service`], which calls
//! [`check_json_log`] when it is dropped) has `timestamp`, `level`, `event` and `message` and the
//! fields the table gives its event: every field not marked `?`, and no other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

/// One documented event: its level, its fields, and which of them may be left out.
#[derive(Debug)]
struct Shape {
    level: String,
    required: BTreeSet<String>,
    optional: BTreeSet<String>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The events table of `docs/operations.md`.
fn documented() -> &'static BTreeMap<String, Shape> {
    static TABLE: OnceLock<BTreeMap<String, Shape>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let text = std::fs::read_to_string(workspace().join("docs/operations.md")).unwrap();
        let logs = &text[text.find("### Logs").expect("a Logs section")..];
        let logs = &logs[..logs[3..].find("\n### ").map_or(logs.len(), |i| i + 3)];
        let mut table = BTreeMap::new();
        for row in logs.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 4, "a row of the events table has 4 cells: {row}");
            let name = cells[0].trim_matches('`').to_owned();
            let mut shape = Shape { level: cells[1].to_owned(), required: BTreeSet::new(), optional: BTreeSet::new() };
            for field in cells[2].split(',').map(str::trim).filter(|f| !f.is_empty()) {
                match field.strip_suffix('?') {
                    Some(f) => shape.optional.insert(f.trim_matches('`').to_owned()),
                    None => shape.required.insert(field.trim_matches('`').to_owned()),
                };
            }
            assert!(table.insert(name.clone(), shape).is_none(), "{name} is documented twice");
        }
        assert!(table.len() > 30, "the events table was not found: {} rows", table.len());
        table
    })
}

/// Checks every JSON line of a `hotconf run --log-format json` log against the table.
pub fn check_json_log(log: &str) -> Result<(), String> {
    for line in log.lines() {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else { continue };
        let context = || format!("log line {line}");
        for key in ["timestamp", "level", "event", "message"] {
            if fields.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(format!("{}: no `{key}`", context()));
            }
        }
        let event = fields["event"].as_str().unwrap();
        let Some(shape) = documented().get(event) else {
            return Err(format!("{}: `{event}` is not in docs/operations.md's events table", context()));
        };
        if fields["level"] != shape.level.as_str() {
            return Err(format!("{}: level {} where the table says {}", context(), fields["level"], shape.level));
        }
        let own: BTreeSet<String> = fields
            .keys()
            .filter(|k| !["timestamp", "level", "event", "message"].contains(&k.as_str()))
            .cloned()
            .collect();
        let missing: Vec<_> = shape.required.difference(&own).collect();
        let unknown: Vec<_> =
            own.iter().filter(|k| !shape.required.contains(*k) && !shape.optional.contains(*k)).collect();
        if !missing.is_empty() || !unknown.is_empty() {
            return Err(format!("{}: missing {missing:?}, not documented {unknown:?}", context()));
        }
        for (key, value) in &fields {
            if value.is_null() || (value.as_str() == Some("") && key != "path") {
                return Err(format!("{}: `{key}` is written empty; an absent value is left out", context()));
            }
        }
    }
    Ok(())
}

/// Every `event = "…"` in the library's and the binary's source (tests aside).
fn logged_in_source() -> BTreeSet<String> {
    fn walk(dir: &Path, names: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, names);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, _) in text.match_indices("event = \"") {
                    let rest = &text[i + "event = \"".len()..];
                    names.insert(rest[..rest.find('"').unwrap()].to_owned());
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    for dir in ["src", "crates/hotconf-cli/src", "crates/hotconf-gateway/src"] {
        walk(&workspace().join(dir), &mut names);
    }
    names
}

#[test]
fn every_event_the_source_logs_is_documented_and_every_documented_event_is_logged() {
    let source = logged_in_source();
    let doc: BTreeSet<String> = documented().keys().cloned().collect();
    let undocumented: Vec<_> = source.difference(&doc).collect();
    let stale: Vec<_> = doc.difference(&source).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "docs/operations.md's events table differs from the source: logged but not documented {undocumented:?}, \
         documented but never logged {stale:?}"
    );
    assert!(doc.contains("poll.recovered"));
}

#[test]
fn the_checker_refuses_an_undocumented_event_a_missing_field_and_an_empty_value() {
    let line =
        |fields: &str| format!(r#"{{"timestamp":"t","level":"INFO","event":"poll.recovered","message":"m"{fields}}}"#);
    assert_eq!(check_json_log(&line(r#","kind":"io","path":"/c""#)), Ok(()));
    assert!(check_json_log(&line("")).unwrap_err().contains("missing"));
    assert!(check_json_log(&line(r#","kind":"io","path":"/c","line":0"#)).unwrap_err().contains("not documented"));
    assert!(check_json_log(r#"{"timestamp":"t","level":"INFO","event":"poll.recovered","path":"/c"}"#)
        .unwrap_err()
        .contains("no `message`"));
    assert!(check_json_log(r#"{"timestamp":"t","level":"INFO","event":"no.such","message":"m"}"#)
        .unwrap_err()
        .contains("not in docs"));
}
