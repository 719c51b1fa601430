//! Why an attempt failed for a transient reason: a typed cause, carried into events, status,
//! metric labels and alert deduplication, with the words for a person.

use std::fmt;

use serde::Serialize;

/// Why an attempt failed for a transient reason (it is retried while its content is pending):
/// a typed cause, for metrics labels, alert deduplication and code, and the words for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Failure {
    /// The kind of failure.
    pub cause: FailureCause,
    /// The component concerned, for [`FailureCause::AckTimeout`] and [`FailureCause::Component`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<&'static str>,
    /// What happened, for a person (never a secret value).
    pub error: String,
}

impl Failure {
    pub(crate) fn new(cause: FailureCause, error: impl Into<String>) -> Self {
        Self { cause, component: None, error: error.into() }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)
    }
}

/// The kind of a [`Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureCause {
    /// Reading and validating took longer than the reload timeout.
    Timeout,
    /// Too many validator workers are stuck in abandoned attempts.
    WorkersStuck,
    /// The schema panicked.
    Panicked,
    /// The config directory could not be read (for a manual reload).
    Read,
    /// The snapshot store failed (full, read-only, unreadable).
    Store,
    /// A component did not acknowledge the version in time.
    AckTimeout,
    /// A component panicked building its part, or has stopped.
    Component,
    /// The reloader did not answer a request in time, or has stopped.
    NoAnswer,
    /// A thread could not be started.
    Spawn,
}

impl FailureCause {
    /// Every cause, for a metric family with a sample per cause from the start.
    pub const ALL: [FailureCause; 9] = [
        FailureCause::Timeout,
        FailureCause::WorkersStuck,
        FailureCause::Panicked,
        FailureCause::Read,
        FailureCause::Store,
        FailureCause::AckTimeout,
        FailureCause::Component,
        FailureCause::NoAnswer,
        FailureCause::Spawn,
    ];

    /// The name, as serialized and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCause::Timeout => "timeout",
            FailureCause::WorkersStuck => "workers_stuck",
            FailureCause::Panicked => "panicked",
            FailureCause::Read => "read",
            FailureCause::Store => "store",
            FailureCause::AckTimeout => "ack_timeout",
            FailureCause::Component => "component",
            FailureCause::NoAnswer => "no_answer",
            FailureCause::Spawn => "spawn",
        }
    }
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
