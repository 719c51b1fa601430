//! `hotconf schema`: the gateway's JSON Schemas (draft 2020-12), for editors. Prints one file's
//! schema, all of them in one object keyed by file name, or writes them as
//! `DIR/<stem>.schema.json` (how the committed `schemas/` is regenerated).

use std::io::Write;
use std::path::Path;

use hotconf::schema::to_file_text;
use hotconf_gateway::GatewaySchema;

use crate::Exit;

/// Prints the schema of `file` (`rate_limits`, `rate_limits.yaml`), or of every file as one
/// object keyed by file name; or, with `write`, writes each file's schema into that directory.
pub fn run(file: Option<&str>, write: Option<&Path>) -> Exit {
    let mut docs = GatewaySchema::json_schemas();
    if let Some(file) = file {
        let wanted = if file.ends_with(".yaml") { file.to_owned() } else { format!("{file}.yaml") };
        match docs.remove(&wanted) {
            Some(doc) => docs = [(wanted, doc)].into(),
            None => {
                let known: Vec<_> = docs.keys().map(|k| k.trim_end_matches(".yaml")).collect();
                eprintln!("error: no config file `{file}`: the gateway's files are {}", known.join(", "));
                return Exit::Usage;
            }
        }
    }
    if let Some(dir) = write {
        for (name, doc) in &docs {
            let path = dir.join(format!("{}.schema.json", name.trim_end_matches(".yaml")));
            if let Err(e) = std::fs::write(&path, to_file_text(doc)) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return Exit::Failure;
            }
            eprintln!("wrote {}", path.display());
        }
        return Exit::Ok;
    }
    let text = match (file, docs.values().next()) {
        (Some(_), Some(doc)) => to_file_text(doc),
        _ => to_file_text(&serde_json::Value::Object(docs.into_iter().collect())),
    };
    // A closed pipe (`hotconf schema | head`) is the reader's choice, not a failure to report.
    match std::io::stdout().write_all(text.as_bytes()) {
        Ok(()) => Exit::Ok,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            Exit::Failure
        }
    }
}
