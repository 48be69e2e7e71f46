//! Moving a whole store in and out (export, import, backup) and checking or
//! repairing it.
//!
//! Exports stream row by row and archive chunk by chunk; imports run in one
//! transaction, so a file that fails half-way leaves the target untouched.

use std::path::Path;
use std::sync::MutexGuard;

use rusqlite::{Connection, params};
use taskdaemon_core::tracked::Session;
use taskdaemon_core::{Event, Memory, QueueItem, Status};

use super::history::{check_chunk, chunk_ids, read_chunk};
use super::memory::{MEMORY_COLUMNS, SESSION_COLUMNS, memory_from_row, session_from_row};
use super::rows::{
    EVENT_COLUMNS, QUEUE_ITEM_COLUMNS, TASK_COLUMNS, event_from_row, queue_item_from_row,
    task_from_row,
};
use super::{apply, migrations};
use crate::changes;
use crate::changes::pipeline::{ORPHAN_RULES, OrphanRule};
use crate::encoding::parse_status;
use crate::import::{Import, ImportRows};
use crate::{
    EXPORT_FORMAT, EXPORT_VERSION, ExportHeader, ExportRecord, ExportedLoop, ExportedTask,
    IntegrityReport, RepairReport, Result, StoreError,
};

type Sink<'a> = &'a mut dyn FnMut(ExportRecord) -> Result<()>;

/// Streams the whole store to `sink` from one consistent read snapshot.
pub(super) fn export(conn: &Connection, sink: Sink<'_>) -> Result<()> {
    conn.execute_batch("BEGIN")?;
    let result = export_rows(conn, sink);
    conn.execute_batch("COMMIT")?;
    result
}

fn export_rows(conn: &Connection, sink: Sink<'_>) -> Result<()> {
    sink(ExportRecord::Header(ExportHeader {
        format: EXPORT_FORMAT.to_owned(),
        version: EXPORT_VERSION,
        schema: migrations::latest_version(),
    }))?;
    let mut stmt = conn.prepare("SELECT name, value FROM counters ORDER BY name")?;
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (name, value) = row?;
        sink(ExportRecord::Counter { name, value })?;
    }
    let mut stmt = conn.prepare("SELECT key, value FROM meta ORDER BY key")?;
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (key, value) = row?;
        sink(ExportRecord::Meta { key, value })?;
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions ORDER BY id"
    ))?;
    for row in stmt.query_map([], session_from_row)? {
        sink(ExportRecord::Session(row?))?;
    }
    let mut stmt = conn.prepare(&format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY rowid"))?;
    for row in stmt.query_map([], task_from_row)? {
        let task = row??;
        let env = task.env.clone();
        sink(ExportRecord::Task(Box::new(ExportedTask { task, env })))?;
    }
    let mut stmt = conn.prepare(&format!("SELECT {MEMORY_COLUMNS} FROM memory ORDER BY id"))?;
    for row in stmt.query_map([], memory_from_row)? {
        sink(ExportRecord::Memory(row??))?;
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items ORDER BY created_at, task_id"
    ))?;
    for row in stmt.query_map([], queue_item_from_row)? {
        sink(ExportRecord::QueueItem(row??))?;
    }
    let mut stmt = conn.prepare(
        "SELECT task_id, spec, iterations, tool_calls, input_tokens, output_tokens, cost_usd,
                last_exit FROM loops ORDER BY task_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            (r.get::<_, i64>(2)?, r.get::<_, i64>(3)?),
            (r.get::<_, i64>(4)?, r.get::<_, i64>(5)?),
            r.get::<_, f64>(6)?,
            r.get::<_, Option<i32>>(7)?,
        ))
    })?;
    for row in rows {
        let (task_id, spec, (iterations, tool_calls), (input, output), cost_usd, last_exit) = row?;
        sink(ExportRecord::Loop(ExportedLoop {
            task_id,
            spec: serde_json::from_str(&spec).map_err(|e| StoreError::Malformed {
                field: "loops.spec",
                message: e.to_string(),
            })?,
            iterations: iterations as u32,
            tool_calls: tool_calls as u64,
            input_tokens: input as u64,
            output_tokens: output as u64,
            cost_usd,
            last_exit,
        }))?;
    }
    super::pipeline::export(conn, sink)?;
    for gate in super::gates::all(conn)? {
        sink(ExportRecord::Gate(Box::new(gate)))?;
    }
    for chunk in chunk_ids(conn)? {
        for event in read_chunk(conn, chunk)? {
            sink(ExportRecord::Event(event))?;
        }
    }
    let mut stmt = conn.prepare(&format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY seq"))?;
    for row in stmt.query_map([], event_from_row)? {
        sink(ExportRecord::Event(row??))?;
    }
    Ok(())
}

