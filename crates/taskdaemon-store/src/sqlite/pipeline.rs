//! Plans, specs, phases and coordinator messages in SQLite. What each change
//! writes and when it is refused is decided by `changes::pipeline`; this
//! module reads the rows it needs and writes the decisions. `BEGIN
//! IMMEDIATE` makes every call one writer, so a set of specs is checked
//! and added without a concurrent writer in between.

use rusqlite::{Connection, OptionalExtension, Row, params};
use taskdaemon_core::pipeline::{
    BROADCAST, Delivery, MessageRecord, NewMessage, NewPhase, NewPlan, NewSpec, PLAN_TOOL,
    PhaseRecord, PipelineCost, PipelineRef, PipelineStatus, PlanContent, PlanRecord, PlanTree,
    RecipientDelivery, SpecRecord, SpecTree, message_id, parse_message_id, spec_branch,
    spec_worktree,
};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{HumanId, LoopIteration};

use super::events::record;
use super::next_counter;
use crate::changes::pipeline::{
    self as decide, DeliveryChange, Level, MESSAGE_COLUMNS, PHASE_COLUMNS, PLAN_COLUMNS, PhaseAdd,
    RecipientChange, SPEC_COLUMNS, SpecAdd, StatusChange, missing, phase_ref, plan_ref, spec_ref,
};
use crate::encoding::{malformed, to_json_text};
use crate::{MessageFilter, PlanFilter, Result, StoreError};

fn parsed<T: std::str::FromStr>(row: &Row<'_>, column: &'static str) -> Result<T>
where
    T::Err: ToString,
{
    row.get::<_, String>(column)?
        .parse()
        .map_err(|e: T::Err| malformed(column, e))
}

fn cost(row: &Row<'_>) -> Result<PipelineCost> {
    Ok(PipelineCost {
        input_tokens: row.get::<_, i64>("input_tokens")? as u64,
        output_tokens: row.get::<_, i64>("output_tokens")? as u64,
        cost_usd: row.get("cost_usd")?,
    })
}

