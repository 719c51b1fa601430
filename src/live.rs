//! The one-call entry point: [`Hotconf`] builds the whole pipeline (poller, reloader, validator
//! workers, optional snapshot store, optional components) for a user's own serde type and returns
//! [`Live`], the handle that reads the live value and owns every thread.
//!
//! This is the one place the pipeline is assembled: a library user's program and `hotconf run`
//! both build it here. It wires the stages and adds none: a [`Schema`] (by default a
//! [`SerdeSchema`]), a `History` (a snapshot store or memory only), the reloader with its
//! observers, the poller, and one sink that has every component acknowledge a version, then
//! swaps it in.

use std::any::Any;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use crossbeam_channel::{bounded, Receiver};
use serde::de::DeserializeOwned;

use crate::publish::{ApplyError, Component, ComponentHandle, Part, Publication, Sink};
use crate::reload::{
    AttemptOutcome, Failure, FailureCause, History, Observer, ReloadEvent, ReloaderConfig, ReloaderHandle,
    RetryBackoff, StartError, Status, Subscribers,
};
use crate::snapshot::{SnapshotStore, StoreConfig};
use crate::source::env::{EnvLookup, ProcessEnv};
use crate::source::SourcesLimits;
use crate::validate::{Problems, Schema, SerdeSchema};
use crate::watch::{Poller, PollerConfig, PollerHandle};

/// How many versions a memory-only [`Live`] keeps for [`Live::pin`].
pub const MEMORY_RETENTION: usize = 10;

/// The time components have to acknowledge a version, unless [`Hotconf::with_ack_timeout`] says otherwise.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// Events a [`Live`] buffers for a receiver that lags; past this, newer events are dropped.
pub const EVENT_CAPACITY: usize = 256;

/// Poller messages the reloader may lag behind by before the poller waits for it.
const WATCH_CAPACITY: usize = 64;

/// Builds a hot-reloaded config of type `T`: a one-file or a directory config read with serde
/// ([`Hotconf::file`], [`Hotconf::dir`]), or files judged by a [`Schema`] of your own
/// ([`Hotconf::with_schema`]), with defaults for everything (poll every 250 ms, two identical
/// ticks, 5 s reload timeout, 1 MiB per file, memory-only history, the process environment).
///
/// ```no_run
/// #[derive(Debug, serde::Deserialize)]
/// struct App { greeting: String, workers: std::num::NonZeroU32 }
///
/// let live = hotconf::Hotconf::<App>::file("config/app.yaml").start()?;
/// println!("{} with {} workers", live.get().greeting, live.get().workers);
/// # Ok::<(), hotconf::StartError>(())
/// ```
#[must_use = "a builder does nothing until `start`"]
pub struct Hotconf<T, S = SerdeSchema<T>> {
    dir: PathBuf,
    schema: S,
    /// Gives the schema the builder's settings at `start` (a serde schema takes the per-file cap
    /// and the environment overrides; a user's schema has its own).
    configure: fn(S, &Settings<'_>) -> S,
    /// The prefix of environment overrides ([`Hotconf::with_env_prefix`]).
    env_prefix: Option<String>,
    snapshots: Option<PathBuf>,
    retention: Option<usize>,
    poller: PollerConfig,
    reloader: ReloaderConfig,
    limits: SourcesLimits,
    env: Arc<dyn EnvLookup>,
    members: Vec<Spawn<T>>,
    observers: Vec<Box<dyn Observer>>,
    ack_timeout: Duration,
}

type Spawn<T> = Box<dyn FnOnce() -> std::io::Result<Box<dyn Member<T>>> + Send>;

/// What the builder hands its schema at `start`.
struct Settings<'a> {
    limits: SourcesLimits,
    env_prefix: Option<&'a str>,
    env: &'a dyn EnvLookup,
}

