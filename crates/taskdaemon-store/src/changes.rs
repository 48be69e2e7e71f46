//! What a status change writes, and what a tracked-task, loop or memory
//! change decides, once for every backend.
//!
//! Each backend reads the rows, hands them here, and applies the returned
//! [`Change`] with its own SQL inside its own transaction, so the columns a
//! change sets, the event it appends and the refusals it makes cannot drift
//! apart between SQLite and PostgreSQL.

use serde_json::json;
use taskdaemon_core::gate::Gate;
use taskdaemon_core::graph::{check_new_edge, satisfies, waiting_status};
use taskdaemon_core::id::{IdScheme, hash_id};
use taskdaemon_core::tracked::memory_id;
use taskdaemon_core::{
    EventKind, LoopEnd, LoopIteration, LoopRecord, Memory, NewEvent, NewLoop, NewMemory,
    NewTracked, Status, TaskKind, TaskRecord, TrackedAction, TrackedEdit, task::shell_join,
};

use crate::{Result, StoreError};

pub(crate) mod links;
pub(crate) mod pipeline;

/// The event of a task compacted (decay): its summary replaced the text.
pub(crate) fn compacted_event(task: &TaskRecord, summary: &str, actor: &str) -> Recorded {
    let event = NewEvent::new(
        EventKind::Edited,
        actor,
        format!(
            "compacted {}: the summary replaced its description and note (`task restore` brings them back)",
            task.id
        ),
    );
    (
        event,
        Some(json!({ "description": task.description, "note": task.note })),
        Some(json!({ "description": summary, "note": null })),
    )
}

/// The event of a compacted task given its original text back.
pub(crate) fn restored_event(task: &TaskRecord, actor: &str) -> Recorded {
    let event = NewEvent::new(
        EventKind::Edited,
        actor,
        format!(
            "restored {}: its original description and note are back",
            task.id
        ),
    );
    (
        event,
        Some(json!({ "description": task.description })),
        None,
    )
}

/// The refusal to compact `task`, when the rule refuses.
pub(crate) fn check_compactable(task: &TaskRecord, compacted: bool, summary: &str) -> Result<()> {
    match taskdaemon_core::decay::refusal(task, compacted, summary) {
        Some(reason) => Err(StoreError::Conflict(reason)),
        None => Ok(()),
    }
}

/// The refusal to restore a task that was never compacted.
pub(crate) fn nothing_to_restore(task: &TaskRecord) -> StoreError {
    StoreError::Conflict(format!(
        "{} was never compacted: there is no original to restore",
        task.id
    ))
}

/// What `import --merge` does with one tracked task of the file.
#[derive(Debug)]
pub(crate) enum MergeStep {
    /// New here: insert it, with this event.
    Add(Recorded),
    /// Known and the file's version is at least as new: replace the row.
    Replace(Recorded),
    /// The same as stored.
    Unchanged,
    /// The stored version changed after the file's: keep it.
    KeepStored,
}

/// Decides [`MergeStep`] for `incoming` against the task stored under its
/// id. One id naming two different tasks (their UUIDs differ) is refused:
/// that is a collision, not a newer version.
/// The tables whose rows hang off a tracked task by `task_id`: a merged
/// version replaces them with the task's row.
pub(crate) const TASK_ROW_TABLES: &[&str] =
    &["task_labels", "task_deps", "task_files", "task_links"];

pub(crate) fn merge_step(
    stored: Option<&TaskRecord>,
    incoming: &TaskRecord,
    actor: &str,
) -> Result<MergeStep> {
    let Some(stored) = stored else {
        let event = NewEvent::new(
            EventKind::Created,
            actor,
            format!(
                "{} added by import --merge ({})",
                incoming.id, incoming.status
            ),
        );
        return Ok(MergeStep::Add((
            event,
            None,
            Some(json!({ "status": incoming.status })),
        )));
    };
    if stored.uuid != incoming.uuid || stored.kind != TaskKind::Manual {
        return Err(StoreError::Conflict(format!(
            "{} in the file is another task than {} here (their uuids differ): the ids collided; \
             nothing was imported. Set `[tracked] ids = \"hash\"` on every clone so new ids cannot",
            incoming.id, stored.id
        )));
    }
    if links::same_own_state(stored, incoming) {
        return Ok(MergeStep::Unchanged);
    }
    if stored.updated_at > incoming.updated_at {
        return Ok(MergeStep::KeepStored);
    }
    let event = NewEvent::new(
        EventKind::Edited,
        actor,
        format!("{} updated by import --merge", incoming.id),
    );
    Ok(MergeStep::Replace((
        event,
        Some(json!({ "status": stored.status, "title": stored.title() })),
        Some(json!({ "status": incoming.status, "title": incoming.title() })),
    )))
}

