//! The reloader thread: one attempt at a time, from a change set, a manual trigger or a pin.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::{after, bounded, never, select, Receiver, RecvTimeoutError, Sender};

use super::event::ReloadEvent;
use super::history::History;
use super::metrics;
use super::status::{AttemptOutcome, ComponentStatus, LastAttempt, Status, Trigger};
use super::validator::{ReadPlan, Validator};

use crate::alert::{Alert, AlerterHandle};
use crate::error_chain;
use crate::publish::{panic_message, ApplyError, Publication, Sink};
use crate::snapshot::{semantic_diff, AuditEvent, Origin, Pin, StoreError};
use crate::source::env::EnvLookup;
use crate::source::{ReadError, Sources, SourcesLimits};
use crate::validate::{Diagnostics, Schema, Validated};
use crate::watch::WatchEvent;
use metrics::{Metrics, ReloadResult};

/// How the reloader behaves.
#[derive(Debug, Clone)]
pub struct ReloaderConfig {
    dir: PathBuf,
    limits: SourcesLimits,
    reload_timeout: Duration,
    read_attempts: u32,
    read_backoff: Duration,
    retry: RetryBackoff,
    max_stuck_workers: usize,
    shutdown_timeout: Duration,
    events: Option<Sender<ReloadEvent>>,
}

