//! Chat against the fake LLM server on loopback (the real Anthropic wire
//! format): the conversation goes out whole, the answer and its usage come
//! back. One test in this binary, because it sets the provider's
//! environment, which the chat reads like `loop run` does.

mod common;

use common::TestWs;
use taskdaemon_fake_llm::{FakeLlm, Turn};
use taskdaemon_service::{ChatMessage, ChatModel, ChatRole, ServiceError};

#[test]
fn chat_sends_the_conversation_and_returns_the_answer() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime
        .block_on(FakeLlm::start([
            Turn::text("Split it into three phases.").into()
        ]))
        .unwrap();
    // SAFETY: the only test in this binary; no other thread reads the environment yet.
    unsafe {
        std::env::set_var("ANTHROPIC_API_KEY", "sk-test-chat");
        std::env::set_var("ANTHROPIC_BASE_URL", fake.base_url());
    }
    let ws = TestWs::new();
    let service = ws.service();
    let conversation = vec![
        ChatMessage {
            role: ChatRole::User,
            text: "I want a login page.".to_owned(),
        },
        ChatMessage {
            role: ChatRole::Assistant,
            text: "What stack?".to_owned(),
        },
        ChatMessage {
            role: ChatRole::User,
            text: "Rust and axum. How should I plan it?".to_owned(),
        },
    ];
    let reply = service
        .chat(&ChatModel::default(), &conversation)
        .expect("chat reply");
    assert_eq!(reply.text, "Split it into three phases.");
    assert_eq!(reply.model, "claude-sonnet-4-5");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let messages = requests[0].body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1]["role"], "assistant");
    assert!(
        messages[2].to_string().contains("Rust and axum"),
        "{messages:?}"
    );

    // A conversation must end with the user's turn; an unknown provider is refused.
    let refused = service.chat(&ChatModel::default(), &conversation[..2]);
    assert!(
        matches!(refused, Err(ServiceError::BadInput(_))),
        "{refused:?}"
    );
    let unknown = ChatModel {
        provider: "nobody".to_owned(),
        model: None,
    };
    assert!(matches!(
        service.chat(&unknown, &conversation),
        Err(ServiceError::BadInput(_))
    ));
    drop(fake);
}
