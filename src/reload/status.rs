//! The reloader's status as the admin endpoint shows it: immutable, replaced after each attempt.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::failure::Failure;
use crate::validate::Diagnostics;
use crate::watch::PollErrorKind;

/// What started an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Trigger {
    /// The service started (the first version).
    Startup,
    /// The poller saw the files change.
    Change,
    /// SIGHUP or `POST /reload`.
    Manual,
    /// A pin: `POST /pin/N`, [`Live::pin`](crate::Live::pin).
    Pin,
}

impl AttemptOutcome {
    /// Whether a new version went live.
    pub fn is_applied(&self) -> bool {
        matches!(self, AttemptOutcome::Applied { .. })
    }

    /// The version live after the attempt, when it applied or found nothing to do.
    pub fn version(&self) -> Option<u64> {
        match self {
            AttemptOutcome::Applied { version, .. } | AttemptOutcome::Unchanged { version } => Some(*version),
            _ => None,
        }
    }
}

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptOutcome::Applied { version, .. } => write!(f, "version {version} applied"),
            AttemptOutcome::Unchanged { version } => write!(f, "unchanged: version {version} runs this content"),
            AttemptOutcome::Rejected { diagnostics } => {
                let n = diagnostics.problems();
                write!(f, "rejected: {n} problem{}\n{diagnostics}", if n == 1 { "" } else { "s" })
            }
            AttemptOutcome::Failed { failure } => write!(f, "failed ({}): {}", failure.cause, failure.error),
            AttemptOutcome::NotFound { error, .. } => f.write_str(error),
        }
    }
}

impl Trigger {
    /// The name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Change => "change",
            Trigger::Manual => "manual",
            Trigger::Pin => "pin",
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// A new version is live.
    Applied {
        /// The version.
        version: u64,
        /// The files changed.
        files: Vec<String>,
    },
    /// The content is the running content: nothing to do.
    Unchanged {
        /// The running version.
        version: u64,
    },
    /// The config is invalid; the previous one keeps running.
    Rejected {
        /// Every problem.
        diagnostics: Diagnostics,
    },
    /// Something failed for a transient reason; the previous config keeps running.
    Failed {
        /// The typed cause and its words.
        #[serde(flatten)]
        failure: Failure,
    },
    /// A pin asked for a version the store does not hold (never created, or pruned);
    /// nothing changed.
    NotFound {
        /// The version asked for.
        version: u64,
        /// The store's words.
        error: String,
    },
}

/// The last attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastAttempt {
    /// Seconds since the Unix epoch, to the microsecond.
    pub at_unix: f64,
    /// What started it.
    pub trigger: Trigger,
    /// How long it took, in milliseconds, rounded to the microsecond (`5.839`).
    pub duration_ms: f64,
    /// The bundle hash of the content it judged, when it got that far (a failed read of the
    /// directory has none): what a client compares to know whether *its* content was rejected.
    pub bundle_hash: Option<String>,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
}

/// Seconds since the Unix epoch, to the microsecond.
pub(crate) fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_micros() as f64 / 1e6
}

impl LastAttempt {
    pub(super) fn new(
        trigger: Trigger,
        outcome: AttemptOutcome,
        duration: Duration,
        bundle_hash: Option<String>,
        at: SystemTime,
    ) -> Self {
        let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let at_unix = since_epoch.as_micros() as f64 / 1e6;
        Self { at_unix, trigger, duration_ms: duration.as_micros() as f64 / 1e3, bundle_hash, outcome }
    }
}

/// One component's applied version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentStatus {
    /// The component.
    pub name: &'static str,
    /// The version it last acknowledged.
    pub applied_version: Option<u64>,
}

impl From<(&'static str, Option<u64>)> for ComponentStatus {
    fn from((name, applied_version): (&'static str, Option<u64>)) -> Self {
        Self { name, applied_version }
    }
}

/// The service's reload status.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The version running.
    pub running_version: u64,
    /// Its bundle hash.
    pub bundle_hash: String,
    /// The version pinned live, until the files change.
    pub pinned: Option<u64>,
    /// Whether the last attempt failed (cleared by a successful one or a revert).
    pub failing: bool,
    /// Each component's applied version.
    pub components: Vec<ComponentStatus>,
    /// Validator workers still stuck in an abandoned attempt (a read hung in the kernel, a
    /// validation past the reload timeout); each ends by itself when its job returns.
    pub workers_stuck: usize,
    /// The last attempt after startup.
    pub last_attempt: Option<LastAttempt>,
    /// The polling faults present now, by kind, each with the files or directories concerned
    /// (empty when every file reads): a fault is present from its `poll.error` until its
    /// `poll.recovered`, and nothing is applied from the directory meanwhile.
    pub faults: BTreeMap<PollErrorKind, Vec<String>>,
    /// When a scan last read the directory and every file with no fault (Unix seconds); `None`
    /// before the first.
    pub last_successful_scan: Option<f64>,
    /// Whether the service runs degraded: it started on a stored version because the config
    /// directory was invalid, and runs it until the directory is fixed.
    pub degraded: bool,
    /// Why, while degraded.
    pub degraded_reason: Option<String>,
    /// The threads that stopped making progress (`poller`, `reloader`): past their allowance
    /// since their last heartbeat. Empty while the service is live.
    pub stalled: Vec<&'static str>,
    /// Seconds since each thread's last heartbeat.
    pub heartbeat_age_seconds: BTreeMap<&'static str, f64>,
}

impl Status {
    pub(super) fn new(version: u64, hash: blake3::Hash, components: Vec<(&'static str, Option<u64>)>) -> Self {
        Self {
            running_version: version,
            bundle_hash: hash.to_hex().to_string(),
            pinned: None,
            failing: false,
            components: components.into_iter().map(ComponentStatus::from).collect(),
            workers_stuck: 0,
            last_attempt: None,
            faults: BTreeMap::new(),
            last_successful_scan: None,
            degraded: false,
            degraded_reason: None,
            stalled: Vec::new(),
            heartbeat_age_seconds: BTreeMap::new(),
        }
    }
}
