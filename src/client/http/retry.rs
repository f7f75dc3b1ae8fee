//! How often and how long to wait before sending a request again after a transient
//! failure (transport error, 5xx): bounded exponential backoff with jitter. Only the
//! policy; [`super::HttpClient::send`] decides what is transient and idempotent.

use std::time::Duration;

use rand::Rng;

/// Bounded exponential backoff with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry (before jitter).
    pub initial_delay: Duration,
    /// Upper bound of any one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Self::default() }
    }

    /// The delay before retry number `retry` (0-based): `initial * 2^retry`, capped at
    /// `max_delay`, then jittered to a uniform value in `[cap/2, cap]` so that many
    /// clients failing together do not retry together.
    pub fn delay(&self, retry: u32) -> Duration {
        let cap = self.initial_delay.saturating_mul(2u32.saturating_pow(retry.min(20))).min(self.max_delay);
        let half = cap / 2;
        let nanos = u64::try_from(cap.saturating_sub(half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_and_is_bounded() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d0 = p.delay(0);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100), "{d0:?}");
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800), "{d3:?}");
            let d30 = p.delay(30);
            assert!(d30 >= Duration::from_millis(500) && d30 <= Duration::from_secs(1), "{d30:?}");
        }
    }
}
