//! Reload metrics, rendered in the Prometheus text format. Counters and gauges are atomics; the
//! few labelled families take a short lock on the reload path, never on a request's path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Success => "success",
            ReloadResult::Rejected => "rejected",
            ReloadResult::Failed => "failed",
        }
    }
}

/// All metrics of one running service.
#[derive(Debug, Default)]
pub struct Metrics {
    reloads: [AtomicU64; 3],
    duration_buckets: [AtomicU64; DURATION_BUCKETS.len()],
    duration_count: AtomicU64,
    duration_sum_micros: AtomicU64,
    files_changed: AtomicU64,
    running_version: AtomicU64,
    last_successful: AtomicU64,
    last_success_unix_millis: AtomicU64,
    workers_stuck: AtomicU64,
    labelled: Mutex<Labelled>,
}

#[derive(Debug, Default)]
struct Labelled {
    config_hash: String,
    poll_errors: BTreeMap<String, u64>,
    alerts: BTreeMap<&'static str, u64>,
    ack_timeouts: BTreeMap<&'static str, u64>,
}

impl Metrics {
    /// Counts a reload attempt and its duration.
    pub fn reload(&self, result: ReloadResult, duration: Duration) {
        let i = match result {
            ReloadResult::Success => 0,
            ReloadResult::Rejected => 1,
            ReloadResult::Failed => 2,
        };
        self.reloads[i].fetch_add(1, Ordering::Relaxed);
        let secs = duration.as_secs_f64();
        for (bound, bucket) in DURATION_BUCKETS.iter().zip(&self.duration_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_count.fetch_add(1, Ordering::Relaxed);
        self.duration_sum_micros.fetch_add(duration.as_micros() as u64, Ordering::Relaxed);
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
        self.lock().config_hash = hash.to_owned();
    }

    /// Records how many validator workers are stuck in abandoned attempts.
    pub fn workers_stuck(&self, stuck: usize) {
        self.workers_stuck.store(stuck as u64, Ordering::Relaxed);
    }

    /// Counts a poll error of `kind`.
    pub fn poll_error(&self, kind: &str) {
        *self.lock().poll_errors.entry(kind.to_owned()).or_default() += 1;
    }

    /// Counts an alert outcome (`sent`, `failed`, `suppressed`).
    pub fn alert(&self, result: &'static str) {
        *self.lock().alerts.entry(result).or_default() += 1;
    }

    /// Counts a component's missing acknowledgement.
    pub fn ack_timeout(&self, component: &'static str) {
        *self.lock().ack_timeouts.entry(component).or_default() += 1;
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
        let mut out = String::new();
        let o = &mut out;
        family(o, "hotconf_config_reloads_total", "counter", "Reload attempts by result.");
        for r in [ReloadResult::Success, ReloadResult::Rejected, ReloadResult::Failed] {
            let _ = writeln!(o, "hotconf_config_reloads_total{{result=\"{}\"}} {}", r.as_str(), self.reloads(r));
        }
        family(o, "hotconf_config_reload_duration_seconds", "histogram", "Time from a change set to the config live.");
        for (bound, bucket) in DURATION_BUCKETS.iter().zip(&self.duration_buckets) {
            let _ = writeln!(
                o,
                "hotconf_config_reload_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.duration_count.load(Ordering::Relaxed);
        let sum = self.duration_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(o, "hotconf_config_reload_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(o, "hotconf_config_reload_duration_seconds_sum {sum}");
        let _ = writeln!(o, "hotconf_config_reload_duration_seconds_count {count}");
        gauge(
            o,
            "hotconf_config_files_changed_total",
            "counter",
            "Files changed across applied reloads.",
            self.files_changed.load(Ordering::Relaxed) as f64,
        );
        gauge(
            o,
            "hotconf_config_running_version",
            "gauge",
            "The snapshot version running.",
            self.running_version.load(Ordering::Relaxed) as f64,
        );
        gauge(
            o,
            "hotconf_config_last_reload_successful",
            "gauge",
            "Whether the last reload attempt succeeded (1) or not (0).",
            self.last_successful.load(Ordering::Relaxed) as f64,
        );
        let ts = self.last_success_unix_millis.load(Ordering::Relaxed) as f64 / 1000.0;
        gauge(
            o,
            "hotconf_config_last_reload_success_timestamp_seconds",
            "gauge",
            "When the last successful reload happened.",
            ts,
        );
        gauge(
            o,
            "hotconf_reload_workers_stuck",
            "gauge",
            "Validator workers still stuck in an abandoned attempt.",
            self.workers_stuck.load(Ordering::Relaxed) as f64,
        );
        let labelled = self.lock();
        family(
            o,
            "hotconf_config_info",
            "gauge",
            "The running config's bundle hash (blake3), for fleet convergence checks.",
        );
        let _ = writeln!(o, "hotconf_config_info{{hash=\"{}\"}} 1", labelled.config_hash);
        family(o, "hotconf_poll_errors_total", "counter", "Poll errors by kind.");
        for (kind, n) in &labelled.poll_errors {
            let _ = writeln!(o, "hotconf_poll_errors_total{{kind=\"{kind}\"}} {n}");
        }
        family(o, "hotconf_alerts_total", "counter", "Alerts by result.");
        for result in ["sent", "failed", "suppressed"] {
            let n = labelled.alerts.get(result).copied().unwrap_or(0);
            let _ = writeln!(o, "hotconf_alerts_total{{result=\"{result}\"}} {n}");
        }
        family(
            o,
            "hotconf_component_ack_timeouts_total",
            "counter",
            "Versions a component did not acknowledge in time.",
        );
        for (component, n) in &labelled.ack_timeouts {
            let _ = writeln!(o, "hotconf_component_ack_timeouts_total{{component=\"{component}\"}} {n}");
        }
        out
    }
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(o: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    family(o, name, kind, help);
    let _ = writeln!(o, "{name} {value}");
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
            "hotconf_config_reload_duration_seconds_bucket{le=\"0.005\"} 1",
            "hotconf_config_reload_duration_seconds_bucket{le=\"0.05\"} 2",
            "hotconf_config_reload_duration_seconds_count 2",
            "hotconf_config_running_version 2",
            "hotconf_config_info{hash=\"abc\"} 1",
            "hotconf_poll_errors_total{kind=\"unreadable\"} 1",
            "hotconf_reload_workers_stuck 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
