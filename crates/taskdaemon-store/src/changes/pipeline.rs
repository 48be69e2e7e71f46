//! What a plan, spec, phase or coordinator-message change decides, once for
//! both backends: which rows a call creates or reuses (adding the same spec
//! twice is a no-op, so a driver recovering from a crash never duplicates
//! one), which status changes a cancel or resume cascades to, and the event
//! each change appends. The backends read the rows, hand them here, and
//! write what comes back in their own SQL inside one transaction.

use serde_json::json;
use taskdaemon_core::pipeline::{
    Delivery, MessageKind, MessageRecord, NewMessage, NewPhase, NewPlan, NewSpec, PhaseRecord,
    PipelineRef, PipelineStatus, PlanContent, PlanRecord, PlanTree, SpecRecord, validate_spec_set,
};
use taskdaemon_core::{EventKind, NewEvent};

use super::Recorded;
use crate::{Result, StoreError};

// The pipeline tables' columns in the order both backends read them back;
// the schemas name them alike, so one list serves both.
pub(crate) const PLAN_COLUMNS: &str = "id, goal, title, summary, body, status, target_branch, base_commit, \
     auto_approve, note, loop_task, input_tokens, output_tokens, cost_usd, created_at, updated_at";

pub(crate) const SPEC_COLUMNS: &str = "plan, name, title, body, status, priority, depends_on, branch, \
     worktree, note, loop_task, input_tokens, output_tokens, cost_usd, created_at, updated_at";

pub(crate) const PHASE_COLUMNS: &str = "plan, spec, number, name, title, body, validation, status, note, \
     loop_task, input_tokens, output_tokens, cost_usd, created_at, updated_at";

pub(crate) const MESSAGE_COLUMNS: &str =
    "id, plan, sender, recipient, kind, body, delivery, answer, reason, created_at, updated_at";

/// Pipeline rows whose parent is gone: what `check_integrity` reports and
/// `repair` deletes, the same SQL on both backends. `find` selects one text
/// column naming each row; `fix` deletes exactly those rows. Listed
/// children first, so a fix never leaves a row pointing at one it removed.
pub(crate) struct OrphanRule {
    pub what: &'static str,
    pub find: &'static str,
    pub fix: &'static str,
}

