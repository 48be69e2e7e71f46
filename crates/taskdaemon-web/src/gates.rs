//! Gates of tracked tasks over the API: list a task's gates, add gates,
//! approve, remove one. Thin over the service's gates API; kept apart from
//! `api` so each resource family merges on its own.
//!
//! Listing follows the share link's scope like any read of the task;
//! changes need the token (403 for any share link).

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use taskdaemon_core::gate::{Gate, GateRequest};
use taskdaemon_service::Access;

use crate::api::{ApiResult, body, ok, web_agent};
use crate::auth::owner;
use crate::problem::Problem;
use crate::state::AppState;

/// The routes of this module, under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tasks/{id}/gates", get(list_gates).post(add_gates))
        .route("/tasks/{id}/gates/approve", post(approve))
        .route("/tasks/{id}/gates/{seq}", delete(remove_gate))
}

/// A tracked task's gates, in order: what each waits for and whether it
/// is waiting, open (`opened_at`) or can never open (`failed`).
#[utoipa::path(get, path = "/api/v1/tasks/{id}/gates", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Gate>), (status = 404, body = Problem)))]
pub async fn list_gates(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> ApiResult {
    let scope = access.scope();
    ok(state.call(move |s| s.scoped_gates(&id, &scope)).await?)
}

/// Holds a tracked task that has not started until every named event
/// happens (all gates or none are added).
#[utoipa::path(post, path = "/api/v1/tasks/{id}/gates", params(("id" = String, Path)),
    request_body = GateRequest,
    responses((status = 201, description = "The gates added", body = Vec<Gate>),
              (status = 400, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn add_gates(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    payload: Result<Json<GateRequest>, JsonRejection>,
) -> ApiResult {
    owner(&access)?;
    let request = body(payload)?;
    let added = state
        .call(move |s| s.gate_request(&web_agent(), &id, request))
        .await?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

/// Opens a tracked task's approval gates.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/gates/approve", params(("id" = String, Path)),
    responses((status = 200, description = "The gates opened", body = Vec<Gate>),
              (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn approve(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> ApiResult {
    owner(&access)?;
    ok(state
        .call(move |s| s.approve_task(&web_agent(), &id))
        .await?)
}

/// Removes gate `seq` of a tracked task; the task may become ready.
#[utoipa::path(delete, path = "/api/v1/tasks/{id}/gates/{seq}",
    params(("id" = String, Path), ("seq" = i64, Path, description = "The gate's number on its task")),
    responses((status = 200, description = "The gate removed", body = Vec<Gate>),
              (status = 400, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn remove_gate(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((id, seq)): Path<(String, String)>,
) -> ApiResult {
    owner(&access)?;
    let seq: i64 = seq
        .parse()
        .map_err(|_| Problem::bad_input(format!("gate number {seq:?}: expected 1, 2, ...")))?;
    ok(state
        .call(move |s| s.ungate(&web_agent(), &id, Some(seq)))
        .await?)
}
