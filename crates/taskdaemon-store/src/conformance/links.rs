//! Conformance checks for typed links, subtasks, `next`'s candidates, the
//! waiting graph and claims.

use taskdaemon_core::graph::parallel_layers;
use taskdaemon_core::next::{NextRule, pick_next};
use taskdaemon_core::{EventKind, LinkKind, NewTracked, Status, TaskRecord, TrackedAction};

use super::tracked::tracked;
use crate::{Store, StoreError};

fn add(store: &dyn Store, title: &str, priority: i32, parent: Option<&str>) -> TaskRecord {
    store
        .create_tracked(
            &NewTracked {
                priority,
                parent: parent.map(str::to_owned),
                ..tracked(title, &[])
            },
            "t",
        )
        .unwrap()
}

fn act(store: &dyn Store, id: &str, action: TrackedAction) -> TaskRecord {
    store.act_on_tracked(id, &action, "t").unwrap()
}

fn said(task: &TaskRecord) -> Vec<String> {
    task.links.iter().map(ToString::to_string).collect()
}

pub fn typed_links_block_and_render(store: &dyn Store) {
    let (a, b, c) = (
        add(store, "a", 0, None),
        add(store, "b", 0, None),
        add(store, "c", 0, None),
    );
    let a = store
        .link_tasks(&a.id, LinkKind::Blocks, &b.id, "t")
        .unwrap();
    assert_eq!(said(&a), [format!("{} blocks {}", a.id, b.id)]);
    let b = store.task(&b.id).unwrap();
    assert_eq!(b.status, Status::Blocked, "blocks is today's dependency");
    assert_eq!(b.depends_on, std::slice::from_ref(&a.id));
    let c = store
        .link_tasks(&c.id, LinkKind::WaitsFor, &a.id, "t")
        .unwrap();
    assert_eq!(c.status, Status::Blocked);
    store
        .link_tasks(&c.id, LinkKind::Related, &b.id, "t")
        .unwrap();
    // Again: nothing changes, nothing is recorded.
    let seq = store.last_event_seq().unwrap();
    store
        .link_tasks(&c.id, LinkKind::Related, &b.id, "t")
        .unwrap();
    assert_eq!(store.last_event_seq().unwrap(), seq);
    assert!(super::tracked::event_kinds(store, &c.id).contains(&EventKind::LinkAdded));
    let b = store.task(&b.id).unwrap();
    assert_eq!(
        said(&b),
        [
            format!("{} blocks {}", a.id, b.id),
            format!("{} related {}", c.id, b.id)
        ]
    );

    // A cycle through blocks and waits-for is refused, naming it.
    let err = store
        .link_tasks(&b.id, LinkKind::Blocks, &a.id, "t")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("{a} -> {b} -> {a}", a = a.id, b = b.id)),
        "{err}"
    );
    assert_eq!(store.last_event_seq().unwrap(), seq, "nothing was written");
    // Non-blocking kinds may point back.
    store
        .link_tasks(&b.id, LinkKind::CausedBy, &c.id, "t")
        .unwrap();
    let itself = store.link_tasks(&a.id, LinkKind::Related, &a.id, "t");
    assert!(matches!(itself, Err(StoreError::Invalid(_))), "{itself:?}");

    // Unlinking one kind keeps the others; unlinking the blocker releases.
    let c = store
        .unlink_tasks(&c.id, Some(LinkKind::Related), &b.id, "t")
        .unwrap();
    assert_eq!(
        said(&c),
        [
            format!("{} caused-by {}", b.id, c.id),
            format!("{} waits-for {}", c.id, a.id)
        ]
    );
    let c = store.unlink_tasks(&c.id, None, &a.id, "t").unwrap();
    assert_eq!(c.status, Status::Pending);
    assert!(super::tracked::event_kinds(store, &c.id).contains(&EventKind::LinkRemoved));
    let missing = store.unlink_tasks(&c.id, None, &a.id, "t");
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub fn subtasks_number_and_roll_up(store: &dyn Store) {
    let parent = add(store, "parent", 0, None);
    let one = add(store, "one", 0, Some(&parent.id));
    let two = add(store, "two", 0, Some(&parent.id));
    assert_eq!(one.id, format!("{}.1", parent.id));
    assert_eq!(two.id, format!("{}.2", parent.id));
    let nested = add(store, "nested", 0, Some(&one.id));
    assert_eq!(nested.id, format!("{}.1.1", parent.id));
    assert_eq!(store.task(&one.id).unwrap().status, Status::Pending);
    let rollup = store.task(&parent.id).unwrap().rollup.unwrap();
    assert_eq!((rollup.total, rollup.done, rollup.open), (2, 0, 2));

    act(store, &parent.id, TrackedAction::Start);
    let refused = store.act_on_tracked(&parent.id, &TrackedAction::Done { note: None }, "t");
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("0/2 done")),
        "{refused:?}"
    );
    act(store, &two.id, TrackedAction::Start);
    act(store, &two.id, TrackedAction::Done { note: None });
    act(store, &one.id, TrackedAction::Cancel);
    let parent = store.task(&parent.id).unwrap();
    assert_eq!(parent.rollup.unwrap().to_string(), "1/2 done");
    act(store, &parent.id, TrackedAction::Done { note: None });

    // A child that waits on its parent's completion would never start.
    let p = add(store, "p", 0, None);
    let child = add(store, "child", 0, Some(&p.id));
    let err = store
        .link_tasks(&child.id, LinkKind::WaitsFor, &p.id, "t")
        .unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
    let unknown = store.create_tracked(
        &NewTracked {
            parent: Some("TASK-999".to_owned()),
            ..tracked("orphan", &[])
        },
        "t",
    );
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
}

