//! The `LlmClient` trait and the HTTP plumbing both clients share.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::{Stream, StreamExt};

use crate::anthropic::AnthropicClient;
use crate::assemble::Assembler;
use crate::config::{Provider, ProviderConfig};
use crate::error::LlmError;
use crate::openai::OpenAiClient;
use crate::retry::parse_retry_after;
use crate::secret::ApiKey;
use crate::sse::{SseEvent, SseParser};
use crate::types::{LlmRequest, LlmResponse, StreamEvent};

/// A stream of provider-neutral events for one attempt.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, LlmError>> + Send>>;

/// A model provider client. One call is one attempt: retries, rate limiting
/// and the circuit breaker live in [`crate::Llm`], which wraps any client.
#[async_trait]
pub trait LlmClient: Send + Sync + std::fmt::Debug {
    /// Which provider this talks to.
    fn provider(&self) -> Provider;

    /// Sends the request and returns its event stream. Errors before the
    /// first byte (HTTP status, connection) come back here; errors after that
    /// come through the stream.
    async fn stream(&self, request: &LlmRequest) -> Result<EventStream, LlmError>;
}

/// Builds the client for a provider.
pub fn build_client(config: ProviderConfig) -> Result<Arc<dyn LlmClient>, LlmError> {
    Ok(match config.provider {
        Provider::Anthropic => Arc::new(AnthropicClient::new(config)?),
        Provider::OpenAi => Arc::new(OpenAiClient::new(config)?),
    })
}

/// Drains a stream into a response, showing every event to `on_event`.
pub async fn collect(
    mut stream: EventStream,
    on_event: &mut (dyn FnMut(&StreamEvent) + Send),
) -> Result<LlmResponse, LlmError> {
    let mut assembler = Assembler::new();
    while let Some(event) = stream.next().await {
        let event = event?;
        on_event(&event);
        assembler.push(&event);
        if assembler.is_complete() {
            break;
        }
    }
    assembler.finish()
}

pub(crate) fn http_client(config: &ProviderConfig) -> Result<reqwest::Client, LlmError> {
    reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .build()
        .map_err(|e| LlmError::Config(format!("cannot build HTTP client: {e}")))
}

/// Sends a POST and turns a non-success status into [`LlmError::Http`].
pub(crate) async fn post(
    request: reqwest::RequestBuilder,
    key: &ApiKey,
) -> Result<reqwest::Response, LlmError> {
    let response = request
        .send()
        .await
        .map_err(|e| LlmError::Transport(key.scrub(&e.without_url().to_string())))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after_of(response.headers());
    let body = response.text().await.unwrap_or_default();
    Err(LlmError::Http {
        status: status.as_u16(),
        retry_after,
        message: key.scrub(&error_message(&body)),
    })
}

fn retry_after_of(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    // OpenAI also sends the finer-grained `retry-after-ms`; prefer it when present.
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// The human part of an error body (`error.message` in both APIs), else the body trimmed.
fn error_message(body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        let error = &value["error"];
        if let Some(message) = error["message"].as_str() {
            return match error["type"].as_str() {
                Some(kind) => format!("{kind}: {message}"),
                None => message.to_string(),
            };
        }
    }
    let trimmed: String = body.trim().chars().take(500).collect();
    if trimmed.is_empty() {
        "(empty body)".into()
    } else {
        trimmed
    }
}

/// Decodes one provider's streamed body: SSE bytes in, provider-neutral
/// events out, in order. The first error ends the stream: nothing after it
/// is decoded. Bytes may arrive split anywhere.
pub struct StreamDecoder {
    parser: SseParser,
    map: Box<dyn FnMut(SseEvent) -> Result<Vec<StreamEvent>, LlmError> + Send>,
    failed: bool,
}

impl StreamDecoder {
    /// A decoder for `provider`'s wire format.
    pub fn new(provider: Provider) -> Self {
        let map: Box<dyn FnMut(SseEvent) -> Result<Vec<StreamEvent>, LlmError> + Send> =
            match provider {
                Provider::Anthropic => Box::new(crate::anthropic::map_event),
                Provider::OpenAi => {
                    let mut mapper = crate::openai::ChunkMapper::default();
                    Box::new(move |event| mapper.map(event))
                }
            };
        StreamDecoder {
            parser: SseParser::new(),
            map,
            failed: false,
        }
    }

    /// The events the bytes complete; an error is the last item ever returned.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<StreamEvent, LlmError>> {
        if self.failed {
            return Vec::new();
        }
        let events = self.parser.feed(bytes);
        self.map_all(events)
    }

    /// Ends the body: the events its last bytes complete.
    pub fn finish(&mut self) -> Vec<Result<StreamEvent, LlmError>> {
        if self.failed {
            return Vec::new();
        }
        let events = self.parser.finish();
        self.map_all(events)
    }

    /// Whether an error ended the stream.
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn map_all(&mut self, events: Vec<SseEvent>) -> Vec<Result<StreamEvent, LlmError>> {
        let mut out = Vec::new();
        for event in events {
            match (self.map)(event) {
                Ok(mapped) => out.extend(mapped.into_iter().map(Ok)),
                Err(e) => {
                    out.push(Err(e));
                    self.failed = true;
                    break;
                }
            }
        }
        out
    }
}

/// Turns an SSE byte stream into events with `decoder`. A transport error
/// mid-body ends the stream as [`LlmError::StreamBroken`].
pub(crate) fn sse_stream(
    response: reqwest::Response,
    key: ApiKey,
    decoder: StreamDecoder,
) -> EventStream {
    struct State {
        body: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
        decoder: StreamDecoder,
        pending: VecDeque<Result<StreamEvent, LlmError>>,
        done: bool,
        key: ApiKey,
    }
    let state = State {
        body: Box::pin(response.bytes_stream()),
        decoder,
        pending: VecDeque::new(),
        done: false,
        key,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            match st.body.next().await {
                Some(Ok(bytes)) => {
                    let events = st.decoder.feed(&bytes);
                    st.pending.extend(events);
                    st.done = st.decoder.failed();
                }
                Some(Err(e)) => {
                    let message = st.key.scrub(&e.without_url().to_string());
                    st.pending.push_back(Err(LlmError::StreamBroken(message)));
                    st.done = true;
                }
                None => {
                    let events = st.decoder.finish();
                    st.pending.extend(events);
                    st.done = true;
                }
            }
        }
    }))
}