/// The serde schema's share of the settings: the per-file cap, and the environment overrides,
/// read here, once.
fn configure_serde<T>(schema: SerdeSchema<T>, settings: &Settings<'_>) -> SerdeSchema<T> {
    let schema = schema.with_max_file_bytes(settings.limits.max_file_bytes);
    match settings.env_prefix {
        Some(prefix) => schema.with_env_overrides(prefix, settings.env),
        None => schema,
    }
}

impl<T, S: fmt::Debug> fmt::Debug for Hotconf<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hotconf")
            .field("dir", &self.dir)
            .field("schema", &self.schema)
            .field("snapshots", &self.snapshots)
            .field("components", &self.members.len())
            .field("observers", &self.observers.len())
            .finish_non_exhaustive()
    }
}

impl<T> Hotconf<T>
where
    T: DeserializeOwned + Send + Sync + 'static,
{
    /// The config is the one YAML file at `path`; its directory is polled, and other files in it
    /// are neither read into the config nor stored. Diagnostics name the file by `path` as given.
    pub fn file(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf);
        let dir = parent.clone().unwrap_or_else(|| PathBuf::from("."));
        let mut builder = Self::assemble(dir, SerdeSchema::file(name), configure_serde);
        builder.reloader = builder.reloader.with_shown_paths(parent, true);
        builder
    }

    /// The config is every YAML file in `dir`, read as one mapping from file stem to document:
    /// `T`'s fields are the files (`deny_unknown_fields` refuses other files, `Option` makes a
    /// file optional).
    ///
    /// ```no_run
    /// use std::collections::BTreeMap;
    ///
    /// /// `config/providers.yaml`, `config/routes.yaml` and, if present, `config/limits.yaml`.
    /// #[derive(Debug, serde::Deserialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct Config {
    ///     providers: BTreeMap<String, String>,
    ///     routes: BTreeMap<String, Vec<String>>,
    ///     limits: Option<BTreeMap<String, u32>>,
    /// }
    ///
    /// let live = hotconf::Hotconf::<Config>::dir("config").start()?;
    /// println!("{} routes", live.get().routes.len());
    /// # Ok::<(), hotconf::StartError>(())
    /// ```
    pub fn dir(dir: impl Into<PathBuf>) -> Self {
        Self::assemble(dir.into(), SerdeSchema::dir(), configure_serde)
    }

    /// The user's own rules, run on every config that deserialized cleanly: each problem is
    /// reported at a YAML path with the user's code, message and help.
    ///
    /// ```no_run
    /// use hotconf::{Hotconf, Problem};
    /// #[derive(Debug, serde::Deserialize)]
    /// struct App { workers: u32, max_workers: u32 }
    ///
    /// let live = Hotconf::<App>::file("app.yaml")
    ///     .with_check(|app, cx| {
    ///         if app.workers > app.max_workers {
    ///             cx.report("workers", Problem::new("too-many-workers", "more workers than `max_workers`"));
    ///         }
    ///     })
    ///     .start()?;
    /// # Ok::<(), hotconf::StartError>(())
    /// ```
    pub fn with_check(mut self, check: impl Fn(&T, &mut Problems<'_>) + Send + Sync + 'static) -> Self {
        self.schema = self.schema.with_check(check);
        self
    }

    /// The user's own rules, run also when some values failed to deserialize (on the config
    /// with stand-ins for them), so one edit's type errors and rule problems come together. The
    /// rule asks [`Problems::is_clean`] before judging a value that stands in; what it reports
    /// at such a path is dropped. See [`SerdeSchema::with_partial_check`].
    ///
    /// ```
    /// # #[derive(serde::Deserialize)]
    /// # struct App { workers: u32, max_workers: u32, name: String }
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("app.yaml");
    /// std::fs::write(&path, "workers: 9\nmax_workers: 4\nname: [x]\n")?;
    /// let error = hotconf::Hotconf::<App>::file(&path)
    ///     .with_partial_check(|app, cx| {
    ///         if app.workers > app.max_workers {
    ///             cx.report("workers", hotconf::Problem::new("too-many-workers", "more workers than `max_workers`"));
    ///         }
    ///     })
    ///     .start()
    ///     .unwrap_err();
    /// let report = error.to_string();
    /// assert!(report.contains("name: expected a string") && report.contains("more workers than"), "{report}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_partial_check(mut self, check: impl Fn(&T, &mut Problems<'_>) + Send + Sync + 'static) -> Self {
        self.schema = self.schema.with_partial_check(check);
        self
    }

    /// Unknown keys as warnings (logged through `tracing`, event `config.warning`, with "did you
    /// mean") rather than problems. By default a key that no field of its struct takes is a
    /// problem, with or without `#[serde(deny_unknown_fields)]`.
    pub fn with_unknown_keys_as_warnings(mut self) -> Self {
        self.schema = self.schema.with_unknown_keys_as_warnings();
        self
    }

    /// Layering: defaults (serde's `#[serde(default)]`, or the type's `Default` with
    /// `#[serde(default)]` on the struct), then the file(s), then environment variables named
    /// `{prefix}__KEY__KEY…` (`APP__DB__URL` sets `db.url`; in a directory config the first key is
    /// the file's stem). A value from the environment is read as a plain YAML scalar and
    /// validated as the file's own would be; a bad one is reported by the variable's name, never
    /// with its value. The environment is read once, at [`start`](Hotconf::start): a running
    /// process's environment cannot change under it, so an edit of the files is applied with the
    /// same overrides.
    ///
    /// ```
    /// # #[derive(serde::Deserialize)]
    /// # struct App { port: u16 }
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("app.yaml");
    /// # std::fs::write(&path, "port: 80\n")?;
    /// let env = hotconf::MapEnv::new().with("APP__PORT", "8080"); // the process environment by default
    /// let live = hotconf::Hotconf::<App>::file(&path).with_env(env).with_env_prefix("APP").start()?;
    /// assert_eq!(live.get().port, 8080);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = Some(prefix.into());
        self
    }
}

