//! `GET /api/v1/stream`: the change feed over a WebSocket.
//!
//! The server sends a `snapshot` first (task counts and the newest page of
//! tasks, with the sequence number it is as of), then each `event` as it
//! commits. A client that reconnects with `?from=SEQ` gets every event after
//! SEQ (no snapshot, no gap). The client may send
//! `{"subscribe": [TOPIC...]}` and `{"unsubscribe": [TOPIC...]}`; topics are
//! `all` (the default), `task:ID`, `kind:EVENT_KIND`, `log:ID` (the
//! task's new stdout lines as `log` messages, from the moment of subscribing:
//! the answer to the subscribe message marks it; `log:ID@OFFSET` starts at
//! that byte offset instead) and `samples` (the running
//! processes' resource samples and the host's health as `samples` messages,
//! whenever they change).
//!
//! One [`Hub`] thread reads the service's (blocking) change feed and
//! broadcasts each event to every client through a bounded channel that
//! never waits: a client that falls behind is told it lagged and catches up
//! from the store, after the last sequence number it sent, so it still sees
//! every event once, in order. Clients are async tasks, not threads, so an
//! open socket costs little. A client that takes longer than
//! [`SEND_TIMEOUT`] to accept a message is dropped; it can resume with `from`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use taskdaemon_core::Event;
use taskdaemon_service::{Access, Feed, LogSlice, MAX_LOG_READ, ShareScope, TaskQuery};
use tokio::sync::broadcast;
use utoipa::IntoParams;

use crate::problem::Problem;
use crate::state::AppState;

/// Events held for the slowest client before it lags (and catches up from the store).
const HUB_BUFFER: usize = 4096;
/// A client that takes longer than this to accept a message is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often followed logs are checked for new output.
const LOG_POLL: Duration = Duration::from_millis(250);
/// How often resource samples are looked at for a `samples` subscriber (the
/// daemon takes them every `sample_interval`, 2 s by default).
const SAMPLES_POLL: Duration = Duration::from_secs(1);
/// Events read from the store at a time while catching up.
const CATCH_UP_PAGE: usize = 500;
/// Read buffer of each socket.
const SOCKET_BUFFER: usize = 8 * 1024;
/// Tasks in the snapshot.
const SNAPSHOT_TASKS: usize = 100;

/// The one reader of the change feed, fanning events out to every client.
pub struct Hub {
    events: broadcast::Sender<Arc<Event>>,
}