pub(crate) const ORPHAN_RULES: &[OrphanRule] = &[
    OrphanRule {
        what: "phase of a spec or plan that does not exist",
        find: "SELECT ph.plan || '/' || ph.spec || '/' || CAST(ph.number AS TEXT) FROM phases ph
               WHERE NOT EXISTS (SELECT 1 FROM specs s WHERE s.plan = ph.plan AND s.name = ph.spec)
                  OR NOT EXISTS (SELECT 1 FROM plans p WHERE p.id = ph.plan)
               ORDER BY 1",
        fix: "DELETE FROM phases
              WHERE NOT EXISTS (SELECT 1 FROM specs s WHERE s.plan = phases.plan AND s.name = phases.spec)
                 OR NOT EXISTS (SELECT 1 FROM plans p WHERE p.id = phases.plan)",
    },
    OrphanRule {
        what: "spec of a plan that does not exist",
        find: "SELECT s.plan || '/' || s.name FROM specs s
               WHERE NOT EXISTS (SELECT 1 FROM plans p WHERE p.id = s.plan) ORDER BY 1",
        fix: "DELETE FROM specs WHERE NOT EXISTS (SELECT 1 FROM plans p WHERE p.id = specs.plan)",
    },
    OrphanRule {
        what: "message of a plan or spec that does not exist",
        find: "SELECT 'MSG-' || CAST(m.id AS TEXT) FROM messages m
               WHERE NOT EXISTS (SELECT 1 FROM plans p WHERE p.id = m.plan)
                  OR (m.recipient NOT IN ('human', 'plan') AND NOT EXISTS
                        (SELECT 1 FROM specs s WHERE s.plan = m.plan AND s.name = m.recipient))
                  OR (m.sender NOT IN ('human', 'plan') AND NOT EXISTS
                        (SELECT 1 FROM specs s WHERE s.plan = m.plan AND s.name = m.sender))
               ORDER BY m.id",
        fix: "DELETE FROM messages
              WHERE NOT EXISTS (SELECT 1 FROM plans p WHERE p.id = messages.plan)
                 OR (messages.recipient NOT IN ('human', 'plan') AND NOT EXISTS
                       (SELECT 1 FROM specs s WHERE s.plan = messages.plan AND s.name = messages.recipient))
                 OR (messages.sender NOT IN ('human', 'plan') AND NOT EXISTS
                       (SELECT 1 FROM specs s WHERE s.plan = messages.plan AND s.name = messages.sender))",
    },
    // A message's per-recipient deliveries go with it (ON DELETE CASCADE).
    OrphanRule {
        what: "broadcast delivery to a spec that does not exist",
        find: "SELECT 'MSG-' || CAST(d.message AS TEXT) || ' to ' || d.recipient
               FROM message_deliveries d
               WHERE NOT EXISTS (SELECT 1 FROM messages m JOIN specs s ON s.plan = m.plan
                                 WHERE m.id = d.message AND s.name = d.recipient)
               ORDER BY d.message, d.recipient",
        fix: "DELETE FROM message_deliveries
              WHERE NOT EXISTS (SELECT 1 FROM messages m JOIN specs s ON s.plan = m.plan
                                WHERE m.id = message_deliveries.message
                                  AND s.name = message_deliveries.recipient)",
    },
    OrphanRule {
        what: "loop record of a plan, spec, phase or loop task that does not exist",
        find: "SELECT l.node || ' -> ' || l.loop_task FROM pipeline_loops l
               WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = l.loop_task)
                  OR NOT EXISTS (SELECT 1 FROM plans p WHERE p.id = l.plan)
                  OR NOT (l.node = l.plan
                       OR EXISTS (SELECT 1 FROM specs s WHERE s.plan || '/' || s.name = l.node)
                       OR EXISTS (SELECT 1 FROM phases ph
                                  WHERE ph.plan || '/' || ph.spec || '/' || CAST(ph.number AS TEXT) = l.node))
               ORDER BY l.seq",
        fix: "DELETE FROM pipeline_loops
              WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = pipeline_loops.loop_task)
                 OR NOT EXISTS (SELECT 1 FROM plans p WHERE p.id = pipeline_loops.plan)
                 OR NOT (pipeline_loops.node = pipeline_loops.plan
                      OR EXISTS (SELECT 1 FROM specs s WHERE s.plan || '/' || s.name = pipeline_loops.node)
                      OR EXISTS (SELECT 1 FROM phases ph
                                 WHERE ph.plan || '/' || ph.spec || '/' || CAST(ph.number AS TEXT) = pipeline_loops.node))",
    },
];

/// The integrity problem for orphan `name` found by `rule`.
pub(crate) fn orphan_problem(rule: &OrphanRule, name: &str) -> String {
    format!("{name}: {} (repair removes it)", rule.what)
}

/// The canonical plan id `id` names; refused when it names a spec or phase.
pub(crate) fn plan_ref(id: &str) -> Result<String> {
    match id.parse::<PipelineRef>()? {
        PipelineRef::Plan(plan) => Ok(plan),
        other => Err(StoreError::Invalid(format!(
            "{other} is not a plan id: expected PLAN-N"
        ))),
    }
}

/// The plan and spec name `id` (`PLAN-N/name`) names.
pub(crate) fn spec_ref(id: &str) -> Result<(String, String)> {
    match id.parse::<PipelineRef>()? {
        PipelineRef::Spec { plan, spec } => Ok((plan, spec)),
        other => Err(StoreError::Invalid(format!(
            "{other} is not a spec id: expected PLAN-N/name"
        ))),
    }
}

/// The plan, spec name and number `id` (`PLAN-N/name/K`) names.
pub(crate) fn phase_ref(id: &str) -> Result<(String, String, u32)> {
    match id.parse::<PipelineRef>()? {
        PipelineRef::Phase { plan, spec, number } => Ok((plan, spec, number)),
        other => Err(StoreError::Invalid(format!(
            "{other} is not a phase id: expected PLAN-N/name/K"
        ))),
    }
}

