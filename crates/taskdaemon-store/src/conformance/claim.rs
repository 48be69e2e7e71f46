//! Conformance checks for claimed work: exclusive FIFO claims, leases,
//! heartbeats, fenced completion, expiry counting attempts, and waking.

use std::time::{Duration, Instant};

use taskdaemon_core::process::{ExitDecision, ExitOutcome};
use taskdaemon_core::{EventKind, Status};

use super::agent;
use crate::{Store, StoreError, WorkerInfo};

const LONG: Duration = Duration::from_secs(60);

fn worker(id: &str) -> WorkerInfo {
    WorkerInfo {
        id: id.to_owned(),
        host: "host-a".to_owned(),
        pid: 42,
        queues: vec!["q".to_owned()],
        concurrency: 2,
    }
}

fn queues(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// Releases expired leases until `task` is pending again (the release
/// happens once the lease has run out by the store's clock).
fn expire(store: &dyn Store, task: &str) -> Vec<crate::Released> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let released = store.release_expired("reaper").unwrap();
        if released.iter().any(|r| r.task_id == task) {
            return released;
        }
        assert!(
            Instant::now() < deadline,
            "the lease of {task} never expired"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Claims from `q` until `task` comes (its retry may wait for a backoff).
fn claim_again(store: &dyn Store, worker: &str, task: &str) -> crate::Claim {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(claim) = store.claim(worker, &queues(&["q"]), LONG).unwrap() {
            assert_eq!(claim.lease.task_id, task);
            return claim;
        }
        assert!(Instant::now() < deadline, "{task} never became claimable");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn claims_are_fifo_and_exclusive(store: &dyn Store) {
    let a = store.submit(&agent("q", "task-a.md"), "t").unwrap();
    let b = store.submit(&agent("q", "task-b.md"), "t").unwrap();
    let c = store.submit(&agent("r", "task-c.md"), "t").unwrap();
    let folder = store.create_agent(&agent("q", "task-f.md"), "t").unwrap();
    assert!(store.queue_item(&a.id).unwrap().claimable);
    assert!(!store.queue_item(&folder.id).unwrap().claimable);

    let first = store.claim("w1", &queues(&["q"]), LONG).unwrap().unwrap();
    assert_eq!(first.lease.task_id, a.id, "oldest first");
    assert_eq!((first.attempt, first.lease.epoch), (1, 1));
    assert_eq!(first.task.status, Status::Running);
    let second = store.claim("w2", &queues(&["q"]), LONG).unwrap().unwrap();
    assert_eq!(second.lease.task_id, b.id, "never the same task twice");
    assert!(
        store.claim("w1", &queues(&["q"]), LONG).unwrap().is_none(),
        "folder items are not claimable"
    );
    let any = store.claim("w1", &[], LONG).unwrap().unwrap();
    assert_eq!(any.lease.task_id, c.id, "no queue named: every queue");

    let started = store.events_after(0, &[EventKind::Started], 10).unwrap();
    assert_eq!(started.len(), 3);
    assert_eq!(started[0].actor, "worker:w1");
    assert_eq!(
        store.task(&folder.id).unwrap().status,
        Status::Pending,
        "the folder item waits for its daemon"
    );
}

pub fn completion_is_fenced_by_the_lease(store: &dyn Store) {
    let task = store.submit(&agent("q", "task-a.md"), "t").unwrap();
    let old = store
        .claim("w1", &queues(&["q"]), Duration::from_millis(1))
        .unwrap()
        .unwrap();
    let released = expire(store, &task.id);
    assert!(matches!(
        released[0].decision,
        ExitDecision::Restart { restart: 1, .. }
    ));
    assert_eq!(released[0].worker, "w1");
    let pending = store.task(&task.id).unwrap();
    assert_eq!(pending.status, Status::Pending);
    assert_eq!(pending.restarts, 1, "the lost attempt counts");

    let new = claim_again(store, "w2", &task.id);
    assert_eq!((new.attempt, new.lease.epoch), (2, 2));
    let result = serde_json::json!({ "status": "succeeded" });
    let err = store
        .complete_claim(&old.lease, ExitOutcome::exited(1), &result)
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.task(&task.id).unwrap().status, Status::Running);

    let done = store
        .complete_claim(&new.lease, ExitOutcome::exited(0), &result)
        .unwrap();
    assert_eq!(done.decision, ExitDecision::Finish(Status::Succeeded));
    assert_eq!(done.task.exit_code, Some(0));
    let item = store.queue_item(&task.id).unwrap();
    assert!(item.finished);
    assert_eq!(item.result, Some(result.clone()));
    let again = store.complete_claim(&new.lease, ExitOutcome::exited(0), &result);
    assert!(
        matches!(again, Err(StoreError::Conflict(_))),
        "a completion is recorded once: {again:?}"
    );
    let counts = store.queue_counts().unwrap();
    assert_eq!((counts[0].done, counts[0].open), (1, 0));
}

pub fn expired_leases_use_up_attempts(store: &dyn Store) {
    // agent(): 3 attempts (2 restarts).
    let task = store.submit(&agent("q", "task-a.md"), "t").unwrap();
    for attempt in 1..=3u32 {
        let claim = loop {
            if let Some(claim) = store
                .claim("w1", &queues(&["q"]), Duration::from_millis(1))
                .unwrap()
            {
                break claim;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(claim.attempt, attempt);
        expire(store, &task.id);
    }
    let lost = store.task(&task.id).unwrap();
    assert_eq!(lost.status, Status::Lost);
    assert!(
        lost.error.as_deref().unwrap_or("").contains("w1"),
        "{lost:?}"
    );
    let item = store.queue_item(&task.id).unwrap();
    assert!(item.finished, "no attempt left: the item is done");
    assert_eq!(item.result.unwrap()["status"], "lost");
    assert!(store.claim("w1", &[], LONG).unwrap().is_none());
    assert_eq!(
        store.event_tallies().unwrap(),
        crate::EventTallies {
            claims: 3,
            retries: 2
        }
    );
}

pub fn failed_attempts_retry_then_fail(store: &dyn Store) {
    let task = store.submit(&agent("q", "task-a.md"), "t").unwrap();
    let result = serde_json::json!({});
    for attempt in 1..=3u32 {
        let claim = claim_again(store, "w1", &task.id);
        assert_eq!(claim.attempt, attempt);
        let done = store
            .complete_claim(&claim.lease, ExitOutcome::exited(2), &result)
            .unwrap();
        if attempt < 3 {
            assert!(matches!(done.decision, ExitDecision::Restart { .. }));
            assert!(!store.queue_item(&task.id).unwrap().finished);
        } else {
            assert_eq!(done.decision, ExitDecision::Finish(Status::Failed));
        }
    }
    assert!(store.queue_item(&task.id).unwrap().finished);
    let counts = store.queue_counts().unwrap();
    assert_eq!((counts[0].done, counts[0].failed), (0, 1));
    assert_eq!(
        store.event_tallies().unwrap(),
        crate::EventTallies {
            claims: 3,
            retries: 2
        }
    );
}

pub fn heartbeats_renew_leases_and_carry_stops(store: &dyn Store) {
    let err = store.heartbeat("ghost", &[], LONG).unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    store.register_worker(&worker("w1")).unwrap();
    let task = store.submit(&agent("q", "task-a.md"), "t").unwrap();
    let cancelled = store.submit(&agent("q", "task-b.md"), "t").unwrap();
    let claim = store
        .claim("w1", &queues(&["q"]), Duration::from_millis(300))
        .unwrap()
        .unwrap();
    let mine = [task.id.clone()];
    assert!(
        store.heartbeat("w1", &[], LONG).unwrap().is_empty(),
        "only the leases named are renewed"
    );
    let held = store.heartbeat("w1", &mine, LONG).unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].lease, claim.lease);
    assert!(!held[0].stop_requested);
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        store.release_expired("reaper").unwrap().is_empty(),
        "a renewed lease does not expire"
    );

    let workers = store.workers().unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].id, "w1");
    assert_eq!(workers[0].host, "host-a");
    assert_eq!(workers[0].queues, ["q"]);
    assert_eq!(workers[0].running, mine);
    assert!(workers[0].heartbeat_at >= workers[0].started_at);

    store.request_stop(&task.id, "cli").unwrap();
    assert!(store.heartbeat("w1", &mine, LONG).unwrap()[0].stop_requested);
    let done = store
        .complete_claim(
            &claim.lease,
            ExitOutcome::signalled(15),
            &serde_json::json!({}),
        )
        .unwrap();
    assert_eq!(done.task.status, Status::Cancelled);

    // Cancelled while it waited: skipped and finished by the next claim.
    store.request_stop(&cancelled.id, "cli").unwrap();
    assert!(store.claim("w1", &[], LONG).unwrap().is_none());
    assert!(store.queue_item(&cancelled.id).unwrap().finished);

    store.stop_worker("w1").unwrap();
    let workers = store.workers().unwrap();
    assert!(workers[0].stopped_at.is_some());
    assert!(workers[0].running.is_empty());
}

