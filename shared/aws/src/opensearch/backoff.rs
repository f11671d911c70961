//! The delays between attempts: exponential backoff with full jitter (base 100 ms, cap 5 s),
//! so that many invocations throttled together do not retry together.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime};

/// The ceiling of the first retry's delay; it doubles with every retry.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// The largest ceiling of any delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// The delay before retry `retry` (0 for the first), drawn uniformly from
/// `[0, min(cap, base * 2^retry)]` by the random number `draw`.
pub fn backoff_delay(retry: u32, draw: u64) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(retry.min(16)))
        .min(BACKOFF_CAP);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(draw % nanos.saturating_add(1))
}

/// A random number for the jitter: each `RandomState` gets fresh keys, and the clock is
/// mixed in so that processes started alike do not draw alike.
pub fn draw() -> u64 {
    RandomState::new().hash_one(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_a_ceiling_that_doubles_up_to_the_cap() {
        for retry in 0..40 {
            let ceiling = (BACKOFF_BASE * 2u32.pow(retry.min(6))).min(BACKOFF_CAP);
            for _ in 0..50 {
                assert!(backoff_delay(retry, draw()) <= ceiling);
            }
        }
        assert_eq!(backoff_delay(3, 800_000_001), Duration::ZERO);
    }
}
