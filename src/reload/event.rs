//! What the reloader tells a library user after each attempt that changed something.

use super::failure::Failure;
use super::status::Trigger;
use crate::snapshot::SemanticDiff;
use crate::validate::Diagnostics;

/// One reload event, as [`Live::events`](crate::Live::events) delivers them.
///
/// Events are sent without blocking the reloader: when the receiver lags more than the channel's
/// capacity behind, newer events are dropped (the status, [`Live::status`](crate::Live::status), is
/// always current).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReloadEvent {
    /// A new version is live (every component acknowledged it).
    Applied {
        /// The version now live.
        version: u64,
        /// What started the attempt.
        trigger: Trigger,
        /// What changed, value by value, secrets redacted.
        diff: SemanticDiff,
    },
    /// The files were invalid; the running version is kept.
    Rejected {
        /// What started the attempt.
        trigger: Trigger,
        /// Every problem found, with file, YAML path and line:column.
        diagnostics: Diagnostics,
    },
    /// The attempt failed for a transient reason (a timeout, the store, a component); it is
    /// retried while the content is pending. The running version is kept.
    Failed {
        /// What started the attempt.
        trigger: Trigger,
        /// Why: a typed cause and the words for a person.
        failure: Failure,
    },
    /// A failure state ended: `version` is live and matches the files.
    Recovered {
        /// The version live now.
        version: u64,
    },
}

/// One line for `Applied`, `Failed` and `Recovered`; `Rejected` lists every diagnostic.
///
/// ```text
/// version 2 applied (change): app.workers: 4 → 8
/// rejected (change): 1 problem; the running version is kept
/// app.yaml:2:10: workers: invalid value number `0`: expected a nonzero u32
///   help: use a whole number of 1 or more
/// ```
impl std::fmt::Display for ReloadEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadEvent::Applied { version, trigger, diff } => {
                write!(f, "version {version} applied ({})", trigger.as_str())?;
                if !diff.is_empty() {
                    write!(f, ": {}", diff.to_string().replace('\n', "; "))?;
                }
                Ok(())
            }
            ReloadEvent::Rejected { trigger, diagnostics } => {
                let n = diagnostics.problems();
                let s = if n == 1 { "" } else { "s" };
                write!(f, "rejected ({}): {n} problem{s}; the running version is kept\n{diagnostics}", trigger.as_str())
            }
            ReloadEvent::Failed { trigger, failure } => {
                write!(f, "failed ({}): {failure}; the running version is kept", trigger.as_str())
            }
            ReloadEvent::Recovered { version } => write!(f, "recovered: version {version} matches the files"),
        }
    }
}

impl ReloadEvent {
    /// The version, for [`ReloadEvent::Applied`] and [`ReloadEvent::Recovered`].
    pub fn version(&self) -> Option<u64> {
        match self {
            ReloadEvent::Applied { version, .. } | ReloadEvent::Recovered { version } => Some(*version),
            _ => None,
        }
    }
}
