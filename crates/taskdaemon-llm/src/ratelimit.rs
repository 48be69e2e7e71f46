//! A token-bucket rate limiter shared by every loop of a provider.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        self.last = now;
    }
}

/// Allows `capacity` requests at once and `per_sec` sustained. Clones share
/// one bucket, so give every loop of a provider a clone of the same limiter.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    bucket: Arc<Mutex<Bucket>>,
}

impl RateLimiter {
    /// A full bucket of `capacity` tokens refilled at `per_sec` tokens per second.
    pub fn new(capacity: u32, per_sec: f64) -> Self {
        let capacity = f64::from(capacity.max(1));
        RateLimiter {
            bucket: Arc::new(Mutex::new(Bucket {
                capacity,
                per_sec: per_sec.max(f64::MIN_POSITIVE),
                tokens: capacity,
                last: Instant::now(),
            })),
        }
    }

    /// `per_minute` requests per minute, bursting up to `burst`.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        Self::new(burst, f64::from(per_minute) / 60.0)
    }

    /// Takes a token if one is available now; otherwise how long until one is.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        b.refill(Instant::now());
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / b.per_sec))
        }
    }

    /// Whether a request now would have to wait for a token (the bucket is
    /// empty); takes nothing. For backpressure: start no new work while so.
    pub fn saturated(&self) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        b.refill(Instant::now());
        b.tokens < 1.0
    }

    /// Waits until a token is available and takes it.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire() {
                Ok(()) => return,
                // Another waiter may take the token first; then we just wait again.
                Err(wait) => tokio::time::sleep(wait.max(Duration::from_millis(1))).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn saturated_while_the_bucket_is_empty() {
        let limiter = RateLimiter::new(1, 1.0);
        assert!(!limiter.saturated());
        assert!(limiter.try_acquire().is_ok());
        assert!(limiter.saturated(), "the one token is taken");
        assert!(limiter.saturated(), "asking takes nothing");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!limiter.saturated(), "refilled");
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_then_paces() {
        let limiter = RateLimiter::new(2, 10.0);
        let shared = limiter.clone();
        assert!(limiter.try_acquire().is_ok());
        assert!(shared.try_acquire().is_ok());
        let wait = limiter.try_acquire().unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
        let start = Instant::now();
        shared.acquire().await;
        shared.acquire().await;
        // Two more tokens at 10/s take about 200ms of (paused, auto-advanced) time.
        assert!(start.elapsed() >= Duration::from_millis(190));
    }
}
