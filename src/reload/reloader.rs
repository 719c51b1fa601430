//! The reloader thread: one attempt at a time, from a change set, a manual trigger or a pin.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::event::ReloadEvent;
use super::failure::{Failure, FailureCause};
use super::history::History;
use super::observers::{AuditTrail, EventQueue, LogLines, StatusBoard};
use super::report::{AttemptReport, Observer, ReloadState, Report};
use super::status::{AttemptOutcome, ComponentStatus, Status, Trigger};
use super::subscribe::Subscribers;
use super::validator::{Outcome, ReadPlan, ValidateError, Validator};

use crate::error_text::error_chain;
use crate::heartbeat::Heartbeat;
use crate::park::Doorbell;
use crate::publish::{panic_message, ApplyError, Publication, Sink};
use crate::snapshot::{semantic_diff_from, DiffMemo, Origin, Pin, SemanticDiff, StoreError};
use crate::source::env::EnvLookup;
use crate::source::{ReadError, Sources, SourcesLimits};
use crate::validate::{Diagnostics, Schema, Validated};
use crate::watch::WatchEvent;

/// How the reloader behaves.
#[derive(Debug, Clone)]
pub(crate) struct ReloaderConfig {
    dir: PathBuf,
    limits: SourcesLimits,
    reload_timeout: Duration,
    read_attempts: u32,
    read_backoff: Duration,
    retry: RetryBackoff,
    max_stuck_workers: usize,
    shutdown_timeout: Duration,
    events: Option<Sender<ReloadEvent>>,
    /// The async subscriptions to the same events.
    subscribers: Arc<Subscribers>,
    /// The directory diagnostics show their files under, as the user named it (none for a
    /// one-file config named without a directory).
    shown_dir: Option<PathBuf>,
    /// A one-file config: diffs are shown with paths inside the file, as its diagnostics are.
    one_file: bool,
    /// On an invalid directory at start: run the newest stored version that validates, degraded.
    start_on_last_good: bool,
    /// The longest one attempt may keep the thread from its loop (a manual reload reads and
    /// validates, then stores and applies): past it plus [`BEAT_PERIOD`], the reloader is stalled.
    attempt_bound: Duration,
}

/// How often an idle reloader beats its heartbeat.
const BEAT_PERIOD: Duration = Duration::from_secs(1);

/// The wait before each retry of an attempt that failed for a transient reason: `initial`, doubled
/// after each failure, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryBackoff {
    /// The wait after the first failure.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl RetryBackoff {
    /// 1 s, doubling, at most 30 s: 1, 2, 4, 8, 16, 30, 30, … s.
    pub const DEFAULT: RetryBackoff = RetryBackoff { initial: Duration::from_secs(1), max: Duration::from_secs(30) };

    /// The wait after `failures` consecutive failed attempts (at least 1): by default 1, 2, 4, 8,
    /// 16, 30, 30, … s.
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
        let dir = dir.into();
        Self {
            shown_dir: Some(dir.clone()),
            one_file: false,
            dir,
            limits: SourcesLimits::default(),
            reload_timeout: Duration::from_secs(5),
            read_attempts: 3,
            read_backoff: Duration::from_millis(100),
            retry: RetryBackoff::DEFAULT,
            max_stuck_workers: 4,
            shutdown_timeout: Duration::from_secs(1),
            events: None,
            subscribers: Arc::default(),
            start_on_last_good: false,
            attempt_bound: Duration::from_secs(13),
        }
    }

    /// Diagnostics show their files under `dir` (the directory as the user named it), or bare;
    /// `one_file`: diffs show paths inside the one file, as diagnostics do.
    #[must_use]
    pub fn with_shown_paths(mut self, dir: Option<PathBuf>, one_file: bool) -> Self {
        self.shown_dir = dir;
        self.one_file = one_file;
        self
    }

    /// `diagnostics`, shown under the directory as the user named it.
    fn shown(&self, diagnostics: Diagnostics) -> Diagnostics {
        match &self.shown_dir {
            Some(dir) => diagnostics.under(dir),
            None => diagnostics,
        }
    }

    /// On an invalid config directory at start, run the newest stored version that still
    /// validates (degraded, until the directory is applied) instead of refusing to start.
    #[must_use]
    pub fn with_start_on_last_good(mut self) -> Self {
        self.start_on_last_good = true;
        self
    }

    /// The longest one attempt may keep the reloader from its loop before it counts as stalled.
    #[must_use]
    pub fn with_attempt_bound(mut self, bound: Duration) -> Self {
        self.attempt_bound = bound;
        self
    }

    /// Sends a [`ReloadEvent`] on `events` after each attempt that applies, rejects, fails or
    /// recovers. Never blocks: an event that does not fit in the channel is dropped.
    #[must_use]
    pub fn with_events(mut self, events: Sender<ReloadEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// The async subscriptions the events also go to.
    pub(crate) fn subscribers(&self) -> Arc<Subscribers> {
        Arc::clone(&self.subscribers)
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

    /// The bound on reading plus validating one attempt.
    pub fn reload_timeout(&self) -> Duration {
        self.reload_timeout
    }
}

/// Why the service could not start. `Debug` prints what `Display` does, with every cause, so
/// that `main`'s `?` prints a readable report: every diagnostic with its location and help, or
/// the path that failed and the OS error in words.
#[derive(thiserror::Error)]
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

impl fmt::Debug for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::error_text::error_chain(self))
    }
}

