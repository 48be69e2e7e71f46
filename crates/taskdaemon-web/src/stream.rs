//! `GET /api/v1/stream`: the change feed over a WebSocket.
//!
//! The server sends a `snapshot` first (task counts and the newest page of
//! tasks, with the sequence number it is as of), then each `event` as it
//! commits. A client that reconnects with `?from=SEQ` gets every event after
//! SEQ (no snapshot, no gap). The client may send
//! `{"subscribe": [TOPIC...]}` and `{"unsubscribe": [TOPIC...]}`; topics are
//! `all` (the default), `task:ID`, `kind:EVENT_KIND` and `log:ID` (the
//! task's new stdout lines as `log` messages, from the moment of subscribing).
//!
//! The feed's API is blocking, so each client has one thread that reads its
//! subscription and hands events to the socket through a bounded channel.
//! The feed never waits for that thread (a subscriber that falls behind
//! re-reads the store), and the thread only ever waits for its own client:
//! a slow client never slows the daemon or other clients. A client that
//! stops reading for [`SEND_TIMEOUT`] is dropped; it can resume with `from`.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use taskdaemon_core::Event;
use taskdaemon_service::{Access, Service, ShareScope, TaskQuery};
use tokio::sync::mpsc;
use utoipa::IntoParams;

use crate::problem::Problem;
use crate::state::AppState;

/// Messages held for one client before its reader thread waits.
const CLIENT_BUFFER: usize = 256;
/// A client that takes longer than this to accept a message is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle reader thread checks whether its client left (and
/// the logs it follows grew).
const IDLE_CHECK: Duration = Duration::from_millis(250);
/// Tasks in the snapshot.
const SNAPSHOT_TASKS: usize = 100;

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
    upgrade.on_upgrade(move |socket| run(socket, state, access, params.from, topics))
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

    /// The tasks whose logs are followed.
    fn logs(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|t| t.strip_prefix("log:"))
            .map(str::to_owned)
            .collect()
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

