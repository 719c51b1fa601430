//! The reloader's fault behaviour: a real `ReloaderHandle` with a one-file test schema and a sink
//! over a real `ComponentHandle`, change sets fed by hand through the watch channel, and outcomes
//! read from its status, the reports an observer tallies, the snapshot store and the audit log.
//! Every wait is for an event, with a deadline. (The binary's metrics and alerts, observers of
//! the same reports, are tested in `crates/hotconf-cli`.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{
    AttemptOutcome, ComponentStatus, Failure, FailureCause, Observer, ReloaderConfig, ReloaderHandle, Report,
    RetryBackoff, Status,
};
use crate::publish::{ApplyError, Component, ComponentHandle, Publication, Sink};
use crate::reload::validator::ValidateError;
use crate::snapshot::{AuditEvent, SnapshotStore, StoreConfig};
use crate::watch::classify::{FileChange, FileChangeKind};
use crate::watch::debounce::StableChangeSet;
use crate::watch::WatchEvent;
use crate::{Diagnostic, DiagnosticKind, Diagnostics, EnvLookup, MapEnv, Problem, Schema, SourceFile, Sources};

/// How long any awaited event may take. Generous: the machine is slow and shared.
const DEADLINE: Duration = Duration::from_secs(20);
/// The one file the test schema reads.
const FILE: &str = "app.yaml";
/// The test component's name.
const COMPONENT: &str = "echo";

/// The config is the text of `app.yaml`. Text starting with `panic` makes `validate` panic, `block`
/// makes it say so on `blocked` and wait for the gate, `bad` is rejected with one diagnostic.
struct TestSchema {
    gate: Receiver<()>,
    blocked: Sender<String>,
}

impl Schema for TestSchema {
    type Config = String;

    fn validate(&self, sources: &Sources, _env: &dyn EnvLookup) -> Result<String, Diagnostics> {
        let Some(bytes) = sources.get(FILE).and_then(SourceFile::bytes) else {
            return Err(Diagnostics::new(vec![Diagnostic::file(FILE, DiagnosticKind::MissingFile)]));
        };
        let text = String::from_utf8_lossy(bytes).into_owned();
        if text.starts_with("panic") {
            panic!("test schema bug on {text:?}");
        }
        if text.starts_with("block") {
            // Held until the test opens the gate (or drops it), as a read hung in the kernel is.
            let _ = self.blocked.send(text.clone());
            let _ = self.gate.recv();
        }
        if text.starts_with("bad") {
            return Err(Diagnostics::new(vec![Diagnostic::file(
                FILE,
                DiagnosticKind::Custom(Box::new(Problem::new("bad", "bad value"))),
            )
            .at_path("value")]));
        }
        Ok(text)
    }

    fn summary(&self, config: &String) -> String {
        config.clone()
    }
}

/// A component that acknowledges each version with its number; for a config starting with `hang`
/// it first waits for a token on the gate, so it does not answer in time; `explode` panics.
struct Echo {
    gate: Receiver<()>,
}

impl Component<String> for Echo {
    type Part = u64;

    fn name(&self) -> &'static str {
        COMPONENT
    }

    fn build(&mut self, publication: &Publication<String>) -> u64 {
        if publication.config().starts_with("hang") {
            let _ = self.gate.recv();
        }
        if publication.config().starts_with("explode") {
            panic!("test component bug");
        }
        publication.version()
    }
}

/// A sink over one real component thread: a version goes live only once it is acknowledged. A
/// config starting with `crash` makes the sink itself panic.
struct TestSink {
    echo: ComponentHandle<String, u64>,
    ack_timeout: Duration,
    live: Arc<ArcSwapOption<Publication<String>>>,
}

impl Sink<String> for TestSink {
    fn apply(&mut self, publication: Arc<Publication<String>>) -> Result<(), ApplyError> {
        let version = publication.version();
        if publication.config().starts_with("crash") {
            panic!("test sink bug");
        }
        let pending = self.echo.request(Arc::clone(&publication))?;
        pending.wait(Instant::now() + self.ack_timeout, self.ack_timeout)?;
        self.live.store(Some(publication));
        self.echo.mark_applied(version);
        Ok(())
    }

