//! Files: reads the config files of a directory into memory, applying the ignore rules and the
//! size cap. Owns all reading of config files; it never parses or judges their content.

pub mod env;
pub mod names;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The default cap on one config file's size: 1 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Limits applied while reading a config directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcesLimits {
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

    /// Reads every config file (see [`names::is_config_file_name`]) directly in `dir`, following
    /// symlinks, without recursing. A file that cannot be read or is over the cap is kept in the set
    /// with that outcome, so validation can name it; only a directory that cannot be listed fails.
    pub fn read_dir(dir: &Path, limits: SourcesLimits) -> Result<Self, ReadError> {
        let entries = std::fs::read_dir(dir).map_err(|source| ReadError { dir: dir.to_owned(), source })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ReadError { dir: dir.to_owned(), source })?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if !names::is_config_file_name(&name) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                continue;
            }
            let body = read_capped(&path, limits.max_file_bytes);
            if matches!(body, FileBody::Unreadable { kind: io::ErrorKind::NotFound }) && !path.is_symlink() {
                // Vanished between listing and reading: it is simply not part of this attempt.
                continue;
            }
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

/// Reads at most `limit` bytes of `path`; a larger file is reported, not read whole.
fn read_capped(path: &Path, limit: u64) -> FileBody {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return FileBody::Unreadable { kind: e.kind() },
    };
    let mut bytes = Vec::new();
    // Read one byte past the cap: that is how a file that grew after `stat` is caught too.
    match file.take(limit + 1).read_to_end(&mut bytes) {
        Ok(_) if bytes.len() as u64 > limit => {
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(bytes.len() as u64);
            FileBody::TooLarge { size, limit }
        }
        Ok(_) => FileBody::Bytes(bytes),
        Err(e) => FileBody::Unreadable { kind: e.kind() },
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
        }
    }
}
