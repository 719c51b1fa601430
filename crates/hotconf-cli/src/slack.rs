//! Slack incoming webhooks over HTTPS (or plain HTTP to loopback, for tests).

use std::fmt;
use std::time::Duration;

use crate::observe::alert::{Transport, TransportError};

/// A Slack incoming webhook. Its `Debug` hides the URL.
pub struct SlackWebhook {
    url: String,
    agent: ureq::Agent,
}

impl SlackWebhook {
    /// A webhook posting to `url` with a per-request `timeout`.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build();
        Self { url: url.into(), agent: config.into() }
    }
}

impl fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SlackWebhook(<redacted>)")
    }
}

impl Transport for SlackWebhook {
    fn post_json(&self, body: &str) -> Result<(), TransportError> {
        let response = self.agent.post(&self.url).header("content-type", "application/json").send(body);
        match response {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(TransportError::Status(r.status().as_u16())),
            Err(ureq::Error::Timeout(_)) => Err(TransportError::Timeout),
            Err(ureq::Error::Io(e)) => Err(TransportError::Connection(e.kind())),
            Err(ureq::Error::ConnectionFailed) => {
                Err(TransportError::Connection(std::io::ErrorKind::ConnectionRefused))
            }
            Err(_) => Err(TransportError::Other),
        }
    }
}