/// The rows of an import, written on the connection held with an open
/// `BEGIN IMMEDIATE`.
pub(super) struct SqliteRows<'a> {
    conn: MutexGuard<'a, Connection>,
}

/// Starts an import: takes the connection, and refuses a store that holds
/// tasks, memory or events already.
pub(super) fn begin_import<'a>(
    conn: MutexGuard<'a, Connection>,
    path: &Path,
) -> Result<Import<SqliteRows<'a>>> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut import = Import::new(SqliteRows { conn });
    let held: i64 = import.rows().conn.query_row(
        "SELECT (SELECT count(*) FROM tasks) + (SELECT count(*) FROM memory)
              + (SELECT count(*) FROM events) + (SELECT count(*) FROM event_archive)",
        [],
        |r| r.get(0),
    )?;
    if held > 0 {
        // Dropping the import rolls it back.
        return Err(crate::import_needs_empty_store(
            &path.display().to_string(),
            held,
        ));
    }
    Ok(import)
}

impl ImportRows for SqliteRows<'_> {
    fn counter(&mut self, name: &str, value: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
            params![name, value],
        )?;
        Ok(())
    }

    fn meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn session(&mut self, s: &Session) -> Result<()> {
        self.conn.execute(
            "INSERT INTO sessions (id, tool, started_at, last_seen_at, ended_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.id, s.tool, s.started_at, s.last_seen_at, s.ended_at],
        )?;
        Ok(())
    }

    fn task(&mut self, exported: &ExportedTask) -> Result<()> {
        insert_task(&self.conn, exported)
    }

    fn memory(&mut self, number: i64, m: &Memory) -> Result<()> {
        self.conn.execute(
            "INSERT INTO memory (id, kind, text, task_id, key, session, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                number,
                m.kind.as_str(),
                m.text,
                m.task_id,
                m.key,
                m.session,
                m.created_at,
                m.updated_at
            ],
        )?;
        Ok(())
    }

    fn queue_item(&mut self, item: &QueueItem) -> Result<()> {
        self.conn.execute(
            "INSERT INTO queue_items (task_id, queue, document, executor, max_attempts,
               timeout_ms, finished, result, created_at, finished_at, claimable)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                item.task_id,
                item.queue,
                item.document,
                item.executor,
                item.max_attempts,
                item.timeout_ms.map(|v| v as i64),
                item.finished,
                item.result.as_ref().map(serde_json::Value::to_string),
                item.created_at,
                item.finished_at,
                item.claimable
            ],
        )?;
        Ok(())
    }

    fn loop_row(&mut self, l: &ExportedLoop) -> Result<()> {
        self.conn.execute(
            "INSERT INTO loops (task_id, spec, iterations, tool_calls, input_tokens,
               output_tokens, cost_usd, last_exit)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                l.task_id,
                l.spec.to_string(),
                l.iterations,
                l.tool_calls as i64,
                l.input_tokens as i64,
                l.output_tokens as i64,
                l.cost_usd,
                l.last_exit
            ],
        )?;
        Ok(())
    }

    fn event(&mut self, event: &Event) -> Result<()> {
        let text = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string);
        self.conn.execute(
            "INSERT INTO events (seq, at, task_id, actor, kind, message, before, after)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                event.seq,
                event.at,
                event.task_id,
                event.actor,
                event.kind.as_str(),
                event.message,
                text(&event.before),
                text(&event.after)
            ],
        )?;
        Ok(())
    }

    fn plan(&mut self, number: i64, plan: &taskdaemon_core::PlanRecord) -> Result<()> {
        super::pipeline::import_plan(&self.conn, number, plan)
    }

    fn spec(&mut self, spec: &taskdaemon_core::SpecRecord) -> Result<()> {
        super::pipeline::import_spec(&self.conn, spec)
    }

    fn phase(&mut self, phase: &taskdaemon_core::PhaseRecord) -> Result<()> {
        super::pipeline::import_phase(&self.conn, phase)
    }

    fn message(&mut self, number: i64, message: &taskdaemon_core::MessageRecord) -> Result<()> {
        super::pipeline::import_message(&self.conn, number, message)
    }

    fn gate(&mut self, g: &taskdaemon_core::gate::Gate) -> Result<()> {
        self.conn.execute(
            &format!(
                "INSERT INTO task_gates ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                crate::gates::GATE_COLUMNS
            ),
            params![
                g.task_id,
                g.seq,
                g.kind.as_str(),
                g.target,
                g.until,
                g.opened_at,
                g.failed,
                g.attempts,
                g.next_check,
                g.created_at
            ],
        )?;
        Ok(())
    }

    fn pipeline_loop(&mut self, plan: &str, node: &str, loop_task: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO pipeline_loops (plan, node, loop_task) VALUES (?1, ?2, ?3)",
            params![plan, node, loop_task],
        )?;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    fn rollback(&mut self) -> Result<()> {
        Ok(self.conn.execute_batch("ROLLBACK")?)
    }
}

