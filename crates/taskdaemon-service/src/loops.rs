//! LLM loops: listing and showing them (the store and the files under
//! `.taskdaemon/loops/ID/`, so it works while the daemon is down), and
//! running, stopping and waiting for them through the daemon.
//!
//! `loop_run` checks everything it can before any API call (spec file,
//! validate command, provider, workdir). The caller's `*_BASE_URL` goes into
//! the stored spec; the caller's `*_API_KEY` travels to the daemon over its
//! owner-only socket and stays in the daemon's memory, never on disk.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use taskdaemon_core::{LoopRecord, TaskRecord};
use taskdaemon_daemon::protocol::{LoopRun, Request, Response, Secret};
use taskdaemon_daemon::running_pid;
use taskdaemon_llm::{CommandSpec, IterationRecord, LoopSpec, ProgressLog, Provider};

use crate::{Result, Service, ServiceError};

/// How often a loop's end is checked while waiting for it.
const POLL: Duration = Duration::from_millis(100);
/// How often a waiter makes sure a daemon runs to drive the loop.
const DAEMON_CHECK: Duration = Duration::from_secs(1);
/// Iterations when none are asked for.
pub const DEFAULT_MAX_ITERATIONS: u32 = 10;

/// A loop to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopRunInput {
    /// The spec the model works to (any text file).
    pub spec: PathBuf,
    /// Validation command, run with `sh -c` in the workdir; exit 0 ends the loop.
    pub validate: String,
    pub max_iterations: u32,
    /// `anthropic` or `openai`.
    pub provider: String,
    /// Default: the provider's default model.
    pub model: Option<String>,
    /// Default: the current directory.
    pub workdir: Option<PathBuf>,
    /// Default: the spec file's name.
    pub name: Option<String>,
    pub session: Option<String>,
}

/// A loop with its recorded iterations, as `loop show --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct LoopShow {
    #[serde(flatten)]
    pub record: LoopRecord,
    pub progress_log: String,
    pub log: String,
    /// Every recorded iteration, from the progress log.
    pub progress: Vec<IterationRecord>,
}

impl Service {
    /// Loops, oldest first: unfinished ones, or all.
    pub fn loops(&self, all: bool) -> Result<Vec<LoopRecord>> {
        Ok(self.store.loops(all)?)
    }

    /// One loop's record: its task and counters.
    pub fn loop_record(&self, id: &str) -> Result<LoopRecord> {
        Ok(self.store.loop_record(id)?)
    }

    /// One loop with its counters and every recorded iteration.
    pub fn loop_show(&self, id: &str) -> Result<LoopShow> {
        let workspace = self.workspace()?;
        let record = self.store.loop_record(id)?;
        let id = &record.task.id;
        let progress_path = workspace.loop_progress(id);
        let progress = ProgressLog::read(&progress_path).map_err(|e| {
            ServiceError::Failed(format!("cannot read {}: {e}", progress_path.display()))
        })?;
        Ok(LoopShow {
            progress_log: progress_path.display().to_string(),
            log: workspace.loop_log(id).display().to_string(),
            progress,
            record,
        })
    }

    /// Checks the input and hands the loop to the daemon (started when none
    /// runs). Bad input fails with [`ServiceError::BadInput`] before the
    /// daemon or any model is involved.
    pub fn loop_run(&self, input: LoopRunInput) -> Result<LoopRecord> {
        let request = build_request(input)?;
        expect_loop(
            self.daemon()?
                .request(&Request::LoopRun(Box::new(request)))?,
        )
    }

    /// Stops a loop; the iteration in progress is dropped.
    pub fn loop_stop(&self, id: &str) -> Result<LoopRecord> {
        // Refuse what is not a loop before involving the daemon.
        let id = self.store.loop_record(id)?.task.id;
        expect_loop(self.daemon()?.request(&Request::LoopStop { id })?)
    }

    /// Waits until the loop `id` ends (`None` when `timeout` ran out). Loops
    /// run inside the daemon, so when none runs one is started (it resumes
    /// the loop).
    pub fn wait_loop(&self, id: &str, timeout: Option<Duration>) -> Result<Option<TaskRecord>> {
        let workspace = self.workspace()?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut checked = Instant::now() - DAEMON_CHECK;
        loop {
            let task = self.store.task(id)?;
            if task.status.is_terminal() {
                return Ok(Some(task));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            if checked.elapsed() >= DAEMON_CHECK {
                checked = Instant::now();
                if running_pid(workspace).is_none() {
                    self.daemon()?;
                }
            }
            std::thread::sleep(POLL);
        }
    }
}

fn build_request(input: LoopRunInput) -> Result<LoopRun> {
    let provider: Provider =
        input
            .provider
            .parse()
            .map_err(|e: taskdaemon_llm::UnknownProvider| {
                ServiceError::BadInput(format!("--provider: {e}"))
            })?;
    if input.validate.trim().is_empty() {
        return Err(ServiceError::BadInput(
            "--validate must not be empty: give the command that says the work is done".to_owned(),
        ));
    }
    let spec_text = std::fs::read_to_string(&input.spec)
        .map_err(|e| ServiceError::BadInput(format!("--spec {}: {e}", input.spec.display())))?;
    let workdir = match &input.workdir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()
            .map_err(|e| ServiceError::Failed(format!("cannot read the current directory: {e}")))?,
    };
    let workdir = std::fs::canonicalize(&workdir)
        .map_err(|e| ServiceError::BadInput(format!("--workdir {}: {e}", workdir.display())))?;
    let model = input
        .model
        .unwrap_or_else(|| default_model(provider).to_owned());
    let mut spec = LoopSpec::new(
        spec_text,
        CommandSpec::Shell(input.validate.clone()),
        &provider.to_string(),
        &model,
        &workdir,
    );
    spec.max_iterations = input.max_iterations;
    spec.base_url = env_value(provider.base_url_var());
    // The same checks the daemon makes, so bad input never reaches it.
    spec.clone()
        .into_config()
        .map_err(|e| ServiceError::BadInput(e.to_string()))?;
    let name = input.name.or_else(|| {
        input
            .spec
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    });
    let mut argv = vec![
        "loop".to_owned(),
        "run".to_owned(),
        "--spec".to_owned(),
        input.spec.display().to_string(),
        "--validate".to_owned(),
        input.validate,
    ];
    if input.max_iterations != DEFAULT_MAX_ITERATIONS {
        argv.extend([
            "--max-iterations".to_owned(),
            input.max_iterations.to_string(),
        ]);
    }
    Ok(LoopRun {
        spec,
        name,
        session: input.session,
        argv,
        api_key: env_value(provider.key_var()).map(Secret::new),
    })
}

pub(crate) fn default_model(provider: Provider) -> &'static str {
    match provider {
        Provider::Anthropic => "claude-sonnet-4-5",
        Provider::OpenAi => "gpt-4.1",
    }
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn expect_loop(response: Response) -> Result<LoopRecord> {
    match response {
        Response::Loop { record } => Ok(*record),
        other => Err(ServiceError::Failed(format!(
            "unexpected answer from the daemon: {other:?}"
        ))),
    }
}
