//! Moving a whole PostgreSQL store in and out, and checking or repairing it
//! (the SQLite twin is `sqlite/transfer.rs`; the record format is shared).
//!
//! Exports stream rows from one repeatable-read snapshot; imports run in one
//! transaction, so a file that fails half-way leaves the target untouched.

use postgres::GenericClient;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use taskdaemon_core::tracked::Session;
use taskdaemon_core::{Event, Memory, QueueItem, Status};

use super::history::{check_chunk, chunk_ids, read_chunk};
use super::rows::{
    EVENT_COLUMNS, MEMORY_COLUMNS, QUEUE_ITEM_COLUMNS, SESSION_COLUMNS, TASK_COLUMNS,
    event_from_row, memory_from_row, queue_item_from_row, session_from_row, task_from_row,
};
use super::{Tx, apply, lock_task, migrations};
use crate::changes;
use crate::changes::pipeline::{ORPHAN_RULES, OrphanRule};
use crate::encoding::{parse_status, to_json_text};
use crate::import::{Import, ImportRows};
use crate::{
    EXPORT_FORMAT, EXPORT_VERSION, ExportHeader, ExportRecord, ExportedLoop, ExportedTask,
    IntegrityReport, RepairReport, Result, StoreError,
};

type Sink<'a> = &'a mut dyn FnMut(ExportRecord) -> Result<()>;
type Client = r2d2::PooledConnection<super::statements::Manager>;

const NO_PARAMS: [&(dyn ToSql + Sync); 0] = [];

/// Streams every row of `sql` through `each` without holding them all.
fn stream(
    tx: &mut Tx<'_>,
    sql: &str,
    mut each: impl FnMut(&postgres::Row) -> Result<()>,
) -> Result<()> {
    let mut rows = tx.query_raw(sql, NO_PARAMS)?;
    while let Some(row) = rows.next()? {
        each(&row)?;
    }
    Ok(())
}

pub(super) fn export(client: &mut Client, sink: Sink<'_>) -> Result<()> {
    let mut tx = client.transaction_with(|c| {
        c.build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
    })?;
    sink(ExportRecord::Header(ExportHeader {
        format: EXPORT_FORMAT.to_owned(),
        version: EXPORT_VERSION,
        schema: migrations::latest_version(),
    }))?;
    stream(
        &mut tx,
        "SELECT name, value FROM counters ORDER BY name COLLATE \"C\"",
        |r| {
            sink(ExportRecord::Counter {
                name: r.try_get(0)?,
                value: r.try_get(1)?,
            })
        },
    )?;
    stream(
        &mut tx,
        "SELECT key, value FROM meta ORDER BY key COLLATE \"C\"",
        |r| {
            sink(ExportRecord::Meta {
                key: r.try_get(0)?,
                value: r.try_get(1)?,
            })
        },
    )?;
    stream(
        &mut tx,
        &format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY id COLLATE \"C\""),
        |r| sink(ExportRecord::Session(session_from_row(r)?)),
    )?;
    stream(
        &mut tx,
        &format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY search_key"),
        |r| {
            let task = task_from_row(r)?;
            let env = task.env.clone();
            sink(ExportRecord::Task(Box::new(ExportedTask { task, env })))
        },
    )?;
    stream(
        &mut tx,
        &format!("SELECT {MEMORY_COLUMNS} FROM memory ORDER BY id"),
        |r| sink(ExportRecord::Memory(memory_from_row(r)?)),
    )?;
    stream(
        &mut tx,
        &format!(
            "SELECT {QUEUE_ITEM_COLUMNS} FROM queue_items ORDER BY created_at, task_id COLLATE \"C\""
        ),
        |r| sink(ExportRecord::QueueItem(queue_item_from_row(r)?)),
    )?;
    stream(
        &mut tx,
        "SELECT task_id, spec, iterations, tool_calls, input_tokens, output_tokens, cost_usd,
                last_exit FROM loops ORDER BY task_id COLLATE \"C\"",
        |r| {
            let spec: String = r.try_get("spec")?;
            sink(ExportRecord::Loop(ExportedLoop {
                task_id: r.try_get("task_id")?,
                spec: serde_json::from_str(&spec).map_err(|e| StoreError::Malformed {
                    field: "loops.spec",
                    message: e.to_string(),
                })?,
                iterations: r.try_get::<_, i64>("iterations")? as u32,
                tool_calls: r.try_get::<_, i64>("tool_calls")? as u64,
                input_tokens: r.try_get::<_, i64>("input_tokens")? as u64,
                output_tokens: r.try_get::<_, i64>("output_tokens")? as u64,
                cost_usd: r.try_get("cost_usd")?,
                last_exit: r.try_get::<_, Option<i64>>("last_exit")?.map(|v| v as i32),
            }))
        },
    )?;
    super::pipeline::export(&mut tx, sink)?;
    for gate in super::gates::all(&mut tx)? {
        sink(ExportRecord::Gate(Box::new(gate)))?;
    }
    for chunk in chunk_ids(&mut tx)? {
        for event in read_chunk(&mut tx, chunk)? {
            sink(ExportRecord::Event(event))?;
        }
    }
    stream(
        &mut tx,
        &format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq IS NOT NULL ORDER BY seq"),
        |r| sink(ExportRecord::Event(event_from_row(r)?)),
    )?;
    tx.commit()?;
    Ok(())
}

