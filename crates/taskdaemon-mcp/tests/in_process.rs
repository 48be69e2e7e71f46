//! The MCP server in-process: an rmcp client talks to it over a duplex
//! stream, against a real workspace with a real SQLite store. (Tools that go
//! through the daemon, such as `spawn`, are exercised with the real binary
//! in the CLI's `mcp_stdio` test.)

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ReadResourceRequestParams, ResourceContents,
};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use taskdaemon_mcp::{CURRENT_URI, REHYDRATE_URI, ServerOptions, TaskdaemonMcp};
use taskdaemon_service::Service;

struct Connected {
    client: RunningService<RoleClient, ClientConfig>,
    _dir: tempfile::TempDir,
}

impl Connected {
    /// The workspace's SQLite store, opened beside the server's.
    fn store(&self) -> taskdaemon_store::SqliteStore {
        taskdaemon_store::SqliteStore::open(&self._dir.path().join(".taskdaemon/state.db")).unwrap()
    }
}

/// A fresh workspace, its server, and a client named `claude-code` connected to it.
async fn connect(options: ServerOptions) -> Connected {
    let dir = tempfile::tempdir().unwrap();
    let (service, _) = Service::init(dir.path()).unwrap();
    let server = TaskdaemonMcp::new(service, options).unwrap();
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let running = server.serve(server_io).await.unwrap();
        let _ = running.waiting().await;
    });
    let config = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("claude-code", "2.1.0"),
    );
    let client = config.serve(client_io).await.unwrap();
    Connected { client, _dir: dir }
}

