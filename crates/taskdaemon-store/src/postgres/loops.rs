//! LLM loops in PostgreSQL: a `loop` task row plus a `loops` row holding the
//! engine's spec and the counters each finished iteration adds to. The same
//! rules as SQLite's (`sqlite/loops.rs`): recording an iteration is
//! idempotent by iteration number, so a resumed loop may replay its progress.

use serde_json::json;
use taskdaemon_core::loops::LOOP_TOOL;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{
    ConfigVersion, LoopEnd, LoopIteration, LoopRecord, NewConfigVersion, NewLoop, Status, TaskKind,
    TaskRecord,
};
use uuid::Uuid;

use super::events::record;
use super::rows::{TASK_COLUMNS, task_from_row};
use super::{Tx, apply, insert_event, load_task, lock_task, memory, next_task_id};
use crate::encoding::{parse_json, to_json_text};
use crate::{Result, StoreError, changes};

const LOOP_COLUMNS: &str = "spec, iterations, tool_calls, input_tokens, output_tokens, cost_usd, \
     last_exit, cache_read_tokens, cache_write_tokens";

/// Creates a `pending` loop task, its spec row and its `created` event.
pub(super) fn create(tx: &mut Tx<'_>, new: &NewLoop, actor: &str) -> Result<LoopRecord> {
    let created = changes::loop_created(new, actor)?;
    let id = next_task_id(tx, Some(LOOP_TOOL))?;
    let now = now_millis();
    tx.execute(
        "INSERT INTO tasks (uuid, id, kind, name, tool, session, status, argv, cwd, env,
                            restart, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '[]', $10, $11, $11)",
        &[
            &Uuid::now_v7().to_string(),
            &id,
            &TaskKind::Loop.as_str(),
            &new.name,
            &LOOP_TOOL,
            &new.session,
            &Status::Pending.as_str(),
            &to_json_text(&new.argv),
            &new.workdir,
            &to_json_text(&taskdaemon_core::RestartPolicy::default()),
            &now,
        ],
    )?;
    tx.execute(
        "INSERT INTO loops (task_id, spec) VALUES ($1, $2)",
        &[&id, &new.spec.to_string()],
    )?;
    if let Some(session) = &new.session {
        memory::touch_session(tx, session, Some(LOOP_TOOL), now)?;
    }
    record(tx, Some(&id), created)?;
    load(tx, &id)
}

/// One loop with its counters; `NotFound` for a missing id or a task that is not a loop.
pub(super) fn load(tx: &mut Tx<'_>, id: &str) -> Result<LoopRecord> {
    let task = load_task(tx, id)?;
    with_counters(tx, task)
}

fn with_counters(tx: &mut Tx<'_>, task: TaskRecord) -> Result<LoopRecord> {
    let Some(row) = tx.query_opt(
        &format!("SELECT {LOOP_COLUMNS} FROM loops WHERE task_id = $1"),
        &[&task.id],
    )?
    else {
        return Err(StoreError::NotFound(format!("{} (as a loop)", task.id)));
    };
    let spec: String = row.try_get("spec")?;
    let spec = parse_json("loops.spec", &spec)?;
    Ok(LoopRecord {
        task,
        spec,
        iterations: row.try_get::<_, i64>("iterations")? as u32,
        tool_calls: row.try_get::<_, i64>("tool_calls")? as u64,
        input_tokens: row.try_get::<_, i64>("input_tokens")? as u64,
        output_tokens: row.try_get::<_, i64>("output_tokens")? as u64,
        cache_read_tokens: row.try_get::<_, i64>("cache_read_tokens")? as u64,
        cache_write_tokens: row.try_get::<_, i64>("cache_write_tokens")? as u64,
        cost_usd: row.try_get("cost_usd")?,
        last_validation_exit_code: row
            .try_get::<_, Option<i64>>("last_exit")?
            .map(|v| v as i32),
    })
}

/// Loops, oldest first; only those not ended unless `all`.
pub(super) fn list(tx: &mut Tx<'_>, all: bool) -> Result<Vec<LoopRecord>> {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE kind = 'loop'");
    if !all {
        sql.push_str(" AND status IN ('pending', 'blocked', 'running')");
    }
    sql.push_str(" ORDER BY search_key");
    let tasks = tx
        .query(&sql, &[])?
        .iter()
        .map(task_from_row)
        .collect::<Result<Vec<_>>>()?;
    tasks
        .into_iter()
        .map(|task| with_counters(tx, task))
        .collect()
}

