//! Tracked (`manual`) tasks in SQLite: creation, dependency edges, the
//! actions an agent takes on its work, and keeping `blocked` true.
//!
//! The invariant kept here: a not-yet-started task is `pending` exactly when
//! every dependency has succeeded, else `blocked`. It is restored inside the
//! same transaction as any change that could break it (a new or removed edge,
//! a dependency that succeeds or is reopened).

use rusqlite::{Connection, OptionalExtension, params};
use taskdaemon_core::decay::{CompactSummary, Original, compactable};
use taskdaemon_core::time::Millis;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{NewTracked, Status, TaskRecord, TrackedEdit};

use super::events::record;
use super::rows::{TASK_COLUMNS, task_from_row};
use super::{apply, load_task, next_task_id, resolve_id, touch_session};
use crate::encoding::to_json_text;
use crate::{Result, StoreError, TrackedFilter, changes};

/// Creates a tracked task, its labels and dependency edges, and its `created` event.
pub(super) fn create(tx: &Connection, new: &NewTracked, actor: &str) -> Result<TaskRecord> {
    new.validate().map_err(StoreError::Invalid)?;
    let mut depends_on: Vec<String> = Vec::new();
    for dep in &new.depends_on {
        let id = load_task(tx, dep)?.id;
        if !depends_on.contains(&id) {
            depends_on.push(id);
        }
    }
    let statuses = dependency_statuses(tx, &depends_on)?;
    let (status, created) = changes::tracked_created(new, &depends_on, &statuses, actor);
    let parent = match &new.parent {
        Some(parent) => Some(super::links::parent_of_new(tx, parent)?),
        None => None,
    };
    // A subtask's id is its parent's with a suffix; others follow the id scheme.
    let (uuid, id) = match &parent {
        Some(parent) => (
            uuid::Uuid::now_v7(),
            super::links::next_child_id(tx, parent)?,
        ),
        None => changes::mint_tracked_id(
            &mut &*tx,
            new,
            |tx| next_task_id(tx, new.tool.as_deref()),
            |tx, id| id_taken(tx, id),
        )?,
    };
    let now = now_millis();
    let mut insert = tx.prepare_cached(
        "INSERT INTO tasks (uuid, id, kind, name, tool, session, status, argv, env, restart,
                            description, priority, created_at, updated_at)
         VALUES (?1, ?2, 'manual', ?3, ?4, ?5, ?6, '[]', '[]', ?7, ?8, ?9, ?10, ?10)",
    )?;
    insert.execute(params![
        uuid.to_string(),
        id,
        new.title.trim(),
        new.tool,
        new.session,
        status.as_str(),
        to_json_text(&taskdaemon_core::RestartPolicy::default()),
        new.description,
        new.priority,
        now,
    ])?;
    let mut insert_label =
        tx.prepare_cached("INSERT OR IGNORE INTO task_labels (task_id, label) VALUES (?1, ?2)")?;
    for label in &new.labels {
        insert_label.execute(params![id, label])?;
    }
    let mut insert_edge =
        tx.prepare_cached("INSERT INTO task_deps (task_id, depends_on) VALUES (?1, ?2)")?;
    for dep in &depends_on {
        insert_edge.execute(params![id, dep])?;
    }
    if let Some(parent) = &parent {
        tx.execute(
            "INSERT INTO task_links (task_id, kind, target) VALUES (?1, 'parent-child', ?2)",
            params![parent, id],
        )?;
    }
    if let Some(session) = &new.session {
        touch_session(tx, session, new.tool.as_deref(), now)?;
    }
    record(tx, Some(&id), created)?;
    load_task(tx, &id)
}

