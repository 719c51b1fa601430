//! A live component on its own named thread: it receives each publication, builds its part of the
//! service's state for that version, and acknowledges with it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::{panic_message, ApplyError, Publication};
use crate::park::{self, Inbox, Wake};

/// A component: derives its per-version state from a publication, on its own thread.
///
/// Added to a live config with [`Hotconf::with_component`](crate::Hotconf::with_component): a
/// version goes live only once every component built its part. A `build` that panics is a failed
/// attempt (the running version stays), never a dead thread.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use hotconf::{Component, Publication};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct App { workers: u32 }
///
/// /// Resizes a worker pool to each version's `workers`.
/// struct Pool { size: Arc<AtomicU32> }
///
/// impl Component<App> for Pool {
///     type Part = u32;
///     fn name(&self) -> &'static str {
///         "pool" // its thread is `hotconf-pool`
///     }
///     fn build(&mut self, publication: &Publication<App>) -> u32 {
///         let workers = publication.config().workers;
///         self.size.store(workers, Ordering::Release);
///         workers
///     }
/// }
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("app.yaml");
/// # std::fs::write(&path, "workers: 4\n")?;
/// let size = Arc::new(AtomicU32::new(0));
/// let live = hotconf::Hotconf::<App>::file(&path).with_component(Pool { size: Arc::clone(&size) }).start()?;
/// // The first version went live only after the pool was resized.
/// assert_eq!(size.load(Ordering::Acquire), 4);
/// assert!(live.status().components.iter().any(|c| c.name == "pool" && c.applied_version == Some(1)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Component<C>: Send + 'static {
    /// What it builds for one version (shared read-only by requests).
    type Part: Send + Sync + 'static;

    /// Its name, used for the thread, logs, metrics and status.
    fn name(&self) -> &'static str;

    /// Builds its state for `publication`.
    fn build(&mut self, publication: &Publication<C>) -> Self::Part;
}

/// A component's acknowledgement of one version.
#[derive(Debug)]
pub(crate) struct Ack<P> {
    /// The part built, or the panic message.
    pub part: Result<P, String>,
}

/// A publication, where to acknowledge it, and the requester to wake once it is acknowledged.
type Request<C, P> = (Arc<Publication<C>>, Sender<Ack<P>>, Wake);

/// A component's acknowledgement of one version, still to come: the one wait for it.
pub(crate) struct PendingAck<P> {
    component: &'static str,
    version: u64,
    ack: Receiver<Ack<P>>,
}

impl<P> PendingAck<P> {
    /// The part built, waiting until `deadline`; `budget` is the whole time allowed, for the error.
    pub fn wait(self, deadline: std::time::Instant, budget: std::time::Duration) -> Result<P, ApplyError> {
        let (component, version) = (self.component, self.version);
        match park::recv(&self.ack, Some(deadline)) {
            Ok(Ack { part: Ok(part) }) => Ok(part),
            Ok(Ack { part: Err(message) }) => Err(ApplyError::Panicked { component, version, message }),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Err(ApplyError::AckTimeout { component, version, timeout: budget })
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(ApplyError::Stopped { component }),
        }
    }
}

/// Owns a component's thread: dropping the handle disconnects its inbox and joins it.
#[derive(Debug)]
pub(crate) struct ComponentHandle<C, P> {
    name: &'static str,
    inbox: Option<Inbox<Request<C, P>>>,
    thread: Option<JoinHandle<()>>,
    applied: Arc<AtomicU64>,
}

impl<C: Send + Sync + 'static, P: Send + Sync + 'static> ComponentHandle<C, P> {
    /// Starts `component` on a thread named `hotconf-<name>`.
    pub fn spawn<K: Component<C, Part = P>>(mut component: K) -> std::io::Result<Self> {
        let name = component.name();
        let (tx, rx) = bounded::<Request<C, P>>(4);
        let thread = std::thread::Builder::new().name(format!("hotconf-{name}")).spawn(move || {
            // Parked between publications (its `Inbox` wakes it for each request and when the handle
            // drops it); the requester is woken once its acknowledgement is sent.
            while let Ok((publication, reply, requester)) = park::recv(&rx, None) {
                let part = catch_unwind(AssertUnwindSafe(|| component.build(&publication)))
                    .map_err(|p| panic_message(p.as_ref()));
                // The requester may have given up waiting; that is its business.
                let _ = reply.send(Ack { part });
                drop(requester);
            }
        })?;
        let inbox = Inbox::new(tx, thread.thread());
        Ok(Self { name, inbox: Some(inbox), thread: Some(thread), applied: Arc::new(AtomicU64::new(0)) })
    }

    /// The component's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Sends `publication`; its acknowledgement is waited for on the returned [`PendingAck`].
    pub fn request(&self, publication: Arc<Publication<C>>) -> Result<PendingAck<P>, ApplyError> {
        let version = publication.version();
        let (reply, ack) = bounded(1);
        let inbox = self.inbox.as_ref().ok_or(ApplyError::Stopped { component: self.name })?;
        inbox.send((publication, reply, Wake::me())).map_err(|_| ApplyError::Stopped { component: self.name })?;
        Ok(PendingAck { component: self.name, version, ack })
    }

    /// Records that `version` is live for this component.
    pub fn mark_applied(&self, version: u64) {
        self.applied.store(version, Ordering::Release);
    }

    /// The version this component last applied, if any.
    pub fn applied(&self) -> Option<u64> {
        match self.applied.load(Ordering::Acquire) {
            0 => None,
            v => Some(v),
        }
    }
}

impl<C, P> Drop for ComponentHandle<C, P> {
    fn drop(&mut self) {
        self.inbox.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
