//! The snapshot store: numbered, immutable, hash-verified versions of validated bundles under one
//! directory (`snapshots/`), with retention, the running version, the pin and the restore intent.
//! Owns every write under that directory; never reads or writes the config directory.
//!
//! Layout (format 1):
//!
//! ```text
//! snapshots/
//!   .lock                  exclusive lock taken by every writer (commit, prune, set_running, …)
//!   v000001/manifest.json  a version: its manifest …
//!   v000001/files/…        … and the exact bytes of every file
//!   running.json           {"version": N}: the version the service runs; never pruned
//!   restore-intent.json    {"version": N, "bundle_hash": …}: written by `hotconf restore`
//!   pin.json               {"version": M, "of": N, "dir_hash": …}: a live pin (`POST /pin/N`)
//!   audit.jsonl            the append-only audit log
//!   .tmp-…, .trash-…       a version being written or deleted; removed at the next open or write
//! ```
//!
//! A version is staged in `.tmp-…` (files and manifest written and fsynced), renamed to `vNNNNNN`
//! in one step, then the store directory is fsynced: it appears whole or not at all, and a
//! `kill -9` at any moment leaves at most a `.tmp-…` directory that readers never look at.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::audit::{AuditEvent, AuditLog, AuditRecord};
use super::diff::semantic_diff;
use super::error::{Corruption, StoreError};
use super::fsio;
use super::manifest::{FileEntry, Manifest, Origin, FORMAT};
use crate::source::read::{read_file, FileRead};
use crate::source::{SourceFile, Sources};

/// The default number of versions kept.
pub const DEFAULT_RETENTION: usize = 50;

const LOCK_FILE: &str = ".lock";
const RUNNING_FILE: &str = "running.json";
const INTENT_FILE: &str = "restore-intent.json";
const PIN_FILE: &str = "pin.json";
const AUDIT_FILE: &str = "audit.jsonl";
const MANIFEST_FILE: &str = "manifest.json";
const FILES_DIR: &str = "files";

/// How a store behaves.
///
/// ```
/// use hotconf::store::StoreConfig;
/// let config = StoreConfig::default().with_retention(10);
/// assert_eq!(config.retention(), 10);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StoreConfig {
    retention: usize,
    clock: fn() -> SystemTime,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { retention: DEFAULT_RETENTION, clock: SystemTime::now }
    }
}

impl StoreConfig {
    /// Keep the newest `n` versions (at least 1; 0 is read as 1), plus the running one.
    #[must_use]
    pub fn with_retention(mut self, n: usize) -> Self {
        self.retention = n.max(1);
        self
    }

    /// Read the time of `created_at` and audit records from `clock` (tests pin it).
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }

    /// The number of versions kept.
    pub fn retention(&self) -> usize {
        self.retention
    }
}

/// What [`SnapshotStore::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Commit {
    /// A new version was stored.
    Created(Manifest),
    /// The content equals the newest version, `version`: nothing was stored.
    Unchanged {
        /// The newest version.
        version: u64,
    },
}

impl Commit {
    /// The version that now holds the content.
    pub fn version(&self) -> u64 {
        match self {
            Commit::Created(m) => m.version,
            Commit::Unchanged { version } => *version,
        }
    }
}

/// A version read back with every hash verified: its manifest and its exact files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    manifest: Manifest,
    sources: Sources,
}

impl StoredVersion {
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The files, byte for byte as they were stored.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Splits into manifest and files.
    pub fn into_parts(self) -> (Manifest, Sources) {
        (self.manifest, self.sources)
    }
}

/// One version directory found in the store, readable or not.
#[derive(Debug)]
#[non_exhaustive]
pub enum Entry {
    /// Its manifest reads (its files are verified by [`SnapshotStore::read`] and
    /// [`SnapshotStore::verified_entries`]).
    Listed(Manifest),
    /// Its manifest is missing, not JSON, or of a newer format; or, from
    /// [`SnapshotStore::verified_entries`], its files fail their check.
    Damaged {
        /// The version number of its directory.
        version: u64,
        /// Why it cannot be listed.
        error: StoreError,
    },
}

impl Entry {
    /// The version number.
    pub fn version(&self) -> u64 {
        match self {
            Entry::Listed(m) => m.version,
            Entry::Damaged { version, .. } => *version,
        }
    }
}

/// A version `hotconf restore` is writing back into the config directory and the service has not
/// yet stored: the reloader stores the next change with this bundle hash as [`Origin::Restore`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreIntent {
    /// The version restored.
    pub version: u64,
    /// Its bundle hash, lowercase hex.
    pub bundle_hash: String,
}