fn id_taken(tx: &Connection, id: &str) -> Result<bool> {
    Ok(tx
        .query_row("SELECT 1 FROM tasks WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Adds the edge `task -> depends_on` after checking it keeps the graph a DAG.
/// Adding an edge that exists already changes nothing.
pub(super) fn add_dependency(
    tx: &Connection,
    task: &str,
    depends_on: &str,
    actor: &str,
) -> Result<TaskRecord> {
    let (task, dep) = (load_task(tx, task)?, load_task(tx, depends_on)?);
    if !changes::new_dependency(&task, &dep, |id| dependencies_of(tx, id))? {
        return Ok(task);
    }
    tx.execute(
        "INSERT INTO task_deps (task_id, depends_on) VALUES (?1, ?2)",
        params![task.id, dep.id],
    )?;
    record(tx, Some(&task.id), changes::dependency_added(&dep, actor))?;
    settle_waiting(tx, &task.id, actor)?;
    load_task(tx, &task.id)
}

/// Removes the edge `task -> depends_on`; the task may become ready.
pub(super) fn remove_dependency(
    tx: &Connection,
    task: &str,
    depends_on: &str,
    actor: &str,
) -> Result<TaskRecord> {
    let task = load_task(tx, task)?;
    let dep_id = resolve_id(tx, depends_on)?;
    let removed = tx.execute(
        "DELETE FROM task_deps WHERE task_id = ?1 AND depends_on = ?2",
        params![task.id, dep_id],
    )?;
    let recorded = changes::dependency_removed(&task, &dep_id, removed, actor)?;
    record(tx, Some(&task.id), recorded)?;
    settle_waiting(tx, &task.id, actor)?;
    load_task(tx, &task.id)
}

/// Applies a scope change to a tracked task, recording before and after.
pub(super) fn edit(
    tx: &Connection,
    id: &str,
    edit: &TrackedEdit,
    actor: &str,
) -> Result<TaskRecord> {
    edit.validate().map_err(StoreError::Invalid)?;
    let task = load_task(tx, id)?;
    changes::require_tracked(&task, "`task edit`")?;
    tx.execute(
        "UPDATE tasks SET name = coalesce(?1, name), description = coalesce(?2, description),
                          priority = coalesce(?3, priority), updated_at = ?4
         WHERE id = ?5",
        params![
            edit.title.as_deref().map(str::trim),
            edit.description,
            edit.priority,
            now_millis(),
            task.id
        ],
    )?;
    // Added first, then removed: a label in both lists ends up removed.
    let mut add =
        tx.prepare_cached("INSERT OR IGNORE INTO task_labels (task_id, label) VALUES (?1, ?2)")?;
    for label in &edit.add_labels {
        add.execute(params![task.id, label])?;
    }
    let mut remove =
        tx.prepare_cached("DELETE FROM task_labels WHERE task_id = ?1 AND label = ?2")?;
    for label in &edit.remove_labels {
        remove.execute(params![task.id, label])?;
    }
    let edited = load_task(tx, &task.id)?;
    let edited_event = changes::edit_event(&task, &edited, edit, actor);
    record(tx, Some(&task.id), edited_event)?;
    Ok(edited)
}

/// Records files the work on `id` touched.
pub(super) fn add_files(
    tx: &Connection,
    id: &str,
    files: &[String],
    actor: &str,
) -> Result<TaskRecord> {
    let task = load_task(tx, id)?;
    let now = now_millis();
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO task_files (task_id, path, added_at) VALUES (?1, ?2, ?3)",
    )?;
    let mut added = Vec::new();
    for file in files {
        let file = changes::file_path(file)?;
        if insert.execute(params![task.id, file, now])? > 0 {
            added.push(file.to_owned());
        }
    }
    if let Some(recorded) = changes::files_added(&added, actor) {
        tx.execute(
            "UPDATE tasks SET updated_at = ?1 WHERE id = ?2",
            params![now, task.id],
        )?;
        record(tx, Some(&task.id), recorded)?;
    }
    load_task(tx, id)
}

/// Tracked tasks matching `filter`, oldest first (the newest `limit` when limited).
pub(super) fn list(conn: &Connection, filter: &TrackedFilter) -> Result<Vec<TaskRecord>> {
    let mut sql = format!("SELECT tasks.rowid AS row_order, {TASK_COLUMNS} FROM tasks");
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(label) = &filter.label {
        values.push(label.clone().into());
        sql.push_str(" JOIN task_labels tl ON tl.task_id = tasks.id AND tl.label = ?1");
    }
    match filter.status {
        Some(status) => {
            values.push(status.as_str().to_owned().into());
            sql.push_str(&format!(
                " WHERE tasks.kind = 'manual' AND tasks.status = ?{}",
                values.len()
            ));
        }
        // Newest first over all tracked tasks is a rowid walk; `+kind` keeps
        // SQLite from going through the kind index and sorting every row.
        None => sql.push_str(" WHERE +tasks.kind = 'manual'"),
    }
    let limit = filter.limit.map_or(-1, |l| l as i64);
    let sql =
        format!("SELECT * FROM ({sql} ORDER BY tasks.rowid DESC LIMIT {limit}) ORDER BY row_order");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), task_from_row)?;
    rows.map(|row| row?).collect()
}

