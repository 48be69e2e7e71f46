//! Chat: one conversation turn with the model loops use (the provider's
//! client from `taskdaemon-llm`, configured from the environment the way
//! `loop run` is), for interfaces that let a person talk to it (the TUI's
//! Chat view).
//!
//! The call is blocking: it runs the async client on a small runtime of its
//! own, so an interface calls it from a thread that may wait.

use serde::Serialize;
use taskdaemon_llm::{LlmRequest, Message, Provider, Role};

use crate::loops::default_model;
use crate::{Result, Service, ServiceError};

/// Output tokens allowed for one chat answer.
const CHAT_MAX_TOKENS: u32 = 2048;
/// The system prompt of a chat: a planning partner that knows its setting.
const CHAT_SYSTEM: &str = "You are the planning assistant of taskdaemon, a supervisor for AI \
coding agents. Help the user think through the work they want done: goals, steps, risks and \
how to validate the result. Answer concisely.";

/// Who said a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    User,
    Assistant,
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub text: String,
}

/// Which model a chat talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatModel {
    /// `anthropic` or `openai`.
    pub provider: String,
    /// Default: the provider's default loop model.
    pub model: Option<String>,
}

impl Default for ChatModel {
    fn default() -> Self {
        Self {
            provider: "anthropic".to_owned(),
            model: None,
        }
    }
}

/// The model's answer to a chat turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatReply {
    pub text: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Service {
    /// Sends the conversation so far (ending with the user's message) to
    /// the model and returns its answer. The key and base URL come from the
    /// provider's `*_API_KEY` and `*_BASE_URL`, as for loops.
    pub fn chat(&self, model: &ChatModel, conversation: &[ChatMessage]) -> Result<ChatReply> {
        let provider: Provider = model
            .provider
            .parse()
            .map_err(|e: taskdaemon_llm::UnknownProvider| ServiceError::BadInput(e.to_string()))?;
        if conversation.last().is_none_or(|m| m.role != ChatRole::User) {
            return Err(ServiceError::BadInput(
                "a chat turn ends with the user's message".to_owned(),
            ));
        }
        let model_name = model
            .model
            .clone()
            .unwrap_or_else(|| default_model(provider).to_owned());
        let llm = taskdaemon_llm::Llm::from_env(provider, None)
            .map_err(|e| ServiceError::BadInput(e.to_string()))?;
        let request = LlmRequest {
            model: model_name.clone(),
            system: Some(CHAT_SYSTEM.to_owned()),
            messages: conversation.iter().map(to_message).collect(),
            tools: Vec::new(),
            max_tokens: CHAT_MAX_TOKENS,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ServiceError::Failed(format!("cannot start the chat runtime: {e}")))?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let response = runtime
            .block_on(llm.complete(&request, &cancel, &mut |_| {}))
            .map_err(|e| ServiceError::Failed(format!("the model did not answer: {e}")))?;
        Ok(ChatReply {
            text: response.text(),
            model: model_name,
            input_tokens: response.usage.input_tokens,
            output_tokens: response.usage.output_tokens,
        })
    }
}

fn to_message(message: &ChatMessage) -> Message {
    let mut out = Message::user_text(message.text.clone());
    if message.role == ChatRole::Assistant {
        out.role = Role::Assistant;
    }
    out
}
