//! The Ralph loop engine: fresh context each iteration, tools until the
//! model ends its turn, then validation; repeat until it passes or the
//! iteration budget is spent.
//!
//! A loop may also be offered structural tools ([`StructuralTools`]) whose
//! calls its owner handles; one of them may end the loop instead of the
//! validation command.
//!
//! State between iterations lives only in the progress log, so a loop that
//! was interrupted (crash, cancel) resumes at the iteration after the last
//! recorded one; a half-done iteration is simply run again.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::command::run_command;
use crate::cost::{Accounting, PriceTable};
use crate::error::LlmError;
use crate::hooks::{LoopHooks, NoHooks};
use crate::progress::{IterationRecord, ProgressLog};
use crate::prompt::SYSTEM_PROMPT;
use crate::resilient::Llm;
use crate::spec::LoopConfig;
use crate::structural::{StructuralCall, StructuralOutput, StructuralTools};
use crate::tools::{TOOL_NAMES, ToolOutput, Toolbox};
use crate::types::{ContentBlock, LlmRequest, Message, Role};

/// Characters of validation output kept per record (the tail).
const VALIDATION_KEEP: usize = 4000;
/// Characters of the model's summary kept per record.
const SUMMARY_KEEP: usize = 1500;
/// Recorded as the validation output of an iteration that a structural
/// loop ended without its finishing tool; the next prompt shows it.
const NOT_FINISHED_NOTE: &str = "The iteration ended without the loop being finished. \
This loop runs no validation command: it ends only when you call its finishing tool \
(`finish`) after handing over all your work with the other tools.";

/// How a loop ended.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopStatus {
    /// Validation passed (or a structural tool finished the loop) at this iteration.
    Succeeded {
        /// The passing iteration.
        iteration: u32,
    },
    /// The loop gave up.
    Failed {
        /// Why, for humans.
        reason: String,
    },
    /// Cancelled; the current iteration was not recorded and reruns on resume.
    Cancelled,
}

/// The result of [`LoopRunner::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct LoopOutcome {
    /// How it ended.
    pub status: LoopStatus,
    /// Iterations recorded in the progress log (including earlier runs).
    pub iterations: u32,
    /// Tokens and cost over all recorded iterations.
    pub totals: Accounting,
}

/// Errors that stop a loop without a verdict. The progress log is intact;
/// running the loop again resumes it.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// The model could not be reached (after retries).
    #[error("iteration {iteration}: model call failed: {source}")]
    Llm {
        /// The iteration.
        iteration: u32,
        /// The error.
        source: LlmError,
    },
    /// The progress log could not be read or written.
    #[error("progress log {path}: {source}")]
    Progress {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Setup failed (workdir, template, provider mismatch).
    #[error("{0}")]
    Setup(String),
}

/// Runs one loop. Build it with [`LoopRunner::new`], optionally add hooks,
/// prices and a cancellation token, then `run().await` (typically inside a
/// `tokio::spawn` holding a semaphore permit).
pub struct LoopRunner {
    config: LoopConfig,
    llm: Llm,
    progress: ProgressLog,
    toolbox: Toolbox,
    hooks: Arc<dyn LoopHooks>,
    prices: PriceTable,
    cancel: CancellationToken,
    structural: Option<Arc<dyn StructuralTools>>,
}

impl LoopRunner {
    /// Prepares a loop: opens (and reads) the progress log at `progress_path`.
    pub fn new(
        config: LoopConfig,
        llm: Llm,
        progress_path: impl Into<std::path::PathBuf>,
    ) -> Result<Self, LoopError> {
        if llm.client().provider() != config.provider {
            return Err(LoopError::Setup(format!(
                "loop wants provider {} but the client is for {}",
                config.provider,
                llm.client().provider()
            )));
        }
        let progress_path = progress_path.into();
        let progress = ProgressLog::open(&progress_path).map_err(|source| LoopError::Progress {
            path: progress_path.display().to_string(),
            source,
        })?;
        let toolbox = Toolbox::new(&config.workdir, config.tools.clone())
            .map_err(|e| LoopError::Setup(format!("workdir {}: {e}", config.workdir.display())))?;
        Ok(LoopRunner {
            config,
            llm,
            progress,
            toolbox,
            hooks: Arc::new(NoHooks),
            prices: PriceTable::default(),
            cancel: CancellationToken::new(),
            structural: None,
        })
    }

    /// Offers the loop-specific tools of `tools` next to the toolbox's; their
    /// calls go to `tools.call`. See [`StructuralTools`].
    pub fn with_structural_tools(mut self, tools: Arc<dyn StructuralTools>) -> Self {
        self.structural = Some(tools);
        self
    }

