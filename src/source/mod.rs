//! Files: reads the config files of a directory into memory, applying the ignore rules and the
//! size cap. Owns all reading of config files; it never parses or judges their content.

pub mod env;
pub mod names;
pub mod read;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use read::FileKind;
use read::FileRead;

/// The default cap on one config file's size: 1 MiB.
pub(crate) const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Limits applied while reading a config directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SourcesLimits {
    /// Files larger than this are reported, never read whole.
    pub max_file_bytes: u64,
}

impl Default for SourcesLimits {
    fn default() -> Self {
        Self { max_file_bytes: DEFAULT_MAX_FILE_BYTES }
    }
}

/// What reading one file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileBody {
    /// The whole content.
    Bytes(Vec<u8>),
    /// The file is over the size cap and was not read.
    TooLarge {
        /// Its size in bytes when it was looked at.
        size: u64,
        /// The cap in force.
        limit: u64,
    },
    /// The file is listed but could not be read (permissions, vanished, I/O error).
    Unreadable {
        /// The kind of failure.
        kind: io::ErrorKind,
    },
    /// The name resolves to something that is not a regular file (a FIFO, a socket, a device, a
    /// directory); it was refused unread, since reading it could block or never end.
    NotRegular {
        /// What it is.
        kind: FileKind,
    },
}

/// One config file: its bare name and what reading it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    name: String,
    body: FileBody,
}

impl SourceFile {
    /// A file with the given content.
    pub fn new(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self { name: name.into(), body: FileBody::Bytes(bytes.into()) }
    }

    /// A file with the given read outcome.
    pub fn with_body(name: impl Into<String>, body: FileBody) -> Self {
        Self { name: name.into(), body }
    }

    /// Reads the one file at `path` as the config reader does: never blocking (a FIFO, socket,
    /// device or directory is [`FileBody::NotRegular`], unread), reading at most `max_file_bytes`
    /// (a larger file is [`FileBody::TooLarge`], unread past the cap). `Err` when it cannot be
    /// opened or read (missing, permissions, I/O).
    ///
    /// ```
    /// use hotconf::{FileBody, FileKind, SourceFile};
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("a.env"), "KEY=x\n")?;
    /// let file = SourceFile::read(&dir.path().join("a.env"), 1024)?;
    /// assert_eq!((file.name(), file.bytes()), ("a.env", Some(&b"KEY=x\n"[..])));
    /// assert!(matches!(SourceFile::read(&dir.path().join("a.env"), 3)?.body(), FileBody::TooLarge { size: 6, .. }));
    /// assert!(matches!(SourceFile::read(dir.path(), 1024)?.body(), FileBody::NotRegular { kind: FileKind::Directory }));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(path: &Path, max_file_bytes: u64) -> io::Result<Self> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let body = match read::read_file(path, max_file_bytes)? {
            FileRead::Bytes { bytes, .. } => FileBody::Bytes(bytes),
            FileRead::TooLarge { size, .. } => FileBody::TooLarge { size, limit: max_file_bytes },
            FileRead::NotRegular { kind } => FileBody::NotRegular { kind },
        };
        Ok(Self { name, body })
    }

    /// The file's bare name, e.g. `rate_limits.yaml`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What reading it gave.
    pub fn body(&self) -> &FileBody {
        &self.body
    }

    /// The content, when it was read whole.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.body {
            FileBody::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// The config files of one attempt, sorted by name: the input to validation.
///
/// ```
/// use hotconf::{SourceFile, Sources};
/// let sources = Sources::from_files([SourceFile::new("b.yaml", "x: 1"), SourceFile::new("a.yaml", "y: 2")]);
/// assert_eq!(sources.names().collect::<Vec<_>>(), ["a.yaml", "b.yaml"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    /// The default cap on one config file's size: 1 MiB.
    pub const DEFAULT_MAX_FILE_BYTES: u64 = DEFAULT_MAX_FILE_BYTES;

    /// Sources from in-memory files (later duplicates of a name replace earlier ones).
    pub fn from_files(files: impl IntoIterator<Item = SourceFile>) -> Self {
        let mut files: Vec<SourceFile> = files.into_iter().collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        files.dedup_by(|later, earlier| {
            if later.name == earlier.name {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
        Self { files }
    }

    /// Reads every config file (`*.yaml` and `*.yml`, not editor or tool debris) directly in `dir`,
    /// following symlinks, without recursing, through the one non-blocking reader. A
    /// file that cannot be read, is over the cap or is not a regular file (a FIFO, a socket, a
    /// device, a directory) is kept in the set with that outcome, so validation can name it; a name
    /// that vanished between listing and opening (or a dangling symlink) is absent, as it is from the
    /// poller's ticks. Only a directory that cannot be listed fails.
    ///
    /// A file larger than `max_file_bytes` ([`Sources::DEFAULT_MAX_FILE_BYTES`] unless you need
    /// another cap) is recorded as too large without being read.
    pub fn read_dir(dir: &Path, max_file_bytes: u64) -> Result<Self, ReadError> {
        let limits = SourcesLimits { max_file_bytes };
        let names = read::list_dir(dir).map_err(|source| ReadError { dir: dir.to_owned(), source })?;
        let mut files = Vec::new();
        for name in names {
            if !names::is_config_file_name(&name) {
                continue;
            }
            let body = match read::read_file(&dir.join(&name), limits.max_file_bytes) {
                Ok(FileRead::Bytes { bytes, .. }) => FileBody::Bytes(bytes),
                Ok(FileRead::TooLarge { size, .. }) => FileBody::TooLarge { size, limit: limits.max_file_bytes },
                Ok(FileRead::NotRegular { kind }) => FileBody::NotRegular { kind },
                // Vanished between listing and reading: it is simply not part of this attempt.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => FileBody::Unreadable { kind: e.kind() },
            };
            files.push(SourceFile { name, body });
        }
        Ok(Self::from_files(files))
    }

    /// The files, sorted by name.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The file names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(SourceFile::name)
    }

    /// The file called `name`.
    pub fn get(&self, name: &str) -> Option<&SourceFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// The blake3 hash of the whole set (names and contents), stable across runs and machines.
    /// Two sets with the same files byte for byte have the same hash.
    pub fn bundle_hash(&self) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new();
        for file in &self.files {
            hasher.update(&(file.name.len() as u64).to_le_bytes());
            hasher.update(file.name.as_bytes());
            match &file.body {
                FileBody::Bytes(b) => {
                    hasher.update(&(b.len() as u64).to_le_bytes());
                    hasher.update(b);
                }
                other => {
                    hasher.update(&u64::MAX.to_le_bytes());
                    hasher.update(format!("{other:?}").as_bytes());
                }
            }
        }
        hasher.finalize()
    }
}

/// The config directory itself could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read config directory {}", dir.display())]
#[non_exhaustive]
pub struct ReadError {
    /// The directory.
    pub dir: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

impl fmt::Display for FileBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileBody::Bytes(b) => write!(f, "{} bytes", b.len()),
            FileBody::TooLarge { size, limit } => write!(f, "{size} bytes, over the {limit}-byte cap"),
            FileBody::Unreadable { kind } => write!(f, "unreadable ({kind})"),
            FileBody::NotRegular { kind } => write!(f, "{kind}, not a regular file"),
        }
    }
}
