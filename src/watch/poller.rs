//! The poller: [`PollCore`] (one tick by hand: scan, fault bookkeeping, debounce; no threads, no
//! clock) and its thin thread shell [`Poller`], which only waits for the tick or a command, scans,
//! calls the core and sends [`WatchEvent`]s, while a watchdog thread reports a scan stuck in a read.

use std::collections::BTreeMap;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::heartbeat::Heartbeat;
use crate::park::{self, Doorbell, Inbox};
use crate::source::{Sources, SourcesLimits};
use crate::watch::clock::{Clock, SystemClock};
use crate::watch::debounce::{Debouncer, DEFAULT_STABLE_TICKS, MAX_STABLE_TICKS};
use crate::watch::event::{WatchError, WatchEvent};
use crate::watch::fault::PollErrorKind;
use crate::watch::fingerprint::{FileObservation, Observation};
use crate::watch::scan::{scan, FileSystem, RealFs, ScanError};

/// The default time between two ticks.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);
/// The default bound on one scan: past it the scan is reported as [`PollErrorKind::Timeout`].
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How the time between ticks grows while a fault keeps files from being read: `initial`, doubled
/// after each further failing tick, at most `max`; back to the interval after a clean tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failing tick.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_millis(500), max: Duration::from_secs(5) }
    }
}

impl Backoff {
    /// The delay after `failing` consecutive failing ticks (at least one).
    pub fn delay(&self, failing: u32) -> Duration {
        let doublings = failing.saturating_sub(1).min(20);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }
}

/// What to watch and how.
///
/// ```
/// use std::time::Duration;
/// use hotconf::testing::PollerConfig;
/// let config = PollerConfig::new("config").with_interval(Duration::from_millis(100));
/// assert_eq!(config.interval(), Duration::from_millis(100));
/// ```
#[derive(Debug, Clone)]
pub struct PollerConfig {
    dir: PathBuf,
    interval: Duration,
    limits: SourcesLimits,
    read_timeout: Duration,
    backoff: Backoff,
    baseline: Option<Sources>,
    stable_ticks: u32,
    /// Rung after each event sent (the listener parks between looks at its channels).
    listener: Doorbell,
}

impl PollerConfig {
    /// Watches the config files directly in `dir`, every [`DEFAULT_INTERVAL`], with the default size
    /// cap, [`DEFAULT_READ_TIMEOUT`], the default [`Backoff`] and no baseline.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            interval: DEFAULT_INTERVAL,
            limits: SourcesLimits::default(),
            read_timeout: DEFAULT_READ_TIMEOUT,
            backoff: Backoff::default(),
            baseline: None,
            stable_ticks: DEFAULT_STABLE_TICKS,
            listener: Doorbell::default(),
        }
    }

    /// Rings `listener` after each event sent: the reloader parks between looks at its channels.
    pub(crate) fn with_listener(mut self, listener: Doorbell) -> Self {
        self.listener = listener;
        self
    }

    /// Sets how many identical consecutive ticks make a change stable (default 2, clamped to
    /// 2..=[`MAX_STABLE_TICKS`]). Raise it for writers that truncate a file, write part of it and
    /// pause for longer than `stable_ticks - 1` intervals before finishing.
    #[must_use]
    pub fn with_stable_ticks(mut self, n: u32) -> Self {
        self.stable_ticks = n.clamp(DEFAULT_STABLE_TICKS, MAX_STABLE_TICKS);
        self
    }

    /// How many identical consecutive ticks make a change stable.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn stable_ticks(&self) -> u32 {
        self.stable_ticks
    }

    /// Sets the time between ticks.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the size cap.
    #[must_use]
    pub(crate) fn with_limits(mut self, limits: SourcesLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the bound on one scan (a hung read is reported after it).
    #[must_use]
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn with_read_timeout(mut self, read_timeout: Duration) -> Self {
        self.read_timeout = read_timeout;
        self
    }

    /// Sets the backoff used while a fault keeps files from being read.
    #[must_use]
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the state the service already runs on (typically what `Sources::read_dir` gave at
    /// startup). The poller treats it as already emitted: it emits only when the files differ from
    /// it. Without a baseline, the first stable state is emitted as a change set of created files.
    #[must_use]
    pub fn with_baseline(mut self, baseline: Sources) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// The watched directory.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The time between ticks.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The bound on one scan.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// The backoff while faulted.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// The baseline, if any.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn baseline(&self) -> Option<&Sources> {
        self.baseline.as_ref()
    }

    fn check(&self) -> Result<(), WatchError> {
        for (field, value) in [
            ("interval", self.interval),
            ("read_timeout", self.read_timeout),
            ("backoff.initial", self.backoff.initial),
        ] {
            if value.is_zero() {
                return Err(WatchError::ZeroDuration { field });
            }
        }
        Ok(())
    }
}

