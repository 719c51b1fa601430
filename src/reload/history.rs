//! Where the reloader keeps the versions it applies: a [`SnapshotStore`] on disk, or memory only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::snapshot::{AuditEvent, Commit, Origin, Pin, SnapshotStore, StoreError};
use crate::source::Sources;

/// The versions a reloader keeps: on disk in a [`SnapshotStore`] (numbered snapshots, audit log,
/// pins that survive restarts), or in memory only ([`History::memory`]: the last few versions,
/// for [`pin`](crate::Live::pin), gone when the process ends).
///
#[derive(Debug)]
pub(crate) struct History(Inner);

#[derive(Debug)]
enum Inner {
    Disk(SnapshotStore),
    Memory(Mutex<Memory>),
}

#[derive(Debug)]
struct Memory {
    retention: usize,
    /// The newest version number handed out (never reused).
    newest: u64,
    versions: BTreeMap<u64, Sources>,
}

impl History {
    /// Versions kept in memory only: the newest `retention` (at least 1) are kept for pins.
    pub fn memory(retention: usize) -> Self {
        Self(Inner::Memory(Mutex::new(Memory { retention: retention.max(1), newest: 0, versions: BTreeMap::new() })))
    }

    /// Stores `sources` as a new version unless they equal the newest; the version that holds
    /// them and the origin recorded.
    pub(crate) fn commit(&self, sources: &Sources, origin: Origin) -> Result<(u64, Origin), StoreError> {
        match &self.0 {
            Inner::Disk(store) => {
                // A change whose content `hotconf restore` announced is a restore of that version:
                // decided here, by the reloader's side, and recorded by the store.
                let hash = sources.bundle_hash().to_hex().to_string();
                let intent = store.restore_intent()?.filter(|i| i.bundle_hash == hash);
                let origin = match (origin, &intent) {
                    (Origin::Change, Some(intent)) => Origin::Restore { of: intent.version },
                    (origin, _) => origin,
                };
                let committed = match store.commit(sources, origin)? {
                    Commit::Created(manifest) => (manifest.version, manifest.origin),
                    Commit::Unchanged { version } => (version, origin),
                };
                if intent.is_some() {
                    // Stored: the intent is spent. A failure here leaves it for the next commit of
                    // the same content, which is this one again (unchanged).
                    if let Err(e) = store.clear_restore_intent() {
                        tracing::warn!(event = "snapshot.error", error = %crate::error_text::error_chain(&e), "cannot clear the restore intent");
                    }
                }
                Ok(committed)
            }
            Inner::Memory(memory) => {
                let mut m = memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some((&version, newest)) = m.versions.iter().next_back() {
                    if newest.bundle_hash() == sources.bundle_hash() {
                        return Ok((version, origin));
                    }
                }
                m.newest += 1;
                let version = m.newest;
                m.versions.insert(version, sources.clone());
                while m.versions.len() > m.retention {
                    m.versions.pop_first();
                }
                Ok((version, origin))
            }
        }
    }

    /// The files of `version`, verified when on disk.
    pub(crate) fn read(&self, version: u64) -> Result<Sources, StoreError> {
        match &self.0 {
            Inner::Disk(store) => Ok(store.read(version)?.into_parts().1),
            Inner::Memory(memory) => {
                let m = memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                m.versions
                    .get(&version)
                    .cloned()
                    .ok_or(StoreError::NotFound { version, store: PathBuf::from("memory") })
            }
        }
    }

    /// The version numbers kept, oldest first (a damaged stored version is not listed).
    pub(crate) fn versions(&self) -> Result<Vec<u64>, StoreError> {
        match &self.0 {
            Inner::Disk(store) => Ok(store.list()?.into_iter().map(|m| m.version).collect()),
            Inner::Memory(memory) => {
                let m = memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                Ok(m.versions.keys().copied().collect())
            }
        }
    }

    /// The version numbers kept, newest first (damaged versions on disk left out).
    pub(crate) fn versions_newest_first(&self) -> Result<Vec<u64>, StoreError> {
        let mut versions: Vec<u64> = match &self.0 {
            Inner::Disk(store) => store.list()?.into_iter().map(|m| m.version).collect(),
            Inner::Memory(memory) => {
                memory.lock().unwrap_or_else(std::sync::PoisonError::into_inner).versions.keys().copied().collect()
            }
        };
        versions.sort_unstable_by(|a, b| b.cmp(a));
        Ok(versions)
    }

    pub(crate) fn set_running(&self, version: u64) -> Result<(), StoreError> {
        self.disk(|s| s.set_running(version))
    }

    pub(crate) fn set_pin(&self, pin: &Pin) -> Result<(), StoreError> {
        self.disk(|s| s.set_pin(pin))
    }

    pub(crate) fn clear_pin(&self) -> Result<(), StoreError> {
        self.disk(SnapshotStore::clear_pin)
    }

    pub(crate) fn pin(&self) -> Result<Option<Pin>, StoreError> {
        match &self.0 {
            Inner::Disk(store) => store.pin(),
            Inner::Memory(_) => Ok(None),
        }
    }

    pub(crate) fn record(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.disk(|s| s.record(event))
    }

    fn disk(&self, f: impl FnOnce(&SnapshotStore) -> Result<(), StoreError>) -> Result<(), StoreError> {
        match &self.0 {
            Inner::Disk(store) => f(store),
            Inner::Memory(_) => Ok(()),
        }
    }
}

impl From<SnapshotStore> for History {
    fn from(store: SnapshotStore) -> Self {
        Self(Inner::Disk(store))
    }
}

#[cfg(test)]
mod tests {
    use super::History;
    use crate::snapshot::{Origin, SnapshotStore, StoreConfig};
    use crate::source::{SourceFile, Sources};

    fn bundle(text: &str) -> Sources {
        Sources::from_files([SourceFile::new("a.yaml", text)])
    }

    #[test]
    fn a_change_hotconf_restore_announced_is_stored_as_a_restore_and_spends_the_intent() {
        let dir = tempfile::tempdir().unwrap();
        let tool = SnapshotStore::open(dir.path(), StoreConfig::default()).unwrap();
        let history = History::from(SnapshotStore::open(dir.path(), StoreConfig::default()).unwrap());
        assert_eq!(history.commit(&bundle("v: 1"), Origin::Startup).unwrap(), (1, Origin::Startup));
        assert_eq!(history.commit(&bundle("v: 2"), Origin::Change).unwrap(), (2, Origin::Change));
        // `hotconf restore 1` announces version 1, then writes its files.
        tool.record_restore_intent(&tool.read(1).unwrap()).unwrap();
        // An unrelated change first (a half-applied restore): the intent waits.
        assert_eq!(history.commit(&bundle("v: 3"), Origin::Change).unwrap(), (3, Origin::Change));
        assert!(tool.restore_intent().unwrap().is_some());
        // The restored content: a restore of version 1, and the intent is spent.
        assert_eq!(history.commit(&bundle("v: 1"), Origin::Change).unwrap(), (4, Origin::Restore { of: 1 }));
        assert_eq!(tool.restore_intent().unwrap(), None);
        // A pin is the reloader's own origin, whatever the intent.
        assert_eq!(history.commit(&bundle("v: 2"), Origin::Pin { of: 2 }).unwrap(), (5, Origin::Pin { of: 2 }));
    }
}
