//! Rate limiters per provider: a request bucket (`rpm`, capacity `burst`) and a token bucket
//! (`tokens_per_minute`). A bucket's budget outlives config versions: a reload changes the limits
//! it is judged by, never the budget already spent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{GatewayConfig, ProviderName, RateLimit};
use hotconf::{Component, Publication};

/// The limiter's answer to one request for a permit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Go ahead.
    Allowed {
        /// Whole requests left in the burst.
        remaining_requests: u32,
        /// Tokens left in the minute's budget.
        remaining_tokens: u64,
    },
    /// Not now.
    Denied {
        /// When a retry would be allowed; `None` when the request can never be (more tokens than
        /// the per-minute limit).
        #[serde(serialize_with = "secs_opt")]
        retry_after: Option<Duration>,
    },
    /// The provider has no rate limits: not limited.
    Unlimited,
}

fn secs_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// The budget of one provider: requests and tokens left, as of `last`.
#[derive(Debug)]
struct Budget {
    requests: f64,
    tokens: f64,
    last: Instant,
}

/// One provider's limiter. Shared by every version that limits the provider.
#[derive(Debug)]
pub struct Bucket {
    budget: Mutex<Budget>,
}

impl Bucket {
    fn new(limit: &RateLimit, now: Instant) -> Self {
        let budget =
            Budget { requests: f64::from(limit.burst.get()), tokens: limit.tokens_per_minute.get() as f64, last: now };
        Self { budget: Mutex::new(budget) }
    }

    /// Takes one request and `tokens` tokens under `limit`, if the budget allows.
    pub fn acquire(&self, limit: &RateLimit, tokens: u64, now: Instant) -> Decision {
        let rps = f64::from(limit.rpm.get()) / 60.0;
        let burst = f64::from(limit.burst.get());
        let tps = limit.tokens_per_minute.get() as f64 / 60.0;
        let token_cap = limit.tokens_per_minute.get() as f64;
        if tokens as f64 > token_cap {
            return Decision::Denied { retry_after: None };
        }
        // A poisoned lock only means another request panicked mid-update; the budget is still a number.
        let mut b = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.last = b.last.max(now);
        // Refill, then clamp to this version's capacity: a lowered burst takes effect at once.
        b.requests = (b.requests + elapsed * rps).min(burst);
        b.tokens = (b.tokens + elapsed * tps).min(token_cap);
        let need_tokens = tokens as f64;
        if b.requests >= 1.0 && b.tokens >= need_tokens {
            b.requests -= 1.0;
            b.tokens -= need_tokens;
            Decision::Allowed {
                remaining_requests: b.requests.floor() as u32,
                remaining_tokens: b.tokens.floor() as u64,
            }
        } else {
            let wait_requests = if b.requests >= 1.0 { 0.0 } else { (1.0 - b.requests) / rps };
            let wait_tokens = if b.tokens >= need_tokens { 0.0 } else { (need_tokens - b.tokens) / tps };
            Decision::Denied { retry_after: Some(Duration::from_secs_f64(wait_requests.max(wait_tokens))) }
        }
    }

    /// Requests and tokens left, without taking any (as of the last acquisition).
    pub fn remaining(&self) -> (f64, f64) {
        let b = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        (b.requests, b.tokens)
    }
}

/// The limiters of one version: each limited provider's bucket and the limits it is judged by.
#[derive(Debug, Default)]
pub struct LimiterTable {
    limiters: BTreeMap<ProviderName, (Arc<Bucket>, RateLimit)>,
}

impl LimiterTable {
    /// Asks the limiter of `provider` for a permit for one request of `tokens` tokens.
    /// `None` when the provider does not exist in this version.
    pub fn acquire(&self, provider: &str, tokens: u64, now: Instant) -> Decision {
        match self.limiters.get(provider) {
            Some((bucket, limit)) => bucket.acquire(limit, tokens, now),
            None => Decision::Unlimited,
        }
    }

    /// The limits and bucket of `provider`.
    pub fn get(&self, provider: &str) -> Option<(&Arc<Bucket>, &RateLimit)> {
        self.limiters.get(provider).map(|(b, l)| (b, l))
    }

    /// The limited providers.
    pub fn providers(&self) -> impl Iterator<Item = &ProviderName> {
        self.limiters.keys()
    }
}

/// The rate-limiter component: keeps each provider's bucket across versions, adds buckets for new
/// providers, drops those of removed ones.
#[derive(Debug, Default)]
pub struct RateLimiters {
    buckets: BTreeMap<ProviderName, Arc<Bucket>>,
}

impl RateLimiters {
    /// The component's name (its thread is `hotconf-rate_limiter`; its part is found under it).
    pub const NAME: &'static str = "rate_limiter";
}

impl Component<GatewayConfig> for RateLimiters {
    type Part = LimiterTable;

    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn build(&mut self, publication: &Publication<GatewayConfig>) -> LimiterTable {
        let now = Instant::now();
        let limits = publication.config().rate_limits();
        self.buckets.retain(|name, _| limits.contains_key(name));
        let limiters = limits
            .iter()
            .map(|(name, limit)| {
                let bucket = self.buckets.entry(name.clone()).or_insert_with(|| Arc::new(Bucket::new(limit, now)));
                (name.clone(), (Arc::clone(bucket), *limit))
            })
            .collect();
        LimiterTable { limiters }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::{NonZeroU32, NonZeroU64};

    fn limit(rpm: u32, burst: u32, tpm: u64) -> RateLimit {
        RateLimit {
            rpm: NonZeroU32::new(rpm).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
            tokens_per_minute: NonZeroU64::new(tpm).unwrap(),
        }
    }

    #[test]
    fn burst_then_refill_at_rpm() {
        let t0 = Instant::now();
        let l = limit(60, 2, 1_000_000);
        let b = Bucket::new(&l, t0);
        assert!(matches!(b.acquire(&l, 1, t0), Decision::Allowed { remaining_requests: 1, .. }));
        assert!(matches!(b.acquire(&l, 1, t0), Decision::Allowed { remaining_requests: 0, .. }));
        let Decision::Denied { retry_after: Some(wait) } = b.acquire(&l, 1, t0) else { panic!() };
        assert_eq!(wait, Duration::from_secs(1));
        assert!(matches!(b.acquire(&l, 1, t0 + Duration::from_secs(1)), Decision::Allowed { .. }));
    }

    #[test]
    fn tokens_are_limited_too() {
        let t0 = Instant::now();
        let l = limit(600, 10, 100);
        let b = Bucket::new(&l, t0);
        assert!(matches!(b.acquire(&l, 80, t0), Decision::Allowed { remaining_tokens: 20, .. }));
        assert!(matches!(b.acquire(&l, 30, t0), Decision::Denied { retry_after: Some(_) }));
        assert_eq!(b.acquire(&l, 101, t0), Decision::Denied { retry_after: None });
    }

    #[test]
    fn new_limits_keep_the_spent_budget_clamped_to_the_new_burst() {
        let t0 = Instant::now();
        let old = limit(60, 10, 1000);
        let b = Bucket::new(&old, t0);
        for _ in 0..3 {
            b.acquire(&old, 1, t0);
        }
        // 7 left; a raised burst does not refill it.
        let raised = limit(60, 50, 1000);
        assert!(matches!(b.acquire(&raised, 1, t0), Decision::Allowed { remaining_requests: 6, .. }));
        // A lowered burst clamps it.
        let lowered = limit(60, 2, 1000);
        assert!(matches!(b.acquire(&lowered, 1, t0), Decision::Allowed { remaining_requests: 1, .. }));
    }
}