/// One reported fault: the file or directory, and whether it is the scan's timeout.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct FaultKey {
    path: PathBuf,
    timeout: bool,
}

/// The poller's state between ticks, driven by hand: feed it scans and times, get events.
///
/// ```
/// use std::time::Duration;
/// use hotconf::testing::{Clock, FakeClock, FakeFs, PollCore, PollerConfig, WatchEvent};
/// let (fs, clock) = (FakeFs::new(), FakeClock::new());
/// let mut core = PollCore::new(&PollerConfig::new("/cfg"));
/// fs.write("a.yaml", "a: 1");
/// assert!(core.tick(&fs, clock.now()).is_empty());
/// clock.advance(Duration::from_millis(250));
/// assert!(matches!(core.tick(&fs, clock.now()).as_slice(), [WatchEvent::Changed(_)]));
/// ```
#[derive(Debug)]
pub struct PollCore {
    dir: PathBuf,
    interval: Duration,
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    limits: SourcesLimits,
    read_timeout: Duration,
    backoff: Backoff,
    debouncer: Debouncer,
    faults: BTreeMap<FaultKey, PollErrorKind>,
    failing_ticks: u32,
}

impl PollCore {
    /// A core for `config`, starting from its baseline if it has one.
    pub fn new(config: &PollerConfig) -> Self {
        let debouncer = match &config.baseline {
            Some(sources) => Debouncer::with_baseline(Observation::from_sources(sources)),
            None => Debouncer::new(),
        }
        .with_stable_ticks(config.stable_ticks);
        Self {
            dir: config.dir.clone(),
            interval: config.interval,
            limits: config.limits,
            read_timeout: config.read_timeout,
            backoff: config.backoff,
            debouncer,
            faults: BTreeMap::new(),
            failing_ticks: 0,
        }
    }

