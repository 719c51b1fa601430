//! The classes of polling faults: what the scan, the poller and the reloader's observers name.

use std::fmt;

/// The class of a polling fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
