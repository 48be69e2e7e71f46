//! The loop manager: runs LLM loops as tokio tasks under a semaphore,
//! publishes what they do to the store, and resumes unfinished loops when the
//! daemon starts (except those a plan's driver owns: it resumes them itself,
//! with their tools, through [`run_owned`]).
//!
//! - Store writes from loops go through one writer task, in order, on a
//!   blocking thread: hooks run inline on a loop's task and must not block,
//!   and hundreds of loops share the runtime.
//! - A loop's state between iterations is its progress log
//!   (`.taskdaemon/loops/ID/progress.jsonl`), so a loop the daemon was running
//!   when it died resumes at the iteration after the last recorded one.
//!   Iterations the store missed (a crash between the log and the store) are
//!   replayed from the log; the store counts each iteration once.
//! - `.taskdaemon/loops/ID/loop.log` gets one human line per iteration, tool
//!   call, retry and verdict, for `loop logs` and the foreground `loop run`.
//! - API keys: a loop uses the key its `loop run` request carried (held in
//!   memory only) or else the daemon's own environment. Keys are never
//!   written to the store, the progress log, `loop.log` or the daemon log. A
//!   loop resumed by a restarted daemon whose environment lacks the key fails
//!   at once with a reason saying so, instead of hanging.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use taskdaemon_core::time::{now_millis, to_rfc3339};
use taskdaemon_core::{EventKind, LoopEnd, LoopIteration, LoopRecord, NewEvent, NewLoop, Status};
use taskdaemon_llm::{
    IterationRecord, Llm, LoopConfig, LoopHooks, LoopRunner, LoopSpec, LoopStatus, ProgressLog,
    StreamEvent, StructuralTools, ToolOutput,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::blocking::blocking;
use crate::loop_state::{Op, lock};
use crate::protocol::{ErrorKind, LoopRun, Response, Secret, TypedRun};
use crate::state::{ACTOR, Daemon, Failure, Shared};

/// How long `loop stop` waits for the loop to record its end.
const STOP_WAIT: Duration = Duration::from_secs(15);
/// Store operations applied per trip to a blocking thread.
const WRITE_BATCH: usize = 256;

/// Starts the store writer and resumes every loop the store says is unfinished.
pub(crate) async fn start(daemon: &Shared) -> usize {
    if let Some(writes) = lock(&daemon.loops.writes).take() {
        tokio::spawn(write_ops(daemon.clone(), writes));
    }
    let d = daemon.clone();
    let unfinished = match blocking(move || {
        // The pipeline driver resumes its own loops, with their tools; a
        // loop of a plan that ended while the daemon was down just ends.
        let owned = crate::pipeline::owned_loops(&*d.store)?;
        let mut mine = Vec::new();
        for record in d.store.loops(false)? {
            match owned.get(&record.task.id) {
                None => mine.push(record),
                Some(true) => {}
                Some(false) => d.loops.send(Op::Finish {
                    id: record.task.id.clone(),
                    end: LoopEnd::Cancelled,
                    done: None,
                }),
            }
        }
        Ok::<_, Failure>(mine)
    })
    .await
    .unwrap_or_else(|p| Err(p.into()))
    {
        Ok(loops) => loops,
        Err(e) => {
            tracing::error!(error = %e.message, "cannot list loops to resume");
            return 0;
        }
    };
    let count = unfinished.len();
    for record in unfinished {
        resume(daemon, record).await;
    }
    count
}

/// Resumes a loop from its stored spec, with the daemon's own environment.
async fn resume(daemon: &Shared, record: LoopRecord) {
    let id = record.task.id.clone();
    let prepared = match serde_json::from_value::<LoopSpec>(record.spec.clone()) {
        Ok(spec) => prepare(daemon, spec, None)
            .await
            .map(|(config, llm, _)| (config, llm)),
        Err(e) => Err(format!("stored spec is unreadable: {e}")),
    };
    match prepared {
        Ok((config, llm)) => {
            tracing::info!(id, "resuming loop");
            launch(daemon, id, record.iterations, config, llm, Owner::default());
        }
        Err(reason) => {
            let reason = format!("cannot resume after a daemon restart: {reason}");
            tracing::warn!(id, reason, "loop not resumed");
            LoopLog::open(daemon, &id).line(&format!("loop failed: {reason}"));
            if record.task.status == Status::Running {
                daemon.loops.send(Op::Running {
                    id: id.clone(),
                    next_iteration: record.iterations + 1,
                    missed: Vec::new(),
                });
            }
            daemon.loops.send(Op::Finish {
                id,
                end: LoopEnd::Failed { reason },
                done: None,
            });
        }
    }
}

/// Checks a spec and builds its client; the error is for the caller to read.
async fn prepare(
    daemon: &Shared,
    spec: LoopSpec,
    key: Option<Secret>,
) -> Result<(LoopConfig, Llm, LoopSpec), String> {
    let checked = spec.clone();
    // Reads the spec file and resolves the workdir: blocking work.
    let config = blocking(move || checked.into_config())
        .await
        .map_err(|e| format!("checking the spec panicked: {e}"))?
        .map_err(|e| e.to_string())?;
    let llm = daemon
        .loops
        .llm_for(config.provider, config.base_url.as_deref(), key.as_ref())
        .map_err(|e| e.to_string())?;
    Ok((config, llm, spec))
}

/// `loop run`: checks the spec, creates the loop and starts it.
pub(crate) async fn run(daemon: &Shared, request: LoopRun) -> Response {
    let LoopRun {
        mut spec,
        name,
        session,
        argv,
        api_key,
        typed,
    } = request;
    if let Some(typed) = &typed
        && typed
            .name
            .starts_with(crate::pipeline::PIPELINE_TYPE_PREFIX)
    {
        return error(
            ErrorKind::Invalid,
            format!(
                "loop type `{}` runs only under a plan (its tools hand work to the plan's driver): start one with `taskdaemon new-plan`",
                typed.name
            ),
        );
    }
    if let Some(typed) = typed
        && let Err(message) = apply_type(daemon, &mut spec, &typed)
    {
        return error(ErrorKind::Invalid, message);
    }
    let (config, llm, mut spec) = match prepare(daemon, spec, api_key).await {
        Ok(prepared) => prepared,
        Err(message) => return error(ErrorKind::Invalid, message),
    };
    spec.workdir = config.workdir.clone();
    let spec_json = match serde_json::to_value(&spec) {
        Ok(value) => value,
        Err(e) => return error(ErrorKind::Internal, format!("cannot encode the spec: {e}")),
    };
    let new = NewLoop {
        name,
        session,
        argv,
        workdir: config.workdir.display().to_string(),
        spec: spec_json,
    };
    let d = daemon.clone();
    let record = match blocking(move || {
        let record = d.store.create_loop(&new, ACTOR)?;
        // Made before answering, so the caller can follow the loop's files at once.
        let dir = d.workspace.loop_dir(&record.task.id);
        std::fs::create_dir_all(&dir).map_err(|e| Failure {
            kind: ErrorKind::Internal,
            message: format!("cannot create {}: {e}", dir.display()),
        })?;
        Ok::<_, Failure>(record)
    })
    .await
    .unwrap_or_else(|p| Err(p.into()))
    {
        Ok(record) => record,
        Err(f) => return error(f.kind, f.message),
    };
    tracing::info!(id = record.task.id, "loop created");
    launch(
        daemon,
        record.task.id.clone(),
        0,
        config,
        llm,
        Owner::default(),
    );
    Response::Loop {
        record: Box::new(record),
    }
}

/// Writes the loop type `typed` names, from the configuration in use now,
/// into `spec`, with the configuration version it came from.
fn apply_type(daemon: &Daemon, spec: &mut LoopSpec, typed: &TypedRun) -> Result<(), String> {
    let active = daemon.types.current();
    let loop_type = active.types.get(&typed.name)?;
    loop_type.apply(spec, &typed.inputs, &typed.overrides)?;
    spec.config_version = active.version;
    Ok(())
}

/// `loop stop`: asks the store, cancels the loop's task, waits for its end.
pub(crate) async fn stop(daemon: &Shared, id: String) -> Response {
    let d = daemon.clone();
    let stopped = blocking(move || {
        let record = d.store.loop_record(&id)?;
        if record.task.status.is_terminal() {
            return Err(Failure {
                kind: ErrorKind::Conflict,
                message: format!(
                    "{} is not running (status {})",
                    record.task.id, record.task.status
                ),
            });
        }
        d.store.request_stop(&record.task.id, ACTOR)?;
        Ok(d.store.loop_record(&record.task.id)?)
    })
    .await
    .unwrap_or_else(|p| Err(p.into()));
    let record = match stopped {
        Ok(record) => record,
        Err(f) => return error(f.kind, f.message),
    };
    let id = record.task.id.clone();
    let token = lock(&daemon.loops.active).get(&id).cloned();
    match token {
        Some(token) => token.cancel(),
        // Running in the store but not here (its resume failed half-way): end it now.
        None if record.task.status == Status::Running => daemon.loops.send(Op::Finish {
            id: id.clone(),
            end: LoopEnd::Cancelled,
            done: None,
        }),
        None => {}
    }
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        let (d, key) = (daemon.clone(), id.clone());
        match blocking(move || d.store.loop_record(&key).map_err(Failure::from))
            .await
            .unwrap_or_else(|p| Err(p.into()))
        {
            Ok(record) if record.task.status.is_terminal() || Instant::now() > deadline => {
                return Response::Loop {
                    record: Box::new(record),
                };
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(f) => return error(f.kind, f.message),
        }
    }
}

/// What the owner of a loop the daemon drives itself (the pipeline driver)
/// adds to it: structural tools, a channel told its end once stored, and
/// the plan, spec or phase a new loop is linked from (before it starts, so
/// each iteration it records is charged to that record).
#[derive(Default)]
pub(crate) struct Owner {
    pub(crate) structural: Option<Arc<dyn StructuralTools>>,
    pub(crate) done: Option<oneshot::Sender<LoopEnd>>,
    pub(crate) link: Option<String>,
}

/// Runs a loop on its own task; `recorded` is how many iterations the store has.
fn launch(daemon: &Shared, id: String, recorded: u32, config: LoopConfig, llm: Llm, owner: Owner) {
    let cancel = CancellationToken::new();
    {
        let mut active = lock(&daemon.loops.active);
        if active.contains_key(&id) {
            return;
        }
        active.insert(id.clone(), cancel.clone());
    }
    let daemon = daemon.clone();
    let Owner {
        structural, done, ..
    } = owner;
    tokio::spawn(async move {
        let log = Arc::new(LoopLog::open(&daemon, &id));
        let ended = drive(
            &daemon,
            &id,
            (recorded, structural),
            config,
            llm,
            cancel,
            log.clone(),
        )
        .await;
        match ended {
            Some(end) => {
                log.line(&format!("loop {}: {}", end.status(), end.message()));
                daemon.loops.send(Op::Finish {
                    id: id.clone(),
                    end,
                    done,
                });
            }
            None => {
                if let Some(done) = done {
                    let _ = done.send(LoopEnd::Cancelled);
                }
            }
        }
        lock(&daemon.loops.active).remove(&id);
    });
}

/// Starts (or resumes, when `existing` names an unfinished loop) a loop the
/// pipeline driver owns; `on_end` is told its end once the store has it.
/// A loop that already ended is reported at once.
pub(crate) async fn run_owned(
    daemon: &Shared,
    existing: Option<String>,
    spec: LoopSpec,
    name: String,
    owner: Owner,
) -> Result<String, String> {
    if let Some(id) = existing {
        let d = daemon.clone();
        let key = id.clone();
        let record = blocking(move || d.store.loop_record(&key))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if record.task.status.is_terminal() {
            if let Some(done) = owner.done {
                let _ = done.send(stored_end(&record));
            }
            return Ok(id);
        }
        let stored = serde_json::from_value::<LoopSpec>(record.spec.clone())
            .map_err(|e| format!("stored spec of {id} is unreadable: {e}"))?;
        let (config, llm, _) = prepare(daemon, stored, None).await?;
        tracing::info!(id, "resuming pipeline loop");
        launch(daemon, id.clone(), record.iterations, config, llm, owner);
        return Ok(id);
    }
    let (config, llm, mut spec) = prepare(daemon, spec, None).await?;
    spec.workdir = config.workdir.clone();
    let spec_json =
        serde_json::to_value(&spec).map_err(|e| format!("cannot encode the spec: {e}"))?;
    let new = NewLoop {
        name: Some(name),
        session: None,
        argv: Vec::new(),
        workdir: config.workdir.display().to_string(),
        spec: spec_json,
    };
    let d = daemon.clone();
    let link = owner.link.clone();
    let record = blocking(move || {
        let record = d.store.create_loop(&new, ACTOR)?;
        if let Some(link) = &link {
            d.store.set_pipeline_loop(link, Some(&record.task.id))?;
        }
        let dir = d.workspace.loop_dir(&record.task.id);
        std::fs::create_dir_all(&dir).map_err(|e| Failure {
            kind: ErrorKind::Internal,
            message: format!("cannot create {}: {e}", dir.display()),
        })?;
        Ok::<_, Failure>(record)
    })
    .await
    .unwrap_or_else(|p| Err(p.into()))
    .map_err(|f| f.message)?;
    let id = record.task.id.clone();
    launch(daemon, id.clone(), 0, config, llm, owner);
    Ok(id)
}

/// The end of a loop the store says has ended.
fn stored_end(record: &LoopRecord) -> LoopEnd {
    let reason = || {
        record
            .task
            .note
            .clone()
            .unwrap_or_else(|| format!("loop {} {}", record.task.id, record.task.status))
    };
    match record.task.status {
        Status::Succeeded => LoopEnd::Succeeded {
            iteration: record.iterations,
        },
        Status::Cancelled => LoopEnd::Cancelled,
        _ => LoopEnd::Failed { reason: reason() },
    }
}

/// Waits for a slot, then runs the loop to its end. `None` when it was
/// cancelled before it started (the stop request already ended it in the store).
async fn drive(
    daemon: &Shared,
    id: &str,
    (recorded, structural): (u32, Option<Arc<dyn StructuralTools>>),
    config: LoopConfig,
    llm: Llm,
    cancel: CancellationToken,
    log: Arc<LoopLog>,
) -> Option<LoopEnd> {
    // A type's own limit first, so loops waiting on it hold no global slot.
    let type_slots = daemon.loops.type_slots(&config);
    let _type_slot = match type_slots {
        Some(slots) => Some(tokio::select! {
            slot = slots.acquire_owned() => slot.ok()?,
            _ = cancel.cancelled() => return None,
        }),
        None => None,
    };
    let _slot = tokio::select! {
        slot = daemon.loops.slots.clone().acquire_owned() => slot.ok()?,
        _ = cancel.cancelled() => return None,
    };
    let timeout = config.timeout;
    let path = daemon.workspace.loop_progress(id);
    let opened = blocking(move || {
        let missed: Vec<LoopIteration> = ProgressLog::read(&path)
            .unwrap_or_default()
            .iter()
            .filter(|r| r.iteration > recorded)
            .map(summarize)
            .collect();
        LoopRunner::new(config, llm, path).map(|runner| (runner, missed))
    })
    .await;
    let (runner, missed) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => {
            return Some(LoopEnd::Failed {
                reason: e.to_string(),
            });
        }
        Err(e) => {
            return Some(LoopEnd::Failed {
                reason: format!("loop setup panicked: {e}"),
            });
        }
    };
    let next_iteration = runner.next_iteration();
    if recorded > 0 || !missed.is_empty() {
        log.line(&format!("resuming at iteration {next_iteration}"));
    }
    daemon.loops.send(Op::Running {
        id: id.to_owned(),
        next_iteration,
        missed,
    });
    let hooks = Arc::new(Hooks {
        id: id.to_owned(),
        daemon: daemon.clone(),
        log,
    });
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(limit) = timeout {
        let (cancel, timed_out) = (cancel.clone(), timed_out.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(limit) => {
                    timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
                    cancel.cancel();
                }
                _ = cancel.cancelled() => {}
            }
        });
    }
    let runner = match structural {
        Some(tools) => runner.with_structural_tools(tools),
        None => runner,
    };
    let outcome = runner
        .with_hooks(hooks)
        .with_cancel(cancel.clone())
        .run()
        .await;
    // Ends the timer of a loop that ended on its own.
    let ended_by_timeout = timed_out.load(std::sync::atomic::Ordering::SeqCst);
    if !ended_by_timeout {
        cancel.cancel();
    }
    if ended_by_timeout && let Some(limit) = timeout {
        return Some(LoopEnd::Failed {
            reason: format!(
                "timed out after {}s (the loop type's timeout)",
                limit.as_secs()
            ),
        });
    }
    Some(match outcome {
        Ok(outcome) => match outcome.status {
            LoopStatus::Succeeded { iteration } => LoopEnd::Succeeded { iteration },
            LoopStatus::Failed { reason } => LoopEnd::Failed { reason },
            LoopStatus::Cancelled => LoopEnd::Cancelled,
        },
        Err(e) => LoopEnd::Failed {
            reason: e.to_string(),
        },
    })
}

