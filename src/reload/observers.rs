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
            tracing::error!(event = "audit.failed", error = %error_chain(&e));
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

/// The reloader's log lines (`reload.applied`, `reload.rejected`, `reload.failed`,
/// `reload.retry`, `reload.recovered`, `pin.applied`, `pin.refused`).
pub(super) struct LogLines;

impl Observer for LogLines {
    fn observe(&mut self, report: &Report<'_>) {
        match report {
            Report::Started(attempt) => {
                tracing::info!(
                    event = "reload.applied",
                    version = attempt.state.running_version,
                    origin = "startup",
                    files = %log_list(&attempt.files),
                    duration_ms = attempt.duration.as_millis() as u64
                );
            }
            Report::Attempt(attempt) => log_attempt(attempt),
            _ => {}
        }
    }
}

fn log_attempt(attempt: &AttemptReport) {
    let running_version = attempt.state.running_version;
    match &attempt.outcome {
        AttemptOutcome::Applied { version, files } => {
            let version = *version;
            if let (Some(origin), Some(diff)) = (&attempt.origin, &attempt.diff) {
                tracing::info!(
                    event = "reload.applied",
                    version,
                    origin = %origin,
                    files = %log_list(files),
                    duration_ms = attempt.duration.as_millis() as u64,
                    diff = %diff,
                );
                if let Origin::Pin { of } = origin {
                    tracing::info!(event = "pin.applied", version, of, pinned = attempt.state.pinned.is_some());
                }
            }
            if attempt.recovered {
                tracing::info!(event = "reload.recovered", version, attempt = attempt.attempt);
            }
        }
        AttemptOutcome::Unchanged { version } => {
            if attempt.recovered {
                tracing::info!(event = "reload.recovered", version = *version, "reverted to the running config");
            }
        }
        AttemptOutcome::Rejected { .. } => {
            let Some(diagnostics) = &attempt.diagnostics else { return };
            if attempt.pin_refused {
                log_diagnostics("pin.refused", diagnostics);
                tracing::warn!(
                    event = "pin.refused",
                    version = attempt.pin.unwrap_or_default(),
                    problems = diagnostics.problems()
                );
            } else {
                log_diagnostics("reload.rejected", diagnostics);
                tracing::warn!(
                    event = "reload.rejected",
                    problems = diagnostics.problems(),
                    running_version,
                    "config rejected; previous config kept"
                );
            }
        }
        AttemptOutcome::NotFound { version, error } => {
            tracing::warn!(event = "pin.refused", version = *version, error = %error);
        }
        AttemptOutcome::Failed { failure } => {
            if attempt.pin_refused {
                tracing::warn!(event = "pin.refused", version = attempt.pin.unwrap_or_default(), error = %failure.error);
                return;
            }
            tracing::error!(
                event = "reload.failed",
                error = %failure.error,
                cause = failure.cause.as_str(),
                running_version,
                "reload failed; previous config kept"
            );
            if let Some(delay) = attempt.retry_in {
                tracing::warn!(
                    event = "reload.retry",
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

/// A list-valued log field (`files`): the text of a JSON array of strings, which `hotconf run`'s
/// JSON logs write as an array and its text logs as the items joined by commas.
fn log_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

/// Logs each diagnostic as one `event` line: its message, its `location` (`file:line:column`, the
/// file under the directory as the user named it), file, path, line, column, code and help: what
/// a library user with any `tracing` subscriber sees of a rejected edit.
fn log_diagnostics(event: &'static str, diagnostics: &Diagnostics) {
    for (d, location) in diagnostics.each_location() {
        let help = d.kind.help();
        tracing::warn!(
            event,
            location = %location,
            file = %d.file,
            path = d.path.as_deref().unwrap_or(""),
            line = d.line.unwrap_or(0),
            column = d.column.unwrap_or(0),
            code = d.kind.code(),
            help = help.as_deref().unwrap_or(""),
            message = %d.kind,
        );
    }
}