impl Hub {
    /// Starts the reader thread on `feed`, from what is committed now.
    pub fn start(feed: &Feed) -> std::io::Result<Self> {
        let (events, _) = broadcast::channel(HUB_BUFFER);
        let sender = events.clone();
        let mut subscription = feed.subscribe(feed.last_seq());
        std::thread::Builder::new()
            .name("td-web-hub".into())
            .spawn(move || {
                loop {
                    match subscription.next_event() {
                        // No receivers is fine: nobody is watching.
                        Ok(event) => drop(sender.send(Arc::new(event))),
                        Err(e) => {
                            tracing::warn!(error = %e, "web stream: reading the feed failed; retrying");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
            })?;
        Ok(Self { events })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Resume after this sequence number (no snapshot).
    from: Option<i64>,
    /// Comma-separated topics to start with (default `all`).
    topics: Option<String>,
}

/// Opens the stream (a WebSocket upgrade).
#[utoipa::path(get, path = "/api/v1/stream", params(StreamParams),
    responses((status = 101, description = "Switching to the WebSocket"), (status = 401, body = Problem)))]
pub async fn stream(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    params: Result<Query<StreamParams>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let params = match params {
        Ok(Query(p)) => p,
        Err(e) => return Problem::bad_input(e.body_text()).into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(e) => {
            return Problem::bad_input(format!("expected a WebSocket upgrade: {}", e.body_text()))
                .into_response();
        }
    };
    let topics = Topics::parse(params.topics.as_deref().unwrap_or("all"));
    // Clients send only small control messages, and every message out is
    // flushed at once: the 128 KiB default buffers would be most of what an
    // open socket costs.
    let upgrade = upgrade.read_buffer_size(SOCKET_BUFFER).write_buffer_size(0);
    upgrade.on_upgrade(move |socket| async move {
        let scope = access.scope();
        let mut client = Client {
            sink: None,
            state,
            scope,
            topics,
            cursor: 0,
            queues: HashMap::new(),
            logs: HashMap::new(),
            samples_sent: None,
        };
        client.run(socket, params.from).await;
    })
}

/// What a client wants to hear about.
#[derive(Debug, Default)]
struct Topics(BTreeSet<String>);

impl Topics {
    fn parse(list: &str) -> Self {
        Self(
            list.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The tasks whose logs are followed, each with the byte offset to start
    /// from when the topic names one (`log:ID@OFFSET`, as a client that has
    /// read the log up to OFFSET asks, so nothing falls in between).
    fn logs(&self) -> Vec<(String, Option<u64>)> {
        self.0
            .iter()
            .filter_map(|t| t.strip_prefix("log:"))
            .map(|followed| match followed.rsplit_once('@') {
                Some((id, offset)) if offset.parse::<u64>().is_ok() => {
                    (id.to_owned(), offset.parse().ok())
                }
                _ => (followed.to_owned(), None),
            })
            .collect()
    }

    fn samples(&self) -> bool {
        self.0.contains("samples")
    }

    fn wants(&self, event: &Event) -> bool {
        self.0.contains("all")
            || event
                .task_id
                .as_ref()
                .is_some_and(|id| self.0.contains(&format!("task:{id}")))
            || self.0.contains(&format!("kind:{}", event.kind.as_str()))
    }
}

/// The client's socket has gone (or stopped reading).
struct Gone;

/// One connected client.
struct Client {
    sink: Option<SplitSink<WebSocket, Message>>,
    state: AppState,
    scope: ShareScope,
    topics: Topics,
    /// The last event sequence number sent (or skipped as unwanted).
    cursor: i64,
    /// Whether a queue share link may see each task seen so far.
    queues: HashMap<String, bool>,
    /// Followed logs and the offset read up to.
    logs: HashMap<String, u64>,
    /// The last `samples` message sent, so an unchanged one is not sent again.
    samples_sent: Option<String>,
}

impl Client {
    async fn run(&mut self, socket: WebSocket, from: Option<i64>) {
        let (sink, mut incoming) = socket.split();
        self.sink = Some(sink);
        // Subscribe before reading the store, so nothing falls in between.
        let mut events = self.state.hub.events.subscribe();
        let start = match from {
            Some(seq) => Ok(seq),
            None => self.snapshot().await,
        };
        self.cursor = match start {
            Ok(seq) => seq,
            Err(Gone) => return,
        };
        if self.catch_up().await.is_err() {
            return;
        }
        let mut log_tick = tokio::time::interval(LOG_POLL);
        let mut samples_tick = tokio::time::interval(SAMPLES_POLL);
        loop {
            let step = tokio::select! {
                received = events.recv() => match received {
                    Ok(event) => self.deliver(&event).await,
                    // Fell behind the hub's buffer: the store has every event.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
                    Err(broadcast::error::RecvError::Closed) => Err(Gone),
                },
                message = incoming.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        let reply = self.control(text.as_str());
                        // A newly followed log starts where it stands before
                        // the answer goes out, so the answer marks the start.
                        match self.follow_logs().await {
                            Ok(()) => self.send(reply).await,
                            gone => gone,
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => Err(Gone),
                    Some(Ok(_)) => Ok(()),
                },
                _ = log_tick.tick(), if !self.topics.logs().is_empty() || !self.logs.is_empty() => {
                    self.follow_logs().await
                }
                _ = samples_tick.tick(), if self.topics.samples() => self.send_samples().await,
            };
            if step.is_err() {
                return;
            }
        }
    }

    async fn send(&mut self, text: String) -> Result<(), Gone> {
        let sink = self.sink.as_mut().ok_or(Gone)?;
        match tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Gone),
        }
    }

    /// The first message: counts and the newest tasks, as of a sequence
    /// number read first (so nothing after it is missed).
    async fn snapshot(&mut self) -> Result<i64, Gone> {
        let scope = self.scope.clone();
        let taken = self
            .state
            .call(move |s| {
                let seq = s.last_event_seq()?;
                let page = s.task_page(
                    &TaskQuery {
                        limit: Some(SNAPSHOT_TASKS),
                        ..Default::default()
                    },
                    &scope,
                )?;
                let counters = match scope {
                    ShareScope::All => Some(s.counters()?),
                    _ => None,
                };
                let text = json!({
                    "type": "snapshot", "seq": seq, "tasks": page.tasks, "next": page.next,
                    "counters": counters,
                })
                .to_string();
                Ok((seq, text))
            })
            .await;
        match taken {
            Ok((seq, text)) => {
                self.send(text).await?;
                Ok(seq)
            }
            Err(problem) => {
                let _ = self
                    .send(json!({"type": "error", "problem": problem}).to_string())
                    .await;
                Err(Gone)
            }
        }
    }

    /// Sends every event after the cursor that the store holds.
    async fn catch_up(&mut self) -> Result<(), Gone> {
        loop {
            let after = self.cursor;
            let page = self
                .state
                .call(move |s| s.events_after(after, CATCH_UP_PAGE))
                .await
                .map_err(|problem| {
                    tracing::warn!(detail = %problem.detail, "web stream: catching up failed");
                    Gone
                })?;
            let full = page.len() == CATCH_UP_PAGE;
            for event in page {
                self.deliver(&event).await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Sends `event` if it is new, wanted and in scope.
    async fn deliver(&mut self, event: &Event) -> Result<(), Gone> {
        if event.seq <= self.cursor {
            return Ok(());
        }
        self.cursor = event.seq;
        if !self.topics.wants(event) || !self.visible(event).await {
            return Ok(());
        }
        let text = json!({"type": "event", "seq": event.seq, "event": event}).to_string();
        self.send(text).await
    }

    async fn visible(&mut self, event: &Event) -> bool {
        let Some(task) = &event.task_id else {
            return self.scope == ShareScope::All;
        };
        match &self.scope {
            ShareScope::All => true,
            ShareScope::Task(id) => id == task,
            ShareScope::Queue(_) => {
                if let Some(&seen) = self.queues.get(task) {
                    return seen;
                }
                let (id, scope) = (task.clone(), self.scope.clone());
                let visible = self
                    .state
                    .call(move |s| s.task(&id).and_then(|t| s.scope_allows(&t, &scope)))
                    .await
                    .unwrap_or(false);
                self.queues.insert(task.clone(), visible);
                visible
            }
        }
    }

    /// A subscribe/unsubscribe message; answers with the topics now held.
    fn control(&mut self, text: &str) -> String {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Control {
            #[serde(default)]
            subscribe: Vec<String>,
            #[serde(default)]
            unsubscribe: Vec<String>,
        }
        match serde_json::from_str::<Control>(text) {
            Ok(control) => {
                for topic in control.unsubscribe {
                    self.topics.0.remove(&topic);
                }
                self.topics.0.extend(control.subscribe);
                json!({"type": "topics", "topics": self.topics.0}).to_string()
            }
            Err(e) => json!({
                "type": "error",
                "problem": Problem::bad_input(format!("expected {{\"subscribe\"|\"unsubscribe\": [topics]}}: {e}")),
            })
            .to_string(),
        }
    }

    /// Sends the running processes' samples (and the host's health) when
    /// they differ from what was sent last.
    async fn send_samples(&mut self) -> Result<(), Gone> {
        let scope = self.scope.clone();
        let Ok(live) = self.state.call(move |s| s.live_samples(&scope)).await else {
            return Ok(());
        };
        let text =
            json!({"type": "samples", "samples": live.samples, "health": live.health}).to_string();
        if self.samples_sent.as_ref() == Some(&text) {
            return Ok(());
        }
        self.samples_sent = Some(text.clone());
        self.send(text).await
    }

    /// Sends what the followed logs gained since the last look; a newly
    /// followed log starts at its end (its past is a REST read).
    async fn follow_logs(&mut self) -> Result<(), Gone> {
        let followed = self.topics.logs();
        self.logs
            .retain(|id, _| followed.iter().any(|(followed, _)| followed == id));
        for (id, start) in followed {
            let offset = self
                .logs
                .get(&id)
                .copied()
                .unwrap_or(start.unwrap_or(u64::MAX));
            let (task, scope) = (id.clone(), self.scope.clone());
            let slice = LogSlice::Range {
                offset,
                length: MAX_LOG_READ,
            };
            let Ok(chunk) = self
                .state
                .call(move |s| s.task_log(&task, &scope, false, slice))
                .await
            else {
                continue;
            };
            self.logs.insert(id, chunk.end);
            if !chunk.text.is_empty() {
                let text = json!({
                    "type": "log", "task": chunk.id, "offset": chunk.offset,
                    "end": chunk.end, "text": chunk.text,
                })
                .to_string();
                self.send(text).await?;
            }
        }
        Ok(())
    }
}
