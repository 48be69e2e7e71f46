//! Property test of tracked work on a real SQLite store: whatever sequence of
//! adds, edges and actions agents make (legal or not), the store keeps the
//! dependency graph acyclic and every waiting task's `pending`/`blocked`
//! status true to its dependencies, and refused operations change nothing.

use proptest::prelude::*;
use taskdaemon_core::{NewTracked, Status, TrackedAction};
use taskdaemon_store::{SqliteStore, Store, TrackedFilter};

#[derive(Debug, Clone)]
enum Op {
    Add { deps: Vec<usize> },
    Edge { task: usize, dep: usize },
    Unedge { task: usize, dep: usize },
    Act { task: usize, action: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::collection::vec(0usize..12, 0..3).prop_map(|deps| Op::Add { deps }),
        (0usize..12, 0usize..12).prop_map(|(task, dep)| Op::Edge { task, dep }),
        (0usize..12, 0usize..12).prop_map(|(task, dep)| Op::Unedge { task, dep }),
        (0usize..12, 0u8..4).prop_map(|(task, action)| Op::Act { task, action }),
    ]
}

fn id(ids: &[String], n: usize) -> String {
    ids.get(n)
        .cloned()
        .unwrap_or_else(|| format!("TASK-{}", 900 + n))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn waiting_statuses_always_match_dependencies(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let mut ids: Vec<String> = Vec::new();
        for op in ops {
            let before = store.last_event_seq().unwrap();
            let result = match &op {
                Op::Add { deps } => {
                    let depends_on = deps.iter().map(|&d| id(&ids, d)).collect();
                    let added = store.create_tracked(
                        &NewTracked { title: "t".to_owned(), depends_on, ..NewTracked::default() },
                        "p",
                    );
                    added.map(|task| ids.push(task.id))
                }
                Op::Edge { task, dep } => store.add_dependency(&id(&ids, *task), &id(&ids, *dep), "p").map(drop),
                Op::Unedge { task, dep } => store.remove_dependency(&id(&ids, *task), &id(&ids, *dep), "p").map(drop),
                Op::Act { task, action } => {
                    let action = match action {
                        0 => TrackedAction::Start,
                        1 => TrackedAction::Done { note: None },
                        2 => TrackedAction::Fail { reason: "r".to_owned() },
                        _ => TrackedAction::Cancel,
                    };
                    store.act_on_tracked(&id(&ids, *task), &action, "p").map(drop)
                }
            };
            if result.is_err() {
                prop_assert_eq!(store.last_event_seq().unwrap(), before, "refused {:?} left events", op);
            }
            let report = store.check_integrity().unwrap();
            prop_assert!(report.problems.is_empty(), "after {:?}: {:?}", op, report.problems);
        }
        // Independently of the store's own check: recompute from the listing.
        let tasks = store.tracked(&TrackedFilter::default()).unwrap();
        prop_assert!(acyclic(&tasks), "the accepted edges form a cycle");
        for task in &tasks {
            if matches!(task.status, Status::Pending | Status::Blocked) {
                let all_done = task.depends_on.iter().all(|d| {
                    tasks.iter().any(|t| &t.id == d && t.status == Status::Succeeded)
                });
                let expected = if all_done { Status::Pending } else { Status::Blocked };
                prop_assert_eq!(task.status, expected, "{} deps {:?}", task.id, task.depends_on);
            }
        }
    }
}

/// Kahn's algorithm over the listed tasks' dependencies.
fn acyclic(tasks: &[taskdaemon_core::TaskRecord]) -> bool {
    use std::collections::HashMap;
    let mut waiting: HashMap<&str, usize> = tasks
        .iter()
        .map(|t| (t.id.as_str(), t.depends_on.len()))
        .collect();
    let mut ready: Vec<&str> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| *id)
        .collect();
    let mut done = 0;
    while let Some(id) = ready.pop() {
        done += 1;
        for t in tasks
            .iter()
            .filter(|t| t.depends_on.iter().any(|d| d == id))
        {
            let n = waiting.get_mut(t.id.as_str()).expect("listed");
            *n -= 1;
            if *n == 0 {
                ready.push(t.id.as_str());
            }
        }
    }
    done == tasks.len()
}
