//! Supervised processes: the process table with resource use, and the
//! actions that go through the daemon (spawn, kill, restart).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use taskdaemon_core::process::{RestartMode, RestartPolicy};
use taskdaemon_core::{NewProcess, ResourceLimits, TaskRecord};
use taskdaemon_daemon::protocol::{AdoptRequest, Request, Response};
use taskdaemon_store::{ProcessFilter, Sample};
use taskdaemon_supervisor::group::parse_signal;

use crate::{Result, Service, ServiceError, tool_name};

/// Restarts allowed when a restart mode is given without a maximum.
pub const DEFAULT_MAX_RESTARTS: u32 = 3;

/// The restart policy of a new process: no restarts for `never`, else
/// `max_restarts` (default [`DEFAULT_MAX_RESTARTS`]) with backoff from
/// `initial_backoff`.
pub fn restart_policy(
    mode: RestartMode,
    max_restarts: Option<u32>,
    initial_backoff: Duration,
) -> RestartPolicy {
    let max_restarts = match mode {
        RestartMode::Never => 0,
        _ => max_restarts.unwrap_or(DEFAULT_MAX_RESTARTS),
    };
    RestartPolicy {
        mode,
        max_restarts,
        initial_backoff,
    }
}

/// A command to start under supervision, as an interface receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnInput {
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// The agent or tool starting it (gives the id prefix).
    pub tool: Option<String>,
    pub name: Option<String>,
    pub session: Option<String>,
    /// Working directory; default: the caller's current directory.
    pub cwd: Option<PathBuf>,
    /// Variables set on top of the caller's environment.
    pub env: Vec<(String, String)>,
    pub restart: RestartMode,
    pub max_restarts: Option<u32>,
    pub restart_delay: Duration,
    pub hang_timeout: Option<Duration>,
    /// What the command may use (memory, CPU time, files, niceness).
    pub limits: ResourceLimits,
    /// Run in a container (`--image`) instead of natively.
    pub container: Option<taskdaemon_core::ContainerSpec>,
}

impl SpawnInput {
    /// A command run once, from the caller's directory and environment.
    pub fn command(argv: Vec<String>) -> Self {
        Self {
            argv,
            tool: None,
            name: None,
            session: None,
            cwd: None,
            env: Vec::new(),
            restart: RestartMode::Never,
            max_restarts: None,
            restart_delay: Duration::from_secs(1),
            hang_timeout: None,
            limits: ResourceLimits::default(),
            container: None,
        }
    }
}

/// A process with its latest resource sample and log paths, as `ps --json`
/// shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProcessView {
    #[serde(flatten)]
    pub task: TaskRecord,
    /// CPU use over the last sample interval, in percent of one core.
    pub cpu_percent: Option<f64>,
    pub rss_kb: Option<u64>,
    /// Processes in the group.
    pub processes: Option<u32>,
    /// `process` or `container`.
    pub mode: taskdaemon_core::ExecMode,
    /// Container tasks: the image and the engine's container id.
    pub image: Option<String>,
    pub container_id: Option<String>,
    pub stdout_log: String,
    pub stderr_log: String,
}

