//! What creating an agent task and finishing its queue item decide, once
//! for every backend (folder queues and submitted work alike).

use serde_json::json;
use taskdaemon_core::{EventKind, NewAgent, NewEvent, Status};

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

/// The first free id for an agent task: `wanted`, else `wanted~2`, `~3`,
/// ... (`taken` asks the store). Human ids are stored upper-case and queue
/// ids as written, so `task-1` and `TASK-1` are two tasks.
pub(crate) fn free_id(wanted: &str, mut taken: impl FnMut(&str) -> Result<bool>) -> Result<String> {
    let candidates =
        std::iter::once(wanted.to_owned()).chain((2u32..).map(|n| format!("{wanted}~{n}")));
    for id in candidates {
        if !taken(&id)? {
            return Ok(id);
        }
    }
    unreachable!("u32 suffixes cannot all be taken")
}

/// Refuses to record a result for task `id`, whose status is `status`,
/// before it has ended.
pub(crate) fn check_finishable(id: &str, status: Status) -> Result<()> {
    if status.is_terminal() {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "{id} is {status}: its result cannot be recorded before it ends"
    )))
}