enum Command {
    Reload(Sender<AttemptOutcome>),
    Pin(u64, Sender<AttemptOutcome>),
}

/// Owns the reloader thread. Dropping it disconnects the inbox and joins the thread, waiting at
/// most the shutdown timeout ([`ReloaderConfig::with_shutdown_timeout`]): a thread still
/// mid-attempt past it (a store write hung in the kernel) is left to end by itself.
#[derive(Debug)]
pub(crate) struct ReloaderHandle {
    inbox: Option<Sender<Command>>,
    history: Arc<History>,
    status: Arc<ArcSwap<Status>>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the thread ends.
    exited: Receiver<()>,
    shutdown_timeout: Duration,
    heartbeat: Heartbeat,
    doorbell: Doorbell,
}

impl ReloaderHandle {
    /// Validates, stores and applies the config in `config.dir()` as the starting version, then
    /// starts the thread `hotconf-reloader`, which applies each change set from `watch`. Every
    /// report goes to the audit log, then `observers` in order, then the status, the log and
    /// the events channel.
    ///
    /// Returns the startup sources too, so the poller can take them as its baseline.
    pub(crate) fn start<S, K>(
        schema: S,
        mut sink: K,
        store: History,
        env: Arc<dyn EnvLookup>,
        config: ReloaderConfig,
        observers: Vec<Box<dyn Observer>>,
        watch: Receiver<WatchEvent>,
    ) -> Result<(Self, Sources), StartError>
    where
        S: Schema,
        K: Sink<S::Config>,
    {
        let started = Instant::now();
        let store = Arc::new(store);
        let sources = Sources::read_dir(&config.dir, config.limits.max_file_bytes)?;
        // What the directory holds is the poller's baseline, even when a pin runs something else.
        let dir_sources = sources.clone();
        let dir_hash = sources.bundle_hash();
        let mut degraded = None;
        let (valid, version, origin, pinned) = match resume_pin(&schema, &store, &*env, dir_hash) {
            Some((valid, pin)) => (valid, pin.version, Origin::Pin { of: pin.of }, Some(pin.of)),
            None => match crate::validate::validate_with(&schema, sources, &*env) {
                Ok(valid) => {
                    let version = store.commit(valid.sources(), Origin::Startup)?.0;
                    (valid, version, Origin::Startup, None)
                }
                Err(diagnostics) if config.start_on_last_good => {
                    let Some((valid, version)) = last_good(&schema, &store, &*env) else {
                        return Err(StartError::Invalid(config.shown(diagnostics)));
                    };
                    let reason = format!(
                        "the config directory is invalid ({} problem{}); running stored version {version}, \
                         the newest that validates, until the directory is fixed",
                        diagnostics.len(),
                        if diagnostics.len() == 1 { "" } else { "s" }
                    );
                    tracing::warn!(
                        event = "start.degraded",
                        version,
                        problems = diagnostics.len(),
                        reason = %reason,
                        "starting degraded on the last good version"
                    );
                    degraded = Some(reason);
                    (valid, version, Origin::Startup, None)
                }
                Err(diagnostics) => return Err(StartError::Invalid(config.shown(diagnostics))),
            },
        };
        let (config_value, sources) = valid.into_parts();
        let hash = sources.bundle_hash();
        sink.apply(Arc::new(Publication::new(version, hash, Arc::new(config_value))))?;
        store.set_running(version)?;
        let files: Vec<String> = sources.names().map(str::to_owned).collect();
        let status = Arc::new(ArcSwap::from_pointee(Status::new(version, hash, Vec::new())));
        let observers = Observers::chain(Arc::clone(&store), observers, Arc::clone(&status), &config);
        // Rung by everyone who sends to the reloader thread: this handle, the validator's
        // workers, and the poller (given it through `ReloaderHandle::doorbell`).
        let doorbell = Doorbell::default();
        let validator = Validator::spawn(schema, Arc::clone(&env), config.max_stuck_workers, doorbell.clone())
            .map_err(StartError::Spawn)?;
        let shutdown_timeout = config.shutdown_timeout;
        let history = Arc::clone(&store);
        let heartbeat = Heartbeat::new(Instant::now(), BEAT_PERIOD + config.attempt_bound);
        let mut reloader = Reloader {
            sink,
            store,
            config,
            observers,
            validator,
            running: Running { version, hash, sources },
            diff_memo: DiffMemo::default(),
            prepared: None,
            prepared_diff: None,
            pinned,
            dir_hash,
            failing: degraded.is_some(),
            retry: None,
            degraded,
            heartbeat: heartbeat.clone(),
            doorbell: doorbell.clone(),
        };
        let mut verdict =
            Verdict::new(Trigger::Startup, AttemptOutcome::Applied { version, files: files.clone() }, started)
                .content(hash, files.clone());
        verdict.candidate_files = files;
        verdict.origin = Some(origin);
        verdict.diff = Some(SemanticDiff::default());
        verdict.pin = pinned;
        let report = reloader.report(verdict, 1, None);
        reloader.observers.feed(&Report::Started(&report));
        let (tx, rx) = bounded(16);
        let (alive, exited) = bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("hotconf-reloader".into())
            .spawn(move || {
                // Dropped last, after the reloader and all it owns (components, validator,
                // observers): `Drop` of the handle waits for that too, within its bound.
                let _alive = alive;
                let mut reloader = reloader;
                reloader.run(&rx, watch);
            })
            .map_err(StartError::Spawn)?;
        Ok((
            Self {
                inbox: Some(tx),
                history,
                status,
                thread: Some(thread),
                exited,
                shutdown_timeout,
                heartbeat,
                doorbell,
            },
            dir_sources,
        ))
    }

