//! How values are spelled in the store's columns, the same for every
//! backend: the stored form of an id, JSON text columns, and reading back
//! statuses and JSON that a backend found malformed.

use taskdaemon_core::Status;

use crate::{Result, StoreError};

/// The stored spelling of an id (the rule is core's `id::canonical_id`).
pub(crate) fn canonical_id(id: &str) -> String {
    taskdaemon_core::id::canonical_id(id)
}

/// The rule for finding a task by a caller's id, on either backend: `read`
/// with the id as written (queue tasks are named by their file, e.g.
/// `task-1`), then, when that finds nothing, with its canonical spelling
/// (`claude-3` is `CLAUDE-3`). Fails with `NotFound` naming `id`.
pub(crate) fn find_by_id<T>(
    id: &str,
    mut read: impl FnMut(&str) -> Result<Option<T>>,
) -> Result<T> {
    if let Some(found) = read(id)? {
        return Ok(found);
    }
    let canonical = canonical_id(id);
    if canonical != id
        && let Some(found) = read(&canonical)?
    {
        return Ok(found);
    }
    Err(StoreError::NotFound(id.to_owned()))
}

/// The JSON text of a plain data structure (strings, numbers, vectors).
pub(crate) fn to_json_text<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain data structures cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// A value of `field` the store cannot read back.
/// How a container spec is stored: JSON, or NULL for native processes.
pub(crate) fn container_text(spec: &Option<taskdaemon_core::ContainerSpec>) -> Option<String> {
    spec.as_ref().map(to_json_text)
}

/// Reads a stored container spec (NULL: a native process).
pub(crate) fn parse_container(
    text: Option<String>,
) -> Result<Option<taskdaemon_core::ContainerSpec>> {
    text.map(|text| serde_json::from_str(&text).map_err(|e| malformed("container", e)))
        .transpose()
}

/// How limits are stored: JSON, or NULL when none are set.
pub(crate) fn limits_text(limits: &taskdaemon_core::ResourceLimits) -> Option<String> {
    (!limits.is_empty()).then(|| to_json_text(limits))
}

/// Reads stored limits (NULL: none).
pub(crate) fn parse_limits(text: Option<String>) -> Result<taskdaemon_core::ResourceLimits> {
    text.map(|text| serde_json::from_str(&text).map_err(|e| malformed("limits", e)))
        .transpose()
        .map(Option::unwrap_or_default)
}

pub(crate) fn malformed(field: &'static str, message: impl ToString) -> StoreError {
    StoreError::Malformed {
        field,
        message: message.to_string(),
    }
}

/// A `tasks.status` value.
pub(crate) fn parse_status(text: &str) -> Result<Status> {
    text.parse()
        .map_err(|e: taskdaemon_core::status::UnknownStatus| malformed("tasks.status", e))
}

/// A task kind read back from the store.
pub(crate) fn parse_kind(text: &str) -> Result<taskdaemon_core::TaskKind> {
    text.parse().map_err(|e: String| malformed("tasks.kind", e))
}

/// A JSON text column.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    field: &'static str,
    text: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|e| malformed(field, e))
}

/// A [`crate::FinishedTask`] from its columns, the same for every backend.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finished_task(
    uuid: String,
    id: String,
    kind: &str,
    status: &str,
    queue: Option<String>,
    started_at: Option<i64>,
    finished_at: i64,
    error: Option<String>,
    result: Option<String>,
) -> Result<crate::FinishedTask> {
    let result = match result {
        Some(text) => Some(
            serde_json::from_str(&text)
                .map_err(|e| malformed("queue_items.result", format!("{id}: {e}")))?,
        ),
        None => None,
    };
    Ok(crate::FinishedTask {
        kind: parse_kind(kind)?,
        status: parse_status(status)?,
        uuid,
        id,
        queue,
        started_at,
        finished_at,
        error,
        result,
    })
}

/// The link, roll-up and claim columns of a task row, as stored.
pub(crate) struct LinkColumns {
    pub dep_links: Option<String>,
    pub typed_links: Option<String>,
    pub rollup: Option<String>,
    pub claimed_by: Option<String>,
    pub lease_until: Option<i64>,
}

/// A task's links (both tables, merged and sorted), its subtasks' roll-up
/// and its claim, read from [`LinkColumns`].
pub(crate) fn link_fields(
    columns: LinkColumns,
) -> crate::Result<(
    Vec<taskdaemon_core::TaskLink>,
    Option<taskdaemon_core::Rollup>,
    Option<taskdaemon_core::Claim>,
)> {
    let joined = [columns.dep_links, columns.typed_links]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    let links = taskdaemon_core::links::parse_stored_links(Some(&joined))
        .map_err(|e| malformed("links", e))?;
    let rollup = taskdaemon_core::Rollup::parse_stored(columns.rollup.as_deref())
        .map_err(|e| malformed("rollup", e))?;
    let claim = match (columns.claimed_by, columns.lease_until) {
        (Some(by), Some(lease_until)) => Some(taskdaemon_core::Claim { by, lease_until }),
        _ => None,
    };
    Ok((links, rollup, claim))
}

