//! `hotconf diff`: the semantic diff between two versions, or between a version and a candidate
//! config directory after validating it (the plan a CI job prints on a pull request).

use std::path::Path;

use hotconf::gateway::GatewaySchema;
use hotconf::snapshot::{semantic_diff, SemanticDiff};
use hotconf::{validate_with, ProcessEnv, Sources, SourcesLimits};

use crate::store::{open_existing, report};
use crate::{Exit, Format};

/// What the diff compares a version with.
pub enum Against<'a> {
    /// Another version.
    Version(u64),
    /// A candidate config directory, validated first.
    Dir(&'a Path),
}

pub fn run(snapshots: &Path, from: u64, against: Against<'_>, format: Format) -> Exit {
    let store = match open_existing(snapshots) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let old = match store.read(from) {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    let new = match against {
        Against::Version(to) => match store.read(to) {
            Ok(s) => s.into_parts().1,
            Err(e) => return report(&e),
        },
        Against::Dir(dir) => match validated(dir) {
            Ok(sources) => sources,
            Err(exit) => return exit,
        },
    };
    print_diff(&semantic_diff(old.sources(), &new), format);
    Exit::Ok
}

/// Reads and validates a candidate directory with the gateway schema and today's environment.
pub fn validated(dir: &Path) -> Result<Sources, Exit> {
    let sources = Sources::read_dir(dir, SourcesLimits::default()).map_err(|e| {
        eprintln!("error: {}", crate::store::chain(&e));
        Exit::Invalid
    })?;
    validated_sources(&sources, &dir.display().to_string())?;
    Ok(sources)
}

/// Validates `sources` (called `label` in messages) with the gateway schema and today's
/// environment, printing every diagnostic to stderr when they are invalid.
pub fn validated_sources(sources: &Sources, label: &str) -> Result<(), Exit> {
    match validate_with(&GatewaySchema::default(), sources.clone(), &ProcessEnv) {
        Ok(_) => Ok(()),
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            eprintln!("error: {}", crate::validate::invalid_summary(label, diagnostics.problems()));
            Err(Exit::Invalid)
        }
    }
}

/// One change a line (text), or one JSON object a change (json); `no changes` for none in text.
pub fn print_diff(diff: &SemanticDiff, format: Format) {
    match format {
        Format::Text if diff.is_empty() => println!("no changes"),
        Format::Text => println!("{diff}"),
        Format::Json => {
            for change in diff.changes() {
                println!("{}", serde_json::to_string(change).expect("a change serializes"));
            }
        }
    }
}
