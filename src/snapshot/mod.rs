//! Snapshot: numbered, immutable versions of validated bundles kept on disk, their semantic diff,
//! the audit log and the write-back of a version for rollback. Owns everything under the store
//! directory (`snapshots/`); never validates, never watches, and knows no schema.
//!
//! - [`SnapshotStore`] stores a bundle as version N+1 ([`SnapshotStore::commit`]), lists, reads back
//!   with verified hashes, prunes to a retention that spares the running version, and keeps the
//!   rollback intent that turns the service's next commit into a rollback of N.
//! - [`semantic_diff`] compares two bundles value by value with secrets redacted.
//! - [`AuditLog`] is the append-only JSON-lines record of every attempt.
//! - [`restore_into`] writes a version back into a config directory, file by file atomically.
//!
//! A service on a read-only config directory (a Kubernetes ConfigMap volume) cannot have files
//! written back: it pins version N live by validating [`SnapshotStore::read`]`(N)`'s sources,
//! publishing them and calling [`SnapshotStore::set_running`]`(N)`.

mod audit;
mod diff;
mod error;
mod fsio;
mod manifest;
mod restore;
mod store;
mod time;

pub use audit::{AuditDiagnostic, AuditEvent};
pub use diff::{semantic_diff, Change, ChangeKind, DiffValue, SemanticDiff};
pub use error::StoreError;
pub use manifest::{FileEntry, Manifest, Origin, FORMAT};
pub use restore::restore_into;
pub use store::{Commit, Entry, Pin, SnapshotStore, StoreConfig};

#[cfg(test)]
mod tests;
