//! The MCP server: one tool per service action, two resources, and the
//! client's session as the taskdaemon session.
//!
//! Every tool is a thin call into [`Service`], run on tokio's blocking pool
//! (the service is synchronous; `wait` blocks for as long as it is asked
//! to). A success returns the same JSON the CLI's `--json` prints; a failure
//! returns an `isError` result whose text is the CLI's `error: ...` line.

use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, InitializeRequestParams, InitializeResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::{MaybeSendFuture, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Serialize;
use taskdaemon_core::compact::compact_line;
use taskdaemon_core::duration::parse_duration;
use taskdaemon_core::gate::GateRequest;
use taskdaemon_core::limits::parse_size;
use taskdaemon_core::process::RestartMode;
use taskdaemon_core::tracked::parse_priority;
use taskdaemon_core::{LinkKind, MemoryKind, ResourceLimits, Status, TrackedAction, TrackedView};
use taskdaemon_service::{
    Agent, HistoryQuery, LoopRunInput, NewTask, Service, ServiceError, SpawnInput, SubmitInput,
    WaitOutcome, error_message,
};

use crate::params::*;
use crate::profile::ToolProfile;
use crate::session::{agent_for_client, tool_of_client};

/// The summary's budget when a caller names none (the CLI's default).
const DEFAULT_BUDGET: usize = 1500;
/// How long `wait` blocks when a caller names no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// How long `kill` and `restart` give a process after SIGTERM.
const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// The resource holding the rehydrate summary.
pub const REHYDRATE_URI: &str = "taskdaemon://rehydrate";
/// The resource holding the seed snapshot `current.json`.
pub const CURRENT_URI: &str = "taskdaemon://current.json";

/// Who the server acts as, when the command line says so; otherwise the
/// client's `initialize` decides.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    pub tool: Option<String>,
    pub session: Option<String>,
    /// Which tools are listed.
    pub profile: ToolProfile,
}

/// taskdaemon as an MCP server over one workspace's service.
#[derive(Clone)]
pub struct TaskdaemonMcp {
    service: Arc<Service>,
    agent: Arc<Mutex<Agent>>,
    /// The session came from the command line: a client does not replace it.
    fixed: bool,
    tool_router: ToolRouter<Self>,
}

impl TaskdaemonMcp {
    /// A server over `service`. A session or tool in `options` is used as
    /// given; otherwise they come from the client's `initialize`.
    pub fn new(service: Service, options: ServerOptions) -> Result<Self, ServiceError> {
        let agent = Agent::new(options.tool.as_deref(), options.session.as_deref())?;
        Ok(Self {
            service: Arc::new(service),
            fixed: agent.session.is_some(),
            agent: Arc::new(Mutex::new(agent)),
            tool_router: Self::profiled_router(options.profile),
        })
    }

    /// The tools of `profile` only.
    fn profiled_router(profile: ToolProfile) -> ToolRouter<Self> {
        let mut router = Self::tool_router();
        let names: Vec<String> = router
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        for name in names.iter().filter(|n| !profile.offers(n)) {
            router.remove_route(name);
        }
        router
    }

