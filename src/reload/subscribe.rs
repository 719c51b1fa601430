//! Events for async code: a [`Subscription`] is woken, never blocked on (feature `async`).
//!
//! The events observer hands each event to every subscription's queue and wakes its task; a
//! subscription's `next` is a future that returns at once when an event is queued and otherwise
//! registers its waker. No runtime is named, so no runtime is compiled in: tokio, async-std and
//! smol tasks all poll it the same way. A queue holds at most [`EVENT_CAPACITY`] events (newer
//! ones are dropped while it is full, as the channel drops them); the status is always current.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;
#[cfg(feature = "async")]
use std::task::{Context, Poll};

use super::event::ReloadEvent;

/// The most events one subscription queues for a task that lags.
pub(crate) const EVENT_CAPACITY: usize = 256;

/// Every live subscription; fed by the events observer, closed when it goes away.
#[derive(Debug, Default)]
pub(crate) struct Subscribers {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    live: Vec<Arc<Slot>>,
    /// Closed: a subscription made now is closed from the start.
    closed: bool,
}

#[derive(Debug, Default)]
struct Slot {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    queue: VecDeque<ReloadEvent>,
    waker: Option<Waker>,
    /// The pipeline stopped: no event will come.
    closed: bool,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Subscribers {
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    fn subscribe(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.closed {
            slot.lock().closed = true;
        } else {
            slots.live.push(Arc::clone(&slot));
        }
        slot
    }

    /// Queues `event` for every subscription still held, and wakes each one's task (outside
    /// the locks). Subscriptions dropped since are forgotten here.
    pub(crate) fn send(&self, event: &ReloadEvent) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.live.retain(|slot| Arc::strong_count(slot) > 1);
        let mut wake = Vec::new();
        for slot in slots.live.iter() {
            let mut state = slot.lock();
            if state.queue.len() < EVENT_CAPACITY {
                state.queue.push_back(event.clone());
            }
            wake.extend(state.waker.take());
        }
        drop(slots);
        wake.into_iter().for_each(Waker::wake);
    }

    /// No more events: every subscription's `next` returns `None` once its queue is empty.
    pub(crate) fn close(&self) {
        let slots = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.closed = true;
            std::mem::take(&mut slots.live)
        };
        for slot in slots {
            let waker = {
                let mut state = slot.lock();
                state.closed = true;
                state.waker.take()
            };
            waker.into_iter().for_each(Waker::wake);
        }
    }
}

/// The [`ReloadEvent`]s of a [`Live`](crate::Live) for async code (feature `async`,
/// [`Live::subscribe`](crate::Live::subscribe)): awaiting [`Subscription::next`] never blocks
/// the runtime's thread, whatever the runtime. Each subscription gets every event from its
/// creation on; `None` once the `Live` is dropped.
///
/// ```
/// # #[derive(serde::Deserialize)]
/// # struct App { workers: u32 }
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("app.yaml");
/// # std::fs::write(&path, "workers: 1\n")?;
/// let live = hotconf::Hotconf::<App>::file(&path).start()?;
/// let mut events = live.subscribe();
/// # let _ = async move {
/// while let Some(event) = events.next().await {
///     println!("{event}"); // in a task of your runtime
/// }
/// # };
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "async")]
#[derive(Debug)]
pub struct Subscription {
    slot: Arc<Slot>,
}

#[cfg(feature = "async")]
impl Subscription {
    pub(crate) fn new(subscribers: &Subscribers) -> Self {
        Self { slot: subscribers.subscribe() }
    }

    /// The next event, waiting (without blocking a thread) until there is one; `None` once the
    /// pipeline stopped and every queued event was taken.
    pub async fn next(&mut self) -> Option<ReloadEvent> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next event, registering `cx`'s waker when there is none yet (for a
    /// hand-written `Stream` implementation).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<ReloadEvent>> {
        let mut state = self.slot.lock();
        if let Some(event) = state.queue.pop_front() {
            return Poll::Ready(Some(event));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
