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
use taskdaemon_daemon::protocol::{LoopRun, Request, Response, Secret, TypedRun};
use taskdaemon_daemon::running_pid;
use taskdaemon_llm::{CommandSpec, IterationRecord, LoopSpec, ProgressLog, Provider};

use crate::{Result, Service, ServiceError};

/// How often a loop's end is checked while waiting for it.
const POLL: Duration = Duration::from_millis(100);
/// How often a waiter makes sure a daemon runs to drive the loop.
const DAEMON_CHECK: Duration = Duration::from_secs(1);
/// Iterations when none are asked for.
pub const DEFAULT_MAX_ITERATIONS: u32 = 10;

/// A loop to start: from a spec file and a validation command, or from a
/// loop type (`taskdaemon.yml`) with its inputs, where the flags given
/// override the type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopRunInput {
    /// The spec the model works to (any text file); required without a type.
    pub spec: Option<PathBuf>,
    /// Validation command, run with `sh -c` in the workdir; exit 0 ends the
    /// loop. Required without a type (or when the type has none).
    pub validate: Option<String>,
    /// Default: the type's, else [`DEFAULT_MAX_ITERATIONS`].
    pub max_iterations: Option<u32>,
    /// `anthropic` or `openai`; default: the type's, else `anthropic`.
    pub provider: Option<String>,
    /// Default: the type's, else the provider's default model.
    pub model: Option<String>,
    /// Default: the current directory.
    pub workdir: Option<PathBuf>,
    /// Default: the spec file's name, or the type's.
    pub name: Option<String>,
    pub session: Option<String>,
    /// The loop type to start from.
    pub loop_type: Option<String>,
    /// The type's inputs, as `NAME=VALUE`.
    pub inputs: Vec<String>,
}

/// A loop with its recorded iterations, as `loop show --json` prints it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
        let request = match &input.loop_type {
            Some(name) => self.typed_request(name.clone(), input)?,
            None => build_request(input)?,
        };
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
    let provider = parse_provider(input.provider.as_deref().unwrap_or("anthropic"))?;
    let Some(spec_path) = input.spec.clone() else {
        return Err(ServiceError::BadInput(
            "--spec FILE is required (or start from a loop type with --type NAME)".to_owned(),
        ));
    };
    let validate = input.validate.clone().unwrap_or_default();
    if validate.trim().is_empty() {
        return Err(ServiceError::BadInput(
            "--validate must not be empty: give the command that says the work is done".to_owned(),
        ));
    }
    let spec_text = read_spec(&spec_path)?;
    let workdir = workdir_of(&input)?;
    let model = input
        .model
        .clone()
        .unwrap_or_else(|| default_model(provider).to_owned());
    let max_iterations = input.max_iterations.unwrap_or(DEFAULT_MAX_ITERATIONS);
    let mut spec = LoopSpec::new(
        spec_text,
        CommandSpec::Shell(validate.clone()),
        &provider.to_string(),
        &model,
        &workdir,
    );
    spec.max_iterations = max_iterations;
    spec.base_url = env_value(provider.base_url_var());
    // The same checks the daemon makes, so bad input never reaches it.
    spec.clone()
        .into_config()
        .map_err(|e| ServiceError::BadInput(e.to_string()))?;
    let name = input.name.or_else(|| {
        spec_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    });
    let mut argv = vec![
        "loop".to_owned(),
        "run".to_owned(),
        "--spec".to_owned(),
        spec_path.display().to_string(),
        "--validate".to_owned(),
        validate,
    ];
    if max_iterations != DEFAULT_MAX_ITERATIONS {
        argv.extend(["--max-iterations".to_owned(), max_iterations.to_string()]);
    }
    Ok(LoopRun {
        spec,
        name,
        session: input.session,
        argv,
        api_key: env_value(provider.key_var()).map(Secret::new),
        typed: None,
    })
}

impl Service {
    /// A loop from type `name`. The daemon resolves the type with the
    /// configuration it holds (its last good version); here the file on
    /// disk, when it loads, checks the type and inputs early and says which
    /// provider's key and base URL to send.
    fn typed_request(&self, name: String, input: LoopRunInput) -> Result<LoopRun> {
        let inputs =
            taskdaemon_looptypes::parse_pairs(&input.inputs).map_err(ServiceError::BadInput)?;
        let overrides = taskdaemon_looptypes::Overrides {
            provider: input.provider.clone(),
            model: input.model.clone(),
            max_iterations: input.max_iterations,
            validate: input.validate.clone(),
        };
        let spec_text = match &input.spec {
            Some(path) => read_spec(path)?,
            None => String::new(),
        };
        let workdir = workdir_of(&input)?;
        let mut spec = LoopSpec::new(
            spec_text,
            CommandSpec::Shell(String::new()),
            "anthropic",
            "",
            &workdir,
        );
        // A broken file on disk is the daemon's to report (it keeps its last
        // good version); a good one lets bad input fail here.
        if let Ok(types) = self.loop_types() {
            let loop_type = types.get(&name).map_err(ServiceError::BadInput)?;
            let mut checked = spec.clone();
            loop_type
                .apply(&mut checked, &inputs, &overrides)
                .map_err(ServiceError::BadInput)?;
            spec.provider = checked.provider;
        }
        let provider = parse_provider(overrides.provider.as_deref().unwrap_or(&spec.provider))?;
        spec.base_url = env_value(provider.base_url_var());
        let mut argv = vec![
            "loop".to_owned(),
            "run".to_owned(),
            "--type".to_owned(),
            name.clone(),
        ];
        for pair in &input.inputs {
            argv.extend(["--input".to_owned(), pair.clone()]);
        }
        Ok(LoopRun {
            spec,
            name: input.name.or_else(|| Some(name.clone())),
            session: input.session,
            argv,
            api_key: env_value(provider.key_var()).map(Secret::new),
            typed: Some(TypedRun {
                name,
                inputs,
                overrides,
            }),
        })
    }
}

fn parse_provider(name: &str) -> Result<Provider> {
    name.parse().map_err(|e: taskdaemon_llm::UnknownProvider| {
        ServiceError::BadInput(format!("--provider: {e}"))
    })
}

fn read_spec(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| ServiceError::BadInput(format!("--spec {}: {e}", path.display())))
}

/// The canonical workdir: the one given, else the current directory.
fn workdir_of(input: &LoopRunInput) -> Result<PathBuf> {
    let workdir = match &input.workdir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()
            .map_err(|e| ServiceError::Failed(format!("cannot read the current directory: {e}")))?,
    };
    std::fs::canonicalize(&workdir)
        .map_err(|e| ServiceError::BadInput(format!("--workdir {}: {e}", workdir.display())))
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
