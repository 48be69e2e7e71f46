//! The web API over real loopback HTTP and WebSocket, served by the real
//! daemon (`start --web 127.0.0.1:0`): auth (401), share links (403 and
//! scope), problem objects for bad input with nothing changed, actions, the
//! OpenAPI document, metrics, and the stream's snapshot, live events and
//! resume without a gap.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::web::Web;
use common::{DEADLINE, Ws};
use reqwest::Method;
use reqwest::blocking::{Client, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

impl Web {
    fn get(&self, path: &str) -> Response {
        self.get_as(&self.token, path)
    }

    fn post_as(&self, secret: &str, path: &str, body: Option<&str>) -> Response {
        self.send(secret, Method::POST, path, body.map(str::to_owned))
    }

    fn post(&self, path: &str, body: Option<&str>) -> Response {
        self.post_as(&self.token, path, body)
    }

    fn task_count(&self) -> usize {
        let page: Value = self.get("/api/v1/tasks?limit=500").json().unwrap();
        page["tasks"].as_array().unwrap().len()
    }

    /// A stream opened over a socket with a 4 KiB receive buffer, so a
    /// client that does not read soon stops the server's sends.
    fn slow_stream(&self) -> WebSocket<MaybeTlsStream<TcpStream>> {
        let address: std::net::SocketAddr = self
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("a loopback address");
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(address),
            socket2::Type::STREAM,
            None,
        )
        .unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&address.into()).unwrap();
        let tcp: TcpStream = socket.into();
        tcp.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut request = format!("ws://{address}/api/v1/stream")
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            AUTHORIZATION,
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        let (socket, _) =
            tungstenite::client(request, MaybeTlsStream::Plain(tcp)).expect("stream upgrade");
        socket
    }

    fn stream(&self, query: &str) -> WebSocket<MaybeTlsStream<TcpStream>> {
        let url = format!(
            "{}/api/v1/stream{query}",
            self.base.replace("http://", "ws://")
        );
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            AUTHORIZATION,
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        let (mut socket, _) = tungstenite::connect(request).expect("stream upgrade");
        if let MaybeTlsStream::Plain(tcp) = socket.get_mut() {
            tcp.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
        }
        socket
    }
}

/// The next JSON message, or none when the server closed the stream.
fn read_message(socket: &mut WebSocket<MaybeTlsStream<TcpStream>>) -> Option<Value> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(
            Instant::now() < deadline,
            "no stream message within {DEADLINE:?}"
        );
        match socket.read() {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Message::Close(_)) => return None,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
    }
}

/// Asserts a problem object with `status` and `class`; returns it.
fn problem(response: Response, status: u16, class: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "{response:?}");
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().unwrap();
    assert_eq!(body["class"], class, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

/// The next JSON message, waiting up to the deadline.
fn next_message(socket: &mut WebSocket<MaybeTlsStream<TcpStream>>) -> Value {
    read_message(socket).expect("the stream stayed open")
}

/// Reads events until one satisfies `pred`; returns every event read.
fn events_until(
    socket: &mut WebSocket<MaybeTlsStream<TcpStream>>,
    pred: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let message = next_message(socket);
        if message["type"] != "event" {
            continue;
        }
        let done = pred(&message["event"]);
        seen.push(message["event"].clone());
        if done {
            return seen;
        }
    }
}