    fn applied_versions(&self) -> Vec<(&'static str, Option<u64>)> {
        vec![(self.echo.name(), self.echo.applied())]
    }
}

/// Tallies the reports as the binary's metrics count them: attempts by result, whether the last
/// one succeeded, stuck workers, and missing acknowledgements by component.
#[derive(Default)]
struct Tally {
    reloads: BTreeMap<&'static str, u64>,
    last_successful: bool,
    workers_stuck: usize,
    ack_timeouts: BTreeMap<&'static str, u64>,
}

/// The observer that keeps a [`Tally`] the test reads.
struct Tallying(Arc<Mutex<Tally>>);

impl Observer for Tallying {
    fn observe(&mut self, report: &Report<'_>) {
        let mut t = self.0.lock().unwrap();
        let attempt = match report {
            Report::Started(_) => {
                *t.reloads.entry("success").or_default() += 1;
                t.last_successful = true;
                return;
            }
            Report::WorkerFinished { workers_stuck } => {
                t.workers_stuck = *workers_stuck;
                return;
            }
            Report::Attempt(attempt) => attempt,
            _ => return,
        };
        t.workers_stuck = attempt.state.workers_stuck;
        if attempt.pin_refused {
            return;
        }
        let result = match &attempt.outcome {
            AttemptOutcome::Applied { .. } => "success",
            AttemptOutcome::Unchanged { .. } => {
                t.last_successful = true;
                return;
            }
            AttemptOutcome::Rejected { .. } => "rejected",
            AttemptOutcome::Failed { failure } => {
                if let (FailureCause::AckTimeout, Some(c)) = (failure.cause, failure.component) {
                    *t.ack_timeouts.entry(c).or_default() += 1;
                }
                "failed"
            }
            _ => return,
        };
        *t.reloads.entry(result).or_default() += 1;
        t.last_successful = result == "success";
    }
}

struct Options {
    reload_timeout: Duration,
    ack_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self { reload_timeout: Duration::from_secs(5), ack_timeout: Duration::from_secs(5) }
    }
}

/// A running reloader and everything a test looks at.
///
/// Field order is drop order: the gates go first, so a schema or component still waiting on one is
/// released before the reloader's `Drop` joins its threads, even when an assertion failed.
struct Harness {
    /// Releases a schema blocked on `block` (a rendezvous: a send returns once it was taken).
    schema_gate: Sender<()>,
    /// Tokens for a component building a `hang` config (one each).
    component_gate: Sender<()>,
    /// The text of each validation that blocked on the schema gate, as it blocks.
    blocked: Receiver<String>,
    /// Stable change sets, as the poller would send them.
    changes: Sender<WatchEvent>,
    reloader: ReloaderHandle,
    tally: Arc<Mutex<Tally>>,
    /// A second handle on the reloader's snapshot store, for reading.
    store: SnapshotStore,
    /// The publication the sink made live.
    live: Arc<ArcSwapOption<Publication<String>>>,
    config: tempfile::TempDir,
    _snapshots: tempfile::TempDir,
}

impl Harness {
    /// Starts a reloader on a directory holding `app.yaml` = `initial`.
    fn start(initial: &str, options: Options) -> Self {
        Self::start_with(initial, options, |c| c)
    }

