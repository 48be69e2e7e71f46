//! The retry policy: how many attempts and how long to wait between them.
//!
//! This is the only place retry timing is decided; [`crate::Llm`] asks it.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// Jittered exponential backoff that honours the server's `retry-after`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retries).
    pub max_attempts: u32,
    /// Delay before the first retry, before jitter.
    pub base_delay: Duration,
    /// Cap on the exponential delay.
    pub max_delay: Duration,
    /// Cap on a server-requested delay, so a hostile or buggy `retry-after`
    /// cannot park a loop for hours.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait after failed attempt `attempt` (1-based). Exponential
    /// `base * 2^(attempt-1)` capped at `max_delay`, with "equal jitter" (half
    /// fixed, half random) so many loops hitting one limit spread out; never
    /// less than the server's `retry_after` (itself capped).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay);
        let half = exp / 2;
        let jittered = half + half.mul_f64(random_unit());
        match retry_after {
            Some(server) => jittered.max(server.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

/// A random number in [0, 1). Jitter needs no quality, only independence
/// between loops; `RandomState` is seeded randomly per instance.
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses a `retry-after` value: delay seconds (fractions tolerated) or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("0.25", now),
            Some(Duration::from_millis(250))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn delay_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        };
        for attempt in 1..=8 {
            let exp = (100u64 << (attempt - 1)).min(1000);
            let d = p.delay(attempt, None).as_millis() as u64;
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d}ms");
        }
        assert!(p.delay(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
        assert!(p.delay(1, Some(Duration::from_secs(3600))) <= Duration::from_secs(5));
    }
}
