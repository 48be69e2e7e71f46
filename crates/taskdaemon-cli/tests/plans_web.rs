//! Plans over the web API, served by the real binary (`taskdaemon web` in
//! the foreground, no daemon: nothing runs the plan, so its state is what
//! the requests make it): the list, the tree, what waits for a person, the
//! actions with problem objects for bad input and illegal states, 403 for
//! share links, and the routes in the OpenAPI document.

mod common;

use std::fs;
use std::process::Command;

use common::Ws;
use common::web::Web;
use reqwest::Method;
use reqwest::blocking::Response;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use taskdaemon_core::pipeline::{MessageKind, NewMessage, NewSpec, PipelineStatus};
use taskdaemon_store::{SqliteStore, Store};

fn git(ws: &Ws, args: &[&str]) {
    let output = Command::new("git")
        .current_dir(ws.root())
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {output:?}");
}

/// A git workspace served by `taskdaemon web` on a free loopback port.
fn start_web() -> Web {
    let ws = Ws::new();
    git(&ws, &["init", "--quiet", "--initial-branch=main"]);
    fs::write(ws.root().join("README.md"), "hello\n").unwrap();
    git(&ws, &["add", "README.md"]);
    git(&ws, &["commit", "--quiet", "-m", "first"]);
    Web::foreground(ws)
}

impl Web {
    fn get(&self, path: &str) -> Value {
        let response = self.get_as(&self.token, path);
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().unwrap()
    }

    fn post_as(&self, secret: &str, path: &str, body: Option<Value>) -> Response {
        self.send(secret, Method::POST, path, body.map(|b| b.to_string()))
    }

    fn post(&self, path: &str, body: Option<Value>) -> Response {
        self.post_as(&self.token, path, body)
    }
}

fn problem(response: Response, status: u16, class: &str) -> Value {
    assert_eq!(response.status(), status, "{response:?}");
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/problem+json",
        "{response:?}"
    );
    let body: Value = response.json().unwrap();
    assert_eq!(body["class"], class, "{body}");
    body
}