    /// One whole tick by hand: scans through `fs` and ingests the result at `now`.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn tick(&mut self, fs: &dyn FileSystem, now: Instant) -> Vec<WatchEvent> {
        let result = scan(fs, &self.dir, self.limits);
        self.ingest(result, Duration::ZERO, now)
    }

    /// Ingests one scan that took `took`, at `now`: reports new faults once, recoveries once, and
    /// feeds the debouncer. A scan that could not read the directory or some file holds emission back
    /// (the last emitted state stays) and makes the next tick wait for the [`Backoff`].
    pub fn ingest(&mut self, result: Result<Observation, ScanError>, took: Duration, now: Instant) -> Vec<WatchEvent> {
        let mut current = BTreeMap::new();
        if took > self.read_timeout {
            current.insert(self.timeout_key(), (PollErrorKind::Timeout, self.timeout_message(took)));
        }
        let observation = match result {
            Err(e) => {
                let key = FaultKey { path: e.dir.clone(), timeout: false };
                current.insert(key, (e.kind(), format!("{e}: {}", e.source)));
                None
            }
            Ok(observation) => {
                for (name, file) in observation.files() {
                    // A file read whole costs nothing here: the path is built for a fault only.
                    let fault = match file {
                        FileObservation::Read { .. } | FileObservation::NotRegular { .. } => continue,
                        FileObservation::Unreadable { kind, io_kind, os_code } => {
                            let cause = os_code.map_or_else(|| io::Error::from(*io_kind), io::Error::from_raw_os_error);
                            (*kind, format!("cannot read {}: {cause}", self.dir.join(name).display()))
                        }
                        FileObservation::TooLarge { size, limit, .. } => (
                            PollErrorKind::TooLarge,
                            format!(
                                "{} is {size} bytes, over the {limit}-byte cap; not read",
                                self.dir.join(name).display()
                            ),
                        ),
                    };
                    let path = self.dir.join(name);
                    current.insert(FaultKey { path, timeout: false }, fault);
                }
                Some(observation)
            }
        };
        let mut events = self.update_faults(current);
        match observation {
            Some(observation) if !observation.has_faults() => {
                self.failing_ticks = 0;
                let stable = self.debouncer.observe(observation, now);
                events.extend(self.debouncer.take_settling().map(WatchEvent::Settling));
                events.extend(stable.map(WatchEvent::Changed));
            }
            _ => {
                self.failing_ticks = self.failing_ticks.saturating_add(1);
                self.debouncer.interrupt(now);
            }
        }
        events
    }

    /// Records that the scan started at `started` has not finished by `now`: reported once as
    /// [`PollErrorKind::Timeout`]. The scan's result, when it comes, is still ingested.
    pub fn scan_timed_out(&mut self, started: Instant, now: Instant) -> Vec<WatchEvent> {
        let key = self.timeout_key();
        if self.faults.contains_key(&key) {
            return Vec::new();
        }
        let message = self.timeout_message(now.saturating_duration_since(started));
        self.faults.insert(key.clone(), PollErrorKind::Timeout);
        vec![report(PollErrorKind::Timeout, key.path, message)]
    }

    /// How long to wait before the next tick: the interval, or the backoff while faulted.
    pub fn next_delay(&self) -> Duration {
        if self.failing_ticks == 0 {
            self.interval
        } else {
            self.backoff.delay(self.failing_ticks).max(self.interval)
        }
    }

    /// Whether no fault is present now (the last scan read the directory and every file within
    /// the read timeout).
    pub fn is_clean(&self) -> bool {
        self.faults.is_empty()
    }

    /// The last emitted (or baseline) state.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn emitted(&self) -> Option<&Observation> {
        self.debouncer.emitted()
    }

    fn timeout_key(&self) -> FaultKey {
        FaultKey { path: self.dir.clone(), timeout: true }
    }

    fn timeout_message(&self, took: Duration) -> String {
        timeout_message(&self.dir, self.read_timeout, took)
    }

    fn update_faults(&mut self, current: BTreeMap<FaultKey, (PollErrorKind, String)>) -> Vec<WatchEvent> {
        let mut events = Vec::new();
        for (key, kind) in &self.faults {
            if !current.contains_key(key) {
                tracing::info!(event = "poll.recovered", kind = kind.as_str(), path = %key.path.display(), "the fault cleared");
                events.push(WatchEvent::Recovered { path: Some(key.path.clone()), kind: *kind });
            }
        }
        let mut faults = BTreeMap::new();
        for (key, (kind, message)) in current {
            if self.faults.get(&key) != Some(&kind) {
                events.push(report(kind, key.path.clone(), message));
            }
            faults.insert(key, kind);
        }
        self.faults = faults;
        events
    }
}

fn timeout_message(dir: &Path, read_timeout: Duration, took: Duration) -> String {
    format!(
        "scan of {} has taken {took:?}, over the {read_timeout:?} read timeout (a hung read, e.g. an NFS hard mount?)",
        dir.display()
    )
}

fn report(kind: PollErrorKind, path: PathBuf, message: String) -> WatchEvent {
    tracing::warn!(event = "poll.error", kind = kind.as_str(), path = %path.display(), "{message}");
    WatchEvent::PollError { kind, path: Some(path), message }
}

/// Starts pollers.
#[derive(Debug)]
pub struct Poller;