impl<S: Schema> Hotconf<S::Config, S> {
    /// The config is the files in `dir` that `schema` selects, judged by it: for files whose
    /// rules a serde type alone cannot state (the reference gateway's schema is one).
    pub fn with_schema(dir: impl Into<PathBuf>, schema: S) -> Self {
        Self::assemble(dir.into(), schema, |schema, _| schema)
    }
}

impl<T, S> Hotconf<T, S>
where
    T: Send + Sync + 'static,
    S: Schema<Config = T>,
{
    fn assemble(dir: PathBuf, schema: S, configure: fn(S, &Settings<'_>) -> S) -> Self {
        Self {
            poller: PollerConfig::new(dir.clone()),
            reloader: ReloaderConfig::new(dir.clone()),
            dir,
            schema,
            configure,
            env_prefix: None,
            snapshots: None,
            retention: None,
            limits: SourcesLimits::default(),
            env: Arc::new(ProcessEnv),
            members: Vec::new(),
            observers: Vec::new(),
            ack_timeout: DEFAULT_ACK_TIMEOUT,
        }
    }

    /// Keeps every applied version as a numbered snapshot in `dir` (semantic diffs in the audit
    /// log, `hotconf history`/`restore` on it, pins that survive restarts). Without it, versions
    /// live in memory only (the last 10, for [`Live::pin`]).
    pub fn with_snapshots(mut self, dir: impl Into<PathBuf>) -> Self {
        self.snapshots = Some(dir.into());
        self
    }

    /// How many versions are kept (at least 1; default 50 in a snapshot store, 10 in memory),
    /// plus the running one.
    pub fn with_retention(mut self, versions: usize) -> Self {
        self.retention = Some(versions.max(1));
        self
    }

    /// How often the directory is polled (default 250 ms).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.poller = self.poller.with_interval(interval);
        self
    }

    /// How many identical consecutive polls make a change stable (default 2, at most 20; more
    /// for writers that pause mid-write).
    pub fn with_stable_ticks(mut self, ticks: u32) -> Self {
        self.poller = self.poller.with_stable_ticks(ticks);
        self
    }

    /// The bound on reading plus validating one attempt (default 5 s).
    pub fn with_reload_timeout(mut self, timeout: Duration) -> Self {
        self.reloader = self.reloader.with_reload_timeout(timeout);
        self
    }

    /// The waits before retrying an attempt that failed for a transient reason (a timeout, the
    /// store, a component, an unreadable directory): `initial`, doubled after each failure, at
    /// most `max` (default 1 s and 30 s). Retries go on while that content is pending.
    pub fn with_retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reloader = self.reloader.with_retry_backoff(RetryBackoff { initial, max });
        self
    }

    /// How many validator workers stuck in abandoned attempts (a read hung in the kernel) may be
    /// alive at once (default 4, at least 1); past that, attempts fail as transient until one ends.
    pub fn with_max_stuck_workers(mut self, max: usize) -> Self {
        self.reloader = self.reloader.with_max_stuck_workers(max);
        self
    }

    /// How long dropping the [`Live`] waits for the reloader (it may be mid-attempt, in a store
    /// write hung in the kernel) before leaving it to end by itself (default 1 s).
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.reloader = self.reloader.with_shutdown_timeout(timeout);
        self
    }

    /// How a manual reload reads the directory: `attempts` reads at most (default 3), the first
    /// retry after `backoff` (default 100 ms), doubling.
    pub fn with_read_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.reloader = self.reloader.with_read_attempts(attempts).with_read_backoff(backoff);
        self
    }

    /// The per-file size cap (default 1 MiB): a larger file is refused unread.
    pub fn with_max_file_bytes(mut self, max: u64) -> Self {
        self.limits = SourcesLimits { max_file_bytes: max };
        self
    }

    /// Where rules look up environment variables (default: the process environment; a
    /// [`MapEnv`](crate::MapEnv) in tests).
    pub fn with_env(mut self, env: impl EnvLookup + 'static) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// Adds a component: it runs on its own thread and must acknowledge each version (build its
    /// part) before the version goes live; if any does not within the ack timeout, nothing
    /// changes and the attempt is retried. See [`Component`] for an example.
    pub fn with_component<K>(mut self, component: K) -> Self
    where
        K: Component<T>,
    {
        self.members.push(Box::new(move || {
            let handle = ComponentHandle::spawn(component)?;
            Ok(Box::new(handle) as Box<dyn Member<T>>)
        }));
        self
    }

    /// Adds an observer: it is fed a [`Report`](crate::Report) of every attempt (and of faults
    /// polling), after the audit log and before the status, the log lines and the events, in the
    /// order observers were added. See [`Observer`] for an example.
    pub fn with_observer(mut self, observer: impl Observer) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// When the config directory is invalid at start, runs the newest stored version that still
    /// validates instead of failing with [`StartError::Invalid`]: the service runs *degraded*
    /// ([`Status::degraded`], [`ReloadState::degraded`](crate::ReloadState::degraded), the log
    /// event `start.degraded`) until the directory is fixed, which is applied as any change is.
    /// With no such version (an empty store, or none validates) the start still fails. Without
    /// it (the default), an invalid directory is always refused.
    pub fn with_start_on_last_good(mut self) -> Self {
        self.reloader = self.reloader.with_start_on_last_good();
        self
    }

    /// The time components have to acknowledge a version (default 2 s).
    pub fn with_ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Reads and validates the config, applies it as version 1 (or the store's next version),
    /// and starts polling. Fails if the initial config is invalid (every problem listed), the
    /// directory cannot be read, the store cannot be opened or a thread cannot start.
    pub fn start(self) -> Result<Live<T>, StartError> {
        let history: History = match &self.snapshots {
            Some(dir) => {
                let config = StoreConfig::default();
                let config = match self.retention {
                    Some(n) => config.with_retention(n),
                    None => config,
                };
                SnapshotStore::open(dir, config)?.into()
            }
            None => History::memory(self.retention.unwrap_or(MEMORY_RETENTION)),
        };
        let mut members = Vec::with_capacity(self.members.len());
        for spawn in self.members {
            members.push(spawn().map_err(StartError::Spawn)?);
        }
        let current = Arc::new(ArcSwapOption::empty());
        let sink = LiveSink { current: Arc::clone(&current), members, ack_timeout: self.ack_timeout };
        let (event_tx, events) = bounded(EVENT_CAPACITY);
        let reload_timeout = self.reloader.reload_timeout();
        let subscribers = self.reloader.subscribers();
        // How long `reload` waits for an answer: the longest one attempt may hold the reloader.
        let wait = reload_timeout * 2 + self.ack_timeout + Duration::from_secs(1);
        let (watch_tx, watch_rx) = bounded(WATCH_CAPACITY);
        let settings = Settings { limits: self.limits, env_prefix: self.env_prefix.as_deref(), env: &*self.env };
        let schema = (self.configure)(self.schema, &settings);
        let (reloader, baseline) = ReloaderHandle::start(
            schema,
            sink,
            history,
            self.env,
            self.reloader.with_limits(self.limits).with_events(event_tx).with_attempt_bound(wait),
            self.observers,
            watch_rx,
        )?;
        let poller =
            self.poller.with_limits(self.limits).with_baseline(baseline).with_listener(reloader.doorbell().clone());
        let poller = Poller::spawn(poller, watch_tx)?;
        Ok(Live {
            current,
            threads: Arc::new(Threads {
                poller: Some(poller),
                reloader: Some(reloader),
                events,
                subscribers,
                wait,
                dir: self.dir,
            }),
        })
    }
}

/// A live, hot-reloaded config: [`Live::get`] is the current version's value. Cloning it is
/// cheap (two reference counts) and every clone reads the same config: give one to each web
/// handler. Dropping the last clone stops polling and joins every thread (the reloader within its
/// bound: see [`Hotconf::with_shutdown_timeout`]).
///
/// ```
/// # #[derive(serde::Deserialize)]
/// # struct App { workers: u32 }
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("app.yaml");
/// # std::fs::write(&path, "workers: 1\n")?;
/// use hotconf::{AttemptOutcome, Hotconf};
///
/// // (Polled hourly here, so that only `reload` and `pin` change the version.)
/// let live = Hotconf::<App>::file(&path).with_interval(std::time::Duration::from_secs(3600)).start()?;
/// let app = live.get(); // one whole version, kept for as long as this request needs it
/// assert_eq!((live.version(), app.workers), (1, 1));
///
/// // Apply an edit now rather than at the next poll, then go back to version 1.
/// std::fs::write(&path, "workers: 2\n")?;
/// assert!(matches!(live.reload(), AttemptOutcome::Applied { version: 2, .. }));
/// assert!(matches!(live.pin(1), AttemptOutcome::Applied { version: 3, .. }));
/// assert_eq!(live.read().workers, 1);
/// assert_eq!(app.workers, 1);
/// assert_eq!(live.versions()?, [1, 2, 3]);
/// drop(live); // the last clone: stops polling, joins every thread
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Live<T> {
    current: Arc<ArcSwapOption<Publication<T>>>,
    threads: Arc<Threads>,
}

/// What every clone of a [`Live`] shares; dropped with the last one.
struct Threads {
    // Dropped first: no change set is sent to a reloader that is going away.
    poller: Option<PollerHandle>,
    reloader: Option<ReloaderHandle>,
    events: Receiver<ReloadEvent>,
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    subscribers: Arc<Subscribers>,
    wait: Duration,
    dir: PathBuf,
}

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self { current: Arc::clone(&self.current), threads: Arc::clone(&self.threads) }
    }
}