#[test]
fn auth_gates_every_route_and_login_sets_a_cookie() {
    let web = Web::with_daemon();
    for path in [
        "/api/v1/tasks",
        "/metrics",
        "/",
        "/api/openapi.json",
        "/api/v1/stream",
    ] {
        let anonymous = web.http.get(format!("{}{path}", web.base)).send().unwrap();
        problem(anonymous, 401, "unauthorized");
        problem(web.get_as("not-the-token", path), 401, "unauthorized");
    }
    assert_eq!(web.get("/api/v1/tasks").status().as_u16(), 200);

    let login = web
        .http
        .get(format!("{}/login?token={}", web.base, web.token))
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    assert_eq!(login.headers()[LOCATION], "/");
    let cookie = login.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let page = web
        .http
        .get(format!("{}/", web.base))
        .header(COOKIE, &pair)
        .send()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().unwrap().contains("/assets/app.js"));
    let bad_login = web
        .http
        .get(format!("{}/login?token=nope", web.base))
        .send()
        .unwrap();
    problem(bad_login, 401, "unauthorized");

    // Rotating the token logs everyone out.
    let rotated = web.ws.run(&["web", "token", "--rotate"]).ok().last_line();
    assert_ne!(rotated, web.token);
    problem(web.get("/api/v1/tasks"), 401, "unauthorized");
    assert_eq!(web.get_as(&rotated, "/api/v1/tasks").status().as_u16(), 200);
    let log = std::fs::read_to_string(web.ws.state_dir().join("daemon.log")).unwrap_or_default();
    assert!(
        !log.contains(&rotated) && !log.contains(&web.token),
        "tokens never logged"
    );
}

