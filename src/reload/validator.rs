//! Reading and validation on a worker thread, so an attempt can be abandoned after the reload
//! timeout (a hung NFS read, a pathological document) and a panic in a schema is caught and
//! reported, never taking the reloader down.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};

use crate::publish::panic_message;
use crate::source::env::EnvLookup;
use crate::source::{ReadError, Sources};
use crate::validate::{validate_with, Diagnostics, Schema, Validated};

type Outcome<C> = Result<Validated<C>, Diagnostics>;
type Job = Box<dyn FnOnce() + Send>;

/// Why reading or validation gave no verdict.
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

/// How a forced reload reads the config directory.
#[derive(Debug, Clone)]
pub(super) struct ReadPlan {
    pub dir: std::path::PathBuf,
    pub limits: crate::source::SourcesLimits,
    pub attempts: u32,
    pub backoff: Duration,
}

pub(super) struct Validator<S: Schema> {
    schema: Arc<S>,
    env: Arc<dyn EnvLookup>,
    inbox: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl<S: Schema> Validator<S> {
    pub(super) fn spawn(schema: S, env: Arc<dyn EnvLookup>) -> std::io::Result<Self> {
        let (tx, rx) = bounded::<Job>(0);
        let thread = std::thread::Builder::new().name("hotconf-validator".into()).spawn(move || {
            for job in rx {
                job();
            }
        })?;
        Ok(Self { schema: Arc::new(schema), env, inbox: Some(tx), thread: Some(thread) })
    }

    /// Validates `sources`, waiting at most `timeout` in all: for the worker to be idle, then for it.
    pub(super) fn validate(&self, sources: Sources, timeout: Duration) -> Result<Outcome<S::Config>, ValidateError> {
        let (schema, env) = (Arc::clone(&self.schema), Arc::clone(&self.env));
        self.run(timeout, move || validate_with(&*schema, sources, &*env))
    }

    /// Reads the config directory as `plan` says, retrying with backoff, waiting at most `timeout`.
    pub(super) fn read(&self, plan: ReadPlan, timeout: Duration) -> Result<Result<Sources, ReadError>, ValidateError> {
        self.run(timeout, move || read_with_retries(&plan))
    }

    /// Runs `f` on the worker, with panics caught, waiting at most `timeout` in all.
    fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ValidateError> {
        let deadline = Instant::now() + timeout;
        let (reply, outcome) = bounded(1);
        let job: Job = Box::new(move || {
            let _ = reply.send(catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(p.as_ref())));
        });
        let inbox = self.inbox.as_ref().ok_or(ValidateError::Busy)?;
        // A zero-capacity channel: the send succeeds only if the worker is idle.
        inbox.send_deadline(job, deadline).map_err(|_| ValidateError::Busy)?;
        match outcome.recv_deadline(deadline) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(ValidateError::Panicked(message)),
            Err(_) => Err(ValidateError::Timeout(timeout)),
        }
    }
}

fn read_with_retries(plan: &ReadPlan) -> Result<Sources, ReadError> {
    let mut wait = plan.backoff;
    let mut attempt = 1;
    loop {
        match Sources::read_dir(&plan.dir, plan.limits) {
            Ok(s) => return Ok(s),
            Err(e) if attempt >= plan.attempts => return Err(e),
            Err(e) => {
                tracing::warn!(event = "reload.retry", attempt, error = %e, cause = %e.source);
                std::thread::sleep(wait);
                wait *= 2;
                attempt += 1;
            }
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
