//! Time, injected: the core never reads a clock itself; the thread shell asks a [`Clock`] and tests
//! move a [`FakeClock`] by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A source of monotonic time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to, like governor's `FakeRelativeClock`. Clones share the
/// same time, so a test can keep one and hand another to the code under test.
///
/// ```
/// use std::time::Duration;
/// use hotconf::testing::{Clock, FakeClock};
/// let clock = FakeClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_millis(250));
/// assert_eq!(clock.now() - t0, Duration::from_millis(250));
/// ```
#[derive(Debug, Clone)]
#[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
pub struct FakeClock {
    origin: Instant,
    elapsed_nanos: Arc<AtomicU64>,
}

#[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
impl FakeClock {
    /// A clock standing at an arbitrary fixed instant.
    pub fn new() -> Self {
        Self { origin: Instant::now(), elapsed_nanos: Arc::new(AtomicU64::new(0)) }
    }

    /// Moves the clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.elapsed_nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.origin + Duration::from_nanos(self.elapsed_nanos.load(Ordering::SeqCst))
    }
}
