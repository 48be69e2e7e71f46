//! One container task's attempt, run to its end by the runner process:
//! create (labelled with workspace and task), start, stream the engine's
//! logs to this process's stdout and stderr (which the shim bounds and
//! rotates like any command's), wait, remove unless kept.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, LogsOptions, RemoveContainerOptions,
    WaitContainerOptions,
};
use futures_util::StreamExt;
use taskdaemon_core::TaskRecord;
use taskdaemon_core::container::{ContainerSpec, LABEL_TASK, LABEL_WORKSPACE};
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{SignalKind, signal};

use crate::engine::{Engine, EngineError, is_gone};

/// How long after the container's end its last output may take to arrive.
const LOG_DRAIN: Duration = Duration::from_secs(5);

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The engine's wait reported this exit code.
    Exited(i64),
    /// The container disappeared (removed from outside) before its exit
    /// was known: the task is lost.
    Vanished(String),
}

/// Runs task `task`'s container to its end. `on_created` gets the engine's
/// container id before the container starts (the store records it).
pub async fn run(
    engine: &Engine,
    task: &TaskRecord,
    workspace: &str,
    on_created: &mut dyn FnMut(&str),
) -> Result<RunEnd, EngineError> {
    let Some(spec) = &task.container else {
        return Err(EngineError::Api {
            socket: engine.socket().to_owned(),
            message: format!("{} is not a container task", task.id),
        });
    };
    engine.ping().await?;
    // A runner that died (its shim then starts another) left its container
    // running: attach to it again rather than start a second one, with the
    // logs from now on (what it printed before is in the log files).
    let (id, since) = match still_running(engine, task).await {
        Some(id) => (id, now_secs()),
        None => {
            let id = create(engine, spec, task, workspace).await?;
            on_created(&id);
            if let Err(e) = engine.docker().start_container(&id, None).await {
                remove(engine, &id).await;
                return Err(engine.api(e));
            }
            (id, 0)
        }
    };
    let logs = tokio::spawn(stream_logs(engine.clone(), id.clone(), since));
    let forward = tokio::spawn(forward_termination(engine.clone(), id.clone()));
    let mut end = wait(engine, &id).await;
    forward.abort();
    // The log stream ends with the container; a stuck one must not hold
    // the exit back.
    let _ = tokio::time::timeout(LOG_DRAIN, logs).await;
    if matches!(end, Ok(RunEnd::Exited(_))) && removed_behind_our_back(engine, &id).await {
        // `rm -f` kills first: the wait saw that kill, not an exit of its own.
        end = Ok(RunEnd::Vanished(format!(
            "container {} was removed from the engine while it ran",
            short(&id)
        )));
    }
    if !spec.keep && matches!(end, Ok(RunEnd::Exited(_))) {
        remove(engine, &id).await;
    }
    end
}

async fn create(
    engine: &Engine,
    spec: &ContainerSpec,
    task: &TaskRecord,
    workspace: &str,
) -> Result<String, EngineError> {
    let labels = HashMap::from([
        (LABEL_WORKSPACE.to_owned(), workspace.to_owned()),
        (LABEL_TASK.to_owned(), task.id.clone()),
    ]);
    let binds: Vec<String> = spec.mounts.iter().map(|m| m.bind()).collect();
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: (!task.argv.is_empty()).then(|| task.argv.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: spec.workdir.clone(),
        labels: Some(labels),
        host_config: Some(HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: spec.name.clone(),
        ..Default::default()
    };
    let created = engine
        .docker()
        .create_container(Some(options), body)
        .await
        .map_err(|e| engine.api(e))?;
    Ok(created.id)
}

/// The exit code from the engine's wait (bollard reports a non-zero one as
/// an error carrying the code).
async fn wait(engine: &Engine, id: &str) -> Result<RunEnd, EngineError> {
    let options = WaitContainerOptions {
        condition: "not-running".into(),
    };
    let mut stream = engine.docker().wait_container(id, Some(options));
    match stream.next().await {
        Some(Ok(response)) => Ok(RunEnd::Exited(response.status_code)),
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
            Ok(RunEnd::Exited(code))
        }
        Some(Err(e)) if is_gone(&e) => Ok(RunEnd::Vanished(format!(
            "container {} vanished from the engine",
            short(id)
        ))),
        Some(Err(e)) => Err(engine.api(e)),
        None => Ok(RunEnd::Vanished(format!(
            "the engine's wait on container {} ended without an exit code",
            short(id)
        ))),
    }
}

/// Task `task`'s container from an earlier runner, if it still runs and
/// is labelled as this task's.
async fn still_running(engine: &Engine, task: &TaskRecord) -> Option<String> {
    let id = task.container_id.as_deref()?;
    let info = engine.docker().inspect_container(id, None).await.ok()?;
    let ours = info
        .config
        .and_then(|c| c.labels)
        .is_some_and(|l| l.get(LABEL_TASK) == Some(&task.id));
    let running = info.state.and_then(|s| s.running).unwrap_or(false);
    (ours && running).then(|| id.to_owned())
}

fn now_secs() -> i32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
}

/// Copies the engine's log stream of `id` (from `since`, seconds since the
/// epoch; 0 for all of it) to stdout and stderr.
async fn stream_logs(engine: Engine, id: String, since: i32) {
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        since,
        ..Default::default()
    };
    let mut stream = engine.docker().logs(&id, Some(options));
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    while let Some(Ok(chunk)) = stream.next().await {
        let _ = match chunk {
            bollard::container::LogOutput::StdErr { message } => stderr.write_all(&message).await,
            bollard::container::LogOutput::StdOut { message }
            | bollard::container::LogOutput::Console { message } => {
                stdout.write_all(&message).await
            }
            bollard::container::LogOutput::StdIn { .. } => Ok(()),
        };
    }
    let _ = stdout.flush().await;
    let _ = stderr.flush().await;
}

/// A SIGTERM or SIGINT to the runner (a stop of its process group) is
/// passed on to the container, whose exit then ends the runner.
async fn forward_termination(engine: Engine, id: String) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    loop {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        let options = KillContainerOptions {
            signal: name.into(),
        };
        let _ = engine.docker().kill_container(&id, Some(options)).await;
    }
}

/// Whether someone else removed container `id` (we remove only after
/// this check); the engine may still be removing it, so "being removed"
/// counts too.
async fn removed_behind_our_back(engine: &Engine, id: &str) -> bool {
    match engine.docker().inspect_container(id, None).await {
        Err(e) => is_gone(&e),
        Ok(info) => info
            .state
            .and_then(|s| s.status)
            .is_some_and(|s| s == bollard::models::ContainerStateStatusEnum::REMOVING),
    }
}

async fn remove(engine: &Engine, id: &str) {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    if let Err(e) = engine.docker().remove_container(id, Some(options)).await
        && !is_gone(&e)
    {
        eprintln!("taskdaemon: cannot remove container {}: {e}", short(id));
    }
}

/// The 12-character form engines print.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
