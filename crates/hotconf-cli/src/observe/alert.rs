//! Alerts: tells a chat channel when a reload fails and when it recovers, from its own thread,
//! once per failing content, with a timeout and bounded retries. An [`Observer`] of the
//! reloader's reports; never blocks a reload, and never logs or reports the webhook URL.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use serde_json::json;

use hotconf::{AttemptOutcome, ContentHash, Observer, Report};

use super::metrics::Metrics;

/// Delivers one alert body somewhere.
pub trait Transport: Send + 'static {
    /// Posts `body` (a JSON document); an error must not contain the destination's URL.
    fn post_json(&self, body: &str) -> Result<(), TransportError>;
}

/// Why a delivery failed. Holds no URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The server answered with a non-success status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The connection failed.
    #[error("connection failed: {0}")]
    Connection(std::io::ErrorKind),
    /// Anything else the client reported (its text is not kept: it may hold the URL).
    #[error("transport error")]
    Other,
}

/// What to alert about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// A reload failed or was rejected. Alerts for the same `content` are sent once.
    Failing {
        /// The deduplication key: the failing content's bundle hash, or, when no content was
        /// read, a hash of the failure's cause.
        content: ContentHash,
        /// The files involved.
        files: Vec<String>,
        /// What went wrong, one line each (diagnostics: never secrets).
        errors: Vec<String>,
    },
    /// A reload succeeded after a failure.
    Resolved {
        /// The version now running.
        version: u64,
    },
}

/// Retry policy for deliveries.
#[derive(Debug, Clone, Copy)]
pub struct AlertConfig {
    /// Attempts per alert, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff: Duration,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self { attempts: 3, backoff: Duration::from_millis(500) }
    }
}

/// Owns the alerting thread; dropping it disconnects the inbox and joins the thread.
#[derive(Debug)]
pub struct AlerterHandle {
    inbox: Option<Sender<Alert>>,
    thread: Option<JoinHandle<()>>,
}

impl AlerterHandle {
    /// Starts the thread `hotconf-alerts` delivering through `transport`.
    pub fn spawn(transport: impl Transport, config: AlertConfig, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let (tx, rx) = bounded(64);
        let thread = std::thread::Builder::new()
            .name("hotconf-alerts".into())
            .spawn(move || run(rx, &transport, config, &metrics))?;
        Ok(Self { inbox: Some(tx), thread: Some(thread) })
    }

    /// Queues `alert` without waiting; a full queue drops it (counted as suppressed by the caller's metrics).
    pub fn send(&self, alert: Alert) -> bool {
        match self.inbox.as_ref().map(|i| i.try_send(alert)) {
            Some(Ok(())) => true,
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => false,
        }
    }
}