    fn start_with(initial: &str, options: Options, config: impl FnOnce(ReloaderConfig) -> ReloaderConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), initial).unwrap();
        let snapshots = tempfile::tempdir().unwrap();
        let store_dir = snapshots.path().join("store");
        let (schema_gate, schema_gate_rx) = bounded(0);
        let (blocked_tx, blocked) = unbounded();
        let (component_gate, component_gate_rx) = bounded(1);
        let live = Arc::new(ArcSwapOption::empty());
        let sink = TestSink {
            echo: ComponentHandle::spawn(Echo { gate: component_gate_rx }).unwrap(),
            ack_timeout: options.ack_timeout,
            live: Arc::clone(&live),
        };
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (changes, watch) = unbounded();
        let (reloader, _sources) = ReloaderHandle::start(
            TestSchema { gate: schema_gate_rx, blocked: blocked_tx },
            sink,
            SnapshotStore::open(&store_dir, StoreConfig::default()).unwrap().into(),
            Arc::new(MapEnv::new()),
            config(ReloaderConfig::new(dir.path()).with_reload_timeout(options.reload_timeout)),
            vec![Box::new(Tallying(Arc::clone(&tally)))],
            watch,
        )
        .unwrap();
        let store = SnapshotStore::open(&store_dir, StoreConfig::default()).unwrap();
        Self {
            schema_gate,
            component_gate,
            blocked,
            changes,
            reloader,
            tally,
            store,
            live,
            config: dir,
            _snapshots: snapshots,
        }
    }

    /// Sends a change of `app.yaml` to `text` and waits for the status the attempt publishes.
    fn change(&self, text: &str) -> Arc<Status> {
        let before = self.reloader.status();
        self.send_change(text);
        // The reloader publishes one new last attempt per attempt, last: a new one means it ended.
        wait_until(|| before.last_attempt != self.reloader.status().last_attempt);
        self.reloader.status()
    }

    /// Sends a change of `app.yaml` to `text`, as the poller would, without waiting.
    fn send_change(&self, text: &str) {
        let now = Instant::now();
        let set = StableChangeSet {
            changes: vec![FileChange { name: FILE.to_owned(), kind: FileChangeKind::Modified }],
            sources: sources(text),
            first_seen: now,
            emitted_at: now,
        };
        self.send(WatchEvent::Changed(set));
    }

    /// Sends `event` as the poller would: then rings the reloader's doorbell.
    fn send(&self, event: WatchEvent) {
        self.changes.send(event).unwrap();
        self.reloader.doorbell().ring();
    }

    /// Waits for a validation of `text` to block on the schema gate.
    fn wait_blocked(&self, text: &str) {
        let got = self.blocked.recv_timeout(DEADLINE).expect("a validation blocked within the deadline");
        assert_eq!(got, text);
    }

    /// Releases one validation blocked on the schema gate.
    fn release_one(&self) {
        self.schema_gate.send_timeout((), DEADLINE).expect("a blocked schema takes the token");
    }

    /// Attempts with `result` (`success`, `rejected`, `failed`) so far, as the reports say.
    fn reloads(&self, result: &str) -> u64 {
        self.tally.lock().unwrap().reloads.get(result).copied().unwrap_or(0)
    }

    /// Whether the last attempt succeeded (or found the running content), as the reports say.
    fn last_successful(&self) -> bool {
        self.tally.lock().unwrap().last_successful
    }

    /// Stuck validator workers, as the last report said.
    fn workers_stuck(&self) -> usize {
        self.tally.lock().unwrap().workers_stuck
    }

    /// Versions `component` did not acknowledge in time, as the reports say.
    fn ack_timeouts(&self, component: &str) -> u64 {
        self.tally.lock().unwrap().ack_timeouts.get(component).copied().unwrap_or(0)
    }

    /// Starts a store outage: no write can take the store's lock while its lock file is a
    /// directory (root ignores modes).
    fn break_store(&self) {
        let lock = self.store.dir().join(".lock");
        std::fs::remove_file(&lock).unwrap();
        std::fs::create_dir(&lock).unwrap();
    }

    /// Ends the outage `break_store` started.
    fn mend_store(&self) {
        std::fs::remove_dir(self.store.dir().join(".lock")).unwrap();
    }

    /// The stored versions' numbers.
    fn versions(&self) -> Vec<u64> {
        self.store.list().unwrap().iter().map(|m| m.version).collect()
    }

    /// The last audit record's event.
    fn last_audit(&self) -> AuditEvent {
        self.store.audit().read_all().unwrap().pop().expect("an audit record").event
    }

    /// The version the sink made live.
    fn live_version(&self) -> u64 {
        self.live.load_full().expect("a live publication").version()
    }
}

fn sources(text: &str) -> Sources {
    Sources::from_files([SourceFile::new(FILE, text)])
}

/// Waits until `cond` holds, checking every few milliseconds; fails the test past the deadline.
fn wait_until(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "condition not met within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn outcome(status: &Status) -> &AttemptOutcome {
    &status.last_attempt.as_ref().expect("an attempt").outcome
}

