//! `hotconf history` and `hotconf show`: list the stored versions, print one manifest or file.
//!
//! File names and error texts in the table and in errors go through [`visible`]; the manifest is
//! JSON (escaped by serde_json), and a file `show` prints is its bytes, unchanged, on purpose.

use std::io::Write;
use std::path::Path;

use hotconf::store::{Entry, Manifest};

use crate::escape::visible;
use crate::store::{chain, open_existing, report};
use crate::{Exit, Format};

/// The table of versions, oldest first; `*` marks the running version.
pub fn history(snapshots: &Path, format: Format) -> Exit {
    let store = match open_existing(snapshots) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    // Every file's hash is checked, so a version `show`, `diff` and `restore` would refuse is
    // listed as damaged, not as healthy.
    let entries = match store.verified_entries() {
        Ok(e) => e,
        Err(e) => return report(&e),
    };
    let running = store.running().ok().flatten();
    match format {
        Format::Json => {
            for entry in &entries {
                let line = match entry {
                    Entry::Listed(m) => {
                        let mut value = serde_json::to_value(m).expect("a manifest serializes");
                        value["running"] = (Some(m.version) == running).into();
                        value
                    }
                    Entry::Damaged { version, error } => {
                        serde_json::json!({"version": version, "damaged": chain(error)})
                    }
                    _ => continue,
                };
                println!("{line}");
            }
        }
        Format::Text => {
            if entries.is_empty() {
                println!("no versions in {}", visible(&snapshots.display().to_string()));
                return Exit::Ok;
            }
            let rows: Vec<[String; 5]> = entries.iter().filter_map(|e| row(e, running)).collect();
            let header = ["VERSION", "CREATED", "ORIGIN", "CHANGED", "HASH"].map(String::from);
            let mut widths = header.clone().map(|h| h.len());
            for r in &rows {
                for (w, cell) in widths.iter_mut().zip(r) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            for r in std::iter::once(&header).chain(&rows) {
                let line = format!(
                    "{:>w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2],
                    w3 = widths[3]
                );
                println!("{}", line.trim_end());
            }
        }
    }
    Exit::Ok
}

fn row(entry: &Entry, running: Option<u64>) -> Option<[String; 5]> {
    Some(match entry {
        Entry::Listed(m) => {
            let mark = if Some(m.version) == running { "*" } else { " " };
            let origin = match m.same_as {
                Some(v) => format!("{}, same as v{v}", m.origin),
                None => m.origin.to_string(),
            };
            [format!("{mark}{}", m.version), m.created_at.clone(), origin, changed(m), m.short_hash().to_owned()]
        }
        Entry::Damaged { version, error } => {
            [format!(" {version}"), "-".into(), "damaged".into(), visible(&chain(error)).into_owned(), "-".into()]
        }
        _ => return None,
    })
}

fn changed(m: &Manifest) -> String {
    if m.changed_files.is_empty() {
        "-".to_owned()
    } else {
        visible(&m.changed_files.join(", ")).into_owned()
    }
}

/// A version's manifest (pretty JSON), or one of its files byte for byte, after verifying hashes.
pub fn show(snapshots: &Path, version: u64, file: Option<&str>) -> Exit {
    let store = match open_existing(snapshots) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let stored = match store.read(version) {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    match file {
        None => println!("{}", serde_json::to_string_pretty(stored.manifest()).expect("a manifest serializes")),
        Some(name) => {
            let Some(bytes) = stored.sources().get(name).and_then(|f| f.bytes()) else {
                let names: Vec<&str> = stored.sources().names().collect();
                eprintln!(
                    "error: version {version} has no file {}; it has {}",
                    visible(name),
                    visible(&names.join(", "))
                );
                return Exit::Invalid;
            };
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
                eprintln!("error: cannot write to stdout: {e}");
                return Exit::Failure;
            }
        }
    }
    Exit::Ok
}
