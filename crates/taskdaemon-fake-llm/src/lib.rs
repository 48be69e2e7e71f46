//! A scripted fake LLM server for tests.
//!
//! [`FakeLlm`] listens on loopback and speaks the real wire formats of the
//! Anthropic Messages API (`POST /v1/messages`, SSE or plain JSON) and of
//! OpenAI chat completions (`POST /v1/chat/completions`, `data:` chunks ending
//! in `[DONE]`). Each request consumes the next [`Reply`] from a queue, so a
//! test scripts exactly what "the model" says and which faults happen, and
//! then asserts on the [`RecordedRequest`]s the client sent.

mod script;
mod server;
mod wire;

pub use script::{Block, Reply, Turn, Usage};
pub use server::{FakeLlm, FakeLlmOptions, RecordedRequest};
