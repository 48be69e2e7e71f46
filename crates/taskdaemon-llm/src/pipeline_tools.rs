//! The pipeline's tool contract: the structural tools a model calls to hand
//! over a plan, specs, phases and coordinator messages.
//!
//! This module owns what the model sees (tool names, descriptions, JSON
//! schemas), which loop kind is offered which tools ([`PipelineLoop`]), and
//! the parsing of a call into a typed [`PipelineCall`], refusing a malformed
//! call with an error naming the tool and field so the model can fix it.
//! What a call *does* belongs to a [`PipelineHandler`] (the daemon's is
//! store-backed; [`PipelineRecorder`] keeps calls in memory for tests);
//! [`PipelineTools`] joins the two into the engine's [`StructuralTools`].

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::structural::{StructuralCall, StructuralOutput, StructuralTools};
use crate::suggest::did_you_mean;
use crate::tools::TOOL_NAMES;
use crate::types::ToolSpec;

/// Every pipeline tool, by the name the model calls it with.
pub const PIPELINE_TOOL_NAMES: [&str; 7] = [
    "submit_plan",
    "create_spec",
    "create_phase",
    "finish",
    "send_message",
    "ask",
    "answer",
];

/// The toolbox tools of the structural loops: they read the repository but
/// change nothing in it.
pub const READ_ONLY_TOOLS: [&str; 3] = ["read_file", "list_dir", "search_files"];

/// Longest spec name (the domain's rule).
pub const SPEC_NAME_MAX: usize = taskdaemon_core::pipeline::MAX_NAME_LEN;

/// Message targets that are not spec names, so no spec may take them.
pub const RESERVED_SPEC_NAMES: [&str; 2] = [
    taskdaemon_core::pipeline::HUMAN,
    taskdaemon_core::pipeline::BROADCAST,
];

/// The kinds of loop a plan runs, and what each is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PipelineLoop {
    /// Reads the repository, then calls `submit_plan` once.
    Plan,
    /// Calls `create_spec` once per spec, then `finish`.
    Spec,
    /// One per spec: calls `create_phase` once per phase, in order, then `finish`.
    Phase,
    /// One per phase: the usual Ralph loop in the spec's worktree, plus the
    /// coordinator's `send_message`, `ask` and `answer`.
    Ralph,
}

impl PipelineLoop {
    /// All kinds, in cascade order.
    pub const ALL: [PipelineLoop; 4] = [
        PipelineLoop::Plan,
        PipelineLoop::Spec,
        PipelineLoop::Phase,
        PipelineLoop::Ralph,
    ];

    /// The built-in loop type it runs as. The structural types are named
    /// `pipeline-*` because `plan`, `spec` and `phase` already name the
    /// file-writing types that `loop run --type` users rely on.
    pub fn loop_type(self) -> &'static str {
        match self {
            PipelineLoop::Plan => "pipeline-plan",
            PipelineLoop::Spec => "pipeline-spec",
            PipelineLoop::Phase => "pipeline-phase",
            PipelineLoop::Ralph => "ralph",
        }
    }

    /// The kind whose loop type is `name`, if any (e.g. when a stored loop
    /// is resumed and its handler must be rebuilt).
    pub fn from_loop_type(name: &str) -> Option<PipelineLoop> {
        PipelineLoop::ALL
            .into_iter()
            .find(|k| k.loop_type() == name)
    }

    /// The pipeline tools offered.
    pub fn pipeline_tools(self) -> &'static [&'static str] {
        match self {
            PipelineLoop::Plan => &["submit_plan"],
            PipelineLoop::Spec => &["create_spec", "finish"],
            PipelineLoop::Phase => &["create_phase", "finish"],
            PipelineLoop::Ralph => &["send_message", "ask", "answer"],
        }
    }

    /// The toolbox tools offered.
    pub fn toolbox_tools(self) -> &'static [&'static str] {
        match self {
            PipelineLoop::Ralph => &TOOL_NAMES,
            _ => &READ_ONLY_TOOLS,
        }
    }

    /// Toolbox and pipeline tools together: the loop's allowed tools.
    pub fn allowed_tools(self) -> Vec<String> {
        self.toolbox_tools()
            .iter()
            .chain(self.pipeline_tools())
            .map(|s| s.to_string())
            .collect()
    }

    /// The pipeline tools' definitions, for the request.
    pub fn specs(self) -> Vec<ToolSpec> {
        self.pipeline_tools()
            .iter()
            .filter_map(|name| tool_spec(name))
            .collect()
    }

    /// Whether the loop ends by `finish` (or `submit_plan`) rather than a
    /// validation command.
    pub fn ends_by_tool(self) -> bool {
        !matches!(self, PipelineLoop::Ralph)
    }
}

