//! Waiting for a channel without spinning. Crossbeam's blocking receive spins, then yields the
//! processor several times, before it sleeps: cheap for one service on idle cores, but where
//! thousands of threads share two cores (a fleet of replicas on one node) those spins and yields
//! cost each reload more than the work it waits for. A thread that waits here parks (one futex
//! wait) and whoever sends to it unparks it. Below every stage: the reloader, its validator
//! workers and the components use it.
//!
//! The rule that makes it correct: every send to a parked receiver, and every drop of the last
//! sender, is followed by [`std::thread::Thread::unpark`] of the receiving thread ([`Inbox`] does
//! both for a thread's inbox, [`Wake`] on drop for a reply). An unpark that comes before the park is not lost (the park returns at once), and a
//! spurious return only goes round the loop.

use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, SendError, Sender, TryRecvError, TrySendError};

/// Receives from `rx`, parking between looks until a message, the disconnection of every sender,
/// or `deadline` (none: no limit). The senders must unpark this thread (see the module).
pub(crate) fn recv<T>(rx: &Receiver<T>, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
    loop {
        match rx.try_recv() {
            Ok(message) => return Ok(message),
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {}
        }
        match deadline {
            None => thread::park(),
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => thread::park_timeout(left),
                _ => return Err(RecvTimeoutError::Timeout),
            },
        }
    }
}

/// Where the senders to a thread that waits on several channels ring after each send (and after
/// dropping a sender): the thread answers the door once, at the start of its loop, and parks
/// between looks at its channels. A ring before it answered is not lost: it looks at its channels
/// after answering, before it first parks (the fences order the answer against the senders'
/// sends).
#[derive(Debug, Clone, Default)]
pub(crate) struct Doorbell(Arc<OnceLock<Thread>>);

impl Doorbell {
    /// Makes the calling thread the one this doorbell wakes (the first call only).
    pub(crate) fn answer_here(&self) {
        let _ = self.0.set(thread::current());
        fence(Ordering::SeqCst);
    }

    /// Wakes the thread that answered, if one has; call it after the send.
    pub(crate) fn ring(&self) {
        fence(Ordering::SeqCst);
        if let Some(thread) = self.0.get() {
            thread.unpark();
        }
    }
}

/// The sending side of a parked thread's inbox: each send unparks the thread, and so does
/// dropping it, after the channel's sender is gone (fields drop in order), so the thread wakes to
/// find its inbox disconnected.
pub(crate) struct Inbox<T> {
    tx: Sender<T>,
    receiver: Wake,
}

impl<T> std::fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").field("receiver", &self.receiver.0.name()).finish_non_exhaustive()
    }
}

impl<T> Inbox<T> {
    /// The inbox of `receiver`, which waits on the other end of `tx` with [`recv`].
    pub(crate) fn new(tx: Sender<T>, receiver: &Thread) -> Self {
        Self { tx, receiver: Wake(receiver.clone()) }
    }

    /// Sends `message` (waiting for room in a bounded channel) and wakes the receiver.
    pub(crate) fn send(&self, message: T) -> Result<(), SendError<T>> {
        let sent = self.tx.send(message);
        self.receiver.0.unpark();
        sent
    }

    /// Sends `message` if there is room now, and wakes the receiver.
    pub(crate) fn try_send(&self, message: T) -> Result<(), TrySendError<T>> {
        let sent = self.tx.try_send(message);
        self.receiver.0.unpark();
        sent
    }
}

/// Unparks a thread when dropped: carried with a reply (after the reply is sent, or if it never
/// is), and by an [`Inbox`].
#[derive(Debug)]
pub(crate) struct Wake(Thread);

impl Wake {
    /// Wakes the calling thread when dropped.
    pub(crate) fn me() -> Self {
        Self(thread::current())
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        self.0.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_message_sent_before_or_while_parked_is_received_and_a_deadline_ends_the_wait() {
        let (tx, rx) = crossbeam_channel::unbounded();
        // Sent (and unparked) before the wait: found at once.
        tx.send(1).unwrap();
        drop(Wake::me());
        assert_eq!(recv(&rx, None), Ok(1));
        // Sent by another thread while this one is parked.
        let me = Wake::me();
        let sender = thread::spawn(move || {
            tx.send(2).unwrap();
            drop(me);
            tx
        });
        assert_eq!(recv(&rx, Some(Instant::now() + Duration::from_secs(10))), Ok(2));
        let tx = sender.join().unwrap();
        // Nothing comes: the deadline ends the wait.
        let started = Instant::now();
        assert_eq!(recv(&rx, Some(started + Duration::from_millis(30))), Err(RecvTimeoutError::Timeout));
        assert!(started.elapsed() >= Duration::from_millis(30));
        // Every sender gone (and the receiver woken): disconnected, not a hang.
        let me = Wake::me();
        thread::spawn(move || {
            drop(tx);
            drop(me);
        });
        assert_eq!(recv(&rx, None), Err(RecvTimeoutError::Disconnected));
    }

    #[test]
    fn an_inbox_wakes_its_receiver_for_each_message_and_when_it_is_dropped() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        // Parked with no deadline: only the inbox's sends and its drop end the waits.
        let receiver = thread::spawn(move || std::iter::from_fn(|| recv(&rx, None).ok()).collect::<Vec<u32>>());
        let inbox = Inbox::new(tx, receiver.thread());
        inbox.send(1).unwrap();
        inbox.send(2).unwrap();
        drop(inbox);
        assert_eq!(receiver.join().unwrap(), [1, 2]);
    }

    #[test]
    fn a_doorbell_wakes_the_thread_that_answered_it_and_a_ring_before_the_answer_is_not_lost() {
        let bell = Doorbell::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        // Sent and rung before anyone answered: the answering thread looks before it parks.
        tx.send(1).unwrap();
        bell.ring();
        let listener = {
            let bell = bell.clone();
            thread::spawn(move || {
                bell.answer_here();
                let mut got = Vec::new();
                while got.len() < 2 {
                    match rx.try_recv() {
                        Ok(n) => got.push(n),
                        // Parked with no deadline: only a ring ends this wait.
                        Err(_) => thread::park(),
                    }
                }
                got
            })
        };
        tx.send(2).unwrap();
        bell.ring();
        assert_eq!(listener.join().unwrap(), [1, 2]);
    }
}