fn plan_from_row(row: &Row<'_>) -> Result<PlanRecord> {
    Ok(PlanRecord {
        id: row.get("id")?,
        goal: row.get("goal")?,
        title: row.get("title")?,
        summary: row.get("summary")?,
        body: row.get("body")?,
        status: parsed(row, "status")?,
        target_branch: row.get("target_branch")?,
        base_commit: row.get("base_commit")?,
        auto_approve: row.get("auto_approve")?,
        note: row.get("note")?,
        loop_task: row.get("loop_task")?,
        cost: cost(row)?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn spec_from_row(row: &Row<'_>) -> Result<SpecRecord> {
    let plan: String = row.get("plan")?;
    let name: String = row.get("name")?;
    let depends_on: String = row.get("depends_on")?;
    Ok(SpecRecord {
        id: format!("{plan}/{name}"),
        title: row.get("title")?,
        body: row.get("body")?,
        status: parsed(row, "status")?,
        priority: row.get("priority")?,
        depends_on: serde_json::from_str(&depends_on)
            .map_err(|e| malformed("specs.depends_on", e))?,
        branch: row.get("branch")?,
        worktree: row.get("worktree")?,
        note: row.get("note")?,
        loop_task: row.get("loop_task")?,
        cost: cost(row)?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        plan,
        name,
    })
}

fn phase_from_row(row: &Row<'_>) -> Result<PhaseRecord> {
    let plan: String = row.get("plan")?;
    let spec: String = row.get("spec")?;
    let number: u32 = row.get("number")?;
    Ok(PhaseRecord {
        id: format!("{plan}/{spec}/{number}"),
        name: row.get("name")?,
        title: row.get("title")?,
        body: row.get("body")?,
        validation: row.get("validation")?,
        status: parsed(row, "status")?,
        note: row.get("note")?,
        loop_task: row.get("loop_task")?,
        cost: cost(row)?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        plan,
        spec,
        number,
    })
}

fn message_from_row(row: &Row<'_>) -> Result<MessageRecord> {
    Ok(MessageRecord {
        id: message_id(row.get("id")?),
        plan: row.get("plan")?,
        from: row.get("sender")?,
        to: row.get("recipient")?,
        kind: parsed(row, "kind")?,
        body: row.get("body")?,
        delivery: parsed(row, "delivery")?,
        answer: row.get("answer")?,
        reason: row.get("reason")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        deliveries: Vec::new(),
    })
}

fn recipient_delivery_from_row(row: &Row<'_>) -> Result<RecipientDelivery> {
    Ok(RecipientDelivery {
        recipient: row.get("recipient")?,
        delivery: parsed(row, "delivery")?,
        reason: row.get("reason")?,
        at: row.get("at")?,
    })
}

/// Fills in each broadcast's per-recipient deliveries, and an answered
/// query's delivery of its answer to the asker.
fn with_deliveries(
    conn: &Connection,
    mut messages: Vec<MessageRecord>,
) -> Result<Vec<MessageRecord>> {
    for message in messages
        .iter_mut()
        .filter(|m| m.is_broadcast() || m.delivery == Delivery::Answered)
    {
        let number = parse_message_id(&message.id).unwrap_or_default();
        message.deliveries = query(
            conn,
            "SELECT recipient, delivery, reason, at FROM message_deliveries
             WHERE message = ?1 ORDER BY at, recipient",
            [number],
            recipient_delivery_from_row,
        )?;
    }
    Ok(messages)
}

/// Runs `sql` with `values` and maps every row with `map`.
fn query<T>(
    conn: &Connection,
    sql: &str,
    values: impl rusqlite::Params,
    map: fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(values)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

pub(super) fn create_plan(tx: &Connection, new: &NewPlan, actor: &str) -> Result<PlanRecord> {
    let number = next_counter(tx, "task_id")?;
    let id = HumanId::for_tool(Some(PLAN_TOOL), number)?.to_string();
    let (status, created) = decide::plan_created(new, &id, actor)?;
    let now = now_millis();
    tx.execute(
        "INSERT INTO plans (id, number, goal, title, summary, body, status, target_branch,
                            base_commit, auto_approve, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
        params![
            id,
            number as i64,
            new.goal,
            new.title,
            new.summary,
            new.body,
            status.as_str(),
            new.target_branch,
            new.base_commit,
            new.auto_approve,
            now
        ],
    )?;
    record(tx, Some(&id), created)?;
    load_plan(tx, &id)
}

pub(super) fn load_plan(conn: &Connection, id: &str) -> Result<PlanRecord> {
    let id = plan_ref(id)?;
    conn.prepare_cached(&format!("SELECT {PLAN_COLUMNS} FROM plans WHERE id = ?1"))?
        .query_row([&id], |row| Ok(plan_from_row(row)))
        .optional()?
        .unwrap_or_else(|| Err(missing("plan", id)))
}

pub(super) fn submit(
    tx: &Connection,
    id: &str,
    content: &PlanContent,
    actor: &str,
) -> Result<PlanRecord> {
    let plan = load_plan(tx, id)?;
    if let Some(event) = decide::plan_submitted(&plan, content, actor)? {
        tx.execute(
            "UPDATE plans SET title = ?1, summary = ?2, body = ?3, updated_at = ?4 WHERE id = ?5",
            params![
                content.title,
                content.summary,
                content.body,
                now_millis(),
                plan.id
            ],
        )?;
        record(tx, Some(&plan.id), event)?;
    }
    load_plan(tx, &plan.id)
}

pub(super) fn list_plans(conn: &Connection, filter: &PlanFilter) -> Result<Vec<PlanRecord>> {
    let open = if filter.open_only {
        " WHERE status NOT IN ('succeeded', 'failed', 'cancelled')"
    } else {
        ""
    };
    let limit = filter.limit.map_or(-1, |n| n as i64);
    let sql = format!("SELECT {PLAN_COLUMNS} FROM plans{open} ORDER BY number DESC LIMIT {limit}");
    Ok(oldest_first(query(conn, &sql, [], plan_from_row)?))
}

/// Rows read newest first (to keep the newest `LIMIT` of them) put oldest
/// first. Reversing here, not in an outer `SELECT ... ORDER BY`, because a
/// nested select costs SQLite more to prepare than reading a few rows, and
/// a CLI process prepares every statement afresh.
fn oldest_first<T>(mut rows: Vec<T>) -> Vec<T> {
    rows.reverse();
    rows
}

fn specs_of(conn: &Connection, plan: &str) -> Result<Vec<SpecRecord>> {
    query(
        conn,
        &format!("SELECT {SPEC_COLUMNS} FROM specs WHERE plan = ?1 ORDER BY seq"),
        [plan],
        spec_from_row,
    )
}

fn phases_of(conn: &Connection, plan: &str, spec: &str) -> Result<Vec<PhaseRecord>> {
    query(
        conn,
        &format!(
            "SELECT {PHASE_COLUMNS} FROM phases WHERE plan = ?1 AND spec = ?2 ORDER BY number"
        ),
        [plan, spec],
        phase_from_row,
    )
}

pub(super) fn tree(conn: &Connection, id: &str) -> Result<PlanTree> {
    let plan = load_plan(conn, id)?;
    let mut phases = query(
        conn,
        &format!("SELECT {PHASE_COLUMNS} FROM phases WHERE plan = ?1 ORDER BY spec, number"),
        [&plan.id],
        phase_from_row,
    )?;
    let specs = specs_of(conn, &plan.id)?
        .into_iter()
        .map(|spec| {
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut phases)
                .into_iter()
                .partition(|p| p.spec == spec.name);
            phases = rest;
            SpecTree { spec, phases: mine }
        })
        .collect();
    Ok(PlanTree { plan, specs })
}

/// Sets the status and note a decided change names, and appends its event.
fn apply(tx: &Connection, change: StatusChange) -> Result<()> {
    let now = now_millis();
    let status = change.to.as_str();
    let updated = match change.id.parse::<PipelineRef>()? {
        PipelineRef::Plan(plan) => tx.execute(
            "UPDATE plans SET status = ?1, note = ?2, updated_at = ?3 WHERE id = ?4",
            params![status, change.note, now, plan],
        )?,
        PipelineRef::Spec { plan, spec } => tx.execute(
            "UPDATE specs SET status = ?1, note = ?2, updated_at = ?3
             WHERE plan = ?4 AND name = ?5",
            params![status, change.note, now, plan, spec],
        )?,
        PipelineRef::Phase { plan, spec, number } => tx.execute(
            "UPDATE phases SET status = ?1, note = ?2, updated_at = ?3
             WHERE plan = ?4 AND spec = ?5 AND number = ?6",
            params![status, change.note, now, plan, spec, number],
        )?,
    };
    if updated != 1 {
        return Err(StoreError::Conflict(format!(
            "{} changed while its status was being set",
            change.id
        )));
    }
    record(tx, Some(&change.id), change.event)?;
    Ok(())
}

pub(super) fn approve(tx: &Connection, id: &str, actor: &str) -> Result<PlanRecord> {
    let plan = load_plan(tx, id)?;
    apply(tx, decide::approve(&plan, actor)?)?;
    load_plan(tx, &plan.id)
}

pub(super) fn cancel(tx: &Connection, id: &str, reason: &str, actor: &str) -> Result<PlanTree> {
    let tree = tree(tx, id)?;
    for change in decide::cancel(&tree, reason, actor)? {
        apply(tx, change)?;
    }
    self::tree(tx, &tree.plan.id)
}

pub(super) fn resume(tx: &Connection, id: &str, actor: &str) -> Result<PlanTree> {
    let tree = tree(tx, id)?;
    for change in decide::resume(&tree, actor)? {
        apply(tx, change)?;
    }
    self::tree(tx, &tree.plan.id)
}

pub(super) fn set_plan_status(
    tx: &Connection,
    id: &str,
    to: PipelineStatus,
    note: Option<&str>,
    actor: &str,
) -> Result<PlanRecord> {
    let plan = load_plan(tx, id)?;
    apply(
        tx,
        decide::status_change(&plan.id, Level::Plan, plan.status, to, note, actor)?,
    )?;
    load_plan(tx, &plan.id)
}

pub(super) fn load_spec(conn: &Connection, id: &str) -> Result<SpecRecord> {
    let (plan, name) = spec_ref(id)?;
    conn.prepare_cached(&format!(
        "SELECT {SPEC_COLUMNS} FROM specs WHERE plan = ?1 AND name = ?2"
    ))?
    .query_row([&plan, &name], |row| Ok(spec_from_row(row)))
    .optional()?
    .unwrap_or_else(|| Err(missing("spec", format!("{plan}/{name}"))))
}

pub(super) fn set_spec_status(
    tx: &Connection,
    id: &str,
    to: PipelineStatus,
    note: Option<&str>,
    actor: &str,
) -> Result<SpecRecord> {
    let spec = load_spec(tx, id)?;
    apply(
        tx,
        decide::status_change(&spec.id, Level::Spec, spec.status, to, note, actor)?,
    )?;
    load_spec(tx, &spec.id)
}

pub(super) fn add_specs(
    tx: &Connection,
    plan: &str,
    new: &[NewSpec],
    actor: &str,
) -> Result<Vec<SpecRecord>> {
    let plan = load_plan(tx, plan)?;
    let existing = specs_of(tx, &plan.id)?;
    let adds = decide::specs_to_add(&plan, &existing, new, actor)?;
    let mut seq: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM specs WHERE plan = ?1",
        [&plan.id],
        |r| r.get(0),
    )?;
    let now = now_millis();
    let mut names = Vec::with_capacity(adds.len());
    for add in adds {
        match add {
            SpecAdd::Existing(spec) => names.push(spec.id.clone()),
            SpecAdd::Create(spec, event) => {
                seq += 1;
                tx.execute(
                    "INSERT INTO specs (plan, name, seq, title, body, status, priority, depends_on,
                                        branch, worktree, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8, ?9, ?10, ?10)",
                    params![
                        plan.id,
                        spec.name,
                        seq,
                        spec.title,
                        spec.body,
                        spec.priority,
                        to_json_text(&spec.depends_on),
                        spec_branch(&plan.id, &spec.name),
                        spec_worktree(&plan.id, &spec.name),
                        now
                    ],
                )?;
                let id = format!("{}/{}", plan.id, spec.name);
                record(tx, Some(&id), *event)?;
                names.push(id);
            }
        }
    }
    names.iter().map(|id| load_spec(tx, id)).collect()
}

pub(super) fn load_phase(conn: &Connection, id: &str) -> Result<PhaseRecord> {
    let (plan, spec, number) = phase_ref(id)?;
    conn.prepare_cached(&format!(
        "SELECT {PHASE_COLUMNS} FROM phases WHERE plan = ?1 AND spec = ?2 AND number = ?3"
    ))?
    .query_row(params![plan, spec, number], |row| Ok(phase_from_row(row)))
    .optional()?
    .unwrap_or_else(|| Err(missing("phase", format!("{plan}/{spec}/{number}"))))
}

pub(super) fn set_phase_status(
    tx: &Connection,
    id: &str,
    to: PipelineStatus,
    note: Option<&str>,
    actor: &str,
) -> Result<PhaseRecord> {
    let phase = load_phase(tx, id)?;
    apply(
        tx,
        decide::status_change(&phase.id, Level::Phase, phase.status, to, note, actor)?,
    )?;
    load_phase(tx, &phase.id)
}

pub(super) fn add_phases(
    tx: &Connection,
    spec: &str,
    new: &[NewPhase],
    actor: &str,
) -> Result<Vec<PhaseRecord>> {
    let spec = load_spec(tx, spec)?;
    let plan = load_plan(tx, &spec.plan)?;
    let existing = phases_of(tx, &spec.plan, &spec.name)?;
    let adds = decide::phases_to_add(&plan, &spec, &existing, new, actor)?;
    let now = now_millis();
    let mut ids = Vec::with_capacity(adds.len());
    for add in adds {
        match add {
            PhaseAdd::Existing(phase) => ids.push(phase.id.clone()),
            PhaseAdd::Create(phase, number, event) => {
                tx.execute(
                    "INSERT INTO phases (plan, spec, number, name, title, body, validation, status,
                                         created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)",
                    params![
                        spec.plan,
                        spec.name,
                        number,
                        phase.name,
                        phase.title,
                        phase.body,
                        phase.validation,
                        now
                    ],
                )?;
                let id = format!("{}/{number}", spec.id);
                record(tx, Some(&id), *event)?;
                ids.push(id);
            }
        }
    }
    ids.iter().map(|id| load_phase(tx, id)).collect()
}