/// What the store keeps of an iteration record.
fn summarize(record: &IterationRecord) -> LoopIteration {
    LoopIteration {
        iteration: record.iteration,
        tool_calls: record.tool_calls,
        validation_exit_code: record.validation_exit_code,
        passed: record.passed(),
        input_tokens: record.usage.input_tokens,
        output_tokens: record.usage.output_tokens,
        cache_read_tokens: record.usage.cache_read_input_tokens,
        cache_write_tokens: record.usage.cache_creation_input_tokens,
        cost_usd: record.cost_usd,
    }
}

/// Applies loop store operations in the order they were sent.
async fn write_ops(daemon: Shared, mut writes: mpsc::UnboundedReceiver<Op>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while writes.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let ops = std::mem::take(&mut batch);
        let d = daemon.clone();
        let applied = blocking(move || {
            for op in ops {
                apply(&d, op);
            }
        })
        .await;
        if let Err(e) = applied {
            tracing::error!(error = %e, "loop store writer panicked");
        }
    }
}

fn apply(daemon: &Daemon, op: Op) {
    let store = &daemon.store;
    let (id, result) = match op {
        Op::Running {
            id,
            next_iteration,
            missed,
        } => {
            let result = store
                .mark_loop_running(&id, next_iteration, ACTOR)
                .and_then(|_| {
                    missed
                        .iter()
                        .try_for_each(|it| store.record_loop_iteration(&id, it, ACTOR).map(|_| ()))
                });
            (id, result)
        }
        Op::Event { id, kind, message } => {
            let result = store
                .append_event(Some(&id), &NewEvent::new(kind, ACTOR, message))
                .map(|_| ());
            (id, result)
        }
        Op::Iteration { id, iteration } => {
            let result = store
                .record_loop_iteration(&id, &iteration, ACTOR)
                .map(|_| ());
            (id, result)
        }
        Op::Finish { id, end, done } => {
            let result = store.finish_loop(&id, &end, ACTOR).map(|_| ());
            if let Some(done) = done {
                let _ = done.send(end);
            }
            (id, result)
        }
    };
    if let Err(e) = result {
        tracing::warn!(id, error = %e, "cannot record loop progress");
    }
}

