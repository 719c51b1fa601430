//! Reading and validation on worker threads, so an attempt can be abandoned after the reload
//! timeout (a hung NFS read, a pathological document) and a panic in a schema is caught and
//! reported, never taking the reloader down.
//!
//! One worker at a time takes attempts. A worker whose attempt is abandoned is set aside (its
//! inbox disconnected, so it ends as soon as its job returns) and the next attempt gets a fresh
//! one. At most `max_stuck` set-aside workers may be alive at once; past that, attempts fail with
//! [`ValidateError::Stuck`] until one finishes. A set-aside worker that finishes says so on the
//! `finished` channel, which the reloader selects on, and is joined then. Nothing here ever joins a
//! worker that may still be stuck in the kernel.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::park::{self, Doorbell, Inbox, Wake};
use crate::publish::panic_message;
use crate::source::env::EnvLookup;
use crate::source::{ReadError, Sources};
use crate::validate::{validate_with, Diagnostics, Schema, Validated};

pub(super) type Outcome<C> = Result<Validated<C>, Diagnostics>;
type Job = Box<dyn FnOnce() + Send>;

/// Why reading or validation gave no verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidateError {
    /// It took longer than the reload timeout; the attempt was abandoned (its worker set aside).
    #[error("reading and validating took longer than {0:?}; attempt abandoned")]
    Timeout(Duration),
    /// The schema panicked.
    #[error("validation panicked: {0}")]
    Panicked(String),
    /// As many workers as allowed are still stuck in abandoned attempts: no fresh one is started
    /// until one of them finishes. Transient; the attempt is retried.
    #[error(
        "{stuck} validator workers are still stuck in abandoned attempts (the limit is {limit}); \
         no new attempt starts until one finishes"
    )]
    Stuck {
        /// Set-aside workers alive now.
        stuck: usize,
        /// The most allowed at once.
        limit: usize,
    },
    /// A fresh worker thread could not be started.
    #[error("cannot start a validator worker thread: {0}")]
    Spawn(std::io::ErrorKind),
}

/// How a forced reload reads the config directory.
#[derive(Debug, Clone)]
pub(super) struct ReadPlan {
    pub dir: std::path::PathBuf,
    pub limits: crate::source::SourcesLimits,
    pub attempts: u32,
    pub backoff: Duration,
}

/// One worker thread: it runs the jobs sent to its inbox, then reports its id on `finished`.
struct Worker {
    id: u64,
    inbox: Option<Inbox<Job>>,
    thread: JoinHandle<()>,
    /// When it was set aside (for a worker taking attempts: when it started).
    since: Instant,
}

pub(super) struct Validator<S: Schema> {
    schema: Arc<S>,
    env: Arc<dyn EnvLookup>,
    max_stuck: usize,
    /// The worker taking attempts; `None` after one was abandoned, until the next attempt.
    current: Option<Worker>,
    /// Workers set aside in an abandoned attempt and not yet finished.
    stuck: Vec<Worker>,
    next_id: u64,
    finished_tx: Sender<u64>,
    finished_rx: Receiver<u64>,
    doorbell: Doorbell,
}

impl<S: Schema> Validator<S> {
    /// Starts the first worker. At most `max_stuck` abandoned workers are kept alive at once.
    /// A worker's end is sent on [`Validator::finished`] and rung on `doorbell` (the reloader's).
    pub(super) fn spawn(
        schema: S,
        env: Arc<dyn EnvLookup>,
        max_stuck: usize,
        doorbell: Doorbell,
    ) -> std::io::Result<Self> {
        let (finished_tx, finished_rx) = unbounded();
        let mut validator = Self {
            schema: Arc::new(schema),
            env,
            max_stuck,
            current: None,
            stuck: Vec::new(),
            next_id: 1,
            finished_tx,
            finished_rx,
            doorbell,
        };
        validator.current = Some(validator.new_worker()?);
        Ok(validator)
    }

    fn new_worker(&mut self) -> std::io::Result<Worker> {
        let id = self.next_id;
        let (tx, rx) = bounded::<Job>(1);
        let (finished, doorbell) = (self.finished_tx.clone(), self.doorbell.clone());
        let thread = std::thread::Builder::new().name("hotconf-validator".into()).spawn(move || {
            // Parked between jobs: its `Inbox` wakes it for each job and when the validator drops it.
            while let Ok(job) = park::recv(&rx, None) {
                job();
            }
            let _ = finished.send(id);
            doorbell.ring();
        })?;
        self.next_id += 1;
        let inbox = Inbox::new(tx, thread.thread());
        Ok(Worker { id, inbox: Some(inbox), thread, since: Instant::now() })
    }

    /// Validates `sources`, waiting at most `timeout`.
    pub(super) fn validate(
        &mut self,
        sources: Sources,
        timeout: Duration,
    ) -> Result<Outcome<S::Config>, ValidateError> {
        let (schema, env) = (Arc::clone(&self.schema), Arc::clone(&self.env));
        self.run(timeout, move || validate_with(&*schema, sources, &*env))
    }