/// Checks that the plan, spec or phase `id` names exists.
fn require(conn: &Connection, target: &PipelineRef) -> Result<()> {
    let id = target.to_string();
    match target {
        PipelineRef::Plan(_) => load_plan(conn, &id).map(drop),
        PipelineRef::Spec { .. } => load_spec(conn, &id).map(drop),
        PipelineRef::Phase { .. } => load_phase(conn, &id).map(drop),
    }
}

pub(super) fn set_loop(tx: &Connection, id: &str, loop_task: Option<&str>) -> Result<()> {
    let target: PipelineRef = id.parse()?;
    require(tx, &target)?;
    let now = now_millis();
    match &target {
        PipelineRef::Plan(plan) => tx.execute(
            "UPDATE plans SET loop_task = ?1, updated_at = ?2 WHERE id = ?3",
            params![loop_task, now, plan],
        )?,
        PipelineRef::Spec { plan, spec } => tx.execute(
            "UPDATE specs SET loop_task = ?1, updated_at = ?2 WHERE plan = ?3 AND name = ?4",
            params![loop_task, now, plan, spec],
        )?,
        PipelineRef::Phase { plan, spec, number } => tx.execute(
            "UPDATE phases SET loop_task = ?1, updated_at = ?2
             WHERE plan = ?3 AND spec = ?4 AND number = ?5",
            params![loop_task, now, plan, spec, number],
        )?,
    };
    if let Some(loop_task) = loop_task {
        tx.execute(
            "INSERT INTO pipeline_loops (plan, node, loop_task) VALUES (?1, ?2, ?3)
             ON CONFLICT (node, loop_task) DO NOTHING",
            params![target.plan(), target.to_string(), loop_task],
        )?;
    }
    Ok(())
}

