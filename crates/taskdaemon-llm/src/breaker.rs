//! A circuit breaker: stop calling a provider that keeps failing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::LlmError;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// Opens after `threshold` consecutive provider failures; after `cooldown`
/// it half-opens and lets one probe through: success closes it, failure
/// re-opens it. Clones share state.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Arc<Mutex<State>>,
}

/// What the breaker is doing, for status displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused.
    Open,
    /// One probe call is allowed.
    HalfOpen,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        CircuitBreaker {
            threshold: threshold.max(1),
            cooldown,
            state: Arc::new(Mutex::new(State::Closed { failures: 0 })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        let mut s = self.lock();
        if let State::Open { until } = *s
            && Instant::now() >= until
        {
            *s = State::HalfOpen { probing: false };
        }
        match *s {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Call before each attempt: errors with [`LlmError::CircuitOpen`] when the call must not be made.
    pub fn before_call(&self) -> Result<(), LlmError> {
        let mut s = self.lock();
        let now = Instant::now();
        match *s {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now < until => Err(LlmError::CircuitOpen {
                retry_in: until - now,
            }),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *s = State::HalfOpen { probing: true };
                Ok(())
            }
            State::HalfOpen { probing: true } => Err(LlmError::CircuitOpen {
                retry_in: Duration::ZERO,
            }),
        }
    }

    /// Records a successful call.
    pub fn on_success(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    /// Records a provider failure.
    pub fn on_failure(&self) {
        let mut s = self.lock();
        let open = State::Open {
            until: Instant::now() + self.cooldown,
        };
        *s = match *s {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            _ => open,
        };
    }

    /// Records a finished call that says nothing about provider health (e.g.
    /// a 400): a half-open probe slot is released without deciding.
    pub fn on_neutral(&self) {
        let mut s = self.lock();
        if let State::HalfOpen { probing: true } = *s {
            *s = State::HalfOpen { probing: false };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_half_opens_and_closes() {
        let b = CircuitBreaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            b.before_call().unwrap();
            b.on_failure();
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.before_call().unwrap();
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(matches!(b.before_call(), Err(LlmError::CircuitOpen { .. })));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.before_call().unwrap();
        // Only one probe at a time.
        assert!(b.clone().before_call().is_err());
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(11)).await;
        b.before_call().unwrap();
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn success_resets_the_count() {
        let b = CircuitBreaker::new(2, Duration::from_secs(10));
        b.on_failure();
        b.on_success();
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
