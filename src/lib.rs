//! hotconf: hot-reload YAML configuration files into a running service: your own serde type,
//! validated as a whole (every problem at once, with file and line:column), versioned, and swapped
//! in without a restart.
//!
//! The entry point is [`Hotconf`]: one builder chain, and [`Live::get`] reads the live value.
//!
//! ```
//! use hotconf::Hotconf;
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct App {
//!     greeting: String,
//!     workers: std::num::NonZeroU32,
//! }
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("app.yaml");
//! # std::fs::write(&path, "greeting: hello\nworkers: 4\n")?;
//! let live = Hotconf::<App>::file(&path).start()?;
//! assert_eq!(live.get().greeting, "hello");
//!
//! // A broken edit is rejected with every problem; the running value stays.
//! std::fs::write(&path, "greeting: hello\nworkers: 0\n")?;
//! match live.events().recv_timeout(std::time::Duration::from_secs(10))? {
//!     hotconf::ReloadEvent::Rejected { diagnostics, .. } => assert_eq!(
//!         diagnostics.to_string(),
//!         "app.yaml:2:10: workers: invalid value number `0`: expected a nonzero u32\n  help: use a whole number of 1 or more"
//!     ),
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(live.get().workers.get(), 4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Rules serde cannot express go in [`Hotconf::with_check`] ([`Problems`], [`Problem`]); a
//! directory of files is [`Hotconf::dir`]; numbered snapshots on disk are
//! [`Hotconf::with_snapshots`]; components that must acknowledge each version are
//! [`Hotconf::with_component`]; metrics, alerts and hooks of your own are [`Hotconf::with_observer`].
//!
//! The pipeline underneath, one module a stage:
//!
//! ```text
//! files ──▶ source (read, ignore rules, size cap)
//!       ──▶ watch (poll every 250 ms, fingerprint, emit a change set stable for two ticks)
//!       ──▶ validate (a `Schema` turns `Sources` into a typed, immutable config, or every `Diagnostic`)
//!       ──▶ snapshot (each validated bundle becomes a numbered, hash-verified version on disk;
//!                     semantic diff, audit log, pin and restore)
//!       ──▶ publish (a versioned, immutable `Publication`, applied to every component or none)
//!       ──▶ components (the gateway's rate limiters, orchestrator and provider factory)
//! ```
//!
//! The reference LLM gateway (crate `hotconf-gateway`) is one implementation of [`Schema`]; a
//! service with its own files implements the trait for them and reuses everything else.
#![deny(missing_docs)]

mod error_text;
mod live;
mod publish;
mod reload;
#[cfg(feature = "schema")]
pub mod schema;
pub mod secret;
mod snapshot;
mod source;
mod validate;
mod watch;

/// The blake3 hash of a file or a bundle of files ([`Sources::bundle_hash`], [`Validated::hash`],
/// [`Publication::hash`]), re-exported so a user never names blake3: `to_hex()` gives its text.
pub use blake3::Hash as ContentHash;
/// The channel crate whose [`Receiver`](channel::Receiver) carries [`Live::events`],
/// re-exported so a user never pins its version by hand.
pub use crossbeam_channel as channel;
pub use error_text::error_chain;
pub use live::{Hotconf, Live};
pub use publish::{Component, Publication};
pub use reload::{
    AttemptOutcome, AttemptReport, ComponentStatus, Failure, FailureCause, LastAttempt, Observer, ReloadEvent,
    ReloadState, Report, StartError, Status, Trigger,
};
pub use source::env::{EnvLookup, MapEnv, ProcessEnv};
pub use source::read::FileKind;
pub use source::{FileBody, ReadError, SourceFile, Sources};
pub use validate::{did_you_mean, Segment, YamlPath};
pub use validate::{validate_with, Schema, Validated};
pub use validate::{Diagnostic, DiagnosticKind, Diagnostics, Problem};
pub use validate::{Problems, SerdeSchema};
pub use watch::PollErrorKind;

/// Internals for the benchmarks and for tests that drive polling by hand (feature `testing`): the
/// poller's sans-IO core ticked with an injected clock, the filesystems it reads, its thread
/// shell, and the YAML pre-scan. No stability promise, and nothing a service needs.
#[cfg(feature = "testing")]
pub mod testing {
    pub use crate::source::read::FileRead;
    /// The linear pre-scan that bounds a YAML text before the parser sees it.
    pub use crate::validate::prescan::prescan;
    pub use crate::watch::clock::{Clock, FakeClock};
    pub use crate::watch::poller::{PollCore, Poller, PollerConfig, PollerHandle, DEFAULT_INTERVAL};
    pub use crate::watch::scan::{FakeFs, FileSystem, RealFs};
    pub use crate::watch::WatchEvent;
}

pub use snapshot::{Corruption, Origin, SemanticDiff, StoreError};

/// The snapshot store on disk, for tools that work on the versions a service keeps (`hotconf
/// history`, `show`, `diff`, `restore`) and for CI jobs that snapshot-test a change's audit
/// record: numbered, hash-verified versions, their semantic diff, the audit log, and the atomic
/// write-back of a version into a config directory (feature `store`). A running service gets a
/// store with [`Hotconf::with_snapshots`] without it.
#[cfg(feature = "store")]
pub mod store {
    pub use crate::snapshot::{restore_into, semantic_diff};
    pub use crate::snapshot::{AuditDiagnostic, AuditEvent, Change, ChangeKind, DiffValue};
    pub use crate::snapshot::{AuditLog, AuditRecord, RestoreIntent, Restored, StoredVersion};
    pub use crate::snapshot::{Commit, Entry, FileEntry, Manifest, SnapshotStore, StoreConfig};
}