pub(super) fn loops_of(conn: &Connection, plan: &str) -> Result<Vec<(String, String)>> {
    let plan = load_plan(conn, plan)?;
    let mut stmt = conn.prepare_cached(
        "SELECT node, loop_task FROM pipeline_loops WHERE plan = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([&plan.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn add_cost(tx: &Connection, id: &str, cost: &PipelineCost) -> Result<()> {
    let target: PipelineRef = id.parse()?;
    require(tx, &target)?;
    let add = "input_tokens = input_tokens + ?1, output_tokens = output_tokens + ?2, \
               cost_usd = cost_usd + ?3";
    let (input, output, usd) = (
        cost.input_tokens as i64,
        cost.output_tokens as i64,
        cost.cost_usd,
    );
    if let PipelineRef::Phase { plan, spec, number } = &target {
        tx.execute(
            &format!("UPDATE phases SET {add} WHERE plan = ?4 AND spec = ?5 AND number = ?6"),
            params![input, output, usd, plan, spec, number],
        )?;
    }
    if let PipelineRef::Spec { plan, spec } | PipelineRef::Phase { plan, spec, .. } = &target {
        tx.execute(
            &format!("UPDATE specs SET {add} WHERE plan = ?4 AND name = ?5"),
            params![input, output, usd, plan, spec],
        )?;
    }
    tx.execute(
        &format!("UPDATE plans SET {add} WHERE id = ?4"),
        params![input, output, usd, target.plan()],
    )?;
    Ok(())
}

/// Adds a loop iteration's spending to the plan, spec or phase the loop
/// works for, if any: called inside the transaction that records the
/// iteration, which records each iteration once, so the charge is made
/// once too, whatever crashes around it.
pub(super) fn charge_iteration(tx: &Connection, loop_task: &str, it: &LoopIteration) -> Result<()> {
    let node: Option<String> = tx
        .prepare_cached(
            "SELECT node FROM pipeline_loops WHERE loop_task = ?1 ORDER BY seq LIMIT 1",
        )?
        .query_row([loop_task], |r| r.get(0))
        .optional()?;
    match node {
        Some(node) => add_cost(tx, &node, &PipelineCost::of_iteration(it)),
        None => Ok(()),
    }
}

pub(super) fn ready(conn: &Connection, limit: usize) -> Result<Vec<SpecRecord>> {
    let columns = SPEC_COLUMNS
        .split(", ")
        .map(|c| format!("s.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    query(
        conn,
        &format!(
            "SELECT {columns} FROM specs s JOIN plans p ON p.id = s.plan
             WHERE s.status = 'pending' AND p.status = 'running'
               AND NOT EXISTS (
                 SELECT 1 FROM json_each(s.depends_on) d
                 LEFT JOIN specs o ON o.plan = s.plan AND o.name = d.value
                 WHERE o.status IS NOT 'succeeded')
             ORDER BY s.priority DESC, p.number, s.seq
             LIMIT {}",
            super::limit_literal(limit)
        ),
        [],
        spec_from_row,
    )
}

pub(super) fn send(tx: &Connection, new: &NewMessage, actor: &str) -> Result<MessageRecord> {
    let plan = load_plan(tx, &new.plan)?;
    let specs: Vec<String> = specs_of(tx, &plan.id)?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let event = decide::message_sent(new, &specs, actor)?;
    let now = now_millis();
    tx.execute(
        "INSERT INTO messages (plan, sender, recipient, kind, body, delivery, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
        params![plan.id, new.from, new.to, new.kind.as_str(), new.body, now],
    )?;
    let id = message_id(tx.last_insert_rowid());
    record(tx, Some(&plan.id), event)?;
    load_message(tx, &id)
}

pub(super) fn load_message(conn: &Connection, id: &str) -> Result<MessageRecord> {
    let number = parse_message_id(id)
        .ok_or_else(|| StoreError::Invalid(format!("invalid message id '{id}': expected MSG-N")))?;
    let message = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"
        ))?
        .query_row([number], |row| Ok(message_from_row(row)))
        .optional()?
        .unwrap_or_else(|| Err(missing("message", message_id(number))))?;
    let mut loaded = with_deliveries(conn, vec![message])?;
    loaded
        .pop()
        .ok_or_else(|| missing("message", message_id(number)))
}