/// The definition of pipeline tool `name`, with its JSON schema.
pub fn tool_spec(name: &str) -> Option<ToolSpec> {
    let string = |description: &str| json!({"type": "string", "description": description});
    let (description, properties, required): (&str, Value, &[&str]) = match name {
        "submit_plan" => (
            "Hand over the plan. Call it once, after reading what you need; the plan then waits for approval and your loop ends.",
            json!({
                "title": string("Short title of the plan."),
                "summary": string("One paragraph: what the plan achieves and how."),
                "body": string("The full plan in Markdown: approach, risks, the specs it will need."),
            }),
            &["title", "summary", "body"],
        ),
        "create_spec" => (
            "Create one spec of the plan (a unit of work with its own git worktree). Call it once per spec, dependencies first, then call finish.",
            json!({
                "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$", "maxLength": SPEC_NAME_MAX,
                         "description": "Unique name within the plan: lowercase letters, digits and '-'; not 'human' or 'plan'."},
                "title": string("Short title."),
                "body": string("What the spec delivers and how to tell it is done, in Markdown."),
                "depends_on": {"type": "array", "items": {"type": "string"},
                               "description": "Names of specs (created earlier) that must be merged before this one starts."},
                "priority": {"type": "integer", "description": "Higher runs first among ready specs; default 0."},
            }),
            &["name", "title", "body"],
        ),
        "create_phase" => (
            "Create the next phase of this spec. Phases run in the order you create them; call finish after the last.",
            json!({
                "name": string("Short label of the phase."),
                "title": string("One-line description."),
                "body": string("What to implement in this phase, in Markdown."),
                "validation": string("Shell command run in the spec's worktree; exit code 0 means the phase is done (e.g. `cargo test -p foo`)."),
            }),
            &["name", "title", "body", "validation"],
        ),
        "finish" => (
            "Declare that you have created everything; this loop ends.",
            json!({}),
            &[],
        ),
        "send_message" => (
            "Send a message: kind `alert` to the human, `share` a finding with other loops of the plan, `query` without waiting for an answer, or `stop` a spec's loop or the whole plan.",
            json!({
                "to": string("`human`, `plan` (every loop of this plan) or a spec name."),
                "kind": {"type": "string", "enum": ["alert", "share", "query", "stop"]},
                "body": string("The message."),
            }),
            &["to", "kind", "body"],
        ),
        "ask" => (
            "Ask the human or another spec's loop a question. The answer comes back later, as a tool result or in a later iteration's context.",
            json!({
                "to": string("`human` or a spec name."),
                "question": string("The question."),
            }),
            &["to", "question"],
        ),
        "answer" => (
            "Answer a question another spec's loop asked yours (a `query` in your messages). The answer reaches that loop in its next iteration.",
            json!({
                "message": string("The question's message id, `MSG-N`, as your messages show it."),
                "answer": string("The answer."),
            }),
            &["message", "answer"],
        ),
        _ => return None,
    };
    Some(ToolSpec {
        name: name.to_string(),
        description: description.to_string(),
        input_schema: json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        }),
    })
}

/// The fields of pipeline tool `name`, in the order the model is told them.
/// (Not read from the schema: JSON maps may or may not keep insertion order,
/// depending on which crates share the build.)
fn tool_fields(name: &str) -> &'static [&'static str] {
    match name {
        "submit_plan" => &["title", "summary", "body"],
        "create_spec" => &["name", "title", "body", "depends_on", "priority"],
        "create_phase" => &["name", "title", "body", "validation"],
        "send_message" => &["to", "kind", "body"],
        "ask" => &["to", "question"],
        "answer" => &["message", "answer"],
        _ => &[],
    }
}

/// `submit_plan` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitPlan {
    /// Short title.
    pub title: String,
    /// One paragraph.
    pub summary: String,
    /// The plan in Markdown.
    pub body: String,
}