impl Poller {
    /// Starts polling `config.dir()` on the real filesystem on a thread named `hotconf-poller`, sending
    /// every [`WatchEvent`] to `events`. The first tick runs at once. The poller stops when the
    /// returned handle is dropped, or when `events`' receiver is gone.
    pub fn spawn(config: PollerConfig, events: Sender<WatchEvent>) -> Result<PollerHandle, WatchError> {
        Self::spawn_with(config, RealFs, events)
    }

    /// [`Poller::spawn`] over any [`FileSystem`], e.g. a `FakeFs` in tests.
    pub fn spawn_with<F: FileSystem>(
        config: PollerConfig,
        fs: F,
        events: Sender<WatchEvent>,
    ) -> Result<PollerHandle, WatchError> {
        config.check()?;
        let scan_clock = ScanClock { origin: SystemClock.now(), started: Arc::new(AtomicU64::new(IDLE)) };
        let (watchdog_stop, stop) = crossbeam_channel::bounded::<()>(0);
        let watchdog = Watchdog {
            scans: scan_clock.clone(),
            stop,
            events: events.clone(),
            listener: config.listener.clone(),
            dir: config.dir.clone(),
            read_timeout: config.read_timeout,
        };
        let watchdog = thread::Builder::new()
            .name(WATCHDOG_THREAD.into())
            .spawn(move || watchdog.run())
            .map_err(|source| WatchError::Spawn { thread: WATCHDOG_THREAD, source })?;
        let read_timeout = config.read_timeout;
        let health = PollerHealth {
            heartbeat: Heartbeat::new(SystemClock.now(), stall_allowance(config.interval)),
            last_clean_scan: Arc::new(AtomicU64::new(0)),
        };
        let (inbox, commands) = crossbeam_channel::unbounded();
        let shell = Shell {
            core: PollCore::new(&config),
            fs,
            config,
            commands,
            events,
            scans: scan_clock.clone(),
            health: health.clone(),
        };
        let thread = thread::Builder::new()
            .name(POLLER_THREAD.into())
            .spawn(move || shell.run())
            .map_err(|source| WatchError::Spawn { thread: POLLER_THREAD, source })?;
        Ok(PollerHandle {
            inbox: Some(Inbox::new(inbox, thread.thread())),
            thread: Some(thread),
            watchdog_stop: Some(watchdog_stop),
            watchdog: Some(watchdog),
            scans: scan_clock,
            read_timeout,
            health,
        })
    }
}

/// How long the poller may take to come round its loop again after a tick that plans to wait
/// `delay` (the interval, or the backoff while faulted): three of them, at least
/// [`MIN_ALLOWANCE`](crate::heartbeat::MIN_ALLOWANCE). A scan blocked in a read past it (a hung
/// NFS mount) is a stall.
fn stall_allowance(delay: Duration) -> Duration {
    delay.saturating_mul(3).max(crate::heartbeat::MIN_ALLOWANCE)
}

/// What the poller thread shares with its readers: its heartbeat, and when a scan last read
/// everything with no fault.
#[derive(Debug, Clone)]
pub(crate) struct PollerHealth {
    pub(crate) heartbeat: Heartbeat,
    /// Milliseconds since the Unix epoch of the last scan with no fault; 0 before the first.
    last_clean_scan: Arc<AtomicU64>,
}

impl PollerHealth {
    /// When a scan last read the directory and every file with no fault.
    pub(crate) fn last_clean_scan(&self) -> Option<SystemTime> {
        match self.last_clean_scan.load(Ordering::Relaxed) {
            0 => None,
            millis => Some(UNIX_EPOCH + Duration::from_millis(millis)),
        }
    }
}
const POLLER_THREAD: &str = "hotconf-poller";
const WATCHDOG_THREAD: &str = "hotconf-watchdog";

/// `ScanClock::started` when no scan is running.
const IDLE: u64 = 0;
/// Set in `ScanClock::started` once the watchdog has reported the running scan.
const REPORTED: u64 = 1 << 63;