impl<T> fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live").field("dir", &self.threads.dir).field("version", &self.version()).finish_non_exhaustive()
    }
}

/// The live value, read without writing memory another thread reads ([`Live::read`]): an
/// arc-swap guard of the publication, which derefs to the config.
struct ReadGuard<T> {
    guard: arc_swap::Guard<Option<Arc<Publication<T>>>>,
}

impl<T> std::ops::Deref for ReadGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.guard.as_deref().expect("the initial version is applied before `start` returns").config()
    }
}

impl<T> Live<T> {
    /// The live value: one atomic load and a reference count, never blocking, always one whole
    /// version (keep the `Arc` for the length of a request to read one version throughout).
    pub fn get(&self) -> Arc<T> {
        // A guard, not a clone, of the publication: one reference count, on the value.
        let current = self.current.load();
        Arc::clone(current.as_ref().expect("the initial version is applied before `start` returns").config())
    }

    /// The live value for a short read (a request handler's few fields) that writes nothing
    /// other threads read: no reference count is touched, so reader threads never contend on
    /// one cache line (see `cargo bench --bench library` for both reads at 1, 2 and 8 threads).
    /// Never blocks; one whole version throughout. A thread holding many such reads at once
    /// makes the next ones slower, and a read held keeps its version alive: to keep a version
    /// for a long time, use [`Live::get`].
    pub fn read(&self) -> impl std::ops::Deref<Target = T> {
        ReadGuard { guard: self.current.load() }
    }