pub(crate) fn missing(what: &'static str, id: impl Into<String>) -> StoreError {
    StoreError::Missing {
        what,
        id: id.into(),
    }
}

/// A new plan: its validation, first status and `plan_created` event.
pub(crate) fn plan_created(
    new: &NewPlan,
    id: &str,
    actor: &str,
) -> Result<(PipelineStatus, Recorded)> {
    new.validate()?;
    let status = new.initial_status();
    let first_line = new.goal.lines().next().unwrap_or_default().trim();
    let verb = if new.auto_approve {
        "created, approved"
    } else {
        "created as a draft"
    };
    let event = NewEvent::new(
        EventKind::PlanCreated,
        actor,
        format!("{id} {verb}: {first_line}"),
    );
    let after = json!({
        "status": status.as_str(),
        "target_branch": new.target_branch,
        "base_commit": new.base_commit,
        "auto_approve": new.auto_approve,
    });
    Ok((status, (event, None, Some(after))))
}

/// Whether `content` is new for `plan`: `None` when the plan holds the same
/// already (a replayed `submit_plan`), refused when it holds another or
/// has ended.
pub(crate) fn plan_submitted(
    plan: &PlanRecord,
    content: &PlanContent,
    actor: &str,
) -> Result<Option<Recorded>> {
    content.validate()?;
    let same = plan.title.as_deref() == Some(content.title.as_str())
        && plan.summary.as_deref() == Some(content.summary.as_str())
        && plan.body.as_deref() == Some(content.body.as_str());
    if same {
        return Ok(None);
    }
    if plan.body.is_some() {
        return Err(StoreError::Conflict(format!(
            "{} already has a submitted plan ('{}'); a plan is submitted once",
            plan.id,
            plan.display_title()
        )));
    }
    if !plan.status.is_open() {
        return Err(StoreError::Conflict(format!(
            "{} is {}: a plan can no longer be submitted",
            plan.id, plan.status
        )));
    }
    let event = NewEvent::new(
        EventKind::PlanSubmitted,
        actor,
        format!("{} submitted: {}", plan.id, content.title.trim()),
    );
    let after = json!({ "title": content.title, "summary": content.summary });
    Ok(Some((event, None, Some(after))))
}

/// Which level of the tree a status change is on, for its event kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Plan,
    Spec,
    Phase,
}

impl Level {
    fn status_kind(self) -> EventKind {
        match self {
            Level::Plan => EventKind::PlanStatus,
            Level::Spec => EventKind::SpecStatus,
            Level::Phase => EventKind::PhaseStatus,
        }
    }
}

/// A decided status change of one plan, spec or phase: the backend sets
/// `status = to, note = note` on the row named by `id` and appends `event`.
#[derive(Debug, Clone)]
pub(crate) struct StatusChange {
    pub id: String,
    pub to: PipelineStatus,
    pub note: Option<String>,
    pub event: Recorded,
}

/// `id` (at `level`) moving `from -> to` through the state machine; the
/// note says why (it replaces the old one, so it always explains the
/// current status).
pub(crate) fn status_change(
    id: &str,
    level: Level,
    from: PipelineStatus,
    to: PipelineStatus,
    note: Option<&str>,
    actor: &str,
) -> Result<StatusChange> {
    from.check_transition(to, id)?;
    let mut message = format!("{id}: {from} -> {to}");
    if let Some(note) = note {
        message.push_str(&format!(" ({note})"));
    }
    let event = NewEvent::new(level.status_kind(), actor, message);
    let before = json!({ "status": from.as_str() });
    let after = json!({ "status": to.as_str(), "note": note });
    Ok(StatusChange {
        id: id.to_owned(),
        to,
        note: note.map(str::to_owned),
        event: (event, Some(before), Some(after)),
    })
}

/// `plan approve`: only a draft is approved.
pub(crate) fn approve(plan: &PlanRecord, actor: &str) -> Result<StatusChange> {
    if plan.status != PipelineStatus::Draft {
        return Err(StoreError::Conflict(format!(
            "{} is {}: only a draft plan can be approved",
            plan.id, plan.status
        )));
    }
    status_change(
        &plan.id,
        Level::Plan,
        plan.status,
        PipelineStatus::Pending,
        Some("approved"),
        actor,
    )
}

