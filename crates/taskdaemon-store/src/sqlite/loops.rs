//! LLM loops in SQLite: a `loop` task row plus a `loops` row holding the
//! engine's spec and the counters each finished iteration adds to.
//!
//! Recording an iteration is idempotent by iteration number, so a daemon that
//! resumes a loop after a crash may replay what its progress log holds
//! without counting anything twice.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;
use taskdaemon_core::loops::LOOP_TOOL;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{
    ConfigVersion, LoopEnd, LoopIteration, LoopRecord, NewConfigVersion, NewLoop, Status, TaskKind,
    TaskRecord,
};
use uuid::Uuid;

use super::events::record;
use super::{apply, insert_event, load_task, next_task_id, opt, touch_session};
use crate::encoding::{parse_json, to_json_text};
use crate::{Result, StoreError, changes};

const LOOP_COLUMNS: &str = "spec, iterations, tool_calls, input_tokens, output_tokens, cost_usd, \
     last_exit, cache_read_tokens, cache_write_tokens";

/// Creates a `pending` loop task, its spec row and its `created` event.
pub(super) fn create(tx: &Connection, new: &NewLoop, actor: &str) -> Result<LoopRecord> {
    let created = changes::loop_created(new, actor)?;
    let id = next_task_id(tx, Some(LOOP_TOOL))?;
    let now = now_millis();
    let mut insert = tx.prepare_cached(
        "INSERT INTO tasks (uuid, id, kind, name, tool, session, status, argv, cwd, env,
                            restart, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, '[]', ?10, ?11, ?11)",
    )?;
    insert.execute(params![
        Uuid::now_v7().to_string(),
        id,
        TaskKind::Loop.as_str(),
        new.name,
        LOOP_TOOL,
        new.session,
        Status::Pending.as_str(),
        to_json_text(&new.argv),
        new.workdir,
        to_json_text(&taskdaemon_core::RestartPolicy::default()),
        now,
    ])?;
    tx.execute(
        "INSERT INTO loops (task_id, spec) VALUES (?1, ?2)",
        params![id, new.spec.to_string()],
    )?;
    if let Some(session) = &new.session {
        touch_session(tx, session, Some(LOOP_TOOL), now)?;
    }
    record(tx, Some(&id), created)?;
    load(tx, &id)
}

/// One loop with its counters; `NotFound` for a missing id or a task that is not a loop.
pub(super) fn load(conn: &Connection, id: &str) -> Result<LoopRecord> {
    let task = load_task(conn, id)?;
    with_counters(conn, task)
}

fn with_counters(conn: &Connection, task: TaskRecord) -> Result<LoopRecord> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {LOOP_COLUMNS} FROM loops WHERE task_id = ?1"
        ))?
        .query_row([&task.id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, f64>(5)?,
                r.get::<_, Option<i32>>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, i64>(8)?,
            ))
        })
        .optional()?;
    let Some((
        spec,
        iterations,
        tool_calls,
        input_tokens,
        output_tokens,
        cost_usd,
        last_exit,
        cache_read,
        cache_write,
    )) = row
    else {
        return Err(StoreError::NotFound(format!("{} (as a loop)", task.id)));
    };
    let spec = parse_json("loops.spec", &spec)?;
    Ok(LoopRecord {
        task,
        spec,
        iterations: iterations as u32,
        tool_calls: tool_calls as u64,
        input_tokens: input_tokens as u64,
        output_tokens: output_tokens as u64,
        cache_read_tokens: cache_read as u64,
        cache_write_tokens: cache_write as u64,
        cost_usd,
        last_validation_exit_code: last_exit,
    })
}

/// Loops, oldest first; only those not ended unless `all`.
pub(super) fn list(conn: &Connection, all: bool) -> Result<Vec<LoopRecord>> {
    let mut ids = "SELECT id FROM tasks WHERE kind = 'loop'".to_owned();
    if !all {
        ids.push_str(" AND status IN ('pending', 'blocked', 'running')");
    }
    ids.push_str(" ORDER BY rowid");
    super::tasks_by_id_query(conn, &ids, [])?
        .into_iter()
        .map(|task| with_counters(conn, task))
        .collect()
}

