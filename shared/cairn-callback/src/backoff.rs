use std::time::Duration;

/// Retry schedule: exponential with "equal jitter", capped, with a maximum number
/// of attempts.
///
/// The delay after failed attempt `n` (1-based) is `d/2 + jitter * d/2` where
/// `d = min(base * 2^(n-1), max_delay)` and `jitter` is in `[0, 1]`. Half the delay
/// is fixed so a receiver that is down gets breathing room; the other half spreads
/// a burst of callbacks out. In the Lambda this becomes the SQS visibility timeout
/// of the message being retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the second attempt, before jitter.
    pub base: Duration,
    /// Cap on the delay before jitter.
    pub max_delay: Duration,
    /// Total attempts, including the first one.
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 30 s, 1 min, 2 min, ... capped at 15 min (the SQS delay limit), 8 attempts:
    /// 23 to 46 minutes of waiting before a callback goes to the DLQ.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(30),
            max_delay: Duration::from_secs(15 * 60),
            max_attempts: 8,
        }
    }
}

impl Backoff {
    /// How long to wait after failed attempt number `attempt` (1-based), or `None`
    /// when it was the last one allowed. `jitter` is clamped to `[0, 1]`; pass a
    /// random value in production and a fixed one in tests.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Option<Duration> {
        if attempt == 0 || attempt >= self.max_attempts {
            return None;
        }
        let factor = 1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX);
        let full = self
            .base
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let half = full / 2;
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        Some(half + half.mul_f64(jitter))
    }

    /// [`Backoff::delay`] with a random jitter.
    pub fn delay_with_random_jitter(&self, attempt: u32) -> Option<Duration> {
        self.delay(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule() {
        let b = Backoff {
            base: Duration::from_secs(10),
            max_delay: Duration::from_secs(60),
            max_attempts: 6,
        };
        let no_jitter: Vec<_> = (1..=6).map(|n| b.delay(n, 0.0)).collect();
        let s = Duration::from_secs;
        assert_eq!(
            no_jitter,
            vec![
                Some(s(5)),
                Some(s(10)),
                Some(s(20)),
                Some(s(30)),
                Some(s(30)),
                None
            ]
        );
        let full_jitter: Vec<_> = (1..=5).map(|n| b.delay(n, 1.0)).collect();
        assert_eq!(
            full_jitter,
            vec![
                Some(s(10)),
                Some(s(20)),
                Some(s(40)),
                Some(s(60)),
                Some(s(60))
            ]
        );
        assert_eq!(b.delay(1, 0.5), Some(Duration::from_millis(7500)));
        // Out-of-range jitter is clamped, attempt 0 is not a failed attempt.
        assert_eq!(b.delay(1, 7.0), Some(s(10)));
        assert_eq!(b.delay(1, f64::NAN), Some(s(5)));
        assert_eq!(b.delay(0, 0.0), None);
        for _ in 0..100 {
            let d = b.delay_with_random_jitter(2).unwrap();
            assert!(d >= s(10) && d <= s(20), "{d:?}");
        }
    }

    #[test]
    fn huge_attempt_numbers_saturate_at_the_cap() {
        let b = Backoff {
            max_attempts: u32::MAX,
            ..Backoff::default()
        };
        assert_eq!(b.delay(40, 1.0), Some(b.max_delay));
        assert_eq!(b.delay(u32::MAX - 1, 0.0), Some(b.max_delay / 2));
    }

    #[test]
    fn default_reaches_the_dlq_in_bounded_time() {
        let b = Backoff::default();
        let total: Duration = (1..b.max_attempts).filter_map(|n| b.delay(n, 1.0)).sum();
        assert!(total <= Duration::from_secs(2 * 3600), "{total:?}");
        assert!(total >= Duration::from_secs(30 * 60), "{total:?}");
    }
}
