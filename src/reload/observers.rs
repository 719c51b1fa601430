//! The reloader's own observers, each one consequence of a report: the audit log, the status,
//! the log lines and the library user's events. The reloader feeds them, with the user's
//! observers, from one place in one order (audit, the user's, status, log, events).

use std::sync::Arc;

use arc_swap::ArcSwap;
use crossbeam_channel::Sender;

use super::event::ReloadEvent;
use super::history::History;
use super::report::{AttemptReport, Observer, Report};
use super::status::{AttemptOutcome, LastAttempt, Status};
use super::subscribe::Subscribers;
use crate::error_text::error_chain;
use crate::snapshot::{AuditDiagnostic, AuditEvent, Origin};
use crate::validate::Diagnostics;
use crate::watch::PollErrorKind;

/// Appends `rejected` and `failed` records to the store's audit log (the store writes
/// `accepted` itself, with the version it commits).
pub(super) struct AuditTrail {
    store: Arc<History>,
}

impl AuditTrail {
    pub(super) fn new(store: Arc<History>) -> Self {
        Self { store }
    }
}

impl Observer for AuditTrail {
    fn observe(&mut self, report: &Report<'_>) {
        let Report::Attempt(attempt) = report else { return };
        if attempt.pin_refused {
            return;
        }
        let event = match (&attempt.outcome, &attempt.diagnostics) {
            (AttemptOutcome::Rejected { .. }, Some(diagnostics)) => AuditEvent::Rejected {
                bundle_hash: attempt.content.map(|h| h.to_hex().to_string()).unwrap_or_default(),
                files: attempt.candidate_files.clone(),
                diagnostics: diagnostics.as_slice().iter().map(AuditDiagnostic::from).collect(),
            },
            (AttemptOutcome::Failed { failure }, _) => AuditEvent::Failed {
                bundle_hash: attempt.content.map(|h| h.to_hex().to_string()),
                files: attempt.files.clone(),
                error: failure.error.clone(),
            },
            _ => return,
        };
        if let Err(e) = self.store.record(event) {
            tracing::error!(event = "audit.failed", error = %error_chain(&e), "cannot append to the audit log");
        }
    }
}

/// Publishes a new [`Status`] after each report: one immutable value, so a reader never sees a
/// new last attempt beside an old running version or failure state.
pub(super) struct StatusBoard {
    status: Arc<ArcSwap<Status>>,
}

impl StatusBoard {
    pub(super) fn new(status: Arc<ArcSwap<Status>>) -> Self {
        Self { status }
    }
}

impl Observer for StatusBoard {
    fn observe(&mut self, report: &Report<'_>) {
        let mut status = Status::clone(&self.status.load());
        match report {
            Report::Started(attempt) | Report::Attempt(attempt) => {
                let state = &attempt.state;
                if matches!(report, Report::Attempt(_)) {
                    let judged = attempt.content.map(|h| h.to_hex().to_string());
                    status.last_attempt = Some(LastAttempt::new(
                        attempt.trigger,
                        attempt.outcome.clone(),
                        attempt.duration,
                        judged,
                        attempt.at,
                    ));
                }
                status.workers_stuck = state.workers_stuck;
                status.running_version = state.running_version;
                status.bundle_hash = state.running_hash.to_hex().to_string();
                status.pinned = state.pinned;
                status.failing = state.failing;
                status.components = state.components.clone();
                status.degraded = state.degraded.is_some();
                status.degraded_reason = state.degraded.clone();
            }
            Report::WorkerFinished { workers_stuck } => status.workers_stuck = *workers_stuck,
            Report::PollError { kind, path, .. } => {
                let path = path.map(|p| p.display().to_string()).unwrap_or_default();
                // A new kind for the same path replaces the old one (the timeout is the scan's,
                // beside whatever the directory itself reports).
                if *kind != PollErrorKind::Timeout {
                    for (k, paths) in status.faults.iter_mut() {
                        if *k != PollErrorKind::Timeout {
                            paths.retain(|p| *p != path);
                        }
                    }
                }
                let paths = status.faults.entry(*kind).or_default();
                if !paths.contains(&path) {
                    paths.push(path);
                }
                status.faults.retain(|_, paths| !paths.is_empty());
            }
            Report::PollRecovered { kind, path } => {
                let path = path.map(|p| p.display().to_string()).unwrap_or_default();
                if let Some(paths) = status.faults.get_mut(kind) {
                    paths.retain(|p| *p != path);
                }
                status.faults.retain(|_, paths| !paths.is_empty());
            }
        }
        self.status.store(Arc::new(status));
    }
}