/// `pending -> running`; a loop that is already running (its daemon died)
/// stays so and gets an `adopted` event saying where it resumes.
pub(super) fn mark_running(
    tx: &Connection,
    id: &str,
    next_iteration: u32,
    actor: &str,
) -> Result<LoopRecord> {
    let record = load(tx, id)?;
    let task = &record.task;
    match changes::loop_start(task, next_iteration, now_millis(), actor) {
        (Some(change), _) => apply(tx, task, change)?,
        (None, adopted) => {
            let resume = json!({ "next_iteration": next_iteration });
            insert_event(tx, Some(&task.id), &adopted, None, Some(resume))?;
        }
    }
    load(tx, id)
}

/// Adds a finished iteration to the counters with its event. Returns false
/// (and changes nothing) when that iteration was recorded already.
pub(super) fn record_iteration(
    tx: &Connection,
    id: &str,
    it: &LoopIteration,
    actor: &str,
) -> Result<bool> {
    let current = load(tx, id)?;
    let Some(recorded) = changes::loop_iteration(&current, it, actor)? else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE loops SET iterations = ?1, tool_calls = tool_calls + ?2,
            input_tokens = input_tokens + ?3, output_tokens = output_tokens + ?4,
            cost_usd = cost_usd + ?5, last_exit = ?6,
            cache_read_tokens = cache_read_tokens + ?8,
            cache_write_tokens = cache_write_tokens + ?9
         WHERE task_id = ?7",
        params![
            it.iteration,
            it.tool_calls,
            it.input_tokens as i64,
            it.output_tokens as i64,
            it.cost_usd,
            opt(it.validation_exit_code),
            current.task.id,
            it.cache_read_tokens as i64,
            it.cache_write_tokens as i64,
        ],
    )?;
    tx.execute(
        "UPDATE tasks SET updated_at = ?1 WHERE id = ?2",
        params![now_millis(), current.task.id],
    )?;
    super::pipeline::charge_iteration(tx, &current.task.id, it)?;
    record(tx, Some(&current.task.id), recorded)?;
    Ok(true)
}

/// Ends a loop through the state machine, keeping the reason as its note.
pub(super) fn finish(tx: &Connection, id: &str, end: &LoopEnd, actor: &str) -> Result<LoopRecord> {
    let record = load(tx, id)?;
    apply(
        tx,
        &record.task,
        changes::loop_end(end, now_millis(), actor),
    )?;
    load(tx, id)
}

const CONFIG_COLUMNS: &str = "version, digest, file, loaded_at, type_names";

/// Records a configuration version unless the newest has the same digest
/// (then that one is returned), with its `config_loaded` event.
pub(super) fn record_config(
    tx: &Connection,
    new: &NewConfigVersion,
    actor: &str,
) -> Result<ConfigVersion> {
    let newest = config_versions(tx, 1)?.into_iter().next();
    if !changes::config_is_new(newest.as_ref(), new)
        && let Some(newest) = newest
    {
        return Ok(newest);
    }
    tx.execute(
        "INSERT INTO config_versions (digest, file, loaded_at, type_names, types)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            new.digest,
            new.file,
            now_millis(),
            to_json_text(&new.type_names),
            new.types.to_string(),
        ],
    )?;
    let version = tx.last_insert_rowid();
    insert_event(
        tx,
        None,
        &changes::config_loaded(new, version, actor),
        None,
        None,
    )?;
    config_version(tx, version)
}

/// Versions, newest first, without their types.
pub(super) fn config_versions(conn: &Connection, limit: usize) -> Result<Vec<ConfigVersion>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONFIG_COLUMNS}, 'null' FROM config_versions ORDER BY version DESC LIMIT {}",
        super::limit_literal(limit)
    ))?;
    let rows = stmt.query_map([], config_row)?;
    rows.map(|row| config_from_row(row?)).collect()
}

/// One version with its resolved types.
pub(super) fn config_version(conn: &Connection, version: i64) -> Result<ConfigVersion> {
    let found = conn
        .query_row(
            &format!("SELECT {CONFIG_COLUMNS}, types FROM config_versions WHERE version = ?1"),
            [version],
            config_row,
        )
        .optional()?;
    match found {
        Some(row) => config_from_row(row),
        None => Err(StoreError::NotFound(format!(
            "configuration version {version}"
        ))),
    }
}

type ConfigRow = (i64, String, Option<String>, i64, String, String);

fn config_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConfigRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn config_from_row(row: ConfigRow) -> Result<ConfigVersion> {
    let (version, digest, file, loaded_at, names, types) = row;
    Ok(ConfigVersion {
        version,
        digest,
        file,
        loaded_at,
        type_names: parse_json("config_versions.type_names", &names)?,
        types: parse_json("config_versions.types", &types)?,
    })
}
