//! What one tick saw: a [`Fingerprint`] and the bytes read for every watched file, or why a file
//! could not be read. The bytes hashed are the bytes handed on, so the reloader validates exactly
//! the content whose fingerprint was stable.

use std::collections::BTreeMap;
use std::io;
use std::time::SystemTime;

use crate::source::{FileBody, FileKind, SourceFile, Sources};
use crate::watch::fault::PollErrorKind;

/// The identity of one file's content at one tick. Existence is presence in an [`Observation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// Size in bytes of the content read.
    pub size: u64,
    /// Modification time from the open file's `fstat`; `None` when unknown (a baseline built from
    /// memory, or a platform without mtimes). Only a hint: the hash is the judge.
    pub mtime: Option<SystemTime>,
    /// blake3 of the content read.
    pub hash: blake3::Hash,
}

impl Fingerprint {
    /// The fingerprint of `bytes` with the given mtime.
    pub fn of(bytes: &[u8], mtime: Option<SystemTime>) -> Self {
        Self { size: bytes.len() as u64, mtime, hash: blake3::hash(bytes) }
    }
}

/// What reading one watched file gave at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileObservation {
    /// Read whole: its fingerprint and the very bytes that were hashed.
    Read {
        /// The fingerprint of `bytes`.
        fingerprint: Fingerprint,
        /// The content.
        bytes: Vec<u8>,
    },
    /// Over the size cap: not read (beyond the cap).
    TooLarge {
        /// Its size when looked at (at least `limit + 1`).
        size: u64,
        /// The cap in force.
        limit: u64,
        /// Its mtime, when known.
        mtime: Option<SystemTime>,
    },
    /// Not a regular file (a FIFO, a socket, a device, a directory): refused unread, and passed on
    /// so validation rejects it by name. Not a fault: it does not hold emission back.
    NotRegular {
        /// What it is.
        kind: FileKind,
    },
    /// Listed but not readable at this tick (permissions, a stale NFS handle, an I/O error).
    Unreadable {
        /// The fault class, for reports and metrics.
        kind: PollErrorKind,
        /// The I/O error kind.
        io_kind: io::ErrorKind,
        /// The raw OS error code, when there was one.
        os_code: Option<i32>,
    },
}

impl FileObservation {
    /// An observation of `bytes` read whole.
    pub fn read(bytes: impl Into<Vec<u8>>, mtime: Option<SystemTime>) -> Self {
        let bytes = bytes.into();
        Self::Read { fingerprint: Fingerprint::of(&bytes, mtime), bytes }
    }

    /// An unreadable file, classified from the I/O error.
    pub fn unreadable(kind: PollErrorKind, error: &io::Error) -> Self {
        Self::Unreadable { kind, io_kind: error.kind(), os_code: error.raw_os_error() }
    }

    /// Whether the file is in a state that must hold back emission (it could not be read).
    pub fn is_fault(&self) -> bool {
        matches!(self, Self::Unreadable { .. })
    }

    /// The fingerprint, when the file was read whole.
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        match self {
            Self::Read { fingerprint, .. } => Some(fingerprint),
            _ => None,
        }
    }

    /// The mtime seen, when known.
    pub fn mtime(&self) -> Option<SystemTime> {
        match self {
            Self::Read { fingerprint, .. } => fingerprint.mtime,
            Self::TooLarge { mtime, .. } => *mtime,
            Self::Unreadable { .. } | Self::NotRegular { .. } => None,
        }
    }

    /// Whether two observations have the same fingerprint (size, mtime, hash, or the same failure).
    /// The bytes are not compared: the hash stands for them.
    pub fn same_fingerprint(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Read { fingerprint: a, .. }, Self::Read { fingerprint: b, .. }) => a == b,
            (a, b) => a == b,
        }
    }

    /// Whether two observations have the same content, ignoring mtimes.
    pub fn same_content(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Read { fingerprint: a, .. }, Self::Read { fingerprint: b, .. }) => a.hash == b.hash,
            (Self::TooLarge { size: a, .. }, Self::TooLarge { size: b, .. }) => a == b,
            (a, b) => a == b,
        }
    }

    fn to_body(&self) -> FileBody {
        match self {
            Self::Read { bytes, .. } => FileBody::Bytes(bytes.clone()),
            Self::TooLarge { size, limit, .. } => FileBody::TooLarge { size: *size, limit: *limit },
            Self::Unreadable { io_kind, .. } => FileBody::Unreadable { kind: *io_kind },
            Self::NotRegular { kind } => FileBody::NotRegular { kind: *kind },
        }
    }
}

