//! Gates over the web API, served by the real binary (`taskdaemon web` in
//! the foreground, no daemon: nothing evaluates the gates, so their state
//! is what the requests make it): list, add, approve and remove, problem
//! objects for bad bodies and unknown tasks, 403 for share links on every
//! change, the share link's scope on reads, and the routes in the OpenAPI
//! document.

mod common;

use common::Ws;
use common::web::Web;
use reqwest::Method;
use reqwest::blocking::Response;
use serde_json::{Value, json};

impl Web {
    fn json(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let response = self.send(
            &self.token,
            method.clone(),
            path,
            body.map(|b| b.to_string()),
        );
        assert_eq!(response.status(), status, "{method} {path}");
        response.json().unwrap()
    }
}

fn problem(response: Response, status: u16, class: &str) -> Value {
    assert_eq!(response.status(), status, "{response:?}");
    let body: Value = response.json().unwrap();
    assert_eq!(body["class"], class, "{body}");
    body
}

fn kinds(gates: &Value) -> Vec<&str> {
    gates
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["kind"].as_str().unwrap())
        .collect()
}

#[test]
fn gates_are_listed_added_approved_and_removed_over_the_api() {
    let web = Web::foreground(Ws::new());
    let task = web.ws.run(&["task", "add", "deploy"]).ok().last_line();
    let other = web.ws.run(&["task", "add", "other"]).ok().last_line();
    let gates = format!("/api/v1/tasks/{task}/gates");
    assert_eq!(web.json(Method::GET, &gates, None, 200), json!([]));

    let added = web.json(
        Method::POST,
        &gates,
        Some(json!({"approval": true, "after": "1h"})),
        201,
    );
    assert_eq!(kinds(&added), ["until", "approval"], "{added}");
    let listed = web.json(Method::GET, &gates, None, 200);
    assert_eq!(listed, added);
    let shown = web.json(Method::GET, &format!("/api/v1/tasks/{task}"), None, 200);
    assert_eq!(shown["status"], "blocked", "{shown}");

    // Bad bodies and unknown tasks are problems, and write nothing.
    for bad in [
        json!({}),
        json!({"approval": true, "bogus": 1}),
        json!({"until": "tomorrow"}),
        json!({"until": "2030-01-01T00:00:00Z", "after": "1h"}),
    ] {
        let body = problem(
            web.send(&web.token, Method::POST, &gates, Some(bad.to_string())),
            400,
            "bad_input",
        );
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{bad}: {body}"
        );
    }
    problem(
        web.send(
            &web.token,
            Method::POST,
            "/api/v1/tasks/NOPE-9/gates",
            Some(json!({"approval": true}).to_string()),
        ),
        404,
        "not_found",
    );
    assert_eq!(web.json(Method::GET, &gates, None, 200), added);

    // Share links read within their scope and change nothing.
    let all = web.share(&["all"]);
    let seen: Value = web.send(&all, Method::GET, &gates, None).json().unwrap();
    assert_eq!(seen, added);
    for (method, path, body) in [
        (Method::POST, gates.clone(), Some(json!({"approval": true}))),
        (Method::POST, format!("{gates}/approve"), None),
        (Method::DELETE, format!("{gates}/1"), None),
    ] {
        let body = body.map(|b: Value| b.to_string());
        problem(web.send(&all, method, &path, body), 403, "forbidden");
    }
    let scoped = web.share(&["task", &other]);
    problem(
        web.send(&scoped, Method::GET, &gates, None),
        404,
        "not_found",
    );
    assert_eq!(web.json(Method::GET, &gates, None, 200), added);

    // Approving opens the approval gate, once.
    let opened = web.json(Method::POST, &format!("{gates}/approve"), None, 200);
    assert_eq!(kinds(&opened), ["approval"], "{opened}");
    assert!(opened[0]["opened_at"].is_string(), "{opened}");
    problem(
        web.send(&web.token, Method::POST, &format!("{gates}/approve"), None),
        404,
        "not_found",
    );
    // Removing the time gate leaves nothing shut: the task is ready.
    let removed = web.json(Method::DELETE, &format!("{gates}/1"), None, 200);
    assert_eq!(kinds(&removed), ["until"], "{removed}");
    problem(
        web.send(&web.token, Method::DELETE, &format!("{gates}/x"), None),
        400,
        "bad_input",
    );
    let shown = web.json(Method::GET, &format!("/api/v1/tasks/{task}"), None, 200);
    assert_eq!(shown["status"], "pending", "{shown}");

    let doc = web.json(Method::GET, "/api/openapi.json", None, 200);
    let paths = &doc["paths"];
    assert!(paths["/api/v1/tasks/{id}/gates"]["get"].is_object());
    assert!(paths["/api/v1/tasks/{id}/gates"]["post"]["requestBody"].is_object());
    assert!(paths["/api/v1/tasks/{id}/gates/approve"]["post"].is_object());
    assert!(paths["/api/v1/tasks/{id}/gates/{seq}"]["delete"].is_object());
    assert!(doc["components"]["schemas"]["GateRequest"].is_object());
}
