//! Errors of the LLM clients and whether they are worth retrying.

use std::time::Duration;

/// An error talking to a model. Messages never contain the API key: clients
/// scrub response text with [`crate::ApiKey::scrub`] before building them.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The server answered with a non-success status.
    #[error("HTTP {status}: {message}")]
    Http {
        /// Status code.
        status: u16,
        /// `retry-after` from the response, if any.
        retry_after: Option<Duration>,
        /// Error text from the body.
        message: String,
    },
    /// The request could not be sent or the response not read.
    #[error("transport: {0}")]
    Transport(String),
    /// The stream ended before the message was complete.
    #[error("stream broken: {0}")]
    StreamBroken(String),
    /// The server sent something that is not the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// An `error` event inside a stream.
    #[error("API error {kind}: {message}")]
    Api {
        /// Error type, e.g. `overloaded_error`.
        kind: String,
        /// Message.
        message: String,
    },
    /// The circuit breaker is open: recent calls failed and it is cooling down.
    #[error("circuit open after repeated failures; retry in {retry_in:?}")]
    CircuitOpen {
        /// Time left in the cool-down.
        retry_in: Duration,
    },
    /// Gave up after retrying.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<LlmError>,
    },
    /// Cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// Bad configuration (missing key, bad base URL, unknown provider).
    #[error("configuration: {0}")]
    Config(String),
}

impl LlmError {
    /// Whether another attempt may succeed: rate limits, overload, server
    /// errors, broken or garbled streams and transport failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Http { status, .. } => {
                *status == 408 || *status == 409 || *status == 429 || *status >= 500
            }
            LlmError::Transport(_) | LlmError::StreamBroken(_) | LlmError::Protocol(_) => true,
            LlmError::Api { kind, .. } => matches!(
                kind.as_str(),
                "overloaded_error" | "api_error" | "rate_limit_error" | "server_error"
            ),
            _ => false,
        }
    }

    /// Whether this failure says the provider is unhealthy (counts toward the
    /// circuit breaker). Rate limits do not: the provider is fine, we are just early.
    pub fn is_provider_failure(&self) -> bool {
        match self {
            LlmError::Http { status, .. } => *status >= 500,
            LlmError::Api { kind, .. } => kind != "rate_limit_error" && self.is_retryable(),
            LlmError::Transport(_) | LlmError::StreamBroken(_) | LlmError::Protocol(_) => true,
            _ => false,
        }
    }

    /// The server's requested delay, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