/// The wait before each retry of an attempt that failed for a transient reason: `initial`, doubled
/// after each failure, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    /// The wait after the first failure.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl RetryBackoff {
    /// 1 s, doubling, at most 30 s: 1, 2, 4, 8, 16, 30, 30, … s.
    pub const DEFAULT: RetryBackoff = RetryBackoff { initial: Duration::from_secs(1), max: Duration::from_secs(30) };

    /// The wait after `failures` consecutive failed attempts (at least 1).
    ///
    /// ```
    /// use std::time::Duration;
    /// use hotconf::reload::RetryBackoff;
    /// let secs: Vec<u64> = (1..=8).map(|n| RetryBackoff::DEFAULT.delay(n).as_secs()).collect();
    /// assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    /// ```
    pub fn delay(self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

impl Default for RetryBackoff {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl ReloaderConfig {
    /// Defaults for config directory `dir`: 5 s reload timeout, 3 read attempts 100 ms apart
    /// (doubling), retries after 1 s doubling to at most 30 s, at most 4 stuck validator workers,
    /// and a 1 s bound on `Drop`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            limits: SourcesLimits::default(),
            reload_timeout: Duration::from_secs(5),
            read_attempts: 3,
            read_backoff: Duration::from_millis(100),
            retry: RetryBackoff::DEFAULT,
            max_stuck_workers: 4,
            shutdown_timeout: Duration::from_secs(1),
            events: None,
        }
    }

    /// Sends a [`ReloadEvent`] on `events` after each attempt that applies, rejects, fails or
    /// recovers. Never blocks: an event that does not fit in the channel is dropped.
    #[must_use]
    pub fn with_events(mut self, events: Sender<ReloadEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// The waits between retries of an attempt that failed for a transient reason (a timeout, the
    /// store, a component, an unreadable directory). Retries go on while that content is pending.
    #[must_use]
    pub fn with_retry_backoff(mut self, backoff: RetryBackoff) -> Self {
        self.retry = backoff;
        self
    }

    /// How many validator workers stuck in abandoned attempts may be alive at once (at least 1);
    /// past that, attempts fail as transient until one finishes.
    #[must_use]
    pub fn with_max_stuck_workers(mut self, max: usize) -> Self {
        self.max_stuck_workers = max.max(1);
        self
    }

    /// How long dropping the [`ReloaderHandle`] waits for the reloader thread to end (it may be
    /// mid-attempt) before leaving it to end by itself.
    #[must_use]
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The bound on reading plus validating one attempt.
    #[must_use]
    pub fn with_reload_timeout(mut self, timeout: Duration) -> Self {
        self.reload_timeout = timeout;
        self
    }

    /// How many times a manual reload reads the config directory before giving up (at least once).
    #[must_use]
    pub fn with_read_attempts(mut self, attempts: u32) -> Self {
        self.read_attempts = attempts;
        self
    }

    /// The wait before a manual reload's second read of the directory; doubled for each further one.
    #[must_use]
    pub fn with_read_backoff(mut self, backoff: Duration) -> Self {
        self.read_backoff = backoff;
        self
    }

    /// The per-file size cap.
    #[must_use]
    pub fn with_limits(mut self, limits: SourcesLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The config directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The bound on reading plus validating one attempt.
    pub fn reload_timeout(&self) -> Duration {
        self.reload_timeout
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The config directory could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The initial config is invalid.
    #[error("the initial config is invalid:\n{0}")]
    Invalid(Diagnostics),
    /// The snapshot store failed.
    #[error("snapshot store")]
    Store(#[from] StoreError),
    /// A component did not take the initial config.
    #[error("applying the initial config")]
    Apply(#[from] ApplyError),
    /// A thread could not be started.
    #[error("starting a thread")]
    Spawn(#[source] std::io::Error),
    /// The poller could not start.
    #[error("starting the poller")]
    Watch(#[from] crate::watch::WatchError),
}

/// The services a reloader reports to.
#[derive(Debug, Default)]
pub struct Reporting {
    /// Counters and gauges.
    pub metrics: Arc<Metrics>,
    /// Chat alerts, when configured.
    pub alerts: Option<AlerterHandle>,
}

enum Command {
    Reload(Sender<AttemptOutcome>),
    Pin(u64, Sender<AttemptOutcome>),
}

/// Owns the reloader thread. Dropping it disconnects the inbox and joins the thread, waiting at
/// most the shutdown timeout ([`ReloaderConfig::with_shutdown_timeout`]): a thread still
/// mid-attempt past it (a store write hung in the kernel) is left to end by itself.
#[derive(Debug)]
pub struct ReloaderHandle {
    inbox: Option<Sender<Command>>,
    status: Arc<ArcSwap<Status>>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the thread ends.
    exited: Receiver<()>,
    shutdown_timeout: Duration,
}

impl ReloaderHandle {
    /// Validates, stores and applies the config in `config.dir()` as the starting version, then
    /// starts the thread `hotconf-reloader`, which applies each change set from `watch`.
    ///
    /// Returns the startup sources too, so the poller can take them as its baseline.
    pub fn start<S, K>(
        schema: S,
        mut sink: K,
        store: impl Into<History>,
        env: Arc<dyn EnvLookup>,
        config: ReloaderConfig,
        reporting: Reporting,
        watch: Receiver<WatchEvent>,
    ) -> Result<(Self, Sources), StartError>
    where
        S: Schema,
        K: Sink<S::Config>,
    {
        let started = Instant::now();
        let store: History = store.into();
        let sources = Sources::read_dir(&config.dir, config.limits)?;
        // What the directory holds is the poller's baseline, even when a pin runs something else.
        let dir_sources = sources.clone();
        let dir_hash = sources.bundle_hash();
        let (valid, version, pinned) = match resume_pin(&schema, &store, &*env, dir_hash) {
            Some((valid, pin)) => (valid, pin.version, Some(pin.of)),
            None => {
                let valid = crate::validate::validate_with(&schema, sources, &*env).map_err(StartError::Invalid)?;
                let version = store.commit(valid.sources(), Origin::Startup)?.0;
                (valid, version, None)
            }
        };
        let (config_value, sources) = valid.into_parts();
        let hash = sources.bundle_hash();
        sink.apply(Arc::new(Publication::new(version, hash, Arc::new(config_value))))?;
        store.set_running(version)?;
        let files: Vec<String> = sources.names().map(str::to_owned).collect();
        reporting.metrics.register_components(sink.applied_versions().iter().map(|(name, _)| *name));
        reporting.metrics.running(version, &hash.to_hex(), 0);
        reporting.metrics.reload(ReloadResult::Success, started.elapsed());
        tracing::info!(
            event = "reload.applied",
            version,
            origin = "startup",
            files = %log_list(&files),
            duration_ms = started.elapsed().as_millis() as u64
        );

        let mut status = Status::new(version, hash, sink.applied_versions());
        status.pinned = pinned;
        let status = Arc::new(ArcSwap::from_pointee(status));
        let validator =
            Validator::spawn(schema, Arc::clone(&env), config.max_stuck_workers).map_err(StartError::Spawn)?;
        let shutdown_timeout = config.shutdown_timeout;
        let reloader = Reloader {
            sink,
            store,
            config,
            reporting,
            status: Arc::clone(&status),
            validator,
            running: Running { version, hash, sources },
            pinned,
            dir_hash,
            failing: None,
            retry: None,
            attempt: 1,
            judged: None,
        };
        let (tx, rx) = bounded(16);
        let (alive, exited) = bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("hotconf-reloader".into())
            .spawn(move || {
                // Dropped last, after the reloader and all it owns (components, validator, alerter):
                // `Drop` of the handle waits for that too, within its bound.
                let _alive = alive;
                let mut reloader = reloader;
                reloader.run(&rx, watch);
            })
            .map_err(StartError::Spawn)?;
        Ok((Self { inbox: Some(tx), status, thread: Some(thread), exited, shutdown_timeout }, dir_sources))
    }

    /// The reloader's status, as of its last attempt.
    pub fn status(&self) -> Arc<Status> {
        self.status.load_full()
    }

    /// Re-reads the config directory now and applies it if it is valid and new (SIGHUP,
    /// `POST /reload`). Waits up to `timeout` for the outcome.
    pub fn reload(&self, timeout: Duration) -> Option<AttemptOutcome> {
        self.ask(Command::Reload, timeout)
    }

    /// Asks for a reload as [`ReloaderHandle::reload`] does, without waiting for it (for a signal
    /// loop, which must stay free to see SIGTERM). `false` if the reloader's inbox is full or gone.
    pub fn request_reload(&self) -> bool {
        let (reply, _) = bounded(1);
        self.inbox.as_ref().is_some_and(|inbox| inbox.try_send(Command::Reload(reply)).is_ok())
    }

    /// Makes stored version `version` live without writing the config directory (for read-only
    /// mounts); it holds until the files on disk change again, across restarts too (the store
    /// records it with the directory's content hash). Waits up to `timeout`.
    pub fn pin(&self, version: u64, timeout: Duration) -> Option<AttemptOutcome> {
        self.ask(|reply| Command::Pin(version, reply), timeout)
    }

    fn ask(
        &self,
        command: impl FnOnce(Sender<AttemptOutcome>) -> Command,
        timeout: Duration,
    ) -> Option<AttemptOutcome> {
        let (reply, outcome) = bounded(1);
        self.inbox.as_ref()?.send_timeout(command(reply), timeout).ok()?;
        outcome.recv_timeout(timeout).ok()
    }
}

impl Drop for ReloaderHandle {
    fn drop(&mut self) {
        self.inbox.take();
        let Some(thread) = self.thread.take() else { return };
        match self.exited.recv_timeout(self.shutdown_timeout) {
            Err(RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
            }
            _ => tracing::warn!(
                event = "reloader.detached",
                timeout_ms = self.shutdown_timeout.as_millis() as u64,
                "the reloader is still mid-attempt; it is left to end by itself"
            ),
        }
    }
}

/// The version running now.
struct Running {
    version: u64,
    hash: blake3::Hash,
    sources: Sources,
}

struct Reloader<S: Schema, K> {
    sink: K,
    store: History,
    config: ReloaderConfig,
    reporting: Reporting,
    status: Arc<ArcSwap<Status>>,
    validator: Validator<S>,
    running: Running,
    /// The version pinned by `pin`, until the files change (kept in the store across restarts).
    pinned: Option<u64>,
    /// The config directory's content as last seen (startup, change set, manual reload): a pin
    /// records it, and a restart keeps the pin only while the directory still holds it.
    dir_hash: blake3::Hash,
    /// The content hash of the failing attempt, while the last attempt failed.
    failing: Option<blake3::Hash>,
    /// A change set or manual reload whose attempt failed for a transient reason (timeout, stuck
    /// workers, store, component, unreadable directory), to be tried again: the poller will not
    /// send the same content twice.
    retry: Option<Retry>,
    /// The number of the attempt in progress at its content (1, or more for a retry).
    attempt: u32,
    /// The content the attempt in progress judges, once known: shown in `/status` beside its outcome.
    judged: Option<blake3::Hash>,
}

/// What a retry tries again.
enum Pending {
    /// The change set's very bytes.
    Change { sources: Sources, files: Vec<String> },
    /// A manual reload: the directory is read afresh.
    Reload,
}

/// A failed attempt waiting to be tried again.
struct Retry {
    at: Instant,
    pending: Pending,
    /// Attempts made so far.
    attempts: u32,
}

impl<S: Schema, K: Sink<S::Config>> Reloader<S, K> {
    fn run(&mut self, inbox: &Receiver<Command>, watch: Receiver<WatchEvent>) {
        let mut watch = Some(watch);
        let finished = self.validator.finished().clone();
        loop {
            let watch_rx = watch.clone().unwrap_or_else(never);
            let retry_timer = match &self.retry {
                Some(r) => after(r.at.saturating_duration_since(Instant::now())),
                None => never(),
            };
            select! {
                recv(inbox) -> command => match command {
                    Ok(Command::Reload(reply)) => {
                        // The directory is read afresh: a pending retry of older content is moot.
                        self.retry = None;
                        let outcome = self.attempt_pending(Pending::Reload, 1);
                        let _ = reply.send(outcome);
                    }
                    Ok(Command::Pin(version, reply)) => {
                        // A pin that takes effect replaces a pending retry; one that does not
                        // (refused, failed) leaves it pending.
                        let pending = self.retry.take();
                        self.attempt = 1;
                        let outcome = self.pin(version);
                        if !matches!(outcome, AttemptOutcome::Applied { .. }) {
                            self.retry = pending;
                        }
                        let _ = reply.send(outcome);
                    }
                    Err(_) => return,
                },
                recv(watch_rx) -> event => match event {
                    Ok(WatchEvent::Changed(set)) => {
                        self.dir_hash = set.sources.bundle_hash();
                        self.set_pin(None, self.running.version);
                        // A newer change set replaces one waiting for a retry.
                        self.retry = None;
                        let files: Vec<String> = set.changes.iter().map(|c| c.name.clone()).collect();
                        self.attempt_pending(Pending::Change { sources: set.sources, files }, 1);
                    }
                    Ok(WatchEvent::PollError { kind, .. }) => self.reporting.metrics.poll_error(kind.as_str()),
                    Ok(_) => {}
                    Err(_) => watch = None,
                },
                recv(finished) -> id => {
                    if id.is_ok_and(|id| self.validator.reap(id)) {
                        self.refresh_workers();
                        // A slot is free: a pending retry need not wait out its backoff.
                        if let Some(r) = &mut self.retry {
                            r.at = Instant::now();
                        }
                    }
                }
                recv(retry_timer) -> _ => {
                    if let Some(r) = self.retry.take() {
                        self.attempt_pending(r.pending, r.attempts + 1);
                    }
                }
            }
        }
    }

    /// Attempt number `attempt` at `pending`; a transient failure schedules the next, with capped
    /// backoff, for as long as nothing newer replaces it.
    fn attempt_pending(&mut self, pending: Pending, attempt: u32) -> AttemptOutcome {
        self.attempt = attempt;
        let (outcome, trigger) = match &pending {
            Pending::Change { sources, files } => {
                (self.attempt(sources, Trigger::Change, Some(files.clone())), Trigger::Change)
            }
            Pending::Reload => (self.reload_now(), Trigger::Manual),
        };
        if let AttemptOutcome::Failed { error } = &outcome {
            let delay = self.config.retry.delay(attempt);
            let files = match &pending {
                Pending::Change { files, .. } => log_list(files),
                Pending::Reload => log_list(&[]),
            };
            tracing::warn!(
                event = "reload.retry",
                attempt = attempt + 1,
                delay_ms = delay.as_millis() as u64,
                trigger = trigger.as_str(),
                files = %files,
                error = %error,
                "the attempt failed for a transient reason; it will be tried again"
            );
            self.retry = Some(Retry { at: Instant::now() + delay, pending, attempts: attempt });
        }
        outcome
    }

    /// A manual reload: reads the directory on a validator worker, then attempts its content.
    fn reload_now(&mut self) -> AttemptOutcome {
        let started = Instant::now();
        match self.validator.read(self.read_plan(), self.config.reload_timeout) {
            Ok(Ok(sources)) => {
                self.dir_hash = sources.bundle_hash();
                self.attempt(&sources, Trigger::Manual, None)
            }
            Ok(Err(e)) => self.failed(Trigger::Manual, None, format!("{e}: {}", e.source), started),
            Err(e) => self.failed(Trigger::Manual, None, e.to_string(), started),
        }
    }

    fn read_plan(&self) -> ReadPlan {
        ReadPlan {
            dir: self.config.dir.clone(),
            limits: self.config.limits,
            attempts: self.config.read_attempts,
            backoff: self.config.read_backoff,
        }
    }

    /// One attempt: validate `sources`, then store and apply them, or reject them.
    fn attempt(&mut self, sources: &Sources, trigger: Trigger, changed: Option<Vec<String>>) -> AttemptOutcome {
        let started = Instant::now();
        let hash = sources.bundle_hash();
        self.judged = Some(hash);
        let files = changed.unwrap_or_else(|| sources.names().map(str::to_owned).collect());
        if hash == self.running.hash && self.pinned.is_none() {
            return self.unchanged(trigger, started);
        }
        let valid = match self.validator.validate(sources.clone(), self.config.reload_timeout) {
            Ok(Ok(valid)) => valid,
            Ok(Err(diagnostics)) => return self.rejected(trigger, sources, files, diagnostics, started),
            Err(error) => return self.failed(trigger, Some((hash, files)), error.to_string(), started),
        };
        if valid.hash() == self.running.hash && self.pinned.is_none() {
            // The schema reads only some of the files, and those are unchanged.
            return self.unchanged(trigger, started);
        }
        let origin = match trigger {
            Trigger::Change => Origin::Change,
            // Rollbacks go through `pin`, which stores them as rollbacks.
            Trigger::Manual | Trigger::Rollback => Origin::Manual,
        };
        self.apply(valid, origin, trigger, files, started)
    }

    /// A revert to the running content: nothing to apply, and any failure is over.
    fn unchanged(&mut self, trigger: Trigger, started: Instant) -> AttemptOutcome {
        {
            let recovered = self.recover();
            self.reporting.metrics.in_sync();
            let outcome = AttemptOutcome::Unchanged { version: self.running.version };
            self.record(trigger, &outcome, started);
            if recovered {
                tracing::info!(
                    event = "reload.recovered",
                    version = self.running.version,
                    "reverted to the running config"
                );
                self.emit(ReloadEvent::Recovered { version: self.running.version });
            }
            outcome
        }
    }

    fn apply(
        &mut self,
        valid: Validated<S::Config>,
        origin: Origin,
        trigger: Trigger,
        files: Vec<String>,
        started: Instant,
    ) -> AttemptOutcome {
        let hash = valid.hash();
        // The store writes the `accepted` audit record itself, and turns a change whose content a
        // `hotconf rollback` announced into a rollback of that version.
        let (version, origin) = match self.store.commit(valid.sources(), origin) {
            Ok(committed) => committed,
            Err(e) => {
                return self.failed(
                    trigger,
                    Some((hash, files)),
                    format!("snapshot store: {}", error_chain(&e)),
                    started,
                )
            }
        };
        let (config, sources) = valid.into_parts();
        let publication = Arc::new(Publication::new(version, hash, Arc::new(config)));
        // A panic in the sink itself (not in a component, whose thread catches its own) must not
        // take the reloader thread down: it is one more failed attempt.
        let applied = catch_unwind(AssertUnwindSafe(|| self.sink.apply(publication)));
        match applied {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if let ApplyError::AckTimeout { component, .. } = &e {
                    self.reporting.metrics.ack_timeout(component);
                }
                return self.failed(trigger, Some((hash, files)), e.to_string(), started);
            }
            Err(payload) => {
                let error = format!("publishing version {version} panicked: {}", panic_message(payload.as_ref()));
                return self.failed(trigger, Some((hash, files)), error, started);
            }
        }
        if let Err(e) = self.store.set_running(version) {
            tracing::warn!(event = "snapshot.error", version, error = %error_chain(&e));
        }
        let diff = semantic_diff(&self.running.sources, &sources);
        let duration = started.elapsed();
        // State first, then the log lines: whoever reacts to a log line sees the new state.
        self.running = Running { version, hash, sources };
        // A pin holds until the files are applied again (a change or a manual reload).
        let pinned = match (trigger, &origin) {
            (Trigger::Rollback, Origin::Rollback { of }) => Some(*of),
            _ => None,
        };
        self.set_pin(pinned, version);
        self.reporting.metrics.running(version, &hash.to_hex(), files.len());
        self.reporting.metrics.reload(ReloadResult::Success, duration);
        let recovered = self.recover();
        let outcome = AttemptOutcome::Applied { version, files: files.clone() };
        self.record(trigger, &outcome, started);
        tracing::info!(
            event = "reload.applied",
            version,
            origin = %origin,
            files = %log_list(&files),
            duration_ms = duration.as_millis() as u64,
            diff = %diff,
        );
        if let Origin::Rollback { of } = origin {
            tracing::info!(event = "rollback.applied", version, of, pinned = self.pinned.is_some());
        }
        self.emit(ReloadEvent::Applied { version, trigger, diff });
        if recovered {
            tracing::info!(event = "reload.recovered", version, attempt = self.attempt);
            self.emit(ReloadEvent::Recovered { version });
        }
        outcome
    }

    /// Sets the live pin to `of` (running as `version`), or clears it, in the store too, so a
    /// restart keeps it while the directory is unchanged.
    fn set_pin(&mut self, of: Option<u64>, version: u64) {
        let recorded = match of {
            Some(of) => self.store.set_pin(&Pin { version, of, dir_hash: self.dir_hash.to_hex().to_string() }),
            None if self.pinned.is_some() => self.store.clear_pin(),
            None => Ok(()),
        };
        if let Err(e) = recorded {
            tracing::warn!(event = "snapshot.error", error = %error_chain(&e), "cannot record the pin in the store");
        }
        self.pinned = of;
    }

    fn pin(&mut self, version: u64) -> AttemptOutcome {
        let started = Instant::now();
        let stored = match self.store.read(version) {
            Ok(stored) => stored,
            Err(e) => {
                // Refused: the running config and the failure state are untouched.
                let error = format!("cannot roll back to version {version}: {}", error_chain(&e));
                let outcome = match e {
                    StoreError::NotFound { .. } => AttemptOutcome::NotFound { version, error: error.clone() },
                    _ => AttemptOutcome::Failed { error: error.clone() },
                };
                self.record(Trigger::Rollback, &outcome, started);
                tracing::warn!(event = "rollback.refused", version, error = %error);
                return outcome;
            }
        };
        let sources = stored;
        let hash = sources.bundle_hash();
        self.judged = Some(hash);
        let files: Vec<String> = sources.names().map(str::to_owned).collect();
        match self.validator.validate(sources, self.config.reload_timeout) {
            Ok(Ok(valid)) => self.apply(valid, Origin::Rollback { of: version }, Trigger::Rollback, files, started),
            Ok(Err(diagnostics)) => {
                // Refused: version N no longer validates; the running config and the failure
                // state are untouched.
                let outcome = AttemptOutcome::Rejected { diagnostics: diagnostics.clone().into_vec() };
                self.record(Trigger::Rollback, &outcome, started);
                log_diagnostics("rollback.refused", &diagnostics);
                tracing::warn!(event = "rollback.refused", version, problems = diagnostics.problems());
                outcome
            }
            Err(error) => self.failed(Trigger::Rollback, Some((hash, files)), error.to_string(), started),
        }
    }

    fn rejected(
        &mut self,
        trigger: Trigger,
        candidate: &Sources,
        files: Vec<String>,
        diagnostics: Diagnostics,
        started: Instant,
    ) -> AttemptOutcome {
        let hash = candidate.bundle_hash();
        self.reporting.metrics.reload(ReloadResult::Rejected, started.elapsed());
        self.audit(AuditEvent::rejected(candidate, &diagnostics));
        let errors =
            diagnostics.as_slice().iter().map(|d| d.to_string().lines().next().unwrap_or("").to_owned()).collect();
        self.alert_failing(hash, files, errors);
        let outcome = AttemptOutcome::Rejected { diagnostics: diagnostics.clone().into_vec() };
        self.record(trigger, &outcome, started);
        log_diagnostics("reload.rejected", &diagnostics);
        tracing::warn!(
            event = "reload.rejected",
            problems = diagnostics.problems(),
            running_version = self.running.version,
            "config rejected; previous config kept"
        );
        self.emit(ReloadEvent::Rejected { trigger, diagnostics });
        outcome
    }

    fn failed(
        &mut self,
        trigger: Trigger,
        content: Option<(blake3::Hash, Vec<String>)>,
        error: String,
        started: Instant,
    ) -> AttemptOutcome {
        self.reporting.metrics.reload(ReloadResult::Failed, started.elapsed());
        let bundle_hash = content.as_ref().map(|(h, _)| h.to_hex().to_string());
        let (hash, files) = content.unwrap_or_else(|| (blake3::hash(error.as_bytes()), Vec::new()));
        self.audit(AuditEvent::Failed { bundle_hash, files: files.clone(), error: error.clone() });
        self.alert_failing(hash, files, vec![error.clone()]);
        let outcome = AttemptOutcome::Failed { error: error.clone() };
        self.record(trigger, &outcome, started);
        tracing::error!(event = "reload.failed", error = %error, running_version = self.running.version, "reload failed; previous config kept");
        self.emit(ReloadEvent::Failed { trigger, error });
        outcome
    }

    /// Sends `event` to the library user's channel, if any, without blocking.
    fn emit(&self, event: ReloadEvent) {
        if let Some(events) = &self.config.events {
            let _ = events.try_send(event);
        }
    }

    fn audit(&self, event: AuditEvent) {
        if let Err(e) = self.store.record(event) {
            tracing::error!(event = "audit.failed", error = %error_chain(&e));
        }
    }

    fn alert_failing(&mut self, content: blake3::Hash, files: Vec<String>, errors: Vec<String>) {
        self.failing = Some(content);
        if let Some(alerts) = &self.reporting.alerts {
            if !alerts.send(Alert::Failing { content, files, errors }) {
                self.reporting.metrics.alert("suppressed");
            }
        }
    }

    /// Ends the failure state, if any, and says so to the alerter. Returns whether there was one.
    fn recover(&mut self) -> bool {
        let was_failing = self.failing.take().is_some();
        if was_failing {
            if let Some(alerts) = &self.reporting.alerts {
                alerts.send(Alert::Resolved { version: self.running.version });
            }
        }
        was_failing
    }

    /// Publishes the status after an attempt: one new `Status`, so a reader never sees the new
    /// last attempt beside the old running version or failure state. Called last in every path,
    /// after the metrics, the audit record and the alert: whoever sees the new status sees those too.
    fn record(&mut self, trigger: Trigger, outcome: &AttemptOutcome, started: Instant) {
        let mut status = Status::clone(&self.status.load());
        let judged = self.judged.take().map(|h| h.to_hex().to_string());
        status.last_attempt = Some(LastAttempt::new(trigger, outcome.clone(), started.elapsed(), judged));
        self.reporting.metrics.workers_stuck(self.validator.stuck());
        status.workers_stuck = self.validator.stuck();
        status.running_version = self.running.version;
        status.bundle_hash = self.running.hash.to_hex().to_string();
        status.pinned = self.pinned;
        status.failing = self.failing.is_some();
        status.components = self.sink.applied_versions().into_iter().map(ComponentStatus::from).collect();
        self.status.store(Arc::new(status));
    }
}

impl<S: Schema, K> Reloader<S, K> {
    /// Publishes the count of stuck validator workers (a worker finished): the metric, and a new
    /// status with the last attempt unchanged.
    fn refresh_workers(&mut self) {
        let stuck = self.validator.stuck();
        self.reporting.metrics.workers_stuck(stuck);
        let mut status = Status::clone(&self.status.load());
        status.workers_stuck = stuck;
        self.status.store(Arc::new(status));
    }
}

/// The pin recorded in the store, when the config directory still holds what it held when the pin
/// was made (`dir_hash`) and the pinned version still reads and validates. Otherwise the pin is
/// dropped, saying why, and the service starts on the directory's content.
fn resume_pin<S: Schema>(
    schema: &S,
    store: &History,
    env: &dyn EnvLookup,
    dir_hash: blake3::Hash,
) -> Option<(Validated<S::Config>, Pin)> {
    let pin = match store.pin() {
        Ok(pin) => pin?,
        Err(e) => {
            tracing::warn!(event = "pin.cleared", error = %error_chain(&e), "cannot read the recorded pin");
            return None;
        }
    };
    let refused = if pin.dir_hash != dir_hash.to_hex().as_str() {
        "the config directory changed since the pin".to_owned()
    } else {
        match store.read(pin.version) {
            Ok(stored) => match crate::validate::validate_with(schema, stored, env) {
                Ok(valid) => {
                    tracing::info!(
                        event = "pin.kept",
                        version = pin.version,
                        of = pin.of,
                        "the config directory is unchanged since the pin: running the pinned version"
                    );
                    return Some((valid, pin));
                }
                Err(diagnostics) => {
                    format!("version {} no longer validates ({} problems)", pin.version, diagnostics.len())
                }
            },
            Err(e) => format!("version {}: {}", pin.version, error_chain(&e)),
        }
    };
    tracing::info!(event = "pin.cleared", of = pin.of, reason = %refused, "starting on the config directory");
    if let Err(e) = store.clear_pin() {
        tracing::warn!(event = "snapshot.error", error = %error_chain(&e), "cannot clear the recorded pin");
    }
    None
}

/// Logs each diagnostic as one `event` line with its file, path, line and column.
/// A list-valued log field (`files`): the text of a JSON array of strings, which `hotconf run`'s
/// JSON logs write as an array and its text logs as the items joined by commas.
fn log_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

fn log_diagnostics(event: &'static str, diagnostics: &Diagnostics) {
    for d in diagnostics.as_slice() {
        tracing::warn!(
            event,
            file = %d.file,
            path = d.path.as_deref().unwrap_or(""),
            line = d.line.unwrap_or(0),
            column = d.column.unwrap_or(0),
            code = d.kind.code(),
            message = %d.kind,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::RetryBackoff;
    use std::time::Duration;

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let ms = Duration::from_millis;
        let cases = [
            // (initial, max, failures, delay)
            (ms(1000), ms(30_000), 1, ms(1000)),
            (ms(1000), ms(30_000), 5, ms(16_000)),
            (ms(1000), ms(30_000), 6, ms(30_000)),
            (ms(1000), ms(30_000), 1_000, ms(30_000)),
            (ms(100), ms(400), 3, ms(400)),
            (ms(100), ms(400), u32::MAX, ms(400)),
            // A cap below the first wait wins.
            (ms(500), ms(200), 1, ms(200)),
            // Zero failures counts as the first.
            (ms(100), ms(400), 0, ms(100)),
        ];
        for (initial, max, failures, delay) in cases {
            assert_eq!(RetryBackoff { initial, max }.delay(failures), delay, "{initial:?} {max:?} {failures}");
        }
    }
}
