//! Structural (pipeline) tools in real loops against the fake server, routed
//! by the tools each request offers, in both wire formats.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use serde_json::{Value, json};
use taskdaemon_fake_llm::{Block, FakeLlm, RecordedRequest, Route, Turn};
use taskdaemon_llm::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const PROVIDERS: [Provider; 2] = [Provider::Anthropic, Provider::OpenAi];

/// A loop spec of pipeline kind `kind` for `provider`. Its validation
/// command leaves a marker file, so a test can tell whether it ran.
fn pipeline_spec(work: &Path, kind: PipelineLoop, provider: Provider) -> LoopSpec {
    let mut s = spec(work, argv(&["touch", "validation-ran"]));
    s.spec = Some(format!("Break the plan into specs ({}).", kind.loop_type()));
    s.allowed_tools = Some(kind.allowed_tools());
    if provider == Provider::OpenAi {
        s.provider = "openai".into();
        s.model = "gpt-4o".into();
    }
    s
}

/// The text of the last tool result a request carries, and whether it is an error.
fn last_tool_result(request: &RecordedRequest) -> (String, bool) {
    let messages = request.body["messages"].as_array().unwrap();
    let last = messages.last().unwrap();
    if last["role"] == "tool" {
        let text = last["content"].as_str().unwrap().to_string();
        let is_error = text.starts_with("ERROR: ");
        return (text, is_error);
    }
    let result = last["content"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|b| b["type"] == "tool_result")
        .unwrap()
        .clone();
    (
        result["content"].as_str().unwrap().to_string(),
        result["is_error"] == true,
    )
}

fn offered(request: &RecordedRequest) -> Vec<String> {
    request.offered_tools()
}

#[tokio::test]
async fn spec_loop_corrects_a_bad_create_spec_then_finishes() {
    for provider in PROVIDERS {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        let server = FakeLlm::start_routed([Route::offering("create_spec")
            .reply(Turn::tool(
                "create_spec",
                json!({"name": "db", "title": "Schema", "body": "tables", "dependson": []}),
            ))
            .reply(Turn::tool(
                "create_spec",
                json!({"name": "db", "title": "Schema", "body": "tables"}),
            ))
            .reply(Turn::blocks(vec![
                Block::text("The API needs the schema."),
                Block::tool_use(
                    "create_spec",
                    json!({"name": "api", "title": "API", "body": "routes", "depends_on": ["db"], "priority": 2}),
                ),
            ]))
            .reply(Turn::tool("finish", json!({})))])
        .await
        .unwrap();
        let recorder = PipelineRecorder::new();
        let config = pipeline_spec(&work, PipelineLoop::Spec, provider)
            .into_config()
            .unwrap();
        let progress = dir.path().join("progress.jsonl");
        let tools = Arc::new(PipelineTools::new(PipelineLoop::Spec, recorder.clone()));
        let outcome = LoopRunner::new(config.clone(), llm(&server, provider), &progress)
            .unwrap()
            .with_structural_tools(tools.clone())
            .run()
            .await
            .unwrap();

        assert_eq!(
            outcome.status,
            LoopStatus::Succeeded { iteration: 1 },
            "{provider}"
        );
        assert_eq!(
            recorder.calls(),
            [
                PipelineCall::CreateSpec(CreateSpec {
                    name: "db".into(),
                    title: "Schema".into(),
                    body: "tables".into(),
                    depends_on: vec![],
                    priority: 0,
                }),
                PipelineCall::CreateSpec(CreateSpec {
                    name: "api".into(),
                    title: "API".into(),
                    body: "routes".into(),
                    depends_on: vec!["db".into()],
                    priority: 2,
                }),
                PipelineCall::Finish,
            ],
            "{provider}"
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 4, "{provider}: finish ends the loop");
        assert_eq!(
            offered(&requests[0]),
            [
                "read_file",
                "list_dir",
                "search_files",
                "create_spec",
                "finish"
            ],
            "{provider}"
        );
        let (text, is_error) = last_tool_result(&requests[1]);
        assert!(is_error, "{provider}: {text}");
        assert!(
            text.contains("create_spec: unknown field `dependson`; did you mean `depends_on`?; fields: name, title, body, depends_on, priority"),
            "{provider}: {text}"
        );
        let (text, is_error) = last_tool_result(&requests[2]);
        assert!(
            !is_error && text == "created spec `db`",
            "{provider}: {text}"
        );
        assert!(
            !work.join("validation-ran").exists(),
            "{provider}: a finished structural loop runs no validation"
        );
        let records = ProgressLog::read(&progress).unwrap();
        assert_eq!(records.len(), 1);
        assert!(records[0].finished && records[0].passed());
        assert_eq!(
            records[0].tool_names,
            ["create_spec", "create_spec", "create_spec", "finish"]
        );
        assert_eq!(records[0].llm_calls, 4);

        // Resuming a finished loop asks the model nothing and records nothing.
        let again = LoopRunner::new(config, llm(&server, provider), &progress)
            .unwrap()
            .with_structural_tools(tools)
            .run()
            .await
            .unwrap();
        assert_eq!(again.status, LoopStatus::Succeeded { iteration: 1 });
        assert_eq!(server.requests().len(), 4);
        assert_eq!(recorder.calls().len(), 3);
    }
}