    /// The live version with its number and content hash.
    pub fn publication(&self) -> Arc<Publication<T>> {
        // Set before `start` returns, and only ever replaced.
        self.current.load_full().expect("the initial version is applied before `start` returns")
    }

    /// The live version's number.
    pub fn version(&self) -> u64 {
        self.current.load().as_ref().map_or(0, |p| p.version())
    }

    /// The versions kept for [`Live::pin`], oldest first: in the snapshot store
    /// ([`Hotconf::with_snapshots`]) or in memory, as many as [`Hotconf::with_retention`] says.
    pub fn versions(&self) -> Result<Vec<u64>, crate::snapshot::StoreError> {
        self.reloader().versions()
    }

    /// Events after each attempt that applies, rejects, fails or recovers (a receiver to keep;
    /// clones share one queue). Each event's `Display` is its report for a person.
    pub fn events(&self) -> Receiver<ReloadEvent> {
        self.threads.events.clone()
    }

    /// The same events for async code (feature `async`): a [`Subscription`](crate::Subscription)
    /// whose `next().await` never blocks the runtime's thread, with no runtime compiled in.
    #[cfg(feature = "async")]
    pub fn subscribe(&self) -> crate::reload::Subscription {
        crate::reload::Subscription::new(&self.threads.subscribers)
    }

