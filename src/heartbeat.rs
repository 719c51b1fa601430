//! Heartbeats: when a long-lived thread last came round its loop, and how long it may take before
//! it comes round again. Below every stage (the poller and the reloader each own one); read by
//! [`Live::status`](crate::Live::status) for liveness. Times are passed in, so it is tested
//! without a clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The least a thread is allowed between two beats, whatever its own period: a scheduling hiccup
/// on a busy machine is not a stall.
pub(crate) const MIN_ALLOWANCE: Duration = Duration::from_secs(2);

/// One thread's heartbeat, shared (cheaply cloned) between the thread and its readers: two atomic
/// words, no lock, no system call.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    origin: Instant,
    /// Milliseconds from `origin` to the last beat.
    last: Arc<AtomicU64>,
    /// Milliseconds from `origin` past which, without a new beat, the thread is stalled.
    due: Arc<AtomicU64>,
}

impl Heartbeat {
    /// A heartbeat that beat at `now`, due again within `allowance`.
    pub(crate) fn new(now: Instant, allowance: Duration) -> Self {
        let beat = Self { origin: now, last: Arc::default(), due: Arc::default() };
        beat.beat(now, allowance);
        beat
    }

    /// The thread came round its loop at `now`; it must again within `allowance` (at least
    /// [`MIN_ALLOWANCE`]).
    pub(crate) fn beat(&self, now: Instant, allowance: Duration) {
        let at = self.millis(now);
        self.last.store(at, Ordering::Relaxed);
        self.due.store(at.saturating_add(allowance.max(MIN_ALLOWANCE).as_millis() as u64), Ordering::Relaxed);
    }

    /// How long ago the last beat was, at `now`.
    pub(crate) fn age(&self, now: Instant) -> Duration {
        Duration::from_millis(self.millis(now).saturating_sub(self.last.load(Ordering::Relaxed)))
    }

    /// Whether the thread is past its allowance at `now`.
    pub(crate) fn stalled(&self, now: Instant) -> bool {
        self.millis(now) > self.due.load(Ordering::Relaxed)
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_is_due_within_its_allowance_and_never_less_than_the_minimum() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let hb = Heartbeat::new(t0, s(3));
        assert!(!hb.stalled(t0 + s(3)));
        assert!(hb.stalled(t0 + s(3) + Duration::from_millis(1)));
        assert_eq!(hb.age(t0 + s(3)), s(3));
        // A short allowance is raised to the minimum.
        hb.beat(t0 + s(10), Duration::from_millis(100));
        assert!(!hb.stalled(t0 + s(10) + MIN_ALLOWANCE));
        assert!(hb.stalled(t0 + s(10) + MIN_ALLOWANCE + Duration::from_millis(1)));
        assert_eq!(hb.age(t0 + s(11)), s(1));
        // A reader on another clone sees the thread's beats.
        let reader = hb.clone();
        hb.beat(t0 + s(20), s(5));
        assert!(!reader.stalled(t0 + s(24)));
    }
}