async fn call(c: &Connected, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    c.client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

/// A successful call's JSON answer.
async fn ok(c: &Connected, tool: &str, args: Value) -> Value {
    let result = call(c, tool, args).await;
    assert_ne!(result.is_error, Some(true), "{tool}: {}", text(&result));
    serde_json::from_str(&text(&result))
        .unwrap_or_else(|e| panic!("{tool}: {e}: {}", text(&result)))
}

/// A failed call's message.
async fn err(c: &Connected, tool: &str, args: Value) -> String {
    let result = call(c, tool, args).await;
    assert_eq!(
        result.is_error,
        Some(true),
        "{tool} should fail: {}",
        text(&result)
    );
    text(&result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_is_listed_with_a_described_schema() {
    let c = connect(ServerOptions::default()).await;
    let tools = c.client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "history",
            "kill",
            "logs",
            "loop_run",
            "loop_status",
            "plan_answer",
            "plan_list",
            "plan_show",
            "ps",
            "rehydrate",
            "remember",
            "restart",
            "search",
            "spawn",
            "submit",
            "task_add",
            "task_approve",
            "task_claim",
            "task_context",
            "task_done",
            "task_fail",
            "task_gate",
            "task_gates",
            "task_link",
            "task_list",
            "task_next",
            "task_ready",
            "task_resume",
            "task_start",
            "task_unlink",
            "tasks_list",
            "wait",
        ]
    );
    let spawn = tools.iter().find(|t| t.name == "spawn").unwrap();
    assert!(
        spawn
            .description
            .as_deref()
            .unwrap()
            .contains("supervision")
    );
    let schema = Value::Object((*spawn.input_schema).clone());
    assert_eq!(schema["required"], json!(["command"]));
    assert!(
        schema["properties"]["command"]["description"]
            .as_str()
            .unwrap()
            .contains("arguments"),
        "{schema}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_work_and_memory_through_the_tools() {
    let c = connect(ServerOptions::default()).await;
    let first = ok(
        &c,
        "task_add",
        json!({"title": "write the parser", "priority": "high"}),
    )
    .await;
    let id = first["id"].as_str().unwrap().to_owned();
    // The client's name gives the tool, so the id prefix.
    assert!(id.starts_with("CLAUDE-"), "{first}");
    let second = ok(&c, "task_add", json!({"title": "ship it", "after": [id]})).await;
    assert_eq!(second["status"], "blocked");

    let ready = ok(&c, "task_ready", json!({})).await;
    assert_eq!(ready.as_array().unwrap().len(), 1, "{ready}");
    assert_eq!(ready[0]["id"], id.as_str());

    // A refused transition carries the CLI's words.
    let refused = err(&c, "task_done", json!({"id": id})).await;
    assert!(
        refused.starts_with(&format!(
            "error: cannot mark {id} done: it was never started"
        )),
        "{refused}"
    );

    ok(&c, "task_start", json!({"id": id})).await;
    let context = ok(
        &c,
        "task_context",
        json!({"id": id, "files": ["src/parser.rs"]}),
    )
    .await;
    assert_eq!(context["files_modified"], json!(["src/parser.rs"]));
    let memory = ok(
        &c,
        "remember",
        json!({"text": "parse with nom, not regexes", "kind": "decision", "task": id}),
    )
    .await;
    assert_eq!(memory["kind"], "decision");

    let resume = ok(&c, "task_resume", json!({})).await;
    assert_eq!(resume["current_task"]["id"], id.as_str(), "{resume}");
    assert!(
        resume["session"].as_str().unwrap().starts_with("claude-"),
        "{resume}"
    );

    let hits = ok(&c, "search", json!({"query": "nom"})).await;
    assert!(hits.to_string().contains("parse with nom"), "{hits}");

    let done = ok(&c, "task_done", json!({"id": id, "note": "merged"})).await;
    assert_eq!(done["status"], "succeeded");
    let shipped = ok(
        &c,
        "task_fail",
        json!({"id": second["id"], "reason": "no release window"}),
    )
    .await;
    assert_eq!(shipped["status"], "failed");

    let history = ok(&c, "history", json!({"task": id})).await;
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.len() >= 3, "{history}");
    let page = ok(
        &c,
        "history",
        json!({"after_seq": history[0]["seq"], "limit": 1}),
    )
    .await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert!(page[0]["seq"].as_i64() > history[0]["seq"].as_i64());

    let rehydrate = call(&c, "rehydrate", json!({"budget": 400, "peek": true})).await;
    assert!(
        text(&rehydrate).contains("parse with nom"),
        "{}",
        text(&rehydrate)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_tool_errors_that_name_the_argument() {
    let c = connect(ServerOptions::default()).await;
    assert_eq!(
        err(&c, "remember", json!({"text": "x", "kind": "opinion"})).await,
        err(&c, "remember", json!({"text": "x", "kind": "opinion"})).await
    );
    assert!(
        err(&c, "remember", json!({"text": "x", "kind": "opinion"}))
            .await
            .contains("kind 'opinion'")
    );
    assert!(
        err(&c, "wait", json!({"id": "TASK-1", "timeout": "soon"}))
            .await
            .contains("timeout 'soon'")
    );
    assert!(
        err(&c, "tasks_list", json!({"status": "sleeping"}))
            .await
            .contains("status 'sleeping'")
    );
    assert!(
        err(&c, "history", json!({"since": "yesterday"}))
            .await
            .contains("yesterday")
    );
    assert_eq!(
        err(&c, "logs", json!({"id": "CLAUDE-99"})).await,
        "error: no task with id 'CLAUDE-99'"
    );
    assert!(
        err(&c, "loop_status", json!({"id": "LOOP-9"}))
            .await
            .starts_with("error: ")
    );
    assert!(
        err(
            &c,
            "submit",
            json!({"queue": "bad queue", "command": "true"})
        )
        .await
        .contains("'bad queue'")
    );
    // A missing required argument is a tool error too, naming the field.
    assert!(
        err(&c, "task_add", json!({}))
            .await
            .contains("missing field `title`")
    );
    // Read-only listings of an empty workspace answer with empty lists.
    assert_eq!(ok(&c, "ps", json!({"all": true})).await, json!([]));
    assert_eq!(ok(&c, "tasks_list", json!({})).await, json!([]));
    assert_eq!(ok(&c, "loop_status", json!({"all": true})).await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_hold_the_summary_and_the_snapshot() {
    let c = connect(ServerOptions {
        tool: Some("codex".to_owned()),
        session: Some("sess-42".to_owned()),
        ..ServerOptions::default()
    })
    .await;
    let task = ok(&c, "task_add", json!({"title": "index the docs"})).await;
    ok(&c, "task_start", json!({"id": task["id"]})).await;
    assert!(task["id"].as_str().unwrap().starts_with("CODEX-"), "{task}");

    let listed = c.client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = listed.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(uris, [REHYDRATE_URI, CURRENT_URI]);

    let read = |uri: &'static str| {
        let client = &c.client;
        async move {
            let result = client
                .read_resource(ReadResourceRequestParams::new(uri))
                .await
                .unwrap();
            match &result.contents[0] {
                ResourceContents::TextResourceContents { text, .. } => text.clone(),
                other => panic!("{other:?}"),
            }
        }
    };
    let summary = read(REHYDRATE_URI).await;
    assert!(summary.contains("index the docs"), "{summary}");
    let current: Value = serde_json::from_str(&read(CURRENT_URI).await).unwrap();
    assert!(current.to_string().contains("index the docs"), "{current}");
    assert!(current.to_string().contains("sess-42"), "{current}");

    let unknown = c
        .client
        .read_resource(ReadResourceRequestParams::new("taskdaemon://nope"))
        .await;
    assert!(unknown.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_given_on_the_command_line_keeps_the_clients_tool() {
    let c = connect(ServerOptions {
        tool: None,
        session: Some("fixed-1".to_owned()),
        ..ServerOptions::default()
    })
    .await;
    let task = ok(&c, "task_add", json!({"title": "one"})).await;
    assert!(
        task["id"].as_str().unwrap().starts_with("CLAUDE-"),
        "{task}"
    );
    assert_eq!(task["session"], "fixed-1", "{task}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_are_listed_shown_and_their_queries_answered() {
    use taskdaemon_core::pipeline::{MessageKind, NewMessage, NewPlan, NewSpec, PipelineStatus};
    use taskdaemon_store::Store;

    let c = connect(ServerOptions::default()).await;
    assert_eq!(
        ok(&c, "plan_list", json!({})).await,
        json!({"plans": [], "waiting_queries": [], "alerts": []})
    );
    // What `new-plan` and the daemon's driver record, written through the store.
    let store = c.store();
    let plan = store
        .create_plan(
            &NewPlan {
                goal: "Add OAuth login".into(),
                target_branch: "main".into(),
                base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
                auto_approve: true,
                ..NewPlan::default()
            },
            "test",
        )
        .unwrap();
    store
        .set_plan_status(&plan.id, PipelineStatus::Running, None, "daemon")
        .unwrap();
    let spec = NewSpec {
        name: "auth".into(),
        title: "Auth".into(),
        body: "build it".into(),
        depends_on: Vec::new(),
        priority: 0,
    };
    store.add_specs(&plan.id, &[spec], "loop").unwrap();
    let query = store
        .send_message(
            &NewMessage {
                plan: plan.id.clone(),
                from: "auth".into(),
                to: "human".into(),
                kind: MessageKind::Query,
                body: "Which provider?".into(),
            },
            "daemon",
        )
        .unwrap();

    let listed = ok(&c, "plan_list", json!({})).await;
    assert_eq!(listed["plans"][0]["id"], plan.id.as_str(), "{listed}");
    assert_eq!(listed["plans"][0]["specs_total"], 1, "{listed}");
    assert_eq!(listed["waiting_queries"][0]["id"], query.id.as_str());
    let shown = ok(&c, "plan_show", json!({"id": plan.id})).await;
    assert_eq!(shown["specs"][0]["name"], "auth", "{shown}");
    assert!(
        err(&c, "plan_show", json!({"id": "PLAN-99"}))
            .await
            .starts_with("error: ")
    );
    assert!(
        err(
            &c,
            "plan_answer",
            json!({"message": query.id, "answer": "  "})
        )
        .await
        .contains("must not be empty")
    );
    let answered = ok(
        &c,
        "plan_answer",
        json!({"message": query.id, "answer": "GitHub"}),
    )
    .await;
    assert_eq!(answered["delivery"], "answered");
    assert_eq!(
        store.message(&query.id).unwrap().answer.as_deref(),
        Some("GitHub")
    );
    let listed = ok(&c, "plan_list", json!({})).await;
    assert_eq!(listed["waiting_queries"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_choose_the_tools() {
    for (profile, count) in [
        (taskdaemon_mcp::ToolProfile::Core, 12),
        (taskdaemon_mcp::ToolProfile::Standard, 25),
    ] {
        let c = connect(ServerOptions {
            profile,
            ..ServerOptions::default()
        })
        .await;
        let tools = c.client.list_all_tools().await.unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names.len(), count, "{profile}: {names:?}");
        assert!(names.contains(&"task_next") && names.contains(&"task_claim"));
        assert!(!names.contains(&"loop_run"), "{profile}: {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_next_claims_and_pages_through_the_tools() {
    let c = connect(ServerOptions {
        session: Some("agent-a".to_owned()),
        ..ServerOptions::default()
    })
    .await;
    let a = ok(
        &c,
        "task_add",
        json!({"title": "schema", "priority": "high"}),
    )
    .await;
    let b = ok(&c, "task_add", json!({"title": "api"})).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let linked = ok(
        &c,
        "task_link",
        json!({"from": a, "kind": "blocks", "to": b}),
    )
    .await;
    assert_eq!(linked["links"][0]["kind"], "blocks", "{linked}");
    let cycle = err(
        &c,
        "task_link",
        json!({"from": b, "kind": "blocks", "to": a}),
    )
    .await;
    assert!(cycle.contains("cycle"), "{cycle}");
    let bad = err(
        &c,
        "task_link",
        json!({"from": b, "kind": "needs", "to": a}),
    )
    .await;
    assert!(bad.contains("unknown link type 'needs'"), "{bad}");

    let next = text(&call(&c, "task_next", json!({"explain": true})).await);
    assert!(
        next.starts_with(&format!("{a} pending p10 schema")),
        "{next}"
    );
    assert!(
        next.contains("why: ") && next.contains("only ready task"),
        "{next}"
    );
    let claimed = text(&call(&c, "task_claim", json!({})).await);
    assert!(claimed.starts_with(&format!("{a} running")), "{claimed}");
    assert!(claimed.ends_with("@cli:agent-a"), "{claimed}");
    let none = text(&call(&c, "task_claim", json!({})).await);
    assert_eq!(none, "nothing ready to claim");

    for n in 0..300 {
        ok(&c, "task_add", json!({"title": format!("filler {n}")})).await;
    }
    let first = text(&call(&c, "task_list", json!({})).await);
    assert!(first.len() < 25_000, "{} chars", first.len());
    assert_eq!(first.lines().count(), 201, "200 tasks and the cursor");
    let cursor = first
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("next_cursor: "))
        .unwrap();
    let second = text(&call(&c, "task_list", json!({"cursor": cursor})).await);
    assert_eq!(second.lines().count(), 102, "the rest, no cursor: {second}");
    assert!(second.contains(&format!("{a} running")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_are_added_listed_and_approved_through_the_tools() {
    let c = connect(ServerOptions::default()).await;
    let task = ok(&c, "task_add", json!({"title": "ship it"})).await;
    let id = task["id"].as_str().unwrap();
    let added = ok(
        &c,
        "task_gate",
        json!({"id": id, "approval": true, "until_command": ["test -f built"]}),
    )
    .await;
    let kinds: Vec<&str> = added
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["until-command", "approval"], "{added}");
    assert_eq!(ok(&c, "task_gates", json!({"id": id})).await, added);
    let ready = text(&call(&c, "task_ready", json!({})).await);
    assert!(!ready.contains(id), "a gated task is not ready: {ready}");

    let none = err(&c, "task_gate", json!({"id": id})).await;
    assert!(none.contains("name a gate"), "{none}");
    let when = err(&c, "task_gate", json!({"id": id, "until": "soon"})).await;
    assert!(when.contains("RFC 3339"), "{when}");
    let missing = err(&c, "task_gates", json!({"id": "NOPE-9"})).await;
    assert!(missing.contains("NOPE-9"), "{missing}");

    let opened = ok(&c, "task_approve", json!({"id": id})).await;
    assert_eq!(opened[0]["kind"], "approval", "{opened}");
    assert!(opened[0]["opened_at"].is_string(), "{opened}");
    let again = err(&c, "task_approve", json!({"id": id})).await;
    assert!(again.contains("approval gate"), "{again}");
    let store = c.store();
    use taskdaemon_store::Store;
    let shut = store.shut_gates().unwrap();
    assert_eq!(shut.len(), 1, "the command gate still waits: {shut:?}");
    assert_eq!(shut[0].kind, taskdaemon_core::gate::GateKind::UntilCommand);
}