    /// The agent the calls act as now.
    pub fn agent(&self) -> Agent {
        self.agent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs `call` on the blocking pool and answers with its JSON (what the
    /// CLI's `--json` prints), or with the error the CLI would print.
    async fn call<T, F>(&self, call: F) -> Result<CallToolResult, ErrorData>
    where
        T: Serialize + Send + 'static,
        F: FnOnce(&Service, &Agent) -> Result<T, ServiceError> + Send + 'static,
    {
        self.call_text(move |service, agent| {
            let value = call(service, agent)?;
            // Compact: every character is context the agent pays for.
            serde_json::to_string(&value)
                .map_err(|e| ServiceError::Failed(format!("cannot encode the answer: {e}")))
        })
        .await
    }

    /// Like [`call`](Self::call) for an answer that is text already.
    async fn call_text<F>(&self, call: F) -> Result<CallToolResult, ErrorData>
    where
        F: FnOnce(&Service, &Agent) -> Result<String, ServiceError> + Send + 'static,
    {
        let service = self.service.clone();
        let agent = self.agent();
        let outcome = tokio::task::spawn_blocking(move || call(&service, &agent)).await;
        Ok(match outcome {
            Ok(Ok(text)) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Ok(Err(e)) => tool_error(&error_message(&e)),
            Err(panicked) => tool_error(&format!("the call did not finish: {panicked}")),
        })
    }

    /// Takes the session and tool from the client where the command line
    /// set none.
    fn adopt_client(&self, client: &Implementation) {
        let mut agent = self.agent.lock().unwrap_or_else(PoisonError::into_inner);
        if self.fixed {
            if agent.tool.is_none() {
                agent.tool = tool_of_client(&client.name);
            }
            return;
        }
        *agent = agent_for_client(&client.name, agent.tool.as_deref());
    }
}

/// Tasks a `task_list` page holds when the caller names no limit: 200
/// compact lines stay well under an agent's 25,000-character tool result.
const DEFAULT_PAGE: usize = 200;
/// The most a page holds, whatever the caller asks.
const MAX_PAGE: usize = 500;

/// One compact line per task.
fn compact_lines(tasks: &[taskdaemon_core::TaskRecord]) -> String {
    let mut text = String::new();
    for task in tasks {
        text.push_str(&compact_line(task));
        text.push('\n');
    }
    text
}

/// An `isError` result with the CLI's error line.
fn tool_error(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!("error: {message}"))])
}

/// A duration argument such as `30s`, or `default`.
fn duration_arg(
    name: &str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, ServiceError> {
    match value {
        None => Ok(default),
        Some(text) => parse_duration(text)
            .map_err(|e| ServiceError::BadInput(format!("{name} '{text}': {e}"))),
    }
}

/// An argument parsed by its type's `FromStr`, naming the argument on error.
fn parsed_arg<T>(name: &str, text: &str) -> Result<T, ServiceError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| ServiceError::BadInput(format!("{name} '{text}': {e}")))
}

/// How a wait ended, as the tool reports it.
#[derive(Serialize)]
struct WaitAnswer {
    ended: bool,
    #[serde(flatten)]
    task: taskdaemon_core::TaskRecord,
}

