//! REST API v1: one thin handler per resource or action, each a call into
//! the service. Reads are scoped to the caller's share link; actions need
//! the token (403 for a share link). Bodies and queries are checked before
//! anything changes: malformed JSON, unknown fields and bad filters are 400
//! problems.

use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use taskdaemon_core::tracked::SearchHit;
use taskdaemon_core::{Event, LoopRecord, Memory, TaskRecord, TrackedAction};
use taskdaemon_service::{
    Access, Agent, Aggregates, Counters, Health, LogSlice, LoopRunInput, LoopShow, MAX_LOG_READ,
    ProcessView, QueueEntryView, QueueTask, Report, Share, ShareScope, SpawnRequest, SubmitInput,
    TaskLogChunk, TaskPage, TaskQuery, TaskResult, WorkerRow,
};
use taskdaemon_store::{MemoryFilter, TrackedFilter};
use utoipa::{IntoParams, ToSchema};

use crate::auth::owner;
use crate::problem::Problem;
use crate::state::AppState;

pub(crate) type ApiResult = Result<Response, Problem>;

/// The actor web actions are recorded as.
const WEB_TOOL: &str = "web";
/// Grace before SIGKILL when a request gives none.
const DEFAULT_GRACE_MS: u64 = 5_000;

pub(crate) fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    payload.map(|Json(v)| v).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.body_text())
        } else {
            Problem::bad_input(e.body_text())
        }
    })
}

fn query<T>(params: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    params
        .map(|Query(v)| v)
        .map_err(|e| Problem::bad_input(e.body_text()))
}

/// A filter's value parsed by its type, or a problem naming the filter.
fn filter_value<T: std::str::FromStr>(
    name: &str,
    text: Option<&str>,
) -> Result<Option<T>, Problem> {
    text.map(|text| {
        text.parse()
            .map_err(|_| Problem::bad_input(format!("invalid {name} filter {text:?}")))
    })
    .transpose()
}

pub(crate) fn ok<T: serde::Serialize>(value: T) -> ApiResult {
    Ok(Json(value).into_response())
}

fn created<T: serde::Serialize>(value: T) -> ApiResult {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// Views that cannot be narrowed to a share link's scope need an unscoped one.
pub(crate) fn whole_workspace(access: &Access) -> Result<(), Problem> {
    match access.scope() {
        ShareScope::All => Ok(()),
        scope => Err(Problem::forbidden(format!(
            "this share link only sees {scope}"
        ))),
    }
}

pub(crate) fn web_agent() -> Agent {
    Agent {
        tool: Some(WEB_TOOL.to_owned()),
        session: None,
    }
}

/// Filters of a task listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskListParams {
    /// pending, blocked, running, succeeded, failed, cancelled, lost
    status: Option<String>,
    /// process, agent, loop, manual
    kind: Option<String>,
    queue: Option<String>,
    tool: Option<String>,
    session: Option<String>,
    label: Option<String>,
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// 1 to 500 (default 50).
    limit: Option<usize>,
}

/// Lists tasks of every kind, newest first, one page at a time.
#[utoipa::path(get, path = "/api/v1/tasks", params(TaskListParams),
    responses((status = 200, description = "A page: `tasks` and the `next` cursor", body = TaskPage),
              (status = 400, description = "Invalid filter", body = Problem)))]
pub async fn list_tasks(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    params: Result<Query<TaskListParams>, QueryRejection>,
) -> ApiResult {
    let p = query(params)?;
    let task_query = TaskQuery {
        status: p.status,
        kind: p.kind,
        queue: p.queue,
        tool: p.tool,
        session: p.session,
        label: p.label,
        cursor: p.cursor,
        limit: p.limit,
    };
    let scope = access.scope();
    let key = format!("list {scope:?} {task_query:?}");
    state
        .cached_json(key, move |s| s.task_page(&task_query, &scope))
        .await
}

/// One task of any kind.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", params(("id" = String, Path)),
    responses((status = 200, body = TaskRecord), (status = 404, body = Problem)))]
