//! The Ralph loop against the fake server on loopback, with real files and real processes.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use serde_json::json;
use taskdaemon_fake_llm::{Block, FakeLlm, Reply, Turn, Usage as FakeUsage};
use taskdaemon_llm::*;
use tokio_util::sync::CancellationToken;

fn usage(input: u64, output: u64) -> FakeUsage {
    FakeUsage {
        input_tokens: input,
        output_tokens: output,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
    }
}

#[tokio::test]
async fn write_file_then_validation_passes() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let progress_path = dir.path().join("progress.jsonl");
    let server = FakeLlm::start([
        Turn::tool(
            "write_file",
            json!({"path": "hello.txt", "content": "hi\n"}),
        )
        .with_usage(usage(1000, 50))
        .into(),
        Turn::text("Created hello.txt.")
            .with_usage(usage(1200, 10))
            .into(),
    ])
    .await
    .unwrap();
    let hooks = recorder();
    let config = spec(&work, argv(&["grep", "-q", "hi", "hello.txt"]))
        .into_config()
        .unwrap();
    let outcome = LoopRunner::new(config, llm(&server, Provider::Anthropic), &progress_path)
        .unwrap()
        .with_hooks(hooks.clone())
        .run()
        .await
        .unwrap();

    assert_eq!(outcome.status, LoopStatus::Succeeded { iteration: 1 });
    assert_eq!(fs::read_to_string(work.join("hello.txt")).unwrap(), "hi\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first.path, "/v1/messages");
    assert_eq!(first.header("x-api-key"), Some(KEY));
    assert_eq!(first.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(first.body["stream"], true);
    assert_eq!(first.body["model"], "claude-sonnet-4-5");
    let tool_names: Vec<_> = first.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        tool_names,
        [
            "read_file",
            "write_file",
            "edit_file",
            "list_dir",
            "search_files",
            "run_command"
        ]
    );
    // The second request answers the tool call with a matching tool_result.
    let call_id = requests[1].body["messages"][1]["content"][0]["id"].clone();
    let results = tool_results(&requests[1]);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["tool_use_id"], call_id);
    assert_eq!(results[0]["is_error"], false);

    let records = ProgressLog::read(&progress_path).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].tool_names, ["write_file"]);
    assert_eq!(records[0].validation_exit_code, Some(0));
    assert_eq!(records[0].usage.input_tokens, 2200);
    assert_eq!(records[0].usage.output_tokens, 60);
    assert_eq!(records[0].llm_calls, 2);
    // claude-sonnet-4 prices: 3 $/M in, 15 $/M out.
    let expected = (2200.0 * 3.0 + 60.0 * 15.0) / 1e6;
    assert!((records[0].cost_usd - expected).abs() < 1e-12);
    assert!((outcome.totals.cost_usd - expected).abs() < 1e-12);
    assert_eq!(
        hooks.events(),
        [
            "start 1",
            "tool write_file",
            "result write_file error=false",
            "validate 1",
            "end 1 exit=Some(0)"
        ]
    );
}

#[tokio::test]
async fn validation_failure_feeds_progress_and_iteration_two_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let server = FakeLlm::start([
        Turn::tool(
            "write_file",
            json!({"path": "hello.txt", "content": "bye\n"}),
        )
        .into(),
        Turn::text("done").into(),
        Turn::tool(
            "edit_file",
            json!({"path": "hello.txt", "old": "bye", "new": "hi"}),
        )
        .into(),
        Turn::text("fixed").into(),
    ])
    .await
    .unwrap();
    let validate = argv(&[
        "sh",
        "-c",
        "grep -q hi hello.txt || { echo 'MISSING-HI in hello.txt'; exit 7; }",
    ]);
    let config = spec(&work, validate).into_config().unwrap();
    let progress_path = dir.path().join("p.jsonl");
    let outcome = LoopRunner::new(config, llm(&server, Provider::Anthropic), &progress_path)
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.status, LoopStatus::Succeeded { iteration: 2 });
    assert_eq!(fs::read_to_string(work.join("hello.txt")).unwrap(), "hi\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    // Iteration 2 starts from fresh context: one user message, carrying iteration 1's validation output.
    let second_iteration = &requests[2];
    assert_eq!(
        second_iteration.body["messages"].as_array().unwrap().len(),
        1
    );
    let prompt = prompt_of(second_iteration);
    assert!(prompt.contains("MISSING-HI"), "{prompt}");
    assert!(prompt.contains("exit code 7"), "{prompt}");
    assert!(prompt_of(&requests[0]).contains("first iteration"));
    let records = ProgressLog::read(&progress_path).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].validation_exit_code, Some(7));
    assert!(records[0].validation_output.contains("MISSING-HI"));
    assert!(records[1].passed());
}