#[test]
fn plans_are_listed_shown_and_acted_on_over_the_api() {
    let web = start_web();
    assert_eq!(web.get("/api/v1/plans"), json!([]));
    let id = web
        .ws
        .run(&["new-plan", "Add OAuth login"])
        .ok()
        .last_line();

    let plans = web.get("/api/v1/plans?open=true");
    assert_eq!(plans[0]["id"], id.as_str(), "{plans}");
    assert_eq!(plans[0]["status"], "draft");
    problem(
        web.get_as(&web.token, "/api/v1/plans?open=maybe"),
        400,
        "bad_input",
    );
    problem(
        web.get_as(&web.token, "/api/v1/plans/PLAN-99"),
        404,
        "not_found",
    );

    // Approve, then a second approve is an illegal state.
    let approved: Value = web
        .post(&format!("/api/v1/plans/{id}/approve"), None)
        .json()
        .unwrap();
    assert_eq!(approved["status"], "pending");
    problem(
        web.post(&format!("/api/v1/plans/{id}/approve"), None),
        409,
        "illegal_state",
    );

    // What the driver records: running, two specs, a query and an alert.
    let store = SqliteStore::open(&web.ws.db_path()).unwrap();
    store
        .set_plan_status(&id, PipelineStatus::Running, None, "daemon")
        .unwrap();
    let spec = |name: &str| NewSpec {
        name: name.to_owned(),
        title: format!("Spec {name}"),
        body: "build it".to_owned(),
        depends_on: Vec::new(),
        priority: 0,
    };
    store
        .add_specs(&id, &[spec("auth"), spec("ui")], "loop")
        .unwrap();
    let send = |kind, body: &str| {
        store
            .send_message(
                &NewMessage {
                    plan: id.clone(),
                    from: "auth".into(),
                    to: "human".into(),
                    kind,
                    body: body.into(),
                },
                "daemon",
            )
            .unwrap()
            .id
    };
    let query = send(MessageKind::Query, "Which provider?");
    let alert = send(MessageKind::Alert, "rebase conflicts in src/lib.rs");

    let tree = web.get(&format!("/api/v1/plans/{id}"));
    let names: Vec<&str> = tree["specs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["auth", "ui"], "{tree}");
    assert_eq!(tree["specs_total"], 2);
    assert!(tree["cost"]["cost_usd"].is_number(), "{tree}");

    let attention = web.get("/api/v1/attention");
    assert_eq!(attention["plans"][0]["id"], id.as_str(), "{attention}");
    assert_eq!(attention["queries"][0]["id"], query.as_str());
    assert_eq!(attention["alerts"][0]["id"], alert.as_str());

    // Answers: unknown fields and empty answers are refused, nothing changes.
    let answer_path = format!("/api/v1/plans/{id}/answer");
    problem(
        web.post(
            &answer_path,
            Some(json!({"message": query, "answer": "GitHub", "extra": 1})),
        ),
        400,
        "bad_input",
    );
    problem(
        web.post(&answer_path, Some(json!({"message": query, "answer": " "}))),
        400,
        "bad_input",
    );
    problem(
        web.post(
            &answer_path,
            Some(json!({"message": "MSG-99", "answer": "x"})),
        ),
        404,
        "not_found",
    );
    assert!(store.message(&query).unwrap().answer.is_none());
    let answered: Value = web
        .post(
            &answer_path,
            Some(json!({"message": query, "answer": "GitHub"})),
        )
        .json()
        .unwrap();
    assert_eq!(answered["delivery"], "answered", "{answered}");
    assert_eq!(web.get("/api/v1/attention")["queries"], json!([]));

    // Share links read nothing of plans and act on nothing.
    let url = web
        .ws
        .run(&["share", "--scope", "all", "--expires", "1h"])
        .ok()
        .last_line();
    let secret = url.split("token=").nth(1).unwrap().to_owned();
    let seen: Value = web.get_as(&secret, "/api/v1/plans").json().unwrap();
    assert_eq!(seen[0]["id"], id.as_str());
    for action in ["approve", "cancel", "resume"] {
        problem(
            web.post_as(&secret, &format!("/api/v1/plans/{id}/{action}"), None),
            403,
            "forbidden",
        );
    }
    problem(
        web.post_as(
            &secret,
            &answer_path,
            Some(json!({"message": query, "answer": "x"})),
        ),
        403,
        "forbidden",
    );
    let task = web.ws.run(&["task", "add", "review"]).ok().last_line();
    let scoped = web
        .ws
        .run(&["share", "--scope", "task", &task, "--expires", "1h"])
        .ok()
        .last_line();
    let scoped = scoped.split("token=").nth(1).unwrap().to_owned();
    problem(web.get_as(&scoped, "/api/v1/plans"), 403, "forbidden");
    problem(
        web.get_as(&scoped, &format!("/api/v1/plans/{id}")),
        403,
        "forbidden",
    );
    problem(web.get_as(&scoped, "/api/v1/attention"), 403, "forbidden");

    // Resume needs something paused; cancel ends it, and ends it once.
    problem(
        web.post(&format!("/api/v1/plans/{id}/resume"), None),
        409,
        "illegal_state",
    );
    let cancelled: Value = web
        .post(
            &format!("/api/v1/plans/{id}/cancel"),
            Some(json!({"reason": "changed my mind"})),
        )
        .json()
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["note"], "changed my mind");
    problem(
        web.post(&format!("/api/v1/plans/{id}/cancel"), None),
        409,
        "illegal_state",
    );
    assert_eq!(web.get("/api/v1/plans?open=true"), json!([]));

    let doc = web.get("/api/openapi.json");
    for path in [
        "/api/v1/plans",
        "/api/v1/plans/{id}",
        "/api/v1/attention",
        "/api/v1/plans/{id}/approve",
        "/api/v1/plans/{id}/cancel",
        "/api/v1/plans/{id}/resume",
        "/api/v1/plans/{id}/answer",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the document"
        );
    }
}