pub(super) fn list_messages(
    conn: &Connection,
    filter: &MessageFilter,
) -> Result<Vec<MessageRecord>> {
    let mut sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE 1 = 1");
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let mut push = |sql: &mut String, clause: &str, value: String| {
        values.push(value.into());
        sql.push_str(&format!(" AND {clause} = ?{}", values.len()));
    };
    if let Some(plan) = &filter.plan {
        push(&mut sql, "plan", plan_ref(plan)?);
    }
    if let Some(to) = &filter.to {
        push(&mut sql, "recipient", to.clone());
    }
    if let Some(kind) = filter.kind {
        push(&mut sql, "kind", kind.as_str().to_owned());
    }
    if !filter.delivery.is_empty() {
        let states: Vec<String> = filter
            .delivery
            .iter()
            .map(|d| format!("'{}'", d.as_str()))
            .collect();
        let states = states.join(", ");
        // A broadcast is in a state when it is, or any recipient's delivery
        // is; with another recipient asked for there is no broadcast to look
        // at, and leaving the clause out spares preparing its subquery.
        if filter.to.as_deref().is_none_or(|to| to == BROADCAST) {
            sql.push_str(&format!(
                " AND (delivery IN ({states}) OR (recipient = 'plan' AND EXISTS (
                         SELECT 1 FROM message_deliveries d
                         WHERE d.message = messages.id AND d.delivery IN ({states}))))"
            ));
        } else {
            sql.push_str(&format!(" AND delivery IN ({states})"));
        }
    }
    let limit = filter.limit.map_or(-1, |n| n as i64);
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit}"));
    let messages = query(
        conn,
        &sql,
        rusqlite::params_from_iter(values),
        message_from_row,
    )?;
    with_deliveries(conn, oldest_first(messages))
}