/// Publishes what a loop does: store events in order, human lines to `loop.log`.
struct Hooks {
    id: String,
    daemon: Shared,
    log: Arc<LoopLog>,
}

impl LoopHooks for Hooks {
    fn on_iteration_start(&self, iteration: u32) {
        self.log.line(&format!("iteration {iteration} started"));
        self.daemon.loops.send(Op::Event {
            id: self.id.clone(),
            kind: EventKind::IterationStarted,
            message: format!("iteration {iteration} started"),
        });
    }

    fn on_llm_event(&self, iteration: u32, event: &StreamEvent) {
        if let StreamEvent::Retrying {
            attempt,
            delay,
            reason,
        } = event
        {
            self.log.line(&format!(
                "iteration {iteration}: model call failed (attempt {attempt}), retrying in {:.1}s: {reason}",
                delay.as_secs_f64()
            ));
        }
    }

    fn on_tool_call(&self, iteration: u32, name: &str, input: &Value) {
        self.log.line(&format!(
            "iteration {iteration}: tool {name} {}",
            describe_input(input)
        ));
    }

    fn on_tool_result(&self, iteration: u32, name: &str, output: &ToolOutput) {
        if output.is_error {
            let first = output.content.lines().next().unwrap_or_default();
            self.log.line(&format!(
                "iteration {iteration}: tool {name} error: {}",
                clip(first, 200)
            ));
        }
    }

