//! Validation on a worker thread, so an attempt can be abandoned after the reload timeout and a
//! panic in a schema is caught and reported, never taking the reloader down.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};

use crate::publish::panic_message;
use crate::source::env::EnvLookup;
use crate::source::Sources;
use crate::validate::{validate_with, Diagnostics, Schema, Validated};

type Outcome<C> = Result<Validated<C>, Diagnostics>;
type Job<C> = (Sources, Sender<Result<Outcome<C>, String>>);

/// Why validation gave no verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// It took longer than the reload timeout; the attempt was abandoned.
    #[error("reading and validating took longer than {0:?}; attempt abandoned")]
    Timeout(Duration),
    /// The schema panicked.
    #[error("validation panicked: {0}")]
    Panicked(String),
    /// The worker is busy with an earlier, abandoned attempt.
    #[error("validator still busy with an abandoned attempt")]
    Busy,
}

pub(super) struct Validator<S: Schema> {
    inbox: Option<Sender<Job<S::Config>>>,
    thread: Option<JoinHandle<()>>,
}

impl<S: Schema> Validator<S> {
    pub(super) fn spawn(schema: S, env: Arc<dyn EnvLookup>) -> std::io::Result<Self> {
        let (tx, rx) = bounded::<Job<S::Config>>(0);
        let thread = std::thread::Builder::new().name("hotconf-validator".into()).spawn(move || {
            for (sources, reply) in rx {
                let outcome = catch_unwind(AssertUnwindSafe(|| validate_with(&schema, sources, &*env)))
                    .map_err(|p| panic_message(p.as_ref()));
                let _ = reply.send(outcome);
            }
        })?;
        Ok(Self { inbox: Some(tx), thread: Some(thread) })
    }

    /// Validates `sources`, waiting at most `timeout` in all: for the worker to be idle, then for it.
    pub(super) fn validate(&self, sources: Sources, timeout: Duration) -> Result<Outcome<S::Config>, ValidateError> {
        let deadline = Instant::now() + timeout;
        let (reply, outcome) = bounded(1);
        let inbox = self.inbox.as_ref().ok_or(ValidateError::Busy)?;
        // A zero-capacity channel: the send succeeds only if the worker is idle.
        inbox.send_deadline((sources, reply), deadline).map_err(|_| ValidateError::Busy)?;
        match outcome.recv_deadline(deadline) {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(message)) => Err(ValidateError::Panicked(message)),
            Err(_) => Err(ValidateError::Timeout(timeout)),
        }
    }
}

impl<S: Schema> Drop for Validator<S> {
    fn drop(&mut self) {
        self.inbox.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