/// The rows of an import, written on a pooled connection with an open
/// transaction.
pub(super) struct PgRows {
    client: Client,
}

/// Starts an import: takes a connection, locks the tables, and refuses a
/// store that holds tasks, memory or events already.
pub(super) fn begin_import(mut client: Client, url: &str) -> Result<Import<PgRows>> {
    client.batch_execute("BEGIN")?;
    let mut import = Import::new(PgRows { client });
    let client = &mut import.rows().client;
    // Nobody else may write while the store is checked and filled.
    client.batch_execute("LOCK TABLE tasks, memory, events IN EXCLUSIVE MODE")?;
    let held: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM tasks) + (SELECT count(*) FROM memory)
                  + (SELECT count(*) FROM events) + (SELECT count(*) FROM event_archive)",
            &[],
        )?
        .get(0);
    if held > 0 {
        // Dropping the import rolls it back.
        return Err(crate::import_needs_empty_store(url, held));
    }
    Ok(import)
}

/// Writes an exported task's row, labels, dependency edges and files.
fn insert_task(client: &mut impl GenericClient, exported: &ExportedTask) -> Result<()> {
    let t = &exported.task;
    let opt_i64 = |v: Option<i32>| v.map(i64::from);
    client.execute(
        "INSERT INTO tasks (uuid, id, kind, name, tool, session, status, argv, cwd, env,
           restart, restarts, hang_timeout_ms, pid, pgid, start_time, boot_id, shim_pid,
           shim_start_time, exit_code, signal, stop_requested, error, created_at,
           started_at, finished_at, updated_at, description, priority, note, limits,
           container, container_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
           $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31,
           $32, $33)",
        &[
            &t.uuid.to_string(),
            &t.id,
            &t.kind.as_str(),
            &t.name,
            &t.tool,
            &t.session,
            &t.status.as_str(),
            &to_json_text(&t.argv),
            &t.cwd,
            &to_json_text(&exported.env),
            &to_json_text(&t.restart),
            &i64::from(t.restarts),
            &t.hang_timeout_ms.map(|v| v as i64),
            &opt_i64(t.pid),
            &opt_i64(t.pgid),
            &t.start_time.map(|v| v as i64),
            &t.boot_id,
            &opt_i64(t.shim_pid),
            &t.shim_start_time.map(|v| v as i64),
            &opt_i64(t.exit_code),
            &opt_i64(t.signal),
            &t.stop_requested,
            &t.error,
            &t.created_at,
            &t.started_at,
            &t.finished_at,
            &t.updated_at,
            &t.description,
            &i64::from(t.priority),
            &t.note,
            &crate::encoding::limits_text(&t.limits),
            &crate::encoding::container_text(&t.container),
            &t.container_id,
        ],
    )?;
    for label in &t.labels {
        client.execute(
            "INSERT INTO task_labels (task_id, label) VALUES ($1, $2)",
            &[&t.id, label],
        )?;
    }
    for dep in &t.depends_on {
        client.execute(
            "INSERT INTO task_deps (task_id, depends_on) VALUES ($1, $2)",
            &[&t.id, dep],
        )?;
    }
    // Inserted in their listed order, which is the order they are read back in.
    for path in &t.files_modified {
        client.execute(
            "INSERT INTO task_files (task_id, path, added_at) VALUES ($1, $2, $3)",
            &[&t.id, path, &t.updated_at],
        )?;
    }
    let (kinds, typed) = crate::changes::links::imported_links(t);
    for (waited, kind) in kinds {
        client.execute(
            "UPDATE task_deps SET kind = $1 WHERE task_id = $2 AND depends_on = $3",
            &[&kind.as_str(), &t.id, &waited],
        )?;
    }
    for link in typed {
        client.execute(
            "INSERT INTO task_links (task_id, kind, target) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&link.from, &link.kind.as_str(), &link.to],
        )?;
    }
    if let Some(claim) = &t.claim {
        client.execute(
            "UPDATE tasks SET claimed_by = $1, lease_until = $2 WHERE id = $3",
            &[&claim.by, &claim.lease_until, &t.id],
        )?;
    }
    Ok(())
}

