//! Restore: writes a stored version's files back into a config directory, each file atomically,
//! and removes the config files the version does not have. The only code that writes into a
//! config directory; never writes under the snapshot store.

use std::path::Path;

use super::error::StoreError;
use super::fsio;
use crate::source::{names, Sources};

/// What [`restore_into`] changed in the config directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Restored {
    /// Files written (their bytes differed or they were absent), sorted.
    pub written: Vec<String>,
    /// Config files removed because the version does not have them, sorted.
    pub removed: Vec<String>,
}

impl Restored {
    /// Every file touched, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut all: Vec<String> = self.written.iter().chain(&self.removed).cloned().collect();
        all.sort();
        all
    }
}

/// Makes the config files of `dir` equal to `target`, given what `dir` holds now (`current`, as
/// [`Sources::read_dir`] read it). Each file is replaced atomically (a temporary file in `dir`,
/// fsync, rename, fsync of `dir`), so a poller sees every file old or new, never half written;
/// files already equal are not touched. A replaced file keeps its permissions; a new one is 0600.
///
/// On a read-only directory (a Kubernetes ConfigMap volume) this fails on the first file with
/// [`StoreError::Io`]: pin the version in the service with [`super::SnapshotStore::read`] instead.
pub fn restore_into(dir: &Path, current: &Sources, target: &Sources) -> Result<Restored, StoreError> {
    let mut restored = Restored::default();
    for file in target.files() {
        let bytes = file.bytes().ok_or_else(|| StoreError::NotStorable { name: file.name().to_owned() })?;
        if current.get(file.name()).and_then(|f| f.bytes()) == Some(bytes) {
            continue;
        }
        fsio::replace_atomic(dir, file.name(), bytes, fsio::PRIVATE_FILE)?;
        restored.written.push(file.name().to_owned());
    }
    for name in current.names() {
        if target.get(name).is_none() && names::is_config_file_name(name) && fsio::remove_synced(dir, name)? {
            restored.removed.push(name.to_owned());
        }
    }
    Ok(restored)
}