/// The running tracked task `session` started last, and the one anyone did.
pub(super) fn current_candidates(
    conn: &Connection,
    session: Option<&str>,
) -> Result<Vec<TaskRecord>> {
    // Ids first, rows after: the listed columns (with their subqueries) are
    // computed for at most two tasks, however many run, and not prepared
    // when none runs.
    super::tasks_by_id_query(
        conn,
        "SELECT id FROM (SELECT id FROM tasks WHERE kind = 'manual' AND status = 'running'
                         AND session = ?1 ORDER BY started_at DESC LIMIT 1)
         UNION
         SELECT id FROM (SELECT id FROM tasks WHERE kind = 'manual' AND status = 'running'
                         ORDER BY started_at DESC LIMIT 1)",
        [session],
    )
}

/// Tracked tasks that succeeded, the most recently finished first.
pub(super) fn recently_succeeded(conn: &Connection, limit: usize) -> Result<Vec<TaskRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks
         WHERE kind = 'manual' AND status = 'succeeded'
         ORDER BY finished_at DESC LIMIT {}",
        super::limit_literal(limit)
    ))?;
    let rows = stmt.query_map([], task_from_row)?;
    rows.map(|row| row?).collect()
}

/// Unblocked, unstarted tracked tasks: highest priority first, then oldest.
pub(super) fn ready(conn: &Connection, limit: usize) -> Result<Vec<TaskRecord>> {
    let ids = format!(
        "SELECT id FROM tasks INDEXED BY tasks_ready
         WHERE kind = 'manual' AND status = 'pending'
         ORDER BY priority DESC, rowid LIMIT {}",
        super::limit_literal(limit)
    );
    super::tasks_by_id_query(conn, &ids, [])
}

/// After `id` changed to or from `succeeded`: re-decides `pending`/`blocked`
/// for the tasks waiting on it.
pub(super) fn refresh_dependents(tx: &Connection, id: &str, actor: &str) -> Result<()> {
    let dependents: Vec<String> = tx
        .prepare_cached("SELECT task_id FROM task_deps WHERE depends_on = ?1")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for dependent in dependents {
        settle_waiting(tx, &dependent, actor)?;
    }
    Ok(())
}

/// Moves a waiting task between `pending` and `blocked` to match its dependencies.
pub(super) fn settle_waiting(tx: &Connection, id: &str, actor: &str) -> Result<()> {
    let task = load_task(tx, id)?;
    let statuses = dependency_statuses(tx, &task.depends_on)?;
    let shut = super::gates::shut_of(tx, &task.id)?;
    match changes::settle(&task, &statuses, &shut, actor) {
        Some(change) => apply(tx, &task, change),
        None => Ok(()),
    }
}