/// Cancelling a plan: the plan and every spec and phase not yet ended
/// (succeeded work stays succeeded), phases first so no change is lost if
/// a reader looks half-way (the whole list is one transaction anyway).
pub(crate) fn cancel(tree: &PlanTree, reason: &str, actor: &str) -> Result<Vec<StatusChange>> {
    let plan = &tree.plan;
    if plan.status.is_final() {
        return Err(StoreError::Conflict(format!(
            "{} is {} already: nothing to cancel",
            plan.id, plan.status
        )));
    }
    let to = PipelineStatus::Cancelled;
    let mut changes = Vec::new();
    for spec in &tree.specs {
        for phase in &spec.phases {
            if !phase.status.is_final() {
                changes.push(status_change(
                    &phase.id,
                    Level::Phase,
                    phase.status,
                    to,
                    Some(reason),
                    actor,
                )?);
            }
        }
        if !spec.spec.status.is_final() {
            changes.push(status_change(
                &spec.spec.id,
                Level::Spec,
                spec.spec.status,
                to,
                Some(reason),
                actor,
            )?);
        }
    }
    changes.push(status_change(
        &plan.id,
        Level::Plan,
        plan.status,
        to,
        Some(reason),
        actor,
    )?);
    Ok(changes)
}

/// Whether `status` is one `plan resume` puts back to pending.
fn resumable(status: PipelineStatus) -> bool {
    matches!(
        status,
        PipelineStatus::Paused | PipelineStatus::Failed | PipelineStatus::Blocked
    )
}

/// Resuming a plan: the plan, if paused or failed, and every paused, failed
/// or blocked spec and phase go back to pending; succeeded phases stay, so
/// nothing done runs again. Refused when there is nothing to resume.
pub(crate) fn resume(tree: &PlanTree, actor: &str) -> Result<Vec<StatusChange>> {
    let plan = &tree.plan;
    let to = PipelineStatus::Pending;
    let note = Some("resumed");
    let mut changes = Vec::new();
    if plan.status.is_final() || plan.status == PipelineStatus::Draft {
        return Err(StoreError::Conflict(format!(
            "{} is {}: only a paused or failed plan (or one with paused or failed specs) can be resumed",
            plan.id, plan.status
        )));
    }
    for spec in &tree.specs {
        if resumable(spec.spec.status) {
            changes.push(status_change(
                &spec.spec.id,
                Level::Spec,
                spec.spec.status,
                to,
                note,
                actor,
            )?);
        }
        for phase in &spec.phases {
            if resumable(phase.status) {
                changes.push(status_change(
                    &phase.id,
                    Level::Phase,
                    phase.status,
                    to,
                    note,
                    actor,
                )?);
            }
        }
    }
    if resumable(plan.status) {
        changes.push(status_change(
            &plan.id,
            Level::Plan,
            plan.status,
            to,
            note,
            actor,
        )?);
    }
    if changes.is_empty() {
        return Err(StoreError::Conflict(format!(
            "{} is {} and none of its specs or phases is paused or failed: nothing to resume",
            plan.id, plan.status
        )));
    }
    Ok(changes)
}

/// Refuses structure added to a plan that is a draft or has ended.
fn check_plan_takes_structure(plan: &PlanRecord, what: &str) -> Result<()> {
    if plan.status == PipelineStatus::Draft || !plan.status.is_open() {
        return Err(StoreError::Conflict(format!(
            "{} is {}: {what} can be added only to an approved plan that has not ended",
            plan.id, plan.status
        )));
    }
    Ok(())
}