#[tokio::test]
async fn max_iterations_fails_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start([
        Turn::text("nothing").into(),
        Turn::text("still nothing").into(),
    ])
    .await
    .unwrap();
    let mut s = spec(dir.path(), argv(&["sh", "-c", "echo not yet; exit 1"]));
    s.max_iterations = 2;
    let progress_path = dir.path().join(".progress.jsonl");
    let outcome = LoopRunner::new(
        s.into_config().unwrap(),
        llm(&server, Provider::Anthropic),
        &progress_path,
    )
    .unwrap()
    .run()
    .await
    .unwrap();
    let LoopStatus::Failed { reason } = &outcome.status else {
        panic!("expected failure, got {:?}", outcome.status);
    };
    assert!(reason.contains("after 2 iterations"), "{reason}");
    assert!(reason.contains("max_iterations = 2"), "{reason}");
    assert!(reason.contains("not yet"), "{reason}");
    assert_eq!(outcome.iterations, 2);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(ProgressLog::read(&progress_path).unwrap().len(), 2);
}

#[tokio::test]
async fn resume_from_progress_log_with_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let progress_path = dir.path().join("loops/L-1/progress.jsonl");

    // Two failed iterations from an earlier run, then a crash mid-append.
    let failing = FakeLlm::start([Turn::text("a").into(), Turn::text("b").into()])
        .await
        .unwrap();
    let mut s = spec(&work, argv(&["test", "-f", "hello.txt"]));
    s.max_iterations = 2;
    let first = LoopRunner::new(
        s.clone().into_config().unwrap(),
        llm(&failing, Provider::Anthropic),
        &progress_path,
    )
    .unwrap()
    .run()
    .await
    .unwrap();
    assert!(matches!(first.status, LoopStatus::Failed { .. }));
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&progress_path)
        .unwrap();
    std::io::Write::write_all(&mut f, br#"{"iteration":3,"started_at":"2026-"#).unwrap();
    drop(f);

    let server = FakeLlm::start([
        Turn::tool("write_file", json!({"path": "hello.txt", "content": "hi"})).into(),
        Turn::text("done").into(),
    ])
    .await
    .unwrap();
    s.max_iterations = 5;
    let runner = LoopRunner::new(
        s.clone().into_config().unwrap(),
        llm(&server, Provider::Anthropic),
        &progress_path,
    )
    .unwrap();
    assert_eq!(runner.next_iteration(), 3);
    let outcome = runner.run().await.unwrap();
    assert_eq!(outcome.status, LoopStatus::Succeeded { iteration: 3 });
    assert_eq!(outcome.iterations, 3);
    let prompt = prompt_of(&server.requests()[0]);
    assert!(prompt.contains("iteration 3 of at most 5"), "{prompt}");
    assert!(prompt.contains("### Iteration 2"), "{prompt}");
    let records = ProgressLog::read(&progress_path).unwrap();
    assert_eq!(
        records.iter().map(|r| r.iteration).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    // Resuming a finished loop makes no call at all.
    let idle = FakeLlm::start(Vec::<Reply>::new()).await.unwrap();
    let again = LoopRunner::new(
        s.into_config().unwrap(),
        llm(&idle, Provider::Anthropic),
        &progress_path,
    )
    .unwrap()
    .run()
    .await
    .unwrap();
    assert_eq!(again.status, LoopStatus::Succeeded { iteration: 3 });
    assert!(idle.requests().is_empty());
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start([
        Reply::RateLimited {
            retry_after: "1".into(),
        },
        Turn::text("done").into(),
    ])
    .await
    .unwrap();
    let hooks = recorder();
    let outcome = LoopRunner::new(
        spec(dir.path(), argv(&["true"])).into_config().unwrap(),
        llm(&server, Provider::Anthropic),
        dir.path().join("p.jsonl"),
    )
    .unwrap()
    .with_hooks(hooks.clone())
    .run()
    .await
    .unwrap();
    assert_eq!(outcome.status, LoopStatus::Succeeded { iteration: 1 });
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "one 429, then exactly one retry");
    // The policy's own backoff is 5-50ms here; only retry-after explains a ~1s gap.
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
    assert!(hooks.events().contains(&"retry 1".to_string()));
}