/// The state of the whole watched set at one tick: file name → what reading it gave. A file absent
/// from the map did not exist at that tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    files: BTreeMap<String, FileObservation>,
}

impl Observation {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what reading `name` gave, replacing an earlier record.
    pub fn insert(&mut self, name: impl Into<String>, file: FileObservation) {
        self.files.insert(name.into(), file);
    }

    /// What reading `name` gave, if it was seen.
    pub fn get(&self, name: &str) -> Option<&FileObservation> {
        self.files.get(name)
    }

    /// The files seen, sorted by name.
    pub fn files(&self) -> &BTreeMap<String, FileObservation> {
        &self.files
    }

    /// The number of files seen.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file was seen.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether the two ticks saw the same names with the same fingerprints.
    pub fn same_fingerprints(&self, other: &Self) -> bool {
        self.same_files(other, FileObservation::same_fingerprint)
    }

    /// Whether both hold the same files with the same contents, whatever their mtimes.
    pub fn same_contents(&self, other: &Self) -> bool {
        self.same_files(other, FileObservation::same_content)
    }

    /// Whether both hold the same file names, each pair of observations alike by `same`.
    fn same_files(&self, other: &Self, same: impl Fn(&FileObservation, &FileObservation) -> bool) -> bool {
        self.files.len() == other.files.len()
            && self.files.iter().zip(&other.files).all(|((na, a), (nb, b))| na == nb && same(a, b))
    }

    /// Whether any file could not be read at this tick.
    pub fn has_faults(&self) -> bool {
        self.files.values().any(FileObservation::is_fault)
    }

    /// The observation of a set of files held in memory, e.g. what a service started on. Their mtimes
    /// are unknown, so a later tick that finds the same content is not reported as touched.
    pub fn from_sources(sources: &Sources) -> Self {
        let files = sources.files().iter().map(|file| {
            let observation = match file.body() {
                FileBody::Bytes(bytes) => FileObservation::read(bytes.clone(), None),
                FileBody::TooLarge { size, limit } => {
                    FileObservation::TooLarge { size: *size, limit: *limit, mtime: None }
                }
                FileBody::Unreadable { kind } => {
                    FileObservation::Unreadable { kind: PollErrorKind::Unreadable, io_kind: *kind, os_code: None }
                }
                FileBody::NotRegular { kind } => FileObservation::NotRegular { kind: *kind },
            };
            (file.name().to_owned(), observation)
        });
        Self { files: files.collect() }
    }

    /// The files as [`Sources`], the input of validation: the bytes read at this tick, a file over
    /// the cap as [`FileBody::TooLarge`], an unreadable one as [`FileBody::Unreadable`].
    pub fn to_sources(&self) -> Sources {
        Sources::from_files(self.files.iter().map(|(name, file)| SourceFile::with_body(name.clone(), file.to_body())))
    }
}

impl FromIterator<(String, FileObservation)> for Observation {
    fn from_iter<I: IntoIterator<Item = (String, FileObservation)>>(iter: I) -> Self {
        Self { files: iter.into_iter().collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn fingerprints_compare_mtime_but_content_ignores_it() {
        let a = FileObservation::read("x: 1", Some(UNIX_EPOCH));
        let b = FileObservation::read("x: 1", Some(UNIX_EPOCH + Duration::from_secs(1)));
        assert!(!a.same_fingerprint(&b));
        assert!(a.same_content(&b));
    }

    #[test]
    fn round_trips_through_sources() {
        let mut obs = Observation::new();
        obs.insert("b.yaml", FileObservation::read("b: 1", None));
        obs.insert("a.yaml", FileObservation::TooLarge { size: 9, limit: 8, mtime: None });
        let sources = obs.to_sources();
        assert_eq!(sources.names().collect::<Vec<_>>(), ["a.yaml", "b.yaml"]);
        assert_eq!(sources.get("b.yaml").unwrap().bytes(), Some(&b"b: 1"[..]));
        assert_eq!(sources.get("a.yaml").unwrap().body(), &FileBody::TooLarge { size: 9, limit: 8 });
        assert!(Observation::from_sources(&sources).same_fingerprints(&obs));
    }
}
