//! What the reloader tells its observers: one typed [`Report`] per thing that happened, fed to
//! every [`Observer`] from one place, in one order.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::failure::Failure;
use super::status::{AttemptOutcome, ComponentStatus, Trigger};
use crate::snapshot::{Origin, SemanticDiff};
use crate::validate::Diagnostics;
use crate::watch::PollErrorKind;

/// Watches the reloader: status pages, metrics, audit logs, alerts, log lines and a library
/// user's own hooks are all observers, fed every [`Report`] in the order they were added.
///
/// An observer runs on the reloader's thread: it must return quickly (hand slow work, such as
/// an HTTP call, to a thread of its own) and never block. A panic in one is caught and logged;
/// the reloader and the other observers go on.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use hotconf::{Observer, Report};
///
/// /// Counts rejected edits, for the service's own metrics.
/// struct Rejections(Arc<AtomicU64>);
///
/// impl Observer for Rejections {
///     fn observe(&mut self, report: &Report) {
///         if let Report::Attempt(attempt) = report {
///             if attempt.diagnostics.is_some() {
///                 self.0.fetch_add(1, Ordering::Relaxed);
///             }
///         }
///     }
/// }
///
/// # #[derive(Debug, serde::Deserialize)]
/// # struct App { workers: u32 }
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("app.yaml");
/// # std::fs::write(&path, "workers: 1\n")?;
/// let rejected = Arc::new(AtomicU64::new(0));
/// let live = hotconf::Hotconf::<App>::file(&path).with_observer(Rejections(Arc::clone(&rejected))).start()?;
/// std::fs::write(&path, "workers: many\n")?;
/// assert!(!live.reload().is_applied());
/// assert_eq!(rejected.load(Ordering::Relaxed), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Observer: Send + 'static {
    /// Called for each report, on the reloader's thread.
    fn observe(&mut self, report: &Report<'_>);
}

/// One thing the reloader saw or did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Report<'a> {
    /// The starting version is live (`start` is about to return).
    Started(&'a AttemptReport),
    /// An attempt ended: applied, unchanged, rejected, failed, or a pin refused.
    Attempt(&'a AttemptReport),
    /// The poller could not read the config directory or a file; nothing is applied while it lasts.
    PollError {
        /// What went wrong.
        kind: PollErrorKind,
        /// The file or directory concerned.
        path: Option<&'a Path>,
        /// What happened, for a person.
        message: &'a str,
    },
    /// A fault reported by a [`Report::PollError`] for `path` is gone. A fault is present from
    /// its `PollError` to its `PollRecovered` (a `PollError` for the same path with another kind
    /// replaces it): what a gauge of the faults present now counts.
    PollRecovered {
        /// The file or directory concerned.
        path: Option<&'a Path>,
        /// The kind of the fault that ended.
        kind: PollErrorKind,
    },
    /// A validator worker set aside in an abandoned attempt ended by itself.
    WorkerFinished {
        /// Workers still stuck.
        workers_stuck: usize,
    },
}

/// How one attempt ended, with the reloader's state after it: what every observer needs, so
/// none has to ask the reloader anything.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AttemptReport {
    /// What started it.
    pub trigger: Trigger,
    /// How it ended (also in `/status` and the answer to [`Live::reload`](crate::Live::reload)).
    pub outcome: AttemptOutcome,
    /// The attempt number at this content (1, or more for a retry).
    pub attempt: u32,
    /// The bundle hash of the content it judged, when it got that far (a failed read has none).
    pub content: Option<blake3::Hash>,
    /// The files it concerned: those changed, for a change set; all of them otherwise.
    pub files: Vec<String>,
    /// All files of the candidate it judged (for the audit log's `rejected` record).
    pub candidate_files: Vec<String>,
    /// The diagnostics, when it was rejected or a pin was refused as invalid.
    pub diagnostics: Option<Diagnostics>,
    /// For an applied version: why it was stored (`startup`, `change`, `manual`, `pin of vN`, `restore of vN`).
    pub origin: Option<Origin>,
    /// For an applied version: what changed from the version that ran before, value by value,
    /// secrets redacted.
    pub diff: Option<SemanticDiff>,
    /// For a pin: the version asked for.
    pub pin: Option<u64>,
    /// A pin that did not take effect (no such version, unreadable, no longer valid): nothing
    /// changed, no failure state began, nothing is counted or alerted.
    pub pin_refused: bool,
    /// Whether this attempt ended a failure state.
    pub recovered: bool,
    /// When the next try at the same content is due, after a transient failure.
    pub retry_in: Option<Duration>,
    /// How long it took.
    pub duration: Duration,
    /// When it ended.
    pub at: SystemTime,
    /// The reloader's state after it.
    pub state: ReloadState,
}

impl AttemptReport {
    /// The failure of an attempt that failed for a transient reason.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.outcome {
            AttemptOutcome::Failed { failure } => Some(failure),
            _ => None,
        }
    }
}

/// The reloader's state, as of one report.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReloadState {
    /// The version running.
    pub running_version: u64,
    /// Its bundle hash.
    pub running_hash: blake3::Hash,
    /// The version pinned live, until the files change.
    pub pinned: Option<u64>,
    /// Whether a failure state is on (the last attempt at the files failed or was rejected).
    pub failing: bool,
    /// Validator workers stuck in abandoned attempts.
    pub workers_stuck: usize,
    /// Each component's applied version.
    pub components: Vec<ComponentStatus>,
    /// Why the service runs degraded, when it does: it started on a stored version because the
    /// config directory was invalid ([`Hotconf::with_start_on_last_good`](crate::Hotconf::with_start_on_last_good)),
    /// until the directory is applied.
    pub degraded: Option<String>,
}
