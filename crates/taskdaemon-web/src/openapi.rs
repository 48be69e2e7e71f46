//! The OpenAPI 3.1 document, generated from the handlers' annotations, and
//! a small page that lists it.

use axum::Json;
use axum::response::{Html, IntoResponse, Response};
use utoipa::OpenApi;

use crate::{api, gates, plans, problem, stream};

#[derive(OpenApi)]
#[openapi(
    info(title = "taskdaemon", description = "Supervised processes, queues, loops and tracked work. Authenticate with `Authorization: Bearer TOKEN` (`taskdaemon web token`)."),
    paths(
        api::list_tasks, api::show_task, api::task_logs, api::task_result, api::processes, api::queues,
        api::queue_tasks, api::workers, api::loops, api::show_loop, api::tracked, api::memory,
        api::search, api::history, api::metrics_json, api::me, api::spawn, api::kill,
        api::restart, api::cancel, api::retry, api::act, api::submit, api::loop_run,
        api::loop_stop, api::aggregates, api::report, stream::stream,
        plans::list_plans, plans::show_plan, plans::attention, plans::approve_plan,
        plans::cancel_plan, plans::resume_plan, plans::answer_query,
        gates::list_gates, gates::add_gates, gates::approve, gates::remove_gate,
    ),
    components(schemas(problem::Problem, api::StopBody, api::ActBody, api::SubmitBody, api::LoopBody,
        plans::CancelPlanBody, plans::AnswerBody, taskdaemon_core::gate::Gate,
        taskdaemon_core::gate::GateKind, taskdaemon_core::gate::GateRequest)),
    modifiers(&BearerAuth, &ProblemResponses),
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

/// Every operation can answer with a problem object (bad input, no or a
/// wrong token, a share link out of scope, an unknown id, a failure), sent
/// as `application/problem+json`; the per-handler annotations name only the
/// likely ones, so the rest are added here.
struct ProblemResponses;

const PROBLEM_TYPE: &str = "application/problem+json";

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
        let problem = || Content::new(Some(Ref::from_schema_name("Problem")));
        for item in openapi.paths.paths.values_mut() {
            let mutating = item.post.is_some() || item.delete.is_some();
            for operation in [item.get.as_mut(), item.post.as_mut(), item.delete.as_mut()]
                .into_iter()
                .flatten()
            {
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response
                        && let Some(content) = response.content.shift_remove("application/json")
                    {
                        let is_problem = serde_json::to_string(&content)
                            .is_ok_and(|text| text.contains("#/components/schemas/Problem"));
                        let key = if is_problem {
                            PROBLEM_TYPE
                        } else {
                            "application/json"
                        };
                        response.content.insert(key.to_owned(), content);
                    }
                }
                let mut codes = vec![
                    ("400", "Bad input"),
                    ("401", "No or a wrong token"),
                    (
                        "403",
                        "Outside a share link's scope, or an action by a share link",
                    ),
                    ("404", "No such task, loop or route"),
                    ("500", "Something failed"),
                ];
                if mutating {
                    codes.extend([
                        ("409", "The task's state does not allow it"),
                        ("413", "Body too large"),
                    ]);
                }
                for (code, description) in codes {
                    operation
                        .responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(description)
                                .content(PROBLEM_TYPE, problem())
                                .into()
                        });
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of `/api/v1` answers 2xx with a named schema (no
    /// untyped `{}` body) and every 4xx with the problem object; every
    /// schema it names is defined.
    #[test]
    fn every_response_has_a_real_schema() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                operations += 1;
                for (code, response) in operation["responses"].as_object().unwrap() {
                    let content = response["content"].as_object();
                    if code == "101" {
                        continue; // the stream's upgrade carries no body
                    }
                    let content = content.unwrap_or_else(|| panic!("{method} {path} {code}"));
                    for (media, body) in content {
                        let schema = &body["schema"];
                        let named = schema["$ref"]
                            .as_str()
                            .or_else(|| schema["items"]["$ref"].as_str());
                        match (code.starts_with('2'), media.as_str()) {
                            (true, "application/json") => {
                                let name = named.unwrap_or_else(|| {
                                    panic!("{method} {path} {code}: untyped body {schema}")
                                });
                                let name = name.trim_start_matches("#/components/schemas/");
                                assert!(schemas.contains_key(name), "{name} is defined");
                            }
                            (true, _) => assert_eq!(schema["type"], "string", "{method} {path}"),
                            (false, media) => {
                                assert_eq!(media, PROBLEM_TYPE, "{method} {path} {code}");
                                assert_eq!(
                                    named,
                                    Some("#/components/schemas/Problem"),
                                    "{method} {path} {code}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(operations >= 28, "{operations} operations");
        // A type alias must not become a schema of its own name.
        let names: Vec<&String> = schemas.keys().collect();
        assert!(
            names.iter().all(|n| n.starts_with(char::is_uppercase)),
            "{names:?}"
        );
        let record = &schemas["TaskRecord"]["properties"];
        assert_eq!(record["created_at"]["format"], "date-time");
        assert_eq!(record["status"]["$ref"], "#/components/schemas/Status");
    }
}