/// Attempts at a fresh hash id before giving up (each collides with a
/// stored id with a chance of about n/2^50).
const HASH_ID_ATTEMPTS: usize = 8;

/// The UUID and id of a new tracked task under `new.id_scheme`: the next
/// counter value, or a hash of a fresh UUID that no stored task has.
/// `tx` is the backend's open transaction, handed to both callbacks.
pub(crate) fn mint_tracked_id<T: ?Sized>(
    tx: &mut T,
    new: &NewTracked,
    next_counter_id: impl FnOnce(&mut T) -> Result<String>,
    mut taken: impl FnMut(&mut T, &str) -> Result<bool>,
) -> Result<(uuid::Uuid, String)> {
    let tool = new.tool.as_deref();
    match new.id_scheme {
        IdScheme::Counter => Ok((uuid::Uuid::now_v7(), next_counter_id(tx)?)),
        IdScheme::Hash => {
            for _ in 0..HASH_ID_ATTEMPTS {
                let uuid = uuid::Uuid::now_v7();
                let id = hash_id(tool, uuid.as_u128())?;
                if !taken(tx, &id)? {
                    return Ok((uuid, id));
                }
            }
            Err(StoreError::Conflict(format!(
                "no free hash id found in {HASH_ID_ATTEMPTS} attempts"
            )))
        }
    }
}

/// A column value a change sets; each backend converts it to its own type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Column {
    Int(Option<i64>),
    Text(Option<String>),
    Bool(bool),
}

impl Column {
    /// The value as the event's `after` records it (a flag is `true`, not
    /// the `1` SQLite stores).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Column::Int(v) => json!(v),
            Column::Text(v) => json!(v),
            Column::Bool(v) => json!(v),
        }
    }
}

impl From<i64> for Column {
    fn from(v: i64) -> Self {
        Column::Int(Some(v))
    }
}

impl From<i32> for Column {
    fn from(v: i32) -> Self {
        Column::Int(Some(i64::from(v)))
    }
}

impl From<Option<i32>> for Column {
    fn from(v: Option<i32>) -> Self {
        Column::Int(v.map(i64::from))
    }
}

impl From<String> for Column {
    fn from(v: String) -> Self {
        Column::Text(Some(v))
    }
}

impl From<bool> for Column {
    fn from(v: bool) -> Self {
        Column::Bool(v)
    }
}

/// An optional 32-bit column's value; `None` when it does not fit (the
/// row would not read back as a task either).
fn narrow(value: Option<i64>) -> Option<Option<i32>> {
    match value {
        None => Some(None),
        Some(v) => i32::try_from(v).ok().map(Some),
    }
}

