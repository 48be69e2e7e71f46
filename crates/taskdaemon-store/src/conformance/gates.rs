//! Conformance checks for gates: a gated task is not ready until every gate
//! opens; a process that ends decides the gates waiting on it.

use taskdaemon_core::gate::{GateOutcome, GateState, NewGate};
use taskdaemon_core::process::ExitOutcome;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{EventKind, Status};

use super::tracked::tracked;
use super::{spec, started};
use crate::{Store, StoreError};

fn ready_ids(store: &dyn Store) -> Vec<String> {
    store
        .ready(100)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect()
}

/// A task gated on a process is blocked until the process succeeds, and
/// blocked for good, with the reason, when another one fails.
pub fn process_gates_follow_the_exit(store: &dyn Store) {
    let good = store.create_process(&spec(None, &["ok"]), "t").unwrap();
    let bad = store.create_process(&spec(None, &["bad"]), "t").unwrap();
    let a = store
        .create_tracked(&tracked("after good", &[]), "t")
        .unwrap();
    let b = store
        .create_tracked(&tracked("after bad", &[]), "t")
        .unwrap();
    let gate = store
        .add_gates(
            &a.id,
            &[NewGate::UntilSucceeds(good.id.to_lowercase())],
            "t",
        )
        .unwrap()
        .remove(0);
    assert_eq!(gate.target.as_deref(), Some(good.id.as_str()));
    assert_eq!(gate.state(), GateState::Waiting);
    store
        .add_gates(&b.id, &[NewGate::UntilSucceeds(bad.id.clone())], "t")
        .unwrap();
    assert_eq!(store.task(&a.id).unwrap().status, Status::Blocked);
    assert!(!ready_ids(store).contains(&a.id));
    assert_eq!(store.shut_gates().unwrap().len(), 2);

    for (task, pid, code) in [(&good, 100, 0), (&bad, 101, 1)] {
        store.mark_started(&task.id, 0, &started(pid), "t").unwrap();
        store
            .record_exit(&task.id, pid, ExitOutcome::exited(code), None, "t")
            .unwrap();
    }
    assert_eq!(store.task(&a.id).unwrap().status, Status::Pending);
    assert!(ready_ids(store).contains(&a.id));
    let b_gates = store.gates(&b.id).unwrap();
    assert_eq!(b_gates[0].state(), GateState::Never);
    assert!(b_gates[0].failed.as_deref().unwrap().contains("failed"));
    assert_eq!(store.task(&b.id).unwrap().status, Status::Blocked);
    let shut = store.shut_gates().unwrap();
    assert_eq!(shut.len(), 1);
    assert_eq!(shut[0].task_id, b.id);

    // Ungating the gate that can never open releases the task.
    store.remove_gates(&b.id, Some(1), "t").unwrap();
    assert_eq!(store.task(&b.id).unwrap().status, Status::Pending);
    assert!(matches!(
        store.remove_gates(&b.id, None, "t"),
        Err(StoreError::NotFound(_))
    ));
}

