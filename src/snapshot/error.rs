//! The snapshot stage's typed errors: what went wrong, on which path and which version.

use std::io;
use std::path::PathBuf;

/// What is wrong with a stored version whose bytes no longer match its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// A file the manifest lists is absent.
    MissingFile {
        /// The file's name.
        name: String,
    },
    /// A file the manifest does not list is present.
    UnlistedFile {
        /// The file's name.
        name: String,
    },
    /// A file's size differs from the manifest (a truncated write, an edit).
    SizeMismatch {
        /// The file's name.
        name: String,
        /// The size in the manifest.
        expected: u64,
        /// The size on disk.
        found: u64,
    },
    /// A file's blake3 differs from the manifest.
    HashMismatch {
        /// The file's name.
        name: String,
    },
    /// A file the manifest lists is there but is not a regular file (a FIFO, a directory, …).
    NotRegular {
        /// The file's name.
        name: String,
        /// What it is.
        kind: crate::source::read::FileKind,
    },
    /// The files are intact one by one but the bundle hash differs from the manifest.
    BundleHashMismatch,
    /// The manifest says it is another version than its directory.
    WrongVersion {
        /// The version the manifest holds.
        found: u64,
    },
    /// The manifest names a file that could not be stored (a path, not a bare name).
    BadFileName {
        /// The name.
        name: String,
    },
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Corruption::MissingFile { name } => write!(f, "file {name} is missing"),
            Corruption::UnlistedFile { name } => write!(f, "file {name} is not in the manifest"),
            Corruption::SizeMismatch { name, expected, found } => {
                write!(f, "file {name} is {found} bytes, the manifest says {expected} (truncated or edited)")
            }
            Corruption::HashMismatch { name } => write!(f, "file {name} does not match its blake3 hash"),
            Corruption::NotRegular { name, kind } => write!(f, "file {name} is {kind}, not a regular file"),
            Corruption::BundleHashMismatch => f.write_str("the files do not match the bundle hash"),
            Corruption::WrongVersion { found } => write!(f, "the manifest is for version {found}"),
            Corruption::BadFileName { name } => write!(f, "the manifest names an invalid file {name:?}"),
        }
    }
}

/// An error of the snapshot store, its audit log or a restore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("snapshot store I/O error on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The store's lock could not be taken.
    #[error("cannot lock the snapshot store at {}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A directory opened for reading holds nothing a store writes: no `.lock`, `audit.jsonl`,
    /// `running.json` or version directory (a wrong `--snapshots`).
    #[error("{} is not a hotconf snapshot store", dir.display())]
    NotAStore {
        /// The directory.
        dir: PathBuf,
    },
    /// A write was asked of a store opened read-only (`SnapshotStore::open_read_only`).
    #[error("the snapshot store at {} is open read-only", dir.display())]
    ReadOnly {
        /// The store directory.
        dir: PathBuf,
    },
    /// No such version in the store (never created, or pruned).
    #[error("version {version} does not exist in {}", store.display())]
    NotFound {
        /// The version asked for.
        version: u64,
        /// The store directory.
        store: PathBuf,
    },
    /// A version's manifest is not valid JSON of the expected shape.
    #[error("version {version} is damaged: its manifest {} cannot be read", path.display())]
    BadManifest {
        /// The version.
        version: u64,
        /// The manifest file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A version was written by a newer hotconf, in a format this one does not know.
    #[error(
        "version {version} uses store format {format}; this hotconf reads format {}",
        crate::snapshot::manifest::FORMAT
    )]
    UnsupportedFormat {
        /// The version.
        version: u64,
        /// Its format number.
        format: u32,
    },
    /// A version's files do not match its manifest; it is never restored.
    #[error("version {version} is damaged: {problem}")]
    Corrupt {
        /// The version.
        version: u64,
        /// What does not match.
        problem: Corruption,
    },
    /// A file of the bundle handed to `commit` has no content (unreadable or over the size cap).
    #[error("cannot store {name}: the file was not read whole")]
    NotStorable {
        /// The file's name.
        name: String,
    },
    /// A file name handed to the store is not a bare file name.
    #[error("cannot store {name:?}: not a bare file name")]
    BadFileName {
        /// The name.
        name: String,
    },
    /// A small state file of the store (`running.json`, `restore-intent.json`) is unreadable.
    #[error("snapshot store state file {} cannot be read", path.display())]
    BadStateFile {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A line of the audit log is not a record.
    #[error("audit log {} line {line} cannot be read", path.display())]
    BadAuditRecord {
        /// The audit log.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A simulated crash, injected by the store's own tests at a numbered write step.
    #[cfg(test)]
    #[error("injected crash at write step {step} ({what})")]
    Injected {
        /// The step number.
        step: usize,
        /// The step.
        what: &'static str,
    },
}

impl StoreError {
    /// Whether the error is about the store's *content* (a missing, damaged or too-new version):
    /// a request to refuse, as opposed to an operational failure of the filesystem.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::NotFound { .. }
                | StoreError::NotAStore { .. }
                | StoreError::BadManifest { .. }
                | StoreError::UnsupportedFormat { .. }
                | StoreError::Corrupt { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}