#[tokio::test]
async fn a_structural_loop_that_ends_its_turn_without_finish_runs_another_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let server = FakeLlm::start_routed([Route::offering("create_phase")
        .reply(Turn::tool(
            "create_phase",
            json!({"name": "schema", "title": "t", "body": "b", "validation": "test -f schema.sql"}),
        ))
        .reply(Turn::text("All phases created."))
        .reply(Turn::tool("finish", json!({})))])
    .await
    .unwrap();
    let recorder = PipelineRecorder::new();
    let config = pipeline_spec(&work, PipelineLoop::Phase, Provider::Anthropic)
        .into_config()
        .unwrap();
    let progress = dir.path().join("p.jsonl");
    let outcome = LoopRunner::new(config, llm(&server, Provider::Anthropic), &progress)
        .unwrap()
        .with_structural_tools(Arc::new(PipelineTools::new(
            PipelineLoop::Phase,
            recorder.clone(),
        )))
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.status, LoopStatus::Succeeded { iteration: 2 });
    let records = ProgressLog::read(&progress).unwrap();
    assert_eq!(records.len(), 2);
    assert!(!records[0].passed() && records[0].validation_exit_code.is_none());
    assert!(records[1].finished);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let second = prompt_of(&requests[2]);
    assert!(
        second.contains("call its finishing tool (`finish`)"),
        "iteration 2 is told why iteration 1 did not count: {second}"
    );
    assert!(!work.join("validation-ran").exists());
    let names: Vec<&str> = recorder.calls().iter().map(|c| c.tool_name()).collect();
    assert_eq!(names, ["create_phase", "finish"]);
}

#[tokio::test]
async fn a_plan_loop_ends_when_its_plan_is_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start_routed([Route::offering("submit_plan")
        .reply(Turn::tool("list_dir", json!({})))
        .reply(Turn::tool(
            "submit_plan",
            json!({"title": "OAuth", "summary": "s", "body": "b"}),
        ))])
    .await
    .unwrap();
    let recorder = PipelineRecorder::new();
    let config = pipeline_spec(dir.path(), PipelineLoop::Plan, Provider::Anthropic)
        .into_config()
        .unwrap();
    let outcome = LoopRunner::new(
        config,
        llm(&server, Provider::Anthropic),
        dir.path().join(".p.jsonl"),
    )
    .unwrap()
    .with_structural_tools(Arc::new(PipelineTools::new(
        PipelineLoop::Plan,
        recorder.clone(),
    )))
    .run()
    .await
    .unwrap();
    assert_eq!(outcome.status, LoopStatus::Succeeded { iteration: 1 });
    assert_eq!(
        offered(&server.requests()[0]),
        ["read_file", "list_dir", "search_files", "submit_plan"]
    );
    assert_eq!(
        recorder.calls(),
        [PipelineCall::SubmitPlan(SubmitPlan {
            title: "OAuth".into(),
            summary: "s".into(),
            body: "b".into()
        })]
    );
}

