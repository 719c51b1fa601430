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

pub mod classify;
pub mod clock;
pub mod debounce;
pub mod event;
pub mod fingerprint;
pub mod poller;
pub mod scan;

pub use classify::{classify, classify_set, FileChange, FileChangeKind};
pub use clock::{Clock, FakeClock, SystemClock};
pub use debounce::{Debouncer, StableChangeSet, DEFAULT_STABLE_TICKS, MAX_STABLE_TICKS};
pub use event::{PollErrorKind, WatchError, WatchEvent};
pub use fingerprint::{FileObservation, Fingerprint, Observation};
pub use poller::{Backoff, PollCore, Poller, PollerConfig, PollerHandle, DEFAULT_INTERVAL, DEFAULT_READ_TIMEOUT};
pub use scan::{scan, FakeFs, FileRead, FileSystem, RealFs, ScanError};
