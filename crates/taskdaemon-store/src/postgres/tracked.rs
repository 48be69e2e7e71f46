//! Tracked (`manual`) tasks in PostgreSQL: the same operations and the same
//! invariant as SQLite's `tracked.rs` (a not-yet-started task is `pending`
//! exactly when every dependency succeeded), through the same core rules
//! ([`check_new_edge`], [`waiting_status`]).

use serde_json::json;
use taskdaemon_core::graph::{check_new_edge, satisfies, waiting_status};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{
    EventKind, HumanId, NewEvent, NewTracked, Status, TaskRecord, TrackedAction, TrackedEdit,
};
use uuid::Uuid;

use super::rows::{TASK_COLUMNS, task_from_row};
use super::{
    Tx, apply, insert_event, load_task, lock_task, memory::touch_session, next_counter, resolve_id,
};
use crate::changes::Change;
use crate::{Result, StoreError, TrackedFilter, changes};

/// Serialises changes to the dependency graph: two edges added at once
/// could each keep the graph a DAG and together close a cycle.
fn lock_graph(tx: &mut Tx<'_>) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.taskdaemon.graph'))",
        &[],
    )?;
    Ok(())
}

pub(super) fn create(tx: &mut Tx<'_>, new: &NewTracked, actor: &str) -> Result<TaskRecord> {
    new.validate().map_err(StoreError::Invalid)?;
    let mut depends_on = Vec::new();
    for dep in &new.depends_on {
        let id = load_task(tx, dep)?.id;
        if !depends_on.contains(&id) {
            depends_on.push(id);
        }
    }
    let number = next_counter(tx, "task_id")?;
    let id = HumanId::for_tool(new.tool.as_deref(), number)?.to_string();
    let statuses = dependency_statuses(tx, &depends_on)?;
    let status = waiting_status(statuses.iter().map(|(_, s)| *s));
    let now = now_millis();
    tx.execute(
        "INSERT INTO tasks (uuid, id, kind, name, tool, session, status, argv, env, restart,
                            description, priority, created_at, updated_at)
         VALUES ($1, $2, 'manual', $3, $4, $5, $6, '[]', '[]', $7, $8, $9, $10, $10)",
        &[
            &Uuid::now_v7().to_string(),
            &id,
            &new.title.trim(),
            &new.tool,
            &new.session,
            &status.as_str(),
            &serde_json::to_string(&taskdaemon_core::RestartPolicy::default()).unwrap_or_default(),
            &new.description,
            &i64::from(new.priority),
            &now,
        ],
    )?;
    for label in &new.labels {
        tx.execute(
            "INSERT INTO task_labels (task_id, label) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id, label],
        )?;
    }
    for dep in &depends_on {
        tx.execute(
            "INSERT INTO task_deps (task_id, depends_on) VALUES ($1, $2)",
            &[&id, dep],
        )?;
    }
    if let Some(session) = &new.session {
        touch_session(tx, session, new.tool.as_deref(), now)?;
    }
    let mut message = new.title.trim().to_owned();
    if status == Status::Blocked {
        message.push_str(&format!(" (blocked by {})", unmet_list(&statuses)));
    }
    insert_event(
        tx,
        Some(&id),
        &NewEvent::new(EventKind::Created, actor, message),
        None,
        Some(json!({ "status": status.as_str(), "depends_on": depends_on })),
    )?;
    load_task(tx, &id)
}

pub(super) fn add_dependency(
    tx: &mut Tx<'_>,
    task: &str,
    depends_on: &str,
    actor: &str,
) -> Result<TaskRecord> {
    lock_graph(tx)?;
    let task = lock_task(tx, task)?;
    let dep = load_task(tx, depends_on)?;
    if !matches!(task.status, Status::Pending | Status::Blocked) {
        return Err(StoreError::Conflict(format!(
            "{} is {}: dependencies can only be added to work that has not started",
            task.id, task.status
        )));
    }
    check_new_edge(&task.id, &dep.id, |id| dependencies_of(tx, id))?
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    if task.depends_on.contains(&dep.id) {
        return Ok(task);
    }
    tx.execute(
        "INSERT INTO task_deps (task_id, depends_on) VALUES ($1, $2)",
        &[&task.id, &dep.id],
    )?;
    insert_event(
        tx,
        Some(&task.id),
        &NewEvent::new(
            EventKind::DependencyAdded,
            actor,
            format!("depends on {} ({})", dep.id, dep.status),
        ),
        None,
        Some(json!({ "depends_on": dep.id })),
    )?;
    settle_waiting(tx, &task.id, actor)?;
    load_task(tx, &task.id)
}

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
    if removed == 0 {
        return Err(StoreError::NotFound(format!(
            "{dep_id} (as a dependency of {})",
            task.id
        )));
    }
    insert_event(
        tx,
        Some(&task.id),
        &NewEvent::new(
            EventKind::DependencyRemoved,
            actor,
            format!("no longer depends on {dep_id}"),
        ),
        Some(json!({ "depends_on": dep_id })),
        None,
    )?;
    settle_waiting(tx, &task.id, actor)?;
    load_task(tx, &task.id)
}