    /// The version numbers kept (in the store, or in memory), oldest first.
    pub(crate) fn versions(&self) -> Result<Vec<u64>, StoreError> {
        self.history.versions()
    }

    /// What a sender of watch events rings after each send: the reloader thread parks between
    /// looks at its channels.
    pub(crate) fn doorbell(&self) -> &Doorbell {
        &self.doorbell
    }

    /// The reloader thread's heartbeat.
    pub(crate) fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// The reloader's status, as of its last attempt.
    pub(crate) fn status(&self) -> Arc<Status> {
        self.status.load_full()
    }

    /// Re-reads the config directory now and applies it if it is valid and new (SIGHUP,
    /// `POST /reload`). Waits up to `timeout` for the outcome.
    pub(crate) fn reload(&self, timeout: Duration) -> Option<AttemptOutcome> {
        self.ask(Command::Reload, timeout)
    }

    /// Asks for a reload as [`ReloaderHandle::reload`] does, without waiting for it (for a signal
    /// loop, which must stay free to see SIGTERM). `false` if the reloader's inbox is full or gone.
    pub(crate) fn request_reload(&self) -> bool {
        let (reply, _) = bounded(1);
        let sent = self.inbox.as_ref().is_some_and(|inbox| inbox.try_send(Command::Reload(reply)).is_ok());
        self.doorbell.ring();
        sent
    }

