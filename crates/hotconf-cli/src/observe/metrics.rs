//! Reload metrics, rendered in the Prometheus text format: an [`Observer`] of the reloader's
//! reports. Counters and gauges are atomics; the few labelled families take a short lock on the
//! reload path, never on a request's path.
//!
//! Every family has its samples from the start (a zero for each known label value), label values
//! are escaped per the exposition format, and the names' prefix is the caller's choice
//! ([`Metrics::render_with_prefix`], [`Metrics::render_into`]), so the families can join a
//! service's own exposition under its namespace. The encoder is hand-written rather than
//! `prometheus-client`'s: a dozen families of atomics, and the text it appends works with any
//! registry's output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hotconf::{AttemptOutcome, FailureCause, Observer, PollErrorKind, Report};

/// Upper bounds of the reload duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The result of one reload attempt, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// Validated, stored and applied.
    Success,
    /// Invalid: every diagnostic was reported and the old config kept.
    Rejected,
    /// Valid or not, something failed (timeout, panic, store, component): the old config kept.
    Failed,
}

impl ReloadResult {
    /// The label value of `config_reloads_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Success => "success",
            ReloadResult::Rejected => "rejected",
            ReloadResult::Failed => "failed",
        }
    }

    /// The label value of `config_reload_duration_seconds`: what the attempt did to the config.
    pub fn outcome(self) -> &'static str {
        match self {
            ReloadResult::Success => "applied",
            ReloadResult::Rejected => "rejected",
            ReloadResult::Failed => "failed",
        }
    }

    const ALL: [ReloadResult; 3] = [ReloadResult::Success, ReloadResult::Rejected, ReloadResult::Failed];

    fn index(self) -> usize {
        match self {
            ReloadResult::Success => 0,
            ReloadResult::Rejected => 1,
            ReloadResult::Failed => 2,
        }
    }
}

/// All metrics of one running service.
#[derive(Debug, Default)]
pub struct Metrics {
    reloads: [AtomicU64; 3],
    /// Per result (applied, rejected, failed): the histogram's buckets, count and sum.
    duration_buckets: [[AtomicU64; DURATION_BUCKETS.len()]; 3],
    duration_count: [AtomicU64; 3],
    duration_sum_micros: [AtomicU64; 3],
    files_changed: AtomicU64,
    running_version: AtomicU64,
    last_successful: AtomicU64,
    last_success_unix_millis: AtomicU64,
    running_applied_unix_millis: AtomicU64,
    workers_stuck: AtomicU64,
    pinned: AtomicU64,
    degraded: AtomicU64,
    last_scan_unix_millis: AtomicU64,
    /// 1 while the config directory's content is the running content (0 after a rejected or
    /// failed change, or while a pin runs); starts at 1 with the content started on.
    in_sync: AtomicU64,
    /// Per thread of [`THREADS`]: 1 while it has stopped making progress, as of a scrape.
    stalled: [AtomicU64; THREADS.len()],
    labelled: Mutex<Labelled>,
}

#[derive(Debug)]
struct Labelled {
    config_hash: String,
    poll_errors: BTreeMap<String, u64>,
    alerts: BTreeMap<&'static str, u64>,
    ack_timeouts: BTreeMap<String, u64>,
    failures: BTreeMap<&'static str, u64>,
    /// The polling faults present now: (path, is the scan's timeout) → kind.
    faults: BTreeMap<(String, bool), PollErrorKind>,
}

impl Default for Labelled {
    fn default() -> Self {
        Self {
            config_hash: String::new(),
            poll_errors: PollErrorKind::ALL.iter().map(|k| (k.as_str().to_owned(), 0)).collect(),
            alerts: ALERT_RESULTS.iter().map(|r| (*r, 0)).collect(),
            ack_timeouts: BTreeMap::new(),
            failures: FailureCause::ALL.iter().map(|c| (c.as_str(), 0)).collect(),
            faults: BTreeMap::new(),
        }
    }
}

/// The library's threads whose heartbeats `Live::status` reads (`stalled`, `heartbeat_age_seconds`).
const THREADS: [&str; 2] = ["poller", "reloader"];

/// The alert outcomes counted.
const ALERT_RESULTS: [&str; 3] = ["sent", "failed", "suppressed"];