/// A status change with the columns it sets and the event it appends.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub to: Status,
    pub columns: Vec<(&'static str, Column)>,
    pub event: NewEvent,
    /// Facts the event's `after` records beside the columns without a row
    /// keeping them (an exit's detection and recording instants).
    pub observed: Vec<(&'static str, serde_json::Value)>,
}

impl Change {
    /// Checks the state machine for `task` and returns the `before` and
    /// `after` its event records: the old status, and the new one with every
    /// column set.
    pub fn check(&self, task: &TaskRecord) -> Result<(serde_json::Value, serde_json::Value)> {
        task.status.check_transition(self.to, &task.id)?;
        let mut after = serde_json::Map::new();
        after.insert("status".to_owned(), json!(self.to.as_str()));
        for (column, value) in &self.columns {
            after.insert((*column).to_owned(), value.to_json());
        }
        for (name, value) in &self.observed {
            after.insert((*name).to_owned(), value.clone());
        }
        Ok((
            json!({ "status": task.status.as_str() }),
            serde_json::Value::Object(after),
        ))
    }

    /// `task` as this change leaves its row when written at `now` (what
    /// reading the task back in the same transaction gives), or `None` when
    /// it sets a column this does not map: the caller reads the task again.
    /// Claims and completions use it instead of a second read of the task
    /// (its labels, links and counts are as the locked read found them; the
    /// change writes none of them).
    pub fn applied_to(&self, task: &TaskRecord, now: i64) -> Option<TaskRecord> {
        let mut after = task.clone();
        after.status = self.to;
        after.updated_at = now;
        for (column, value) in &self.columns {
            match (*column, value) {
                ("started_at", Column::Int(v)) => after.started_at = *v,
                ("finished_at", Column::Int(v)) => after.finished_at = *v,
                ("exit_code", Column::Int(v)) => after.exit_code = narrow(*v)?,
                ("signal", Column::Int(v)) => after.signal = narrow(*v)?,
                ("pid", Column::Int(v)) => after.pid = narrow(*v)?,
                ("pgid", Column::Int(v)) => after.pgid = narrow(*v)?,
                ("restarts", Column::Int(Some(v))) => after.restarts = u32::try_from(*v).ok()?,
                ("error", Column::Text(v)) => after.error = v.clone(),
                ("stop_requested", Column::Bool(v)) => after.stop_requested = *v,
                _ => return None,
            }
        }
        Some(after)
    }

    /// Whether the change gains or loses `succeeded`, which the tasks that
    /// depend on `task` wait for: they must be re-decided in the same transaction.
    pub fn moves_dependents(&self, task: &TaskRecord) -> bool {
        task.status == Status::Succeeded || self.to == Status::Succeeded
    }

    /// A change that ends a task without an exit status (it never started,
    /// or vanished), keeping `error` as the reason.
    pub fn ended_with_error(
        to: Status,
        kind: EventKind,
        error: &str,
        now: i64,
        actor: &str,
    ) -> Self {
        Change {
            observed: Vec::new(),
            to,
            columns: vec![
                ("error", error.to_owned().into()),
                ("finished_at", now.into()),
            ],
            event: NewEvent::new(kind, actor, error),
        }
    }
}

/// Refuses a tracked-only operation (`what`) on a process, queue task or loop.
pub(crate) fn require_tracked(task: &TaskRecord, what: &str) -> Result<()> {
    if task.kind == TaskKind::Manual {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "{} is a {} task: {what} works on tracked tasks only (use kill or restart for processes)",
        task.id,
        task.kind.as_str()
    )))
}

/// What `action` does to a tracked task at `now`. `unmet` lists the
/// dependencies still in the way (`TASK-1 (running)`), for a blocked start.
pub(crate) fn tracked_action(
    task: &TaskRecord,
    action: &TrackedAction,
    unmet: impl FnOnce() -> Result<String>,
    now: i64,
    actor: &str,
) -> Result<Change> {
    require_tracked(task, &format!("`task {}`", action.verb()))?;
    links::check_children_closed(task, action)?;
    if *action == TrackedAction::Start && task.status == Status::Blocked {
        return Err(StoreError::Conflict(format!(
            "{} is blocked by {}",
            task.id,
            unmet()?
        )));
    }
    let (columns, event) = match action {
        TrackedAction::Start => (
            vec![("started_at", Column::Int(Some(now)))],
            NewEvent::new(EventKind::Started, actor, "started"),
        ),
        ended => {
            // An ended task is nobody's any more.
            let mut columns = vec![
                ("finished_at", Column::Int(Some(now))),
                ("claimed_by", Column::Text(None)),
                ("lease_until", Column::Int(None)),
            ];
            let message = match ended.note() {
                Some(note) => {
                    columns.push(("note", Column::Text(Some(note.to_owned()))));
                    format!("{}: {note}", ended.target())
                }
                None => ended.target().to_string(),
            };
            (columns, NewEvent::new(EventKind::Finished, actor, message))
        }
    };
    Ok(Change {
        observed: Vec::new(),
        to: action.target(),
        columns,
        event,
    })
}

