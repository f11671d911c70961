//! Exponential backoff with full jitter, for the retries an adapter makes itself
//! (`UnprocessedItems`, cancelled transactions, failed batch entries).
//!
//! The delay before attempt `n` (counting from 1 for the first retry) is drawn uniformly from
//! `[0, min(cap, base * 2^(n-1))]`, as AWS's architecture guidance recommends: retries of
//! many clients spread out instead of arriving together.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// A retry schedule: how long to wait before each retry, and when to stop.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Retries stop once this much time has passed since the first attempt.
    pub deadline: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
            deadline: Duration::from_secs(20),
        }
    }
}

impl Backoff {
    /// The upper bound of the delay before retry `retry` (1 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(16));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A delay drawn uniformly from `[0, ceiling(retry)]`.
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry).as_nanos() as u64;
        if ceiling == 0 {
            return Duration::ZERO;
        }
        // A fresh `RandomState` is seeded from the operating system's randomness.
        let draw = RandomState::new().hash_one(retry);
        Duration::from_nanos(draw % (ceiling + 1))
    }

    /// Starts a retry sequence.
    pub fn start(self) -> Attempts {
        Attempts {
            backoff: self,
            started: Instant::now(),
            retries: 0,
        }
    }
}

/// One sequence of retries under a [`Backoff`].
#[derive(Debug)]
pub struct Attempts {
    backoff: Backoff,
    started: Instant,
    retries: u32,
}

impl Attempts {
    /// Waits before the next retry; false (without waiting) when the deadline has passed.
    pub async fn wait(&mut self) -> bool {
        self.retries += 1;
        let delay = self.backoff.delay(self.retries);
        if self.started.elapsed() + delay > self.backoff.deadline {
            return false;
        }
        tokio::time::sleep(delay).await;
        true
    }

    /// Retries made so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap_and_delays_stay_under_them() {
        let backoff = Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
            deadline: Duration::from_secs(1),
        };
        let ceilings: Vec<u128> = (1..=6).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [10, 20, 40, 80, 100, 100]);
        for retry in 1..=40 {
            assert!(backoff.delay(retry) <= backoff.ceiling(retry));
        }
        assert!(backoff.ceiling(u32::MAX) == backoff.cap);
    }
}