pub(super) fn pending_for(
    conn: &Connection,
    plan: &str,
    recipient: &str,
) -> Result<Vec<MessageRecord>> {
    let plan = plan_ref(plan)?;
    let messages = query(
        conn,
        &format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE plan = ?1
               AND ((delivery = 'pending'
                     AND (recipient = ?2
                          OR (recipient = 'plan' AND sender <> ?2 AND NOT EXISTS (
                                SELECT 1 FROM message_deliveries d
                                WHERE d.message = messages.id AND d.recipient = ?2))))
                    OR (kind = 'query' AND delivery = 'answered' AND sender = ?2
                        AND recipient <> ?2 AND NOT EXISTS (
                          SELECT 1 FROM message_deliveries d
                          WHERE d.message = messages.id AND d.recipient = ?2)))
             ORDER BY id"
        ),
        [&plan, recipient],
        message_from_row,
    )?;
    with_deliveries(conn, messages)
}

/// `recipient`'s loop read message `id` (`to` delivered) or cannot
/// (`to` dead, with `reason`): an addressed message changes its own
/// delivery, a broadcast records the recipient's, and an answered query
/// read by the spec that asked it records that the answer reached it.
pub(super) fn deliver_to(
    tx: &Connection,
    id: &str,
    recipient: &str,
    to: Delivery,
    reason: Option<&str>,
    actor: &str,
) -> Result<MessageRecord> {
    let message = load_message(tx, id)?;
    if decide::is_answer_for(&message, recipient) {
        if let Some(change) = decide::answer_read(&message, recipient, actor)? {
            write_recipient(tx, &message, change)?;
        }
        return load_message(tx, &message.id);
    }
    if !message.is_broadcast() {
        decide::check_addressed_to(&message, recipient)?;
        return deliver(tx, id, to, reason, actor);
    }
    let specs: Vec<String> = specs_of(tx, &message.plan)?
        .into_iter()
        .map(|s| s.name)
        .collect();
    if let Some(change) = decide::recipient_change(&message, recipient, &specs, to, reason, actor)?
    {
        write_recipient(tx, &message, change)?;
    }
    load_message(tx, &message.id)
}