    /// The reloader's status as of its last attempt, with what is true now: the polling faults
    /// present, when a scan last read everything, and the threads that stopped making progress
    /// (a heartbeat older than its allowance: three poll intervals, or backoff delays while
    /// faulted, and at least 2 s for the poller; one attempt's bound for the reloader).
    pub fn status(&self) -> Arc<Status> {
        let mut status = Status::clone(&self.reloader().status());
        let now = Instant::now();
        let mut beats = vec![("reloader", self.reloader().heartbeat())];
        if let Some(poller) = &self.threads.poller {
            let health = poller.health();
            status.last_successful_scan = health.last_clean_scan().map(crate::reload::unix_seconds);
            beats.insert(0, ("poller", &health.heartbeat));
        }
        for (name, beat) in beats {
            status.heartbeat_age_seconds.insert(name, beat.age(now).as_secs_f64());
            if beat.stalled(now) {
                status.stalled.push(name);
            }
        }
        Arc::new(status)
    }

    /// Re-reads the files now and applies them if they are valid and new; waits for the outcome.
    pub fn reload(&self) -> AttemptOutcome {
        self.reloader().reload(self.threads.wait).unwrap_or_else(|| self.no_answer())
    }

    /// Makes the kept version `version` live (until the files change again); waits for the outcome.
    pub fn pin(&self, version: u64) -> AttemptOutcome {
        self.reloader().pin(version, self.threads.wait).unwrap_or_else(|| self.no_answer())
    }