#[tool_router]
impl TaskdaemonMcp {
    /// Start a command under supervision (builds, tests, dev servers). It
    /// outlives this conversation; returns the new process with its id.
    #[tool]
    async fn spawn(
        &self,
        Parameters(p): Parameters<SpawnParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| {
            let restart = match &p.restart {
                Some(text) => parsed_arg::<RestartMode>("restart", text)?,
                None => RestartMode::Never,
            };
            let hang_timeout = match &p.hang_timeout {
                Some(text) => Some(duration_arg("hang_timeout", Some(text), Duration::ZERO)?),
                None => None,
            };
            let max_memory = match &p.max_memory {
                Some(text) => Some(
                    parse_size(text)
                        .map_err(|e| ServiceError::BadInput(format!("max_memory: {e}")))?,
                ),
                None => None,
            };
            let max_cpu_time = match &p.max_cpu_time {
                Some(text) => Some(duration_arg("max_cpu_time", Some(text), Duration::ZERO)?),
                None => None,
            };
            service.spawn_command(SpawnInput {
                argv: p.command,
                tool: agent.tool.clone(),
                name: p.name,
                session: agent.session.clone(),
                cwd: p.cwd,
                env: p.env.into_iter().collect(),
                restart,
                max_restarts: p.max_restarts,
                restart_delay: Duration::from_secs(1),
                hang_timeout,
                limits: ResourceLimits {
                    max_memory,
                    max_cpu_time_ms: max_cpu_time.map(|d| d.as_millis() as u64),
                    max_files: p.max_files,
                    nice: p.nice,
                },
                container: None,
            })
        })
        .await
    }

    /// Supervised processes with status, pid, exit and resource use.
    #[tool]
    async fn ps(&self, Parameters(p): Parameters<PsParams>) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| service.processes(p.all, None))
            .await
    }

    /// A process's output: the last lines (tail), or only what is new since
    /// a byte offset (since = the previous call's next_offset).
    #[tool]
    async fn logs(
        &self,
        Parameters(p): Parameters<LogsParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| service.read_log(&p.id, p.stderr, p.tail, p.since))
            .await
    }

    /// Block until a task ends or the timeout runs out; `ended` says which.
    #[tool]
    async fn wait(
        &self,
        Parameters(p): Parameters<WaitParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| {
            let timeout = duration_arg("timeout", p.timeout.as_deref(), DEFAULT_WAIT)?;
            Ok(match service.wait(&p.id, Some(timeout))? {
                WaitOutcome::Ended(task) => WaitAnswer { ended: true, task },
                WaitOutcome::TimedOut(task) => WaitAnswer { ended: false, task },
            })
        })
        .await
    }

    /// Stop a process and its whole process group: the signal, then SIGKILL after the grace period.
    #[tool]
    async fn kill(
        &self,
        Parameters(p): Parameters<KillParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| {
            let grace = duration_arg("grace", p.grace.as_deref(), DEFAULT_GRACE)?;
            service.kill(&p.id, p.signal.as_deref().unwrap_or("TERM"), grace)
        })
        .await
    }

    /// Stop a process if it runs and start it again.
    #[tool]
    async fn restart(
        &self,
        Parameters(p): Parameters<RestartParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| {
            let grace = duration_arg("grace", p.grace.as_deref(), DEFAULT_GRACE)?;
            service.restart(&p.id, grace)
        })
        .await
    }

    /// Where work stands, in Markdown within a token budget: what runs, what
    /// ended or failed since the last rehydrate, the task in progress, ready
    /// work and recent decisions. Call it after your context was compacted.
    #[tool]
    async fn rehydrate(
        &self,
        Parameters(p): Parameters<RehydrateParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call_text(move |service, agent| {
            let budget = p.budget.unwrap_or(DEFAULT_BUDGET);
            Ok(service
                .rehydrate(budget, agent.session.as_deref(), p.peek)?
                .markdown)
        })
        .await
    }

    /// Add a tracked task (blocked while a task in `after` has not succeeded).
    #[tool]
    async fn task_add(
        &self,
        Parameters(p): Parameters<TaskAddParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| {
            let priority = match &p.priority {
                Some(text) => parse_priority(text)
                    .map_err(|e| ServiceError::BadInput(format!("priority '{text}': {e}")))?,
                None => 0,
            };
            let task = service.add_task(
                agent,
                NewTask {
                    title: p.title,
                    description: p.description,
                    priority,
                    labels: p.labels,
                    after: p.after,
                    parent: p.parent,
                },
            )?;
            Ok(TrackedView::from(&task))
        })
        .await
    }

    /// Start working on a tracked task.
    #[tool]
    async fn task_start(
        &self,
        Parameters(p): Parameters<TaskIdParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| {
            let task = service.act(agent, &p.id, TrackedAction::Start)?;
            Ok(TrackedView::from(&task))
        })
        .await
    }

    /// Mark a started tracked task done.
    #[tool]
    async fn task_done(
        &self,
        Parameters(p): Parameters<TaskDoneParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| {
            let task = service.act(agent, &p.id, TrackedAction::Done { note: p.note })?;
            Ok(TrackedView::from(&task))
        })
        .await
    }

    /// Mark a tracked task failed.
    #[tool]
    async fn task_fail(
        &self,
        Parameters(p): Parameters<TaskFailParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| {
            let task = service.act(agent, &p.id, TrackedAction::Fail { reason: p.reason })?;
            Ok(TrackedView::from(&task))
        })
        .await
    }

    /// Tracked tasks ready to start (dependencies met), most urgent first.
    #[tool]
    async fn task_ready(
        &self,
        Parameters(p): Parameters<TaskReadyParams>,
    ) -> Result<CallToolResult, ErrorData> {
        if p.compact {
            return self
                .call_text(move |service, _| {
                    let tasks = service.ready(p.limit.unwrap_or(20))?;
                    Ok(compact_lines(&tasks))
                })
                .await;
        }
        self.call(move |service, _| {
            let tasks = service.ready(p.limit.unwrap_or(20))?;
            Ok(tasks.iter().map(TrackedView::from).collect::<Vec<_>>())
        })
        .await
    }

    /// One page of tracked tasks, newest first, a compact line each
    /// (`ID status pPRI title <after [n/m done] @claimer`); the last line
    /// gives the cursor of the next page.
    #[tool]
    async fn task_list(
        &self,
        Parameters(p): Parameters<TaskListParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call_text(move |service, _| {
            let status = match &p.status {
                Some(text) => Some(parsed_arg::<Status>("status", text)?),
                None => None,
            };
            let limit = p.limit.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
            let page = service.tracked_page(status, p.label, p.cursor, limit)?;
            let mut text = compact_lines(&page.tasks);
            if let Some(cursor) = page.next_cursor {
                text.push_str(&format!("next_cursor: {cursor}\n"));
            }
            Ok(text)
        })
        .await
    }

    /// The one task to do now: subtasks of the task in progress first, then
    /// priority, then what unblocks the most work, then age.
    #[tool]
    async fn task_next(
        &self,
        Parameters(p): Parameters<TaskNextParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call_text(move |service, _| {
            let Some(next) = service.next_task()? else {
                return Ok("nothing ready".to_owned());
            };
            let (task, _) = service.tracked_task(&next.task.id)?;
            let mut text = compact_line(&task);
            if p.explain {
                text.push_str(&format!("\nwhy: {}", next.pick.explanation));
            }
            Ok(text)
        })
        .await
    }

    /// Take a task for this agent (the one task_next picks when no id is
    /// given), atomically: no other agent gets it while this agent is active.
    #[tool]
    async fn task_claim(
        &self,
        Parameters(p): Parameters<TaskClaimParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call_text(move |service, agent| {
            let lease = match &p.lease {
                Some(text) => {
                    Some(duration_arg("lease", Some(text), Duration::ZERO)?.as_millis() as i64)
                }
                None => None,
            };
            Ok(match service.claim_task(agent, p.id.as_deref(), lease)? {
                Some(task) => compact_line(&task),
                None => "nothing ready to claim".to_owned(),
            })
        })
        .await
    }

    /// Link two tracked tasks (`from KIND to`); blocking kinds that would
    /// close a cycle are refused.
    #[tool]
    async fn task_link(
        &self,
        Parameters(p): Parameters<TaskLinkParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| {
            let kind = parsed_arg::<LinkKind>("kind", &p.kind)?;
            let task = service.link_tasks(agent, &p.from, kind, &p.to)?;
            Ok(TrackedView::from(&task))
        })
        .await
    }

    /// Remove links from one tracked task to another.
    #[tool]
    async fn task_unlink(
        &self,
        Parameters(p): Parameters<TaskUnlinkParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| {
            let kind = match &p.kind {
                Some(text) => Some(parsed_arg::<LinkKind>("kind", text)?),
                None => None,
            };
            let task = service.unlink_tasks(agent, &p.from, kind, &p.to)?;
            Ok(TrackedView::from(&task))
        })
        .await
    }

    /// Hold a tracked task that has not started until events happen: a
    /// supervised process succeeds, a command exits 0, a time passes, a
    /// person approves. Answers with the gates added.
    #[tool]
    async fn task_gate(
        &self,
        Parameters(p): Parameters<TaskGateParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| {
            let request = GateRequest {
                until_succeeds: p.until_succeeds,
                until_command: p.until_command,
                until: p.until,
                after: p.after,
                approval: p.approval,
            };
            service.gate_request(agent, &p.id, request)
        })
        .await
    }

    /// A tracked task's gates: what each waits for, and whether it is
    /// waiting, open, or can never open (with the reason).
    #[tool]
    async fn task_gates(
        &self,
        Parameters(p): Parameters<TaskIdParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| service.gates_of(&p.id)).await
    }

    /// Approve a tracked task: opens its approval gates. Answers with the
    /// gates opened.
    #[tool]
    async fn task_approve(
        &self,
        Parameters(p): Parameters<TaskIdParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| service.approve_task(agent, &p.id))
            .await
    }

    /// Where tracked work stands for this session: the task in progress,
    /// ready work, recent decisions and the last events.
    #[tool]
    async fn task_resume(&self) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| service.resume(agent.session.as_deref()))
            .await
    }

    /// Record files the work on a tracked task touched.
    #[tool]
    async fn task_context(
        &self,
        Parameters(p): Parameters<TaskContextParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| {
            let task = service.add_task_files(agent, &p.id, &p.files)?;
            Ok(TrackedView::from(&task))
        })
        .await
    }

    /// Remember a decision, pattern, note or fact for later sessions.
    #[tool]
    async fn remember(
        &self,
        Parameters(p): Parameters<RememberParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| {
            let kind = parsed_arg::<MemoryKind>("kind", &p.kind)?;
            service.remember(agent, kind, p.text, p.task, p.key)
        })
        .await
    }

    /// Search tasks, memory and history by words, best matches first.
    #[tool]
    async fn search(
        &self,
        Parameters(p): Parameters<SearchParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| service.search(&p.query, p.limit.unwrap_or(20)))
            .await
    }

    /// The audit trail of every state change, oldest first, a page at a time.
    #[tool]
    async fn history(
        &self,
        Parameters(p): Parameters<HistoryParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| {
            let since = match &p.since {
                Some(text) => Some(
                    taskdaemon_core::time::parse_since(text)
                        .map_err(|e| ServiceError::BadInput(format!("since: {e}")))?,
                ),
                None => None,
            };
            let filter = service.history_filter(&HistoryQuery {
                since,
                task: p.task,
            })?;
            service.history_page(&filter, p.after_seq.unwrap_or(0), p.limit.unwrap_or(100))
        })
        .await
    }

    /// Queue a shell command or a task document; a queue worker runs it.
    #[tool]
    async fn submit(
        &self,
        Parameters(p): Parameters<SubmitParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| {
            let document = p.document.map(|text| {
                (
                    p.document_name.unwrap_or_else(|| "task.md".to_owned()),
                    text,
                )
            });
            service.submit(SubmitInput {
                document,
                command: p.command,
                queue: p.queue,
                executor: p.executor,
                id: p.id,
            })
        })
        .await
    }

    /// Queue tasks (folder and submitted), newest first.
    #[tool]
    async fn tasks_list(
        &self,
        Parameters(p): Parameters<TasksListParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| {
            let status = match &p.status {
                Some(text) => Some(parsed_arg::<Status>("status", text)?),
                None => None,
            };
            service.queue_tasks(p.queue.as_deref(), status, Some(p.limit.unwrap_or(100)))
        })
        .await
    }

    /// Start an LLM development loop in the daemon: iterations against the
    /// spec until the validation command passes. Returns at once.
    #[tool]
    async fn loop_run(
        &self,
        Parameters(p): Parameters<LoopRunParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| {
            service.loop_run(LoopRunInput {
                spec: p.spec,
                validate: p.validate,
                max_iterations: p.max_iterations,
                provider: p.provider,
                model: p.model,
                workdir: p.workdir,
                name: p.name,
                session: agent.session.clone(),
                loop_type: p.loop_type,
                inputs: p.inputs,
            })
        })
        .await
    }

    /// One loop with its counters and iterations, or the list of loops.
    #[tool]
    async fn loop_status(
        &self,
        Parameters(p): Parameters<LoopStatusParams>,
    ) -> Result<CallToolResult, ErrorData> {
        match p.id {
            Some(id) => self.call(move |service, _| service.loop_show(&id)).await,
            None => self.call(move |service, _| service.loops(p.all)).await,
        }
    }

    /// Plans (Plan -> Spec -> Phase pipelines) with how many specs are done,
    /// and what waits for the human: unanswered queries and alerts.
    #[tool]
    async fn plan_list(
        &self,
        Parameters(p): Parameters<PlanListParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| {
            let plans = service.plans(!p.all)?;
            let attention = service.pipeline_attention()?;
            Ok(serde_json::json!({
                "plans": plans,
                "waiting_queries": attention.queries,
                "alerts": attention.alerts,
            }))
        })
        .await
    }

    /// One plan as a tree: specs, phases and the loops that ran them, each with its cost.
    #[tool]
    async fn plan_show(
        &self,
        Parameters(p): Parameters<PlanShowParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, _| service.plan_show(&p.id)).await
    }

    /// Answer a question (a query) a plan's loop asked the human.
    #[tool]
    async fn plan_answer(
        &self,
        Parameters(p): Parameters<PlanAnswerParams>,
    ) -> Result<CallToolResult, ErrorData> {
        self.call(move |service, agent| service.answer_message(agent, &p.message, &p.answer))
            .await
    }
}