fn write_recipient(
    tx: &Connection,
    message: &MessageRecord,
    change: RecipientChange,
) -> Result<()> {
    let number = parse_message_id(&message.id).unwrap_or_default();
    tx.execute(
        "INSERT INTO message_deliveries (message, recipient, delivery, reason, at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            number,
            change.recipient,
            change.to.as_str(),
            change.reason,
            now_millis()
        ],
    )?;
    record(tx, Some(&message.plan), change.event)?;
    Ok(())
}

/// Dead deliveries for the specs of `plan` that ended without reading a
/// pending broadcast sent before they ended.
pub(super) fn settle_broadcasts(
    tx: &Connection,
    plan: &str,
    actor: &str,
) -> Result<Vec<MessageRecord>> {
    let plan = load_plan(tx, plan)?;
    let specs = specs_of(tx, &plan.id)?;
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let broadcasts = list_messages(
        tx,
        &MessageFilter {
            plan: Some(plan.id.clone()),
            to: Some(taskdaemon_core::pipeline::BROADCAST.to_owned()),
            delivery: vec![Delivery::Pending],
            ..MessageFilter::default()
        },
    )?;
    let mut changed = Vec::new();
    for message in broadcasts {
        let mut touched = false;
        for spec in &specs {
            let Some(reason) = decide::missed_broadcast(&message, spec) else {
                continue;
            };
            let to = Delivery::Dead;
            if let Some(change) =
                decide::recipient_change(&message, &spec.name, &names, to, Some(&reason), actor)?
            {
                write_recipient(tx, &message, change)?;
                touched = true;
            }
        }
        if touched {
            changed.push(load_message(tx, &message.id)?);
        }
    }
    Ok(changed)
}

pub(super) fn deliver(
    tx: &Connection,
    id: &str,
    to: Delivery,
    text: Option<&str>,
    actor: &str,
) -> Result<MessageRecord> {
    let message = load_message(tx, id)?;
    if let Some(DeliveryChange {
        to,
        answer,
        reason,
        event,
    }) = decide::delivery_change(&message, to, text, actor)?
    {
        let number = parse_message_id(&message.id).unwrap_or_default();
        tx.execute(
            "UPDATE messages SET delivery = ?1, answer = COALESCE(?2, answer),
                                 reason = COALESCE(?3, reason), updated_at = ?4
             WHERE id = ?5",
            params![to.as_str(), answer, reason, now_millis(), number],
        )?;
        record(tx, Some(&message.plan), event)?;
    }
    load_message(tx, &message.id)
}

