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
//! // A broken edit is rejected with every problem, named by the path given; the value stays.
//! std::fs::write(&path, "greeting: hello\nworkers: 0\n")?;
//! match live.events().recv_timeout(std::time::Duration::from_secs(10))? {
//!     hotconf::ReloadEvent::Rejected { diagnostics, .. } => assert_eq!(
//!         diagnostics.to_string(),
//!         format!("{}:2:10: workers: invalid value number `0`: expected a nonzero u32\n  help: use a whole number of 1 or more", path.display())
//!     ),
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(live.get().workers.get(), 4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The guide
//!
//! Add it with your own serde types; the default build is the reload core only (no CLI, HTTP or
//! gateway dependencies):
//!
//! ```toml
//! hotconf = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! Three runnable examples, each tested against temporary directories (`tests/it/examples.rs`):
//! `cargo run --example one_file` (edit `examples/config/app.yaml` while it runs), `--example
//! multi_file` (a directory with a cross-file rule) and `--example components` (an apply step each
//! version must pass).
//!
//! ## The live value
//!
//! [`Live::read`] reads one whole version without writing memory other threads read (no
//! reference count: reader threads never contend), for request paths; [`Live::get`] is an `Arc`
//! of one whole version to keep for longer. `Live` is cheap to clone (give each web handler one);
//! the last clone dropped stops polling and joins every thread it started within its bound.
//! [`Live::events`] is a [`channel::Receiver`] of [`ReloadEvent`]s: `Applied` (version and
//! semantic diff), `Rejected` (every diagnostic), `Failed` (a typed [`FailureCause`]; retried
//! while the content is pending), `Recovered`; each event's `Display` is its report for a person.
//! With feature `async`, `Live::subscribe` gives the same events to async code: awaiting them
//! never blocks a runtime's thread, and no runtime is compiled in. [`Live::status`],
//! [`Live::versions`] (the versions kept), [`Live::reload`] (apply the files now) and
//! [`Live::pin`] (make a kept version live again, until the files change) are there too.
//!
//! ## Every problem at once, where you can jump to it
//!
//! A rejected edit lists every deserialization error, each with file, YAML path and line:column,
//! the file named by the path you gave (`config/app.yaml:3:1: workrs: unknown key ``workrs`` /
//! `help: did you mean ``workers``?`). `Debug` of [`StartError`] is the same report, so `main`'s
//! `?` prints it, not a struct dump. Plain `#[derive(Deserialize)]` works: `Option`, defaults,
//! `NonZeroU32`, enums, maps. A key that no field of its struct takes is a problem without
//! `#[serde(deny_unknown_fields)]` (the deserializer knows every field a struct takes, aliases
//! included; [`Hotconf::with_unknown_keys_as_warnings`] to log them instead; a `#[serde(flatten)]`
//! struct takes any key). A `std::time::Duration` takes `250ms`, `5s`, `2m`, `1h30m` (units ns, us,
//! ms, s, m, h, d), with a located diagnostic for anything else. Duplicate keys, several
//! documents, deep nesting and alias bombs are refused before serde runs, in time linear in the
//! file.
//!
//! ## Seeing rejected edits
//!
//! A rejected or failed attempt is logged through `tracing` (target `hotconf`): one warning per
//! problem with its location and help, then `config rejected; previous config kept`. Any
//! subscriber shows them; with none installed, nothing is printed, so a service that has no
//! logging yet adds two lines:
//!
//! ```toml
//! tracing-subscriber = "0.3"
//! ```
//!
//! ```no_run
//! tracing_subscriber::fmt().with_writer(std::io::stderr).init();
//! ```
//!
//! ## Your own rules
//!
//! [`Hotconf::with_check`] runs on every config that deserialized: report any number of
//! [`Problem`]s, with your code, message and help, at a YAML path through [`Problems`]; hotconf adds
//! the file, line and column. [`Hotconf::with_partial_check`] runs also when some values failed,
//! so one edit's type errors and rule problems come together. A [`Problem`] says where its column
//! points ([`Problem::at_key`]) and whether its source line may be shown
//! ([`Problem::hiding_source_line`]), as data. Environment lookups go through the [`EnvLookup`]
//! given to [`Hotconf::with_env`] ([`MapEnv`] in tests).
//!
//! ## Layering: defaults, files, environment
//!
//! Defaults are serde's (`#[serde(default)]` on a field, or on the struct for its `Default`); the
//! files come over them; with [`Hotconf::with_env_prefix`]`("APP")`, variables `APP__KEY__KEY…`
//! come over the files (`APP__DB__URL` sets `db.url`; in a directory config the first key is the
//! file's stem). A value from the environment is read as a plain YAML scalar and checked exactly
//! as the file's own would be; a problem with it is reported at `$APP__DB__URL`, never with its
//! value. The environment is read once, at start: a running process's environment cannot change
//! under it, so every later edit of the files is applied with the same overrides (and the
//! snapshots hold the files only).
//!
//! ## Several files
//!
//! [`Hotconf::dir`] reads a directory as one mapping from file stem to document, so `T`'s fields
//! are the files: `deny_unknown_fields` refuses unknown files, `Option` makes a file optional, and
//! `x.yml` beside `x.yaml` is refused. For rules no serde type can hold, write a [`Schema`] and
//! start it with [`Hotconf::with_schema`] (the reference gateway, crate `hotconf-gateway`, is one).
//!
//! ## Components
//!
//! A service that needs an apply step (resize a pool, rebuild a client) adds a [`Component`] with
//! [`Hotconf::with_component`]: it builds its part of each version on its own thread and
//! acknowledges it; a version goes live only once every component did within
//! [`Hotconf::with_ack_timeout`] (default 2 s), otherwise nothing changes and the attempt is
//! retried. A component that panics is a failed attempt, not a dead service. The parts ride on the
//! live version ([`Publication::part`]), so a request that reads several reads them from one.
//!
//! ## Observers
//!
//! Every consequence of an attempt is an [`Observer`] fed one typed [`Report`], in one order: the
//! audit log (with a store), then yours ([`Hotconf::with_observer`]: metrics, alerts, hooks), then
//! the status, the log lines (`tracing`, target `hotconf`) and the events. The `hotconf` binary's
//! Prometheus metrics and Slack alerts are observers of exactly this kind.
//!
//! ## Options
//!
//! [`Hotconf::with_snapshots`] keeps numbered versions on disk (semantic diffs in the audit log,
//! `hotconf history`/`diff`/`restore` on them, pins that survive restarts; without it, the last 10
//! versions in memory), [`Hotconf::with_retention`], [`Hotconf::with_interval`] (250 ms),
//! [`Hotconf::with_stable_ticks`] (2), [`Hotconf::with_reload_timeout`] (5 s),
//! [`Hotconf::with_retry_backoff`] (1 s doubling to 30 s), [`Hotconf::with_max_file_bytes`]
//! (1 MiB), [`Hotconf::with_max_stuck_workers`] (4), [`Hotconf::with_shutdown_timeout`] (1 s).
//!
//! ## Cargo features
//!
//! - `schema`: `hotconf::schema` ([`schemars`](https://docs.rs/schemars) 1.x): a type's JSON
//!   Schema (draft 2020-12) for editors, its stable file text and the YAML modeline that names it.
//! - `store`: `hotconf::store`, the snapshot store's own API, for tools that list, diff and
//!   restore the versions a service keeps and for CI jobs that snapshot-test an audit record. A
//!   service needs no feature to keep a store ([`Hotconf::with_snapshots`]).
//! - `async`: `Live::subscribe`, the reload events for async code (a future woken by the
//!   reloader; no runtime is a dependency).
//! - `testing`: `hotconf::testing`, the poller's sans-IO core with an injected clock and an
//!   in-memory filesystem, for tests that drive polling by hand. No stability promise.
//!
//! ## Underneath
//!
//! The pipeline, one module a stage (see ARCHITECTURE.md for the data flow and its invariants):
//!
//! ```text
//! files ──▶ source (read, ignore rules, size cap)
//!       ──▶ watch (poll every 250 ms, fingerprint, emit a change set stable for two ticks)
//!       ──▶ validate (a `Schema` turns `Sources` into a typed, immutable config, or every `Diagnostic`)
//!       ──▶ snapshot (each validated bundle becomes a numbered, hash-verified version on disk;
//!                     semantic diff, audit log, pin and restore)
//!       ──▶ publish (a versioned, immutable `Publication`, applied to every component or none)
//!       ──▶ components (yours; the gateway's rate limiters, orchestrator and provider factory)
//! ```
//!
//! [`validate_with`] runs a [`Schema`] on any [`Sources`] (e.g. in a CI check of your own);
//! [`SerdeSchema`] is the schema [`Hotconf::file`] and [`Hotconf::dir`] build.
//!
//! The reference LLM gateway (crate `hotconf-gateway`) is one implementation of [`Schema`]; a
//! service with its own files implements the trait for them and reuses everything else.
#![deny(missing_docs)]

mod distance;
mod error_text;
mod heartbeat;
mod live;
mod park;
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
#[cfg(feature = "async")]
pub use reload::Subscription;
pub use reload::{
    AttemptOutcome, AttemptReport, ComponentStatus, Failure, FailureCause, LastAttempt, Observer, ReloadEvent,
    ReloadState, Report, StartError, Status, Trigger,
};
pub use source::env::{EnvLookup, MapEnv, ProcessEnv};
pub use source::read::FileKind;
pub use source::{FileBody, ReadError, SourceFile, Sources};
pub use validate::{validate_with, Schema, Validated};
pub use validate::{Diagnostic, DiagnosticKind, Diagnostics, Problem};
pub use validate::{Problems, SerdeSchema};
pub use validate::{Segment, Suggestions, YamlPath};
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