/// `import --merge` (see [`crate::Store::merge_tracked`]) on `tx`.
pub(super) fn merge_tracked(
    tx: &mut Tx<'_>,
    tasks: &[ExportedTask],
    counters: &[(String, i64)],
    actor: &str,
) -> Result<crate::MergeReport> {
    for (name, value) in counters {
        tx.execute(
            "INSERT INTO counters (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = greatest(counters.value, excluded.value)",
            &[name, value],
        )?;
    }
    let mut report = crate::MergeReport::default();
    for exported in tasks {
        let id = &exported.task.id;
        let stored = match lock_task(tx, id) {
            Ok(task) => Some(task),
            Err(StoreError::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        match changes::merge_step(stored.as_ref(), &exported.task, actor)? {
            changes::MergeStep::Add(recorded) => {
                insert_task(&mut **tx, exported)?;
                super::events::record(tx, Some(id), recorded)?;
                report.added.push(id.clone());
            }
            changes::MergeStep::Replace(recorded) => {
                delete_task_rows(tx, id)?;
                insert_task(&mut **tx, exported)?;
                super::events::record(tx, Some(id), recorded)?;
                report.updated.push(id.clone());
            }
            changes::MergeStep::Unchanged => report.unchanged += 1,
            changes::MergeStep::KeepStored => report.kept.push(id.clone()),
        }
    }
    for id in report.added.iter().chain(&report.updated) {
        settle_merged(tx, id, actor)?;
    }
    Ok(report)
}

/// Re-decides what a task written by a merge affects here, once every
/// merged row is in (the SQLite twin says why).
fn settle_merged(tx: &mut Tx<'_>, id: &str, actor: &str) -> Result<()> {
    super::tracked::settle_waiting(tx, id, actor)?;
    let status = lock_task(tx, id)?.status;
    super::gates::target_ended(tx, id, status, actor)?;
    super::tracked::refresh_dependents(tx, id, actor)
}

/// Removes a tracked task's row and the rows that hang off it, to write
/// its merged version.
fn delete_task_rows(tx: &mut Tx<'_>, id: &str) -> Result<()> {
    for table in crate::changes::TASK_ROW_TABLES {
        tx.execute(&format!("DELETE FROM {table} WHERE task_id = $1"), &[&id])?;
    }
    tx.execute("DELETE FROM tasks WHERE id = $1", &[&id])?;
    Ok(())
}

impl ImportRows for PgRows {
    fn counter(&mut self, name: &str, value: i64) -> Result<()> {
        self.client.execute(
            "INSERT INTO counters (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = greatest(counters.value, excluded.value)",
            &[&name, &value],
        )?;
        Ok(())
    }

    fn meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.client.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn session(&mut self, s: &Session) -> Result<()> {
        self.client.execute(
            "INSERT INTO sessions (id, tool, started_at, last_seen_at, ended_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&s.id, &s.tool, &s.started_at, &s.last_seen_at, &s.ended_at],
        )?;
        Ok(())
    }

    fn task(&mut self, exported: &ExportedTask) -> Result<()> {
        insert_task(&mut **self.client, exported)
    }

    fn memory(&mut self, number: i64, m: &Memory) -> Result<()> {
        self.client.execute(
            "INSERT INTO memory (id, kind, text, task_id, key, session, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &number,
                &m.kind.as_str(),
                &m.text,
                &m.task_id,
                &m.key,
                &m.session,
                &m.created_at,
                &m.updated_at,
            ],
        )?;
        Ok(())
    }

    fn queue_item(&mut self, item: &QueueItem) -> Result<()> {
        self.client.execute(
            "INSERT INTO queue_items (task_id, queue, document, executor, max_attempts,
               timeout_ms, finished, result, created_at, finished_at, claimable)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &item.task_id,
                &item.queue,
                &item.document,
                &item.executor,
                &i64::from(item.max_attempts),
                &item.timeout_ms.map(|v| v as i64),
                &item.finished,
                &item.result.as_ref().map(serde_json::Value::to_string),
                &item.created_at,
                &item.finished_at,
                &item.claimable,
            ],
        )?;
        Ok(())
    }

    fn loop_row(&mut self, l: &ExportedLoop) -> Result<()> {
        self.client.execute(
            "INSERT INTO loops (task_id, spec, iterations, tool_calls, input_tokens,
               output_tokens, cost_usd, last_exit)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &l.task_id,
                &l.spec.to_string(),
                &i64::from(l.iterations),
                &(l.tool_calls as i64),
                &(l.input_tokens as i64),
                &(l.output_tokens as i64),
                &l.cost_usd,
                &l.last_exit.map(i64::from),
            ],
        )?;
        Ok(())
    }

    fn event(&mut self, event: &Event) -> Result<()> {
        let text = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string);
        self.client.execute(
            "INSERT INTO events (seq, at, task_id, actor, kind, message, before, after)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &event.seq,
                &event.at,
                &event.task_id,
                &event.actor,
                &event.kind.as_str(),
                &event.message,
                &text(&event.before),
                &text(&event.after),
            ],
        )?;
        Ok(())
    }

    fn plan(&mut self, number: i64, plan: &taskdaemon_core::PlanRecord) -> Result<()> {
        super::pipeline::import_plan(&mut **self.client, number, plan)
    }

    fn spec(&mut self, spec: &taskdaemon_core::SpecRecord) -> Result<()> {
        super::pipeline::import_spec(&mut **self.client, spec)
    }

    fn phase(&mut self, phase: &taskdaemon_core::PhaseRecord) -> Result<()> {
        super::pipeline::import_phase(&mut **self.client, phase)
    }

    fn message(&mut self, number: i64, message: &taskdaemon_core::MessageRecord) -> Result<()> {
        super::pipeline::import_message(&mut **self.client, number, message)
    }

    fn gate(&mut self, g: &taskdaemon_core::gate::Gate) -> Result<()> {
        let attempts = i64::from(g.attempts);
        self.client.execute(
            &format!(
                "INSERT INTO task_gates ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                crate::gates::GATE_COLUMNS
            ),
            &[
                &g.task_id,
                &g.seq,
                &g.kind.as_str(),
                &g.target,
                &g.until,
                &g.opened_at,
                &g.failed,
                &attempts,
                &g.next_check,
                &g.created_at,
            ],
        )?;
        Ok(())
    }

    fn pipeline_loop(&mut self, plan: &str, node: &str, loop_task: &str) -> Result<()> {
        self.client.execute(
            "INSERT INTO pipeline_loops (plan, node, loop_task) VALUES ($1, $2, $3)",
            &[&plan, &node, &loop_task],
        )?;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        // The store carries on after the imported numbers.
        self.client.batch_execute(
            "UPDATE event_seq SET value = greatest(value, (SELECT coalesce(max(seq), 0) FROM events));
             SELECT setval(pg_get_serial_sequence('memory', 'id'),
                           greatest((SELECT max(id) FROM memory), 1),
                           (SELECT max(id) FROM memory) IS NOT NULL);
             SELECT setval(pg_get_serial_sequence('messages', 'id'),
                           greatest((SELECT max(id) FROM messages), 1),
                           (SELECT max(id) FROM messages) IS NOT NULL);
             COMMIT",
        )?;
        Ok(())
    }

    fn rollback(&mut self) -> Result<()> {
        Ok(self.client.batch_execute("ROLLBACK")?)
    }
}

