//! What the poller tells its listener: a stable change set, a fault (once), or a recovery; and the
//! error returned when the poller cannot start.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::watch::debounce::StableChangeSet;

/// One message from the poller to its listener.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The watched set changed and has been stable for two consecutive ticks.
    Changed(StableChangeSet),
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
    },
}

/// The class of a polling fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PollErrorKind {
    /// A watched file could not be opened or read for lack of permission.
    Unreadable,
    /// A watched file vanished under an open handle (`ESTALE` on NFS).
    Vanished,
    /// The config directory is missing, not a directory, or unmounted.
    DirMissing,
    /// A watched file is over the size cap; it is reported and passed on as too large, never read whole.
    TooLarge,
    /// A scan did not finish within the read timeout (a hung read, e.g. an NFS hard mount).
    Timeout,
    /// Any other I/O error (`EIO`, …).
    Io,
}

impl PollErrorKind {
    /// Every kind, in declaration order (metrics export a zero for each from the start).
    pub const ALL: [PollErrorKind; 6] =
        [Self::Unreadable, Self::Vanished, Self::DirMissing, Self::TooLarge, Self::Timeout, Self::Io];

    /// A stable lowercase label: `unreadable`, `vanished`, `dir_missing`, `too_large`, `timeout`, `io`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreadable => "unreadable",
            Self::Vanished => "vanished",
            Self::DirMissing => "dir_missing",
            Self::TooLarge => "too_large",
            Self::Timeout => "timeout",
            Self::Io => "io",
        }
    }
}

impl fmt::Display for PollErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