impl Service {
    /// Supervised processes, oldest first: running ones, or all with `all`;
    /// only those of `tool` when given.
    pub fn processes(&self, all: bool, tool: Option<&str>) -> Result<Vec<ProcessView>> {
        let workspace = self.workspace()?;
        let tasks = self.store.processes(&ProcessFilter {
            all,
            tool: tool_name(tool)?,
            limit: None,
        })?;
        let samples: HashMap<String, Sample> = self
            .store
            .samples()?
            .into_iter()
            .map(|s| (s.task_id.clone(), s))
            .collect();
        let mut engine_usage = container_usage(&tasks);
        Ok(tasks
            .into_iter()
            .map(|task| {
                // An ended process has no resource use, whatever was sampled last.
                let sample = samples.get(&task.id).filter(|_| !task.status.is_terminal());
                // A container's use is the engine's (its runner's is nothing).
                let usage = engine_usage.remove(&task.id);
                let cpu = match &usage {
                    Some(usage) => usage.cpu_percent.or_else(|| average_cpu(usage, &task)),
                    None => sample.map(|s| s.cpu_percent),
                };
                ProcessView {
                    cpu_percent: cpu.map(|c| (c * 10.0).round() / 10.0),
                    rss_kb: match &usage {
                        Some(usage) => usage.memory_bytes.map(|b| b / 1024),
                        None => sample.map(|s| s.rss_kb),
                    },
                    processes: sample.map(|s| s.processes),
                    mode: task.mode(),
                    image: task.image().map(str::to_owned),
                    container_id: task.container_id.clone(),
                    stdout_log: workspace.stdout_log(&task.id).display().to_string(),
                    stderr_log: workspace.stderr_log(&task.id).display().to_string(),
                    task,
                }
            })
            .collect())
    }

    /// One task of any kind, by id (case-insensitive prefix).
    pub fn task(&self, id: &str) -> Result<TaskRecord> {
        Ok(self.store.task(id)?)
    }

    /// A task's output log (stderr's with `stderr`), with the task's
    /// canonical id.
    pub fn log_path(&self, id: &str, stderr: bool) -> Result<(String, std::path::PathBuf)> {
        let workspace = self.workspace()?;
        let id = self.store.task(id)?.id;
        let path = if stderr {
            workspace.stderr_log(&id)
        } else {
            workspace.stdout_log(&id)
        };
        Ok((id, path))
    }

    /// Starts a command the way the caller would run it: in its directory
    /// (or `cwd`), with its environment plus `env`.
    pub fn spawn_command(&self, input: SpawnInput) -> Result<TaskRecord> {
        let mut env = inherited_env();
        for (key, value) in input.env {
            env.retain(|(k, _)| *k != key);
            env.push((key, value));
        }
        self.spawn(NewProcess {
            tool: tool_name(input.tool.as_deref())?,
            name: input.name,
            session: input.session,
            argv: input.argv,
            cwd: resolve_cwd(input.cwd.as_deref())?,
            env,
            restart: restart_policy(input.restart, input.max_restarts, input.restart_delay),
            hang_timeout_ms: input.hang_timeout.map(|d| d.as_millis() as u64),
            limits: input.limits,
            container: input.container,
        })
    }

    /// Starts a command under supervision (through the daemon, started when
    /// none runs); returns the new process.
    pub fn spawn(&self, mut spec: NewProcess) -> Result<TaskRecord> {
        spec.limits.validate().map_err(ServiceError::BadInput)?;
        if let Some(container) = &mut spec.container {
            check_engine(container, &spec.env)?;
        }
        expect_task(self.daemon()?.request(&Request::Spawn(Box::new(spec)))?)
    }

    /// Watches a process another tool started (see the daemon's adopt
    /// handler); returns its new task.
    pub fn adopt(
        &self,
        pid: i32,
        name: Option<String>,
        tool: Option<String>,
        session: Option<String>,
    ) -> Result<TaskRecord> {
        let request = AdoptRequest {
            pid,
            name,
            tool,
            session,
        };
        expect_task(self.daemon()?.request(&Request::Adopt(request))?)
    }

    /// Stops a process (or queue task) group: `signal` first, SIGKILL after
    /// `grace`. Returns the task once it has ended.
    pub fn kill(&self, id: &str, signal: &str, grace: Duration) -> Result<TaskRecord> {
        let signal = parse_signal(signal).map_err(ServiceError::BadInput)?;
        expect_task(self.daemon()?.request(&Request::Kill {
            id: id.to_owned(),
            signal: signal.as_raw(),
            grace_ms: grace.as_millis() as u64,
        })?)
    }

