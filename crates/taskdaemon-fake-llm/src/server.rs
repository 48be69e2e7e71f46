//! The HTTP server: routes, the reply queue, request recording.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::script::{Reply, Route, Script, Turn};
use crate::wire::{self, SseFrame};

/// A request the server received, kept so tests can assert on what the client sent.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query, e.g. `/v1/messages`.
    pub path: String,
    /// Raw query string, e.g. `beta=true`.
    pub query: Option<String>,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON (`Value::Null` when it was not JSON).
    pub body: Value,
    /// When it arrived, for coarse ordering checks.
    #[serde(skip)]
    pub received_at: Instant,
    /// The index of the [`Route`] that served it (`None`: the plain queue, or nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<usize>,
}

impl RecordedRequest {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The names of the tools the request offers (either wire format).
    pub fn offered_tools(&self) -> Vec<String> {
        offered_tools(&self.body)
    }

    /// The text of its first user message: the loop's prompt.
    pub fn prompt(&self) -> String {
        first_user_text(&self.body)
    }
}

fn offered_tools(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                // Anthropic: {name}; OpenAI: {type: function, function: {name}}.
                .filter_map(|t| t["name"].as_str().or(t["function"]["name"].as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn first_user_text(body: &Value) -> String {
    let Some(message) = body["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "user"))
    else {
        return String::new();
    };
    match &message["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Options for [`FakeLlm::start_with`].
#[derive(Debug, Clone, Default)]
pub struct FakeLlmOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Also append every request as a JSON line to this file.
    pub record_path: Option<PathBuf>,
    /// Model name reported in responses; defaults to the requested model.
    pub model: Option<String>,
}

#[derive(Default)]
struct Shared {
    routes: Vec<(Route, VecDeque<Reply>)>,
    queue: VecDeque<Reply>,
    requests: Vec<RecordedRequest>,
    served: usize,
}

struct AppState {
    shared: Mutex<Shared>,
    options: FakeLlmOptions,
}

impl AppState {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock only happens in a failing test; keep serving.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake server; stops when dropped.
pub struct FakeLlm {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeLlm {
    /// Starts a server on a free loopback port with the given script.
    pub async fn start(script: impl IntoIterator<Item = Reply>) -> io::Result<FakeLlm> {
        Self::start_with(script, FakeLlmOptions::default()).await
    }

    /// Starts a server with options.
    pub async fn start_with(
        script: impl IntoIterator<Item = Reply>,
        options: FakeLlmOptions,
    ) -> io::Result<FakeLlm> {
        Self::start_script(
            Script {
                routes: Vec::new(),
                replies: script.into_iter().collect(),
            },
            options,
        )
        .await
    }

    /// Starts a server whose requests are served by `routes` (see [`Route`]).
    pub async fn start_routed(routes: impl IntoIterator<Item = Route>) -> io::Result<FakeLlm> {
        Self::start_script(
            Script {
                routes: routes.into_iter().collect(),
                replies: Vec::new(),
            },
            FakeLlmOptions::default(),
        )
        .await
    }

    /// Starts a server with routes and a plain queue.
    pub async fn start_script(script: Script, options: FakeLlmOptions) -> io::Result<FakeLlm> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(AppState {
            shared: Mutex::new(Shared {
                routes: script
                    .routes
                    .into_iter()
                    .map(|mut r| {
                        let replies = std::mem::take(&mut r.replies).into();
                        (r, replies)
                    })
                    .collect(),
                queue: script.replies.into_iter().collect(),
                ..Shared::default()
            }),
            options,
        });
        let app = Router::new()
            .route("/v1/messages", post(anthropic))
            .route("/v1/chat/completions", post(openai))
            .with_state(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(FakeLlm {
            addr,
            state,
            stop: Some(stop),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, to use as a client's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Appends replies to the script.
    pub fn push(&self, reply: impl Into<Reply>) {
        self.state.lock().queue.push_back(reply.into());
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().requests.clone()
    }

    /// How many scripted replies are still queued (the plain queue).
    pub fn remaining(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// Adds a route after the existing ones; returns its index.
    pub fn add_route(&self, mut route: Route) -> usize {
        let replies = std::mem::take(&mut route.replies).into();
        let mut shared = self.state.lock();
        shared.routes.push((route, replies));
        shared.routes.len() - 1
    }

    /// Appends a reply to route `index` (ignored when there is no such route).
    pub fn push_to_route(&self, index: usize, reply: impl Into<Reply>) {
        if let Some((_, replies)) = self.state.lock().routes.get_mut(index) {
            replies.push_back(reply.into());
        }
    }

    /// How many replies route `index` still holds (0 when there is no such route).
    pub fn route_remaining(&self, index: usize) -> usize {
        self.state
            .lock()
            .routes
            .get(index)
            .map_or(0, |(_, replies)| replies.len())
    }

    /// The requests route `index` served, in order.
    pub fn requests_served_by(&self, index: usize) -> Vec<RecordedRequest> {
        self.state
            .lock()
            .requests
            .iter()
            .filter(|r| r.route == Some(index))
            .cloned()
            .collect()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

enum Api {
    Anthropic,
    OpenAi,
}

async fn anthropic(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(Api::Anthropic, state, method, uri, headers, body).await
}

async fn openai(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(Api::OpenAi, state, method, uri, headers, body).await
}

async fn handle(
    api: Api,
    state: Arc<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut recorded = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.clone(),
        received_at: Instant::now(),
        route: None,
    };
    let tools = offered_tools(&body);
    let prompt = first_user_text(&body);
    // Choose the reply before recording, so the log says which route served it.
    let (reply, seq) = {
        let mut shared = state.lock();
        let routed = shared
            .routes
            .iter_mut()
            .enumerate()
            .find(|(_, (route, replies))| !replies.is_empty() && route.matches(&tools, &prompt))
            .and_then(|(index, (_, replies))| replies.pop_front().map(|r| (index, r)));
        let reply = match routed {
            Some((index, reply)) => {
                recorded.route = Some(index);
                Some(reply)
            }
            None => shared.queue.pop_front(),
        };
        shared.requests.push(recorded.clone());
        shared.served += 1;
        (reply, shared.served)
    };
    if let Some(path) = &state.options.record_path
        && let Ok(line) = serde_json::to_string(&recorded)
    {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
    }
    let model = state
        .options
        .model
        .clone()
        .or_else(|| body["model"].as_str().map(str::to_string))
        .unwrap_or_else(|| "fake-model".into());
    let streaming = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);

    let Some(reply) = reply else {
        return error_response(
            &api,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!(
                "fake-llm: script exhausted (no route or queued reply for a request offering [{}])",
                tools.join(", ")
            ),
        );
    };
    match reply {
        Reply::Stall => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            error_response(
                &api,
                StatusCode::GATEWAY_TIMEOUT,
                "api_error",
                "fake-llm: stalled",
            )
        }
        Reply::Turn(turn) if !streaming => {
            let body = match api {
                Api::Anthropic => wire::anthropic_message(&turn, &model, seq),
                Api::OpenAi => wire::openai_completion(&turn, &model, seq),
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Reply::Turn(turn) => sse(frames(&api, &turn, &model, seq, include_usage), None),
        Reply::CutAfter { events, turn } => sse(
            frames(&api, &turn, &model, seq, include_usage),
            Some(events),
        ),
        Reply::RateLimited { retry_after } => {
            let mut response = error_response(
                &api,
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "fake-llm: rate limited",
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Reply::Overloaded => error_response(
            &api,
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
            "Overloaded",
        ),
        Reply::ServerError { status } => error_response(
            &api,
            status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "api_error",
            "fake-llm: internal error",
        ),
        Reply::MalformedSse => {
            let mut frames = frames(&api, &Turn::text("x"), &model, seq, include_usage);
            frames.truncate(1);
            frames.push(SseFrame {
                event: matches!(api, Api::Anthropic).then_some("content_block_start"),
                data: "{this is not json".into(),
            });
            sse(frames, None)
        }
        Reply::ErrorEvent {
            error_type,
            message,
        } => {
            let mut frames = frames(&api, &Turn::text("x"), &model, seq, include_usage);
            frames.truncate(1);
            frames.push(match api {
                Api::Anthropic => SseFrame {
                    event: Some("error"),
                    data: wire::anthropic_error(&error_type, &message).to_string(),
                },
                Api::OpenAi => SseFrame {
                    event: None,
                    data: wire::openai_error(&error_type, &message).to_string(),
                },
            });
            sse(frames, None)
        }
    }
}

fn frames(api: &Api, turn: &Turn, model: &str, seq: usize, include_usage: bool) -> Vec<SseFrame> {
    match api {
        Api::Anthropic => wire::anthropic_events(turn, model, seq),
        Api::OpenAi => wire::openai_chunks(turn, model, seq, include_usage),
    }
}

fn error_response(api: &Api, status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = match api {
        Api::Anthropic => wire::anthropic_error(error_type, message),
        Api::OpenAi => wire::openai_error(error_type, message),
    };
    (status, axum::Json(body)).into_response()
}

/// A streaming SSE response; with `cut_after`, the connection is aborted after that many events.
fn sse(frames: Vec<SseFrame>, cut_after: Option<usize>) -> Response {
    let cut = cut_after.is_some_and(|n| n < frames.len());
    let keep = cut_after.unwrap_or(usize::MAX);
    let chunks: Vec<Result<Bytes, io::Error>> = frames
        .iter()
        .take(keep)
        .map(|f| Ok(Bytes::from(f.encode())))
        .collect();
    // An error from the body stream makes hyper drop the connection mid-body,
    // which is what a client sees when a real stream breaks. The pause lets
    // the events before the cut reach the client first, as they would.
    let tail = futures_util::stream::iter(cut.then_some(())).then(|()| async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Err::<Bytes, _>(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "fake-llm: stream cut",
        ))
    });
    let stream = futures_util::stream::iter(chunks).chain(tail);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
