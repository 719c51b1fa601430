//! What the store commands share: opening the store for reading, and turning a store error into a
//! message a person can act on and a documented exit code.

use std::path::Path;

use hotconf::store::{SnapshotStore, StoreConfig};
use hotconf::StoreError;

use crate::Exit;

pub use hotconf::error_chain as chain;

/// Prints `error` to stderr and maps it to an exit code: 1 for a missing, damaged or too-new
/// version (a refusal), 3 for a store that cannot be read or written.
pub fn report(error: &StoreError) -> Exit {
    eprintln!("error: {}", crate::escape::visible(&chain(error)));
    if error.is_refusal() {
        if matches!(error, StoreError::Corrupt { .. } | StoreError::BadManifest { .. }) {
            eprintln!(
                "  help: a damaged version is never shown whole or restored; pick another with `hotconf history`"
            );
        }
        Exit::Invalid
    } else {
        Exit::Failure
    }
}

/// Opens an existing store for reading only (nothing is created, locked or cleaned up): a
/// missing directory is an operational failure (3), a directory that is not a store a refusal
/// (1); both name the `--snapshots` option.
pub fn open_existing(dir: &Path) -> Result<SnapshotStore, Exit> {
    if !dir.is_dir() {
        eprintln!("error: no snapshot store at {}", crate::escape::visible(&dir.display().to_string()));
        eprintln!("  help: pass the service's store with --snapshots DIR");
        return Err(Exit::Failure);
    }
    SnapshotStore::open_read_only(dir, StoreConfig::default()).map_err(|e| {
        let exit = report(&e);
        if matches!(e, StoreError::NotAStore { .. }) {
            eprintln!("  help: pass the directory `hotconf run --snapshots` writes to");
        }
        exit
    })
}

/// Opens an existing store for writing (`restore`), after checking it is one.
pub fn open_writable(dir: &Path) -> Result<SnapshotStore, Exit> {
    open_existing(dir)?;
    SnapshotStore::open(dir, StoreConfig::default()).map_err(|e| report(&e))
}