pub fn waiters_wake_on_submit(store: &dyn Store) {
    let mut waiter = store.work_waiter().unwrap();
    std::thread::scope(|scope| {
        let waiting = scope.spawn(move || {
            let started = Instant::now();
            let woken = waiter.wait(Duration::from_secs(10)).unwrap();
            (woken, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(100));
        store.submit(&agent("q", "task-a.md"), "t").unwrap();
        let (woken, waited) = waiting.join().unwrap();
        assert!(woken, "the submit woke the waiter");
        assert!(waited < Duration::from_secs(5), "woken late: {waited:?}");
    });
}

/// What commits while an event waiter pauses (it watches nothing then)
/// wakes its next wait, and only that one.
pub fn a_commit_during_a_pause_is_seen_by_the_next_wait(store: &dyn Store) {
    let mut waiter = store.event_waiter().unwrap();
    // Nothing has committed since it opened.
    assert!(!waiter.wait(Duration::from_millis(200)).unwrap());
    std::thread::scope(|scope| {
        let pausing = scope.spawn(|| waiter.pause(Duration::from_millis(500)));
        std::thread::sleep(Duration::from_millis(100));
        store.submit(&agent("q", "task-a.md"), "t").unwrap();
        pausing.join().unwrap();
    });
    assert!(
        waiter.wait(Duration::from_secs(10)).unwrap(),
        "the commit made during the pause woke the next wait"
    );
    assert!(
        !waiter.wait(Duration::from_millis(300)).unwrap(),
        "a wait after it, with nothing committed, times out"
    );
}

/// Claims and completions wake the change feed's listeners: on PostgreSQL
/// their events are announced after commit, not by the events trigger.
pub fn claims_and_completions_wake_event_waiters(store: &dyn Store) {
    store.submit(&agent("q", "task-a.md"), "t").unwrap();
    // Waits on a listener opened now (after the submit's own wake-up), for
    // what `act` commits.
    let wakes = |act: &dyn Fn()| {
        let mut waiter = store.event_waiter().unwrap();
        std::thread::scope(|scope| {
            let waiting = scope.spawn(move || waiter.wait(Duration::from_secs(10)).unwrap());
            std::thread::sleep(Duration::from_millis(100));
            act();
            waiting.join().unwrap()
        })
    };
    let claim = std::cell::RefCell::new(None);
    assert!(
        wakes(&|| {
            let claimed = store.claim("w1", &queues(&["q"]), LONG).unwrap();
            *claim.borrow_mut() = claimed;
        }),
        "the claim woke the event waiter"
    );
    let claim = claim.into_inner().expect("the task was claimed");
    assert_eq!(claim.task, store.task(&claim.lease.task_id).unwrap());
    // The claim's wake-up is out before the next listener starts.
    std::thread::sleep(Duration::from_millis(300));
    let completed = std::cell::RefCell::new(None);
    assert!(
        wakes(&|| {
            let done = store
                .complete_claim(&claim.lease, ExitOutcome::exited(0), &serde_json::json!({}))
                .unwrap();
            *completed.borrow_mut() = Some(done);
        }),
        "the completion woke the event waiter"
    );
    let completed = completed.into_inner().expect("the claim was completed");
    assert_eq!(completed.task, store.task(&claim.lease.task_id).unwrap());
}

/// Every transition of a batch has its event, in the feed in order: the
/// starts in claim (FIFO) order, then the ends in completion order.
pub fn batch_events_reach_the_feed_in_order(store: &dyn Store) {
    let submitted = submit_to_q(store, &["a", "b", "c"]);
    let seq = store.last_event_seq().unwrap();
    let claims = store.claim_batch("w1", &queues(&["q"]), LONG, 3).unwrap();
    assert_eq!(ids(&claims), submitted);
    for claim in &claims {
        assert_eq!(
            claim.task,
            store.task(&claim.lease.task_id).unwrap(),
            "a claim carries its task as stored"
        );
    }
    let ends: Vec<crate::Completion> = claims
        .iter()
        .rev()
        .map(|c| crate::Completion {
            lease: c.lease.clone(),
            outcome: ExitOutcome::exited(0),
            result: serde_json::json!({}),
        })
        .collect();
    let answers = store.complete_claims(&ends).unwrap();
    for answer in &answers {
        let completed = answer.as_ref().unwrap();
        assert_eq!(
            completed.task,
            store.task(&completed.task.id).unwrap(),
            "a completion answers with its task as stored"
        );
    }
    let events = store.events_after(seq, &[], 100).unwrap();
    let feed: Vec<(EventKind, Option<&str>)> = events
        .iter()
        .map(|e| (e.kind, e.task_id.as_deref()))
        .collect();
    let (a, b, c) = (
        Some(submitted[0].as_str()),
        Some(submitted[1].as_str()),
        Some(submitted[2].as_str()),
    );
    assert_eq!(
        feed,
        [
            (EventKind::Started, a),
            (EventKind::Started, b),
            (EventKind::Started, c),
            (EventKind::Exited, c),
            (EventKind::Exited, b),
            (EventKind::Exited, a),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
}

/// Submits `task-{name}.md` to queue `q` for each name; their ids in order.
fn submit_to_q(store: &dyn Store, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            store
                .submit(&agent("q", &format!("task-{n}.md")), "t")
                .unwrap()
                .id
        })
        .collect()
}

fn ids(claims: &[crate::Claim]) -> Vec<&str> {
    claims.iter().map(|c| c.lease.task_id.as_str()).collect()
}

pub fn batch_claims_are_fifo_and_short_when_few_wait(store: &dyn Store) {
    let submitted = submit_to_q(store, &["a", "b", "c", "d", "e"]);
    let other = store.submit(&agent("r", "task-r.md"), "t").unwrap();
    assert!(
        store
            .claim_batch("w1", &queues(&["q"]), LONG, 0)
            .unwrap()
            .is_empty()
    );

    let first = store.claim_batch("w1", &queues(&["q"]), LONG, 3).unwrap();
    assert_eq!(ids(&first), submitted[..3], "the oldest, in order");
    for claim in &first {
        assert_eq!((claim.attempt, claim.lease.epoch), (1, 1));
        assert_eq!(claim.lease.worker, "w1");
        assert_eq!(claim.task.status, Status::Running);
        assert_eq!(claim.item.task_id, claim.lease.task_id);
        assert!(claim.expires_at > 0);
    }
    let rest = store.claim_batch("w2", &queues(&["q"]), LONG, 10).unwrap();
    assert_eq!(
        ids(&rest),
        submitted[3..],
        "fewer than asked: all that wait"
    );
    assert!(
        store
            .claim_batch("w3", &queues(&["q"]), LONG, 10)
            .unwrap()
            .is_empty()
    );
    let any = store.claim_batch("w3", &[], LONG, 10).unwrap();
    assert_eq!(ids(&any), [other.id.as_str()]);

    // Cancelled while waiting: skipped, its item finished, the next one taken.
    let cancelled = store.submit(&agent("q", "task-x.md"), "t").unwrap();
    let next = store.submit(&agent("q", "task-y.md"), "t").unwrap();
    store.request_stop(&cancelled.id, "cli").unwrap();
    let after = store.claim_batch("w1", &queues(&["q"]), LONG, 1).unwrap();
    assert_eq!(ids(&after), [next.id.as_str()]);
    assert_eq!(after[0].lease.epoch, 1);
    let item = store.queue_item(&cancelled.id).unwrap();
    assert!(item.finished, "{item:?}");
    let started = store.events_after(0, &[EventKind::Started], 100).unwrap();
    assert_eq!(started.len(), 7, "one started event per claim");
    assert_eq!(store.event_tallies().unwrap().claims, 7);
}

/// A claim that names several queues takes the oldest items of any of
/// them, in submission order across them, and nothing of the others.
pub fn claims_from_several_queues_are_fifo_across_them(store: &dyn Store) {
    let submitted: Vec<(String, &str)> = ["q", "s", "r", "q", "s", "r", "q"]
        .iter()
        .enumerate()
        .map(|(n, queue)| {
            let task = store
                .submit(&agent(queue, &format!("task-{n}.md")), "t")
                .unwrap();
            (task.id, *queue)
        })
        .collect();
    let wanted = |names: &[&str]| -> Vec<&str> {
        submitted
            .iter()
            .filter(|(_, queue)| names.contains(queue))
            .map(|(id, _)| id.as_str())
            .collect()
    };

    let first = store
        .claim_batch("w1", &queues(&["r", "q"]), LONG, 3)
        .unwrap();
    assert_eq!(ids(&first), wanted(&["q", "r"])[..3], "oldest of q and r");
    let one = store.claim("w2", &queues(&["q", "r"]), LONG).unwrap();
    assert_eq!(
        one.map(|c| c.lease.task_id),
        Some(wanted(&["q", "r"])[3].to_owned()),
        "a single claim takes the next of either"
    );
    let rest = store
        .claim_batch("w1", &queues(&["q", "r", "absent"]), LONG, 10)
        .unwrap();
    assert_eq!(ids(&rest), wanted(&["q", "r"])[4..], "the rest of q and r");
    let others = store.claim_batch("w3", &queues(&["s"]), LONG, 10).unwrap();
    assert_eq!(ids(&others), wanted(&["s"]), "s was left alone");
}

/// The events a batch of claims and its completions append are found by
/// search (history), each of them.
pub fn batch_claim_events_are_searchable(store: &dyn Store) {
    for n in ["a", "b", "c"] {
        store
            .submit(&agent("q", &format!("kestrel-{n}.md")), "t")
            .unwrap();
    }
    let before = store.last_event_seq().unwrap();
    let claims = store.claim_batch("w1", &queues(&["q"]), LONG, 3).unwrap();
    assert_eq!(claims.len(), 3);
    let ends: Vec<crate::Completion> = claims
        .iter()
        .map(|claim| crate::Completion {
            lease: claim.lease.clone(),
            outcome: ExitOutcome::exited(0),
            result: serde_json::json!({}),
        })
        .collect();
    assert!(
        store
            .complete_claims(&ends)
            .unwrap()
            .iter()
            .all(Result::is_ok)
    );
    let appended = store.events_after(before, &[], 100).unwrap();
    assert!(appended.len() >= 6, "a start and an end each: {appended:?}");
    let found: Vec<String> = store
        .search("kestrel", 100)
        .unwrap()
        .into_iter()
        .filter(|hit| hit.source == taskdaemon_core::tracked::SearchSource::History)
        .map(|hit| hit.id)
        .collect();
    for event in &appended {
        assert!(
            found.contains(&format!("#{}", event.seq)),
            "event {event:?} not found by search: {found:?}"
        );
    }
}

pub fn concurrent_batch_claimers_never_share_a_task(store: &dyn Store) {
    const TASKS: usize = 120;
    const CLAIMERS: usize = 6;
    for n in 0..TASKS {
        store
            .submit(&agent("q", &format!("task-{n}.md")), "t")
            .unwrap();
    }
    let claimed: Vec<Vec<(String, String)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLAIMERS)
            .map(|w| {
                scope.spawn(move || {
                    let worker = format!("w{w}");
                    let mut mine = Vec::new();
                    loop {
                        let batch = store.claim_batch(&worker, &[], LONG, 1 + w * 3).unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|c| (c.lease.task_id, c.lease.worker)));
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<&(String, String)> = claimed.iter().flatten().collect();
    let unique: std::collections::HashSet<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(all.len(), TASKS, "every task claimed");
    assert_eq!(unique.len(), TASKS, "no task claimed twice");
    let started = store
        .events_after(0, &[EventKind::Started], TASKS * 2)
        .unwrap();
    assert_eq!(started.len(), TASKS, "one start per task");
    for (task, worker) in all {
        assert_eq!(store.task(task).unwrap().status, Status::Running);
        let start = started
            .iter()
            .find(|e| e.task_id.as_deref() == Some(task.as_str()))
            .unwrap();
        assert_eq!(start.actor, format!("worker:{worker}"), "{task}");
    }
}

pub fn batch_completion_records_each_end(store: &dyn Store) {
    for n in ["a", "b", "c", "d"] {
        store
            .submit(&agent("q", &format!("task-{n}.md")), "t")
            .unwrap();
    }
    let claims = store.claim_batch("w1", &queues(&["q"]), LONG, 4).unwrap();
    assert_eq!(claims.len(), 4);
    assert!(store.complete_claims(&[]).unwrap().is_empty());
    let end = |claim: &crate::Claim, code: i32| crate::Completion {
        lease: claim.lease.clone(),
        outcome: ExitOutcome::exited(code),
        result: serde_json::json!({ "task": claim.lease.task_id, "code": code }),
    };
    let mut stale = end(&claims[2], 0);
    stale.lease.epoch += 1;
    let ends = [
        end(&claims[0], 0),
        end(&claims[1], 2),
        stale,
        end(&claims[3], 0),
        end(&claims[0], 1),
    ];
    let answers = store.complete_claims(&ends).unwrap();
    assert_eq!(answers.len(), ends.len(), "one answer per end, in order");
    let succeeded = answers[0].as_ref().unwrap();
    assert_eq!(succeeded.decision, ExitDecision::Finish(Status::Succeeded));
    assert_eq!(succeeded.task.id, claims[0].lease.task_id);
    assert_eq!(succeeded.task.exit_code, Some(0));
    let retried = answers[1].as_ref().unwrap();
    assert!(matches!(retried.decision, ExitDecision::Restart { .. }));
    assert_eq!(retried.task.status, Status::Pending);
    assert!(
        matches!(answers[2], Err(StoreError::Conflict(_))),
        "a stale lease is fenced: {:?}",
        answers[2]
    );
    assert_eq!(answers[3].as_ref().unwrap().task.status, Status::Succeeded);
    assert!(
        matches!(answers[4], Err(StoreError::Conflict(_))),
        "ended twice in one batch: {:?}",
        answers[4]
    );

    let item = store.queue_item(&claims[0].lease.task_id).unwrap();
    assert!(item.finished);
    assert_eq!(
        item.result,
        Some(ends[0].result.clone()),
        "the first end wins"
    );
    assert!(!store.queue_item(&claims[1].lease.task_id).unwrap().finished);
    let untouched = store.task(&claims[2].lease.task_id).unwrap();
    assert_eq!(
        untouched.status,
        Status::Running,
        "a refused end writes nothing"
    );
    assert!(!store.queue_item(&untouched.id).unwrap().finished);
    assert!(store.queue_item(&claims[3].lease.task_id).unwrap().finished);

    // The retry comes back as attempt 2; the fenced task can still end.
    let again = claim_again(store, "w2", &claims[1].lease.task_id);
    assert_eq!((again.attempt, again.lease.epoch), (2, 2));
    let later = store
        .complete_claims(&[end(&claims[2], 0), end(&again, 0)])
        .unwrap();
    assert!(later.iter().all(Result::is_ok), "{later:?}");
    let counts = store.queue_counts().unwrap();
    assert_eq!(
        (counts[0].done, counts[0].failed, counts[0].open),
        (4, 0, 0)
    );
    assert_eq!(
        store.event_tallies().unwrap(),
        crate::EventTallies {
            claims: 5,
            retries: 1
        }
    );
}