/// What `id` waits for along blocking links: its dependencies and, for a
/// parent, its subtasks (the graph the cycle check walks).
pub(super) fn dependencies_of(conn: &Connection, id: &str) -> Result<Vec<String>> {
    let rows = conn
        .prepare_cached(
            "SELECT depends_on FROM task_deps WHERE task_id = ?1
             UNION SELECT target FROM task_links WHERE task_id = ?1 AND kind = 'parent-child'",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

pub(super) fn dependency_statuses(
    conn: &Connection,
    ids: &[String],
) -> Result<Vec<(String, Status)>> {
    let mut stmt = conn.prepare_cached("SELECT status FROM tasks WHERE id = ?1")?;
    ids.iter()
        .map(|id| {
            let status: Option<String> = stmt.query_row([id], |r| r.get(0)).optional()?;
            // A dependency whose task is gone can never succeed: it blocks.
            let status = status.and_then(|s| s.parse().ok()).unwrap_or(Status::Lost);
            Ok((id.clone(), status))
        })
        .collect()
}

/// Compacts closed tasks (decay): each keeps its original description and
/// note in `task_originals` and holds the summary instead. One refusal
/// refuses them all (the caller's transaction rolls back).
pub(super) fn compact(
    tx: &Connection,
    summaries: &[CompactSummary],
    actor: &str,
) -> Result<Vec<TaskRecord>> {
    let mut compacted = Vec::with_capacity(summaries.len());
    for entry in summaries {
        let task = load_task(tx, &entry.id)?;
        changes::check_compactable(&task, original(tx, &task.id)?.is_some(), &entry.summary)?;
        let now = now_millis();
        tx.execute(
            "INSERT INTO task_originals (task_id, description, note, compacted_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![task.id, task.description, task.note, now],
        )?;
        let summary = entry.summary.trim();
        tx.execute(
            "UPDATE tasks SET description = ?1, note = NULL, updated_at = ?2 WHERE id = ?3",
            params![summary, now, task.id],
        )?;
        record(
            tx,
            Some(&task.id),
            changes::compacted_event(&task, summary, actor),
        )?;
        compacted.push(load_task(tx, &task.id)?);
    }
    Ok(compacted)
}

/// Gives a compacted task its original description and note back.
pub(super) fn restore(tx: &Connection, id: &str, actor: &str) -> Result<TaskRecord> {
    let task = load_task(tx, id)?;
    let Some(original) = original(tx, &task.id)? else {
        return Err(changes::nothing_to_restore(&task));
    };
    // The original row goes first: the update's trigger then indexes the
    // restored text alone.
    tx.execute("DELETE FROM task_originals WHERE task_id = ?1", [&task.id])?;
    tx.execute(
        "UPDATE tasks SET description = ?1, note = ?2, updated_at = ?3 WHERE id = ?4",
        params![original.description, original.note, now_millis(), task.id],
    )?;
    record(tx, Some(&task.id), changes::restored_event(&task, actor))?;
    load_task(tx, &task.id)
}

/// The original text of a compacted task; `None` when it is not compacted.
pub(super) fn original(conn: &Connection, id: &str) -> Result<Option<Original>> {
    let id = resolve_id(conn, id)?;
    Ok(conn
        .query_row(
            "SELECT description, note, compacted_at FROM task_originals WHERE task_id = ?1",
            [&id],
            |r| {
                Ok(Original {
                    description: r.get(0)?,
                    note: r.get(1)?,
                    compacted_at: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Closed tracked tasks that ended before `cutoff` and are not compacted,
/// oldest first, at most `limit`.
pub(super) fn compact_candidates(
    conn: &Connection,
    cutoff: Millis,
    limit: usize,
) -> Result<Vec<TaskRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks
         WHERE kind = 'manual' AND finished_at < ?1
           AND NOT EXISTS (SELECT 1 FROM task_originals o WHERE o.task_id = tasks.id)
         ORDER BY finished_at, rowid LIMIT {}",
        super::limit_literal(limit)
    ))?;
    let rows = stmt.query_map([cutoff], task_from_row)?;
    let tasks: Vec<TaskRecord> = rows.map(|row| row?).collect::<Result<_>>()?;
    Ok(tasks
        .into_iter()
        .filter(|t| compactable(t, false, cutoff))
        .collect())
}
