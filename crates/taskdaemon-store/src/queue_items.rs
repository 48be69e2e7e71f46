//! What creating an agent task and finishing its queue item decide, once
//! for every backend (folder queues and submitted work alike).

use serde_json::json;
use taskdaemon_core::{EventKind, NewAgent, NewEvent, Status, TaskRecord};

use crate::{Result, StoreError};

/// Refuses an agent task without an id or a queue; returns its `created`
/// event and the `after` it records.
pub(crate) fn created(spec: &NewAgent, actor: &str) -> Result<(NewEvent, serde_json::Value)> {
    if spec.wanted_id.is_empty() || spec.queue.is_empty() {
        return Err(StoreError::Conflict(
            "an agent task needs an id and a queue".to_owned(),
        ));
    }
    let event = NewEvent::new(
        EventKind::Created,
        actor,
        format!(
            "queue {}: {} ({})",
            spec.queue, spec.document, spec.executor
        ),
    );
    let after = json!({ "status": Status::Pending.as_str(), "queue": spec.queue });
    Ok((event, after))
}

/// The candidate ids for an agent task, in the order they are tried:
/// `wanted`, then `wanted~2`, `~3`, ...
pub(crate) fn candidate_ids(wanted: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(wanted.to_owned()).chain((2u32..).map(move |n| format!("{wanted}~{n}")))
}

/// Refuses to record a result for a task that has not ended.
pub(crate) fn check_finishable(task: &TaskRecord) -> Result<()> {
    if task.status.is_terminal() {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "{} is {}: its result cannot be recorded before it ends",
        task.id, task.status
    )))
}
