//! LLM clients, sandboxed tools and the Ralph loop engine.
//!
//! - [`LlmClient`] is one attempt against a provider ([`AnthropicClient`],
//!   [`OpenAiClient`]); [`Llm`] wraps a client with the [`RetryPolicy`], a
//!   shared [`RateLimiter`] and a [`CircuitBreaker`].
//! - [`Toolbox`] offers file and command tools confined to a loop's workdir;
//!   [`StructuralTools`] are loop-specific tools whose calls the loop's owner
//!   handles, and [`PipelineTools`] is the plan pipeline's set of them
//!   (`submit_plan`, `create_spec`, `create_phase`, `finish`, `send_message`, `ask`).
//! - [`LoopRunner`] runs a Ralph loop: fresh context per iteration, tools
//!   until the model ends its turn, then the validation command; progress is
//!   an append-only JSONL [`ProgressLog`] a restarted daemon resumes from.
//!
//! How a daemon runs (and, after a crash, resumes) a loop:
//!
//! ```no_run
//! use std::time::Duration;
//! use taskdaemon_llm::*;
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo(spec: LoopSpec) -> Result<(), Box<dyn std::error::Error>> {
//! let config = spec.into_config()?; // bad input fails here, before any API call
//! // One Llm per provider, cloned into every loop: they share limiter and breaker.
//! let llm = Llm::from_env(config.provider, config.base_url.as_deref())?
//!     .with_rate_limiter(RateLimiter::per_minute(50, 5))
//!     .with_circuit_breaker(CircuitBreaker::new(5, Duration::from_secs(30)));
//! let cancel = CancellationToken::new();
//! let runner = LoopRunner::new(config, llm.clone(), ".taskdaemon/loops/L-1/progress.jsonl")?
//!     .with_cancel(cancel.clone()); // resumes at runner.next_iteration()
//! let outcome = tokio::spawn(runner.run()).await??;
//! match outcome.status {
//!     LoopStatus::Succeeded { iteration } => println!("passed at {iteration}"),
//!     LoopStatus::Failed { reason } => println!("failed: {reason}"),
//!     LoopStatus::Cancelled => println!("cancelled"),
//! }
//! # Ok(()) }
//! ```

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
mod landlock_sandbox;
mod openai;
mod pipeline_tools;
mod progress;
mod prompt;
mod ratelimit;
mod resilient;
mod retry;
mod secret;
mod spec;
mod sse;
mod structural;
mod suggest;
mod tools;
mod types;

pub use anthropic::{ANTHROPIC_VERSION, AnthropicClient};
pub use assemble::Assembler;
pub use breaker::{BreakerState, CircuitBreaker};
pub use client::{EventStream, LlmClient, StreamDecoder, build_client, collect};
pub use command::{
    CommandOutcome, CommandSpec, Isolation, run_command, run_command_isolated, run_command_with,
    truncate_output,
};
pub use config::{Provider, ProviderConfig, UnknownProvider};
pub use confine::Sandbox;
pub use cost::{Accounting, Price, PriceTable};
pub use engine::{LoopError, LoopOutcome, LoopRunner, LoopStatus};
pub use error::LlmError;
pub use hooks::{LoopHooks, NoHooks};
pub use landlock_sandbox::{
    LandlockSupport, PreparedSandbox, REQUIRED_ABI, SYSTEM_READ_PATHS, SandboxError, SandboxPolicy,
    landlock_support,
};
pub use openai::OpenAiClient;
pub use pipeline_tools::{
    AnswerQuery, Ask, CallContext, CreatePhase, CreateSpec, MessageKind, MessageTarget,
    PIPELINE_TOOL_NAMES, PipelineCall, PipelineCallError, PipelineHandler, PipelineLoop,
    PipelineRecorder, PipelineTools, READ_ONLY_TOOLS, RESERVED_SPEC_NAMES, SPEC_NAME_MAX,
    SendMessage, SubmitPlan, check_spec_name, tool_spec,
};
pub use progress::{IterationRecord, ProgressLog};
pub use prompt::{DEFAULT_TEMPLATE, ENGINE_VARIABLES, HELPERS, PromptTemplate, SYSTEM_PROMPT};
pub use ratelimit::RateLimiter;
pub use resilient::Llm;
pub use retry::{RetryPolicy, parse_retry_after};
pub use secret::ApiKey;
pub use spec::{LoopConfig, LoopSpec, SpecError};
pub use sse::{SseEvent, SseParser};
pub use structural::{StructuralCall, StructuralOutput, StructuralTools};
pub use suggest::did_you_mean;
pub use tools::{TOOL_NAMES, ToolOutput, Toolbox, ToolboxConfig};
pub use types::{
    ContentBlock, LlmRequest, LlmResponse, Message, Role, StopReason, StreamEvent, ToolSpec, Usage,
};
