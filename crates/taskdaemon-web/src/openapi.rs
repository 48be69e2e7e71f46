//! The OpenAPI 3.1 document, generated from the handlers' annotations, and
//! a small page that lists it.

use axum::Json;
use axum::response::{Html, IntoResponse, Response};
use utoipa::OpenApi;

use crate::{api, problem, stream};

#[derive(OpenApi)]
#[openapi(
    info(title = "taskdaemon", description = "Supervised processes, queues, loops and tracked work. Authenticate with `Authorization: Bearer TOKEN` (`taskdaemon web token`)."),
    paths(
        api::list_tasks, api::show_task, api::task_logs, api::task_result, api::processes, api::queues,
        api::queue_tasks, api::workers, api::loops, api::show_loop, api::tracked, api::memory,
        api::search, api::history, api::metrics_json, api::me, api::spawn, api::kill,
        api::restart, api::cancel, api::retry, api::act, api::submit, api::loop_run,
        api::loop_stop, api::aggregates, api::report, stream::stream,
    ),
    components(schemas(problem::Problem, api::StopBody, api::ActBody, api::SubmitBody, api::LoopBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/openapi.json`
pub async fn document() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// `GET /api/docs`: every operation, read from the document by the browser.
pub async fn docs_page() -> Html<&'static str> {
    Html(include_str!("assets/docs.html"))
}