/// What adding one spec of a set does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SpecAdd<'a> {
    /// The plan has this spec already with the same content: nothing is written.
    Existing(&'a SpecRecord),
    /// A new row, with its `spec_created` event.
    Create(&'a NewSpec, Box<Recorded>),
}

/// Decides a set of specs for `plan`, which has `existing`: each one is
/// either the same as a spec it has (reused), or new; a name it has with
/// other content, an unknown dependency or a cycle refuses the whole set.
pub(crate) fn specs_to_add<'a>(
    plan: &PlanRecord,
    existing: &'a [SpecRecord],
    new: &'a [NewSpec],
    actor: &str,
) -> Result<Vec<SpecAdd<'a>>> {
    check_plan_takes_structure(plan, "specs")?;
    let mut adds = Vec::with_capacity(new.len());
    let mut fresh = Vec::new();
    for spec in new {
        match existing.iter().find(|e| e.name == spec.name) {
            Some(found) if spec.same_as(found) => adds.push(Some(found)),
            Some(found) => {
                return Err(StoreError::Conflict(format!(
                    "spec '{}' already exists in {} with other content ('{}'); \
                     choose another name or send the same content again",
                    spec.name, plan.id, found.title
                )));
            }
            None => {
                adds.push(None);
                fresh.push(spec.clone());
            }
        }
    }
    let graph: Vec<(String, Vec<String>)> = existing
        .iter()
        .map(|s| (s.name.clone(), s.depends_on.clone()))
        .collect();
    validate_spec_set(&graph, &fresh)?;
    Ok(new
        .iter()
        .zip(adds)
        .map(|(spec, found)| match found {
            Some(found) => SpecAdd::Existing(found),
            None => SpecAdd::Create(spec, Box::new(spec_created(&plan.id, spec, actor))),
        })
        .collect())
}

fn spec_created(plan: &str, spec: &NewSpec, actor: &str) -> Recorded {
    let mut message = format!("{plan}/{}: {}", spec.name, spec.title.trim());
    if !spec.depends_on.is_empty() {
        message.push_str(&format!(" (after {})", spec.depends_on.join(", ")));
    }
    let event = NewEvent::new(EventKind::SpecCreated, actor, message);
    let after = json!({
        "status": PipelineStatus::Pending.as_str(),
        "depends_on": spec.depends_on,
        "priority": spec.priority,
    });
    (event, None, Some(after))
}

/// What adding one phase of a set does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PhaseAdd<'a> {
    Existing(&'a PhaseRecord),
    /// A new row numbered `number`, with its `phase_created` event.
    Create(&'a NewPhase, u32, Box<Recorded>),
}

/// Decides a set of phases for `spec` (of `plan`), which has `existing`:
/// the same name with the same content is reused, another content refused;
/// new ones are numbered after the last.
pub(crate) fn phases_to_add<'a>(
    plan: &PlanRecord,
    spec: &SpecRecord,
    existing: &'a [PhaseRecord],
    new: &'a [NewPhase],
    actor: &str,
) -> Result<Vec<PhaseAdd<'a>>> {
    check_plan_takes_structure(plan, "phases")?;
    if !spec.status.is_open() {
        return Err(StoreError::Conflict(format!(
            "{} is {}: phases can be added only to a spec that has not ended",
            spec.id, spec.status
        )));
    }
    let mut next = existing.iter().map(|p| p.number).max().unwrap_or(0) + 1;
    let mut seen = std::collections::HashSet::new();
    let mut adds = Vec::with_capacity(new.len());
    for phase in new {
        phase.validate()?;
        if !seen.insert(phase.name.as_str()) {
            return Err(taskdaemon_core::PipelineError::DuplicatePhase(phase.name.clone()).into());
        }
        match existing.iter().find(|e| e.name == phase.name) {
            Some(found) if phase.same_as(found) => adds.push(PhaseAdd::Existing(found)),
            Some(found) => {
                return Err(StoreError::Conflict(format!(
                    "phase '{}' already exists in {} (as phase {}) with other content; \
                     choose another name or send the same content again",
                    phase.name, spec.id, found.number
                )));
            }
            None => {
                let id = format!("{}/{next}", spec.id);
                let event = NewEvent::new(
                    EventKind::PhaseCreated,
                    actor,
                    format!("{id} ({}): {}", phase.name, phase.title.trim()),
                );
                let after = json!({
                    "status": PipelineStatus::Pending.as_str(),
                    "validation": phase.validation,
                });
                adds.push(PhaseAdd::Create(
                    phase,
                    next,
                    Box::new((event, None, Some(after))),
                ));
                next += 1;
            }
        }
    }
    Ok(adds)
}