/// `create_spec` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSpec {
    /// Unique within the plan, checked by [`check_spec_name`].
    pub name: String,
    /// Short title.
    pub title: String,
    /// What it delivers, in Markdown.
    pub body: String,
    /// Specs that must be merged first (distinct, valid names, not itself).
    pub depends_on: Vec<String>,
    /// Higher runs first; default 0.
    pub priority: i64,
}

/// `create_phase` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePhase {
    /// Label.
    pub name: String,
    /// One-line description.
    pub title: String,
    /// What to implement, in Markdown.
    pub body: String,
    /// Shell command run in the worktree; exit 0 = done.
    pub validation: String,
}

/// What a message is for: the domain's kinds, as the model writes them.
pub use taskdaemon_core::pipeline::MessageKind;

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MessageTarget {
    /// The human (dashboard, rehydrate, `plan answer`).
    Human,
    /// Every loop of the plan.
    Plan,
    /// The loops of one spec of the plan.
    Spec(String),
}

impl fmt::Display for MessageTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageTarget::Human => f.write_str("human"),
            MessageTarget::Plan => f.write_str("plan"),
            MessageTarget::Spec(name) => f.write_str(name),
        }
    }
}

impl FromStr for MessageTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "human" => Ok(MessageTarget::Human),
            "plan" => Ok(MessageTarget::Plan),
            name => check_spec_name(name)
                .map(|()| MessageTarget::Spec(name.to_string()))
                .map_err(|e| format!("not `human`, `plan` or a spec name: {e}")),
        }
    }
}

impl TryFrom<String> for MessageTarget {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<MessageTarget> for String {
    fn from(t: MessageTarget) -> String {
        t.to_string()
    }
}

/// `send_message` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessage {
    /// Recipient.
    pub to: MessageTarget,
    /// Kind.
    pub kind: MessageKind,
    /// Text.
    pub body: String,
}

/// `ask` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    /// The human or a spec (never the whole plan: one party answers).
    pub to: MessageTarget,
    /// The question.
    pub question: String,
}

/// `answer` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerQuery {
    /// The query, `MSG-N`.
    pub message: String,
    /// The answer.
    pub answer: String,
}

/// A well-formed pipeline tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tool", content = "input", rename_all = "snake_case")]
pub enum PipelineCall {
    /// `submit_plan`.
    SubmitPlan(SubmitPlan),
    /// `create_spec`.
    CreateSpec(CreateSpec),
    /// `create_phase`.
    CreatePhase(CreatePhase),
    /// `finish`.
    Finish,
    /// `send_message`.
    SendMessage(SendMessage),
    /// `ask`.
    Ask(Ask),
    /// `answer`.
    Answer(AnswerQuery),
}

/// A malformed pipeline call; the text goes back to the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{tool}: {message}")]
pub struct PipelineCallError {
    /// The tool called.
    pub tool: String,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl PipelineCall {
    /// The tool's name.
    pub fn tool_name(&self) -> &'static str {
        match self {
            PipelineCall::SubmitPlan(_) => "submit_plan",
            PipelineCall::CreateSpec(_) => "create_spec",
            PipelineCall::CreatePhase(_) => "create_phase",
            PipelineCall::Finish => "finish",
            PipelineCall::SendMessage(_) => "send_message",
            PipelineCall::Ask(_) => "ask",
            PipelineCall::Answer(_) => "answer",
        }
    }