/// Writes an exported task's row, labels, dependency edges and files.
fn insert_task(conn: &Connection, exported: &ExportedTask) -> Result<()> {
    let t = &exported.task;
    let json = |v: &dyn ErasedSerialize| v.json_text();
    conn.execute(
        "INSERT INTO tasks (uuid, id, kind, name, tool, session, status, argv, cwd, env,
           restart, restarts, hang_timeout_ms, pid, pgid, start_time, boot_id, shim_pid,
           shim_start_time, exit_code, signal, stop_requested, error, created_at,
           started_at, finished_at, updated_at, description, priority, note, limits,
           container, container_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
           ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31,
           ?32, ?33)",
        params![
            t.uuid.to_string(),
            t.id,
            t.kind.as_str(),
            t.name,
            t.tool,
            t.session,
            t.status.as_str(),
            json(&t.argv),
            t.cwd,
            json(&exported.env),
            json(&t.restart),
            t.restarts,
            t.hang_timeout_ms.map(|v| v as i64),
            t.pid,
            t.pgid,
            t.start_time.map(|v| v as i64),
            t.boot_id,
            t.shim_pid,
            t.shim_start_time.map(|v| v as i64),
            t.exit_code,
            t.signal,
            t.stop_requested,
            t.error,
            t.created_at,
            t.started_at,
            t.finished_at,
            t.updated_at,
            t.description,
            t.priority,
            t.note,
            crate::encoding::limits_text(&t.limits),
            crate::encoding::container_text(&t.container),
            t.container_id,
        ],
    )?;
    for label in &t.labels {
        conn.execute(
            "INSERT INTO task_labels (task_id, label) VALUES (?1, ?2)",
            params![t.id, label],
        )?;
    }
    for dep in &t.depends_on {
        conn.execute(
            "INSERT INTO task_deps (task_id, depends_on) VALUES (?1, ?2)",
            params![t.id, dep],
        )?;
    }
    // Inserted in their listed order, which is the order they are read back in.
    for path in &t.files_modified {
        conn.execute(
            "INSERT INTO task_files (task_id, path, added_at) VALUES (?1, ?2, ?3)",
            params![t.id, path, t.updated_at],
        )?;
    }
    let (kinds, typed) = crate::changes::links::imported_links(t);
    for (waited, kind) in kinds {
        conn.execute(
            "UPDATE task_deps SET kind = ?1 WHERE task_id = ?2 AND depends_on = ?3",
            params![kind.as_str(), t.id, waited],
        )?;
    }
    for link in typed {
        conn.execute(
            "INSERT OR IGNORE INTO task_links (task_id, kind, target) VALUES (?1, ?2, ?3)",
            params![link.from, link.kind.as_str(), link.to],
        )?;
    }
    if let Some(claim) = &t.claim {
        conn.execute(
            "UPDATE tasks SET claimed_by = ?1, lease_until = ?2 WHERE id = ?3",
            params![claim.by, claim.lease_until, t.id],
        )?;
    }
    Ok(())
}