/// Every problem found, in words a person can act on.
pub(super) fn check(tx: &mut Tx<'_>) -> Result<IntegrityReport> {
    let mut problems = Vec::new();
    let missing: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM tasks t WHERE NOT EXISTS
                       (SELECT 1 FROM search_docs d WHERE d.doc = t.search_key * 4 + 1))
                  + (SELECT count(*) FROM memory m WHERE NOT EXISTS
                       (SELECT 1 FROM search_docs d WHERE d.doc = m.id * 4 + 2))
                  + (SELECT count(*) FROM events e WHERE e.seq IS NOT NULL AND NOT EXISTS
                       (SELECT 1 FROM search_docs d WHERE d.doc = e.seq * 4 + 3))",
            &[],
        )?
        .get(0);
    if missing > 0 {
        problems.push(format!(
            "search index: {missing} entries are missing (run repair)"
        ));
    }
    let rows = tx.query(
        "SELECT d.task_id, d.depends_on FROM task_deps d
         LEFT JOIN tasks t ON t.id = d.depends_on WHERE t.id IS NULL",
        &[],
    )?;
    for row in rows {
        let (task, dep): (String, String) = (row.get(0), row.get(1));
        problems.push(format!("{task} depends on {dep}, which does not exist"));
    }
    for (id, have, want) in unsettled(tx)? {
        problems.push(format!(
            "{id} is {have} but its dependencies say it should be {want}"
        ));
    }
    for chunk in chunk_ids(tx)? {
        problems.extend(check_chunk(tx, chunk)?);
    }
    for (rule, name) in pipeline_orphans(tx)? {
        problems.push(crate::changes::pipeline::orphan_problem(rule, &name));
    }
    Ok(IntegrityReport { problems })
}