#[test]
fn bad_input_gets_problems_and_changes_nothing() {
    let web = Web::with_daemon();
    let before = web.task_count();
    let malformed = problem(
        web.post("/api/v1/processes", Some("{not json")),
        400,
        "bad_input",
    );
    assert_eq!(malformed["exit_code"], 2);
    problem(
        web.post(
            "/api/v1/processes",
            Some(r#"{"argv":["true"],"colour":"red"}"#),
        ),
        400,
        "bad_input",
    );
    problem(
        web.post("/api/v1/processes", Some(r#"{"argv":[]}"#)),
        400,
        "bad_input",
    );
    let huge = format!(r#"{{"argv":["echo","{}"]}}"#, "x".repeat(2 << 20));
    problem(web.post("/api/v1/processes", Some(&huge)), 413, "too_large");
    problem(web.get("/api/v1/tasks?status=sleeping"), 400, "bad_input");
    problem(web.get("/api/v1/tasks?colour=red"), 400, "bad_input");
    problem(web.get("/api/v1/tasks?cursor=garbage"), 400, "bad_input");
    let unknown = problem(web.get("/api/v1/tasks/TASK-999"), 404, "not_found");
    assert_eq!(unknown["exit_code"], 3);
    problem(
        web.post("/api/v1/tasks/TASK-999/kill", None),
        404,
        "not_found",
    );
    problem(
        web.get("/api/v1/tasks/TASK-1/logs?stream=stdweird"),
        400,
        "bad_input",
    );
    problem(web.get("/api/v1/nowhere"), 404, "not_found");
    assert_eq!(web.task_count(), before, "nothing was created");
}

/// The list and show answers are kept between commits: a request made after
/// any write returns, by the web or by another process, sees that write.
#[test]
fn kept_answers_never_outlive_a_commit() {
    let web = Web::with_daemon();
    let ids = |page: &Value| -> Vec<String> {
        page["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = || -> Value { web.get("/api/v1/tasks?limit=50").json().unwrap() };
    let before = list();
    assert_eq!(list(), before, "nothing committed, the same answer");

    // Another process commits: the next list has it, with no waiting.
    let id = web
        .ws
        .run(&["task", "add", "made by the CLI"])
        .ok()
        .last_line();
    let after_cli = list();
    assert!(ids(&after_cli).contains(&id), "{after_cli}");
    let show = |id: &str| -> Value { web.get(&format!("/api/v1/tasks/{id}")).json().unwrap() };
    assert_eq!(show(&id)["status"], "pending");
    assert_eq!(show(&id)["status"], "pending");
    web.ws.run(&["task", "start", &id]).ok();
    assert_eq!(show(&id)["status"], "running");
    assert_eq!(list()["tasks"][0]["status"], "running");

    // The web itself commits (through the daemon): the same.
    let spawned = web.post(
        "/api/v1/processes",
        Some(&json!({"argv": ["sleep", "300"], "name": "kept-answer"}).to_string()),
    );
    assert_eq!(spawned.status().as_u16(), 201, "{spawned:?}");
    let process: Value = spawned.json().unwrap();
    let process_id = process["id"].as_str().unwrap().to_owned();
    assert!(ids(&list()).contains(&process_id));
    assert_eq!(show(&process_id)["name"], "kept-answer");
    // A filtered list is its own answer, and fresh too.
    let manual: Value = web.get("/api/v1/tasks?kind=manual").json().unwrap();
    assert_eq!(ids(&manual), std::slice::from_ref(&id));
    web.post(&format!("/api/v1/tasks/{process_id}/kill"), None);
    web.ws.run(&["task", "done", &id]).ok();
    let manual: Value = web.get("/api/v1/tasks?kind=manual").json().unwrap();
    assert_eq!(manual["tasks"][0]["status"], "succeeded");
}

#[test]
fn actions_logs_metrics_and_openapi() {
    let web = Web::with_daemon();
    let spawned = web.post(
        "/api/v1/processes",
        Some(
            &json!({"argv": ["sh", "-c", "echo from-web; sleep 300"], "name": "web-made"})
                .to_string(),
        ),
    );
    assert_eq!(spawned.status().as_u16(), 201, "{spawned:?}");
    let task: Value = spawned.json().unwrap();
    let id = task["id"].as_str().unwrap().to_owned();
    // The CLI sees what the web started.
    web.ws.wait_status(&id, "running");
    common::eventually("the log", || {
        let chunk: Value = web
            .get(&format!("/api/v1/tasks/{id}/logs?tail=5"))
            .json()
            .unwrap();
        chunk["text"] == "from-web\n"
    });
    let range: Value = web
        .get(&format!("/api/v1/tasks/{id}/logs?offset=5&length=3"))
        .json()
        .unwrap();
    assert_eq!(
        (range["text"].as_str(), range["end"].as_u64()),
        (Some("web"), Some(8))
    );

    let filtered: Value = web
        .get("/api/v1/tasks?kind=process&status=running")
        .json()
        .unwrap();
    assert!(
        filtered["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str())
    );
    let metrics = web.get("/metrics");
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().unwrap();
    assert!(
        text.contains("taskdaemon_tasks{status=\"running\"} 1"),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    assert!(text.contains("\ntaskdaemon_retries_total 0\n"), "{text}");

    // A tracked task moved from the web, refused moves are 409.
    let manual = web.ws.run(&["task", "add", "Write docs"]).ok().last_line();
    problem(
        web.post(&format!("/api/v1/tasks/{manual}/done"), None),
        409,
        "illegal_state",
    );
    let started: Value = web
        .post(&format!("/api/v1/tasks/{manual}/start"), None)
        .json()
        .unwrap();
    assert_eq!(started["status"], "running");
    problem(
        web.post(&format!("/api/v1/tasks/{manual}/fail"), Some("{}")),
        400,
        "bad_input",
    );

    let killed = web.post(
        &format!("/api/v1/tasks/{id}/kill"),
        Some(r#"{"grace_ms":2000}"#),
    );
    assert_eq!(killed.status().as_u16(), 200);
    assert_eq!(web.ws.task_status(&id), "cancelled");

    // Aggregates and the report, from the API and the CLI.
    let aggregates: Value = web.get("/api/v1/aggregates?since=1h").json().unwrap();
    assert_eq!(aggregates["total"]["cancelled"], 1, "{aggregates}");
    let markdown = web.get("/api/v1/report?since=1h&format=md").text().unwrap();
    assert!(markdown.starts_with("# taskdaemon report"), "{markdown}");
    problem(web.get("/api/v1/report?format=pdf"), 400, "bad_input");
    problem(web.get("/api/v1/aggregates?since=banana"), 400, "bad_input");
    let report = web
        .ws
        .run(&["report", "--since", "1h", "--format", "json"])
        .ok()
        .json();
    assert_eq!(report["aggregates"]["total"]["finished"], 1, "{report}");

    let doc: Value = web.get("/api/openapi.json").json().unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/tasks",
        "/api/v1/tasks/{id}/kill",
        "/api/v1/stream",
        "/api/v1/queues/{queue}/submit",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert_eq!(web.get("/api/docs").status().as_u16(), 200);

    // A failing command restarted twice by its policy: two retries.
    let flaky = web
        .ws
        .run(&[
            "spawn",
            "--restart",
            "on-failure",
            "--max-restarts",
            "2",
            "--restart-delay",
            "10ms",
            "--",
            "sh",
            "-c",
            "exit 1",
        ])
        .ok()
        .last_line();
    web.ws.wait_status(&flaky, "failed");
    let text = web.get("/metrics").text().unwrap();
    assert!(text.contains("\ntaskdaemon_retries_total 2\n"), "{text}");
    assert!(text.contains("\ntaskdaemon_claims_total 0\n"), "{text}");
}

/// The exit-detection histogram of `/metrics`: its buckets (by bound, in
/// order), sum and count, checked to be one consistent cumulative histogram.
fn exit_histogram(text: &str) -> (Vec<(String, u64)>, f64, u64) {
    const NAME: &str = "taskdaemon_exit_detection_seconds";
    assert!(
        text.contains(&format!("# TYPE {NAME} histogram\n")),
        "{text}"
    );
    let value = |line: &str| line.rsplit(' ').next().unwrap().to_owned();
    let buckets: Vec<(String, u64)> = text
        .lines()
        .filter_map(|line| line.strip_prefix(&format!("{NAME}_bucket{{le=\"")))
        .map(|rest| {
            let (bound, _) = rest.split_once('"').unwrap();
            (bound.to_owned(), value(rest).parse().unwrap())
        })
        .collect();
    let line = |suffix: &str| {
        let prefix = format!("{NAME}_{suffix} ");
        value(text.lines().find(|l| l.starts_with(&prefix)).unwrap())
    };
    let sum: f64 = line("sum").parse().unwrap();
    let count: u64 = line("count").parse().unwrap();
    assert_eq!(
        buckets.last().map(|(b, _)| b.as_str()),
        Some("+Inf"),
        "{text}"
    );
    assert_eq!(
        buckets.last().unwrap().1,
        count,
        "+Inf holds every exit: {text}"
    );
    let bounds: Vec<f64> = buckets[..buckets.len() - 1]
        .iter()
        .map(|(b, _)| b.parse().unwrap())
        .collect();
    assert!(
        bounds.windows(2).all(|w| w[0] < w[1]),
        "ascending bounds: {text}"
    );
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative counts: {text}"
    );
    assert!(sum >= 0.0 && sum.is_finite(), "{text}");
    (buckets, sum, count)
}

#[test]
fn exit_detection_latency_histogram_counts_every_exit() {
    let web = Web::with_daemon();
    let (_, sum_before, before) = exit_histogram(&web.get("/metrics").text().unwrap());
    let succeeded = web.ws.spawn(&["--", "true"]);
    let failed = web.ws.spawn_sh("exit 3");
    // Three exits: the first run and two restarts.
    let flaky = web
        .ws
        .run(&[
            "spawn",
            "--restart",
            "on-failure",
            "--max-restarts",
            "2",
            "--restart-delay",
            "10ms",
            "--",
            "sh",
            "-c",
            "exit 1",
        ])
        .ok()
        .last_line();
    web.ws.wait_status(&succeeded, "succeeded");
    web.ws.wait_status(&failed, "failed");
    web.ws.wait_status(&flaky, "failed");

    let text = web.get("/metrics").text().unwrap();
    let (buckets, sum, count) = exit_histogram(&text);
    assert_eq!(count, before + 5, "one observation per exit: {text}");
    assert!(
        sum > sum_before,
        "every exit takes some time to record: {text}"
    );
    // Killing a process is an exit its shim sees too.
    let long = web.ws.spawn(&["--", "sleep", "300"]);
    web.ws.wait_status(&long, "running");
    web.ws.run(&["kill", &long]).ok();
    web.ws.wait_status(&long, "cancelled");
    let (after_kill, _, count) = exit_histogram(&web.get("/metrics").text().unwrap());
    assert_eq!(count, before + 6);
    assert_eq!(after_kill.len(), buckets.len(), "the bounds stay the same");
    // The JSON view carries the same histogram.
    let json: Value = web.get("/api/v1/metrics").json().unwrap();
    assert_eq!(json["counters"]["exit_detection"]["count"], before + 6);
}

#[test]
fn share_links_are_read_only_and_see_only_their_scope() {
    let web = Web::with_daemon();
    let shared = web.ws.spawn_sh("sleep 300");
    let other = web.ws.spawn_sh("sleep 300");
    let url = web
        .ws
        .run(&["share", "--scope", "task", &shared, "--expires", "1h"])
        .ok()
        .last_line();
    let secret = url.split("token=").nth(1).unwrap().to_owned();
    assert!(url.starts_with(&web.base), "{url}");

    let page: Value = web.get_as(&secret, "/api/v1/tasks").json().unwrap();
    let ids: Vec<&str> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [shared.as_str()]);
    problem(
        web.get_as(&secret, &format!("/api/v1/tasks/{other}")),
        404,
        "not_found",
    );
    problem(web.get_as(&secret, "/api/v1/memory"), 403, "forbidden");
    problem(web.get_as(&secret, "/metrics"), 403, "forbidden");
    for action in ["kill", "restart", "cancel", "retry", "start"] {
        problem(
            web.post_as(&secret, &format!("/api/v1/tasks/{shared}/{action}"), None),
            403,
            "forbidden",
        );
    }
    problem(
        web.post_as(&secret, "/api/v1/processes", Some(r#"{"argv":["true"]}"#)),
        403,
        "forbidden",
    );
    assert_eq!(
        web.ws.task_status(&shared),
        "running",
        "the refused kill changed nothing"
    );
    let me: Value = web.get_as(&secret, "/api/v1/me").json().unwrap();
    assert_eq!(me["can_act"], false);

    let listed = web.ws.run(&["share", "list", "--json"]).ok().json();
    let share_id = listed[0]["id"].as_str().unwrap().to_owned();
    assert!(
        listed[0].get("secret").is_none(),
        "list never shows secrets: {listed}"
    );
    web.ws.run(&["share", "revoke", &share_id]).ok();
    problem(web.get_as(&secret, "/api/v1/tasks"), 401, "unauthorized");
    problem(
        web.http
            .get(format!("{}/login?token={secret}", web.base))
            .send()
            .unwrap(),
        401,
        "unauthorized",
    );
    let bad_scope = web.ws.run(&["share", "--scope", "planet", "mars"]);
    assert_eq!(bad_scope.code, Some(2), "{bad_scope:?}");
}

#[test]
fn stream_sends_a_snapshot_then_live_events_and_resumes_without_a_gap() {
    let web = Web::with_daemon();
    let first = web.ws.spawn_sh("sleep 300");
    let mut socket = web.stream("");
    let snapshot = next_message(&mut socket);
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert!(
        snapshot["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == first.as_str())
    );
    assert!(snapshot["counters"]["tasks"]["running"].as_u64() >= Some(1));
    // No loops, no cost: a plain zero, not the -0.0 a float sum starts from.
    assert_eq!(snapshot["counters"]["loop_cost_usd"].to_string(), "0.0");

    // A task spawned from the CLI arrives live.
    let second = web.ws.spawn_sh("sleep 300");
    let seen = events_until(&mut socket, |e| {
        e["task_id"] == second.as_str() && e["kind"] == "started"
    });
    let last_seq = seen.last().unwrap()["seq"].as_i64().unwrap();
    drop(socket);

    // While disconnected: more changes.
    web.ws.run(&["kill", &first]).ok();
    web.ws.run(&["kill", &second]).ok();
    let history: Value = web
        .get(&format!("/api/v1/history?after={last_seq}&limit=500"))
        .json()
        .unwrap();
    let missed: Vec<i64> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert!(!missed.is_empty());

    // Resuming from the last sequence number replays exactly those, in order.
    let mut resumed = web.stream(&format!("?from={last_seq}"));
    let target = *missed.last().unwrap();
    let replay = events_until(&mut resumed, |e| e["seq"].as_i64() == Some(target));
    let replayed: Vec<i64> = replay.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(replayed, missed, "every missed event, once, in order");

    // Topics: only one task's events after unsubscribing from all.
    resumed
        .send(Message::Text(
            json!({"unsubscribe": ["all"], "subscribe": [format!("task:{first}")]})
                .to_string()
                .into(),
        ))
        .unwrap();
    let ack = next_message(&mut resumed);
    assert_eq!(ack["type"], "topics", "{ack}");
    assert_eq!(ack["topics"], json!([format!("task:{first}")]));
    let third = web.ws.spawn_sh("sleep 300");
    web.ws.run(&["restart", &first]).ok();
    let only = events_until(&mut resumed, |e| e["kind"] == "started");
    assert!(
        only.iter().all(|e| e["task_id"] == first.as_str()),
        "{only:?} (not {third})"
    );

    // A followed log streams its new lines: everything written after the
    // subscription is answered, and nothing from before.
    let mut logs = web.stream("?topics=none");
    let go = web.ws.root().join("go");
    let chatty = web.ws.spawn_sh(&format!(
        "echo before; while [ ! -e '{}' ]; do sleep 0.05; done; echo line-one; echo line-two; sleep 300",
        go.display()
    ));
    common::eventually("the line before the subscription is logged", || {
        std::fs::read_to_string(
            web.ws
                .state_dir()
                .join("procs")
                .join(&chatty)
                .join("stdout.log"),
        )
        .is_ok_and(|log| log == "before\n")
    });
    logs.send(Message::Text(
        json!({"subscribe": [format!("log:{chatty}")]})
            .to_string()
            .into(),
    ))
    .unwrap();
    let snapshot = next_message(&mut logs);
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    let ack = next_message(&mut logs);
    assert_eq!(ack["type"], "topics", "{ack}");
    std::fs::write(&go, "").unwrap();
    let mut text = String::new();
    while !text.contains("line-two") {
        let message = next_message(&mut logs);
        if message["type"] == "log" {
            assert_eq!(message["task"], chatty.as_str());
            text.push_str(message["text"].as_str().unwrap());
        }
    }
    assert_eq!(text, "line-one\nline-two\n");

    // The samples topic: running processes' resource use and the host's health.
    let mut samples = web.stream("?topics=samples");
    let sampled = loop {
        let message = next_message(&mut samples);
        assert_ne!(
            message["type"], "event",
            "only samples were asked for: {message}"
        );
        if message["type"] != "samples" {
            continue;
        }
        let rows = message["samples"].as_array().unwrap();
        if let Some(row) = rows.iter().find(|r| r["task"] == chatty.as_str()) {
            assert!(
                message["health"]["mem_total_kb"].as_u64() > Some(0),
                "{message}"
            );
            break row.clone();
        }
    };
    assert!(sampled["rss_kb"].as_u64() > Some(0), "{sampled}");
    assert!(sampled["processes"].as_u64() >= Some(1), "{sampled}");

    problem(
        web.http
            .get(format!("{}/api/v1/stream?from=abc", web.base))
            .header(AUTHORIZATION, format!("Bearer {}", web.token))
            .send()
            .unwrap(),
        400,
        "bad_input",
    );
}

#[test]
fn a_slow_stream_client_never_holds_back_the_others() {
    let web = Web::with_daemon();
    let task = web.ws.run(&["task", "add", "big edits"]).ok().last_line();
    let task = task.split_whitespace().next().unwrap().to_owned();
    // A client that reads nothing, behind a 4 KiB receive buffer.
    let mut slow = web.slow_stream();
    let mut fast = web.stream("");
    assert_eq!(next_message(&mut fast)["type"], "snapshot");

    // About 12 MiB of events (each edit carries both descriptions), far
    // more than the slow client's socket buffers hold.
    let texts = ["a".repeat(100_000), "b".repeat(100_000)];
    for i in 0..60 {
        web.ws
            .run(&["task", "edit", &task, "--description", &texts[i % 2]])
            .ok();
    }
    web.ws
        .run(&["task", "edit", &task, "--description", "done"])
        .ok();
    let is_done = |e: &Value| e["kind"] == "edited" && e["after"]["description"] == "done";
    // The fast client gets every edit while the slow one reads nothing.
    let edits = events_until(&mut fast, is_done)
        .iter()
        .filter(|e| e["kind"] == "edited")
        .count();
    assert_eq!(edits, 61);

    // The slow client, reading at last, gets the events in order with no
    // gap; if the server dropped it meanwhile, it resumes where it stopped.
    let history: Value = web.get("/api/v1/history?limit=500").json().unwrap();
    let every: Vec<i64> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    let mut received = Vec::new();
    let mut last = 0;
    loop {
        let message = match read_message(&mut slow) {
            Some(message) => message,
            None => {
                // Dropped for not reading: resume after the last event seen.
                slow = web.stream(&format!("?from={last}"));
                continue;
            }
        };
        match message["type"].as_str() {
            Some("snapshot") => last = message["seq"].as_i64().unwrap(),
            Some("event") => {
                let event = &message["event"];
                last = event["seq"].as_i64().unwrap();
                received.push(last);
                if is_done(event) {
                    break;
                }
            }
            _ => {}
        }
    }
    let expected: Vec<i64> = every
        .iter()
        .copied()
        .filter(|seq| received.first().is_some_and(|first| seq >= first))
        .take_while(|seq| *seq <= last)
        .collect();
    assert_eq!(received, expected, "every event once, in order");
    assert!(received.len() >= 61, "{received:?}");
}

#[test]
fn serving_refuses_taken_ports_and_remote_addresses_without_the_flag() {
    let ws = Ws::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let start = ws.run(&["start", "--web", &addr]);
    assert!(!start.success(), "{start:?}");
    assert!(start.stderr.contains("cannot listen"), "{start:?}");
    assert_eq!(
        ws.daemon_pid(),
        None,
        "a daemon that cannot serve the web does not start"
    );

    let remote = ws.run(&["web", "--listen", "0.0.0.0:0"]);
    assert!(!remote.success(), "{remote:?}");
    assert!(remote.stderr.contains("--allow-remote"), "{remote:?}");
    let dashboard = ws.run(&["dashboard", "--no-open"]);
    assert!(
        !dashboard.success(),
        "no server configured yet: {dashboard:?}"
    );
    // `[web] listen` in the config: every daemon start serves it.
    let config = taskdaemon_workspace::DEFAULT_CONFIG
        .replace("# listen = \"127.0.0.1:7777\"", "listen = \"127.0.0.1:0\"");
    assert!(
        config.contains("\nlisten = "),
        "the default config documents [web] listen"
    );
    ws.write_config(&config);
    let started = ws.run(&["start"]).ok();
    assert!(
        started.stdout.contains("dashboard  http://127.0.0.1:"),
        "{started:?}"
    );
    let url = ws.run(&["dashboard", "--no-open"]).ok().last_line();
    let token = ws.run(&["web", "token"]).ok().last_line();
    assert!(url.ends_with(&format!("/login?token={token}")), "{url}");
    let login = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&url)
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
}

#[test]
fn https_with_the_given_certificate() {
    let ws = Ws::new();
    let (cert, key) = (ws.root().join("cert.pem"), ws.root().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=taskdaemon-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        // A server certificate, not a CA (webpki refuses a CA as the end entity).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is needed in CI: {made:?}"
        );
        eprintln!("\n*** SKIPPING the HTTPS test: openssl cannot make a certificate ***\n");
        return;
    }
    let broken = ws.root().join("broken.pem");
    std::fs::write(&broken, "not a certificate").unwrap();
    let refused = ws.run(&[
        "start",
        "--web",
        "127.0.0.1:0",
        "--tls-cert",
        broken.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(
        !refused.success() && refused.stderr.contains("broken.pem"),
        "{refused:?}"
    );

    ws.run(&[
        "start",
        "--web",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .ok();
    let base = std::fs::read_to_string(ws.state_dir().join("web.url"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let token = ws.run(&["web", "token"]).ok().last_line();
    let client = Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let me: Value = client
        .get(format!("{base}/api/v1/me"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["role"], "owner");
    let login = client
        .get(format!("{base}/login?token={token}"))
        .send()
        .unwrap();
    assert!(
        login.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    let plain = Client::new()
        .get(base.replace("https://", "http://") + "/api/v1/me")
        .send();
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "no plain HTTP on the TLS port"
    );
}
