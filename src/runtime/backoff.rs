//! Exponential backoff with a cap and jitter: how long to wait before retry number n.
//! Pure arithmetic: the random sample is a parameter, so the policy is tested exactly;
//! callers draw it from an RNG.

use std::time::Duration;

/// An exponential backoff policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// No delay is ever longer than this.
    pub max: Duration,
    /// Growth per failed attempt (2.0 doubles).
    pub factor: f64,
    /// Fraction (0.0 – 1.0) of the delay that is randomly taken off, so objects that
    /// failed together do not retry in lock-step. Taking off (never adding) keeps
    /// every delay within `max`.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s … up to 5 minutes, each up to 10 % shorter at random.
    fn default() -> Self {
        Self { initial: Duration::from_secs(1), max: Duration::from_secs(300), factor: 2.0, jitter: 0.1 }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (1 = the first failure), given a
    /// uniform random `sample` in `[0, 1)`.
    pub fn delay(&self, failures: u32, sample: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(64) as i32;
        let base = self.initial.as_secs_f64() * self.factor.max(1.0).powi(exponent);
        let capped = base.min(self.max.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0) * sample.clamp(0.0, 1.0);
        Duration::from_secs_f64(capped * (1.0 - jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let b = Backoff { initial: secs(1.0), max: secs(30.0), factor: 2.0, jitter: 0.0 };
        let delays: Vec<_> = (1..=7).map(|n| b.delay(n, 0.5)).collect();
        assert_eq!(delays, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0].map(secs));
        assert_eq!(b.delay(u32::MAX, 0.0), secs(30.0), "huge attempt counts stay capped");
        assert_eq!(b.delay(0, 0.0), secs(1.0), "zero failures is treated as the first");
    }

    #[test]
    fn jitter_only_shortens_and_stays_in_range() {
        let b = Backoff { initial: secs(10.0), max: secs(100.0), factor: 3.0, jitter: 0.25 };
        assert_eq!(b.delay(1, 0.0), secs(10.0));
        assert_eq!(b.delay(1, 0.5), secs(8.75));
        assert!(b.delay(1, 0.999) > secs(7.5));
        assert_eq!(b.delay(5, 0.0), secs(100.0));
        assert_eq!(b.delay(5, 1.0), secs(75.0));
    }

    #[test]
    fn nonsense_parameters_are_tamed() {
        let b = Backoff { initial: secs(1.0), max: secs(10.0), factor: 0.5, jitter: 7.0 };
        assert_eq!(b.delay(3, 0.0), secs(1.0), "a factor below 1 never shrinks delays");
        assert_eq!(b.delay(3, 2.0), secs(0.0), "jitter and sample are clamped");
    }
}