    fn on_validation_start(&self, iteration: u32) {
        self.log.line(&format!("iteration {iteration}: validating"));
    }

    fn on_iteration_end(&self, record: &IterationRecord) {
        let iteration = summarize(record);
        let mut line = iteration.summary();
        if !record.passed() {
            let tail = record.validation_output.trim_end().lines().last();
            if let Some(tail) = tail.filter(|t| !t.trim().is_empty()) {
                line.push_str(&format!(": {}", clip(tail.trim(), 200)));
            }
        }
        self.log.line(&line);
        self.daemon.loops.send(Op::Iteration {
            id: self.id.clone(),
            iteration,
        });
    }
}

/// The short form of a tool input for a log line.
fn describe_input(input: &Value) -> String {
    for key in ["path", "argv", "pattern"] {
        if let Some(value) = input.get(key) {
            return format!("{key}={}", clip(&value.to_string(), 120));
        }
    }
    clip(&input.to_string(), 120)
}

fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// `.taskdaemon/loops/ID/loop.log`: appended without fsync (it is for
/// reading; the progress log and the store are the durable record).
struct LoopLog {
    file: Mutex<Option<File>>,
}

impl LoopLog {
    fn open(daemon: &Daemon, id: &str) -> Self {
        let path = daemon.workspace.loop_log(id);
        let file = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| OpenOptions::new().create(true).append(true).open(&path));
        let file = match file {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::warn!(id, error = %e, path = %path.display(), "cannot open loop log");
                None
            }
        };
        LoopLog {
            file: Mutex::new(file),
        }
    }

    fn line(&self, text: &str) {
        if let Some(file) = lock(&self.file).as_mut() {
            let _ = writeln!(file, "{} {text}", to_rfc3339(now_millis()));
        }
    }
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error {
        kind,
        message: message.into(),
    }
}