#[tokio::test]
async fn broken_streams_and_server_errors_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let write = Turn::tool("write_file", json!({"path": "hello.txt", "content": "hi"}));
    let server = FakeLlm::start([
        Reply::CutAfter {
            events: 5,
            turn: write.clone(),
        },
        Reply::Overloaded,
        Reply::MalformedSse,
        write.into(),
        Reply::ErrorEvent {
            error_type: "overloaded_error".into(),
            message: "Overloaded".into(),
        },
        Reply::ServerError { status: Some(503) },
        Turn::text("done").into(),
    ])
    .await
    .unwrap();
    let llm = llm(&server, Provider::Anthropic).with_retry(fast_retry(5));
    let hooks = recorder();
    let outcome = LoopRunner::new(
        spec(dir.path(), argv(&["grep", "-q", "hi", "hello.txt"]))
            .into_config()
            .unwrap(),
        llm,
        dir.path().join(".p.jsonl"),
    )
    .unwrap()
    .with_hooks(hooks.clone())
    .run()
    .await
    .unwrap();
    assert_eq!(outcome.status, LoopStatus::Succeeded { iteration: 1 });
    assert_eq!(server.requests().len(), 7);
    let events = hooks.events();
    assert_eq!(events.iter().filter(|e| e.starts_with("retry")).count(), 5);
    // The cut stream's partial tool call was discarded: the tool ran once.
    assert_eq!(events.iter().filter(|e| *e == "tool write_file").count(), 1);
}

#[tokio::test]
async fn retries_exhausted_stop_the_loop_without_recording() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start([
        Reply::ServerError { status: None },
        Reply::ServerError { status: None },
    ])
    .await
    .unwrap();
    let progress_path = dir.path().join("p.jsonl");
    let err = LoopRunner::new(
        spec(dir.path(), argv(&["true"])).into_config().unwrap(),
        llm(&server, Provider::Anthropic).with_retry(fast_retry(2)),
        &progress_path,
    )
    .unwrap()
    .run()
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("gave up after 2 attempts"), "{text}");
    assert!(text.contains("HTTP 500"), "{text}");
    assert!(ProgressLog::read(&progress_path).unwrap().is_empty());
}

