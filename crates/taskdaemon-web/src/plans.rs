//! Plans over the API: the list, one plan's tree with costs, what waits
//! for a person (plans in progress, queries, alerts), and the actions a
//! person takes on a plan (approve, cancel, resume, answer a query). Thin
//! over the service's plans API; kept apart from `api` so each resource
//! family merges on its own.
//!
//! A plan is not a task, so a share link scoped to a task or queue sees no
//! plans (403); actions need the token (403 for any share link).

use axum::Extension;
use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::Deserialize;
use taskdaemon_core::pipeline::{MessageRecord, PlanRecord, PlanTree};
use taskdaemon_service::{Access, PipelineAttention, PlanShow, PlanSummary};
use utoipa::{IntoParams, ToSchema};

use crate::api::{ApiResult, body, ok, optional_body, web_agent, whole_workspace};
use crate::auth::owner;
use crate::problem::Problem;
use crate::state::AppState;

/// The routes of this module, under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/plans", get(list_plans))
        .route("/plans/{id}", get(show_plan))
        .route("/plans/{id}/approve", post(approve_plan))
        .route("/plans/{id}/cancel", post(cancel_plan))
        .route("/plans/{id}/resume", post(resume_plan))
        .route("/plans/{id}/answer", post(answer_query))
        .route("/attention", get(attention))
}

/// Filters of the plan list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PlanListParams {
    /// Only plans that have not ended (default false: all).
    open: Option<bool>,
}

/// Lists plans, oldest first, each with how many of its specs succeeded.
#[utoipa::path(get, path = "/api/v1/plans", params(PlanListParams),
    responses((status = 200, description = "Plans with `specs_succeeded` and `specs_total`", body = Vec<PlanSummary>),
              (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn list_plans(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    params: Result<Query<PlanListParams>, QueryRejection>,
) -> ApiResult {
    whole_workspace(&access)?;
    let Query(p) = params.map_err(|e| Problem::bad_input(e.body_text()))?;
    ok(state
        .call(move |s| s.plans(p.open.unwrap_or(false)))
        .await?)
}

/// One plan as a tree: plan -> specs -> phases -> loops, each with its cost.
#[utoipa::path(get, path = "/api/v1/plans/{id}", params(("id" = String, Path, description = "PLAN-N")),
    responses((status = 200, description = "The tree with costs", body = PlanShow),
              (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn show_plan(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> ApiResult {
    whole_workspace(&access)?;
    ok(state.call(move |s| s.plan_show(&id)).await?)
}

/// What waits for a person: plans in progress, unanswered queries, alerts of open plans.
#[utoipa::path(get, path = "/api/v1/attention",
    responses((status = 200, description = "`plans`, `queries` and `alerts`", body = PipelineAttention),
              (status = 403, body = Problem)))]
pub async fn attention(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> ApiResult {
    whole_workspace(&access)?;
    ok(state.call(|s| s.pipeline_attention()).await?)
}

/// Approves a draft plan: the daemon may start it.
#[utoipa::path(post, path = "/api/v1/plans/{id}/approve", params(("id" = String, Path)),
    responses((status = 200, description = "The plan", body = PlanRecord),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn approve_plan(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> ApiResult {
    owner(&access)?;
    ok(state
        .call(move |s| s.approve_plan(&web_agent(), &id))
        .await?)
}

/// Why a plan is cancelled.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelPlanBody {
    /// Recorded on the plan and its unfinished specs (default "cancelled on request").
    reason: Option<String>,
}

/// Cancels a plan and its unfinished specs and phases; the daemon stops their loops.
#[utoipa::path(post, path = "/api/v1/plans/{id}/cancel", params(("id" = String, Path)), request_body = CancelPlanBody,
    responses((status = 200, description = "The plan's tree", body = PlanTree),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel_plan(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    payload: Result<Json<CancelPlanBody>, JsonRejection>,
) -> ApiResult {
    owner(&access)?;
    let cancel = optional_body(payload)?;
    ok(state
        .call(move |s| s.cancel_plan(&web_agent(), &id, cancel.reason.as_deref()))
        .await?)
}

/// Puts a paused or failed plan (and its paused or failed specs and phases) back to pending.
#[utoipa::path(post, path = "/api/v1/plans/{id}/resume", params(("id" = String, Path)),
    responses((status = 200, description = "The plan's tree", body = PlanTree),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn resume_plan(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> ApiResult {
    owner(&access)?;
    ok(state
        .call(move |s| s.resume_plan(&web_agent(), &id))
        .await?)
}

/// A person's answer to a query a loop of the plan asked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    /// The query, `MSG-N`.
    message: String,
    answer: String,
}

/// Answers a query a loop of the plan asked; the loop reads it in its next iteration.
#[utoipa::path(post, path = "/api/v1/plans/{id}/answer", params(("id" = String, Path)), request_body = AnswerBody,
    responses((status = 200, description = "The answered message", body = MessageRecord),
              (status = 400, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn answer_query(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    payload: Result<Json<AnswerBody>, JsonRejection>,
) -> ApiResult {
    owner(&access)?;
    let answer = body(payload)?;
    ok(state
        .call(move |s| s.answer_plan_query(&web_agent(), &id, &answer.message, &answer.answer))
        .await?)
}
