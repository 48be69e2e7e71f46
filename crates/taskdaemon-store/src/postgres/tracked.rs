//! Tracked (`manual`) tasks in PostgreSQL: the same operations and the same
//! invariant as SQLite's `tracked.rs` (a not-yet-started task is `pending`
//! exactly when every dependency succeeded), through the same core rules
//! ([`check_new_edge`], [`waiting_status`]).

use taskdaemon_core::decay::{CompactSummary, Original, compactable};
use taskdaemon_core::time::Millis;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{NewTracked, Status, TaskRecord, TrackedEdit};

use super::events::record;
use super::rows::{TASK_COLUMNS, task_from_row};
use super::{Tx, apply, load_task, lock_task, memory::touch_session, next_task_id, resolve_id};
use crate::encoding::to_json_text;
use crate::{Result, StoreError, TrackedFilter, changes};

/// Serialises changes to the dependency graph: two edges added at once
/// could each keep the graph a DAG and together close a cycle.
pub(super) fn lock_graph(tx: &mut Tx<'_>) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.taskdaemon.graph'))",
        &[],
    )?;
    Ok(())
}

/// Creates a tracked task, its labels and dependency edges, and its
/// `created` event.
pub(super) fn create(tx: &mut Tx<'_>, new: &NewTracked, actor: &str) -> Result<TaskRecord> {
    new.validate().map_err(StoreError::Invalid)?;
    let depends_on = dependency_ids(tx, &new.depends_on)?;
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
            tx,
            new,
            |tx| next_task_id(tx, new.tool.as_deref()),
            id_taken,
        )?,
    };
    let now = now_millis();
    tx.execute(
        "INSERT INTO tasks (uuid, id, kind, name, tool, session, status, argv, env, restart,
                            description, priority, created_at, updated_at)
         VALUES ($1, $2, 'manual', $3, $4, $5, $6, '[]', '[]', $7, $8, $9, $10, $10)",
        &[
            &uuid.to_string(),
            &id,
            &new.title.trim(),
            &new.tool,
            &new.session,
            &status.as_str(),
            &to_json_text(&taskdaemon_core::RestartPolicy::default()),
            &new.description,
            &i64::from(new.priority),
            &now,
        ],
    )?;
    tx.execute(
        "INSERT INTO task_labels (task_id, label) SELECT $1, unnest($2::text[])
         ON CONFLICT DO NOTHING",
        &[&id, &new.labels],
    )?;
    tx.execute(
        "INSERT INTO task_deps (task_id, depends_on) SELECT $1, unnest($2::text[])",
        &[&id, &depends_on],
    )?;
    if let Some(parent) = &parent {
        tx.execute(
            "INSERT INTO task_links (task_id, kind, target) VALUES ($1, 'parent-child', $2)",
            &[parent, &id],
        )?;
    }
    if let Some(session) = &new.session {
        touch_session(tx, session, new.tool.as_deref(), now)?;
    }
    record(tx, Some(&id), created)?;
    load_task(tx, &id)
}

fn id_taken(tx: &mut Tx<'_>, id: &str) -> Result<bool> {
    Ok(tx
        .query_opt("SELECT 1 FROM tasks WHERE id = $1", &[&id])?
        .is_some())
}

/// The stored ids of the tasks `ids` name, each once, in their order.
fn dependency_ids(tx: &mut Tx<'_>, ids: &[String]) -> Result<Vec<String>> {
    let mut found: Vec<String> = Vec::with_capacity(ids.len());
    for dep in ids {
        let id = load_task(tx, dep)?.id;
        if !found.contains(&id) {
            found.push(id);
        }
    }
    Ok(found)
}

/// Adds the edge `task -> depends_on` under the graph lock, after checking
/// it keeps the graph a DAG; an edge that exists already changes nothing.
pub(super) fn add_dependency(
    tx: &mut Tx<'_>,
    task: &str,
    depends_on: &str,
    actor: &str,
) -> Result<TaskRecord> {
    lock_graph(tx)?;
    let task = lock_task(tx, task)?;
    let dep = load_task(tx, depends_on)?;
    if !changes::new_dependency(&task, &dep, |id| dependencies_of(tx, id))? {
        return Ok(task);
    }
    tx.execute(
        "INSERT INTO task_deps (task_id, depends_on) VALUES ($1, $2)",
        &[&task.id, &dep.id],
    )?;
    record(tx, Some(&task.id), changes::dependency_added(&dep, actor))?;
    settle_waiting(tx, &task.id, actor)?;
    load_task(tx, &task.id)
}

/// Removes the edge `task -> depends_on` under the graph lock; the task
/// may become ready.
pub(super) fn remove_dependency(
    tx: &mut Tx<'_>,
    task: &str,
    depends_on: &str,
    actor: &str,
) -> Result<TaskRecord> {
    lock_graph(tx)?;
    let task = lock_task(tx, task)?;
    let dep_id = resolve_id(tx, depends_on)?;
    let removed = tx.execute(
        "DELETE FROM task_deps WHERE task_id = $1 AND depends_on = $2",
        &[&task.id, &dep_id],
    )?;
    let recorded = changes::dependency_removed(&task, &dep_id, removed as usize, actor)?;
    record(tx, Some(&task.id), recorded)?;
    settle_waiting(tx, &task.id, actor)?;
    load_task(tx, &task.id)
}