/// `import --merge` (see [`crate::Store::merge_tracked`]) on the open
/// transaction `tx`.
pub(super) fn merge_tracked(
    tx: &Connection,
    tasks: &[ExportedTask],
    counters: &[(String, i64)],
    actor: &str,
) -> Result<crate::MergeReport> {
    for (name, value) in counters {
        tx.execute(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
            params![name, value],
        )?;
    }
    let mut report = crate::MergeReport::default();
    for exported in tasks {
        let id = &exported.task.id;
        let stored = match super::load_task(tx, id) {
            Ok(task) => Some(task),
            Err(StoreError::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        match crate::changes::merge_step(stored.as_ref(), &exported.task, actor)? {
            crate::changes::MergeStep::Add(recorded) => {
                insert_task(tx, exported)?;
                super::events::record(tx, Some(id), recorded)?;
                report.added.push(id.clone());
            }
            crate::changes::MergeStep::Replace(recorded) => {
                delete_task_rows(tx, id)?;
                insert_task(tx, exported)?;
                super::events::record(tx, Some(id), recorded)?;
                report.updated.push(id.clone());
            }
            crate::changes::MergeStep::Unchanged => report.unchanged += 1,
            crate::changes::MergeStep::KeepStored => report.kept.push(id.clone()),
        }
    }
    Ok(report)
}

/// Removes a tracked task's row and the rows that hang off it, to write
/// its merged version.
fn delete_task_rows(tx: &Connection, id: &str) -> Result<()> {
    for table in crate::changes::TASK_ROW_TABLES {
        tx.execute(&format!("DELETE FROM {table} WHERE task_id = ?1"), [id])?;
    }
    tx.execute("DELETE FROM tasks WHERE id = ?1", [id])?;
    Ok(())
}

/// Lets one closure turn differently typed columns into their JSON text.
trait ErasedSerialize {
    fn json_text(&self) -> String;
}

impl<T: serde::Serialize> ErasedSerialize for T {
    fn json_text(&self) -> String {
        crate::encoding::to_json_text(self)
    }
}

/// Every problem found, in words a person can act on.
pub(super) fn check(conn: &Connection) -> Result<IntegrityReport> {
    let mut problems = Vec::new();
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
        let line = row?;
        if line != "ok" {
            problems.push(format!("database: {line}"));
        }
    }
    if let Err(e) = conn.execute(
        "INSERT INTO search_fts(search_fts) VALUES ('integrity-check')",
        [],
    ) {
        problems.push(format!("search index: {e}"));
    }
    let mut stmt = conn.prepare(
        "SELECT d.task_id, d.depends_on FROM task_deps d
         LEFT JOIN tasks t ON t.id = d.depends_on WHERE t.id IS NULL",
    )?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (task, dep) = row?;
        problems.push(format!("{task} depends on {dep}, which does not exist"));
    }
    for (id, have, want) in unsettled(conn)? {
        problems.push(format!(
            "{id} is {have} but its dependencies say it should be {want}"
        ));
    }
    for chunk in chunk_ids(conn)? {
        problems.extend(check_chunk(conn, chunk)?);
    }
    for (rule, name) in pipeline_orphans(conn)? {
        problems.push(crate::changes::pipeline::orphan_problem(rule, &name));
    }
    Ok(IntegrityReport { problems })
}