/// Pipeline rows whose parent is gone, by the shared rules.
fn pipeline_orphans(tx: &mut Tx<'_>) -> Result<Vec<(&'static OrphanRule, String)>> {
    let mut found = Vec::new();
    for rule in ORPHAN_RULES {
        for row in tx.query(rule.find, &[])? {
            found.push((rule, row.get::<_, String>(0)));
        }
    }
    Ok(found)
}

/// Waiting tasks whose status disagrees with their dependencies.
fn unsettled(tx: &mut Tx<'_>) -> Result<Vec<(String, Status, Status)>> {
    let rows = tx.query(
        &format!(
            "SELECT t.id, t.status,
                (SELECT string_agg(coalesce(dt.status, 'lost'), ',') FROM task_deps d
                   LEFT JOIN tasks dt ON dt.id = d.depends_on WHERE d.task_id = t.id),
                {}
         FROM tasks t WHERE t.status IN ('pending', 'blocked') ORDER BY t.search_key",
            crate::gates::HAS_SHUT_GATE
        ),
        &[],
    )?;
    let mut out = Vec::new();
    for row in rows {
        let id: String = row.try_get(0)?;
        let status: String = row.try_get(1)?;
        let deps: Option<String> = row.try_get(2)?;
        let have = parse_status(&status)?;
        let gated: bool = row.try_get(3)?;
        let want = changes::waiting_by_joined(deps.as_deref(), gated);
        if have != want {
            out.push((id, have, want));
        }
    }
    Ok(out)
}

/// Rebuilds the search index from its sources and settles waiting tasks.
pub(super) fn repair(tx: &mut Tx<'_>, actor: &str) -> Result<RepairReport> {
    tx.execute("DELETE FROM search_docs", &[])?;
    let mut reindexed = tx.execute(
        "INSERT INTO search_docs (doc, title, body)
         SELECT t.search_key * 4 + 1, coalesce(t.name, ''), td_task_doc_body(t) FROM tasks t",
        &[],
    )?;
    reindexed += tx.execute(
        "INSERT INTO search_docs (doc, title, body)
         SELECT id * 4 + 2, concat_ws(' ', kind, key), text FROM memory",
        &[],
    )?;
    reindexed += tx.execute(
        "INSERT INTO search_docs (doc, title, body)
         SELECT seq * 4 + 3, coalesce(task_id, ''), message FROM events WHERE seq IS NOT NULL",
        &[],
    )?;
    let insert = tx.prepare(
        "INSERT INTO search_docs (doc, title, body) VALUES ($1 * 4 + 3, $2, $3)
         ON CONFLICT (doc) DO NOTHING",
    )?;
    for chunk in chunk_ids(tx)? {
        let Ok(events) = read_chunk(tx, chunk) else {
            continue; // Reported by the check below; the rest is still rebuilt.
        };
        for e in events {
            tx.execute(
                &insert,
                &[&e.seq, &e.task_id.unwrap_or_default(), &e.message],
            )?;
            reindexed += 1;
        }
    }
    let mut resettled = Vec::new();
    for (id, _, want) in unsettled(tx)? {
        let task = lock_task(tx, &id)?;
        apply(tx, &task, changes::resettled(want, actor))?;
        resettled.push(id);
    }
    let orphans_removed = pipeline_orphans(tx)?
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    for rule in ORPHAN_RULES {
        tx.execute(rule.fix, &[])?;
    }
    let remaining = check(tx)?.problems;
    Ok(RepairReport {
        reindexed,
        resettled,
        orphans_removed,
        remaining,
    })
}