async fn run(
    socket: WebSocket,
    state: AppState,
    access: Access,
    from: Option<i64>,
    topics: Topics,
) {
    let (mut sink, mut incoming) = socket.split();
    let topics = Arc::new(Mutex::new(topics));
    let scope = access.scope();
    let start = match from {
        Some(seq) => seq,
        None => match snapshot(&state, scope.clone()).await {
            Ok((seq, message)) => {
                if sink.send(Message::Text(message.into())).await.is_err() {
                    return;
                }
                seq
            }
            Err(problem) => {
                let text = serde_json::to_string(&json!({"type": "error", "problem": problem}))
                    .unwrap_or_default();
                let _ = sink.send(Message::Text(text.into())).await;
                return;
            }
        },
    };
    let (tx, mut rx) = mpsc::channel::<String>(CLIENT_BUFFER);
    let mut subscription = state.feed.subscribe(start);
    let service = state.service.clone();
    let reader_topics = topics.clone();
    let reader = std::thread::Builder::new()
        .name("td-web-stream".into())
        .spawn(move || {
            let mut queues = QueueCache::default();
            let mut logs = LogFollower::default();
            loop {
                if tx.is_closed() {
                    return;
                }
                let followed = reader_topics.lock().map(|t| t.logs()).unwrap_or_default();
                for message in logs.poll(&service, &scope, &followed) {
                    if tx.blocking_send(message).is_err() {
                        return;
                    }
                }
                let event = match subscription.next_timeout(Some(IDLE_CHECK)) {
                    Ok(Some(event)) => event,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "web stream: reading the feed failed");
                        return;
                    }
                };
                let wanted = reader_topics
                    .lock()
                    .map(|t| t.wants(&event))
                    .unwrap_or(false);
                if !wanted || !queues.visible(&service, &scope, &event) {
                    continue;
                }
                let text = serde_json::to_string(&json!({
                    "type": "event", "seq": event.seq, "event": event,
                }))
                .unwrap_or_default();
                if tx.blocking_send(text).is_err() {
                    return;
                }
            }
        });
    if reader.is_err() {
        tracing::warn!("web stream: cannot start a reader thread");
        return;
    }
    loop {
        tokio::select! {
            outgoing = rx.recv() => {
                let Some(text) = outgoing else { return };
                match tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Text(text.into()))).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
            received = incoming.next() => match received {
                Some(Ok(Message::Text(text))) => {
                    let reply = control(&topics, text.as_str());
                    if sink.send(Message::Text(reply.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// A client's subscribe/unsubscribe message; answers with the topics now held.
fn control(topics: &Mutex<Topics>, text: &str) -> String {
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
            let Ok(mut topics) = topics.lock() else {
                return String::new();
            };
            for topic in control.unsubscribe {
                topics.0.remove(&topic);
            }
            topics.0.extend(control.subscribe);
            json!({"type": "topics", "topics": topics.0}).to_string()
        }
        Err(e) => json!({
            "type": "error",
            "problem": Problem::bad_input(format!("expected {{\"subscribe\"|\"unsubscribe\": [topics]}}: {e}")),
        })
        .to_string(),
    }
}

/// The first message: counts and the newest tasks, as of a sequence number
/// (read first, so nothing after it is missed).
async fn snapshot(state: &AppState, scope: ShareScope) -> Result<(i64, String), Problem> {
    state
        .call(move |s| {
            let seq = s.store().last_event_seq()?;
            let page = s.task_page(
                &TaskQuery {
                    limit: Some(SNAPSHOT_TASKS),
                    ..Default::default()
                },
                &scope,
            )?;
            let counts = match scope {
                ShareScope::All => Some(s.counters()?),
                _ => None,
            };
            let text = json!({
                "type": "snapshot", "seq": seq, "tasks": page.tasks, "next": page.next,
                "counters": counts,
            })
            .to_string();
            Ok((seq, text))
        })
        .await
}

/// Which queue each task belongs to, remembered per client so a queue
/// share link's events are filtered without a store read per event.
#[derive(Default)]
struct QueueCache(HashMap<String, bool>);

impl QueueCache {
    fn visible(&mut self, service: &Service, scope: &ShareScope, event: &Event) -> bool {
        match (scope, &event.task_id) {
            (ShareScope::All, _) => true,
            (_, None) => false,
            (ShareScope::Task(id), Some(task)) => id == task,
            (ShareScope::Queue(_), Some(task)) => {
                if let Some(&seen) = self.0.get(task) {
                    return seen;
                }
                let visible = service
                    .task(task)
                    .and_then(|t| service.scope_allows(&t, scope))
                    .unwrap_or(false);
                self.0.insert(task.clone(), visible);
                visible
            }
        }
    }
}

/// The followed logs' read positions: each poll sends what was appended.
#[derive(Default)]
struct LogFollower(HashMap<String, u64>);

impl LogFollower {
    fn poll(&mut self, service: &Service, scope: &ShareScope, followed: &[String]) -> Vec<String> {
        self.0.retain(|id, _| followed.contains(id));
        let mut messages = Vec::new();
        for id in followed {
            // A new subscription starts at the end: the past is a REST read.
            let offset = self.0.get(id).copied().unwrap_or(u64::MAX);
            let slice = taskdaemon_service::LogSlice::Range {
                offset,
                length: taskdaemon_service::MAX_LOG_READ,
            };
            let Ok(chunk) = service.task_log(id, scope, false, slice) else {
                continue;
            };
            self.0.insert(id.clone(), chunk.end);
            if !chunk.text.is_empty() {
                messages.push(
                    json!({
                        "type": "log", "task": chunk.id, "offset": chunk.offset,
                        "end": chunk.end, "text": chunk.text,
                    })
                    .to_string(),
                );
            }
        }
        messages
    }
}