/// Applies a scope change to a tracked task, recording before and after.
pub(super) fn edit(
    tx: &mut Tx<'_>,
    id: &str,
    edit: &TrackedEdit,
    actor: &str,
) -> Result<TaskRecord> {
    edit.validate().map_err(StoreError::Invalid)?;
    let task = lock_task(tx, id)?;
    changes::require_tracked(&task, "`task edit`")?;
    tx.execute(
        "UPDATE tasks SET name = coalesce($1, name), description = coalesce($2, description),
                          priority = coalesce($3, priority), updated_at = $4
         WHERE id = $5",
        &[
            &edit.title.as_deref().map(str::trim),
            &edit.description,
            &edit.priority.map(i64::from),
            &now_millis(),
            &task.id,
        ],
    )?;
    // Added first, then removed: a label in both lists ends up removed.
    tx.execute(
        "INSERT INTO task_labels (task_id, label) SELECT $1, unnest($2::text[])
         ON CONFLICT DO NOTHING",
        &[&task.id, &edit.add_labels],
    )?;
    tx.execute(
        "DELETE FROM task_labels WHERE task_id = $1 AND label = ANY($2)",
        &[&task.id, &edit.remove_labels],
    )?;
    let edited = load_task(tx, &task.id)?;
    let edited_event = changes::edit_event(&task, &edited, edit, actor);
    record(tx, Some(&task.id), edited_event)?;
    Ok(edited)
}

/// Records files the work on `id` touched.
pub(super) fn add_files(
    tx: &mut Tx<'_>,
    id: &str,
    files: &[String],
    actor: &str,
) -> Result<TaskRecord> {
    let task = lock_task(tx, id)?;
    let now = now_millis();
    let insert = tx.prepare(
        "INSERT INTO task_files (task_id, path, added_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )?;
    let mut added = Vec::new();
    for file in files {
        let file = changes::file_path(file)?;
        if tx.execute(&insert, &[&task.id, &file, &now])? > 0 {
            added.push(file.to_owned());
        }
    }
    if let Some(recorded) = changes::files_added(&added, actor) {
        tx.execute(
            "UPDATE tasks SET updated_at = $1 WHERE id = $2",
            &[&now, &task.id],
        )?;
        record(tx, Some(&task.id), recorded)?;
    }
    load_task(tx, id)
}

pub(super) fn list(tx: &mut Tx<'_>, filter: &TrackedFilter) -> Result<Vec<TaskRecord>> {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks");
    let mut params: Vec<String> = Vec::new();
    if let Some(label) = &filter.label {
        params.push(label.clone());
        sql.push_str(" JOIN task_labels tl ON tl.task_id = tasks.id AND tl.label = $1");
    }
    sql.push_str(" WHERE tasks.kind = 'manual'");
    if let Some(status) = filter.status {
        params.push(status.as_str().to_owned());
        sql.push_str(&format!(" AND tasks.status = ${}", params.len()));
    }
    let limit = filter
        .limit
        .map_or_else(|| "ALL".to_owned(), |l| l.to_string());
    let sql = format!(
        "SELECT * FROM ({sql} ORDER BY tasks.search_key DESC LIMIT {limit}) t ORDER BY search_key"
    );
    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect();
    tx.query(&sql, &refs)?.iter().map(task_from_row).collect()
}

pub(super) fn current_candidates(
    tx: &mut Tx<'_>,
    session: Option<&str>,
) -> Result<Vec<TaskRecord>> {
    tx.query(
        &format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id IN (
               (SELECT id FROM tasks WHERE kind = 'manual' AND status = 'running'
                AND session = $1 ORDER BY started_at DESC LIMIT 1)
               UNION
               (SELECT id FROM tasks WHERE kind = 'manual' AND status = 'running'
                ORDER BY started_at DESC LIMIT 1))"
        ),
        &[&session],
    )?
    .iter()
    .map(task_from_row)
    .collect()
}

pub(super) fn recently_succeeded(tx: &mut Tx<'_>, limit: usize) -> Result<Vec<TaskRecord>> {
    tx.query(
        &format!(
            "SELECT {TASK_COLUMNS} FROM tasks
             WHERE kind = 'manual' AND status = 'succeeded'
             ORDER BY finished_at DESC NULLS LAST LIMIT $1"
        ),
        &[&(limit as i64)],
    )?
    .iter()
    .map(task_from_row)
    .collect()
}

pub(super) fn ready(tx: &mut Tx<'_>, limit: usize) -> Result<Vec<TaskRecord>> {
    tx.query(
        &format!(
            "SELECT {TASK_COLUMNS} FROM tasks
             WHERE kind = 'manual' AND status = 'pending'
             ORDER BY priority DESC, search_key LIMIT $1"
        ),
        &[&(limit as i64)],
    )?
    .iter()
    .map(task_from_row)
    .collect()
}

