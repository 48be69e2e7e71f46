//! A scripted fake LLM server for tests.
//!
//! [`FakeLlm`] listens on loopback and speaks the real wire formats of the
//! Anthropic Messages API (`POST /v1/messages`, SSE or plain JSON) and of
//! OpenAI chat completions (`POST /v1/chat/completions`, `data:` chunks ending
//! in `[DONE]`). Each request consumes the next [`Reply`] from a queue, so a
//! test scripts exactly what "the model" says and which faults happen, and
//! then asserts on the [`RecordedRequest`]s the client sent.
//!
//! Loops running at once are scripted by [`Route`]s instead: each route
//! serves the requests that offer a given tool (and, optionally, whose prompt
//! contains a given text), so a plan loop, its spec loops and their Ralph
//! loops each follow their own script whatever order their requests arrive in.

mod script;
mod server;
mod wire;

pub use script::{Block, Reply, Route, Script, Turn, Usage};
pub use server::{FakeLlm, FakeLlmOptions, RecordedRequest};
