//! `hotconf diff`: the semantic diff between two versions, or between a version and a candidate
//! config directory after validating it (the plan a CI job prints on a pull request).
//!
//! Streams: the diff (text, or one JSON object a change) goes to stdout; the candidate's
//! diagnostics and every error to stderr, except with `--format github`, whose workflow commands
//! go to stdout for the runner to read.
//!
//! A change's line shows file names, YAML paths and values a user wrote through [`visible`], one
//! change a line whatever they hold; JSON is escaped by serde_json.

use std::path::Path;

use hotconf::store::semantic_diff;
use hotconf::SemanticDiff;
use hotconf::{validate_with, EnvLookup, ProcessEnv, Sources};
use hotconf_gateway::GatewaySchema;

use crate::envcheck::Env;
use crate::escape::visible;
use crate::store::{open_existing, report};
use crate::{github, CheckFormat, Exit, Format};

/// What the diff compares a version with.
pub enum Against<'a> {
    /// Another version.
    Version(u64),
    /// A candidate config directory, validated first.
    Dir(&'a Path),
}

/// Whether the exit code says if anything changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// 0 whatever the diff.
    Plain,
    /// `--exit-code`: 0 no changes, 1 changes, 4 refused.
    ExitCode,
}

/// How the diff is reported.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: CheckFormat,
    pub gate: Gate,
}

pub fn run(snapshots: &Path, from: u64, against: Against<'_>, output: Output, env: &Env) -> Exit {
    let refused = |exit: Exit| match (output.gate, exit) {
        (Gate::ExitCode, Exit::Invalid) => Exit::Refused,
        (_, exit) => exit,
    };
    let store = match open_existing(snapshots) {
        Ok(s) => s,
        Err(exit) => return refused(exit),
    };
    let old = match store.read(from) {
        Ok(s) => s,
        Err(e) => return refused(report(&e)),
    };
    let new = match against {
        Against::Version(to) => match store.read(to) {
            Ok(s) => s.into_parts().1,
            Err(e) => return refused(report(&e)),
        },
        Against::Dir(dir) => {
            let checked = validated(dir, env.lookup(), output.format);
            env.note_skipped();
            match checked {
                Ok(sources) => sources,
                Err(exit) => return refused(exit),
            }
        }
    };
    let diff = semantic_diff(old.sources(), &new);
    let format = match output.format {
        CheckFormat::Json => Format::Json,
        CheckFormat::Text | CheckFormat::Github => Format::Text,
    };
    print_diff(&diff, format);
    match output.gate {
        Gate::ExitCode if !diff.is_empty() => Exit::Invalid,
        _ => Exit::Ok,
    }
}

/// Reads and validates a candidate directory with the gateway schema and `env`.
fn validated(dir: &Path, env: &dyn EnvLookup, format: CheckFormat) -> Result<Sources, Exit> {
    let sources = Sources::read_dir(dir, Sources::DEFAULT_MAX_FILE_BYTES).map_err(|e| {
        let message = crate::store::chain(&e);
        if format == CheckFormat::Github {
            println!("{}", github::plain_error(&message));
        }
        eprintln!("error: {}", visible(&message));
        Exit::Invalid
    })?;
    let label = dir.display().to_string();
    match validate_with(&GatewaySchema::default(), sources.clone(), env) {
        Ok(_) => Ok(sources),
        Err(diagnostics) => {
            if format == CheckFormat::Github {
                crate::validate::print_github(dir, diagnostics.as_slice());
            } else {
                crate::render::eprint(&diagnostics, Some(dir), &crate::render::texts(&sources));
            }
            eprintln!("error: {}", crate::validate::invalid_summary(&label, diagnostics.problems()));
            Err(Exit::Invalid)
        }
    }
}

/// Validates `sources` (called `label` in messages) with the gateway schema and today's
/// environment, printing every diagnostic to stderr when they are invalid.
pub fn validated_sources(sources: &Sources, label: &str) -> Result<(), Exit> {
    match validate_with(&GatewaySchema::default(), sources.clone(), &ProcessEnv) {
        Ok(_) => Ok(()),
        Err(diagnostics) => {
            crate::render::eprint(&diagnostics, None, &crate::render::texts(sources));
            eprintln!("error: {}", crate::validate::invalid_summary(label, diagnostics.problems()));
            Err(Exit::Invalid)
        }
    }
}

/// One change a line (text, control characters made visible), or one JSON object a change
/// (json); `no changes` for none in text.
pub fn print_diff(diff: &SemanticDiff, format: Format) {
    match format {
        Format::Text if diff.is_empty() => println!("no changes"),
        Format::Text => {
            for change in diff.changes() {
                println!("{}", visible(&change.to_string()));
            }
        }
        Format::Json => {
            for change in diff.changes() {
                println!("{}", serde_json::to_string(change).expect("a change serializes"));
            }
        }
    }
}