/// A waiting task of the graph, from its id, status and the stored
/// `dep<TAB>status` lines of what it waits for (an unknown status is `lost`).
pub(crate) fn open_node(
    id: String,
    status: &str,
    deps: Option<&str>,
) -> crate::Result<taskdaemon_core::graph::OpenNode> {
    let depends_on = deps
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(dep, s)| (dep.to_owned(), s.parse().unwrap_or(Status::Lost)))
        .collect();
    Ok(taskdaemon_core::graph::OpenNode {
        id,
        status: parse_status(status)?,
        depends_on,
    })
}

/// The kinds of event that say a process ended, newest first in
/// [`Store::newest_ended`](crate::Store::newest_ended).
pub(crate) const ENDED_KINDS: &[taskdaemon_core::EventKind] = &[
    taskdaemon_core::EventKind::Exited,
    taskdaemon_core::EventKind::Lost,
    taskdaemon_core::EventKind::StartFailed,
];

/// What an ended-process line shows, as stored: the task's columns.
pub(crate) struct EndedColumns {
    pub id: String,
    pub argv: String,
    pub container: Option<String>,
    pub status: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub finished_at: Option<taskdaemon_core::time::Millis>,
    pub error: Option<String>,
}

/// What a running-process line shows, as stored.
pub(crate) struct RunningColumns {
    pub id: String,
    pub argv: String,
    pub container: Option<String>,
    pub pid: Option<i32>,
    pub started_at: Option<taskdaemon_core::time::Millis>,
    pub created_at: taskdaemon_core::time::Millis,
}

/// The summary line of a running process, without its newest log line
/// (the caller reads that from the log).
pub(crate) fn running_item(row: RunningColumns) -> Result<taskdaemon_core::rehydrate::RunningItem> {
    let argv: Vec<String> = serde_json::from_str(&row.argv).map_err(|e| malformed("argv", e))?;
    Ok(taskdaemon_core::rehydrate::RunningItem {
        command: taskdaemon_core::task::shell_join(&argv),
        image: parse_container(row.container)?.map(|c| c.image),
        pid: row.pid,
        started_at: row.started_at.unwrap_or(row.created_at),
        last_line: None,
        id: row.id,
    })
}

/// An end event joined to its task: `(event seq, task id, task status, event time)`.
pub(crate) type EndedRow = (i64, String, String, taskdaemon_core::time::Millis);

/// One [`EndedRef`](crate::EndedRef) per task from end events in any
/// order, newest end first: each task's newest end, and only tasks that are
/// still ended (a restarted one is not).
pub(crate) fn ended_refs(
    rows: impl IntoIterator<Item = Result<EndedRow>>,
) -> Result<Vec<crate::EndedRef>> {
    let mut rows = rows.into_iter().collect::<Result<Vec<EndedRow>>>()?;
    rows.sort_unstable_by_key(|row| std::cmp::Reverse(row.0));
    let mut seen = std::collections::HashSet::new();
    let mut refs = Vec::new();
    for (_, id, status, at) in &rows {
        let status = parse_status(status)?;
        if !status.is_terminal() || !seen.insert(id.as_str()) {
            continue;
        }
        refs.push(crate::EndedRef {
            id: id.clone(),
            status,
            at: *at,
        });
    }
    Ok(refs)
}

/// The lines of `ended`, in its order, from their tasks' rows in any order:
/// a task whose row is gone or no longer ended is left out.
pub(crate) fn ended_items(
    ended: &[crate::EndedRef],
    rows: impl IntoIterator<Item = Result<EndedColumns>>,
) -> Result<Vec<taskdaemon_core::rehydrate::EndedItem>> {
    let mut by_id = std::collections::HashMap::new();
    for row in rows {
        let row = row?;
        by_id.insert(row.id.clone(), row);
    }
    let mut items = Vec::with_capacity(ended.len());
    for end in ended {
        let Some(row) = by_id.remove(&end.id) else {
            continue;
        };
        let status = parse_status(&row.status)?;
        if !status.is_terminal() {
            continue;
        }
        let argv: Vec<String> =
            serde_json::from_str(&row.argv).map_err(|e| malformed("argv", e))?;
        items.push(taskdaemon_core::rehydrate::EndedItem {
            command: taskdaemon_core::task::shell_join(&argv),
            image: parse_container(row.container)?.map(|c| c.image),
            status,
            exit: taskdaemon_core::process::ExitOutcome::from_parts(row.exit_code, row.signal),
            finished_at: row.finished_at.unwrap_or(end.at),
            error: row.error,
            id: row.id,
        });
    }
    Ok(items)
}