/// Several gates must all open; approval, time and command gates resolve
/// through the store, and a gate decided already stays decided.
pub fn every_gate_must_open(store: &dyn Store) {
    let task = store.create_tracked(&tracked("gated", &[]), "t").unwrap();
    store
        .add_gates(&task.id, &[NewGate::Approval], "t")
        .unwrap();
    let later = now_millis() + 3_600_000;
    store
        .add_gates(&task.id, &[NewGate::Until(later)], "t")
        .unwrap();
    let cmd = store
        .add_gates(
            &task.id,
            &[NewGate::UntilCommand("test -f x".to_owned())],
            "t",
        )
        .unwrap()
        .remove(0);
    // A time already passed opens at once.
    let past = store
        .add_gates(&task.id, &[NewGate::Until(now_millis() - 1)], "t")
        .unwrap()
        .remove(0);
    assert_eq!(past.state(), GateState::Open);
    assert_eq!(store.task(&task.id).unwrap().status, Status::Blocked);

    let opened = store.approve_gates(&task.id, "person").unwrap();
    assert_eq!(opened.len(), 1);
    assert!(matches!(
        store.approve_gates(&task.id, "person"),
        Err(StoreError::NotFound(_))
    ));
    let retry = GateOutcome::Retry {
        next_check: now_millis() + 1000,
    };
    let retried = store.resolve_gate(&task.id, cmd.seq, &retry, "d").unwrap();
    assert_eq!((retried.attempts, retried.state()), (1, GateState::Waiting));
    store
        .resolve_gate(&task.id, cmd.seq, &GateOutcome::Open, "d")
        .unwrap();
    let again = store
        .resolve_gate(&task.id, cmd.seq, &GateOutcome::Never("x".into()), "d")
        .unwrap();
    assert_eq!(again.state(), GateState::Open);
    assert_eq!(store.task(&task.id).unwrap().status, Status::Blocked);
    store
        .resolve_gate(&task.id, 2, &GateOutcome::Open, "d")
        .unwrap();
    assert_eq!(store.task(&task.id).unwrap().status, Status::Pending);

    // Repair agrees: a gated task stays blocked.
    let other = store.create_tracked(&tracked("other", &[]), "t").unwrap();
    store
        .add_gates(&other.id, &[NewGate::Approval], "t")
        .unwrap();
    store.repair("t").unwrap();
    assert_eq!(store.task(&other.id).unwrap().status, Status::Blocked);

    // A cancelled task's gates are no longer evaluated or listed.
    let dropped = store.create_tracked(&tracked("dropped", &[]), "t").unwrap();
    store
        .add_gates(&dropped.id, &[NewGate::UntilCommand("false".into())], "t")
        .unwrap();
    assert!(
        store
            .shut_gates()
            .unwrap()
            .iter()
            .any(|g| g.task_id == dropped.id)
    );
    store
        .act_on_tracked(&dropped.id, &taskdaemon_core::TrackedAction::Cancel, "t")
        .unwrap();
    assert!(
        !store
            .shut_gates()
            .unwrap()
            .iter()
            .any(|g| g.task_id == dropped.id)
    );

    // Only tracked work that has not started is gated.
    store
        .act_on_tracked(&task.id, &taskdaemon_core::TrackedAction::Start, "t")
        .unwrap();
    assert!(matches!(
        store.add_gates(&task.id, &[NewGate::Approval], "t"),
        Err(StoreError::Conflict(_))
    ));
    // All or none: a bad gate leaves the good ones beside it unwritten.
    let both = [NewGate::Approval, NewGate::UntilSucceeds("NOPE-9".into())];
    assert!(matches!(
        store.add_gates(&other.id, &both, "t"),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.gates(&other.id).unwrap().len(), 1);
}

/// `import --merge` writes statuses another clone decided against its own
/// gates and dependencies: each merged task is settled again by this
/// store's gates (shut, open, never opening) and dependencies, and what
/// waits on a merged task that ended is decided by its merged status.
pub fn merge_import_settles_gated_tasks(store: &dyn Store) {
    let bad = store.create_process(&spec(None, &["bad"]), "t").unwrap();
    let shut = store.create_tracked(&tracked("shut", &[]), "t").unwrap();
    let open = store.create_tracked(&tracked("open", &[]), "t").unwrap();
    let never = store.create_tracked(&tracked("never", &[]), "t").unwrap();
    let awaited = store.create_tracked(&tracked("awaited", &[]), "t").unwrap();
    let dependent = store
        .create_tracked(&tracked("dependent", &[&awaited.id]), "t")
        .unwrap();
    let waiter = store.create_tracked(&tracked("waiter", &[]), "t").unwrap();
    for id in [&shut.id, &open.id] {
        store.add_gates(id, &[NewGate::Approval], "t").unwrap();
    }
    store.approve_gates(&open.id, "person").unwrap();
    store
        .add_gates(&never.id, &[NewGate::UntilSucceeds(bad.id.clone())], "t")
        .unwrap();
    store.mark_started(&bad.id, 0, &started(102), "t").unwrap();
    store
        .record_exit(&bad.id, 102, ExitOutcome::exited(1), None, "t")
        .unwrap();
    store
        .add_gates(
            &waiter.id,
            &[NewGate::UntilSucceeds(awaited.id.clone())],
            "t",
        )
        .unwrap();
    let before: Vec<Status> = [&shut, &open, &never, &dependent, &waiter]
        .iter()
        .map(|t| store.task(&t.id).unwrap().status)
        .collect();
    use Status::{Blocked, Pending, Succeeded};
    assert_eq!(before, [Blocked, Pending, Blocked, Blocked, Blocked]);

    // The other clone has none of these gates: it says the opposite.
    let mut file = super::tracked::exported_tasks(store);
    file.retain(|t| [&shut.id, &open.id, &never.id, &awaited.id].contains(&&t.task.id));
    for exported in &mut file {
        let t = &mut exported.task;
        t.updated_at += 1_000;
        t.name = Some(format!("{} (edited elsewhere)", t.title()));
        t.status = match t.status {
            Blocked => Pending,
            _ if t.id == awaited.id => Succeeded,
            _ => Blocked,
        };
        if t.status == Succeeded {
            t.started_at = Some(t.updated_at);
            t.finished_at = Some(t.updated_at);
        }
    }
    let report = store.merge_tracked(&file, &[], "merge").unwrap();
    assert_eq!(report.updated.len(), 4, "{report:?}");

    let after: Vec<Status> = [&shut, &open, &never, &awaited, &dependent, &waiter]
        .iter()
        .map(|t| store.task(&t.id).unwrap().status)
        .collect();
    assert_eq!(
        after,
        [Blocked, Pending, Blocked, Succeeded, Pending, Pending],
        "shut, open, never opening, the merged end, its dependent, its gate's task"
    );
    assert_eq!(store.gates(&waiter.id).unwrap()[0].state(), GateState::Open);
    assert_eq!(
        store.task(&shut.id).unwrap().title(),
        "shut (edited elsewhere)"
    );
    let kinds = super::tracked::event_kinds;
    assert!(kinds(store, &shut.id).contains(&EventKind::Blocked));
    assert!(kinds(store, &waiter.id).contains(&EventKind::GateOpened));
    assert!(kinds(store, &dependent.id).contains(&EventKind::Unblocked));
}

/// Gate changes have event kinds of their own.
pub fn gate_events_have_their_own_kinds(store: &dyn Store) {
    let bad = store.create_process(&spec(None, &["bad"]), "t").unwrap();
    let task = store.create_tracked(&tracked("gated", &[]), "t").unwrap();
    store
        .add_gates(
            &task.id,
            &[NewGate::Approval, NewGate::UntilSucceeds(bad.id.clone())],
            "t",
        )
        .unwrap();
    store.approve_gates(&task.id, "person").unwrap();
    store.mark_started(&bad.id, 0, &started(103), "t").unwrap();
    store
        .record_exit(&bad.id, 103, ExitOutcome::exited(1), None, "t")
        .unwrap();
    store.remove_gates(&task.id, Some(2), "t").unwrap();
    let kinds = super::tracked::event_kinds(store, &task.id);
    for kind in [
        EventKind::GateAdded,
        EventKind::GateOpened,
        EventKind::GateFailed,
        EventKind::GateRemoved,
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert!(!kinds.contains(&EventKind::ContextUpdated), "{kinds:?}");
}