impl Metrics {
    /// Counts a reload attempt and its duration.
    pub fn reload(&self, result: ReloadResult, duration: Duration) {
        let i = result.index();
        self.reloads[i].fetch_add(1, Ordering::Relaxed);
        let secs = duration.as_secs_f64();
        for (bound, bucket) in DURATION_BUCKETS.iter().zip(&self.duration_buckets[i]) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_count[i].fetch_add(1, Ordering::Relaxed);
        self.duration_sum_micros[i].fetch_add(duration.as_micros() as u64, Ordering::Relaxed);
        let ok = result == ReloadResult::Success;
        self.last_successful.store(u64::from(ok), Ordering::Relaxed);
    }

    /// Records that the files on disk are the running config again (a revert after a failure):
    /// the last reload counts as successful, though nothing was applied.
    pub fn in_sync(&self) {
        self.last_successful.store(1, Ordering::Relaxed);
    }

    /// Records the version now running and its bundle hash.
    pub fn running(&self, version: u64, hash: &str, files_changed: usize) {
        self.running_version.store(version, Ordering::Relaxed);
        self.files_changed.fetch_add(files_changed as u64, Ordering::Relaxed);
        self.last_successful.store(1, Ordering::Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        self.last_success_unix_millis.store(now, Ordering::Relaxed);
        self.running_applied_unix_millis.store(now, Ordering::Relaxed);
        self.lock().config_hash = hash.to_owned();
    }

    /// Declares the components whose acknowledgements are counted, so each has a zero sample
    /// from the start.
    pub fn register_components<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut labelled = self.lock();
        for name in names {
            labelled.ack_timeouts.entry(name.to_owned()).or_default();
        }
    }

    /// Records whether the config directory's content is the running content.
    pub fn directory_in_sync(&self, in_sync: bool) {
        self.in_sync.store(u64::from(in_sync), Ordering::Relaxed);
    }

    /// Records whether a pinned version runs (the files on disk are not what runs).
    pub fn pinned(&self, pinned: bool) {
        self.pinned.store(u64::from(pinned), Ordering::Relaxed);
    }

    /// Records how many validator workers are stuck in abandoned attempts.
    pub fn workers_stuck(&self, stuck: usize) {
        self.workers_stuck.store(stuck as u64, Ordering::Relaxed);
    }

    /// Counts a poll error of `kind`.
    pub fn poll_error(&self, kind: &str) {
        *self.lock().poll_errors.entry(kind.to_owned()).or_default() += 1;
    }

    /// Records a fault present from now on (a new kind for the same path replaces the old; the
    /// scan's timeout stands beside whatever the directory reports).
    pub fn fault(&self, path: &str, kind: PollErrorKind) {
        let timeout = kind == PollErrorKind::Timeout;
        self.lock().faults.insert((path.to_owned(), timeout), kind);
    }

    /// Records that the fault of `kind` at `path` is gone.
    pub fn fault_cleared(&self, path: &str, kind: PollErrorKind) {
        self.lock().faults.remove(&(path.to_owned(), kind == PollErrorKind::Timeout));
    }

    /// Records whether the service runs degraded (started on a stored version: the directory was invalid).
    pub fn degraded(&self, degraded: bool) {
        self.degraded.store(u64::from(degraded), Ordering::Relaxed);
    }

    /// Records when a scan last read every file with no fault (Unix seconds), as of a scrape.
    pub fn last_successful_scan(&self, at_unix: Option<f64>) {
        let millis = at_unix.map_or(0, |s| (s * 1000.0) as u64);
        self.last_scan_unix_millis.store(millis, Ordering::Relaxed);
    }

    /// Records which threads have stopped making progress (`Live::status().stalled`), as of a
    /// scrape: each of the poller and the reloader gets a 0 or a 1.
    pub fn stalled(&self, stalled: &[&str]) {
        for (thread, gauge) in THREADS.iter().zip(&self.stalled) {
            gauge.store(u64::from(stalled.contains(thread)), Ordering::Relaxed);
        }
    }

    /// Counts an alert outcome (`sent`, `failed`, `suppressed`).
    pub fn alert(&self, result: &'static str) {
        *self.lock().alerts.entry(result).or_default() += 1;
    }

    /// Counts a failed attempt's cause.
    pub fn failure(&self, cause: FailureCause) {
        *self.lock().failures.entry(cause.as_str()).or_default() += 1;
    }