/// Applies `action` (start, done, fail, cancel) to a tracked task.
pub(super) fn act(
    tx: &mut Tx<'_>,
    id: &str,
    action: &TrackedAction,
    actor: &str,
) -> Result<TaskRecord> {
    let task = lock_task(tx, id)?;
    let unmet = || Ok(unmet_list(&dependency_statuses(tx, &task.depends_on)?));
    let change = changes::tracked_action(&task, action, unmet, now_millis(), actor)?;
    apply(tx, &task, change)?;
    load_task(tx, id)
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
    for label in &edit.add_labels {
        tx.execute(
            "INSERT INTO task_labels (task_id, label) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&task.id, label],
        )?;
    }
    for label in &edit.remove_labels {
        tx.execute(
            "DELETE FROM task_labels WHERE task_id = $1 AND label = $2",
            &[&task.id, label],
        )?;
    }
    let edited = load_task(tx, &task.id)?;
    let (before, after, event) = changes::edit_event(&task, &edited, edit, actor);
    insert_event(tx, Some(&task.id), &event, Some(before), Some(after))?;
    Ok(edited)
}

pub(super) fn add_files(
    tx: &mut Tx<'_>,
    id: &str,
    files: &[String],
    actor: &str,
) -> Result<TaskRecord> {
    let task = lock_task(tx, id)?;
    let now = now_millis();
    let mut added = Vec::new();
    for file in files {
        let file = file.trim();
        if file.is_empty() {
            return Err(StoreError::Invalid(
                "a file path must not be empty".to_owned(),
            ));
        }
        let inserted = tx.execute(
            "INSERT INTO task_files (task_id, path, added_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&task.id, &file, &now],
        )?;
        if inserted > 0 {
            added.push(file.to_owned());
        }
    }
    if !added.is_empty() {
        tx.execute(
            "UPDATE tasks SET updated_at = $1 WHERE id = $2",
            &[&now, &task.id],
        )?;
        insert_event(
            tx,
            Some(&task.id),
            &NewEvent::new(
                EventKind::ContextUpdated,
                actor,
                format!("files: {}", added.join(", ")),
            ),
            None,
            Some(json!({ "files_modified": added })),
        )?;
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
        .query_typed(
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

fn settle_waiting(tx: &mut Tx<'_>, id: &str, actor: &str) -> Result<()> {
    let task = lock_task(tx, id)?;
    if !matches!(task.status, Status::Pending | Status::Blocked) {
        return Ok(());
    }
    let statuses = dependency_statuses(tx, &task.depends_on)?;
    let wanted = waiting_status(statuses.iter().map(|(_, s)| *s));
    if wanted == task.status {
        return Ok(());
    }
    let event = if wanted == Status::Blocked {
        NewEvent::new(
            EventKind::Blocked,
            actor,
            format!("blocked by {}", unmet_list(&statuses)),
        )
    } else {
        NewEvent::new(EventKind::Unblocked, actor, "every dependency is done")
    };
    apply(
        tx,
        &task,
        Change {
            to: wanted,
            columns: Vec::new(),
            event,
        },
    )
}

fn dependencies_of(tx: &mut Tx<'_>, id: &str) -> Result<Vec<String>> {
    Ok(tx
        .query(
            "SELECT depends_on FROM task_deps WHERE task_id = $1",
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

fn unmet_list(statuses: &[(String, Status)]) -> String {
    statuses
        .iter()
        .filter(|(_, s)| !satisfies(*s))
        .map(|(id, s)| format!("{id} ({s})"))
        .collect::<Vec<_>>()
        .join(", ")
}