pub async fn show_task(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> ApiResult {
    let scope = access.scope();
    let key = format!("show {scope:?} {id:?}");
    state
        .cached_json(key, move |s| s.scoped_task(&id, &scope))
        .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// `stdout` (default) or `stderr`.
    stream: Option<String>,
    /// The last lines (default 200 when no range is given).
    tail: Option<usize>,
    /// Start of a byte range.
    offset: Option<u64>,
    /// Length of a byte range (at most 1 MiB).
    length: Option<u64>,
}

/// Part of a task's log: the last lines, or a byte range (follow a log by
/// asking again from the previous answer's `end`).
#[utoipa::path(get, path = "/api/v1/tasks/{id}/logs", params(("id" = String, Path), LogParams),
    responses((status = 200, body = TaskLogChunk), (status = 404, body = Problem)))]
pub async fn task_logs(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    params: Result<Query<LogParams>, QueryRejection>,
) -> ApiResult {
    let p = query(params)?;
    let stderr = match p.stream.as_deref() {
        None | Some("stdout") => false,
        Some("stderr") => true,
        Some(other) => {
            return Err(Problem::bad_input(format!(
                "stream must be stdout or stderr, not {other:?}"
            )));
        }
    };
    let slice = match (p.tail, p.offset) {
        (Some(_), Some(_)) => return Err(Problem::bad_input("give tail or offset, not both")),
        (_, Some(offset)) => LogSlice::Range {
            offset,
            length: p.length.unwrap_or(MAX_LOG_READ),
        },
        (tail, None) => LogSlice::Tail(tail.unwrap_or(200).min(10_000)),
    };
    let scope = access.scope();
    ok(state
        .call(move |s| s.task_log(&id, &scope, stderr, slice))
        .await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProcessParams {
    /// Include ended processes.
    all: Option<bool>,
    tool: Option<String>,
}

/// Supervised processes with their resource use.
#[utoipa::path(get, path = "/api/v1/processes", params(ProcessParams),
    responses((status = 200, body = Vec<ProcessView>)))]
pub async fn processes(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    params: Result<Query<ProcessParams>, QueryRejection>,
) -> ApiResult {
    let p = query(params)?;
    let scope = access.scope();
    ok(state
        .call(move |s| {
            let mut views = s.processes(p.all.unwrap_or(false), p.tool.as_deref())?;
            if scope != ShareScope::All {
                let mut kept = Vec::new();
                for view in views {
                    if s.scope_allows(&view.task, &scope)? {
                        kept.push(view);
                    }
                }
                views = kept;
            }
            Ok(views)
        })
        .await?)
}

/// The configured queues with their counts.
#[utoipa::path(get, path = "/api/v1/queues", responses((status = 200, body = Vec<QueueEntryView>)))]
pub async fn queues(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> ApiResult {
    let scope = access.scope();
    if let ShareScope::Task(_) = scope {
        whole_workspace(&access)?;
    }
    ok(state
        .call(move |s| {
            let mut queues = s.queues()?;
            if let ShareScope::Queue(q) = &scope {
                queues.retain(|entry| entry.id == *q);
            }
            Ok(queues)
        })
        .await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueTaskParams {
    status: Option<String>,
    limit: Option<usize>,
}

/// A queue's tasks, oldest first.
#[utoipa::path(get, path = "/api/v1/queues/{queue}/tasks",
    params(("queue" = String, Path), QueueTaskParams),
    responses((status = 200, body = Vec<QueueTask>), (status = 400, body = Problem)))]
pub async fn queue_tasks(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(queue): Path<String>,
    params: Result<Query<QueueTaskParams>, QueryRejection>,
) -> ApiResult {
    let p = query(params)?;
    match access.scope() {
        ShareScope::All => {}
        ShareScope::Queue(q) if q == queue => {}
        _ => whole_workspace(&access)?,
    }
    let status = filter_value("status", p.status.as_deref())?;
    let limit = p.limit.unwrap_or(100).min(taskdaemon_service::MAX_PAGE);
    ok(state
        .call(move |s| s.queue_tasks(Some(&queue), status, Some(limit)))
        .await?)
}

/// Every queue worker and claiming worker.
#[utoipa::path(get, path = "/api/v1/workers", responses((status = 200, body = Vec<WorkerRow>)))]
pub async fn workers(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> ApiResult {
    whole_workspace(&access)?;
    ok(state.call(|s| s.worker_rows()).await?)
}

/// LLM loops, unfinished first (`all` for every one).
#[utoipa::path(get, path = "/api/v1/loops", params(ProcessParams), responses((status = 200, body = Vec<LoopRecord>)))]
pub async fn loops(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    params: Result<Query<ProcessParams>, QueryRejection>,
) -> ApiResult {
    whole_workspace(&access)?;
    let p = query(params)?;
    ok(state.call(move |s| s.loops(p.all.unwrap_or(true))).await?)
}

/// One loop with its iterations, tokens and cost.
#[utoipa::path(get, path = "/api/v1/loops/{id}", params(("id" = String, Path)),
    responses((status = 200, body = LoopShow), (status = 404, body = Problem)))]