/// Sends [`ReloadEvent`]s to a library user's channel and async subscriptions, never blocking:
/// an event that does not fit is dropped (the status is always current). Dropped with the
/// reloader, it closes the subscriptions.
pub(super) struct EventQueue {
    events: Sender<ReloadEvent>,
    subscribers: Arc<Subscribers>,
}

impl EventQueue {
    pub(super) fn new(events: Sender<ReloadEvent>, subscribers: Arc<Subscribers>) -> Self {
        Self { events, subscribers }
    }

    fn emit(&self, event: ReloadEvent) {
        self.subscribers.send(&event);
        let _ = self.events.try_send(event);
    }
}

impl Drop for EventQueue {
    fn drop(&mut self) {
        self.subscribers.close();
    }
}

impl Observer for EventQueue {
    fn observe(&mut self, report: &Report<'_>) {
        let Report::Attempt(attempt) = report else { return };
        let trigger = attempt.trigger;
        match &attempt.outcome {
            _ if attempt.pin_refused => {}
            AttemptOutcome::Applied { version, .. } => {
                let diff = attempt.diff.clone().unwrap_or_default();
                self.emit(ReloadEvent::Applied { version: *version, trigger, diff });
            }
            AttemptOutcome::Rejected { .. } => {
                if let Some(diagnostics) = &attempt.diagnostics {
                    self.emit(ReloadEvent::Rejected { trigger, diagnostics: diagnostics.clone() });
                }
            }
            AttemptOutcome::Failed { failure } => self.emit(ReloadEvent::Failed { trigger, failure: failure.clone() }),
            AttemptOutcome::Unchanged { .. } | AttemptOutcome::NotFound { .. } => {}
        }
        if attempt.recovered {
            self.emit(ReloadEvent::Recovered { version: attempt.state.running_version });
        }
    }
}

/// The reloader's log lines (`reload.applied`, `reload.diagnostic`, `reload.rejected`,
/// `reload.failed`, `reload.retry`, `reload.recovered`, `pin.applied`, `pin.refused`). Every
/// attempt's line carries `version` (the version running after it) and, when the content was
/// read, its `bundle_hash`; an absent value is left out, never written as zero or empty.
pub(super) struct LogLines;

impl Observer for LogLines {
    fn observe(&mut self, report: &Report<'_>) {
        match report {
            Report::Started(attempt) => {
                let hash = attempt.content.unwrap_or(attempt.state.running_hash).to_hex();
                tracing::info!(
                    event = "reload.applied",
                    version = attempt.state.running_version,
                    bundle_hash = hash.as_str(),
                    origin = "startup",
                    files = %log_list(&attempt.files),
                    duration_ms = attempt.duration.as_millis() as u64,
                    "config applied"
                );
            }
            Report::Attempt(attempt) => log_attempt(attempt),
            _ => {}
        }
    }
}