    /// Checks and types a call of tool `name` with the model's `input`.
    pub fn parse(name: &str, input: &Value) -> Result<PipelineCall, PipelineCallError> {
        let Some(spec) = tool_spec(name) else {
            let mut message = format!("unknown pipeline tool `{name}`");
            if let Some(close) = did_you_mean(name, PIPELINE_TOOL_NAMES) {
                message.push_str(&format!("; did you mean `{close}`?"));
            }
            return Err(PipelineCallError {
                tool: name.to_string(),
                field: None,
                message,
            });
        };
        let known = tool_fields(&spec.name);
        let f = Fields::new(name, input, known)?;
        Ok(match name {
            "submit_plan" => PipelineCall::SubmitPlan(SubmitPlan {
                title: f.text("title")?,
                summary: f.text("summary")?,
                body: f.text("body")?,
            }),
            "create_spec" => {
                let spec_name = f.text("name")?;
                check_spec_name(&spec_name).map_err(|e| f.error("name", e))?;
                let depends_on = f.depends_on(&spec_name)?;
                PipelineCall::CreateSpec(CreateSpec {
                    name: spec_name,
                    title: f.text("title")?,
                    body: f.text("body")?,
                    depends_on,
                    priority: f.priority()?,
                })
            }
            "create_phase" => {
                let phase_name = f.text("name")?;
                taskdaemon_core::pipeline::validate_phase_name(&phase_name)
                    .map_err(|e| f.error("name", e.to_string()))?;
                PipelineCall::CreatePhase(CreatePhase {
                    name: phase_name,
                    title: f.text("title")?,
                    body: f.text("body")?,
                    validation: f.text("validation")?,
                })
            }
            "finish" => PipelineCall::Finish,
            "send_message" => {
                let to = f.target()?;
                let kind: MessageKind = f.text("kind")?.parse().map_err(|e| f.error("kind", e))?;
                match (kind, &to) {
                    (MessageKind::Alert, MessageTarget::Human) => {}
                    (MessageKind::Alert, _) => {
                        return Err(f.error("to", "an alert goes to `human`".to_string()));
                    }
                    (MessageKind::Share | MessageKind::Stop, MessageTarget::Human) => {
                        return Err(f.error(
                            "to",
                            format!(
                                "a {} goes to `plan` or a spec name, not `human` (use kind `alert` to tell the human)",
                                kind.as_str()
                            ),
                        ));
                    }
                    _ => {}
                }
                PipelineCall::SendMessage(SendMessage {
                    to,
                    kind,
                    body: f.text("body")?,
                })
            }
            "ask" => {
                let to = f.target()?;
                if to == MessageTarget::Plan {
                    return Err(f.error(
                        "to",
                        "a question goes to `human` or one spec, not the whole `plan`".to_string(),
                    ));
                }
                PipelineCall::Ask(Ask {
                    to,
                    question: f.text("question")?,
                })
            }
            "answer" => {
                let message = f.text("message")?;
                let number = taskdaemon_core::pipeline::parse_message_id(message.trim())
                    .ok_or_else(|| {
                        f.error(
                            "message",
                            format!("'{message}' is not a message id: expected MSG-N"),
                        )
                    })?;
                PipelineCall::Answer(AnswerQuery {
                    message: taskdaemon_core::pipeline::message_id(number),
                    answer: f.text("answer")?,
                })
            }
            other => {
                return Err(PipelineCallError {
                    tool: other.to_string(),
                    field: None,
                    message: format!("unknown pipeline tool `{other}`"),
                });
            }
        })
    }
}

/// Checks a spec name by the domain's rule
/// ([`taskdaemon_core::pipeline::validate_spec_name`]): `[a-z0-9][a-z0-9-]*`,
/// at most [`SPEC_NAME_MAX`] bytes, and not one of [`RESERVED_SPEC_NAMES`].
pub fn check_spec_name(name: &str) -> Result<(), String> {
    taskdaemon_core::pipeline::validate_spec_name(name).map_err(|e| e.to_string())
}