/// When the scan under way started, shared by the poller thread (which sets and clears it around
/// each scan) and the watchdog (which reads it, and marks it reported). One atomic word, no lock, no
/// system call: the poller thread wakes once a tick and nothing else does.
#[derive(Debug, Clone)]
struct ScanClock {
    origin: Instant,
    /// Nanoseconds from `origin` to the scan's start, plus one; [`IDLE`] when none runs.
    started: Arc<AtomicU64>,
}

impl ScanClock {
    fn start(&self, at: Instant) {
        let nanos = u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(REPORTED - 2);
        self.started.store((nanos + 1) & !REPORTED, Ordering::SeqCst);
    }

    /// Ends the scan; whether the watchdog reported it.
    fn finish(&self) -> bool {
        self.started.swap(IDLE, Ordering::SeqCst) & REPORTED != 0
    }

    /// The scan under way, unreported, if it has run longer than `limit` at `now`: marks it reported.
    fn overdue(&self, now: Instant, limit: Duration) -> Option<Instant> {
        let value = self.started.load(Ordering::SeqCst);
        if value == IDLE || value & REPORTED != 0 {
            return None;
        }
        let started = self.origin + Duration::from_nanos(value - 1);
        let overdue = now.saturating_duration_since(started) > limit;
        let marked = overdue
            && self.started.compare_exchange(value, value | REPORTED, Ordering::SeqCst, Ordering::SeqCst).is_ok();
        marked.then_some(started)
    }

    /// How long the scan under way has run, if one is.
    fn running_for(&self, now: Instant) -> Option<Duration> {
        let value = self.started.load(Ordering::SeqCst) & !REPORTED;
        (value != IDLE).then(|| now.saturating_duration_since(self.origin + Duration::from_nanos(value - 1)))
    }
}

/// The messages a [`PollerHandle`] sends its thread.
enum Command {
    /// Tick now; signal `done` once that tick's events have been sent.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    PollNow { done: Option<Sender<()>> },
}

/// Owns the poller thread and its watchdog. Dropping it stops both and joins them.
#[derive(Debug)]
pub struct PollerHandle {
    inbox: Option<Inbox<Command>>,
    thread: Option<JoinHandle<()>>,
    watchdog_stop: Option<Sender<()>>,
    watchdog: Option<JoinHandle<()>>,
    scans: ScanClock,
    read_timeout: Duration,
    health: PollerHealth,
}

impl PollerHandle {
    /// The poller's heartbeat and last clean scan.
    pub(crate) fn health(&self) -> &PollerHealth {
        &self.health
    }

    /// Forces a tick now (e.g. on SIGHUP), without waiting for it.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn poll_now(&self) {
        if let Some(inbox) = &self.inbox {
            let _ = inbox.send(Command::PollNow { done: None });
        }
    }

    /// Forces a tick and waits until it has been ingested, so that every event it caused has been
    /// sent. Returns `false` if that did not happen within `timeout` (or the poller has stopped).
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn poll_now_and_wait(&self, timeout: Duration) -> bool {
        let Some(inbox) = &self.inbox else { return false };
        let (done, finished) = crossbeam_channel::bounded(1);
        inbox.send(Command::PollNow { done: Some(done) }).is_ok() && finished.recv_timeout(timeout).is_ok()
    }
}

impl Drop for PollerHandle {
    fn drop(&mut self) {
        drop(self.inbox.take());
        drop(self.watchdog_stop.take());
        if let Some(watchdog) = self.watchdog.take() {
            let _ = watchdog.join();
        }
        let Some(thread) = self.thread.take() else { return };
        if self.scans.running_for(SystemClock.now()).is_some_and(|d| d > self.read_timeout) {
            // Blocked in a read the kernel will not give back (an NFS hard mount): joining would hang
            // the caller as long. The thread ends by itself when the read returns and finds its inbox
            // closed.
            tracing::warn!(event = "poll.detached", "the poller is blocked in a read; not waiting for it");
        } else if thread.join().is_err() {
            tracing::error!(event = "poll.panicked", "the poller thread panicked");
        }
    }
}