fn failed_error(status: &Status) -> &str {
    match outcome(status) {
        AttemptOutcome::Failed { failure } => &failure.error,
        other => panic!("expected a failed attempt, got {other:?}"),
    }
}

fn applied(version: u64) -> AttemptOutcome {
    AttemptOutcome::Applied { version, files: vec![FILE.to_owned()] }
}

/// The failed audit record of an attempt on `text`.
fn assert_failed_audit(event: AuditEvent, text: &str, error: &str) {
    match event {
        AuditEvent::Failed { bundle_hash, files, error: recorded } => {
            assert_eq!(bundle_hash, Some(sources(text).bundle_hash().to_hex().to_string()));
            assert_eq!(files, [FILE]);
            assert_eq!(recorded, error);
        }
        other => panic!("expected a failed audit record, got {other:?}"),
    }
}

#[test]
fn a_panicking_schema_fails_the_attempt_and_the_next_good_change_applies() {
    let h = Harness::start("v: 1", Options::default());

    let status = h.change("panic now");
    let error = failed_error(&status).to_owned();
    assert!(error.starts_with("validation panicked: test schema bug"), "{error}");
    assert_eq!((status.running_version, status.failing), (1, true));
    assert_eq!(h.live_version(), 1);
    assert_eq!(h.versions(), [1]);
    assert_eq!(h.reloads("failed"), 1);
    assert!(!h.last_successful());
    assert_failed_audit(h.last_audit(), "panic now", &error);

    let status = h.change("v: 2");
    assert_eq!(*outcome(&status), applied(2));
    assert_eq!((status.running_version, status.failing), (2, false));
    assert_eq!(h.live_version(), 2);
    assert_eq!(h.store.running().unwrap(), Some(2));
    assert_eq!(h.reloads("success"), 2); // startup and v2
    assert_eq!(h.reloads("failed"), 1);
    assert!(h.last_successful());
}

#[test]
fn a_panic_while_publishing_fails_the_attempt_and_the_next_good_change_applies() {
    let h = Harness::start("v: 1", Options::default());

    let status = h.change("explode");
    let error = ApplyError::Panicked { component: COMPONENT, version: 2, message: "test component bug".into() };
    assert_eq!(failed_error(&status), error.to_string());
    assert_eq!((status.running_version, status.failing), (1, true));
    assert_eq!(h.live_version(), 1);

    let status = h.change("crash");
    let error = failed_error(&status).to_owned();
    assert!(error.contains("panicked") && error.contains("test sink bug"), "{error}");
    assert_eq!((status.running_version, status.failing), (1, true));
    assert_eq!(h.live_version(), 1);
    assert_eq!(h.store.running().unwrap(), Some(1));
    assert_failed_audit(h.last_audit(), "crash", &error);
    assert_eq!(h.reloads("failed"), 2);

    // The reloader thread survived: the next change applies (versions 2 and 3 were stored, never ran).
    let status = h.change("v: 4");
    assert_eq!(*outcome(&status), applied(4));
    assert_eq!((status.running_version, status.failing), (4, false));
    assert_eq!(h.live_version(), 4);
    assert_eq!(h.store.running().unwrap(), Some(4));
}

/// Retries far apart enough that none happens during a test that is not about them.
const NO_RETRY: RetryBackoff = RetryBackoff { initial: Duration::from_secs(3600), max: Duration::from_secs(3600) };

#[test]
fn validation_past_the_reload_timeout_is_abandoned_and_the_next_change_gets_a_fresh_worker() {
    let timeout = Duration::from_millis(200);
    let h = Harness::start_with("v: 1", Options { reload_timeout: timeout, ..Options::default() }, |c| {
        c.with_retry_backoff(NO_RETRY)
    });

    let status = h.change("block");
    let error = ValidateError::Timeout(timeout).to_string();
    assert_eq!(failed_error(&status), error);
    assert_eq!((status.running_version, status.failing, status.workers_stuck), (1, true, 1));
    assert_eq!(h.workers_stuck(), 1);
    assert_eq!(h.live_version(), 1);
    assert_eq!(h.versions(), [1]);
    assert_failed_audit(h.last_audit(), "block", &error);

    // The worker is still stuck in the abandoned attempt; the next change set gets a fresh one.
    let status = h.change("v: 2");
    assert_eq!(*outcome(&status), applied(2));
    assert_eq!((status.running_version, status.failing, status.workers_stuck), (2, false, 1));
    assert_eq!(h.live_version(), 2);

    // Once the stuck validation returns, its worker ends and is no longer counted.
    h.release_one();
    wait_until(|| h.reloader.status().workers_stuck == 0);
    assert_eq!(h.workers_stuck(), 0);
    assert_eq!(*outcome(&h.reloader.status()), applied(2), "a finished worker is not an attempt");
    assert_eq!(h.reloads("failed"), 1);
}