    /// Reads the config directory as `plan` says, retrying with backoff, waiting at most `timeout`.
    pub(super) fn read(
        &mut self,
        plan: ReadPlan,
        timeout: Duration,
    ) -> Result<Result<Sources, ReadError>, ValidateError> {
        self.run(timeout, move || read_with_retries(&plan))
    }

    /// Set-aside workers still stuck in an abandoned attempt.
    pub(super) fn stuck(&self) -> usize {
        self.stuck.len()
    }

    /// Where a worker's id arrives when it ends; hand each to [`Validator::reap`].
    pub(super) fn finished(&self) -> &Receiver<u64> {
        &self.finished_rx
    }

    /// Joins worker `id` if it was set aside (it has ended) and returns whether it was.
    pub(super) fn reap(&mut self, id: u64) -> bool {
        let Some(i) = self.stuck.iter().position(|w| w.id == id) else { return false };
        let worker = self.stuck.swap_remove(i);
        let stuck_ms = worker.since.elapsed().as_millis() as u64;
        // It sent its id as its last act: the join waits for a return, never for a read.
        let _ = worker.thread.join();
        tracing::info!(
            event = "reload.worker.finished",
            worker = id,
            stuck_ms,
            stuck = self.stuck.len(),
            "a set-aside validator worker ended"
        );
        true
    }

    /// Runs `f` on the current worker (a fresh one if the last was abandoned), with panics caught,
    /// waiting at most `timeout`; past it the worker is set aside.
    fn run<T: Send + 'static>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ValidateError> {
        let deadline = Instant::now() + timeout;
        let (reply, outcome) = bounded(1);
        // The requester parks until the reply; it is woken once the reply is sent.
        let requester = Wake::me();
        let mut job: Job = Box::new(move || {
            let _ = reply.send(catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(p.as_ref())));
            drop(requester);
        });
        let worker = loop {
            let worker = match self.current.take() {
                Some(worker) => worker,
                None if self.stuck.len() >= self.max_stuck => {
                    return Err(ValidateError::Stuck { stuck: self.stuck.len(), limit: self.max_stuck })
                }
                None => self.new_worker().map_err(|e| ValidateError::Spawn(e.kind()))?,
            };
            // The worker is idle (each job is awaited or its worker set aside): the slot is free.
            // Only a worker that ended could refuse it (jobs catch their panics): take a fresh one.
            let Some(inbox) = worker.inbox.as_ref() else { continue };
            match inbox.try_send(job) {
                Ok(()) => break worker,
                Err(refused) => job = refused.into_inner(),
            }
        };
        match park::recv(&outcome, Some(deadline)) {
            Ok(result) => {
                self.current = Some(worker);
                result.map_err(ValidateError::Panicked)
            }
            Err(_) => {
                self.set_aside(worker, timeout);
                Err(ValidateError::Timeout(timeout))
            }
        }
    }

    /// Disconnects `worker`'s inbox, so it ends once its job returns, and counts it as stuck.
    fn set_aside(&mut self, mut worker: Worker, timeout: Duration) {
        worker.inbox = None;
        worker.since = Instant::now();
        let id = worker.id;
        self.stuck.push(worker);
        tracing::warn!(
            event = "reload.worker.abandoned",
            worker = id,
            timeout_ms = timeout.as_millis() as u64,
            stuck = self.stuck.len(),
            limit = self.max_stuck,
            "an attempt outlived the reload timeout; its worker is set aside and the next attempt gets a fresh one"
        );
    }
}

fn read_with_retries(plan: &ReadPlan) -> Result<Sources, ReadError> {
    let mut wait = plan.backoff;
    let mut attempt = 1;
    loop {
        match Sources::read_dir(&plan.dir, plan.limits.max_file_bytes) {
            Ok(s) => return Ok(s),
            Err(e) if attempt >= plan.attempts => return Err(e),
            Err(e) => {
                tracing::warn!(event = "reload.read_retry", attempt, error = %e, cause = %e.source, "reading the config directory failed; reading it again");
                std::thread::sleep(wait);
                wait *= 2;
                attempt += 1;
            }
        }
    }
}

/// Joins the idle worker, and set-aside workers that have already ended; a worker still stuck is
/// left to end by itself (it holds nothing the process needs), never waited for.
impl<S: Schema> Drop for Validator<S> {
    fn drop(&mut self) {
        if let Some(mut worker) = self.current.take() {
            // Idle by construction: disconnecting its inbox (which wakes it) ends it at once.
            worker.inbox = None;
            let _ = worker.thread.join();
        }
        for worker in self.stuck.drain(..) {
            if worker.thread.is_finished() {
                let _ = worker.thread.join();
            } else {
                tracing::warn!(event = "reload.worker.detached", worker = worker.id, "left stuck at shutdown");
            }
        }
    }
}