/// Streams plans, specs, phases and messages (in that order) for an export.
pub(super) fn export(
    conn: &Connection,
    sink: &mut dyn FnMut(crate::ExportRecord) -> Result<()>,
) -> Result<()> {
    use crate::ExportRecord;
    for plan in query(
        conn,
        &format!("SELECT {PLAN_COLUMNS} FROM plans ORDER BY number"),
        [],
        plan_from_row,
    )? {
        sink(ExportRecord::Plan(Box::new(plan)))?;
    }
    let prefixed = |columns: &str, table: &str| {
        columns
            .split(", ")
            .map(|c| format!("{table}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for spec in query(
        conn,
        &format!(
            "SELECT {} FROM specs JOIN plans p ON p.id = specs.plan ORDER BY p.number, specs.seq",
            prefixed(SPEC_COLUMNS, "specs")
        ),
        [],
        spec_from_row,
    )? {
        sink(ExportRecord::Spec(Box::new(spec)))?;
    }
    for phase in query(
        conn,
        &format!(
            "SELECT {} FROM phases JOIN plans p ON p.id = phases.plan
             JOIN specs s ON s.plan = phases.plan AND s.name = phases.spec
             ORDER BY p.number, s.seq, phases.number",
            prefixed(PHASE_COLUMNS, "phases")
        ),
        [],
        phase_from_row,
    )? {
        sink(ExportRecord::Phase(Box::new(phase)))?;
    }
    let messages = query(
        conn,
        &format!("SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY id"),
        [],
        message_from_row,
    )?;
    for message in with_deliveries(conn, messages)? {
        sink(ExportRecord::Message(Box::new(message)))?;
    }
    let mut stmt = conn.prepare("SELECT plan, node, loop_task FROM pipeline_loops ORDER BY seq")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    for row in rows {
        let (plan, node, loop_task) = row?;
        sink(ExportRecord::PipelineLoop {
            plan,
            node,
            loop_task,
        })?;
    }
    Ok(())
}

pub(super) fn import_plan(conn: &Connection, number: i64, p: &PlanRecord) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO plans ({PLAN_COLUMNS}, number)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        ),
        params![
            p.id,
            p.goal,
            p.title,
            p.summary,
            p.body,
            p.status.as_str(),
            p.target_branch,
            p.base_commit,
            p.auto_approve,
            p.note,
            p.loop_task,
            p.cost.input_tokens as i64,
            p.cost.output_tokens as i64,
            p.cost.cost_usd,
            p.created_at,
            p.updated_at,
            number
        ],
    )?;
    Ok(())
}

pub(super) fn import_spec(conn: &Connection, s: &SpecRecord) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO specs ({SPEC_COLUMNS}, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM specs WHERE plan = ?1))"
        ),
        params![
            s.plan,
            s.name,
            s.title,
            s.body,
            s.status.as_str(),
            s.priority,
            to_json_text(&s.depends_on),
            s.branch,
            s.worktree,
            s.note,
            s.loop_task,
            s.cost.input_tokens as i64,
            s.cost.output_tokens as i64,
            s.cost.cost_usd,
            s.created_at,
            s.updated_at
        ],
    )?;
    Ok(())
}

pub(super) fn import_phase(conn: &Connection, p: &PhaseRecord) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO phases ({PHASE_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ),
        params![
            p.plan,
            p.spec,
            p.number,
            p.name,
            p.title,
            p.body,
            p.validation,
            p.status.as_str(),
            p.note,
            p.loop_task,
            p.cost.input_tokens as i64,
            p.cost.output_tokens as i64,
            p.cost.cost_usd,
            p.created_at,
            p.updated_at
        ],
    )?;
    Ok(())
}

pub(super) fn import_message(conn: &Connection, number: i64, m: &MessageRecord) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ),
        params![
            number,
            m.plan,
            m.from,
            m.to,
            m.kind.as_str(),
            m.body,
            m.delivery.as_str(),
            m.answer,
            m.reason,
            m.created_at,
            m.updated_at
        ],
    )?;
    for d in &m.deliveries {
        conn.execute(
            "INSERT INTO message_deliveries (message, recipient, delivery, reason, at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![number, d.recipient, d.delivery.as_str(), d.reason, d.at],
        )?;
    }
    Ok(())
}