/// The `edited` event for a task that was `before` and is now `after`.
pub(crate) fn edit_event(
    before: &TaskRecord,
    after: &TaskRecord,
    edit: &TrackedEdit,
    actor: &str,
) -> Recorded {
    let mut old = serde_json::Map::new();
    let mut new = serde_json::Map::new();
    let mut changed = |field: &str, was: serde_json::Value, is: serde_json::Value| {
        old.insert(field.to_owned(), was);
        new.insert(field.to_owned(), is);
    };
    if edit.title.is_some() {
        changed("title", json!(before.name), json!(after.name));
    }
    if edit.description.is_some() {
        changed(
            "description",
            json!(before.description),
            json!(after.description),
        );
    }
    if edit.priority.is_some() {
        changed("priority", json!(before.priority), json!(after.priority));
    }
    if before.labels != after.labels {
        changed("labels", json!(before.labels), json!(after.labels));
    }
    let fields: Vec<&str> = new.keys().map(String::as_str).collect();
    let event = NewEvent::new(
        EventKind::Edited,
        actor,
        format!("edited {}", fields.join(", ")),
    );
    (
        event,
        Some(serde_json::Value::Object(old)),
        Some(serde_json::Value::Object(new)),
    )
}

/// Starting (or, after a daemon crash, resuming) a loop at `next_iteration`:
/// `None` status change for a loop that already runs, only an `adopted` event.
pub(crate) fn loop_start(
    task: &TaskRecord,
    next_iteration: u32,
    now: i64,
    actor: &str,
) -> (Option<Change>, NewEvent) {
    if task.status == Status::Running {
        let event = NewEvent::new(
            EventKind::Adopted,
            actor,
            format!("resumed at iteration {next_iteration}"),
        );
        return (None, event);
    }
    let event = NewEvent::new(
        EventKind::Started,
        actor,
        format!("starting at iteration {next_iteration}"),
    );
    let change = Change {
        observed: Vec::new(),
        to: Status::Running,
        columns: vec![("started_at", Column::Int(Some(now)))],
        event: event.clone(),
    };
    (Some(change), event)
}

/// Ending a loop: the status, its reason as the note, and the exit code
/// `wait` reports.
pub(crate) fn loop_end(end: &LoopEnd, now: i64, actor: &str) -> Change {
    let message = end.message();
    let mut columns = vec![
        ("finished_at", Column::Int(Some(now))),
        ("note", Column::Text(Some(message.clone()))),
        ("exit_code", Column::Int(end.exit_code().map(i64::from))),
    ];
    if let LoopEnd::Failed { reason } = end {
        columns.push(("error", Column::Text(Some(reason.clone()))));
    }
    Change {
        observed: Vec::new(),
        to: end.status(),
        columns,
        event: NewEvent::new(
            EventKind::Exited,
            actor,
            format!("{}, {message}", end.status()),
        ),
    }
}

/// The `remembered` event for memory row `number`, which replaced `existing`
/// (a memory with the same key) when there was one.
pub(crate) fn remembered_event(
    new: &NewMemory,
    number: i64,
    existing: Option<&Memory>,
    actor: &str,
) -> Recorded {
    let text = new.text.trim();
    let verb = if existing.is_some() {
        "replaced"
    } else {
        "recorded"
    };
    let id = memory_id(number);
    let event = NewEvent::new(
        EventKind::Remembered,
        actor,
        format!("{} {verb} {id}: {text}", new.kind),
    );
    let before = existing.map(|old| json!({ "text": old.text }));
    let after = json!({ "id": id, "kind": new.kind.as_str(), "text": text });
    (event, before, Some(after))
}

/// An event with the `before` and `after` it records.
pub(crate) type Recorded = (
    NewEvent,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
);

/// The dependencies of a tracked task with their statuses, as the store
/// found them (a dependency whose task is gone counts as `lost`).
pub(crate) type DependencyStatuses = [(String, Status)];