/// A pin the service made live without writing the config directory (`POST /pin/N`, for
/// read-only mounts), kept so that it survives a restart until the files on disk change: at
/// startup, the service runs `version` again if the directory's bundle hash still equals `dir_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The stored version running because of the pin (it holds version `of`'s content).
    pub version: u64,
    /// The version that was pinned.
    pub of: u64,
    /// The config directory's bundle hash when the pin was made, lowercase hex.
    pub dir_hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Running {
    version: u64,
}

/// A directory of numbered config versions. Cheap to open; every method reads the directory
/// afresh, so several processes may share one store: writers serialize on an exclusive lock file,
/// and readers need no lock because a version appears by one atomic rename.
///
/// ```
/// use hotconf::store::{Commit, SnapshotStore, StoreConfig};
/// use hotconf::Origin;
/// use hotconf::{SourceFile, Sources};
/// let dir = tempfile::tempdir().unwrap();
/// let store = SnapshotStore::open(dir.path(), StoreConfig::default()).unwrap();
/// let bundle = Sources::from_files([SourceFile::new("a.yaml", "x: 1\n")]);
/// let Commit::Created(manifest) = store.commit(&bundle, Origin::Startup).unwrap() else { panic!() };
/// assert_eq!(manifest.version, 1);
/// assert_eq!(store.commit(&bundle, Origin::Change).unwrap(), Commit::Unchanged { version: 1 });
/// assert_eq!(store.read(1).unwrap().sources(), &bundle);
/// ```
///
/// On a read-only config directory (a Kubernetes ConfigMap volume) files cannot be written back:
/// the service pins version N live by loading [`SnapshotStore::read`]`(N)`, validating its
/// sources, publishing them and calling [`SnapshotStore::set_running`]`(N)`.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    config: StoreConfig,
    audit: AuditLog,
    access: Access,
    #[cfg(test)]
    pub(crate) faults: faults::Faults,
}

/// Whether a store handle may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

/// An exclusive hold on the store's lock file; released on drop (closing the file), with a
/// `trace` event (target `hotconf::snapshot::store`) giving how long it was waited for and held,
/// which `crates/hotconf-cli/benches/fleet.rs` collects; with no subscriber interested, nothing
/// is formatted.
struct Locked {
    _file: File,
    requested: Instant,
    acquired: Instant,
}

impl Drop for Locked {
    fn drop(&mut self) {
        let waited_us = self.acquired.duration_since(self.requested).as_micros() as u64;
        let held_us = self.acquired.elapsed().as_micros() as u64;
        tracing::trace!(event = "store.lock", waited_us, held_us, "store lock released");
    }
}