/// Pipeline rows whose parent is gone, by the shared rules.
fn pipeline_orphans(conn: &Connection) -> Result<Vec<(&'static OrphanRule, String)>> {
    let mut found = Vec::new();
    for rule in ORPHAN_RULES {
        let mut stmt = conn.prepare(rule.find)?;
        for name in stmt.query_map([], |r| r.get::<_, String>(0))? {
            found.push((rule, name?));
        }
    }
    Ok(found)
}

/// Waiting tasks whose status disagrees with their dependencies.
fn unsettled(conn: &Connection) -> Result<Vec<(String, Status, Status)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT t.id, t.status,
                (SELECT group_concat(coalesce(dt.status, 'lost'), ',') FROM task_deps d
                   LEFT JOIN tasks dt ON dt.id = d.depends_on WHERE d.task_id = t.id),
                {}
         FROM tasks t WHERE t.status IN ('pending', 'blocked')",
        crate::gates::HAS_SHUT_GATE
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, bool>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, status, deps, gated) = row?;
        let have = parse_status(&status)?;
        let want = changes::waiting_by_joined(deps.as_deref(), gated);
        if have != want {
            out.push((id, have, want));
        }
    }
    Ok(out)
}

/// Rebuilds the search index from its sources and settles waiting tasks.
pub(super) fn repair(conn: &Connection, actor: &str) -> Result<RepairReport> {
    conn.execute(
        "INSERT INTO search_fts(search_fts) VALUES ('delete-all')",
        [],
    )?;
    let mut reindexed = conn.execute(
        "INSERT INTO search_fts(rowid, title, body)
         SELECT search_key * 4 + 1, coalesce(name, ''),
                concat_ws(' ', description, note, CASE kind WHEN 'manual' THEN NULL ELSE argv END,
                          (SELECT concat_ws(' ', o.description, o.note) FROM task_originals o
                            WHERE o.task_id = tasks.id))
         FROM tasks",
        [],
    )? as u64;
    reindexed += conn.execute(
        "INSERT INTO search_fts(rowid, title, body)
         SELECT id * 4 + 2, concat_ws(' ', kind, key), text FROM memory",
        [],
    )? as u64;
    reindexed += conn.execute(
        "INSERT INTO search_fts(rowid, title, body)
         SELECT seq * 4 + 3, coalesce(task_id, ''), message FROM events",
        [],
    )? as u64;
    for chunk in chunk_ids(conn)? {
        let Ok(events) = read_chunk(conn, chunk) else {
            continue; // Reported by the check below; the rest is still rebuilt.
        };
        let mut stmt = conn.prepare_cached(
            "INSERT INTO search_fts(rowid, title, body) VALUES (?1 * 4 + 3, ?2, ?3)",
        )?;
        for e in events {
            stmt.execute(params![e.seq, e.task_id.unwrap_or_default(), e.message])?;
            reindexed += 1;
        }
    }
    let mut resettled = Vec::new();
    for (id, _, want) in unsettled(conn)? {
        let task = super::load_task(conn, &id)?;
        apply(conn, &task, changes::resettled(want, actor))?;
        resettled.push(id);
    }
    let orphans_removed = pipeline_orphans(conn)?
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    for rule in ORPHAN_RULES {
        conn.execute(rule.fix, [])?;
    }
    let remaining = check(conn)?.problems;
    Ok(RepairReport {
        reindexed,
        resettled,
        orphans_removed,
        remaining,
    })
}

/// `VACUUM INTO` a new file: a consistent, compact copy, checked after writing.
pub(super) fn backup(conn: &Connection, path: &Path) -> Result<()> {
    if path.exists() {
        return Err(StoreError::Conflict(format!(
            "{} exists already: choose a new backup path",
            path.display()
        )));
    }
    let target = path.to_str().ok_or_else(|| {
        StoreError::Invalid(format!("backup path {} is not UTF-8", path.display()))
    })?;
    conn.execute("VACUUM INTO ?1", [target])?;
    let copy = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    let verdict: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            message: format!("the backup failed its check: {verdict}"),
        });
    }
    Ok(())
}