pub async fn show_loop(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> ApiResult {
    let scope = access.scope();
    ok(state
        .call(move |s| {
            s.scoped_task(&id, &scope)?;
            s.loop_show(&id)
        })
        .await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrackedParams {
    status: Option<String>,
    label: Option<String>,
    limit: Option<usize>,
}

/// Tracked work with dependencies, and what is ready.
#[utoipa::path(get, path = "/api/v1/tracked", params(TrackedParams), responses((status = 200, body = TrackedView)))]
pub async fn tracked(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    params: Result<Query<TrackedParams>, QueryRejection>,
) -> ApiResult {
    whole_workspace(&access)?;
    let p = query(params)?;
    let status = filter_value("status", p.status.as_deref())?;
    let filter = TrackedFilter {
        status,
        label: p.label,
        limit: p.limit,
    };
    ok(state
        .call(move |s| {
            Ok(TrackedView {
                tasks: s.tracked(&filter)?,
                ready: s.ready(20)?,
            })
        })
        .await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MemoryParams {
    /// decision, pattern, note, context
    kind: Option<String>,
    task: Option<String>,
    limit: Option<usize>,
}

/// Memories: decisions, patterns, notes, context.
#[utoipa::path(get, path = "/api/v1/memory", params(MemoryParams), responses((status = 200, body = Vec<Memory>)))]
pub async fn memory(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    params: Result<Query<MemoryParams>, QueryRejection>,
) -> ApiResult {
    whole_workspace(&access)?;
    let p = query(params)?;
    let kind = filter_value("kind", p.kind.as_deref())?;
    let filter = MemoryFilter {
        kind,
        task_id: p.task,
        limit: Some(p.limit.unwrap_or(100).min(taskdaemon_service::MAX_PAGE)),
    };
    ok(state.call(move |s| s.memories(&filter)).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    q: String,
    limit: Option<usize>,
}

/// Full-text search over tasks, memory and history.
#[utoipa::path(get, path = "/api/v1/search", params(SearchParams),
    responses((status = 200, body = Vec<SearchHit>), (status = 400, body = Problem)))]
pub async fn search(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> ApiResult {
    whole_workspace(&access)?;
    let p = query(params)?;
    let limit = p.limit.unwrap_or(20).min(taskdaemon_service::MAX_PAGE);
    ok(state.call(move |s| s.search(&p.q, limit)).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Events after this sequence number (the cursor).
    after: Option<i64>,
    limit: Option<usize>,
    task: Option<String>,
}

/// The audit trail, oldest first, in pages.
#[utoipa::path(get, path = "/api/v1/history", params(HistoryParams),
    responses((status = 200, body = HistoryPage), (status = 404, body = Problem)))]
pub async fn history(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult {
    let p = query(params)?;
    let task = match access.scope() {
        ShareScope::All => p.task,
        ShareScope::Task(id) => Some(id),
        ShareScope::Queue(q) => {
            return Err(Problem::forbidden(format!(
                "this share link only sees queue {q}, whose history is not listed separately"
            )));
        }
    };
    let limit = p
        .limit
        .unwrap_or(100)
        .clamp(1, taskdaemon_service::MAX_PAGE);
    ok(state
        .call(move |s| {
            let filter =
                s.history_filter(&taskdaemon_service::HistoryQuery { since: None, task })?;
            let events = s.history_page(&filter, p.after.unwrap_or(0), limit)?;
            let next = (events.len() == limit)
                .then(|| events.last().map(|e| e.seq))
                .flatten();
            Ok(HistoryPage { events, next })
        })
        .await?)
}

/// Counters: tasks by status and kind, queue depth, workers, the last event.
#[utoipa::path(get, path = "/api/v1/metrics", responses((status = 200, body = MetricsView)))]
pub async fn metrics_json(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> ApiResult {
    whole_workspace(&access)?;
    ok(state
        .call(|s| {
            Ok(MetricsView {
                counters: s.counters()?,
                health: s.health(),
            })
        })
        .await?)
}

/// Tracked work and what of it is ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackedView {
    tasks: Vec<TaskRecord>,
    /// Ready work, highest priority first (at most 20).
    ready: Vec<TaskRecord>,
}

/// A page of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    events: Vec<Event>,
    /// The `after` of the next page; none on the last page.
    next: Option<i64>,
}

/// Counters and health, as `/metrics` exports them.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsView {
    counters: Counters,
    health: Health,
}

/// Who is asking.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The workspace's token.
    Owner,
    /// A read-only share link.
    Share,
}

/// The caller: the owner, or a share link with its scope (secret left out).
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    role: Role,
    /// Whether actions are allowed.
    can_act: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    share: Option<Share>,
}

/// Where a retried task's document went.
#[derive(Debug, Serialize, ToSchema)]
pub struct Retried {
    document: String,
}

/// Who the caller is: `owner` or a share link with its scope.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Me)))]
pub async fn me(Extension(access): Extension<Access>) -> ApiResult {
    ok(match access {
        Access::Owner => Me {
            role: Role::Owner,
            can_act: true,
            share: None,
        },
        Access::Share(share) => Me {
            role: Role::Share,
            can_act: false,
            share: Some(share.redacted()),
        },
    })
}

/// Starts a command under supervision, in the workspace.
#[utoipa::path(post, path = "/api/v1/processes", request_body = SpawnRequest,
    responses((status = 201, body = TaskRecord), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn spawn(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    payload: Result<Json<SpawnRequest>, JsonRejection>,
) -> ApiResult {
    owner(&access)?;
    let request = body(payload)?;
    created(state.call(move |s| s.spawn_request(request)).await?)
}

/// How to stop a task.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopBody {
    /// The first signal (default TERM).
    signal: Option<String>,
    /// Milliseconds before SIGKILL (default 5000).
    grace_ms: Option<u64>,
}

pub(crate) fn optional_body<T: Default>(
    payload: Result<Json<T>, JsonRejection>,
) -> Result<T, Problem> {
    match payload {
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        other => body(other),
    }
}

/// Stops a process or queue task (signal, then SIGKILL after the grace).
#[utoipa::path(post, path = "/api/v1/tasks/{id}/kill", params(("id" = String, Path)), request_body = StopBody,
    responses((status = 200, body = TaskRecord), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn kill(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    payload: Result<Json<StopBody>, JsonRejection>,
) -> ApiResult {
    owner(&access)?;
    let stop = optional_body(payload)?;
    let grace = Duration::from_millis(stop.grace_ms.unwrap_or(DEFAULT_GRACE_MS));
    let signal = stop.signal.unwrap_or_else(|| "TERM".to_owned());
    ok(state.call(move |s| s.kill(&id, &signal, grace)).await?)
}

/// Restarts a process.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/restart", params(("id" = String, Path)), request_body = StopBody,
    responses((status = 200, body = TaskRecord), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn restart(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    payload: Result<Json<StopBody>, JsonRejection>,
) -> ApiResult {
    owner(&access)?;
    let stop = optional_body(payload)?;
    let grace = Duration::from_millis(stop.grace_ms.unwrap_or(DEFAULT_GRACE_MS));
    ok(state.call(move |s| s.restart(&id, grace)).await?)
}

/// Cancels a queue task.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/cancel", params(("id" = String, Path)), request_body = StopBody,
    responses((status = 200, body = TaskRecord), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    payload: Result<Json<StopBody>, JsonRejection>,
) -> ApiResult {
    owner(&access)?;
    let stop = optional_body(payload)?;
    let grace = Duration::from_millis(stop.grace_ms.unwrap_or(DEFAULT_GRACE_MS));
    ok(state.call(move |s| s.cancel(&id, grace)).await?)
}

/// Runs an ended folder-queue task again.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/retry", params(("id" = String, Path)),
    responses((status = 200, body = Retried), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn retry(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> ApiResult {
    owner(&access)?;
    ok(state
        .call(move |s| {
            Ok(Retried {
                document: s.retry(&id)?.display().to_string(),
            })
        })
        .await?)
}

/// A tracked task's note or failure reason.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActBody {
    note: Option<String>,
    reason: Option<String>,
}

/// Moves a tracked task: `start`, `done` or `fail` (fail needs a reason).
#[utoipa::path(post, path = "/api/v1/tasks/{id}/{action}",
    params(("id" = String, Path), ("action" = String, Path, description = "start, done or fail")),
    request_body = ActBody,
    responses((status = 200, body = TaskRecord), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn act(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((id, action)): Path<(String, String)>,
    payload: Result<Json<ActBody>, JsonRejection>,
) -> ApiResult {
    owner(&access)?;
    let act = optional_body(payload)?;
    let action = match action.as_str() {
        "start" => TrackedAction::Start,
        "done" => TrackedAction::Done { note: act.note },
        "fail" => TrackedAction::Fail {
            reason: act
                .reason
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| Problem::bad_input("reason: say why the task failed"))?,
        },
        other => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no action {other:?}: start, done, fail, kill, restart, cancel or retry"),
            ));
        }
    };
    ok(state
        .call(move |s| s.act(&web_agent(), &id, action))
        .await?)
}

/// A task document or command for a queue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// The document's file name (with `document`).
    name: Option<String>,
    /// The task document's text (front matter and body).
    document: Option<String>,
    /// A shell command instead of a document.
    command: Option<String>,
    executor: Option<String>,
    id: Option<String>,
}