/// `pending -> running`; a loop that is already running (its daemon died)
/// stays so and gets an `adopted` event saying where it resumes.
pub(super) fn mark_running(
    tx: &mut Tx<'_>,
    id: &str,
    next_iteration: u32,
    actor: &str,
) -> Result<LoopRecord> {
    let task = lock_task(tx, id)?;
    match changes::loop_start(&task, next_iteration, now_millis(), actor) {
        (Some(change), _) => apply(tx, &task, change)?,
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
    tx: &mut Tx<'_>,
    id: &str,
    it: &LoopIteration,
    actor: &str,
) -> Result<bool> {
    let task = lock_task(tx, id)?;
    let current = with_counters(tx, task)?;
    let Some(recorded) = changes::loop_iteration(&current, it, actor)? else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE loops SET iterations = $1, tool_calls = tool_calls + $2,
            input_tokens = input_tokens + $3, output_tokens = output_tokens + $4,
            cost_usd = cost_usd + $5, last_exit = $6,
            cache_read_tokens = cache_read_tokens + $8,
            cache_write_tokens = cache_write_tokens + $9
         WHERE task_id = $7",
        &[
            &i64::from(it.iteration),
            &i64::from(it.tool_calls),
            &(it.input_tokens as i64),
            &(it.output_tokens as i64),
            &it.cost_usd,
            &it.validation_exit_code.map(i64::from),
            &current.task.id,
            &(it.cache_read_tokens as i64),
            &(it.cache_write_tokens as i64),
        ],
    )?;
    tx.execute(
        "UPDATE tasks SET updated_at = $1 WHERE id = $2",
        &[&now_millis(), &current.task.id],
    )?;
    super::pipeline::charge_iteration(tx, &current.task.id, it)?;
    record(tx, Some(&current.task.id), recorded)?;
    Ok(true)
}

/// Ends a loop through the state machine, keeping the reason as its note.
pub(super) fn finish(tx: &mut Tx<'_>, id: &str, end: &LoopEnd, actor: &str) -> Result<LoopRecord> {
    let task = lock_task(tx, id)?;
    apply(tx, &task, changes::loop_end(end, now_millis(), actor))?;
    load(tx, id)
}

const CONFIG_COLUMNS: &str = "version, digest, file, loaded_at, type_names";

/// Records a configuration version unless the newest has the same digest
/// (then that one is returned), with its `config_loaded` event.
pub(super) fn record_config(
    tx: &mut Tx<'_>,
    new: &NewConfigVersion,
    actor: &str,
) -> Result<ConfigVersion> {
    // One writer at a time decides what "newest" is.
    tx.execute("LOCK TABLE config_versions IN EXCLUSIVE MODE", &[])?;
    let newest = config_versions(tx, 1)?.into_iter().next();
    if !changes::config_is_new(newest.as_ref(), new)
        && let Some(newest) = newest
    {
        return Ok(newest);
    }
    let row = tx.query_one(
        "INSERT INTO config_versions (digest, file, loaded_at, type_names, types)
         VALUES ($1, $2, $3, $4, $5) RETURNING version",
        &[
            &new.digest,
            &new.file,
            &now_millis(),
            &to_json_text(&new.type_names),
            &new.types.to_string(),
        ],
    )?;
    let version: i64 = row.try_get(0)?;
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
pub(super) fn config_versions(tx: &mut Tx<'_>, limit: usize) -> Result<Vec<ConfigVersion>> {
    tx.query(
        &format!(
            "SELECT {CONFIG_COLUMNS}, 'null' AS types FROM config_versions
             ORDER BY version DESC LIMIT $1"
        ),
        &[&(limit as i64)],
    )?
    .iter()
    .map(config_from_row)
    .collect()
}

/// One version with its resolved types.
pub(super) fn config_version(tx: &mut Tx<'_>, version: i64) -> Result<ConfigVersion> {
    match tx.query_opt(
        &format!("SELECT {CONFIG_COLUMNS}, types FROM config_versions WHERE version = $1"),
        &[&version],
    )? {
        Some(row) => config_from_row(&row),
        None => Err(StoreError::NotFound(format!(
            "configuration version {version}"
        ))),
    }
}

fn config_from_row(row: &postgres::Row) -> Result<ConfigVersion> {
    let names: String = row.try_get("type_names")?;
    let types: String = row.try_get("types")?;
    Ok(ConfigVersion {
        version: row.try_get("version")?,
        digest: row.try_get("digest")?,
        file: row.try_get("file")?,
        loaded_at: row.try_get("loaded_at")?,
        type_names: parse_json("config_versions.type_names", &names)?,
        types: parse_json("config_versions.types", &types)?,
    })
}
