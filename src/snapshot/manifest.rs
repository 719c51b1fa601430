//! The manifest of one stored version: what it holds and where it came from, as stored JSON.
//! Pure data; never reads or writes a file.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The on-disk format this hotconf writes and the newest it reads. A manifest without a
/// `format` field is read as format 1.
pub const FORMAT: u32 = 1;

/// Why a version was created. Serialized as `{"kind": "startup"}`, `{"kind": "change"}`,
/// `{"kind": "pin", "of": 3}`, `{"kind": "restore", "of": 3}`, `{"kind": "manual"}` (a store
/// written before pin and restore had their own names says `{"kind": "rollback", "of": 3}`,
/// read as a restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Origin {
    /// The config the service started with.
    Startup,
    /// A change of the config directory picked up while running.
    Change,
    /// The content of version `of`, made live again by the service without touching the files
    /// (`POST /pin/N`, `Live::pin`): a pin.
    Pin {
        /// The version pinned.
        of: u64,
    },
    /// The content of version `of`, whose files `hotconf restore` wrote back into the config
    /// directory, picked up as a change.
    #[serde(alias = "rollback")]
    Restore {
        /// The version restored.
        of: u64,
    },
    /// Stored by hand, through the library.
    Manual,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Startup => f.write_str("startup"),
            Origin::Change => f.write_str("change"),
            Origin::Pin { of } => write!(f, "pin of v{of}"),
            Origin::Restore { of } => write!(f, "restore of v{of}"),
            Origin::Manual => f.write_str("manual"),
        }
    }
}

/// One file of a stored version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The file's bare name, e.g. `rate_limits.yaml`.
    pub name: String,
    /// The blake3 of its bytes, lowercase hex.
    pub blake3: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What a stored version holds and where it came from (`vNNNNNN/manifest.json`).
///
/// Fields are serialized in declaration order; new optional fields may be added within format 1,
/// and a reader ignores fields it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// The on-disk format (1 today; a newer one is listed as such and never misread).
    #[serde(default = "format_one")]
    pub format: u32,
    /// The version number, from 1, strictly increasing and never reused.
    pub version: u64,
    /// When it was stored, RFC 3339 UTC (`2026-04-14T09:03:07Z`).
    pub created_at: String,
    /// Why it was stored.
    pub origin: Origin,
    /// The newest version when this one was stored, if any.
    #[serde(default)]
    pub parent: Option<u64>,
    /// The newest older version with the same content, if any ("same as vM").
    #[serde(default)]
    pub same_as: Option<u64>,
    /// The blake3 of the whole bundle ([`crate::Sources::bundle_hash`]), lowercase hex.
    pub bundle_hash: String,
    /// The files added, removed or modified since the parent, sorted (every file for the first version).
    #[serde(default)]
    pub changed_files: Vec<String>,
    /// Every file, sorted by name.
    pub files: Vec<FileEntry>,
}

fn format_one() -> u32 {
    1
}

impl Manifest {
    /// The first 12 hex digits of the bundle hash, as `history` shows it.
    pub fn short_hash(&self) -> &str {
        &self.bundle_hash[..self.bundle_hash.len().min(12)]
    }
}