/// Queues a task document or a command.
#[utoipa::path(post, path = "/api/v1/queues/{queue}/submit", params(("queue" = String, Path)),
    request_body = SubmitBody,
    responses((status = 201, body = TaskRecord), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn submit(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(queue): Path<String>,
    payload: Result<Json<SubmitBody>, JsonRejection>,
) -> ApiResult {
    owner(&access)?;
    let b = body(payload)?;
    let document = match (b.name, b.document) {
        (Some(name), Some(text)) => Some((name, text)),
        (None, Some(text)) => Some(("task.md".to_owned(), text)),
        (Some(_), None) => return Err(Problem::bad_input("name without document")),
        (None, None) => None,
    };
    let input = SubmitInput {
        document,
        command: b.command,
        queue,
        executor: b.executor,
        id: b.id,
    };
    created(state.call(move |s| s.submit(input)).await?)
}

/// A loop to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoopBody {
    /// The spec file, relative to the workspace root unless absolute
    /// (required without a loop type).
    spec: Option<String>,
    /// The validation command (required without a loop type that has one).
    validate: Option<String>,
    /// A loop type from taskdaemon.yml to start from.
    #[serde(rename = "type")]
    loop_type: Option<String>,
    /// The type's inputs, as `NAME=VALUE`.
    #[serde(default)]
    inputs: Vec<String>,
    max_iterations: Option<u32>,
    provider: Option<String>,
    model: Option<String>,
    workdir: Option<String>,
    name: Option<String>,
}

