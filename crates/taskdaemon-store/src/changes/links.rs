//! What typed links, subtasks and claims decide, once for every backend:
//! which link is allowed, the events they record, the id of a new subtask,
//! and whether a claim starts a task, takes a stale claim over or is refused.

use serde_json::json;
use taskdaemon_core::graph::check_new_edge;
use taskdaemon_core::links::child_id;
use taskdaemon_core::time::Millis;
use taskdaemon_core::{EventKind, LinkKind, NewEvent, Status, TaskLink, TaskRecord, TrackedAction};

use super::{Change, Column, Recorded, require_tracked, tracked_action};
use crate::{Result, StoreError};

/// Refuses a link of a task to itself or one touching a task that is not
/// tracked work.
pub(crate) fn check_link(from: &TaskRecord, kind: LinkKind, to: &TaskRecord) -> Result<()> {
    if from.id == to.id {
        return Err(StoreError::Invalid(format!(
            "{} cannot be linked to itself ({kind})",
            from.id
        )));
    }
    let what = format!("`task link {kind}`");
    require_tracked(from, &what)?;
    require_tracked(to, &what)
}

/// Refuses a parent-child link that would close a cycle of blocking links.
pub(crate) fn check_parent_child(
    parent: &str,
    child: &str,
    dependencies_of: impl FnMut(&str) -> Result<Vec<String>>,
) -> Result<()> {
    check_new_edge(parent, child, dependencies_of)?.map_err(|e| StoreError::Invalid(e.to_string()))
}

/// The event of `link` just made, recorded on its subject.
pub(crate) fn link_added(link: &TaskLink, actor: &str) -> Recorded {
    let event = NewEvent::new(EventKind::LinkAdded, actor, format!("linked: {link}"));
    (event, None, Some(json!({ "link": link })))
}

/// The event of `links` removed; `NotFound` when there were none.
pub(crate) fn links_removed(
    from: &str,
    kind: Option<LinkKind>,
    to: &str,
    links: &[TaskLink],
    actor: &str,
) -> Result<Recorded> {
    if links.is_empty() {
        let kind = kind.map_or_else(|| "any link".to_owned(), |k| k.to_string());
        return Err(StoreError::NotFound(format!("{kind} from {from} to {to}")));
    }
    let said: Vec<String> = links.iter().map(ToString::to_string).collect();
    let event = NewEvent::new(
        EventKind::LinkRemoved,
        actor,
        format!("unlinked: {}", said.join(", ")),
    );
    Ok((event, Some(json!({ "links": links })), None))
}

/// The links of `task` that `task unlink FROM [KIND] TO` removes.
pub(crate) fn links_to_remove(
    task: &TaskRecord,
    from: &str,
    kind: Option<LinkKind>,
    to: &str,
) -> Vec<TaskLink> {
    task.links
        .iter()
        .filter(|l| l.from == from && l.to == to && kind.is_none_or(|k| k == l.kind))
        .cloned()
        .collect()
}

/// The id of a new subtask of `parent`: one past the subtasks it has,
/// skipping ids taken already (`taken` says).
pub(crate) fn next_child_id(
    parent: &str,
    children: u32,
    mut taken: impl FnMut(&str) -> Result<bool>,
) -> Result<String> {
    let mut n = children + 1;
    loop {
        let id = child_id(parent, n);
        if !taken(&id)? {
            return Ok(id);
        }
        n += 1;
    }
}

/// Refuses `done` on a parent whose subtasks are not all ended.
pub(crate) fn check_children_closed(task: &TaskRecord, action: &TrackedAction) -> Result<()> {
    match (&task.rollup, action) {
        (Some(rollup), TrackedAction::Done { .. }) if rollup.open > 0 => {
            Err(StoreError::Conflict(format!(
                "{} has {} open subtask(s) ({rollup}): finish or cancel them first",
                task.id, rollup.open
            )))
        }
        _ => Ok(()),
    }
}

/// What a claim does to a task.
pub(crate) enum ClaimStep {
    /// A ready task starts, held by the claimant.
    Start(Change),
    /// A running task changes hands (its claim was stale, or is renewed by
    /// its own holder): set `claimed_by` and `lease_until`, record the event.
    Take {
        lease_until: Millis,
        recorded: Recorded,
    },
}