    /// Sets lifecycle hooks.
    pub fn with_hooks(mut self, hooks: Arc<dyn LoopHooks>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Sets the price table.
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// Sets the cancellation token (cancel it to stop the loop).
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// The iteration `run` starts with.
    pub fn next_iteration(&self) -> u32 {
        self.progress.next_iteration()
    }

    /// Runs iterations until validation passes, the budget is spent, or the
    /// loop is cancelled.
    pub async fn run(mut self) -> Result<LoopOutcome, LoopError> {
        if let Some(done) = self.progress.succeeded() {
            let iteration = done.iteration;
            return Ok(self.outcome(LoopStatus::Succeeded { iteration }));
        }
        if let Some(structural) = &self.structural {
            let clashes: Vec<String> = structural
                .specs()
                .into_iter()
                .map(|s| s.name)
                .filter(|n| TOOL_NAMES.contains(&n.as_str()))
                .collect();
            if !clashes.is_empty() {
                return Err(LoopError::Setup(format!(
                    "structural tools reuse toolbox tool names: {}",
                    clashes.join(", ")
                )));
            }
        }
        let ends_by_tool = self.structural.as_ref().is_some_and(|s| s.ends_by_tool());
        let first = self.progress.next_iteration();
        for iteration in first..=self.config.max_iterations {
            if self.cancel.is_cancelled() {
                return Ok(self.outcome(LoopStatus::Cancelled));
            }
            let Some(record) = self.iteration(iteration).await? else {
                return Ok(self.outcome(LoopStatus::Cancelled));
            };
            let passed = record.passed();
            self.append(record.clone()).await?;
            self.hooks.on_iteration_end(&record);
            if passed {
                return Ok(self.outcome(LoopStatus::Succeeded { iteration }));
            }
        }
        let reason = match self.progress.records().last() {
            Some(last) if ends_by_tool => format!(
                "not finished after {} iterations (max_iterations = {}): the model never called the finishing tool",
                last.iteration, self.config.max_iterations
            ),
            Some(last) => format!(
                "validation still failing after {} iterations (max_iterations = {}); last exit code {}: {}",
                last.iteration,
                self.config.max_iterations,
                last.validation_exit_code
                    .map_or("none".to_string(), |c| c.to_string()),
                tail(&last.validation_output, 300).trim()
            ),
            None => format!(
                "no iterations left (max_iterations = {})",
                self.config.max_iterations
            ),
        };
        Ok(self.outcome(LoopStatus::Failed { reason }))
    }

    /// Appends to the progress log on a blocking thread: the append fsyncs,
    /// and hundreds of loops may share one runtime thread.
    async fn append(&mut self, record: IterationRecord) -> Result<(), LoopError> {
        let path = self.progress.path().to_path_buf();
        let mut log = std::mem::replace(&mut self.progress, ProgressLog::unread(path.clone()));
        let (log, result) = tokio::task::spawn_blocking(move || {
            let result = log.append(record);
            (log, result)
        })
        .await
        .map_err(|e| LoopError::Progress {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        self.progress = log;
        result.map_err(|source| LoopError::Progress {
            path: path.display().to_string(),
            source,
        })
    }

    fn outcome(&self, status: LoopStatus) -> LoopOutcome {
        LoopOutcome {
            status,
            iterations: self.progress.records().len() as u32,
            totals: self.progress.totals(),
        }
    }

    /// One iteration; `None` when cancelled.
    async fn iteration(&self, iteration: u32) -> Result<Option<IterationRecord>, LoopError> {
        let cfg = &self.config;
        self.hooks.on_iteration_start(iteration);
        let started_at = Utc::now();
        let mut prompt = cfg
            .template
            .render(
                &cfg.spec_text,
                &self.progress_text(),
                iteration,
                cfg.max_iterations,
            )
            .map_err(|e| LoopError::Setup(format!("prompt template: {e}")))?;
        if let Some(structural) = &self.structural
            && let Some(context) = structural.context(iteration).await
        {
            prompt.push_str("\n\n");
            prompt.push_str(&context);
        }
        let mut messages = vec![Message::user_text(prompt)];
        let mut tools = self.toolbox.specs();
        let structural_specs = self
            .structural
            .as_ref()
            .map(|s| s.specs())
            .unwrap_or_default();
        let structural_names: BTreeSet<String> =
            structural_specs.iter().map(|s| s.name.clone()).collect();
        tools.extend(structural_specs);
        let mut finished = false;
        let mut acct = Accounting::default();
        let mut tool_names = Vec::new();
        let mut summary = String::new();
        let mut rounds_exhausted = false;

        for round in 1..=cfg.max_tool_rounds {
            let request = LlmRequest {
                model: cfg.model.clone(),
                system: Some(SYSTEM_PROMPT.into()),
                messages: messages.clone(),
                tools: tools.clone(),
                max_tokens: cfg.max_tokens,
            };
            let hooks = self.hooks.clone();
            let mut on_event = move |event: &_| hooks.on_llm_event(iteration, event);
            let response = match self
                .llm
                .complete(&request, &self.cancel, &mut on_event)
                .await
            {
                Ok(response) => response,
                Err(LlmError::Cancelled) => return Ok(None),
                Err(source) => return Err(LoopError::Llm { iteration, source }),
            };
            acct.record(&self.prices, &cfg.model, &response.usage);
            let text = response.text();
            if !text.trim().is_empty() {
                summary = text;
            }
            let calls: Vec<ContentBlock> = response.tool_uses().cloned().collect();
            messages.push(Message {
                role: Role::Assistant,
                content: response.content,
            });
            if calls.is_empty() {
                break;
            }
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                let ContentBlock::ToolUse {
                    id,
                    name,
                    input,
                    input_error,
                } = call
                else {
                    continue;
                };
                self.hooks.on_tool_call(iteration, &name, &input);
                let output = match &self.structural {
                    Some(structural) if structural_names.contains(&name) => {
                        let out = match input_error.as_deref() {
                            Some(error) => {
                                StructuralOutput::err(format!("invalid input for {name}: {error}"))
                            }
                            None => {
                                let call = StructuralCall {
                                    iteration,
                                    id: &id,
                                    name: &name,
                                    input: &input,
                                };
                                tokio::select! {
                                    out = structural.call(call) => out,
                                    () = self.cancel.cancelled() => return Ok(None),
                                }
                            }
                        };
                        finished = out.finish && !out.is_error;
                        out.to_tool_output()
                    }
                    _ => {
                        self.toolbox
                            .execute(&name, &input, input_error.as_deref(), &self.cancel)
                            .await
                    }
                };
                if self.cancel.is_cancelled() {
                    return Ok(None);
                }
                self.hooks.on_tool_result(iteration, &name, &output);
                tool_names.push(name);
                let ToolOutput { content, is_error } = output;
                results.push(ContentBlock::ToolResult {
                    tool_use_id: id,
                    content,
                    is_error,
                });
                // Calls after the finishing one are not run: the loop is over.
                if finished {
                    break;
                }
            }
            if finished {
                break;
            }
            messages.push(Message {
                role: Role::User,
                content: results,
            });
            if round == cfg.max_tool_rounds {
                rounds_exhausted = true;
            }
        }

        let record = |exit_code: Option<i32>, timed_out: bool, output: &str, finished: bool| {
            IterationRecord {
                iteration,
                started_at,
                finished_at: Utc::now(),
                tool_calls: tool_names.len() as u32,
                tool_names: tool_names.clone(),
                tool_rounds_exhausted: rounds_exhausted,
                summary: head(summary.trim(), SUMMARY_KEEP),
                validation_exit_code: exit_code,
                validation_timed_out: timed_out,
                validation_output: tail(output, VALIDATION_KEEP),
                usage: acct.usage,
                cost_usd: acct.cost_usd,
                llm_calls: acct.calls,
                finished,
            }
        };
        if finished {
            return Ok(Some(record(None, false, "", true)));
        }
        if self.structural.as_ref().is_some_and(|s| s.ends_by_tool()) {
            return Ok(Some(record(None, false, NOT_FINISHED_NOTE, false)));
        }

        self.hooks.on_validation_start(iteration);
        let (exit_code, timed_out, output) = match run_command(
            &cfg.validate,
            &cfg.workdir,
            cfg.validation_timeout,
            cfg.tools.output_limit,
            &self.cancel,
        )
        .await
        {
            Ok(outcome) if outcome.cancelled => return Ok(None),
            Ok(outcome) => (outcome.exit_code, outcome.timed_out, outcome.output),
            Err(e) => (
                None,
                false,
                format!(
                    "cannot run validation command `{}`: {e}",
                    cfg.validate.display()
                ),
            ),
        };
        Ok(Some(record(exit_code, timed_out, &output, false)))
    }

    /// Earlier iterations for the prompt, newest kept when space runs out.
    fn progress_text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut used = 0;
        for r in self.progress.records().iter().rev() {
            let code = r
                .validation_exit_code
                .map_or("none".to_string(), |c| c.to_string());
            let mut part = format!(
                "### Iteration {}\nTools used: {}\n",
                r.iteration,
                if r.tool_names.is_empty() {
                    "none".to_string()
                } else {
                    r.tool_names.join(", ")
                }
            );
            if !r.summary.is_empty() {
                part.push_str(&format!("Summary: {}\n", r.summary));
            }
            part.push_str(&format!(
                "Validation: exit code {code}{}\n```\n{}\n```\n",
                if r.validation_timed_out {
                    " (timed out)"
                } else {
                    ""
                },
                r.validation_output.trim_end()
            ));
            if used + part.len() > self.config.progress_chars {
                let room = self.config.progress_chars.saturating_sub(used);
                if parts.is_empty() && room > 0 {
                    parts.push(tail(&part, room));
                }
                break;
            }
            used += part.len();
            parts.push(part);
        }
        parts.reverse();
        parts.join("\n")
    }
}

/// The first `max` bytes of `s` (on a char boundary).
fn head(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [...]", &s[..end])
}

/// The last `max` bytes of `s` (on a char boundary), marked when cut.
fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("[... {} bytes cut ...]\n{}", start, &s[start..])
}