    /// Stops a process if it runs (SIGTERM, SIGKILL after `grace`) and starts it again.
    pub fn restart(&self, id: &str, grace: Duration) -> Result<TaskRecord> {
        expect_task(self.daemon()?.request(&Request::Restart {
            id: id.to_owned(),
            grace_ms: grace.as_millis() as u64,
        })?)
    }
}

/// Percent of one CPU a container used on average since it started, when
/// its engine gives only the total.
fn average_cpu(usage: &taskdaemon_container::Usage, task: &TaskRecord) -> Option<f64> {
    let ran_ms = taskdaemon_core::time::now_millis() - task.started_at?;
    let total_ns = usage.cpu_total_ns? as f64;
    (ran_ms > 0).then(|| total_ns / (ran_ms as f64 * 1e6) * 100.0)
}

/// CPU and memory of the running container tasks among `tasks`, from
/// their engines' stats, by task id.
fn container_usage(tasks: &[TaskRecord]) -> HashMap<String, taskdaemon_container::Usage> {
    let running: Vec<(&TaskRecord, (String, String))> = tasks
        .iter()
        .filter(|t| t.status == taskdaemon_core::Status::Running)
        .filter_map(|t| {
            let spec = t.container.as_ref()?;
            Some((t, (spec.engine.clone(), t.container_id.clone()?)))
        })
        .collect();
    if running.is_empty() {
        return HashMap::new();
    }
    let asks: Vec<(String, String)> = running.iter().map(|(_, ask)| ask.clone()).collect();
    running
        .iter()
        .zip(taskdaemon_container::usage_of_all(&asks))
        .filter_map(|((task, _), usage)| Some((task.id.clone(), usage?)))
        .collect()
}

/// Settles which engine a container task uses (the spec's, else
/// `DOCKER_HOST` as the caller's environment gives it, else the default)
/// and checks it answers, so that no task is created for an engine that
/// is down.
fn check_engine(
    container: &mut taskdaemon_core::ContainerSpec,
    env: &[(String, String)],
) -> Result<()> {
    container.validate().map_err(ServiceError::BadInput)?;
    if container.engine.is_empty() {
        let host = env
            .iter()
            .rev()
            .find(|(k, _)| k == "DOCKER_HOST")
            .map(|(_, v)| v.as_str());
        container.engine = taskdaemon_container::default_socket(host);
    }
    let engine = taskdaemon_container::Engine::new(&container.engine)?;
    taskdaemon_container::block_on(async {
        engine.ping().await?;
        engine.has_image(&container.image).await
    })??;
    Ok(())
}

/// The working directory of a new process: `cwd` made absolute and checked,
/// else the caller's current directory.
fn resolve_cwd(cwd: Option<&Path>) -> Result<String> {
    let dir = match cwd {
        Some(dir) => std::fs::canonicalize(dir)
            .map_err(|e| ServiceError::BadInput(format!("--cwd {}: {e}", dir.display())))?,
        None => std::env::current_dir()
            .map_err(|e| ServiceError::Failed(format!("cannot read the current directory: {e}")))?,
    };
    if !dir.is_dir() {
        return Err(ServiceError::BadInput(format!(
            "--cwd {}: not a directory",
            dir.display()
        )));
    }
    dir.to_str()
        .map(str::to_owned)
        .ok_or_else(|| ServiceError::BadInput(format!("--cwd {}: not valid UTF-8", dir.display())))
}

/// The caller's environment: the command runs as if started from the
/// caller's shell, not with the daemon's environment.
fn inherited_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k != "TASKDAEMON_WORKSPACE")
        .collect()
}

/// The daemon answers a process request with the task; anything else is a protocol slip.
fn expect_task(response: Response) -> Result<TaskRecord> {
    match response {
        Response::Task { task } => Ok(*task),
        other => Err(ServiceError::Failed(format!(
            "unexpected answer from the daemon: {other:?}"
        ))),
    }
}