    /// Asks for a reload as [`Live::reload`] does, without waiting for it (for a signal handler's
    /// loop, which must stay free). `false` if the reloader's queue is full or it has stopped.
    pub fn request_reload(&self) -> bool {
        self.reloader().request_reload()
    }

    /// The config directory polled.
    pub fn dir(&self) -> &Path {
        &self.threads.dir
    }

    fn reloader(&self) -> &ReloaderHandle {
        self.threads.reloader.as_ref().expect("present until drop")
    }

    fn no_answer(&self) -> AttemptOutcome {
        let error = format!("the reloader did not answer within {:?}", self.threads.wait);
        AttemptOutcome::Failed { failure: Failure::new(FailureCause::NoAnswer, error) }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.poller.take();
        self.reloader.take();
    }
}

/// A component on its thread, whatever its part type.
trait Member<T>: Send {
    fn name(&self) -> &'static str;
    /// Sends the publication; the returned wait gives the part built (until a deadline).
    fn send(&self, publication: Arc<Publication<T>>) -> Result<AckWait, ApplyError>;
    fn mark_applied(&self, version: u64);
    fn applied(&self) -> Option<u64>;
}

type AckWait = Box<dyn FnOnce(Instant, Duration) -> Result<Part, ApplyError> + Send>;

impl<T: Send + Sync + 'static, P: Send + Sync + 'static> Member<T> for ComponentHandle<T, P> {
    fn name(&self) -> &'static str {
        ComponentHandle::name(self)
    }

    fn send(&self, publication: Arc<Publication<T>>) -> Result<AckWait, ApplyError> {
        let pending = self.request(publication)?;
        let component = self.name();
        Ok(Box::new(move |deadline, budget| {
            let part = pending.wait(deadline, budget)?;
            Ok((component, Arc::new(part) as Arc<dyn Any + Send + Sync>))
        }))
    }

    fn mark_applied(&self, version: u64) {
        ComponentHandle::mark_applied(self, version);
    }

    fn applied(&self) -> Option<u64> {
        ComponentHandle::applied(self)
    }
}

/// The one sink: every component acknowledges with its part, then the publication, holding the
/// parts, is swapped in. `hotconf run` and a library user's program both apply through it.
struct LiveSink<T> {
    current: Arc<ArcSwapOption<Publication<T>>>,
    members: Vec<Box<dyn Member<T>>>,
    ack_timeout: Duration,
}

impl<T: Send + Sync + 'static> Sink<T> for LiveSink<T> {
    fn apply(&mut self, publication: Arc<Publication<T>>) -> Result<(), ApplyError> {
        let version = publication.version();
        let deadline = Instant::now() + self.ack_timeout;
        // Send to all first so they build in parallel, then collect every acknowledgement.
        let waits = self.members.iter().map(|m| m.send(Arc::clone(&publication))).collect::<Result<Vec<_>, _>>()?;
        let acks: Vec<Result<Part, ApplyError>> = waits.into_iter().map(|w| w(deadline, self.ack_timeout)).collect();
        let parts = acks.into_iter().collect::<Result<Vec<Part>, _>>()?;
        // Every component built its part: the parts join the publication (once, before anyone
        // but the components saw it), and the whole goes live in one store.
        publication.set_parts(parts);
        self.current.store(Some(publication));
        for m in &self.members {
            m.mark_applied(version);
        }
        Ok(())
    }

    fn applied_versions(&self) -> Vec<(&'static str, Option<u64>)> {
        self.members.iter().map(|m| (m.name(), m.applied())).collect()
    }
}