#[tokio::test]
async fn a_ralph_loop_send_message_reaches_the_handler() {
    for provider in PROVIDERS {
        let dir = tempfile::tempdir().unwrap();
        let server = FakeLlm::start_routed([Route::offering("send_message")
            .reply(Turn::tool(
                "send_message",
                json!({"to": "plan", "kind": "alert", "body": "x"}),
            ))
            .reply(Turn::blocks(vec![
                Block::tool_use(
                    "send_message",
                    json!({"to": "plan", "kind": "share", "body": "the API lives under /v2"}),
                ),
                Block::tool_use("write_file", json!({"path": "hello.txt", "content": "hi"})),
            ]))
            .reply(Turn::text("done"))])
        .await
        .unwrap();
        let recorder = PipelineRecorder::new();
        let mut s = spec(dir.path(), argv(&["grep", "-q", "hi", "hello.txt"]));
        s.allowed_tools = Some(PipelineLoop::Ralph.allowed_tools());
        if provider == Provider::OpenAi {
            s.provider = "openai".into();
            s.model = "gpt-4o".into();
        }
        let outcome = LoopRunner::new(
            s.into_config().unwrap(),
            llm(&server, provider),
            dir.path().join(".p.jsonl"),
        )
        .unwrap()
        .with_structural_tools(Arc::new(PipelineTools::new(
            PipelineLoop::Ralph,
            recorder.clone(),
        )))
        .run()
        .await
        .unwrap();
        assert_eq!(
            outcome.status,
            LoopStatus::Succeeded { iteration: 1 },
            "{provider}: a Ralph loop still ends by validation"
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 3, "{provider}");
        let tools = offered(&requests[0]);
        assert_eq!(tools.len(), 9, "{provider}: {tools:?}");
        assert!(tools.ends_with(&[
            "send_message".to_string(),
            "ask".to_string(),
            "answer".to_string()
        ]));
        let (text, is_error) = last_tool_result(&requests[1]);
        assert!(
            is_error && text.contains("an alert goes to `human`"),
            "{provider}: {text}"
        );
        let calls = recorder.calls_with_context();
        assert_eq!(calls.len(), 1, "{provider}: only the valid message");
        assert_eq!(calls[0].0.kind, PipelineLoop::Ralph);
        assert_eq!(calls[0].0.iteration, 1);
        assert_eq!(
            calls[0].1,
            PipelineCall::SendMessage(SendMessage {
                to: MessageTarget::Plan,
                kind: MessageKind::Share,
                body: "the API lives under /v2".into(),
            })
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("hello.txt")).unwrap(),
            "hi"
        );
    }
}

/// A handler whose `ask` never answers, and that says when it was called.
struct Silent(Arc<Notify>);

#[async_trait]
impl PipelineHandler for Silent {
    async fn handle(&self, _ctx: &CallContext, _call: PipelineCall) -> Result<String, String> {
        self.0.notify_one();
        std::future::pending().await
    }
}

#[tokio::test]
async fn cancelling_stops_a_loop_waiting_on_its_handler() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start_routed([Route::offering("ask").reply(Turn::tool(
        "ask",
        json!({"to": "human", "question": "which database?"}),
    ))])
    .await
    .unwrap();
    let called = Arc::new(Notify::new());
    let cancel = CancellationToken::new();
    let mut s = spec(dir.path(), argv(&["true"]));
    s.allowed_tools = Some(PipelineLoop::Ralph.allowed_tools());
    let progress = dir.path().join(".p.jsonl");
    let runner = LoopRunner::new(
        s.into_config().unwrap(),
        llm(&server, Provider::Anthropic),
        &progress,
    )
    .unwrap()
    .with_cancel(cancel.clone())
    .with_structural_tools(Arc::new(PipelineTools::new(
        PipelineLoop::Ralph,
        Arc::new(Silent(called.clone())),
    )));
    let run = tokio::spawn(runner.run());
    called.notified().await;
    cancel.cancel();
    let outcome = run.await.unwrap().unwrap();
    assert_eq!(outcome.status, LoopStatus::Cancelled);
    assert!(ProgressLog::read(&progress).unwrap().is_empty());
}

/// Structural tools that try to take a toolbox tool's name.
struct Clashing;

#[async_trait]
impl StructuralTools for Clashing {
    fn specs(&self) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "read_file".into(),
            description: String::new(),
            input_schema: Value::Null,
        }]
    }

    async fn call(&self, _call: StructuralCall<'_>) -> StructuralOutput {
        StructuralOutput::ok("")
    }
}

#[tokio::test]
async fn structural_tools_may_not_shadow_toolbox_tools() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start([]).await.unwrap();
    let err = LoopRunner::new(
        spec(dir.path(), argv(&["true"])).into_config().unwrap(),
        llm(&server, Provider::Anthropic),
        dir.path().join(".p.jsonl"),
    )
    .unwrap()
    .with_structural_tools(Arc::new(Clashing))
    .run()
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("reuse toolbox tool names: read_file"),
        "{err}"
    );
    assert!(server.requests().is_empty());
}