impl SnapshotStore {
    /// Opens the store at `dir`, creating it (mode 0700) if missing, and removes what an
    /// interrupted writer left behind. A store the user may only read opens too (for `history`).
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Self, StoreError> {
        if !dir.is_dir() {
            fsio::create_private_dir_synced(dir)?;
        }
        let store = Self {
            dir: dir.to_owned(),
            config,
            audit: AuditLog::new(dir.join(AUDIT_FILE)),
            access: Access::ReadWrite,
            #[cfg(test)]
            faults: faults::Faults::default(),
        };
        match store.lock() {
            Ok(_lock) => {
                store.remove_leftovers()?;
                // The store works without its audit log; a log that cannot be repaired now is
                // reported and tried again at the next open.
                if let Err(e) = store.repair_audit() {
                    tracing::warn!(
                        event = "snapshot.error",
                        error = %crate::error_text::error_chain(&e),
                        "cannot repair the audit log"
                    );
                }
            }
            Err(StoreError::Lock { source, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) => {}
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    /// Opens the existing store at `dir` for reading only: creates nothing (no directory, no
    /// lock file), removes nothing, and every write method returns [`StoreError::ReadOnly`].
    /// Reading needs no lock: a version appears by one rename, whole, and the state files are
    /// replaced atomically. A directory holding nothing a store writes (no `.lock`,
    /// `audit.jsonl`, `running.json` or version directory) is [`StoreError::NotAStore`]; a store
    /// that `run` opened but that holds no version yet has its `.lock` and opens, empty.
    ///
    /// ```
    /// use hotconf::store::{SnapshotStore, StoreConfig};
    /// use hotconf::StoreError;
    /// let dir = tempfile::tempdir().unwrap();
    /// let err = SnapshotStore::open_read_only(dir.path(), StoreConfig::default()).unwrap_err();
    /// assert!(matches!(err, StoreError::NotAStore { .. }));
    /// assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was written");
    /// SnapshotStore::open(dir.path(), StoreConfig::default()).unwrap();
    /// let store = SnapshotStore::open_read_only(dir.path(), StoreConfig::default()).unwrap();
    /// assert!(store.entries().unwrap().is_empty());
    ///
    /// // A store copied without its lock file: read, never written.
    /// use hotconf::Origin;
    /// use hotconf::{SourceFile, Sources};
    /// let writer = SnapshotStore::open(dir.path(), StoreConfig::default()).unwrap();
    /// writer.commit(&Sources::from_files([SourceFile::new("a.yaml", "x: 1\n")]), Origin::Startup).unwrap();
    /// std::fs::remove_file(dir.path().join(".lock")).unwrap();
    /// let reader = SnapshotStore::open_read_only(dir.path(), StoreConfig::default()).unwrap();
    /// assert_eq!(reader.read(1).unwrap().manifest().version, 1);
    /// assert!(matches!(reader.set_running(1), Err(StoreError::ReadOnly { .. })));
    /// assert!(!dir.path().join(".lock").exists());
    /// ```
    pub fn open_read_only(dir: &Path, config: StoreConfig) -> Result<Self, StoreError> {
        let mut is_store = false;
        for entry in fs::read_dir(dir).map_err(StoreError::io(dir))? {
            let entry = entry.map_err(StoreError::io(dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if matches!(&*name, LOCK_FILE | AUDIT_FILE | RUNNING_FILE) || parse_version_dir(&name).is_some() {
                is_store = true;
                break;
            }
        }
        if !is_store {
            return Err(StoreError::NotAStore { dir: dir.to_owned() });
        }
        Ok(Self {
            dir: dir.to_owned(),
            config,
            audit: AuditLog::new(dir.join(AUDIT_FILE)),
            access: Access::ReadOnly,
            #[cfg(test)]
            faults: faults::Faults::default(),
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The audit log kept in the store.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Stores `sources` as a new version, unless they equal the newest version byte for byte
    /// ([`Commit::Unchanged`]). Content equal to an older version M is stored with `same_as: M`.
    /// `origin` is the caller's to decide (the reloader turns a change `hotconf restore`
    /// announced into [`Origin::Restore`]). Appends an `accepted` audit record
    /// with the semantic diff from the parent, then prunes to the retention.
    ///
    /// Every file must have been read whole and have a bare name.
    pub fn commit(&self, sources: &Sources, origin: Origin) -> Result<Commit, StoreError> {
        for file in sources.files() {
            check_name(file.name())?;
            if file.bytes().is_none() {
                return Err(StoreError::NotStorable { name: file.name().to_owned() });
            }
        }
        let hash = sources.bundle_hash().to_hex().to_string();
        // What each replica of a fleet commits on its own (a change seen, a start); a pin or a
        // restore, an operator's action on one replica, always takes the locked path.
        let _lock = if matches!(origin, Origin::Startup | Origin::Change) {
            // In a fleet sharing the store, another replica is most likely storing this very
            // content, or about to.
            match self.look_or_lock(|| self.unchanged_without_lock(&hash))? {
                Ok(version) => return Ok(Commit::Unchanged { version }),
                Err(lock) => lock,
            }
        } else {
            self.lock()?
        };
        self.remove_leftovers()?;
        let entries = self.entries()?;
        let newest = entries.last().map(Entry::version);
        let newest_manifest = match entries.last() {
            Some(Entry::Listed(m)) => Some(m),
            _ => None,
        };
        // Equal content counts only if the stored version still verifies: a damaged newest version
        // is superseded, never pointed at.
        let verified = |m: &Manifest| m.bundle_hash == hash && self.read(m.version).is_ok();
        if let Some(m) = newest_manifest.filter(|m| verified(m)) {
            // The version may be one whose commit failed at the last step, the fsync of the store
            // directory: it is durable only once that fsync succeeds (a failed fsync is never
            // taken as done), so it is not reported before.
            fsio::sync_dir(&self.dir)?;
            return Ok(Commit::Unchanged { version: m.version });
        }
        let version = newest.map_or(1, |n| n + 1);
        let same_as = entries.iter().rev().find_map(|e| match e {
            Entry::Listed(m) if verified(m) => Some(m.version),
            _ => None,
        });
        let files: Vec<FileEntry> = sources
            .files()
            .iter()
            .map(|f| {
                let bytes = f.bytes().unwrap_or_default();
                FileEntry {
                    name: f.name().to_owned(),
                    blake3: blake3::hash(bytes).to_hex().to_string(),
                    size: bytes.len() as u64,
                }
            })
            .collect();
        let changed_files = changed_files(newest_manifest.map(|m| m.files.as_slice()).unwrap_or(&[]), &files);
        let manifest = Manifest {
            format: FORMAT,
            version,
            created_at: super::time::rfc3339((self.config.clock)()),
            origin,
            parent: newest,
            same_as,
            bundle_hash: hash,
            changed_files,
            files,
        };
        self.write_version(&manifest, sources)?;

        let parent_sources = match newest {
            Some(n) => self.read(n).map(StoredVersion::into_parts).map(|(_, s)| s).unwrap_or_default(),
            None => Sources::default(),
        };
        let event = AuditEvent::Accepted {
            version,
            origin,
            parent: newest,
            same_as,
            bundle_hash: manifest.bundle_hash.clone(),
            files: manifest.changed_files.clone(),
            diff: semantic_diff(&parent_sources, sources),
            repaired: false,
        };
        self.step("append audit record")?;
        if let Err(e) = self.audit.append(&AuditRecord::new((self.config.clock)(), event)) {
            // The version is stored whole; failing the commit now would make the caller believe it
            // is not. The operator sees the error in the service's log.
            tracing::error!(event = "audit.failed", version, error = %crate::error_text::error_chain(&e), "cannot append to the audit log");
        }
        self.prune_locked()?;
        Ok(Commit::Created(manifest))
    }

    /// The lock-free fast path of [`SnapshotStore::commit`]: `Some(newest)` when the newest listed
    /// version holds content with `hash` and verifies, `None` when the locked path must decide.
    ///
    /// A fleet of replicas sharing one store all commit the same edit; all but the first find it
    /// stored, and none of them needs to wait for the others' turns on the lock to learn that.
    /// Reading without the lock is safe: a version directory appears whole, by one rename of a
    /// staged directory whose files and manifest were fsynced first, and is never modified; the
    /// newest version is never pruned. The listing is one `readdir`, which returns every name
    /// present throughout it, so the greatest version it shows was the newest at some instant
    /// during it, and answering `Unchanged` for it is what a locked commit at that instant would
    /// answer. (The one exception: other writers both add a version and prune the newest one
    /// within that single `readdir`, which takes `retention` commits during it, and an older
    /// version spared as running is shown as the greatest. If its content is this content, the
    /// answer names a version that holds exactly this content, and no `same_as` version is added.)
    /// A damaged newest, other content, or a newest pruned before it reads: `None`, and the locked
    /// path decides. As on the locked path, the store directory is fsynced before `Unchanged` is
    /// reported (the version may be one whose writer died before its own fsync).
    fn unchanged_without_lock(&self, hash: &str) -> Result<Option<u64>, StoreError> {
        if self.access == Access::ReadOnly {
            return Ok(None);
        }
        let mut newest = None;
        for entry in fs::read_dir(&self.dir).map_err(StoreError::io(&self.dir))? {
            let entry = entry.map_err(StoreError::io(&self.dir))?;
            if let Some(version) = entry.file_name().to_str().and_then(parse_version_dir) {
                newest = newest.max(Some(version));
            }
        }
        let Some(newest) = newest else { return Ok(None) };
        // One read: the manifest and every file, verified (in a fleet nearly every replica finds
        // its content here, so reading the manifest first to compare hashes would read it twice).
        match self.read(newest) {
            Ok(stored) if stored.manifest.bundle_hash == hash => {
                fsio::sync_dir(&self.dir)?;
                Ok(Some(newest))
            }
            _ => Ok(None),
        }
    }

    /// Stages the version in a temporary directory and renames it into place.
    fn write_version(&self, manifest: &Manifest, sources: &Sources) -> Result<(), StoreError> {
        let staging = self.dir.join(format!(".tmp-v{}-{}", manifest.version, fsio::unique_suffix()));
        let files_dir = staging.join(FILES_DIR);
        self.step("create staging directory")?;
        fsio::create_private_dir(&files_dir)?;
        for file in sources.files() {
            self.step("write file")?;
            fsio::write_new_synced(&files_dir.join(file.name()), file.bytes().unwrap_or_default())?;
        }
        self.step("sync files directory")?;
        fsio::sync_dir(&files_dir)?;
        let json = serde_json::to_vec_pretty(manifest).expect("a manifest serializes");
        self.step("write manifest")?;
        fsio::write_new_synced(&staging.join(MANIFEST_FILE), &json)?;
        self.step("sync staging directory")?;
        fsio::sync_dir(&staging)?;
        self.step("rename into place")?;
        fsio::rename(&staging, &self.version_dir(manifest.version))?;
        self.step("sync store directory")?;
        fsio::sync_dir(&self.dir)
    }

    /// Every version directory, oldest first, with its manifest or why it cannot be read.
    pub fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut versions = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(StoreError::io(&self.dir))? {
            let entry = entry.map_err(StoreError::io(&self.dir))?;
            if let Some(version) = entry.file_name().to_str().and_then(parse_version_dir) {
                versions.push(version);
            }
        }
        versions.sort_unstable();
        Ok(versions
            .into_iter()
            .map(|version| match self.read_manifest(version) {
                Ok(m) => Entry::Listed(m),
                Err(error) => Entry::Damaged { version, error },
            })
            .collect())
    }

    /// Like [`SnapshotStore::entries`], with every listed version's files read and verified as
    /// [`SnapshotStore::read`] does: a version whose files fail their check is [`Entry::Damaged`].
    /// Costs one read and one blake3 of every stored file (`hotconf history` uses it).
    pub fn verified_entries(&self) -> Result<Vec<Entry>, StoreError> {
        Ok(self
            .entries()?
            .into_iter()
            .map(|entry| match entry {
                Entry::Listed(m) => match self.read(m.version) {
                    Ok(_) => Entry::Listed(m),
                    Err(error) => Entry::Damaged { version: m.version, error },
                },
                damaged => damaged,
            })
            .collect())
    }

    /// The manifests of every version whose manifest reads, oldest first. Damaged versions are
    /// left out; [`SnapshotStore::entries`] lists them too.
    pub fn list(&self) -> Result<Vec<Manifest>, StoreError> {
        Ok(self
            .entries()?
            .into_iter()
            .filter_map(|e| match e {
                Entry::Listed(m) => Some(m),
                Entry::Damaged { .. } => None,
            })
            .collect())
    }

    /// The newest version, read and verified; `None` for an empty store.
    pub fn latest(&self) -> Result<Option<StoredVersion>, StoreError> {
        match self.entries()?.last() {
            Some(e) => self.read(e.version()).map(Some),
            None => Ok(None),
        }
    }

    /// Reads `version` and verifies every file's size and blake3 and the bundle hash against
    /// its manifest. A damaged version is an error ([`StoreError::Corrupt`]), never returned.
    pub fn read(&self, version: u64) -> Result<StoredVersion, StoreError> {
        let manifest = self.read_manifest(version)?;
        let corrupt = |problem| StoreError::Corrupt { version, problem };
        let files_dir = self.version_dir(version).join(FILES_DIR);
        let mut files = Vec::new();
        for entry in &manifest.files {
            if check_name(&entry.name).is_err() {
                return Err(corrupt(Corruption::BadFileName { name: entry.name.clone() }));
            }
            let path = files_dir.join(&entry.name);
            // Read through the non-blocking reader, at most one byte past the size the manifest
            // promises: a planted FIFO is refused, never waited on, and a grown file is not read whole.
            let bytes = match read_file(&path, entry.size) {
                Ok(FileRead::Bytes { bytes, .. }) => bytes,
                Ok(FileRead::TooLarge { size, .. }) => {
                    let (name, expected) = (entry.name.clone(), entry.size);
                    return Err(corrupt(Corruption::SizeMismatch { name, expected, found: size }));
                }
                Ok(FileRead::NotRegular { kind }) => {
                    return Err(corrupt(Corruption::NotRegular { name: entry.name.clone(), kind }))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(corrupt(Corruption::MissingFile { name: entry.name.clone() }))
                }
                Err(e) => return Err(StoreError::Io { path, source: e }),
            };
            if bytes.len() as u64 != entry.size {
                let found = bytes.len() as u64;
                return Err(corrupt(Corruption::SizeMismatch {
                    name: entry.name.clone(),
                    expected: entry.size,
                    found,
                }));
            }
            if blake3::hash(&bytes).to_hex().as_str() != entry.blake3 {
                return Err(corrupt(Corruption::HashMismatch { name: entry.name.clone() }));
            }
            files.push(SourceFile::new(entry.name.clone(), bytes));
        }
        for entry in fs::read_dir(&files_dir).map_err(StoreError::io(&files_dir))? {
            let entry = entry.map_err(StoreError::io(&files_dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !manifest.files.iter().any(|f| f.name == name) {
                return Err(corrupt(Corruption::UnlistedFile { name }));
            }
        }
        let sources = Sources::from_files(files);
        if sources.bundle_hash().to_hex().as_str() != manifest.bundle_hash {
            return Err(corrupt(Corruption::BundleHashMismatch));
        }
        Ok(StoredVersion { manifest, sources })
    }

    fn read_manifest(&self, version: u64) -> Result<Manifest, StoreError> {
        let dir = self.version_dir(version);
        let path = dir.join(MANIFEST_FILE);
        let bytes = match fsio::read_regular(&path, fsio::MAX_STATE_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => {
                return Err(StoreError::NotFound { version, store: self.dir.clone() })
            }
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        // Read the format first, so a newer format is reported as such, not as a parse error.
        #[derive(Deserialize)]
        struct Format {
            #[serde(default)]
            format: Option<u32>,
        }
        if let Ok(Format { format: Some(format) }) = serde_json::from_slice::<Format>(&bytes) {
            if format > FORMAT {
                return Err(StoreError::UnsupportedFormat { version, format });
            }
        }
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::BadManifest { version, path, source })?;
        if manifest.version != version {
            return Err(StoreError::Corrupt { version, problem: Corruption::WrongVersion { found: manifest.version } });
        }
        Ok(manifest)
    }

    /// Records `version` as the one the service runs, so pruning never deletes it. When
    /// `running.json` already names it (another replica sharing the store recorded it), the lock
    /// is not taken: the file is replaced atomically, so reading it unlocked sees a whole record,
    /// and the store directory is fsynced before returning, as after a write.
    /// A replica that finds the lock busy waits for the writer on a shared lock (as
    /// [`SnapshotStore::commit`] does) and looks again, a few rounds at most, and looks once more
    /// under the exclusive lock: in a fleet, the writer is most likely recording this very version.
    pub fn set_running(&self, version: u64) -> Result<(), StoreError> {
        let recorded = || matches!(self.running(), Ok(Some(v)) if v == version) && self.version_dir(version).is_dir();
        // In a fleet, every replica applying this version arrives here within a few milliseconds,
        // and one of them records it.
        let lock = match self.look_or_lock(|| Ok((self.access == Access::ReadWrite && recorded()).then_some(())))? {
            Ok(()) => return fsio::sync_dir(&self.dir),
            Err(lock) => lock,
        };
        if recorded() {
            // Another replica recorded it while this one took the lock: nothing to write.
            drop(lock);
            return fsio::sync_dir(&self.dir);
        }
        let _lock = lock;
        if !self.version_dir(version).is_dir() {
            return Err(StoreError::NotFound { version, store: self.dir.clone() });
        }
        let json = serde_json::to_vec(&Running { version }).expect("serializes");
        self.step("write running.json")?;
        fsio::replace_atomic(&self.dir, RUNNING_FILE, &json, fsio::PRIVATE_FILE)?;
        Ok(())
    }

    /// The version recorded by [`SnapshotStore::set_running`], if any.
    pub fn running(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.read_state::<Running>(RUNNING_FILE)?.map(|r| r.version))
    }

    /// Records a live pin (replacing any), so a restart keeps it while the directory is unchanged.
    pub(crate) fn set_pin(&self, pin: &Pin) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let json = serde_json::to_vec(pin).expect("serializes");
        self.step("write pin.json")?;
        fsio::replace_atomic(&self.dir, PIN_FILE, &json, fsio::PRIVATE_FILE)?;
        Ok(())
    }

    /// The live pin recorded by [`SnapshotStore::set_pin`], if any.
    pub(crate) fn pin(&self) -> Result<Option<Pin>, StoreError> {
        self.read_state(PIN_FILE)
    }

    /// Drops the live pin (the files changed, or a reload replaced the pinned version).
    pub(crate) fn clear_pin(&self) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        self.step("remove pin.json")?;
        fsio::remove_synced(&self.dir, PIN_FILE).map(drop)
    }

    /// Records that `target`'s files are being written back into the config directory, so the
    /// service stores its next change of that content as a restore of it. Write it *before* the
    /// files, so a poller cannot store them first.
    pub fn record_restore_intent(&self, target: &StoredVersion) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let intent =
            RestoreIntent { version: target.manifest.version, bundle_hash: target.manifest.bundle_hash.clone() };
        let json = serde_json::to_vec(&intent).expect("serializes");
        fsio::replace_atomic(&self.dir, INTENT_FILE, &json, fsio::PRIVATE_FILE)?;
        Ok(())
    }

    /// The pending restore intent, if any.
    pub fn restore_intent(&self) -> Result<Option<RestoreIntent>, StoreError> {
        self.read_state(INTENT_FILE)
    }

    /// Drops the pending restore intent (a restore that failed to write its files, or one the
    /// service has stored).
    pub fn clear_restore_intent(&self) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        self.step("remove restore intent")?;
        fsio::remove_synced(&self.dir, INTENT_FILE).map(drop)
    }

    fn read_state<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        let path = self.dir.join(name);
        match fsio::read_regular(&path, fsio::MAX_STATE_BYTES) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map(Some).map_err(|source| StoreError::BadStateFile { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    /// Appends an audit record stamped with the store's clock, under the store's lock.
    pub fn record(&self, event: AuditEvent) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        self.audit.append(&AuditRecord::new((self.config.clock)(), event))
    }

    /// Deletes the versions beyond the retention, oldest first, never the newest ones kept nor the
    /// running version. Returns the versions deleted.
    pub fn prune(&self) -> Result<Vec<u64>, StoreError> {
        let _lock = self.lock()?;
        self.prune_locked()
    }

    fn prune_locked(&self) -> Result<Vec<u64>, StoreError> {
        let versions: Vec<u64> = self.entries()?.iter().map(Entry::version).collect();
        let running = self.running().ok().flatten();
        let keep_from = versions.len().saturating_sub(self.config.retention);
        let mut pruned = Vec::new();
        for &version in &versions[..keep_from] {
            if Some(version) == running {
                continue;
            }
            // Rename first: a directory half deleted is never visible as a version.
            let trash = self.dir.join(format!(".trash-v{version}-{}", fsio::unique_suffix()));
            self.step("rename version to trash")?;
            fsio::rename(&self.version_dir(version), &trash)?;
            self.step("sync store directory after trash")?;
            fsio::sync_dir(&self.dir)?;
            self.step("delete trash")?;
            fs::remove_dir_all(&trash).map_err(StoreError::io(&trash))?;
            pruned.push(version);
        }
        Ok(pruned)
    }

    /// Repairs what a crash left in the audit log: a last line cut short (see
    /// [`AuditLog::repair_torn_tail`]), and a version stored with no `accepted` record (a crash
    /// between its rename into place and its record's append). Each such version that reads and
    /// verifies gets its record, `"repaired": true`, oldest first. Holds the lock.
    fn repair_audit(&self) -> Result<Vec<u64>, StoreError> {
        let torn = self.audit.repair_torn_tail()?;
        let recorded = self.audit.accepted_versions()?;
        let mut repaired = Vec::new();
        for entry in self.entries()? {
            let Entry::Listed(manifest) = entry else { continue };
            if recorded.contains(&manifest.version) {
                continue;
            }
            // A damaged version is not vouched for by a record.
            let Ok(stored) = self.read(manifest.version) else { continue };
            let parent_sources =
                manifest.parent.and_then(|p| self.read(p).ok()).map(|p| p.into_parts().1).unwrap_or_default();
            let event = AuditEvent::Accepted {
                version: manifest.version,
                origin: manifest.origin,
                parent: manifest.parent,
                same_as: manifest.same_as,
                bundle_hash: manifest.bundle_hash.clone(),
                files: manifest.changed_files.clone(),
                diff: semantic_diff(&parent_sources, stored.sources()),
                repaired: true,
            };
            self.step("append repaired audit record")?;
            self.audit.append(&AuditRecord { ts: manifest.created_at.clone(), event })?;
            repaired.push(manifest.version);
        }
        if torn || !repaired.is_empty() {
            tracing::warn!(
                event = "audit.repaired",
                torn_line = torn,
                versions = %serde_json::to_string(&repaired).unwrap_or_default(),
                "the audit log was missing records after a crash"
            );
        }
        Ok(repaired)
    }

    /// Removes `.tmp-…` and `.trash-…` directories an interrupted writer left. Holds the lock.
    fn remove_leftovers(&self) -> Result<(), StoreError> {
        for entry in fs::read_dir(&self.dir).map_err(StoreError::io(&self.dir))? {
            let entry = entry.map_err(StoreError::io(&self.dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".tmp-v") || name.starts_with(".trash-v") {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(StoreError::io(&path))?;
            }
        }
        Ok(())
    }

    fn lock(&self) -> Result<Locked, StoreError> {
        let requested = Instant::now();
        let (file, path) = self.lock_file()?;
        file.lock().map_err(|source| StoreError::Lock { path, source })?;
        #[cfg(test)]
        self.faults.exclusive_locks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Locked { _file: file, requested, acquired: Instant::now() })
    }

    /// What `look` finds, or else the exclusive lock. A writer holding the lock (in a fleet,
    /// most likely storing or recording what `look` looks for) is waited for on a shared lock,
    /// which every waiter gets at once when it lets go, and `look` runs again, a few rounds at
    /// most, before this queues for the exclusive lock: the replicas of a fleet never take it one
    /// by one only to find what they came for.
    fn look_or_lock<T>(
        &self,
        look: impl Fn() -> Result<Option<T>, StoreError>,
    ) -> Result<Result<T, Locked>, StoreError> {
        for _ in 0..LOOK_AGAIN_ROUNDS {
            if let Some(found) = look()? {
                return Ok(Ok(found));
            }
            if let Some(lock) = self.try_lock()? {
                return Ok(Err(lock));
            }
            self.step("wait for the writer")?;
            self.wait_for_writer()?;
        }
        match look()? {
            Some(found) => Ok(Ok(found)),
            None => Ok(Err(self.lock()?)),
        }
    }

    /// The exclusive lock if it is free now; `None` while another writer holds it.
    fn try_lock(&self) -> Result<Option<Locked>, StoreError> {
        let requested = Instant::now();
        let (file, path) = self.lock_file()?;
        match file.try_lock() {
            Ok(()) => {
                #[cfg(test)]
                self.faults.exclusive_locks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(Some(Locked { _file: file, requested, acquired: Instant::now() }))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Lock { path, source }),
        }
    }

    /// Waits until no writer holds the exclusive lock: takes a shared lock, which every waiter
    /// gets at once, and lets it go (closing the file).
    fn wait_for_writer(&self) -> Result<(), StoreError> {
        let (file, path) = self.lock_file()?;
        file.lock_shared().map_err(|source| StoreError::Lock { path, source })
    }

    /// The lock file, opened (created owner-only if missing); refused on a read-only handle.
    fn lock_file(&self) -> Result<(File, PathBuf), StoreError> {
        if self.access == Access::ReadOnly {
            return Err(StoreError::ReadOnly { dir: self.dir.clone() });
        }
        let path = self.dir.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, fsio::PRIVATE_FILE);
        let file = options.open(&path).map_err(|source| StoreError::Lock { path: path.clone(), source })?;
        Ok((file, path))
    }

    /// The directory of `version`: `v000042`.
    fn version_dir(&self, version: u64) -> PathBuf {
        self.dir.join(format!("v{version:06}"))
    }

    /// A numbered write step: where the store's tests inject a crash.
    #[inline]
    fn step(&self, what: &'static str) -> Result<(), StoreError> {
        #[cfg(test)]
        self.faults.step(what)?;
        let _ = what;
        Ok(())
    }
}

/// How many times [`SnapshotStore::look_or_lock`] waits for a writer and looks again before it
/// queues for the exclusive lock.
const LOOK_AGAIN_ROUNDS: u32 = 4;

/// `v000042` → 42; anything else (including `v42`, which is not how the store names it) → None.
fn parse_version_dir(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('v')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version: u64 = digits.parse().ok()?;
    (version > 0 && format!("{version:06}") == digits).then_some(version)
}

/// Refuses names that are not one plain path component.
fn check_name(name: &str) -> Result<(), StoreError> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).file_name().is_some_and(|n| n == name);
    if plain {
        Ok(())
    } else {
        Err(StoreError::BadFileName { name: name.to_owned() })
    }
}

/// Names added, removed or modified between two file lists, sorted.
fn changed_files(old: &[FileEntry], new: &[FileEntry]) -> Vec<String> {
    let mut names = BTreeSet::new();
    for f in new {
        if !old.iter().any(|o| o.name == f.name && o.blake3 == f.blake3) {
            names.insert(f.name.clone());
        }
    }
    for o in old {
        if !new.iter().any(|f| f.name == o.name) {
            names.insert(o.name.clone());
        }
    }
    names.into_iter().collect()
}

#[cfg(test)]
pub(crate) mod faults {
    //! Crash injection for the store's own tests: fail at the Nth write step, leaving the
    //! directory exactly as a `kill -9` at that point would (no cleanup code runs).

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::StoreError;

    #[derive(Debug)]
    pub(crate) struct Faults {
        crash_at: AtomicUsize,
        steps: AtomicUsize,
        /// Exclusive locks this handle took.
        pub(crate) exclusive_locks: AtomicUsize,
        /// Told the name of every step as it is reached.
        pub(crate) steps_seen: std::sync::Mutex<Option<std::sync::mpsc::Sender<&'static str>>>,
    }

    impl Default for Faults {
        fn default() -> Self {
            Self {
                crash_at: AtomicUsize::new(usize::MAX),
                steps: AtomicUsize::new(0),
                exclusive_locks: AtomicUsize::new(0),
                steps_seen: std::sync::Mutex::new(None),
            }
        }
    }

    impl Faults {
        /// Crash at the `n`th step from now (0 = the next one).
        pub(crate) fn crash_after(&self, n: usize) {
            self.steps.store(0, Ordering::SeqCst);
            self.crash_at.store(n, Ordering::SeqCst);
        }

        pub(crate) fn disarm(&self) {
            self.crash_at.store(usize::MAX, Ordering::SeqCst);
        }

        pub(crate) fn step(&self, what: &'static str) -> Result<(), StoreError> {
            if let Some(tx) = &*self.steps_seen.lock().unwrap() {
                let _ = tx.send(what);
            }
            let step = self.steps.fetch_add(1, Ordering::SeqCst);
            if step == self.crash_at.load(Ordering::SeqCst) {
                self.disarm();
                return Err(StoreError::Injected { step, what });
            }
            Ok(())
        }
    }
}
