//! Snapshot: numbered, immutable versions of validated bundles kept on disk, their semantic diff,
//! the audit log and the write-back of a version (restore). Owns everything under the store
//! directory (`snapshots/`); never validates, never watches, and knows no schema.
//!
//! - [`SnapshotStore`] stores a bundle as version N+1 ([`SnapshotStore::commit`]), lists, reads back
//!   with verified hashes, prunes to a retention that spares the running version, and keeps the
//!   pin and the restore intent (which the reloader reads to store a change as a restore of N).
//! - [`semantic_diff`] compares two bundles value by value with secrets redacted.
//! - [`AuditLog`] is the append-only JSON-lines record of every attempt.
//! - [`restore_into`] writes a version back into a config directory, file by file atomically.
//!
//! A service on a read-only config directory (a Kubernetes ConfigMap volume) cannot have files
//! written back: it pins version N live by validating [`SnapshotStore::read`]`(N)`'s sources,
//! publishing them and calling [`SnapshotStore::set_running`]`(N)`.

// The tool-facing half of the store (listing, reading back, the audit log's reader, restore) is
// public only with the `store` feature (`hotconf::store`); without it, the reloader uses the rest
// and that half goes unused.
#![cfg_attr(not(feature = "store"), allow(dead_code))]

mod audit;
mod diff;
mod error;
mod fsio;
mod manifest;
#[cfg(feature = "store")]
mod restore;
mod store;
mod time;

pub use audit::{AuditDiagnostic, AuditEvent};
pub use diff::SemanticDiff;
pub(crate) use diff::{semantic_diff_from, DiffMemo};
pub use error::{Corruption, StoreError};
pub use manifest::Origin;
pub use store::{Commit, Pin, SnapshotStore, StoreConfig};
// The rest of the store's API, for tools (`hotconf::store`, feature `store`).
#[cfg(feature = "store")]
pub use {
    audit::{AuditLog, AuditRecord},
    diff::{semantic_diff, Change, ChangeKind, DiffValue},
    manifest::{FileEntry, Manifest},
    restore::{restore_into, Restored},
    store::{Entry, RestoreIntent, StoredVersion},
};

#[cfg(test)]
mod tests;
