//! LLM clients, sandboxed tools and the Ralph loop engine.
//!
//! - [`LlmClient`] is one attempt against a provider ([`AnthropicClient`],
//!   [`OpenAiClient`]); [`Llm`] wraps a client with the [`RetryPolicy`], a
//!   shared [`RateLimiter`] and a [`CircuitBreaker`].
//! - [`Toolbox`] offers file and command tools confined to a loop's workdir.
//! - [`LoopRunner`] runs a Ralph loop: fresh context per iteration, tools
//!   until the model ends its turn, then the validation command; progress is
//!   an append-only JSONL [`ProgressLog`] a restarted daemon resumes from.

mod anthropic;
mod assemble;
mod breaker;
mod client;
mod command;
mod config;
mod confine;
mod cost;
mod engine;
mod error;
mod hooks;
mod openai;
mod progress;
mod prompt;
mod ratelimit;
mod resilient;
mod retry;
mod secret;
mod spec;
mod sse;
mod tools;
mod types;

pub use anthropic::{ANTHROPIC_VERSION, AnthropicClient};
pub use assemble::Assembler;
pub use breaker::{BreakerState, CircuitBreaker};
pub use client::{EventStream, LlmClient, build_client, collect};
pub use command::{CommandOutcome, CommandSpec, run_command, truncate_output};
pub use config::{Provider, ProviderConfig, UnknownProvider};
pub use confine::Sandbox;
pub use cost::{Accounting, Price, PriceTable};
pub use engine::{LoopError, LoopOutcome, LoopRunner, LoopStatus};
pub use error::LlmError;
pub use hooks::{LoopHooks, NoHooks};
pub use openai::OpenAiClient;
pub use progress::{IterationRecord, ProgressLog};
pub use prompt::{DEFAULT_TEMPLATE, PromptTemplate, SYSTEM_PROMPT};
pub use ratelimit::RateLimiter;
pub use resilient::Llm;
pub use retry::{RetryPolicy, parse_retry_after};
pub use secret::ApiKey;
pub use spec::{LoopConfig, LoopSpec, SpecError};
pub use sse::{SseEvent, SseParser};
pub use tools::{ToolOutput, Toolbox, ToolboxConfig};
pub use types::{
    ContentBlock, LlmRequest, LlmResponse, Message, Role, StopReason, StreamEvent, ToolSpec, Usage,
};