/// A new message's `message_sent` event, after checking its parties and
/// body; `specs` are the names of the plan's specs (a recipient must be one
/// of them, `human` or `plan`).
pub(crate) fn message_sent(new: &NewMessage, specs: &[String], actor: &str) -> Result<Recorded> {
    new.validate()?;
    for (role, party) in [("sender", &new.from), ("recipient", &new.to)] {
        let special = party == taskdaemon_core::pipeline::HUMAN
            || party == taskdaemon_core::pipeline::BROADCAST;
        if !special && !specs.contains(party) {
            return Err(StoreError::Invalid(format!(
                "{role} '{party}' is not a spec of {} (use 'human', 'plan' or a spec name)",
                new.plan
            )));
        }
    }
    let event = NewEvent::new(
        EventKind::MessageSent,
        actor,
        format!(
            "{} from {} to {}: {}",
            new.kind,
            new.from,
            new.to,
            first_line(&new.body)
        ),
    );
    let after = json!({ "from": new.from, "to": new.to, "kind": new.kind.as_str() });
    Ok((event, None, Some(after)))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default().trim()
}

/// A decided change of one recipient's delivery of a broadcast: the
/// backend writes `(message, recipient) -> (to, reason)` and appends `event`.
#[derive(Debug, Clone)]
pub(crate) struct RecipientChange {
    pub recipient: String,
    pub to: Delivery,
    pub reason: Option<String>,
    pub event: Recorded,
}

/// `recipient` (a spec of the plan, one of `specs`) reading broadcast
/// `message` (`to` delivered) or missing it (`to` dead, with `reason`).
/// Its row, if any, is in `message.deliveries`. `None` when it is so
/// already (a driver replaying after a crash).
pub(crate) fn recipient_change(
    message: &MessageRecord,
    recipient: &str,
    specs: &[String],
    to: Delivery,
    reason: Option<&str>,
    actor: &str,
) -> Result<Option<RecipientChange>> {
    if !message.is_broadcast() {
        return Err(StoreError::Conflict(format!(
            "{} goes to {}, not to the whole plan: it has one delivery",
            message.id, message.to
        )));
    }
    if recipient == message.from {
        return Err(StoreError::Invalid(format!(
            "{} was sent by {recipient}: a loop does not receive its own broadcast",
            message.id
        )));
    }
    if !specs.iter().any(|s| s == recipient) {
        return Err(StoreError::Invalid(format!(
            "recipient '{recipient}' is not a spec of {}",
            message.plan
        )));
    }
    if let Some(current) = message.deliveries.iter().find(|d| d.recipient == recipient) {
        if current.delivery == to {
            return Ok(None);
        }
        return Err(StoreError::Conflict(format!(
            "{} is {} to {recipient} already: it cannot become {to}",
            message.id, current.delivery
        )));
    }
    let (kind, text, reason) = match to {
        Delivery::Delivered => (
            EventKind::MessageDelivered,
            format!("{} delivered to {recipient}", message.id),
            None,
        ),
        Delivery::Dead => {
            let reason = reason
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .unwrap_or("undeliverable");
            (
                EventKind::MessageDead,
                format!("{} to {recipient} is a dead letter: {reason}", message.id),
                Some(reason.to_owned()),
            )
        }
        other => {
            return Err(StoreError::Conflict(format!(
                "a broadcast's recipient is delivered or dead, not {other}"
            )));
        }
    };
    let event = NewEvent::new(kind, actor, text);
    let after = json!({ "recipient": recipient, "delivery": to.as_str(), "reason": reason });
    Ok(Some(RecipientChange {
        recipient: recipient.to_owned(),
        to,
        reason,
        event: (event, None, Some(after)),
    }))
}

/// Whether `recipient` reading `message` is the asker reading the answer
/// to its query (rather than the query's addressee reading the question).
pub(crate) fn is_answer_for(message: &MessageRecord, recipient: &str) -> bool {
    message.kind == MessageKind::Query && message.from == recipient && message.to != recipient
}