#[tokio::test]
async fn path_escapes_are_refused_as_error_tool_results() {
    let outer = tempfile::tempdir().unwrap();
    let work = outer.path().join("work");
    fs::create_dir(&work).unwrap();
    fs::write(outer.path().join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(outer.path(), work.join("link")).unwrap();
    let abs_outside = outer.path().join("abs.txt");
    let server = FakeLlm::start([
        Turn::blocks(vec![
            Block::tool_use("write_file", json!({"path": "../x", "content": "x"})),
            Block::tool_use("read_file", json!({"path": "/etc/passwd"})),
            Block::tool_use(
                "write_file",
                json!({"path": "link/evil.txt", "content": "x"}),
            ),
            Block::tool_use("read_file", json!({"path": "link/secret.txt"})),
            Block::tool_use(
                "write_file",
                json!({"path": abs_outside.to_str().unwrap(), "content": "x"}),
            ),
            Block::tool_use(
                "edit_file",
                json!({"path": "../secret.txt", "old": "top", "new": "no"}),
            ),
            Block::tool_use("list_dir", json!({"path": "link"})),
        ])
        .into(),
        Turn::text("tried").into(),
    ])
    .await
    .unwrap();
    let outcome = LoopRunner::new(
        spec(&work, argv(&["true"])).into_config().unwrap(),
        llm(&server, Provider::Anthropic),
        outer.path().join("p.jsonl"),
    )
    .unwrap()
    .run()
    .await
    .unwrap();
    assert_eq!(outcome.status, LoopStatus::Succeeded { iteration: 1 });
    let results = tool_results(&server.requests()[1]);
    assert_eq!(results.len(), 7);
    for r in &results {
        assert_eq!(r["is_error"], true, "{r}");
        let content = r["content"].as_str().unwrap();
        assert!(content.contains("refused"), "{content}");
        assert!(!content.contains("root:") && !content.contains("top secret"));
    }
    let mut outside: Vec<_> = fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    outside.sort();
    assert_eq!(outside, ["p.jsonl", "secret.txt", "work"]);
    assert_eq!(
        fs::read_to_string(outer.path().join("secret.txt")).unwrap(),
        "top secret"
    );
}

#[tokio::test]
async fn malformed_tool_input_and_unknown_tool_answer_with_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start([
        Turn::blocks(vec![
            Block::raw_tool_use("write_file", r#"{"path": "a.txt", "content": "#),
            Block::tool_use("launch_rockets", json!({"count": 3})),
            Block::tool_use("write_file", json!({"path": "a.txt"})),
        ])
        .into(),
        Turn::tool("write_file", json!({"path": "a.txt", "content": "ok"})).into(),
        Turn::text("done").into(),
    ])
    .await
    .unwrap();
    let outcome = LoopRunner::new(
        spec(dir.path(), argv(&["test", "-f", "a.txt"]))
            .into_config()
            .unwrap(),
        llm(&server, Provider::Anthropic),
        dir.path().join(".p.jsonl"),
    )
    .unwrap()
    .run()
    .await
    .unwrap();
    assert_eq!(outcome.status, LoopStatus::Succeeded { iteration: 1 });
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let results = tool_results(&requests[1]);
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["is_error"] == true));
    assert!(
        results[0]["content"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert!(
        results[1]["content"]
            .as_str()
            .unwrap()
            .contains("unknown tool 'launch_rockets'")
    );
    assert!(
        results[2]["content"]
            .as_str()
            .unwrap()
            .contains("missing field `content`")
    );
    // The malformed call is still sent back as a well-formed tool_use block.
    assert!(requests[1].body["messages"][1]["content"][0]["input"].is_object());
    assert_eq!(fs::read_to_string(dir.path().join("a.txt")).unwrap(), "ok");
}

#[tokio::test]
async fn cancellation_stops_a_running_validation_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start([Turn::text("done").into()]).await.unwrap();
    let cancel = CancellationToken::new();
    let progress_path = dir.path().join(".p.jsonl");
    let runner = LoopRunner::new(
        spec(dir.path(), argv(&["sleep", "30"]))
            .into_config()
            .unwrap(),
        llm(&server, Provider::Anthropic),
        &progress_path,
    )
    .unwrap()
    .with_cancel(cancel.clone());
    let task = tokio::spawn(runner.run());
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("cancel took effect")
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, LoopStatus::Cancelled);
    assert!(ProgressLog::read(&progress_path).unwrap().is_empty());
}

#[tokio::test]
async fn openai_loop_sends_tool_messages() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start([
        Turn::tool("write_file", json!({"path": "hello.txt", "content": "hi"})).into(),
        Turn::text("done").into(),
    ])
    .await
    .unwrap();
    let mut s = spec(dir.path(), argv(&["grep", "-q", "hi", "hello.txt"]));
    s.provider = "openai".into();
    s.model = "gpt-4o".into();
    let outcome = LoopRunner::new(
        s.into_config().unwrap(),
        llm(&server, Provider::OpenAi),
        dir.path().join(".p.jsonl"),
    )
    .unwrap()
    .run()
    .await
    .unwrap();
    assert_eq!(outcome.status, LoopStatus::Succeeded { iteration: 1 });
    let requests = server.requests();
    assert_eq!(requests[0].path, "/v1/chat/completions");
    let messages = requests[1].body["messages"].as_array().unwrap();
    let assistant = &messages[messages.len() - 2];
    let tool = &messages[messages.len() - 1];
    assert_eq!(assistant["role"], "assistant");
    let call_id = assistant["tool_calls"][0]["id"].clone();
    assert_eq!(assistant["tool_calls"][0]["function"]["name"], "write_file");
    assert_eq!(tool["role"], "tool");
    assert_eq!(tool["tool_call_id"], call_id);
}

#[tokio::test]
async fn provider_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeLlm::start(Vec::<Reply>::new()).await.unwrap();
    let config = spec(dir.path(), argv(&["true"])).into_config().unwrap();
    let err = LoopRunner::new(config, llm(&server, Provider::OpenAi), dir.path().join("p"))
        .err()
        .expect("mismatch refused");
    assert!(err.to_string().contains("provider"));
}
