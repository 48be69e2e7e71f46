//! Cleaning up after a runner that died: the containers a task's runner
//! left at the engine when no other runner follows to re-attach (the
//! runner removes its container itself only when it lives to see the end).

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use taskdaemon_core::container::{LABEL_TASK, LABEL_WORKSPACE};

use crate::engine::{Engine, EngineError, is_gone};
use crate::run::short;

/// Stops (SIGTERM, SIGKILL after `grace`) every container labelled as task
/// `task` of workspace `workspace`, and removes it unless `keep`. Found by
/// label rather than by the recorded id, so a container whose id the runner
/// had no time to record goes too. Returns the short ids it handled.
pub async fn reap(
    engine: &Engine,
    workspace: &str,
    task: &str,
    grace: Duration,
    keep: bool,
) -> Result<Vec<String>, EngineError> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{LABEL_WORKSPACE}={workspace}"),
            format!("{LABEL_TASK}={task}"),
        ],
    )]);
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let found = engine
        .docker()
        .list_containers(Some(options))
        .await
        .map_err(|e| engine.api(e))?;
    let mut handled = Vec::new();
    for id in found.into_iter().filter_map(|c| c.id) {
        let stopped = engine.stop(&id, grace).await;
        // A forced removal kills what the stop could not (a container
        // created but never started, say): only a kept one needs the stop.
        if keep {
            stopped?;
        } else {
            remove(engine, &id).await?;
        }
        handled.push(short(&id).to_owned());
    }
    Ok(handled)
}

async fn remove(engine: &Engine, id: &str) -> Result<(), EngineError> {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    match engine.docker().remove_container(id, Some(options)).await {
        Err(e) if !is_gone(&e) => Err(engine.api(e)),
        _ => Ok(()),
    }
}