/// Starts an LLM loop.
#[utoipa::path(post, path = "/api/v1/loops", request_body = LoopBody,
    responses((status = 201, body = LoopRecord), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn loop_run(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    payload: Result<Json<LoopBody>, JsonRejection>,
) -> ApiResult {
    owner(&access)?;
    let b = body(payload)?;
    created(
        state
            .call(move |s| {
                let root = s.workspace()?.root().to_path_buf();
                s.loop_run(LoopRunInput {
                    spec: b.spec.map(|spec| root.join(spec)),
                    validate: b.validate,
                    max_iterations: b.max_iterations,
                    provider: b.provider,
                    model: b.model,
                    workdir: Some(b.workdir.map_or_else(|| root.clone(), |w| root.join(w))),
                    name: b.name,
                    session: None,
                    loop_type: b.loop_type,
                    inputs: b.inputs,
                })
            })
            .await?,
    )
}

/// Stops a loop.
#[utoipa::path(post, path = "/api/v1/loops/{id}/stop", params(("id" = String, Path)),
    responses((status = 200, body = LoopRecord), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn loop_stop(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> ApiResult {
    owner(&access)?;
    ok(state.call(move |s| s.loop_stop(&id)).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WindowParams {
    /// How far back, e.g. `24h`, `7d` (default 7d).
    since: Option<String>,
    /// `json` (default), `md` or `html` (reports only).
    format: Option<String>,
}

fn window_start(since: Option<&str>) -> Result<taskdaemon_core::time::Millis, Problem> {
    let text = since.unwrap_or("7d");
    let window = taskdaemon_core::duration::parse_duration(text)
        .map_err(|e| Problem::bad_input(format!("since {text:?}: {e}")))?;
    let millis = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    Ok(taskdaemon_core::time::now_millis().saturating_sub(millis))
}

/// Completion rate and p50/p95 execution time, in total and per queue, kind and day.
#[utoipa::path(get, path = "/api/v1/aggregates", params(WindowParams),
    responses((status = 200, body = Aggregates), (status = 400, body = Problem)))]
pub async fn aggregates(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    params: Result<Query<WindowParams>, QueryRejection>,
) -> ApiResult {
    whole_workspace(&access)?;
    let p = query(params)?;
    let since = window_start(p.since.as_deref())?;
    ok(state.call(move |s| s.aggregates(since)).await?)
}

/// Completions, failures with reasons, durations and cost, as JSON,
/// Markdown or HTML.
#[utoipa::path(get, path = "/api/v1/report", params(WindowParams),
    responses((status = 200, description = "The report", content(
        (Report = "application/json"), (String = "text/markdown"), (String = "text/html"))),
        (status = 400, body = Problem)))]
pub async fn report(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    params: Result<Query<WindowParams>, QueryRejection>,
) -> ApiResult {
    whole_workspace(&access)?;
    let p = query(params)?;
    let since = window_start(p.since.as_deref())?;
    let format = p.format.unwrap_or_else(|| "json".to_owned());
    if !matches!(format.as_str(), "json" | "md" | "html") {
        return Err(Problem::bad_input(format!(
            "format must be json, md or html, not {format:?}"
        )));
    }
    let report = state.call(move |s| s.report(since)).await?;
    let typed = |body: String, content_type: &'static str| {
        let mut response = body.into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(content_type),
        );
        Ok(response)
    };
    match format.as_str() {
        "md" => typed(report.to_markdown(), "text/markdown; charset=utf-8"),
        "html" => typed(report.to_html(), "text/html; charset=utf-8"),
        _ => ok(report),
    }
}

/// A queue task's result (cost, tokens, turns, exit code, error).
#[utoipa::path(get, path = "/api/v1/tasks/{id}/result", params(("id" = String, Path)),
    responses((status = 200, body = TaskResult), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn task_result(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> ApiResult {
    let scope = access.scope();
    ok(state
        .call(move |s| {
            s.scoped_task(&id, &scope)?;
            s.queue_result(&id)
        })
        .await?)
}
