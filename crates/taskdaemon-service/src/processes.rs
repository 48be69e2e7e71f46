//! Supervised processes: the process table with resource use, and the
//! actions that go through the daemon (spawn, kill, restart).

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use taskdaemon_core::process::{RestartMode, RestartPolicy};
use taskdaemon_core::{NewProcess, TaskRecord};
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

/// A process with its latest resource sample and log paths, as `ps --json`
/// shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessView {
    #[serde(flatten)]
    pub task: TaskRecord,
    /// CPU use over the last sample interval, in percent of one core.
    pub cpu_percent: Option<f64>,
    pub rss_kb: Option<u64>,
    /// Processes in the group.
    pub processes: Option<u32>,
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
        Ok(tasks
            .into_iter()
            .map(|task| {
                // An ended process has no resource use, whatever was sampled last.
                let sample = samples.get(&task.id).filter(|_| !task.status.is_terminal());
                ProcessView {
                    cpu_percent: sample.map(|s| (s.cpu_percent * 10.0).round() / 10.0),
                    rss_kb: sample.map(|s| s.rss_kb),
                    processes: sample.map(|s| s.processes),
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

    /// Starts a command under supervision (through the daemon, started when
    /// none runs); returns the new process.
    pub fn spawn(&self, spec: NewProcess) -> Result<TaskRecord> {
        spec.limits.validate().map_err(ServiceError::BadInput)?;
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

/// The daemon answers a process request with the task; anything else is a protocol slip.
fn expect_task(response: Response) -> Result<TaskRecord> {
    match response {
        Response::Task { task } => Ok(*task),
        other => Err(ServiceError::Failed(format!(
            "unexpected answer from the daemon: {other:?}"
        ))),
    }
}
