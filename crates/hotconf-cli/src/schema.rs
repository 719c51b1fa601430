//! `hotconf schema`: the gateway's JSON Schemas (draft 2020-12), for editors. Prints one file's
//! schema, all of them in one object keyed by file name, or writes them as
//! `DIR/<stem>.schema.json` (how the committed `schemas/` is regenerated).
//!
//! A file written there is never opened through its name: it is written to a temporary file in
//! `DIR`, synced, and renamed over the name, so a FIFO or a symlink already at the name is
//! replaced (never waited on, never followed to overwrite what it points to), and a reader sees
//! the old schema or the new one, never half of one.

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
            if let Err(e) = write_replacing(dir, &path, to_file_text(doc).as_bytes()) {
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

/// Writes `bytes` as `path` (in `dir`) by renaming a synced temporary file from `dir` over it. The
/// rename replaces whatever entry has the name (a regular file, a FIFO, a symlink: the name
/// itself, never its target); a directory there is an error. On any error the temporary file is
/// removed and `path` is unchanged.
fn write_replacing(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".hotconf-schema-").suffix(".tmp");
    // The mode `std::fs::write` would create (0666 less the umask), not tempfile's private 0600:
    // these files are committed and read by editors.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    // The rename itself survives a crash once the directory is synced; a filesystem that cannot
    // sync a directory has still renamed the file.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
