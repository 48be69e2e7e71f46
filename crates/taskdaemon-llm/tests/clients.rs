//! Clients against the fake server: stream assembly, usage, wire details, breaker.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use taskdaemon_fake_llm::{Block, FakeLlm, Reply, Turn, Usage as FakeUsage};
use taskdaemon_llm::*;
use tokio_util::sync::CancellationToken;

fn request(model: &str) -> LlmRequest {
    LlmRequest {
        model: model.into(),
        system: Some("be brief".into()),
        messages: vec![Message::user_text("hello")],
        tools: vec![ToolSpec {
            name: "write_file".into(),
            description: "write".into(),
            input_schema: json!({"type": "object"}),
        }],
        max_tokens: 256,
    }
}

fn scripted_turn() -> Turn {
    Turn::blocks(vec![
        Block::text("Let me write that — ✓ done."),
        Block::tool_use(
            "write_file",
            json!({"path": "dir/a.txt", "content": "line1\nline2 \"quoted\""}),
        ),
    ])
    .with_usage(FakeUsage {
        input_tokens: 120,
        output_tokens: 33,
        cache_creation_input_tokens: 7,
        cache_read_input_tokens: 900,
    })
}

#[tokio::test]
async fn openai_streamed_text_and_tool_call_are_assembled() {
    let server = FakeLlm::start([scripted_turn().into()]).await.unwrap();
    let llm = llm(&server, Provider::OpenAi);
    let mut deltas = 0;
    let response = llm
        .complete(&request("gpt-4o"), &CancellationToken::new(), &mut |e| {
            if matches!(e, StreamEvent::ToolInputDelta { .. }) {
                deltas += 1;
            }
        })
        .await
        .unwrap();
    assert!(
        deltas >= 2,
        "arguments should arrive split, got {deltas} deltas"
    );
    assert_eq!(response.text(), "Let me write that — ✓ done.");
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    let calls: Vec<_> = response.tool_uses().collect();
    assert_eq!(calls.len(), 1);
    let ContentBlock::ToolUse {
        id,
        name,
        input,
        input_error,
    } = calls[0]
    else {
        unreachable!()
    };
    assert!(id.starts_with("call_"));
    assert_eq!(name, "write_file");
    assert_eq!(input["content"], "line1\nline2 \"quoted\"");
    assert_eq!(input_error, &None);
    // prompt_tokens (120 + 7 + 900) minus cached (900) are uncached input.
    assert_eq!(response.usage.input_tokens, 127);
    assert_eq!(response.usage.cache_read_input_tokens, 900);
    assert_eq!(response.usage.output_tokens, 33);

    let sent = &server.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.header("x-api-key"), None);
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
    assert_eq!(sent.body["messages"][0]["role"], "system");
    assert_eq!(sent.body["tools"][0]["function"]["name"], "write_file");
}

#[tokio::test]
async fn anthropic_stream_assembles_blocks_and_all_usage_fields() {
    let server = FakeLlm::start([scripted_turn().into()]).await.unwrap();
    let llm = llm(&server, Provider::Anthropic);
    let mut pings = 0;
    let response = llm
        .complete(
            &request("claude-sonnet-4-5"),
            &CancellationToken::new(),
            &mut |e| {
                if matches!(e, StreamEvent::Ping) {
                    pings += 1;
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(pings, 1);
    assert_eq!(response.content.len(), 2);
    assert_eq!(response.text(), "Let me write that — ✓ done.");
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 120,
            output_tokens: 33,
            cache_creation_input_tokens: 7,
            cache_read_input_tokens: 900,
        }
    );
    assert_eq!(server.requests()[0].body["system"], "be brief");
}

#[tokio::test]
async fn non_retryable_errors_fail_at_once() {
    let server = FakeLlm::start([
        Reply::ServerError { status: Some(401) },
        Turn::text("never").into(),
    ])
    .await
    .unwrap();
    let err = llm(&server, Provider::Anthropic)
        .complete(&request("m"), &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Http { status: 401, .. }), "{err:?}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn circuit_breaker_opens_and_stops_calling() {
    let server = FakeLlm::start([
        Reply::ServerError { status: None },
        Reply::ServerError { status: None },
        Turn::text("ok").into(),
        Turn::text("ok").into(),
    ])
    .await
    .unwrap();
    let breaker = CircuitBreaker::new(2, Duration::from_millis(150));
    let llm = llm(&server, Provider::Anthropic)
        .with_retry(RetryPolicy::none())
        .with_circuit_breaker(breaker.clone());
    let cancel = CancellationToken::new();
    for _ in 0..2 {
        assert!(
            llm.complete(&request("m"), &cancel, &mut |_| {})
                .await
                .is_err()
        );
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let err = llm
        .complete(&request("m"), &cancel, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::CircuitOpen { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 2, "an open breaker must not call");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ok = llm
        .complete(&request("m"), &cancel, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(ok.text(), "ok");
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test]
async fn shared_rate_limiter_paces_requests() {
    let server = FakeLlm::start((0..3).map(|_| Reply::from(Turn::text("ok"))))
        .await
        .unwrap();
    // One token, refilled every 100ms: the third call waits for ~2 refills.
    let limiter = RateLimiter::new(1, 10.0);
    let a = llm(&server, Provider::Anthropic).with_rate_limiter(limiter.clone());
    let b = llm(&server, Provider::Anthropic).with_rate_limiter(limiter);
    let cancel = CancellationToken::new();
    let start = std::time::Instant::now();
    a.complete(&request("m"), &cancel, &mut |_| {})
        .await
        .unwrap();
    b.complete(&request("m"), &cancel, &mut |_| {})
        .await
        .unwrap();
    a.complete(&request("m"), &cancel, &mut |_| {})
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(180));
}

#[tokio::test]
async fn cancel_interrupts_a_retry_wait() {
    let server = FakeLlm::start([Reply::RateLimited {
        retry_after: "30".into(),
    }])
    .await
    .unwrap();
    let llm = llm(&server, Provider::Anthropic);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.cancel();
    });
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        llm.complete(&request("m"), &cancel, &mut |_| {}),
    )
    .await
    .expect("cancel ended the wait")
    .unwrap_err();
    assert!(matches!(err, LlmError::Cancelled));
}

#[tokio::test]
async fn a_stream_cut_mid_message_is_retried_as_broken() {
    for provider in [Provider::Anthropic, Provider::OpenAi] {
        let server = FakeLlm::start([
            Reply::CutAfter {
                events: 4,
                turn: scripted_turn(),
            },
            scripted_turn().into(),
        ])
        .await
        .unwrap();
        let mut reasons = Vec::new();
        let response = llm(&server, provider)
            .complete(&request("m"), &CancellationToken::new(), &mut |e| {
                if let StreamEvent::Retrying { reason, .. } = e {
                    reasons.push(reason.clone());
                }
            })
            .await
            .unwrap();
        assert_eq!(reasons.len(), 1, "{provider}: {reasons:?}");
        assert!(
            reasons[0].contains("stream broken"),
            "{provider}: {reasons:?}"
        );
        // Only the complete second attempt's content survives.
        assert_eq!(response.text(), "Let me write that — ✓ done.");
        assert_eq!(response.tool_uses().count(), 1);
    }
}