impl TaskdaemonMcp {
    /// The text of a resource, or `None` for an unknown URI.
    fn resource_text(&self, uri: &str) -> Result<Option<(String, &'static str)>, ServiceError> {
        let agent = self.agent();
        let session = agent.session.as_deref();
        match uri {
            REHYDRATE_URI => Ok(Some((
                self.service
                    .rehydrate(DEFAULT_BUDGET, session, true)?
                    .markdown,
                "text/markdown",
            ))),
            CURRENT_URI => {
                let path = self
                    .service
                    .workspace()?
                    .snapshot_path(self.service.config());
                if !path.exists() {
                    self.service.save_snapshot(session);
                }
                std::fs::read_to_string(&path)
                    .map(|text| Some((text, "application/json")))
                    .map_err(|e| {
                        ServiceError::Failed(format!("cannot read {}: {e}", path.display()))
                    })
            }
            _ => Ok(None),
        }
    }
}

fn resources() -> Vec<Resource> {
    vec![
        Resource::new(REHYDRATE_URI, "rehydrate")
            .with_description(
                "Where work stands: what runs, what ended since the last rehydrate, the task in progress, ready work, decisions",
            )
            .with_mime_type("text/markdown"),
        Resource::new(CURRENT_URI, "current.json")
            .with_description("The seed snapshot: the session's current task and state, as JSON")
            .with_mime_type("application/json"),
    ]
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TaskdaemonMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("taskdaemon", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "taskdaemon supervises background processes and remembers work across context resets. \
             Start long-running commands with `spawn` (not a background shell), read them with \
             `ps`/`logs`/`wait`, track work with the task_* tools, record decisions with \
             `remember`, and call `rehydrate` after your context was compacted.",
        )
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        self.adopt_client(&request.client_info);
        let service = self.service.clone();
        let agent = self.agent();
        // The session is known from now on; a store that cannot record it
        // fails the calls that need it, with their own message.
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || service.begin_session(&agent)).await
        {
            tracing::warn!("cannot record the session: {}", error_message(&e));
        }
        self.negotiate_initialize(&request)
    }

    fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourcesResult, ErrorData>> + MaybeSendFuture + '_ {
        std::future::ready(Ok(ListResourcesResult::with_all_items(resources())))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let this = self.clone();
        let uri = request.uri.clone();
        let text = tokio::task::spawn_blocking(move || this.resource_text(&uri))
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .map_err(|e| ErrorData::internal_error(error_message(&e), None))?;
        match text {
            Some((text, mime)) => Ok(ReadResourceResult::new(vec![
                ResourceContents::text(text, request.uri).with_mime_type(mime),
            ])
            .into()),
            None => Err(ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                None,
            )),
        }
    }
}
