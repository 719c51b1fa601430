//! `hotconf validate`: the check an operator runs before shipping a change.
//!
//! Streams: the result (the `ok:` line, or with `--format json|github` every object or
//! workflow command) goes to stdout; diagnostics and errors a person reads go to stderr. Every
//! text line shows what a user wrote (the directory, file names, keys) through
//! [`visible`]; JSON is escaped by serde_json.

use std::path::Path;

use hotconf::{validate_with, Schema, Sources};
use hotconf_gateway::GatewaySchema;

use crate::envcheck::Env;
use crate::escape::visible;
use crate::{github, CheckFormat, Exit};

pub fn run(dir: &Path, format: CheckFormat, env: &Env) -> Exit {
    let sources = match Sources::read_dir(dir, Sources::DEFAULT_MAX_FILE_BYTES) {
        Ok(s) => s,
        Err(e) => {
            let message = format!("{e}: {}", e.source);
            match format {
                CheckFormat::Text => eprintln!("error: {}", visible(&message)),
                CheckFormat::Json => println!(
                    "{}",
                    serde_json::json!({"file": dir.display().to_string(), "code": "unreadable-directory", "message": message})
                ),
                CheckFormat::Github => {
                    println!("{}", github::plain_error(&message));
                    eprintln!("error: {}", visible(&message));
                }
            }
            return Exit::Invalid;
        }
    };
    let file_count = sources.files().len();
    let texts = if format == CheckFormat::Text { crate::render::texts(&sources) } else { Default::default() };
    let schema = GatewaySchema::default();
    let result = validate_with(&schema, sources, env.lookup());
    env.note_skipped();
    match result {
        Ok(valid) => {
            let hash = valid.hash().to_hex();
            let summary = schema.summary(valid.config());
            match format {
                CheckFormat::Text | CheckFormat::Github => {
                    let line = format!("ok: {}: {file_count} files, {summary}, bundle {}", dir.display(), &hash[..12]);
                    println!("{}", visible(&line));
                }
                CheckFormat::Json => println!(
                    "{}",
                    serde_json::json!({"valid": true, "config": dir.display().to_string(), "files": file_count, "summary": summary, "bundle_hash": hash.as_str()})
                ),
            }
            Exit::Ok
        }
        Err(diagnostics) => {
            let label = dir.display().to_string();
            match format {
                CheckFormat::Text => {
                    crate::render::eprint(&diagnostics, Some(dir), &texts);
                    eprintln!("error: {}", invalid_summary(&label, diagnostics.problems()));
                }
                CheckFormat::Json => {
                    for d in diagnostics.as_slice() {
                        println!("{}", serde_json::to_string(d).expect("diagnostics serialize"));
                    }
                }
                CheckFormat::Github => {
                    print_github(dir, diagnostics.as_slice());
                    eprintln!("error: {}", invalid_summary(&label, diagnostics.problems()));
                }
            }
            Exit::Invalid
        }
    }
}

/// Every diagnostic as a GitHub `::error` workflow command on stdout.
pub fn print_github<T: serde::Serialize>(dir: &Path, diagnostics: &[T]) {
    for d in diagnostics {
        let json = serde_json::to_value(d).expect("diagnostics serialize");
        println!("{}", github::error_line(dir, &json));
    }
}

/// `DIR is invalid: N problem(s)`, the closing line every command prints after the diagnostics
/// (`label` shown through [`visible`]).
pub fn invalid_summary(label: &str, problems: usize) -> String {
    format!("{} is invalid: {problems} problem{}", visible(label), if problems == 1 { "" } else { "s" })
}