impl Drop for AlerterHandle {
    fn drop(&mut self) {
        self.inbox.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(inbox: Receiver<Alert>, transport: &dyn Transport, config: AlertConfig, metrics: &Metrics) {
    // The content of the failure last alerted; `None` while healthy.
    let mut failing: Option<ContentHash> = None;
    for alert in inbox {
        let body = match &alert {
            Alert::Failing { content, .. } if failing == Some(*content) => {
                metrics.alert("suppressed");
                continue;
            }
            Alert::Resolved { .. } if failing.is_none() => continue,
            Alert::Failing { content, files, errors } => {
                failing = Some(*content);
                let mut text = format!(
                    ":rotating_light: hotconf: config reload failed ({}); the previous config keeps running",
                    files.join(", ")
                );
                for e in errors.iter().take(20) {
                    text.push_str("\n• ");
                    text.push_str(e);
                }
                if errors.len() > 20 {
                    text.push_str(&format!("\n… and {} more", errors.len() - 20));
                }
                json!({ "text": text }).to_string()
            }
            Alert::Resolved { version } => {
                failing = None;
                json!({ "text": format!(":white_check_mark: hotconf: resolved, config version {version} applied") })
                    .to_string()
            }
        };
        deliver(transport, &body, config, metrics);
    }
}

fn deliver(transport: &dyn Transport, body: &str, config: AlertConfig, metrics: &Metrics) {
    let mut wait = config.backoff;
    for attempt in 1..=config.attempts.max(1) {
        match transport.post_json(body) {
            Ok(()) => {
                metrics.alert("sent");
                tracing::info!(event = "alert.sent", attempt, "alert sent");
                return;
            }
            Err(error) if attempt < config.attempts => {
                tracing::debug!(event = "alert.retry", attempt, %error, "sending the alert failed; trying again");
                std::thread::sleep(wait);
                wait *= 2;
            }
            Err(error) => {
                metrics.alert("failed");
                tracing::warn!(event = "alert.failed", attempts = attempt, %error, "the alert could not be sent");
            }
        }
    }
}

/// Turns the reloader's reports into alerts: a failing attempt (rejected, or failed for a
/// transient reason) into [`Alert::Failing`], keyed by its content, and the end of a failure
/// state into [`Alert::Resolved`]. A pin refused changes nothing and alerts nothing.
#[derive(Debug)]
pub struct AlertObserver {
    alerts: AlerterHandle,
    metrics: Arc<Metrics>,
}

impl AlertObserver {
    /// Alerts through `alerts`, counting what cannot be queued in `metrics`.
    pub fn new(alerts: AlerterHandle, metrics: Arc<Metrics>) -> Self {
        Self { alerts, metrics }
    }
}

impl Observer for AlertObserver {
    fn observe(&mut self, report: &Report<'_>) {
        let Report::Attempt(attempt) = report else { return };
        if attempt.pin_refused {
            return;
        }
        let failing = match &attempt.outcome {
            AttemptOutcome::Rejected { diagnostics } => Some((
                attempt.content.unwrap_or_else(|| blake3::hash(b"rejected")),
                diagnostics.as_slice().iter().map(|d| d.to_string().lines().next().unwrap_or("").to_owned()).collect(),
            )),
            AttemptOutcome::Failed { failure } => Some((
                attempt.content.unwrap_or_else(|| blake3::hash(failure.cause.as_str().as_bytes())),
                vec![failure.error.clone()],
            )),
            _ => None,
        };
        if let Some((content, errors)) = failing {
            if !self.alerts.send(Alert::Failing { content, files: attempt.files.clone(), errors }) {
                self.metrics.alert("suppressed");
            }
        } else if attempt.recovered {
            self.alerts.send(Alert::Resolved { version: attempt.state.running_version });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crossbeam_channel::{unbounded, Receiver, Sender};
    use hotconf::{AttemptOutcome, Hotconf, Live};

    use super::{AlertConfig, AlertObserver, AlerterHandle, Transport, TransportError};
    use crate::observe::{Metrics, MetricsObserver};

    const DEADLINE: Duration = Duration::from_secs(20);

    /// An alert transport that hands every body it is given to the test.
    struct Recording(Sender<String>);

    impl Transport for Recording {
        fn post_json(&self, body: &str) -> Result<(), TransportError> {
            let _ = self.0.send(body.to_owned());
            Ok(())
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct App {
        #[allow(dead_code)]
        value: u32,
    }

    /// A one-file config with the binary's metrics and alert observers, applied by hand.
    struct Harness {
        live: Live<App>,
        metrics: Arc<Metrics>,
        alerts: Receiver<String>,
        dir: tempfile::TempDir,
    }

    impl Harness {
        fn start() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("app.yaml"), "value: 1\n").unwrap();
            let metrics = Arc::new(Metrics::default());
            let (tx, alerts) = unbounded();
            let config = AlertConfig { attempts: 1, backoff: Duration::from_millis(1) };
            let alerter = AlerterHandle::spawn(Recording(tx), config, Arc::clone(&metrics)).unwrap();
            let live = Hotconf::<App>::file(dir.path().join("app.yaml"))
                .with_interval(Duration::from_secs(3600))
                .with_observer(MetricsObserver(Arc::clone(&metrics)))
                .with_observer(AlertObserver::new(alerter, Arc::clone(&metrics)))
                .start()
                .unwrap();
            Self { live, metrics, alerts, dir }
        }

        /// Writes `text` as the file and applies it now.
        fn change(&self, text: &str) -> AttemptOutcome {
            std::fs::write(self.dir.path().join("app.yaml"), text).unwrap();
            self.live.reload()
        }

        fn metric(&self, series: &str) -> f64 {
            let text = self.metrics.render();
            let value = text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' '));
            value.unwrap_or_else(|| panic!("no {series} in\n{text}")).parse().unwrap()
        }

        fn next_alert(&self) -> String {
            self.alerts.recv_timeout(DEADLINE).expect("an alert within the deadline")
        }

        /// Stops the pipeline (joining the alerter) and returns the alerts not yet taken.
        fn finish(self) -> Vec<String> {
            let alerts = self.alerts.clone();
            drop(self);
            alerts.try_iter().collect()
        }
    }

    #[test]
    fn one_alert_per_failing_content_and_a_resolve_on_a_fix_or_a_revert() {
        let h = Harness::start();

        assert!(matches!(h.change("value: bad\n"), AttemptOutcome::Rejected { diagnostics } if diagnostics.len() == 1));
        assert!(h.live.status().failing);
        let alert = h.next_alert();
        assert!(alert.contains("config reload failed (app.yaml)") && alert.contains("value"), "{alert}");

        // The same failing content again: rejected again, but not alerted again.
        assert!(matches!(h.change("value: bad\n"), AttemptOutcome::Rejected { .. }));

        assert!(h.change("value: 2\n").is_applied());
        assert!(!h.live.status().failing);
        // Alerts are delivered in order: had the duplicate been sent, it would come before this one.
        let alert = h.next_alert();
        assert!(alert.contains("resolved, config version 2 applied"), "{alert}");
        assert_eq!(h.metric("hotconf_alerts_total{result=\"suppressed\"}"), 1.0);

        assert!(matches!(h.change("value: worse\n"), AttemptOutcome::Rejected { .. }));
        assert_eq!(h.metric("hotconf_config_last_reload_successful"), 0.0);
        assert!(h.next_alert().contains("config reload failed"));

        // Reverting to the running content ends the failure without a new version.
        assert_eq!(h.change("value: 2\n"), AttemptOutcome::Unchanged { version: 2 });
        assert_eq!((h.live.status().running_version, h.live.status().failing), (2, false));
        assert_eq!(h.metric("hotconf_config_last_reload_successful"), 1.0);
        assert!(h.next_alert().contains("resolved, config version 2 applied"));
        assert_eq!(h.metric("hotconf_config_reloads_total{result=\"rejected\"}"), 3.0);

        assert_eq!(h.finish(), Vec::<String>::new(), "no further alerts");
    }

    #[test]
    fn a_failure_without_content_is_keyed_by_its_cause_and_counted_by_cause() {
        let h = Harness::start();
        let dir = h.dir.path().to_owned();
        let away = tempfile::tempdir().unwrap();
        std::fs::rename(&dir, away.path().join("gone")).unwrap();
        let AttemptOutcome::Failed { failure } = h.live.reload() else { panic!("expected a failed reload") };
        assert_eq!(failure.cause, hotconf::FailureCause::Read);
        assert!(h.next_alert().contains("config reload failed"));
        assert_eq!(h.metric("hotconf_config_reload_failures_total{cause=\"read\"}"), 1.0);
        // The same cause again: not alerted again (its key is the cause, not the error's text).
        let _ = h.live.reload();
        std::fs::rename(away.path().join("gone"), &dir).unwrap();
        assert_eq!(h.live.reload(), AttemptOutcome::Unchanged { version: 1 });
        assert!(h.next_alert().contains("resolved, config version 1 applied"));
        assert_eq!(h.finish(), Vec::<String>::new(), "no further alerts");
    }
}