/// `TASK-1 (running), TASK-2 (failed)`: the dependencies still in the way.
pub(crate) fn unmet_list(statuses: &DependencyStatuses) -> String {
    statuses
        .iter()
        .filter(|(_, s)| !satisfies(*s))
        .map(|(id, s)| format!("{id} ({s})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The status a not-yet-started task waits in: `pending` when every
/// dependency succeeded, else `blocked`.
pub(crate) fn waiting(statuses: &DependencyStatuses) -> Status {
    waiting_status(statuses.iter().map(|(_, s)| *s))
}

/// A new tracked task: the status it starts in and its `created` event.
/// `depends_on` are the stored ids of its dependencies.
pub(crate) fn tracked_created(
    new: &NewTracked,
    depends_on: &[String],
    statuses: &DependencyStatuses,
    actor: &str,
) -> (Status, Recorded) {
    let status = waiting(statuses);
    let mut message = new.title.trim().to_owned();
    if status == Status::Blocked {
        message.push_str(&format!(" (blocked by {})", unmet_list(statuses)));
    }
    let after = json!({ "status": status.as_str(), "depends_on": depends_on });
    let event = NewEvent::new(EventKind::Created, actor, message);
    (status, (event, None, Some(after)))
}

/// Refuses a new dependency of a task that has started.
fn check_dependency_target(task: &TaskRecord) -> Result<()> {
    if matches!(task.status, Status::Pending | Status::Blocked) {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "{} is {}: dependencies can only be added to work that has not started",
        task.id, task.status
    )))
}

/// Whether the edge `task -> dep` is new (an existing edge changes
/// nothing), after refusing it for a task that has started or an edge that
/// would close a cycle; `dependencies_of` reads the graph.
pub(crate) fn new_dependency(
    task: &TaskRecord,
    dep: &TaskRecord,
    dependencies_of: impl FnMut(&str) -> Result<Vec<String>>,
) -> Result<bool> {
    check_dependency_target(task)?;
    check_new_edge(&task.id, &dep.id, dependencies_of)?
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok(!task.depends_on.contains(&dep.id))
}

/// The event of the edge `task -> dep` just added.
pub(crate) fn dependency_added(dep: &TaskRecord, actor: &str) -> Recorded {
    let event = NewEvent::new(
        EventKind::DependencyAdded,
        actor,
        format!("depends on {} ({})", dep.id, dep.status),
    );
    (event, None, Some(json!({ "depends_on": dep.id })))
}

/// The event of the edge `task -> dep_id` removed; `NotFound` when there
/// was no such edge (`removed` rows is 0).
pub(crate) fn dependency_removed(
    task: &TaskRecord,
    dep_id: &str,
    removed: usize,
    actor: &str,
) -> Result<Recorded> {
    if removed == 0 {
        return Err(StoreError::NotFound(format!(
            "{dep_id} (as a dependency of {})",
            task.id
        )));
    }
    let event = NewEvent::new(
        EventKind::DependencyRemoved,
        actor,
        format!("no longer depends on {dep_id}"),
    );
    Ok((event, Some(json!({ "depends_on": dep_id })), None))
}

/// A file path a task touched, trimmed; refused when empty.
pub(crate) fn file_path(file: &str) -> Result<&str> {
    let file = file.trim();
    if file.is_empty() {
        return Err(StoreError::Invalid(
            "a file path must not be empty".to_owned(),
        ));
    }
    Ok(file)
}

/// The event of files newly recorded on a task; `None` when none was new.
pub(crate) fn files_added(added: &[String], actor: &str) -> Option<Recorded> {
    if added.is_empty() {
        return None;
    }
    let event = NewEvent::new(
        EventKind::ContextUpdated,
        actor,
        format!("files: {}", added.join(", ")),
    );
    Some((event, None, Some(json!({ "files_modified": added }))))
}

/// Moves a waiting task between `pending` and `blocked` to match its
/// dependencies; `None` when it is right already or not waiting.
/// `shut_gates` are the task's gates that have not opened: a waiting task
/// with one is `blocked` too (one rule for ready, next and rehydrate).
pub(crate) fn settle(
    task: &TaskRecord,
    statuses: &DependencyStatuses,
    shut_gates: &[Gate],
    actor: &str,
) -> Option<Change> {
    if !matches!(task.status, Status::Pending | Status::Blocked) {
        return None;
    }
    let wanted = gated(waiting(statuses), !shut_gates.is_empty());
    if wanted == task.status {
        return None;
    }
    let event = if wanted == Status::Blocked {
        let mut why: Vec<String> = Vec::new();
        if waiting(statuses) == Status::Blocked {
            why.push(format!("blocked by {}", unmet_list(statuses)));
        }
        why.extend(shut_gates.iter().map(|g| format!("gate {}", g.describe())));
        NewEvent::new(EventKind::Blocked, actor, why.join("; "))
    } else {
        NewEvent::new(
            EventKind::Unblocked,
            actor,
            "every dependency is done and every gate open",
        )
    };
    Some(Change {
        observed: Vec::new(),
        to: wanted,
        columns: Vec::new(),
        event,
    })
}

/// A repair moving a waiting task to the status its dependencies say.
pub(crate) fn resettled(want: Status, actor: &str) -> Change {
    let kind = if want == Status::Blocked {
        EventKind::Blocked
    } else {
        EventKind::Unblocked
    };
    Change {
        observed: Vec::new(),
        to: want,
        columns: Vec::new(),
        event: NewEvent::new(kind, actor, "status corrected by repair"),
    }
}

/// The status a waiting task should have by its dependencies' statuses,
/// joined with `,` (a missing status, or an unknown one, counts as `lost`).
pub(crate) fn waiting_by_joined(statuses: Option<&str>, has_shut_gate: bool) -> Status {
    let by_deps = waiting_status(
        statuses
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap_or(Status::Lost)),
    );
    gated(by_deps, has_shut_gate)
}

