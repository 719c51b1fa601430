//! `hotconf validate`: the check an operator runs before shipping a change.

use std::path::Path;

use hotconf::gateway::GatewaySchema;
use hotconf::{validate_with, ProcessEnv, Schema, Sources, SourcesLimits};

use crate::{Exit, Format};

pub fn run(dir: &Path, format: Format) -> Exit {
    let sources = match Sources::read_dir(dir, SourcesLimits::default()) {
        Ok(s) => s,
        Err(e) => {
            let cause = e.source.to_string();
            match format {
                Format::Text => println!("error: {e}: {cause}"),
                Format::Json => println!(
                    "{}",
                    serde_json::json!({"file": dir.display().to_string(), "code": "unreadable-directory", "message": format!("{e}: {cause}")})
                ),
            }
            return Exit::Invalid;
        }
    };
    let file_count = sources.files().len();
    let schema = GatewaySchema::default();
    match validate_with(&schema, sources, &ProcessEnv) {
        Ok(valid) => {
            let hash = valid.hash().to_hex();
            let summary = schema.summary(valid.config());
            match format {
                Format::Text => {
                    println!("ok: {}: {file_count} files, {summary}, bundle {}", dir.display(), &hash[..12])
                }
                Format::Json => println!(
                    "{}",
                    serde_json::json!({"valid": true, "config": dir.display().to_string(), "files": file_count, "summary": summary, "bundle_hash": hash.as_str()})
                ),
            }
            Exit::Ok
        }
        Err(diagnostics) => {
            match format {
                Format::Text => {
                    println!("{diagnostics}");
                    println!("error: {}", invalid_summary(&dir.display().to_string(), diagnostics.problems()));
                }
                Format::Json => {
                    for d in diagnostics.as_slice() {
                        println!("{}", serde_json::to_string(d).expect("diagnostics serialize"));
                    }
                }
            }
            Exit::Invalid
        }
    }
}

/// `DIR is invalid: N problem(s)`, the closing line every command prints after the diagnostics.
pub fn invalid_summary(label: &str, problems: usize) -> String {
    format!("{label} is invalid: {problems} problem{}", if problems == 1 { "" } else { "s" })
}