#[test]
fn a_manual_reload_and_a_pin_while_attempts_are_stuck_answer_within_the_reload_timeout() {
    let timeout = Duration::from_millis(200);
    let h = Harness::start_with("v: 1", Options { reload_timeout: timeout, ..Options::default() }, |c| {
        c.with_retry_backoff(NO_RETRY)
    });
    assert_eq!(*outcome(&h.change("v: 2")), applied(2));
    h.change("block 1");
    h.wait_blocked("block 1");

    // A manual reload reads the directory on a fresh worker; its validation blocks too.
    std::fs::write(h.config.path().join(FILE), "block 2").unwrap();
    let started = Instant::now();
    let answer = h.reloader.reload(DEADLINE).expect("the reload answers");
    assert_eq!(
        answer,
        AttemptOutcome::Failed {
            failure: Failure::new(FailureCause::Timeout, ValidateError::Timeout(timeout).to_string())
        }
    );
    assert!(started.elapsed() < DEADLINE);
    h.wait_blocked("block 2");
    assert_eq!(h.reloader.status().workers_stuck, 2);

    // A pin validates version 1 on a third, fresh worker and applies it.
    let answer = h.reloader.pin(1, DEADLINE).expect("the pin answers");
    assert_eq!(answer, applied(3));
    let status = h.reloader.status();
    assert_eq!((status.running_version, status.pinned, status.workers_stuck), (3, Some(1), 2));
    assert_eq!(h.live.load_full().unwrap().config().as_str(), "v: 1");

    h.release_one();
    h.release_one();
    wait_until(|| h.reloader.status().workers_stuck == 0);
    assert_eq!(h.workers_stuck(), 0);
    // The pin replaced the pending retry of the reload: version 3 stays live.
    assert_eq!(h.reloader.status().running_version, 3);
}

#[test]
fn past_the_cap_of_stuck_workers_attempts_fail_until_one_finishes_then_the_pending_change_applies() {
    let timeout = Duration::from_millis(100);
    let h = Harness::start_with("v: 1", Options { reload_timeout: timeout, ..Options::default() }, |c| {
        c.with_max_stuck_workers(2).with_retry_backoff(NO_RETRY)
    });
    for text in ["block 1", "block 2"] {
        h.change(text);
        h.wait_blocked(text);
    }

    let status = h.change("v: 2");
    let error = ValidateError::Stuck { stuck: 2, limit: 2 }.to_string();
    assert_eq!(failed_error(&status), error);
    assert!(error.starts_with("2 validator workers are still stuck in abandoned attempts (the limit is 2)"), "{error}");
    assert_eq!((status.running_version, status.failing, status.workers_stuck), (1, true, 2));
    assert_eq!(h.workers_stuck(), 2);
    assert_eq!(serde_json::to_value(&*status).unwrap()["workers_stuck"], 2, "/status shows the count");

    // One stuck validation returns: its worker ends, and the pending change is retried at once
    // (the next retry by the clock is an hour away).
    h.release_one();
    wait_until(|| h.reloader.status().running_version == 2);
    let status = h.reloader.status();
    assert_eq!(*outcome(&status), applied(2));
    assert_eq!((status.failing, status.workers_stuck), (false, 1));
    assert_eq!(h.live_version(), 2);

    h.release_one();
    wait_until(|| h.reloader.status().workers_stuck == 0);
    assert_eq!(h.workers_stuck(), 0);
}

