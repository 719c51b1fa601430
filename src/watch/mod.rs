//! Change detection: polls the config files of one directory every tick, fingerprints them, and
//! emits a [`StableChangeSet`] once a change has held still for two ticks. Owns all polling of the
//! config directory; it never parses, validates or stores what it reads.
//!
//! The stages, each a plain module driven by hand in tests:
//!
//! ```text
//! scan (FileSystem) ─▶ Observation ─▶ Debouncer (classify) ─▶ StableChangeSet
//!        └─ PollCore: faults reported once, backoff ─┘         └─ Poller thread ─▶ WatchEvent
//! ```

pub(crate) mod classify;
pub(crate) mod clock;
pub(crate) mod debounce;
mod event;
mod fault;
pub(crate) mod fingerprint;
pub(crate) mod poller;
pub(crate) mod scan;

pub use event::{PollErrorKind, WatchError, WatchEvent};
pub(crate) use poller::{Poller, PollerConfig, PollerHandle};

#[cfg(test)]
mod tests;