/// The spec that asked query `message` (`recipient`) read its answer: the
/// answer reaches a loop once, so its delivery to the asker is recorded
/// beside the query's own. `None` when it was recorded already (a driver
/// replaying after a crash).
pub(crate) fn answer_read(
    message: &MessageRecord,
    recipient: &str,
    actor: &str,
) -> Result<Option<RecipientChange>> {
    if message.delivery != Delivery::Answered {
        return Err(StoreError::Conflict(format!(
            "{} is {}: there is no answer for {recipient} to read yet",
            message.id, message.delivery
        )));
    }
    if message.deliveries.iter().any(|d| d.recipient == recipient) {
        return Ok(None);
    }
    let event = NewEvent::new(
        EventKind::MessageDelivered,
        actor,
        format!("the answer to {} delivered to {recipient}", message.id),
    );
    let after =
        json!({ "recipient": recipient, "delivery": Delivery::Delivered.as_str(), "answer": true });
    Ok(Some(RecipientChange {
        recipient: recipient.to_owned(),
        to: Delivery::Delivered,
        reason: None,
        event: (event, None, Some(after)),
    }))
}

/// Refuses marking addressed message `message` as read by a spec it is
/// not addressed to.
pub(crate) fn check_addressed_to(message: &MessageRecord, recipient: &str) -> Result<()> {
    if message.to == recipient {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "{} is addressed to {}, not {recipient}",
        message.id, message.to
    )))
}

/// Why `spec` missed broadcast `message`: it ended after the broadcast was
/// sent without its loop reading it. `None` when it may still read it, did,
/// sent it, or had ended before it was sent (then it was no recipient).
pub(crate) fn missed_broadcast(message: &MessageRecord, spec: &SpecRecord) -> Option<String> {
    let answered = message.deliveries.iter().any(|d| d.recipient == spec.name);
    let ended_after = !spec.status.is_open() && spec.updated_at >= message.created_at;
    (message.is_broadcast() && spec.name != message.from && !answered && ended_after).then(|| {
        format!(
            "spec {} ended ({}) before its loop read it",
            spec.name, spec.status
        )
    })
}

/// A decided delivery change of a message.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryChange {
    pub to: Delivery,
    pub answer: Option<String>,
    pub reason: Option<String>,
    pub event: Recorded,
}

/// Moving `message` to `to`: `answer` for `answered` (queries only), `reason`
/// for `dead`. A message already delivered stays delivered when marked
/// again (a driver replaying after a crash).
pub(crate) fn delivery_change(
    message: &MessageRecord,
    to: Delivery,
    text: Option<&str>,
    actor: &str,
) -> Result<Option<DeliveryChange>> {
    if message.delivery == to && to == Delivery::Delivered {
        return Ok(None);
    }
    if to == Delivery::Answered && message.kind != MessageKind::Query {
        return Err(StoreError::Conflict(format!(
            "{} is a {}, not a query: only a query can be answered",
            message.id, message.kind
        )));
    }
    if !message.delivery.can_move_to(to) {
        return Err(StoreError::Conflict(format!(
            "{} is {}: it cannot become {to}",
            message.id, message.delivery
        )));
    }
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    let (kind, message_text, answer, reason) = match to {
        Delivery::Answered => {
            let answer =
                text.ok_or_else(|| StoreError::Invalid("an answer must not be empty".to_owned()))?;
            (
                EventKind::MessageAnswered,
                format!("{} answered: {}", message.id, first_line(answer)),
                Some(answer.to_owned()),
                None,
            )
        }
        Delivery::Dead => {
            let reason = text.unwrap_or("undeliverable");
            (
                EventKind::MessageDead,
                format!(
                    "{} to {} is a dead letter: {reason}",
                    message.id, message.to
                ),
                None,
                Some(reason.to_owned()),
            )
        }
        Delivery::Delivered => (
            EventKind::MessageDelivered,
            format!("{} delivered to {}", message.id, message.to),
            None,
            None,
        ),
        Delivery::Pending => {
            return Err(StoreError::Conflict(format!(
                "{} cannot go back to pending",
                message.id
            )));
        }
    };
    let event = NewEvent::new(kind, actor, message_text);
    let before = json!({ "delivery": message.delivery.as_str() });
    let after = json!({ "delivery": to.as_str(), "answer": answer, "reason": reason });
    Ok(Some(DeliveryChange {
        to,
        answer,
        reason,
        event: (event, Some(before), Some(after)),
    }))
}