pub(super) fn refresh_dependents(tx: &mut Tx<'_>, id: &str, actor: &str) -> Result<()> {
    let dependents: Vec<String> = tx
        .query_cached(
            "SELECT task_id FROM task_deps WHERE depends_on = $1 ORDER BY task_id",
            &[(&id, postgres::types::Type::TEXT)],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for dependent in dependents {
        settle_waiting(tx, &dependent, actor)?;
    }
    Ok(())
}

/// Moves a waiting task between `pending` and `blocked` to match its
/// dependencies, under its row lock.
pub(super) fn settle_waiting(tx: &mut Tx<'_>, id: &str, actor: &str) -> Result<()> {
    let task = lock_task(tx, id)?;
    let statuses = dependency_statuses(tx, &task.depends_on)?;
    let shut = super::gates::shut_of(tx, &task.id)?;
    match changes::settle(&task, &statuses, &shut, actor) {
        Some(change) => apply(tx, &task, change),
        None => Ok(()),
    }
}

/// What `id` waits for along blocking links: its dependencies and, for a
/// parent, its subtasks (the graph the cycle check walks).
pub(super) fn dependencies_of(tx: &mut Tx<'_>, id: &str) -> Result<Vec<String>> {
    Ok(tx
        .query(
            "SELECT depends_on FROM task_deps WHERE task_id = $1
             UNION SELECT target FROM task_links WHERE task_id = $1 AND kind = 'parent-child'",
            &[&id],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

pub(super) fn dependency_statuses(
    tx: &mut Tx<'_>,
    ids: &[String],
) -> Result<Vec<(String, Status)>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let status: Option<String> = tx
            .query_opt("SELECT status FROM tasks WHERE id = $1", &[id])?
            .map(|r| r.get(0));
        // A dependency whose task is gone can never succeed: it blocks.
        let status = status.and_then(|s| s.parse().ok()).unwrap_or(Status::Lost);
        out.push((id.clone(), status));
    }
    Ok(out)
}

/// Compacts closed tasks (decay); see SQLite's `tracked::compact`.
pub(super) fn compact(
    tx: &mut Tx<'_>,
    summaries: &[CompactSummary],
    actor: &str,
) -> Result<Vec<TaskRecord>> {
    let mut compacted = Vec::with_capacity(summaries.len());
    for entry in summaries {
        let task = lock_task(tx, &entry.id)?;
        let already = original(tx, &task.id)?.is_some();
        changes::check_compactable(&task, already, &entry.summary)?;
        let now = now_millis();
        tx.execute(
            "INSERT INTO task_originals (task_id, description, note, compacted_at)
             VALUES ($1, $2, $3, $4)",
            &[&task.id, &task.description, &task.note, &now],
        )?;
        let summary = entry.summary.trim();
        tx.execute(
            "UPDATE tasks SET description = $1, note = NULL, updated_at = $2 WHERE id = $3",
            &[&summary, &now, &task.id],
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
pub(super) fn restore(tx: &mut Tx<'_>, id: &str, actor: &str) -> Result<TaskRecord> {
    let task = lock_task(tx, id)?;
    let Some(original) = original(tx, &task.id)? else {
        return Err(changes::nothing_to_restore(&task));
    };
    // The original row goes first: the update's trigger then indexes the
    // restored text alone.
    tx.execute("DELETE FROM task_originals WHERE task_id = $1", &[&task.id])?;
    tx.execute(
        "UPDATE tasks SET description = $1, note = $2, updated_at = $3 WHERE id = $4",
        &[
            &original.description,
            &original.note,
            &now_millis(),
            &task.id,
        ],
    )?;
    record(tx, Some(&task.id), changes::restored_event(&task, actor))?;
    load_task(tx, &task.id)
}

/// The original text of a compacted task; `None` when it is not compacted.
pub(super) fn original(tx: &mut Tx<'_>, id: &str) -> Result<Option<Original>> {
    let id = resolve_id(tx, id)?;
    Ok(tx
        .query_opt(
            "SELECT description, note, compacted_at FROM task_originals WHERE task_id = $1",
            &[&id],
        )?
        .map(|r| Original {
            description: r.get(0),
            note: r.get(1),
            compacted_at: r.get(2),
        }))
}

/// Closed tracked tasks that ended before `cutoff` and are not compacted,
/// oldest first, at most `limit`.
pub(super) fn compact_candidates(
    tx: &mut Tx<'_>,
    cutoff: Millis,
    limit: usize,
) -> Result<Vec<TaskRecord>> {
    let rows = tx.query(
        &format!(
            "SELECT {TASK_COLUMNS} FROM tasks
             WHERE kind = 'manual' AND finished_at < $1
               AND NOT EXISTS (SELECT 1 FROM task_originals o WHERE o.task_id = tasks.id)
             ORDER BY finished_at, search_key LIMIT $2"
        ),
        &[&cutoff, &(limit as i64)],
    )?;
    let tasks = rows
        .iter()
        .map(task_from_row)
        .collect::<Result<Vec<TaskRecord>>>()?;
    Ok(tasks
        .into_iter()
        .filter(|t| compactable(t, false, cutoff))
        .collect())
}