/// Refuses a loop spec that is not a JSON object; returns the loop's
/// `created` event.
pub(crate) fn loop_created(new: &NewLoop, actor: &str) -> Result<Recorded> {
    if !new.spec.is_object() {
        return Err(StoreError::Invalid(
            "a loop spec must be a JSON object".to_owned(),
        ));
    }
    let message = new.name.clone().unwrap_or_else(|| shell_join(&new.argv));
    let event = NewEvent::new(EventKind::Created, actor, message);
    Ok((
        event,
        None,
        Some(json!({ "status": Status::Pending.as_str() })),
    ))
}

/// Whether iteration `it` of the loop `record` is new: refused while the
/// loop does not run, `None` when it was recorded already, else its event.
pub(crate) fn loop_iteration(
    record: &LoopRecord,
    it: &LoopIteration,
    actor: &str,
) -> Result<Option<Recorded>> {
    if record.task.status != Status::Running {
        return Err(StoreError::Conflict(format!(
            "{} is {}: iterations are recorded only while it runs",
            record.task.id, record.task.status
        )));
    }
    if it.iteration <= record.iterations {
        return Ok(None);
    }
    let event = NewEvent::new(EventKind::IterationFinished, actor, it.summary());
    let after = serde_json::to_value(it).unwrap_or_default();
    Ok(Some((event, None, Some(after))))
}

/// The event of a session that ended.
pub(crate) fn session_ended(session: &str, actor: &str) -> Recorded {
    let event = NewEvent::new(
        EventKind::SessionEnded,
        actor,
        format!("session {session} ended"),
    );
    (event, None, Some(json!({ "session": session })))
}

/// Whether `new` is a new configuration version: its digest differs from
/// the newest recorded one (reloading an unchanged file records nothing).
pub(crate) fn config_is_new(
    newest: Option<&taskdaemon_core::ConfigVersion>,
    new: &taskdaemon_core::NewConfigVersion,
) -> bool {
    newest.is_none_or(|v| v.digest != new.digest)
}

/// The `config_loaded` event of version `version`.
pub(crate) fn config_loaded(
    new: &taskdaemon_core::NewConfigVersion,
    version: i64,
    actor: &str,
) -> NewEvent {
    let from = new.file.as_deref().unwrap_or("the built-in types");
    NewEvent::new(
        EventKind::ConfigLoaded,
        actor,
        format!(
            "loop types version {version} loaded from {from}: {}",
            new.type_names.join(", ")
        ),
    )
}

/// A waiting status with the task's gates counted: a shut gate blocks.
fn gated(by_dependencies: Status, has_shut_gate: bool) -> Status {
    if has_shut_gate {
        Status::Blocked
    } else {
        by_dependencies
    }
}
