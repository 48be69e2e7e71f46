//! `Llm`: a client wrapped in retries, rate limiting and a circuit breaker.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::breaker::CircuitBreaker;
use crate::client::{LlmClient, build_client, collect};
use crate::config::{Provider, ProviderConfig};
use crate::error::LlmError;
use crate::ratelimit::RateLimiter;
use crate::retry::RetryPolicy;
use crate::types::{LlmRequest, LlmResponse, StreamEvent};

/// What loops call to talk to a model. Cheap to clone; clones share the
/// client, the rate limiter and the breaker, so a daemon builds one `Llm`
/// per provider and hands a clone to every loop.
#[derive(Debug, Clone)]
pub struct Llm {
    client: Arc<dyn LlmClient>,
    retry: RetryPolicy,
    limiter: Option<RateLimiter>,
    breaker: Option<CircuitBreaker>,
}

impl Llm {
    /// Wraps a client with the default retry policy, no rate limit and no breaker.
    pub fn new(client: Arc<dyn LlmClient>) -> Self {
        Llm {
            client,
            retry: RetryPolicy::default(),
            limiter: None,
            breaker: None,
        }
    }

    /// A client for `provider` configured from the environment (key from
    /// `*_API_KEY`, base URL from `base_url` or `*_BASE_URL`).
    pub fn from_env(provider: Provider, base_url: Option<&str>) -> Result<Self, LlmError> {
        Ok(Self::new(build_client(ProviderConfig::from_env(
            provider, base_url,
        )?)?))
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Shares a rate limiter.
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Shares a circuit breaker.
    pub fn with_circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// The wrapped client.
    pub fn client(&self) -> &Arc<dyn LlmClient> {
        &self.client
    }

    /// Sends `request` and assembles the answer, retrying retryable failures
    /// (including streams that break before `message_stop`; the partial
    /// output is discarded and a [`StreamEvent::Retrying`] is shown to
    /// `on_event`). Returns [`LlmError::Cancelled`] as soon as `cancel` fires.
    pub async fn complete(
        &self,
        request: &LlmRequest,
        cancel: &CancellationToken,
        on_event: &mut (dyn FnMut(&StreamEvent) + Send),
    ) -> Result<LlmResponse, LlmError> {
        let max = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(breaker) = &self.breaker {
                breaker.before_call()?;
            }
            if let Some(limiter) = &self.limiter {
                tokio::select! {
                    _ = cancel.cancelled() => return Err(LlmError::Cancelled),
                    _ = limiter.acquire() => {}
                }
            }
            let result = tokio::select! {
                _ = cancel.cancelled() => Err(LlmError::Cancelled),
                r = self.attempt(request, on_event) => r,
            };
            let error = match result {
                Ok(response) => {
                    if let Some(breaker) = &self.breaker {
                        breaker.on_success();
                    }
                    return Ok(response);
                }
                Err(e) => e,
            };
            if let Some(breaker) = &self.breaker {
                if error.is_provider_failure() {
                    breaker.on_failure();
                } else {
                    breaker.on_neutral();
                }
            }
            if !error.is_retryable() {
                return Err(error);
            }
            if attempt >= max {
                return Err(LlmError::RetriesExhausted {
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            let delay = self.retry.delay(attempt, error.retry_after());
            tracing::warn!(attempt, ?delay, error = %error, "LLM call failed; retrying");
            on_event(&StreamEvent::Retrying {
                attempt,
                delay,
                reason: error.to_string(),
            });
            tokio::select! {
                _ = cancel.cancelled() => return Err(LlmError::Cancelled),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn attempt(
        &self,
        request: &LlmRequest,
        on_event: &mut (dyn FnMut(&StreamEvent) + Send),
    ) -> Result<LlmResponse, LlmError> {
        let stream = self.client.stream(request).await?;
        collect(stream, on_event).await
    }
}