/// Decides a claim of `task` by `claimant` at `now`. `unmet` lists what a
/// blocked task waits for.
pub(crate) fn claim(
    task: &TaskRecord,
    claimant: &str,
    now: Millis,
    lease_ms: Millis,
    unmet: impl FnOnce() -> Result<String>,
    actor: &str,
) -> Result<ClaimStep> {
    require_tracked(task, "`task claim`")?;
    let lease_until = now + lease_ms;
    match (&task.status, &task.claim) {
        (Status::Pending | Status::Blocked, _) => {
            let mut change = tracked_action(task, &TrackedAction::Start, unmet, now, actor)?;
            change
                .columns
                .push(("claimed_by", Column::Text(Some(claimant.to_owned()))));
            change
                .columns
                .push(("lease_until", Column::Int(Some(lease_until))));
            change.event.message = format!("claimed by {claimant}");
            Ok(ClaimStep::Start(change))
        }
        (Status::Running, Some(held)) if held.by == claimant || held.is_stale(now) => {
            let message = if held.by == claimant {
                format!("claim renewed by {claimant}")
            } else {
                format!("stale claim of {} taken over by {claimant}", held.by)
            };
            let event = NewEvent::new(EventKind::ClaimRenewed, actor, message);
            let recorded = (
                event,
                Some(json!({ "claimed_by": held.by, "lease_until": held.lease_until })),
                Some(json!({ "claimed_by": claimant, "lease_until": lease_until })),
            );
            Ok(ClaimStep::Take {
                lease_until,
                recorded,
            })
        }
        (Status::Running, Some(held)) => Err(StoreError::Conflict(format!(
            "{} is claimed by {} (lease for {} s more)",
            task.id,
            held.by,
            (held.lease_until - now).max(0) / 1000
        ))),
        (Status::Running, None) => Err(StoreError::Conflict(format!(
            "{} is already in progress (started without a claim)",
            task.id
        ))),
        (status, _) => Err(StoreError::Conflict(format!(
            "{} cannot be claimed: it already ended ({status})",
            task.id
        ))),
    }
}

/// What an import writes for `task`'s links beyond its `depends_on` rows:
/// the kind of each dependency row it waits through (`waits-for`; plain
/// rows are `blocks`), and the links kept in `task_links` whose subject it is.
pub(crate) fn imported_links(task: &TaskRecord) -> (Vec<(&str, LinkKind)>, Vec<&TaskLink>) {
    let mut kinds = Vec::new();
    let mut typed = Vec::new();
    for link in &task.links {
        match link.kind.blocking_edge(&link.from, &link.to) {
            Some((waiter, waited)) if link.kind.gates_start() => {
                let typed_row = waiter == task.id && link.kind != LinkKind::Blocks;
                if typed_row {
                    kinds.push((waited, link.kind));
                }
            }
            _ if link.from == task.id => typed.push(link),
            _ => {}
        }
    }
    (kinds, typed)
}

/// The links `task`'s own rows hold, as (other task, kind), sorted: the
/// kinds of its dependency rows and the typed links whose subject it is.
/// What it shows of links held by other tasks is left out.
fn own_links(task: &TaskRecord) -> Vec<(String, LinkKind)> {
    let (kinds, typed) = imported_links(task);
    let mut own: Vec<(String, LinkKind)> = kinds
        .into_iter()
        .map(|(waited, kind)| (waited.to_owned(), kind))
        .chain(typed.into_iter().map(|l| (l.to.clone(), l.kind)))
        .collect();
    own.sort();
    own
}

/// Whether two versions of a task agree on what the task itself holds.
/// Links seen from their other end and the subtask roll-up are derived
/// from other tasks, so a file written before those tasks existed still
/// matches the stored task it produced.
pub(crate) fn same_own_state(a: &TaskRecord, b: &TaskRecord) -> bool {
    let strip = |t: &TaskRecord| TaskRecord {
        links: Vec::new(),
        rollup: None,
        ..t.clone()
    };
    strip(a) == strip(b) && own_links(a) == own_links(b)
}