    /// Counts a component's missing acknowledgement.
    pub fn ack_timeout(&self, component: &'static str) {
        *self.lock().ack_timeouts.entry(component.to_owned()).or_default() += 1;
    }

    /// Reload attempts with `result` so far.
    pub fn reloads(&self, result: ReloadResult) -> u64 {
        let i = match result {
            ReloadResult::Success => 0,
            ReloadResult::Rejected => 1,
            ReloadResult::Failed => 2,
        };
        self.reloads[i].load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Labelled> {
        self.labelled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The metrics in the Prometheus text exposition format, names prefixed with `hotconf_`.
    pub fn render(&self) -> String {
        self.render_with_prefix(DEFAULT_PREFIX)
    }

    /// The metrics with `prefix` in place of `hotconf_` (e.g. `myapp_config_` gives
    /// `myapp_config_config_reloads_total`; an empty prefix is allowed).
    pub fn render_with_prefix(&self, prefix: &str) -> String {
        let mut out = String::new();
        self.render_into(&mut out, prefix);
        out
    }

    /// Appends the metrics under `prefix` to `out`: to serve them with a service's own metrics
    /// (for instance after a `prometheus-client` registry's encoded text), on one endpoint.
    pub fn render_into(&self, out: &mut String, prefix: &str) {
        let mut o = Family { out, prefix };
        o.family("config_reloads_total", "counter", "Reload attempts by result.");
        for r in ReloadResult::ALL {
            o.sample("config_reloads_total", &[("result", r.as_str())], self.reloads(r) as f64);
        }
        o.family(
            "config_reload_duration_seconds",
            "histogram",
            "Time from a change set to the config live, rejected or failed, by result.",
        );
        for r in ReloadResult::ALL {
            let (i, result) = (r.index(), r.outcome());
            for (bound, bucket) in DURATION_BUCKETS.iter().zip(&self.duration_buckets[i]) {
                let le = bound.to_string();
                let n = bucket.load(Ordering::Relaxed) as f64;
                o.sample("config_reload_duration_seconds_bucket", &[("result", result), ("le", &le)], n);
            }
            let count = self.duration_count[i].load(Ordering::Relaxed) as f64;
            let sum = self.duration_sum_micros[i].load(Ordering::Relaxed) as f64 / 1e6;
            o.sample("config_reload_duration_seconds_bucket", &[("result", result), ("le", "+Inf")], count);
            o.sample("config_reload_duration_seconds_sum", &[("result", result)], sum);
            o.sample("config_reload_duration_seconds_count", &[("result", result)], count);
        }
        let millis = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1000.0;
        let plain: [(&str, &str, &str, f64); 8] = [
            (
                "config_files_changed_total",
                "counter",
                "Files changed across applied reloads.",
                self.files_changed.load(Ordering::Relaxed) as f64,
            ),
            (
                "config_running_version",
                "gauge",
                "The snapshot version running.",
                self.running_version.load(Ordering::Relaxed) as f64,
            ),
            (
                "config_running_version_applied_timestamp_seconds",
                "gauge",
                "When this process applied the running version (Unix seconds).",
                millis(&self.running_applied_unix_millis),
            ),
            (
                "config_last_reload_successful",
                "gauge",
                "Whether the last reload attempt succeeded (1) or not (0).",
                self.last_successful.load(Ordering::Relaxed) as f64,
            ),
            (
                "config_last_reload_success_timestamp_seconds",
                "gauge",
                "When the last successful reload happened (Unix seconds).",
                millis(&self.last_success_unix_millis),
            ),
            (
                "reload_workers_stuck",
                "gauge",
                "Validator workers still stuck in an abandoned attempt.",
                self.workers_stuck.load(Ordering::Relaxed) as f64,
            ),
            (
                "config_pinned",
                "gauge",
                "Whether a pinned version runs (1) rather than the files on disk (0).",
                self.pinned.load(Ordering::Relaxed) as f64,
            ),
            (
                "config_in_sync",
                "gauge",
                "Whether the config directory's content is the running content (1) or not (0: a change rejected or failing, or a pin).",
                self.in_sync.load(Ordering::Relaxed) as f64,
            ),
        ];
        for (name, kind, help, value) in plain {
            o.family(name, kind, help);
            o.sample(name, &[], value);
        }
        o.family("build_info", "gauge", "The running binary's version, always 1.");
        o.sample("build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
        let labelled = self.lock();
        o.family("config_info", "gauge", "The running config's bundle hash (blake3), for fleet convergence checks.");
        o.sample("config_info", &[("hash", &labelled.config_hash)], 1.0);
        o.family("poll_errors_total", "counter", "Poll errors by kind.");
        for (kind, n) in &labelled.poll_errors {
            o.sample("poll_errors_total", &[("kind", kind)], *n as f64);
        }
        o.family("alerts_total", "counter", "Alerts by result.");
        for (result, n) in &labelled.alerts {
            o.sample("alerts_total", &[("result", result)], *n as f64);
        }
        o.family("config_reload_failures_total", "counter", "Failed reload attempts by cause.");
        for (cause, n) in &labelled.failures {
            o.sample("config_reload_failures_total", &[("cause", cause)], *n as f64);
        }
        o.family("component_ack_timeouts_total", "counter", "Versions a component did not acknowledge in time.");
        for (component, n) in &labelled.ack_timeouts {
            o.sample("component_ack_timeouts_total", &[("component", component)], *n as f64);
        }
        o.family("faults", "gauge", "Polling faults present now, by kind: files or directories that cannot be read.");
        for kind in PollErrorKind::ALL {
            let n = labelled.faults.values().filter(|k| **k == kind).count();
            o.sample("faults", &[("kind", kind.as_str())], n as f64);
        }
        drop(labelled);
        for (name, help, value) in [
            (
                "last_successful_scan_timestamp_seconds",
                "When a scan last read the directory and every file with no fault (Unix seconds).",
                millis(&self.last_scan_unix_millis),
            ),
            (
                "degraded",
                "Whether the service runs degraded (1): started on a stored version, the directory being invalid.",
                self.degraded.load(Ordering::Relaxed) as f64,
            ),
        ] {
            o.family(name, "gauge", help);
            o.sample(name, &[], value);
        }
        o.family(
            "thread_stalled",
            "gauge",
            "Whether a thread (poller, reloader) has stopped making progress (1): its heartbeat is past its allowance.",
        );
        for (thread, gauge) in THREADS.iter().zip(&self.stalled) {
            o.sample("thread_stalled", &[("thread", thread)], gauge.load(Ordering::Relaxed) as f64);
        }
    }
}

/// The process's own families, under their standard names (`process_*`, no prefix), as the
/// Prometheus client libraries export them: start time, CPU seconds, resident memory, open and
/// maximum file descriptors. Read from `/proc/self` at each scrape (Linux); absent elsewhere.
pub fn render_process(out: &mut String) {
    #[cfg(target_os = "linux")]
    {
        let Some(p) = process::read() else { return };
        let mut o = Family { out, prefix: "" };
        for (name, kind, help, value) in [
            (
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since the Unix epoch, in seconds.",
                p.start_time,
            ),
            (
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent, in seconds.",
                p.cpu_seconds,
            ),
            ("process_resident_memory_bytes", "gauge", "Resident memory size, in bytes.", p.resident_bytes),
            ("process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds),
            ("process_max_fds", "gauge", "Maximum number of open file descriptors (the soft limit).", p.max_fds),
        ] {
            o.family(name, kind, help);
            o.sample(name, &[], value);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = out;
}

#[cfg(target_os = "linux")]
mod process {
    /// The figures `render_process` exports.
    pub(super) struct Process {
        pub start_time: f64,
        pub cpu_seconds: f64,
        pub resident_bytes: f64,
        pub open_fds: f64,
        pub max_fds: f64,
    }

    /// Reads `/proc/self/stat`, `/proc/stat` (boot time), `/proc/self/fd` and the fd limit.
    pub(super) fn read() -> Option<Process> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
        // SAFETY: sysconf and getrlimit only read process-wide values into the given struct.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok()))?;
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        let max_fds =
            if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 { limit.rlim_cur as f64 } else { 0.0 };
        let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as f64).unwrap_or(0.0);
        Some(Process {
            start_time: boot + field(22)? / ticks,
            cpu_seconds: (field(14)? + field(15)?) / ticks,
            resident_bytes: field(24)? * page,
            open_fds,
            max_fds,
        })
    }
}

/// Feeds the reloader's reports into shared [`Metrics`].
#[derive(Debug)]
pub struct MetricsObserver(pub Arc<Metrics>);

impl Observer for MetricsObserver {
    fn observe(&mut self, report: &Report<'_>) {
        let m = &self.0;
        match report {
            Report::Started(attempt) => {
                m.pinned(attempt.state.pinned.is_some());
                m.degraded(attempt.state.degraded.is_some());
                m.directory_in_sync(attempt.state.pinned.is_none());
                m.register_components(attempt.state.components.iter().map(|c| c.name));
                m.running(attempt.state.running_version, &attempt.state.running_hash.to_hex(), 0);
                // A degraded start rejected the directory: the last reload did not succeed.
                let result =
                    if attempt.state.degraded.is_some() { ReloadResult::Rejected } else { ReloadResult::Success };
                m.reload(result, attempt.duration);
            }
            Report::Attempt(attempt) => {
                m.workers_stuck(attempt.state.workers_stuck);
                m.pinned(attempt.state.pinned.is_some());
                m.degraded(attempt.state.degraded.is_some());
                if attempt.pin_refused {
                    return;
                }
                // The content the attempt judged is the directory's (a pin's is a stored version's):
                // in sync when it is what runs. An unreadable directory tells nothing.
                if attempt.state.pinned.is_some() {
                    m.directory_in_sync(false);
                } else if let Some(content) = attempt.content {
                    m.directory_in_sync(content == attempt.state.running_hash);
                }
                match &attempt.outcome {
                    AttemptOutcome::Applied { version, files } => {
                        m.running(*version, &attempt.state.running_hash.to_hex(), files.len());
                        m.reload(ReloadResult::Success, attempt.duration);
                    }
                    AttemptOutcome::Unchanged { .. } => m.in_sync(),
                    AttemptOutcome::Rejected { .. } => m.reload(ReloadResult::Rejected, attempt.duration),
                    AttemptOutcome::Failed { failure } => {
                        if let (FailureCause::AckTimeout, Some(component)) = (failure.cause, failure.component) {
                            m.ack_timeout(component);
                        }
                        m.failure(failure.cause);
                        m.reload(ReloadResult::Failed, attempt.duration);
                    }
                    _ => {}
                }
            }
            Report::PollError { kind, path, .. } => {
                m.poll_error(kind.as_str());
                m.fault(&path.map(|p| p.display().to_string()).unwrap_or_default(), *kind);
            }
            Report::PollRecovered { kind, path } => {
                m.fault_cleared(&path.map(|p| p.display().to_string()).unwrap_or_default(), *kind)
            }
            Report::WorkerFinished { workers_stuck } => m.workers_stuck(*workers_stuck),
            _ => {}
        }
    }
}

/// The prefix of [`Metrics::render`].
pub const DEFAULT_PREFIX: &str = "hotconf_";

/// Writes families and samples under a prefix.
struct Family<'a> {
    out: &'a mut String,
    prefix: &'a str,
}

impl Family<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let p = self.prefix;
        let _ = writeln!(self.out, "# HELP {p}{name} {help}\n# TYPE {p}{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "{}{name}", self.prefix);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                escape_label_value(self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Escapes a label value per the text exposition format: `\\`, `\"` and `\n`.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_histogram() {
        let m = Metrics::default();
        m.reload(ReloadResult::Success, Duration::from_millis(3));
        m.reload(ReloadResult::Rejected, Duration::from_millis(30));
        m.running(2, "abc", 1);
        m.poll_error("unreadable");
        m.workers_stuck(2);
        let text = m.render();
        for line in [
            "hotconf_config_reloads_total{result=\"success\"} 1",
            "hotconf_config_reloads_total{result=\"rejected\"} 1",
            "hotconf_config_reload_duration_seconds_bucket{result=\"applied\",le=\"0.005\"} 1",
            "hotconf_config_reload_duration_seconds_bucket{result=\"applied\",le=\"0.05\"} 1",
            "hotconf_config_reload_duration_seconds_bucket{result=\"rejected\",le=\"0.005\"} 0",
            "hotconf_config_reload_duration_seconds_bucket{result=\"rejected\",le=\"0.05\"} 1",
            "hotconf_config_reload_duration_seconds_count{result=\"applied\"} 1",
            "hotconf_config_reload_duration_seconds_count{result=\"rejected\"} 1",
            "hotconf_config_reload_duration_seconds_count{result=\"failed\"} 0",
            "hotconf_config_running_version 2",
            "hotconf_config_info{hash=\"abc\"} 1",
            "hotconf_poll_errors_total{kind=\"unreadable\"} 1",
            "hotconf_reload_workers_stuck 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn a_fault_counts_while_it_lasts_by_kind() {
        let m = Metrics::default();
        let gauge = |m: &Metrics, kind: &str| {
            let line = format!("hotconf_faults{{kind=\"{kind}\"}} ");
            m.render().lines().find_map(|l| l.strip_prefix(&line).map(str::to_owned)).unwrap()
        };
        m.fault("/cfg", PollErrorKind::DirMissing);
        m.fault("/cfg", PollErrorKind::Timeout);
        m.fault("/cfg/a.yaml", PollErrorKind::Io);
        assert_eq!(
            (gauge(&m, "dir_missing"), gauge(&m, "timeout"), gauge(&m, "io")),
            ("1".into(), "1".into(), "1".into())
        );
        // Another kind for the same path replaces it; the timeout stays beside.
        m.fault("/cfg/a.yaml", PollErrorKind::Vanished);
        assert_eq!((gauge(&m, "io"), gauge(&m, "vanished")), ("0".into(), "1".into()));
        m.fault_cleared("/cfg", PollErrorKind::DirMissing);
        assert_eq!((gauge(&m, "dir_missing"), gauge(&m, "timeout")), ("0".into(), "1".into()));
        m.fault_cleared("/cfg", PollErrorKind::Timeout);
        m.fault_cleared("/cfg/a.yaml", PollErrorKind::Vanished);
        assert!(PollErrorKind::ALL.iter().all(|k| gauge(&m, k.as_str()) == "0"));
    }

    #[test]
    fn every_family_has_samples_from_the_start() {
        let m = Metrics::default();
        m.register_components(["limiter", "router"]);
        let text = m.render();
        let families: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).collect();
        for family in &families {
            let name = family.split(' ').next().unwrap();
            assert!(
                text.lines().any(|l| !l.starts_with('#') && l.starts_with(name)),
                "{name} has no sample in\n{text}"
            );
        }
        for line in [
            "hotconf_poll_errors_total{kind=\"unreadable\"} 0",
            "hotconf_poll_errors_total{kind=\"timeout\"} 0",
            "hotconf_alerts_total{result=\"sent\"} 0",
            "hotconf_component_ack_timeouts_total{component=\"router\"} 0",
            "hotconf_config_running_version_applied_timestamp_seconds 0",
            "hotconf_faults{kind=\"dir_missing\"} 0",
            "hotconf_last_successful_scan_timestamp_seconds 0",
            "hotconf_degraded 0",
            "hotconf_thread_stalled{thread=\"poller\"} 0",
            "hotconf_thread_stalled{thread=\"reloader\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn a_stalled_thread_is_one_until_it_beats_again() {
        let m = Metrics::default();
        let gauge = |m: &Metrics, thread: &str| {
            let line = format!("hotconf_thread_stalled{{thread=\"{thread}\"}} ");
            m.render().lines().find_map(|l| l.strip_prefix(&line).map(str::to_owned)).unwrap()
        };
        m.stalled(&["poller"]);
        assert_eq!((gauge(&m, "poller"), gauge(&m, "reloader")), ("1".into(), "0".into()));
        m.stalled(&["reloader"]);
        assert_eq!((gauge(&m, "poller"), gauge(&m, "reloader")), ("0".into(), "1".into()));
        m.stalled(&[]);
        assert_eq!((gauge(&m, "poller"), gauge(&m, "reloader")), ("0".into(), "0".into()));
    }

    #[test]
    fn label_values_are_escaped_and_the_prefix_is_the_callers() {
        let m = Metrics::default();
        m.poll_error("we\"ird\\kind\nx");
        let text = m.render_with_prefix("myapp_");
        assert!(text.lines().any(|l| l == r#"myapp_poll_errors_total{kind="we\"ird\\kind\nx"} 1"#), "{text}");
        assert!(text.lines().all(|l| !l.contains("hotconf_")), "{text}");
        let mut joined = String::from("# a user's own families\n");
        m.render_into(&mut joined, "");
        assert!(joined.contains("\nconfig_reloads_total{result=\"success\"} 0\n"), "{joined}");
    }
}
