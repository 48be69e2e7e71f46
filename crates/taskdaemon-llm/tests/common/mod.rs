//! Shared helpers for the integration tests: a fake server, clients pointed at it, loop specs.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use taskdaemon_fake_llm::{FakeLlm, RecordedRequest};
use taskdaemon_llm::*;

pub const KEY: &str = "sk-test-SECRET-7f3a9c0e1b2d";

pub fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    }
}

pub fn llm(server: &FakeLlm, provider: Provider) -> Llm {
    let config = ProviderConfig::resolve(provider, Some(&server.base_url()), |name| {
        (name == provider.key_var()).then(|| KEY.to_string())
    })
    .expect("config");
    Llm::new(build_client(config).expect("client")).with_retry(fast_retry(4))
}

pub fn argv(a: &[&str]) -> CommandSpec {
    CommandSpec::Argv(a.iter().map(|s| s.to_string()).collect())
}

pub fn spec(workdir: &Path, validate: CommandSpec) -> LoopSpec {
    let mut s = LoopSpec::new(
        "Create hello.txt containing the word hi.",
        validate,
        "anthropic",
        "claude-sonnet-4-5",
        workdir,
    );
    s.max_iterations = 3;
    s.validation_timeout_secs = 20;
    s
}

/// The tool_result blocks of a recorded Anthropic request's last message.
pub fn tool_results(request: &RecordedRequest) -> Vec<Value> {
    let messages = request.body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    last["content"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|b| b["type"] == "tool_result")
        .collect()
}

/// The text of the first user message (the rendered prompt).
pub fn prompt_of(request: &RecordedRequest) -> String {
    request.body["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Hooks that record what happened, as strings.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<String>>);

impl Recorder {
    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }
}

impl LoopHooks for Recorder {
    fn on_iteration_start(&self, iteration: u32) {
        self.push(format!("start {iteration}"));
    }
    fn on_llm_event(&self, _iteration: u32, event: &StreamEvent) {
        if let StreamEvent::Retrying { attempt, .. } = event {
            self.push(format!("retry {attempt}"));
        }
    }
    fn on_tool_call(&self, _iteration: u32, name: &str, _input: &Value) {
        self.push(format!("tool {name}"));
    }
    fn on_tool_result(&self, _iteration: u32, name: &str, output: &ToolOutput) {
        self.push(format!("result {name} error={}", output.is_error));
    }
    fn on_validation_start(&self, iteration: u32) {
        self.push(format!("validate {iteration}"));
    }
    fn on_iteration_end(&self, record: &IterationRecord) {
        self.push(format!(
            "end {} exit={:?}",
            record.iteration, record.validation_exit_code
        ));
    }
}

pub fn recorder() -> Arc<Recorder> {
    Arc::new(Recorder::default())
}