/// Field access on one call's input, with errors naming tool and field.
struct Fields<'a> {
    tool: &'a str,
    map: Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn new(tool: &'a str, input: &Value, known: &[&str]) -> Result<Self, PipelineCallError> {
        let map = match input {
            Value::Object(map) => map.clone(),
            // Some models send no input at all for a tool without fields.
            Value::Null => Map::new(),
            _ => {
                return Err(PipelineCallError {
                    tool: tool.to_string(),
                    field: None,
                    message: "the input must be a JSON object".into(),
                });
            }
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                let mut message = format!("unknown field `{key}`");
                if let Some(close) = did_you_mean(key, known.iter().copied()) {
                    message.push_str(&format!("; did you mean `{close}`?"));
                }
                if known.is_empty() {
                    message.push_str("; this tool takes no fields");
                } else {
                    message.push_str(&format!("; fields: {}", known.join(", ")));
                }
                return Err(PipelineCallError {
                    tool: tool.to_string(),
                    field: Some(key.clone()),
                    message,
                });
            }
        }
        Ok(Fields { tool, map })
    }

    fn error(&self, field: &str, message: String) -> PipelineCallError {
        PipelineCallError {
            tool: self.tool.to_string(),
            field: Some(field.to_string()),
            message: format!("`{field}`: {message}"),
        }
    }

    /// A required, non-blank string.
    fn text(&self, field: &str) -> Result<String, PipelineCallError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Err(self.error(field, "is required".into())),
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(self.error(field, "must not be empty".into()))
            }
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => {
                Err(self.error(field, format!("must be a string, not {}", json_type(other))))
            }
        }
    }

    fn target(&self) -> Result<MessageTarget, PipelineCallError> {
        self.text("to")?.parse().map_err(|e| self.error("to", e))
    }

    fn depends_on(&self, own_name: &str) -> Result<Vec<String>, PipelineCallError> {
        let field = "depends_on";
        let items = match self.map.get(field) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(self.error(field, "must be a list of spec names".into()));
            }
        };
        let mut names: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            let Value::String(name) = item else {
                return Err(self.error(
                    field,
                    format!("must be a list of spec names; found {}", json_type(item)),
                ));
            };
            check_spec_name(name).map_err(|e| self.error(field, e))?;
            if name == own_name {
                return Err(self.error(field, format!("spec `{name}` cannot depend on itself")));
            }
            if names.contains(name) {
                return Err(self.error(field, format!("`{name}` is listed twice")));
            }
            names.push(name.clone());
        }
        Ok(names)
    }

    fn priority(&self) -> Result<i64, PipelineCallError> {
        match self.map.get("priority") {
            None | Some(Value::Null) => Ok(0),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
            Some(other) => Err(self.error(
                "priority",
                format!("must be an integer (higher runs first), not {other}"),
            )),
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Where a pipeline call came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// The loop kind that made it.
    pub kind: PipelineLoop,
    /// The loop iteration.
    pub iteration: u32,
    /// The provider's call id.
    pub call_id: String,
}

/// Carries out well-formed pipeline calls for one loop. The daemon's
/// handler writes to the store; [`PipelineRecorder`] keeps calls in memory.
#[async_trait]
pub trait PipelineHandler: Send + Sync {
    /// Carries out `call`. `Ok` text goes back to the model as the result;
    /// `Err` text goes back as an error result the model can act on (unknown
    /// spec in `depends_on`, a cycle, a duplicate name, ...). For
    /// [`PipelineCall::Finish`] (and `submit_plan`, which ends a plan loop),
    /// `Ok` ends the loop, so refuse it with `Err` when the loop's work is
    /// not acceptable yet (e.g. no spec created).
    async fn handle(&self, ctx: &CallContext, call: PipelineCall) -> Result<String, String>;

    /// What to add to the prompt of a `kind` loop's iteration `iteration`
    /// (see [`StructuralTools::context`]).
    async fn context(&self, _kind: PipelineLoop, _iteration: u32) -> Option<String> {
        None
    }
}

/// The engine's [`StructuralTools`] for one pipeline loop: offers the kind's
/// tools, parses each call, hands well-formed ones to the handler.
pub struct PipelineTools {
    kind: PipelineLoop,
    handler: Arc<dyn PipelineHandler>,
}

impl PipelineTools {
    /// Tools of loop kind `kind`, handled by `handler`.
    pub fn new(kind: PipelineLoop, handler: Arc<dyn PipelineHandler>) -> Self {
        PipelineTools { kind, handler }
    }
}

#[async_trait]
impl StructuralTools for PipelineTools {
    fn specs(&self) -> Vec<ToolSpec> {
        self.kind.specs()
    }

    fn ends_by_tool(&self) -> bool {
        self.kind.ends_by_tool()
    }

    async fn context(&self, iteration: u32) -> Option<String> {
        self.handler.context(self.kind, iteration).await
    }

    async fn call(&self, call: StructuralCall<'_>) -> StructuralOutput {
        if !self.kind.pipeline_tools().contains(&call.name) {
            return StructuralOutput::err(format!(
                "tool `{}` is not offered to this loop; its tools: {}",
                call.name,
                self.kind.pipeline_tools().join(", ")
            ));
        }
        let parsed = match PipelineCall::parse(call.name, call.input) {
            Ok(parsed) => parsed,
            Err(e) => return StructuralOutput::err(e.to_string()),
        };
        let ends = matches!(parsed, PipelineCall::Finish | PipelineCall::SubmitPlan(_));
        let ctx = CallContext {
            kind: self.kind,
            iteration: call.iteration,
            call_id: call.id.to_string(),
        };
        match self.handler.handle(&ctx, parsed).await {
            Ok(text) if ends => StructuralOutput::finish(text),
            Ok(text) => StructuralOutput::ok(text),
            Err(text) => StructuralOutput::err(format!("{}: {text}", call.name)),
        }
    }
}

/// An in-memory [`PipelineHandler`] that records the calls it accepts, for
/// tests and dry runs. It applies the rules that need no store: spec names
/// are unique, and `depends_on` names specs created earlier.
#[derive(Debug, Default)]
pub struct PipelineRecorder {
    calls: Mutex<Vec<(CallContext, PipelineCall)>>,
}

impl PipelineRecorder {
    /// An empty recorder.
    pub fn new() -> Arc<Self> {
        Arc::new(PipelineRecorder::default())
    }

    /// The accepted calls, in order.
    pub fn calls(&self) -> Vec<PipelineCall> {
        self.lock().iter().map(|(_, c)| c.clone()).collect()
    }

    /// The accepted calls with where they came from.
    pub fn calls_with_context(&self) -> Vec<(CallContext, PipelineCall)> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(CallContext, PipelineCall)>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl PipelineHandler for PipelineRecorder {
    async fn handle(&self, ctx: &CallContext, call: PipelineCall) -> Result<String, String> {
        let mut calls = self.lock();
        let created: Vec<&str> = calls
            .iter()
            .filter_map(|(_, c)| match c {
                PipelineCall::CreateSpec(s) => Some(s.name.as_str()),
                _ => None,
            })
            .collect();
        let reply = match &call {
            PipelineCall::CreateSpec(spec) => {
                if created.contains(&spec.name.as_str()) {
                    return Err(format!("a spec named `{}` already exists", spec.name));
                }
                if let Some(missing) = spec
                    .depends_on
                    .iter()
                    .find(|d| !created.contains(&d.as_str()))
                {
                    return Err(format!(
                        "`depends_on`: no spec named `{missing}` yet; create it first (specs so far: {})",
                        if created.is_empty() {
                            "none".to_string()
                        } else {
                            created.join(", ")
                        }
                    ));
                }
                format!("created spec `{}`", spec.name)
            }
            PipelineCall::CreatePhase(phase) => {
                let n = calls
                    .iter()
                    .filter(|(_, c)| matches!(c, PipelineCall::CreatePhase(_)))
                    .count();
                format!("created phase {} `{}`", n + 1, phase.name)
            }
            PipelineCall::SubmitPlan(plan) => format!("plan `{}` submitted", plan.title),
            PipelineCall::Finish => "finished".to_string(),
            PipelineCall::SendMessage(m) => format!("{} sent to {}", m.kind.as_str(), m.to),
            PipelineCall::Ask(a) => format!("question sent to {}; the answer comes later", a.to),
            PipelineCall::Answer(a) => format!("answer to {} sent", a.message),
        };
        calls.push((ctx.clone(), call));
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(name: &str, input: Value) -> String {
        PipelineCall::parse(name, &input).unwrap_err().to_string()
    }

    #[test]
    fn every_tool_has_a_closed_object_schema_listing_its_required_fields() {
        for name in PIPELINE_TOOL_NAMES {
            let spec = tool_spec(name).unwrap();
            let schema = &spec.input_schema;
            assert_eq!(schema["type"], "object");
            assert_eq!(schema["additionalProperties"], false);
            for required in schema["required"].as_array().unwrap() {
                assert!(
                    schema["properties"]
                        .get(required.as_str().unwrap())
                        .is_some(),
                    "{name}: {required}"
                );
            }
        }
        assert!(tool_spec("write_file").is_none());
        for name in PIPELINE_TOOL_NAMES {
            let schema = tool_spec(name).unwrap().input_schema;
            let mut props: Vec<&str> = schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut fields = tool_fields(name).to_vec();
            props.sort_unstable();
            fields.sort_unstable();
            assert_eq!(props, fields, "{name}");
        }
    }

    #[test]
    fn kinds_offer_their_tools() {
        assert_eq!(
            PipelineLoop::Spec.allowed_tools(),
            [
                "read_file",
                "list_dir",
                "search_files",
                "create_spec",
                "finish"
            ]
        );
        let names: Vec<String> = PipelineLoop::Ralph
            .specs()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["send_message", "ask", "answer"]);
        assert!(
            PipelineLoop::Ralph
                .allowed_tools()
                .contains(&"write_file".to_string())
        );
        assert!(!PipelineLoop::Ralph.ends_by_tool() && PipelineLoop::Phase.ends_by_tool());
        for kind in PipelineLoop::ALL {
            assert_eq!(PipelineLoop::from_loop_type(kind.loop_type()), Some(kind));
        }
        assert_eq!(PipelineLoop::from_loop_type("plan"), None);
    }

    #[test]
    fn a_good_create_spec_parses_with_defaults() {
        let call = PipelineCall::parse(
            "create_spec",
            &json!({"name": "db-schema", "title": "Schema", "body": "tables"}),
        )
        .unwrap();
        assert_eq!(
            call,
            PipelineCall::CreateSpec(CreateSpec {
                name: "db-schema".into(),
                title: "Schema".into(),
                body: "tables".into(),
                depends_on: vec![],
                priority: 0,
            })
        );
        let call = PipelineCall::parse(
            "create_spec",
            &json!({"name": "api", "title": "t", "body": "b", "depends_on": ["db-schema"], "priority": -2}),
        )
        .unwrap();
        let PipelineCall::CreateSpec(spec) = call else {
            panic!("{call:?}")
        };
        assert_eq!(spec.depends_on, ["db-schema"]);
        assert_eq!(spec.priority, -2);
    }

    #[test]
    fn malformed_create_spec_calls_name_the_field() {
        let base = json!({"name": "api", "title": "t", "body": "b"});
        let with = |k: &str, v: Value| {
            let mut input = base.clone();
            input[k] = v;
            input
        };
        assert_eq!(
            err("create_spec", with("depends_on", json!("db"))),
            "create_spec: `depends_on`: must be a list of spec names"
        );
        assert!(err("create_spec", with("depends_on", json!([1]))).contains("found a number"),);
        assert!(err("create_spec", with("depends_on", json!(["api"]))).contains("itself"));
        assert!(err("create_spec", with("depends_on", json!(["a", "a"]))).contains("twice"));
        let e = err("create_spec", with("dependson", json!(["db"])));
        assert!(
            e.starts_with("create_spec: unknown field `dependson`; did you mean `depends_on`?"),
            "{e}"
        );
        assert!(
            err("create_spec", with("priority", json!(1.5)))
                .contains("`priority`: must be an integer")
        );
        assert!(err("create_spec", with("priority", json!("high"))).contains("`priority`"));
        assert_eq!(
            err("create_spec", json!({"name": "api", "body": "b"})),
            "create_spec: `title`: is required"
        );
        assert!(
            err("create_spec", with("title", json!("  "))).contains("`title`: must not be empty")
        );
        assert!(
            err("create_spec", with("title", json!(3))).contains("must be a string, not a number")
        );
        assert!(err("create_spec", json!("api")).contains("must be a JSON object"));
    }

    #[test]
    fn spec_names_follow_the_rule() {
        assert!(check_spec_name("a").is_ok());
        assert!(check_spec_name("0-db-2").is_ok());
        assert!(check_spec_name(&"a".repeat(SPEC_NAME_MAX)).is_ok());
        assert!(
            check_spec_name(&"a".repeat(SPEC_NAME_MAX + 1))
                .unwrap_err()
                .contains("1 to 48")
        );
        for bad in ["", "-a", "A", "a_b", "a b", "é"] {
            assert!(check_spec_name(bad).is_err(), "{bad}");
        }
        assert!(check_spec_name("plan").unwrap_err().contains("reserved"));
        let e = err(
            "create_spec",
            json!({"name": "Api", "title": "t", "body": "b"}),
        );
        assert!(
            e.starts_with("create_spec: `name`: invalid spec name 'Api': use 1 to 48 lower-case"),
            "{e}"
        );
    }

    #[test]
    fn messages_parse_and_refuse_meaningless_targets() {
        let call = PipelineCall::parse(
            "send_message",
            &json!({"to": "plan", "kind": "share", "body": "the API uses /v2"}),
        )
        .unwrap();
        assert_eq!(
            call,
            PipelineCall::SendMessage(SendMessage {
                to: MessageTarget::Plan,
                kind: MessageKind::Share,
                body: "the API uses /v2".into()
            })
        );
        let call = PipelineCall::parse(
            "ask",
            &json!({"to": "db-schema", "question": "which table?"}),
        )
        .unwrap();
        assert_eq!(
            call,
            PipelineCall::Ask(Ask {
                to: MessageTarget::Spec("db-schema".into()),
                question: "which table?".into()
            })
        );
        assert!(
            err(
                "send_message",
                json!({"to": "human", "kind": "shout", "body": "x"})
            )
            .contains(
                "`kind`: unknown message kind 'shout' (expected alert, share, query or stop)"
            )
        );
        assert!(
            err(
                "send_message",
                json!({"to": "db", "kind": "alert", "body": "x"})
            )
            .contains("alert goes to `human`")
        );
        assert!(
            err(
                "send_message",
                json!({"to": "human", "kind": "stop", "body": "x"})
            )
            .contains("not `human`")
        );
        assert!(
            err(
                "send_message",
                json!({"to": "Bob", "kind": "query", "body": "x"})
            )
            .contains("`to`: not `human`, `plan` or a spec name")
        );
        assert!(
            err("ask", json!({"to": "plan", "question": "x"})).contains("not the whole `plan`")
        );
        assert_eq!(
            PipelineCall::parse("answer", &json!({"message": "msg-7", "answer": "users"})).unwrap(),
            PipelineCall::Answer(AnswerQuery {
                message: "MSG-7".into(),
                answer: "users".into()
            })
        );
        assert!(
            err("answer", json!({"message": "seven", "answer": "x"}))
                .contains("`message`: 'seven' is not a message id")
        );
        assert!(err("answer", json!({"message": "MSG-7"})).contains("`answer`"));
    }

    #[test]
    fn finish_takes_nothing_and_unknown_tools_get_a_suggestion() {
        assert_eq!(
            PipelineCall::parse("finish", &json!({})).unwrap(),
            PipelineCall::Finish
        );
        assert_eq!(
            PipelineCall::parse("finish", &Value::Null).unwrap(),
            PipelineCall::Finish
        );
        assert!(err("finish", json!({"done": true})).contains("takes no fields"));
        assert!(err("create_specs", json!({})).contains("did you mean `create_spec`?"));
    }

    #[test]
    fn message_targets_round_trip_as_strings() {
        let m = SendMessage {
            to: MessageTarget::Spec("api".into()),
            kind: MessageKind::Query,
            body: "b".into(),
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v, json!({"to": "api", "kind": "query", "body": "b"}));
        assert_eq!(serde_json::from_value::<SendMessage>(v).unwrap(), m);
        assert!(
            serde_json::from_value::<SendMessage>(
                json!({"to": "Bad Name", "kind": "query", "body": "b"})
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn the_recorder_refuses_duplicates_and_unknown_dependencies() {
        let recorder = PipelineRecorder::new();
        let tools = PipelineTools::new(PipelineLoop::Spec, recorder.clone());
        let call = |input: Value| {
            let tools = &tools;
            async move {
                tools
                    .call(StructuralCall {
                        iteration: 1,
                        id: "c",
                        name: "create_spec",
                        input: &input,
                    })
                    .await
            }
        };
        let out = call(json!({"name": "b", "title": "t", "body": "x", "depends_on": ["a"]})).await;
        assert!(
            out.is_error && out.content.contains("no spec named `a` yet"),
            "{out:?}"
        );
        let out = call(json!({"name": "a", "title": "t", "body": "x"})).await;
        assert_eq!(out, StructuralOutput::ok("created spec `a`"));
        let out = call(json!({"name": "a", "title": "t", "body": "y"})).await;
        assert!(
            out.is_error && out.content.contains("already exists"),
            "{out:?}"
        );
        let out = tools
            .call(StructuralCall {
                iteration: 1,
                id: "d",
                name: "submit_plan",
                input: &json!({}),
            })
            .await;
        assert!(
            out.is_error && out.content.contains("not offered"),
            "{out:?}"
        );
        let out = tools
            .call(StructuralCall {
                iteration: 1,
                id: "e",
                name: "finish",
                input: &json!({}),
            })
            .await;
        assert!(out.finish && !out.is_error);
        let names: Vec<&str> = recorder.calls().iter().map(|c| c.tool_name()).collect();
        assert_eq!(names, ["create_spec", "finish"]);
    }
}