    /// Makes stored version `version` live without writing the config directory (for read-only
    /// mounts); it holds until the files on disk change again, across restarts too (the store
    /// records it with the directory's content hash). Waits up to `timeout`.
    pub(crate) fn pin(&self, version: u64, timeout: Duration) -> Option<AttemptOutcome> {
        self.ask(|reply| Command::Pin(version, reply), timeout)
    }

    fn ask(
        &self,
        command: impl FnOnce(Sender<AttemptOutcome>) -> Command,
        timeout: Duration,
    ) -> Option<AttemptOutcome> {
        let (reply, outcome) = bounded(1);
        self.inbox.as_ref()?.send_timeout(command(reply), timeout).ok()?;
        self.doorbell.ring();
        outcome.recv_timeout(timeout).ok()
    }
}

impl Drop for ReloaderHandle {
    fn drop(&mut self) {
        self.inbox.take();
        self.doorbell.ring();
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
    store: Arc<History>,
    config: ReloaderConfig,
    observers: Observers,
    validator: Validator<S>,
    running: Running,
    /// The documents of the running version's changed files, as the last diff parsed them.
    diff_memo: DiffMemo,
    /// A change judged while it settled (see [`Reloader::prepare`]): the whole bundle's hash and
    /// the validator's verdict, taken by the attempt at that same content.
    prepared: Option<(blake3::Hash, Outcome<S::Config>)>,
    /// The diff of a valid prepared change from the running version: that version's hash, the
    /// change's (validated) hash, and the diff, taken by `apply` when both still hold.
    prepared_diff: Option<(blake3::Hash, blake3::Hash, SemanticDiff)>,
    /// The version pinned by `pin`, until the files change (kept in the store across restarts).
    pinned: Option<u64>,
    /// The config directory's content as last seen (startup, change set, manual reload): a pin
    /// records it, and a restart keeps the pin only while the directory still holds it.
    dir_hash: blake3::Hash,
    /// Whether the last attempt at the files failed or was rejected, until one applies or reverts.
    failing: bool,
    /// A change set or manual reload whose attempt failed for a transient reason (timeout, stuck
    /// workers, store, component, unreadable directory), to be tried again: the poller will not
    /// send the same content twice.
    retry: Option<Retry>,
    /// Why the service runs degraded (started on a stored version: the directory was invalid),
    /// until the directory's content is applied or found to be the running content.
    degraded: Option<String>,
    heartbeat: Heartbeat,
    /// Rung by every sender to this thread; see [`Reloader::run`].
    doorbell: Doorbell,
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

/// An attempt's verdict before the reloader's state is attached: what `finish` turns into an
/// [`AttemptReport`].
struct Verdict {
    trigger: Trigger,
    outcome: AttemptOutcome,
    content: Option<blake3::Hash>,
    files: Vec<String>,
    candidate_files: Vec<String>,
    diagnostics: Option<Diagnostics>,
    origin: Option<Origin>,
    diff: Option<SemanticDiff>,
    pin: Option<u64>,
    pin_refused: bool,
    recovered: bool,
    started: Instant,
}

impl Verdict {
    fn new(trigger: Trigger, outcome: AttemptOutcome, started: Instant) -> Self {
        Self {
            trigger,
            outcome,
            content: None,
            files: Vec::new(),
            candidate_files: Vec::new(),
            diagnostics: None,
            origin: None,
            diff: None,
            pin: None,
            pin_refused: false,
            recovered: false,
            started,
        }
    }

    fn content(mut self, content: blake3::Hash, files: Vec<String>) -> Self {
        self.content = Some(content);
        self.files = files;
        self
    }
}

impl<S: Schema, K: Sink<S::Config>> Reloader<S, K> {
    /// The thread's loop: commands first (a manual reload or a pin waits for nobody), then the
    /// watch channel, finished workers and a due retry; with nothing to do it parks until the next
    /// beat or the retry, and every sender rings its doorbell (crossbeam's `select!` spins and
    /// yields before it sleeps, which costs a fleet of replicas on two cores more than the work).
    fn run(&mut self, inbox: &Receiver<Command>, watch: Receiver<WatchEvent>) {
        self.doorbell.answer_here();
        let mut watch = Some(watch);
        let finished = self.validator.finished().clone();
        loop {
            // Each turn is a wait of at most one beat period, then at most one attempt.
            self.heartbeat.beat(Instant::now(), BEAT_PERIOD + self.config.attempt_bound);
            match inbox.try_recv() {
                Ok(command) => {
                    self.command(command);
                    continue;
                }
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {}
            }
            if let Some(events) = &watch {
                match events.try_recv() {
                    Ok(event) => {
                        self.watch_event(event);
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => watch = None,
                    Err(TryRecvError::Empty) => {}
                }
            }
            if let Ok(id) = finished.try_recv() {
                if self.validator.reap(id) {
                    self.observers.feed(&Report::WorkerFinished { workers_stuck: self.validator.stuck() });
                    // A slot is free: a pending retry need not wait out its backoff.
                    if let Some(r) = &mut self.retry {
                        r.at = Instant::now();
                    }
                }
                continue;
            }
            let now = Instant::now();
            if self.retry.as_ref().is_some_and(|r| r.at <= now) {
                let r = self.retry.take().expect("a retry is due");
                self.attempt_pending(r.pending, r.attempts + 1);
                continue;
            }
            let wake = self.retry.as_ref().map_or(now + BEAT_PERIOD, |r| r.at.min(now + BEAT_PERIOD));
            std::thread::park_timeout(wake.saturating_duration_since(now));
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Reload(reply) => {
                // The directory is read afresh: a pending retry of older content is moot.
                self.retry = None;
                let outcome = self.attempt_pending(Pending::Reload, 1);
                let _ = reply.send(outcome);
            }
            Command::Pin(version, reply) => {
                // A pin that takes effect replaces a pending retry; one that does not (refused,
                // failed) leaves it pending.
                let pending = self.retry.take();
                let verdict = self.pin(version);
                if !verdict.outcome.is_applied() {
                    self.retry = pending;
                }
                let _ = reply.send(self.finish(verdict, 1, None));
            }
        }
    }

    fn watch_event(&mut self, event: WatchEvent) {
        match event {
            WatchEvent::Changed(set) => {
                self.dir_hash = set.sources.bundle_hash();
                self.set_pin(None, self.running.version);
                // A newer change set replaces one waiting for a retry.
                self.retry = None;
                let files: Vec<String> = set.changes.iter().map(|c| c.name.clone()).collect();
                self.attempt_pending(Pending::Change { sources: set.sources, files }, 1);
            }
            WatchEvent::Settling(sources) => self.prepare(sources),
            WatchEvent::PollError { kind, path, message } => {
                self.observers.feed(&Report::PollError { kind, path: path.as_deref(), message: &message });
            }
            WatchEvent::Recovered { path, kind } => {
                self.observers.feed(&Report::PollRecovered { path: path.as_deref(), kind });
            }
        }
    }

    /// Attempt number `attempt` at `pending`; a transient failure schedules the next, with capped
    /// backoff, for as long as nothing newer replaces it.
    fn attempt_pending(&mut self, pending: Pending, attempt: u32) -> AttemptOutcome {
        let verdict = match &pending {
            Pending::Change { sources, files } => self.attempt(sources, Trigger::Change, Some(files.clone())),
            Pending::Reload => self.reload_now(),
        };
        let retry_in =
            matches!(verdict.outcome, AttemptOutcome::Failed { .. }).then(|| self.config.retry.delay(attempt));
        if let Some(delay) = retry_in {
            self.retry = Some(Retry { at: Instant::now() + delay, pending, attempts: attempt });
        }
        self.finish(verdict, attempt, retry_in)
    }

    /// The one place an attempt ends: the reloader's state is attached to the verdict, and the
    /// report goes to every observer in order (audit, the user's, status, log, events).
    fn finish(&mut self, verdict: Verdict, attempt: u32, retry_in: Option<Duration>) -> AttemptOutcome {
        let report = self.report(verdict, attempt, retry_in);
        self.observers.feed(&Report::Attempt(&report));
        report.outcome
    }

    /// The report of `verdict`, with the reloader's state after it.
    fn report(&self, verdict: Verdict, attempt: u32, retry_in: Option<Duration>) -> AttemptReport {
        AttemptReport {
            trigger: verdict.trigger,
            outcome: verdict.outcome,
            attempt,
            content: verdict.content,
            files: verdict.files,
            candidate_files: verdict.candidate_files,
            diagnostics: verdict.diagnostics,
            origin: verdict.origin,
            diff: verdict.diff,
            pin: verdict.pin,
            pin_refused: verdict.pin_refused,
            recovered: verdict.recovered,
            retry_in,
            duration: verdict.started.elapsed(),
            at: SystemTime::now(),
            state: self.state(),
        }
    }

    fn state(&self) -> ReloadState {
        ReloadState {
            running_version: self.running.version,
            running_hash: self.running.hash,
            pinned: self.pinned,
            failing: self.failing,
            workers_stuck: self.validator.stuck(),
            components: self.sink.applied_versions().into_iter().map(ComponentStatus::from).collect(),
            degraded: self.degraded.clone(),
        }
    }

    /// A manual reload: reads the directory on a validator worker, then attempts its content.
    fn reload_now(&mut self) -> Verdict {
        let started = Instant::now();
        match self.validator.read(self.read_plan(), self.config.reload_timeout) {
            Ok(Ok(sources)) => {
                self.dir_hash = sources.bundle_hash();
                self.attempt(&sources, Trigger::Manual, None)
            }
            Ok(Err(e)) => {
                self.failed(Trigger::Manual, Failure::new(FailureCause::Read, format!("{e}: {}", e.source)), started)
            }
            Err(e) => self.failed(Trigger::Manual, validate_failure(&e), started),
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
    fn attempt(&mut self, sources: &Sources, trigger: Trigger, changed: Option<Vec<String>>) -> Verdict {
        let started = Instant::now();
        let hash = sources.bundle_hash();
        let files = changed.unwrap_or_else(|| sources.names().map(str::to_owned).collect());
        if hash == self.running.hash && self.pinned.is_none() {
            return self.unchanged(trigger, hash, started);
        }
        let judged = match self.prepared.take() {
            Some((prepared, outcome)) if prepared == hash && trigger == Trigger::Change => Ok(outcome),
            _ => self.validator.validate(sources.clone(), self.config.reload_timeout),
        };
        let valid = match judged {
            Ok(Ok(valid)) => valid,
            Ok(Err(diagnostics)) => return self.rejected(trigger, sources, files, diagnostics, started),
            Err(error) => return self.failed(trigger, validate_failure(&error), started).content(hash, files),
        };
        if valid.hash() == self.running.hash && self.pinned.is_none() {
            // The schema reads only some of the files, and those are unchanged.
            return self.unchanged(trigger, hash, started);
        }
        let origin = match trigger {
            Trigger::Change => Origin::Change,
            // Pins go through `pin`, which stores them as such.
            Trigger::Manual | Trigger::Pin | Trigger::Startup => Origin::Manual,
        };
        self.apply(valid, origin, trigger, files, started)
    }

    /// Validates a change the poller saw for the first time, while it settles, and keeps the
    /// verdict (and a valid change's diff from the running version) for the attempt at that same
    /// content when it is stable (one tick later by default): the stable tick then costs the
    /// store and the components only, and a fleet of
    /// replicas judges its edit in the tick that would otherwise wait idle. Nothing here is
    /// applied, reported or retried: content that never becomes stable is only dropped, and a
    /// validation that fails to finish (timeout, panic) leaves the stable attempt to validate.
    fn prepare(&mut self, sources: Sources) {
        let hash = sources.bundle_hash();
        (self.prepared, self.prepared_diff) = (None, None);
        if hash == self.running.hash {
            return;
        }
        if let Ok(outcome) = self.validator.validate(sources, self.config.reload_timeout) {
            if let Ok(valid) = &outcome {
                let diff = semantic_diff_from(&self.running.sources, valid.sources(), &mut self.diff_memo);
                self.prepared_diff = Some((self.running.hash, valid.hash(), diff));
            }
            self.prepared = Some((hash, outcome));
        }
    }

    /// A revert to the running content: nothing to apply, and any failure is over.
    fn unchanged(&mut self, trigger: Trigger, judged: blake3::Hash, started: Instant) -> Verdict {
        let mut verdict = Verdict::new(trigger, AttemptOutcome::Unchanged { version: self.running.version }, started);
        verdict.content = Some(judged);
        verdict.recovered = std::mem::take(&mut self.failing);
        self.end_degraded(trigger);
        verdict
    }

    /// The directory's content runs (applied, or found to be the running content): a degraded
    /// start is over. A pin does not end it: the directory is still not what runs.
    fn end_degraded(&mut self, trigger: Trigger) {
        if trigger != Trigger::Pin {
            if let Some(reason) = self.degraded.take() {
                tracing::info!(event = "degraded.cleared", was = %reason, "the config directory is applied");
            }
        }
    }

    fn apply(
        &mut self,
        valid: Validated<S::Config>,
        origin: Origin,
        trigger: Trigger,
        files: Vec<String>,
        started: Instant,
    ) -> Verdict {
        let hash = valid.hash();
        // The store writes the `accepted` audit record itself; a change whose content a
        // `hotconf restore` announced is stored as a restore of that version (`History::commit`).
        let (version, origin) = match self.store.commit(valid.sources(), origin) {
            Ok(committed) => committed,
            Err(e) => {
                let failure = Failure::new(FailureCause::Store, format!("snapshot store: {}", error_chain(&e)));
                return self.failed(trigger, failure, started).content(hash, files);
            }
        };
        let (config, sources) = valid.into_parts();
        let publication = Arc::new(Publication::new(version, hash, Arc::new(config)));
        // A panic in the sink itself (not in a component, whose thread catches its own) must not
        // take the reloader thread down: it is one more failed attempt.
        let failure = match catch_unwind(AssertUnwindSafe(|| self.sink.apply(publication))) {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                let cause = match e {
                    ApplyError::AckTimeout { .. } => FailureCause::AckTimeout,
                    _ => FailureCause::Component,
                };
                Some(Failure { component: Some(e.component()), ..Failure::new(cause, e.to_string()) })
            }
            Err(payload) => Some(Failure::new(
                FailureCause::Panicked,
                format!("publishing version {version} panicked: {}", panic_message(payload.as_ref())),
            )),
        };
        if let Some(failure) = failure {
            return self.failed(trigger, failure, started).content(hash, files);
        }
        if let Err(e) = self.store.set_running(version) {
            tracing::warn!(event = "snapshot.error", version, error = %error_chain(&e), "cannot record the running version in the store");
        }
        let diff = match self.prepared_diff.take() {
            Some((base, new, diff)) if base == self.running.hash && new == hash => diff,
            _ => semantic_diff_from(&self.running.sources, &sources, &mut self.diff_memo),
        };
        let diff = if self.config.one_file { diff.of_one_file() } else { diff };
        // State first, then the report: whoever reacts to it sees the new state.
        self.running = Running { version, hash, sources };
        // A pin holds until the files are applied again (a change or a manual reload).
        let pinned = match (trigger, &origin) {
            (Trigger::Pin, Origin::Pin { of }) => Some(*of),
            _ => None,
        };
        self.set_pin(pinned, version);
        let mut verdict = Verdict::new(trigger, AttemptOutcome::Applied { version, files: files.clone() }, started)
            .content(hash, files);
        verdict.origin = Some(origin);
        verdict.diff = Some(diff);
        verdict.recovered = std::mem::take(&mut self.failing);
        self.end_degraded(trigger);
        verdict
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

    fn pin(&mut self, version: u64) -> Verdict {
        let started = Instant::now();
        let refused = |outcome, content: Option<blake3::Hash>| {
            let mut verdict = Verdict::new(Trigger::Pin, outcome, started);
            verdict.content = content;
            verdict.pin = Some(version);
            verdict.pin_refused = true;
            verdict
        };
        let sources = match self.store.read(version) {
            Ok(stored) => stored,
            Err(e) => {
                // Refused: the running config and the failure state are untouched.
                let error = format!("cannot pin version {version}: {}", error_chain(&e));
                let outcome = match e {
                    StoreError::NotFound { .. } => AttemptOutcome::NotFound { version, error },
                    _ => AttemptOutcome::Failed { failure: Failure::new(FailureCause::Store, error) },
                };
                return refused(outcome, None);
            }
        };
        let hash = sources.bundle_hash();
        let files: Vec<String> = sources.names().map(str::to_owned).collect();
        let mut verdict = match self.validator.validate(sources, self.config.reload_timeout) {
            Ok(Ok(valid)) => self.apply(valid, Origin::Pin { of: version }, Trigger::Pin, files, started),
            Ok(Err(diagnostics)) => {
                // Refused: version N no longer validates; the running config and the failure
                // state are untouched.
                let diagnostics = self.config.shown(diagnostics);
                let mut verdict = refused(AttemptOutcome::Rejected { diagnostics: diagnostics.clone() }, Some(hash));
                verdict.diagnostics = Some(diagnostics);
                verdict
            }
            Err(error) => self.failed(Trigger::Pin, validate_failure(&error), started).content(hash, files),
        };
        verdict.pin = Some(version);
        verdict
    }

    fn rejected(
        &mut self,
        trigger: Trigger,
        candidate: &Sources,
        files: Vec<String>,
        diagnostics: Diagnostics,
        started: Instant,
    ) -> Verdict {
        self.failing = true;
        let diagnostics = self.config.shown(diagnostics);
        let outcome = AttemptOutcome::Rejected { diagnostics: diagnostics.clone() };
        let mut verdict = Verdict::new(trigger, outcome, started).content(candidate.bundle_hash(), files);
        verdict.candidate_files = candidate.names().map(str::to_owned).collect();
        verdict.diagnostics = Some(diagnostics);
        verdict
    }

    fn failed(&mut self, trigger: Trigger, failure: Failure, started: Instant) -> Verdict {
        self.failing = true;
        Verdict::new(trigger, AttemptOutcome::Failed { failure }, started)
    }
}

/// A validator's error as a typed failure.
fn validate_failure(error: &ValidateError) -> Failure {
    let cause = match error {
        ValidateError::Timeout(_) => FailureCause::Timeout,
        ValidateError::Panicked(_) => FailureCause::Panicked,
        ValidateError::Stuck { .. } => FailureCause::WorkersStuck,
        ValidateError::Spawn(_) => FailureCause::Spawn,
    };
    Failure::new(cause, error.to_string())
}

/// The observers of one reloader, fed in the order they were added. A panic in one is caught
/// and logged: the others and the reloader go on.
struct Observers(Vec<Box<dyn Observer>>);

impl Observers {
    /// The built-in observers around the user's, in the one order: the audit trail, the user's,
    /// the status board, the log lines, the events channel (when there is one).
    fn chain(
        store: Arc<History>,
        user: Vec<Box<dyn Observer>>,
        status: Arc<ArcSwap<Status>>,
        config: &ReloaderConfig,
    ) -> Self {
        let mut chain: Vec<Box<dyn Observer>> = vec![Box::new(AuditTrail::new(store))];
        chain.extend(user);
        chain.push(Box::new(StatusBoard::new(status)));
        chain.push(Box::new(LogLines));
        if let Some(events) = config.events.clone() {
            chain.push(Box::new(EventQueue::new(events, config.subscribers())));
        }
        Self(chain)
    }

    fn feed(&mut self, report: &Report<'_>) {
        for observer in &mut self.0 {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| observer.observe(report))) {
                tracing::error!(event = "observer.panicked", error = %panic_message(payload.as_ref()), "an observer panicked; the next one runs");
            }
        }
    }
}

/// The newest stored version that still reads and validates, for a start on an invalid directory.
fn last_good<S: Schema>(schema: &S, store: &History, env: &dyn EnvLookup) -> Option<(Validated<S::Config>, u64)> {
    let versions = match store.versions_newest_first() {
        Ok(versions) => versions,
        Err(e) => {
            tracing::warn!(event = "snapshot.error", error = %error_chain(&e), "cannot list the stored versions");
            return None;
        }
    };
    for version in versions {
        match store.read(version).map(|stored| crate::validate::validate_with(schema, stored, env)) {
            Ok(Ok(valid)) => return Some((valid, version)),
            Ok(Err(diagnostics)) => {
                tracing::info!(event = "start.skipped", version, problems = diagnostics.len(), "no longer validates")
            }
            Err(e) => tracing::info!(event = "start.skipped", version, error = %error_chain(&e), "cannot be read"),
        }
    }
    None
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
            tracing::warn!(event = "pin.cleared", reason = %error_chain(&e), "cannot read the recorded pin; starting on the config directory");
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