#[test]
fn dropping_the_reloader_while_a_worker_is_stuck_returns_within_a_bound() {
    // A worker set aside in an abandoned attempt, and the reloader thread itself mid-attempt (its
    // reload timeout is an hour): neither is waited for past the shutdown timeout.
    let h = Harness::start_with(
        "v: 1",
        Options { reload_timeout: Duration::from_millis(100), ..Options::default() },
        |c| c.with_retry_backoff(NO_RETRY).with_shutdown_timeout(Duration::from_millis(300)),
    );
    h.change("block 1");
    h.wait_blocked("block 1");
    let Harness { reloader, schema_gate, .. } = h;
    drop_within_bound(reloader);

    let long =
        Harness::start_with("v: 1", Options { reload_timeout: Duration::from_secs(3600), ..Options::default() }, |c| {
            c.with_shutdown_timeout(Duration::from_millis(300))
        });
    long.send_change("block 2");
    long.wait_blocked("block 2");
    let Harness { reloader, schema_gate: long_gate, .. } = long;
    drop_within_bound(reloader);

    // Let the stuck validations return, so their threads end with the test.
    drop((schema_gate, long_gate));
}

/// Drops `reloader` on another thread and fails the test unless that returns within 3 s.
fn drop_within_bound(reloader: ReloaderHandle) {
    let (done, dropped) = bounded(1);
    let started = Instant::now();
    std::thread::spawn(move || {
        drop(reloader);
        let _ = done.send(());
    });
    dropped.recv_timeout(Duration::from_secs(3)).expect("dropping the reloader returns within 3 s");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_component_that_never_acknowledges_fails_the_attempt_and_keeps_the_old_version_live() {
    let ack_timeout = Duration::from_millis(200);
    let h = Harness::start("v: 1", Options { ack_timeout, ..Options::default() });

    let status = h.change("hang");
    let error = ApplyError::AckTimeout { component: COMPONENT, version: 2, timeout: ack_timeout }.to_string();
    assert_eq!(failed_error(&status), error);
    assert_eq!((status.running_version, status.failing), (1, true));
    let echo_at = |v| vec![ComponentStatus { name: COMPONENT, applied_version: Some(v) }];
    assert_eq!(status.components, echo_at(1), "status must not claim version 2 applied");
    assert_eq!(h.live_version(), 1);
    assert_eq!(h.store.running().unwrap(), Some(1));
    // The bundle was stored (as version 2) before it was published; it never ran.
    assert_eq!(h.versions(), [1, 2]);
    assert_failed_audit(h.last_audit(), "hang", &error);
    assert_eq!(h.ack_timeouts(COMPONENT), 1);
    assert_eq!(h.reloads("failed"), 1);

    // One token finishes the stale build, one lets the retry of the same content answer in time.
    for _ in 0..2 {
        h.component_gate.send_timeout((), DEADLINE).unwrap();
    }
    let status = h.change("hang");
    // The store holds that content already: it is applied as version 2, no new version is made.
    assert_eq!(*outcome(&status), applied(2));
    assert_eq!(status.components, echo_at(2));
    assert_eq!((status.running_version, status.failing), (2, false));
    assert_eq!(h.versions(), [1, 2]);
    assert_eq!(h.store.running().unwrap(), Some(2));
    assert_eq!(h.live_version(), 2);

    let status = h.change("v: 3");
    assert_eq!(*outcome(&status), applied(3));
    assert_eq!(status.components, echo_at(3));
    assert_eq!(h.ack_timeouts(COMPONENT), 1);
}

#[test]
fn a_manual_reload_of_a_missing_directory_fails_and_is_retried_until_the_directory_is_back() {
    let backoff = Duration::from_millis(20);
    let retry = RetryBackoff { initial: Duration::from_millis(30), max: Duration::from_millis(60) };
    let h = Harness::start_with("v: 1", Options::default(), |c| {
        c.with_read_attempts(3).with_read_backoff(backoff).with_retry_backoff(retry)
    });
    let dir = h.config.path().to_owned();
    let away = PathBuf::from(format!("{}.away", dir.display()));
    std::fs::rename(&dir, &away).unwrap();

    let started = Instant::now();
    let answer = h.reloader.reload(DEADLINE).expect("an outcome in time");
    // Three reads, with the backoff between them (20 ms, then 40 ms).
    assert!(started.elapsed() >= backoff * 3, "gave up after {:?}", started.elapsed());
    let AttemptOutcome::Failed { failure } = answer else { panic!("expected failed, got {answer:?}") };
    assert_eq!(failure.cause, FailureCause::Read);
    let error = failure.error;
    assert!(error.starts_with(&format!("cannot read config directory {}: ", dir.display())), "{error}");
    let status = h.reloader.status();
    assert_eq!((status.running_version, status.failing), (1, true));
    assert_eq!(h.live_version(), 1);
    match h.last_audit() {
        AuditEvent::Failed { bundle_hash: None, files, error: recorded } => {
            assert!(files.is_empty());
            assert_eq!(recorded, error);
        }
        other => panic!("expected a failed audit record without content, got {other:?}"),
    }

    // The reload is tried again and again (well past the old four retries) while it cannot read.
    wait_until(|| h.reloads("failed") >= 8);
    assert_eq!(h.reloader.status().running_version, 1);

    // The directory is back with new content: applied with no further reload asked for.
    restore(&away, &dir, "v: 2");
    wait_until(|| h.reloader.status().running_version == 2);
    let status = h.reloader.status();
    assert_eq!(status.last_attempt.as_ref().unwrap().trigger, super::Trigger::Manual);
    assert_eq!(*outcome(&status), applied(2));
    assert!(!status.failing);
    assert_eq!(h.live_version(), 2);
}

#[test]
fn a_store_outage_is_retried_with_capped_backoff_until_the_pending_change_applies() {
    let retry = RetryBackoff { initial: Duration::from_millis(10), max: Duration::from_millis(40) };
    let h = Harness::start_with("v: 1", Options::default(), |c| c.with_retry_backoff(retry));
    h.break_store();

    let status = h.change("v: 2");
    let error = failed_error(&status).to_owned();
    assert!(error.starts_with("snapshot store: "), "{error}");
    // The old schedule gave up after five attempts; this one goes on while the change is pending.
    wait_until(|| h.reloads("failed") >= 12);
    let status = h.reloader.status();
    assert_eq!((status.running_version, status.failing), (1, true));
    assert_eq!(h.live_version(), 1);

    h.mend_store();
    wait_until(|| h.reloader.status().running_version == 2);
    let status = h.reloader.status();
    assert_eq!(*outcome(&status), applied(2));
    assert!(!status.failing);
    assert_eq!(h.live_version(), 2);
    assert_eq!(h.versions(), [1, 2]);
}

#[test]
fn a_newer_change_set_replaces_a_pending_retry_and_a_revert_ends_it() {
    let retry = RetryBackoff { initial: Duration::from_millis(10), max: Duration::from_millis(40) };
    let h = Harness::start_with("v: 1", Options::default(), |c| c.with_retry_backoff(retry));
    h.break_store();
    failed_error(&h.change("v: 2"));
    // (A retry of v: 2 may end first: each change waits only for the next attempt to end.)
    h.send_change("v: 3");
    // Reverting to the running content ends the retries: nothing is pending any more.
    h.send_change("v: 1");
    wait_until(|| *outcome(&h.reloader.status()) == AttemptOutcome::Unchanged { version: 1 });
    let failed = h.reloads("failed");
    h.mend_store();
    // A later change applies as version 2: neither v: 2 nor v: 3 was retried in between.
    assert_eq!(*outcome(&h.change("v: 4")), applied(2));
    assert_eq!(h.reloads("failed"), failed);
    assert_eq!(h.live.load_full().unwrap().config().as_str(), "v: 4");
}

/// Moves the config directory back and writes `app.yaml` = `text` in it.
fn restore(away: &Path, dir: &Path, text: &str) {
    std::fs::rename(away, dir).unwrap();
    std::fs::write(dir.join(FILE), text).unwrap();
}

#[test]
fn the_same_content_twice_makes_no_new_version() {
    let h = Harness::start("v: 1", Options::default());

    let status = h.change("v: 1");
    assert_eq!(*outcome(&status), AttemptOutcome::Unchanged { version: 1 });
    assert_eq!(h.versions(), [1]);

    assert_eq!(*outcome(&h.change("v: 2")), applied(2));
    assert_eq!(*outcome(&h.change("v: 2")), AttemptOutcome::Unchanged { version: 2 });
    std::fs::write(h.config.path().join(FILE), "v: 2").unwrap();
    assert_eq!(h.reloader.reload(DEADLINE), Some(AttemptOutcome::Unchanged { version: 2 }));
    assert_eq!(h.versions(), [1, 2]);
    assert_eq!(h.store.running().unwrap(), Some(2));
    let accepted = h.store.audit().read_all().unwrap();
    let accepted = accepted.iter().filter(|r| matches!(r.event, AuditEvent::Accepted { .. })).count();
    assert_eq!(accepted, 2);
    // Only the startup and v2 count as reloads; the repeats did nothing.
    assert_eq!(h.reloads("success"), 2);
    assert_eq!(h.live_version(), 2);
}

#[test]
fn a_change_set_that_failed_for_a_transient_reason_is_retried_without_another_edit() {
    let ack_timeout = Duration::from_millis(200);
    let h = Harness::start("v: 1", Options { ack_timeout, ..Options::default() });
    let status = h.change("hang");
    assert_eq!((status.running_version, status.failing), (1, true));
    // The component recovers (one token for the stale build, one for the retry); nobody edits the
    // file again, and the poller would not send the same content twice: the reloader retries it.
    for _ in 0..2 {
        h.component_gate.send_timeout((), DEADLINE).unwrap();
    }
    wait_until(|| h.reloader.status().running_version == 2);
    let status = h.reloader.status();
    assert_eq!(*outcome(&status), applied(2));
    assert!(!status.failing);
    assert_eq!(h.live_version(), 2);
    assert_eq!(h.reloads("failed"), 1);
    assert_eq!(h.reloads("success"), 2);
}

#[test]
fn a_pin_that_fails_leaves_the_pending_change_to_its_retries() {
    let retry = RetryBackoff { initial: Duration::from_millis(10), max: Duration::from_millis(40) };
    let h = Harness::start_with("v: 1", Options::default(), |c| c.with_retry_backoff(retry));
    h.break_store();
    failed_error(&h.change("v: 2"));

    // The pin cannot be stored either: it fails, and the edit it did not replace stays pending.
    let answer = h.reloader.pin(1, DEADLINE).expect("the pin answers");
    assert!(
        matches!(&answer, AttemptOutcome::Failed { failure } if failure.cause == FailureCause::Store && failure.error.starts_with("snapshot store: ")),
        "{answer:?}"
    );
    h.mend_store();
    wait_until(|| h.reloader.status().running_version == 2);
    assert_eq!(h.live.load_full().unwrap().config().as_str(), "v: 2");
    assert_eq!(h.reloader.status().pinned, None);
}

/// A change judged while it settled is not judged again when it is stable: one validation, and
/// one report, at the stable tick (a rejection included). Other content is judged anew.
#[test]
fn a_change_judged_while_it_settled_is_applied_without_a_second_validation() {
    let h = Harness::start("v1", Options::default());
    h.send(WatchEvent::Settling(sources("block v2")));
    h.wait_blocked("block v2");
    h.release_one();
    let status = h.change("block v2");
    assert_eq!(outcome(&status), &applied(2));
    assert!(h.blocked.try_recv().is_err(), "validated again at the stable tick");
    // The start and this change.
    assert_eq!(h.reloads("success"), 2);
    // A rejected one is reported once, by the stable attempt.
    h.send(WatchEvent::Settling(sources("bad v3")));
    let status = h.change("bad v3");
    assert!(matches!(outcome(&status), AttemptOutcome::Rejected { .. }), "{status:?}");
    assert_eq!(h.reloads("rejected"), 1);
    // What settled was other content: the stable change is judged now (and blocks on the gate).
    h.send(WatchEvent::Settling(sources("block v4")));
    h.wait_blocked("block v4");
    h.release_one();
    h.send_change("block v5");
    h.wait_blocked("block v5");
    h.release_one();
    wait_until(|| h.reloader.status().running_version == 3);
    assert_eq!(h.live_version(), 3);
}
