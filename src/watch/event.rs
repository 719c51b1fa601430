//! What the poller tells its listener: a stable change set, a fault (once), or a recovery; and the
//! error returned when the poller cannot start.

use std::io;
use std::path::PathBuf;

use crate::source::Sources;
use crate::watch::debounce::StableChangeSet;
pub use crate::watch::fault::PollErrorKind;

/// One message from the poller to its listener.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The watched set changed and has been stable for two consecutive ticks.
    Changed(StableChangeSet),
    /// A change was seen for the first time after a quiet stretch: not stable yet, so never to be
    /// applied, but a listener may judge it ahead (the reloader validates it while it settles, so
    /// the stable tick finds it judged). Sent once per quiet stretch, not for every tick of a burst.
    Settling(Sources),
    /// A fault appeared. Sent once when it starts (or changes kind), not every tick; while a fault
    /// that stops files being read is active nothing is emitted and the last emitted state stays.
    PollError {
        /// The fault class (a stable metrics label, see [`PollErrorKind::as_str`]).
        kind: PollErrorKind,
        /// The file or directory concerned.
        path: Option<PathBuf>,
        /// What happened, for people.
        message: String,
    },
    /// A fault reported earlier by a [`WatchEvent::PollError`] for `path` is gone.
    Recovered {
        /// The file or directory concerned.
        path: Option<PathBuf>,
        /// The kind of the fault that ended (as last reported for `path`).
        kind: PollErrorKind,
    },
}

/// The poller could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// A configured duration that must be positive is zero (a zero interval would spin).
    #[error("poller {field} must be greater than zero")]
    ZeroDuration {
        /// The setting, e.g. `interval`.
        field: &'static str,
    },
    /// The operating system refused to start a thread.
    #[error("cannot start the {thread} thread")]
    Spawn {
        /// The thread's name.
        thread: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
}
