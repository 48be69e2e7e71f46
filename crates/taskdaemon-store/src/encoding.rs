//! How values are spelled in the store's columns, the same for every
//! backend: the stored form of an id, JSON text columns, and reading back
//! statuses and JSON that a backend found malformed.

use taskdaemon_core::Status;

use crate::{Result, StoreError};

/// The stored spelling of an id (the rule is core's `id::canonical_id`).
pub(crate) fn canonical_id(id: &str) -> String {
    taskdaemon_core::id::canonical_id(id)
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
