//! Alerts: tells a chat channel when a reload fails and when it recovers, from its own thread,
//! once per failing content, with a timeout and bounded retries. Never blocks a reload, and never
//! logs or reports the webhook URL.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use serde_json::json;

use crate::reload::metrics::Metrics;

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
        /// The hash of the failing files' content: the deduplication key.
        content: blake3::Hash,
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
    let mut failing: Option<blake3::Hash> = None;
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
                tracing::info!(event = "alert.sent", attempt);
                return;
            }
            Err(error) if attempt < config.attempts => {
                tracing::debug!(event = "alert.retry", attempt, %error);
                std::thread::sleep(wait);
                wait *= 2;
            }
            Err(error) => {
                metrics.alert("failed");
                tracing::warn!(event = "alert.failed", attempts = attempt, %error);
            }
        }
    }
}