fn log_attempt(attempt: &AttemptReport) {
    let running_version = attempt.state.running_version;
    let hash = attempt.content.map(|h| h.to_hex());
    let bundle_hash = hash.as_ref().map(|h| h.as_str());
    match &attempt.outcome {
        AttemptOutcome::Applied { version, files } => {
            let version = *version;
            if let (Some(origin), Some(diff)) = (&attempt.origin, &attempt.diff) {
                tracing::info!(
                    event = "reload.applied",
                    version,
                    bundle_hash,
                    origin = %origin,
                    files = %log_list(files),
                    duration_ms = attempt.duration.as_millis() as u64,
                    diff = %log_json(diff),
                    "config applied"
                );
                if let Origin::Pin { of } = origin {
                    tracing::info!(
                        event = "pin.applied",
                        version,
                        of,
                        pinned = attempt.state.pinned.is_some(),
                        "a stored version was pinned live"
                    );
                }
            }
            if attempt.recovered {
                tracing::info!(
                    event = "reload.recovered",
                    version,
                    bundle_hash,
                    attempt = attempt.attempt,
                    "the failure ended: the config is applied"
                );
            }
        }
        AttemptOutcome::Unchanged { version } => {
            if attempt.recovered {
                tracing::info!(
                    event = "reload.recovered",
                    version = *version,
                    bundle_hash,
                    attempt = attempt.attempt,
                    "the failure ended: reverted to the running config"
                );
            }
        }
        AttemptOutcome::Rejected { .. } => {
            let Some(diagnostics) = &attempt.diagnostics else { return };
            log_diagnostics(attempt, bundle_hash, diagnostics);
            if attempt.pin_refused {
                tracing::warn!(
                    event = "pin.refused",
                    version = attempt.pin.unwrap_or_default(),
                    problems = diagnostics.problems(),
                    "the pinned version no longer validates; the running config is kept"
                );
            } else {
                tracing::warn!(
                    event = "reload.rejected",
                    version = running_version,
                    bundle_hash,
                    files = %log_list(&attempt.candidate_files),
                    problems = diagnostics.problems(),
                    "config rejected; previous config kept"
                );
            }
        }
        AttemptOutcome::NotFound { version, error } => {
            tracing::warn!(event = "pin.refused", version = *version, error = %error, "no such stored version to pin");
        }
        AttemptOutcome::Failed { failure } => {
            if attempt.pin_refused {
                tracing::warn!(
                    event = "pin.refused",
                    version = attempt.pin.unwrap_or_default(),
                    error = %failure.error,
                    "the pin failed; the running config is kept"
                );
                return;
            }
            tracing::error!(
                event = "reload.failed",
                version = running_version,
                bundle_hash,
                cause = failure.cause.as_str(),
                error = %failure.error,
                "reload failed; previous config kept"
            );
            if let Some(delay) = attempt.retry_in {
                tracing::warn!(
                    event = "reload.retry",
                    version = running_version,
                    bundle_hash,
                    attempt = attempt.attempt + 1,
                    delay_ms = delay.as_millis() as u64,
                    trigger = attempt.trigger.as_str(),
                    files = %log_list(&attempt.files),
                    error = %failure.error,
                    "the attempt failed for a transient reason; it will be tried again"
                );
            }
        }
    }
}

/// A structured log field (`diff`): its JSON text, which `hotconf run`'s JSON logs embed as JSON
/// and its text logs write as one quoted value.
fn log_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A list-valued log field (`files`): the text of a JSON array of strings, which `hotconf run`'s
/// JSON logs write as an array and its text logs as the items joined by commas.
fn log_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

/// Logs each diagnostic as one `reload.diagnostic` line (for a change, a manual reload or a pin,
/// as `trigger` says): its message, its `location` (`file:line:column`, the file under the
/// directory as the user named it), file and code, its YAML path, line and column when known, and
/// its help: what a library user with any `tracing` subscriber sees of a rejected edit.
fn log_diagnostics(attempt: &AttemptReport, bundle_hash: Option<&str>, diagnostics: &Diagnostics) {
    for (d, location) in diagnostics.each_location() {
        let help = d.kind.help();
        tracing::warn!(
            event = "reload.diagnostic",
            version = attempt.state.running_version,
            bundle_hash,
            trigger = attempt.trigger.as_str(),
            location = %location,
            file = %d.file,
            path = d.path.as_deref(),
            line = d.line,
            column = d.column,
            code = d.kind.code(),
            help = help.as_deref(),
            message = %d.kind,
        );
    }
}