pub fn next_and_layers(store: &dyn Store) {
    assert!(pick_next(store.next_candidates().unwrap()).is_none());
    let low = add(store, "low", 0, None);
    let hub = add(store, "hub", 5, None);
    let leaf = add(store, "leaf", 5, None);
    for title in ["w1", "w2"] {
        let waiting = add(store, title, 0, None);
        store
            .link_tasks(&hub.id, LinkKind::Blocks, &waiting.id, "t")
            .unwrap();
    }
    let pick = pick_next(store.next_candidates().unwrap()).unwrap();
    assert_eq!(
        (pick.task.id.as_str(), pick.rule),
        (hub.id.as_str(), NextRule::Unblocks)
    );
    assert_eq!(pick.task.unblocks, 2);
    assert_eq!(pick.runner_up.unwrap().id, leaf.id);

    // A subtask of the task in progress beats every priority.
    act(store, &low.id, TrackedAction::Start);
    let sub = add(store, "sub", -10, Some(&low.id));
    let pick = pick_next(store.next_candidates().unwrap()).unwrap();
    assert_eq!(pick.task.id, sub.id);
    assert_eq!(pick.rule, NextRule::SubtaskOfRunning);
    assert_eq!(pick.task.running_parent.as_deref(), Some(low.id.as_str()));

    let layers = parallel_layers(&store.open_graph().unwrap());
    assert_eq!(layers.layers.len(), 2, "{layers:?}");
    assert!(layers.layers[0].contains(&hub.id) && layers.layers[0].contains(&sub.id));
    assert_eq!(layers.layers[1].len(), 2);
    assert!(layers.stuck.is_empty());
}

pub fn claims_are_exclusive_and_go_stale(store: &dyn Store) {
    let a = add(store, "a", 10, None);
    let b = add(store, "b", 0, None);
    let first = store
        .claim_tracked(None, "agent-1", 60_000, "agent-1")
        .unwrap()
        .unwrap();
    assert_eq!(first.id, a.id);
    assert_eq!(first.status, Status::Running);
    assert_eq!(first.claim.as_ref().unwrap().by, "agent-1");
    let taken = store.claim_tracked(Some(&a.id), "agent-2", 60_000, "agent-2");
    assert!(
        matches!(&taken, Err(StoreError::Conflict(m)) if m.contains("claimed by agent-1")),
        "{taken:?}"
    );
    // A lease of zero is stale at once: listed, and anyone may take it over.
    let second = store
        .claim_tracked(None, "agent-2", 0, "agent-2")
        .unwrap()
        .unwrap();
    assert_eq!(second.id, b.id);
    assert!(
        store
            .claim_tracked(None, "agent-3", 0, "agent-3")
            .unwrap()
            .is_none()
    );
    let stale: Vec<String> = store
        .stale_claims()
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(stale, std::slice::from_ref(&b.id));
    let over = store
        .claim_tracked(Some(&b.id), "agent-3", 60_000, "agent-3")
        .unwrap()
        .unwrap();
    assert_eq!(over.claim.unwrap().by, "agent-3");
    assert!(store.stale_claims().unwrap().is_empty());
    let kinds = super::tracked::event_kinds(store, &b.id);
    assert!(kinds.contains(&EventKind::ClaimRenewed), "{kinds:?}");
    // Activity renews; ending the task drops the claim.
    assert_eq!(store.renew_claims("agent-1", 120_000).unwrap(), 1);
    let done = act(store, &a.id, TrackedAction::Done { note: None });
    assert!(done.claim.is_none());
    let ended = store.claim_tracked(Some(&a.id), "agent-2", 60_000, "agent-2");
    assert!(matches!(ended, Err(StoreError::Conflict(_))), "{ended:?}");
}