/// The poller thread's loop: wait for the tick or a command, scan, call the core, send.
struct Shell<F> {
    core: PollCore,
    fs: F,
    config: PollerConfig,
    commands: Receiver<Command>,
    events: Sender<WatchEvent>,
    scans: ScanClock,
    health: PollerHealth,
}

impl<F: FileSystem> Shell<F> {
    fn run(mut self) {
        let clock = SystemClock;
        let mut next_tick = clock.now();
        loop {
            // One inbox and one deadline. Between ticks the thread parks (a futex wait; the
            // handle's `Inbox` wakes it for each command and when it is dropped) rather than
            // blocking in the channel's receive, which spins and yields the processor several times
            // before it sleeps: with a fleet of pollers on a busy machine those yields were most of
            // the idle cost.
            let done = match park::recv(&self.commands, Some(next_tick)) {
                Ok(Command::PollNow { done }) => done,
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let started = clock.now();
            self.scans.start(started);
            let result = panic::catch_unwind(AssertUnwindSafe(|| scan(&self.fs, &self.config.dir, self.config.limits)))
                .unwrap_or_else(|_| {
                    Err(ScanError { dir: self.config.dir.clone(), source: io::Error::other("the scan panicked") })
                });
            let reported = self.scans.finish();
            let now = clock.now();
            if reported {
                // The watchdog already sent the timeout report; record it so it is not sent twice.
                let _ = self.core.scan_timed_out(started, now);
            }
            let events = self.core.ingest(result, now.saturating_duration_since(started), now);
            let any = !events.is_empty();
            let sent = events.into_iter().all(|event| self.events.send(event).is_ok());
            if any {
                self.config.listener.ring();
            }
            if !sent {
                break;
            }
            if self.core.is_clean() {
                let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                self.health.last_clean_scan.store(millis.max(1), Ordering::Relaxed);
            }
            let delay = self.core.next_delay();
            self.health.heartbeat.beat(now, stall_allowance(delay));
            if let Some(done) = done {
                let _ = done.send(());
            }
            next_tick = now + delay;
        }
    }
}

/// Watches the poller thread's scans from outside, so a read blocked in the kernel is reported.
/// Wakes four times per read timeout; does no I/O.
struct Watchdog {
    scans: ScanClock,
    stop: Receiver<()>,
    events: Sender<WatchEvent>,
    listener: Doorbell,
    dir: PathBuf,
    read_timeout: Duration,
}

impl Watchdog {
    fn run(self) {
        let period = (self.read_timeout / 4).max(Duration::from_millis(1));
        while let Err(RecvTimeoutError::Timeout) = self.stop.recv_timeout(period) {
            let now = SystemClock.now();
            if let Some(started) = self.scans.overdue(now, self.read_timeout) {
                let message = timeout_message(&self.dir, self.read_timeout, now.saturating_duration_since(started));
                let sent = self.events.send(report(PollErrorKind::Timeout, self.dir.clone(), message)).is_ok();
                self.listener.ring();
                if !sent {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::clock::FakeClock;
    use crate::watch::scan::FakeFs;

    const TICK: Duration = DEFAULT_INTERVAL;

    /// Drives a core by hand; each tick's events as short strings.
    struct Harness {
        fs: FakeFs,
        clock: FakeClock,
        core: PollCore,
    }

    impl Harness {
        fn new(files: &[(&str, &str)]) -> Self {
            let fs = FakeFs::new();
            for (name, content) in files {
                fs.write(name, *content);
            }
            let baseline = scan(&fs, Path::new("/cfg"), SourcesLimits::default()).unwrap().to_sources();
            let config =
                PollerConfig::new("/cfg").with_baseline(baseline).with_limits(SourcesLimits { max_file_bytes: 16 });
            Self { fs, clock: FakeClock::new(), core: PollCore::new(&config) }
        }

        /// One tick's events but the offers to judge a change ahead (`a_change_is_offered_…`).
        fn tick(&mut self) -> Vec<String> {
            let events = self.core.tick(&self.fs, self.clock.now());
            self.clock.advance(self.core.next_delay());
            events.iter().filter(|e| !matches!(e, WatchEvent::Settling(_))).map(describe).collect()
        }

        /// Ticks `n` times and returns every event.
        fn ticks(&mut self, n: usize) -> Vec<String> {
            (0..n).flat_map(|_| self.tick()).collect()
        }
    }

    fn describe(event: &WatchEvent) -> String {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        match event {
            WatchEvent::Changed(set) => {
                let changes: Vec<String> = set.changes.iter().map(ToString::to_string).collect();
                format!("changed [{}]", changes.join(", "))
            }
            WatchEvent::PollError { kind, path: p, .. } => format!("error {kind} {}", path(p)),
            WatchEvent::Recovered { path: p, kind } => format!("recovered {kind} {}", path(p)),
            WatchEvent::Settling(sources) => format!("settling {}", sources.names().collect::<Vec<_>>().join(", ")),
        }
    }

    #[test]
    fn a_change_is_offered_to_be_judged_ahead_at_its_first_tick_only() {
        let mut h = Harness::new(&[("a.yaml", "a: 1")]);
        let raw = |h: &mut Harness| {
            let events = h.core.tick(&h.fs, h.clock.now());
            h.clock.advance(h.core.next_delay());
            events
        };
        // The baseline's mtimes are learnt over two ticks (nothing to judge: the content is the same).
        for _ in 0..3 {
            assert!(raw(&mut h).is_empty());
        }
        h.fs.write("a.yaml", "a: 2");
        let first = raw(&mut h);
        let [WatchEvent::Settling(sources)] = first.as_slice() else { panic!("{first:?}") };
        assert_eq!(sources.get("a.yaml").unwrap().bytes(), Some(&b"a: 2"[..]));
        assert_eq!(raw(&mut h).iter().map(describe).collect::<Vec<_>>(), ["changed [a.yaml modified]"]);
        assert!(raw(&mut h).is_empty());
    }

    #[test]
    fn baseline_then_one_change() {
        let mut h = Harness::new(&[("a.yaml", "a: 1")]);
        assert_eq!(h.ticks(3), Vec::<String>::new());
        h.fs.write("a.yaml", "a: 2");
        assert_eq!(h.ticks(4), ["changed [a.yaml modified]"]);
    }

    #[test]
    fn unreadable_file_is_reported_once_holds_emission_and_recovers() {
        let mut h = Harness::new(&[("a.yaml", "a: 1"), ("b.yaml", "b: 1")]);
        h.fs.fail("a.yaml", libc::EACCES);
        h.fs.write("b.yaml", "b: 2");
        assert_eq!(h.ticks(10), ["error unreadable /cfg/a.yaml"]);
        assert_eq!(h.core.next_delay(), Backoff::default().max, "backs off while faulted");
        assert!(h.core.emitted().unwrap().get("b.yaml").unwrap().same_content(&FileObservation::read("b: 1", None)));
        h.fs.write("a.yaml", "a: 1");
        assert_eq!(h.ticks(3), ["recovered unreadable /cfg/a.yaml", "changed [b.yaml modified]"]);
        assert_eq!(h.core.next_delay(), TICK);
    }

    #[test]
    fn missing_dir_keeps_the_last_state() {
        let mut h = Harness::new(&[("a.yaml", "a: 1")]);
        h.fs.fail_dir(Some(libc::ENOENT));
        assert_eq!(h.ticks(20), ["error dir_missing /cfg"]);
        h.fs.fail_dir(None);
        assert_eq!(h.ticks(3), ["recovered dir_missing /cfg"]);
        // Back with other content: emitted once it is stable.
        h.fs.fail_dir(Some(libc::ESTALE));
        assert_eq!(h.ticks(2), ["error dir_missing /cfg"]);
        h.fs.write("a.yaml", "a: 9");
        h.fs.fail_dir(None);
        assert_eq!(h.ticks(3), ["recovered dir_missing /cfg", "changed [a.yaml modified]"]);
    }

    #[test]
    fn eio_and_estale_are_reported_with_their_kinds() {
        let mut h = Harness::new(&[("a.yaml", "a: 1")]);
        h.fs.fail("a.yaml", libc::EIO);
        assert_eq!(h.ticks(3), ["error io /cfg/a.yaml"]);
        h.fs.fail("a.yaml", libc::ESTALE);
        assert_eq!(h.ticks(3), ["error vanished /cfg/a.yaml"]);
        h.fs.remove("a.yaml");
        assert_eq!(h.ticks(3), ["recovered vanished /cfg/a.yaml", "changed [a.yaml deleted]"]);
    }

    #[test]
    fn too_large_file_is_reported_and_emitted_as_too_large() {
        let mut h = Harness::new(&[("a.yaml", "a: 1")]);
        h.fs.write("a.yaml", "x".repeat(17));
        assert_eq!(h.ticks(3), ["error too_large /cfg/a.yaml", "changed [a.yaml modified]"]);
        h.fs.write("a.yaml", "a: 1");
        assert_eq!(h.ticks(3), ["recovered too_large /cfg/a.yaml", "changed [a.yaml modified]"]);
    }

    #[test]
    fn timeout_is_reported_once_and_recovers() {
        let mut h = Harness::new(&[("a.yaml", "a: 1")]);
        let t = h.clock.now();
        let events = h.core.scan_timed_out(t, t + DEFAULT_READ_TIMEOUT);
        assert_eq!(events.iter().map(describe).collect::<Vec<_>>(), ["error timeout /cfg"]);
        assert!(h.core.scan_timed_out(t, t + 2 * DEFAULT_READ_TIMEOUT).is_empty());
        // The late result keeps the fault; a prompt one clears it.
        let late = scan(&h.fs, Path::new("/cfg"), SourcesLimits::default());
        assert!(h.core.ingest(late, 3 * DEFAULT_READ_TIMEOUT, t).is_empty());
        assert_eq!(h.tick(), ["recovered timeout /cfg"]);
    }

    #[test]
    fn touched_file_is_not_emitted() {
        let mut h = Harness::new(&[("a.yaml", "a: 1")]);
        h.fs.touch("a.yaml");
        assert_eq!(h.ticks(4), Vec::<String>::new());
    }

    #[test]
    fn no_baseline_emits_the_initial_state() {
        let fs = FakeFs::new();
        fs.write("a.yaml", "a: 1");
        let clock = FakeClock::new();
        let mut core = PollCore::new(&PollerConfig::new("/cfg"));
        assert!(core.tick(&fs, clock.now()).is_empty());
        let events = core.tick(&fs, clock.now());
        assert_eq!(events.iter().map(describe).collect::<Vec<_>>(), ["changed [a.yaml created]"]);
    }

    #[test]
    fn state_stays_flat_over_many_ticks() {
        let mut h = Harness::new(&[("a.yaml", "a: 1"), ("b.yaml", "b: 1")]);
        h.fs.fail("c.yaml", libc::EACCES);
        for i in 0..100_000u32 {
            if i % 1000 == 0 {
                h.fs.write("b.yaml", format!("b: {}", i % 3000));
            }
            if i == 50_000 {
                h.fs.write("c.yaml", "c: 1");
            }
            h.core.tick(&h.fs, h.clock.now());
            h.clock.advance(TICK);
        }
        assert!(h.core.faults.is_empty());
        assert_eq!(h.core.emitted().unwrap().len(), 3);
        assert!(!h.core.debouncer.is_pending());
    }

    #[test]
    fn zero_interval_is_refused() {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let err = Poller::spawn(PollerConfig::new("/cfg").with_interval(Duration::ZERO), tx).unwrap_err();
        assert!(matches!(err, WatchError::ZeroDuration { field: "interval" }));
    }
}
