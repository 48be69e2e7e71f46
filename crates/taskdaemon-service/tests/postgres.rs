//! The use cases whose queries differ by backend, on PostgreSQL (the test
//! server from `TASKDAEMON_TEST_DATABASE_URL`; skipped loudly without it):
//! queue task listings, submitted work, claim workers going lost, counters,
//! tracked work and resume.

mod common;

use std::time::Duration;

use taskdaemon_core::{Status, TrackedAction};
use taskdaemon_service::{Agent, NewTask, Service, SubmitInput, WorkerState};
use taskdaemon_store::testing::TestSchema;
use taskdaemon_store::{Location, WorkerInfo};

#[test]
fn postgres_queue_views_workers_and_tracked_work() {
    let Some(schema) = TestSchema::create("service_postgres_views") else {
        return;
    };
    let service = Service::open_location(Location::Postgres(schema.url())).unwrap();
    for (queue, id) in [("build", "job-1"), ("test", "job-2"), ("build", "job-3")] {
        service
            .submit(SubmitInput {
                command: Some("true".to_owned()),
                queue: queue.to_owned(),
                id: Some(id.to_owned()),
                ..Default::default()
            })
            .unwrap();
    }
    service.store().request_stop("job-3", "t").unwrap();
    let build: Vec<String> = service
        .queue_tasks(Some("build"), None, None)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(build, ["job-1", "job-3"]);
    let cancelled = service
        .queue_tasks(None, Some(Status::Cancelled), Some(10))
        .unwrap();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].id, "job-3");
    assert!(cancelled[0].submitted);

    let store = service.store();
    store
        .register_worker(&WorkerInfo {
            id: "w-1".to_owned(),
            host: "h".to_owned(),
            pid: 1,
            queues: Vec::new(),
            concurrency: 1,
        })
        .unwrap();
    store
        .set_meta(&taskdaemon_daemon::worker::lease_meta_key("w-1"), "200")
        .unwrap();
    // Heartbeats come from the server's clock; the rule reads them the same way.
    let state = || service.claim_worker_rows().unwrap()[0].state;
    common::eventually("the silent worker to be lost", || {
        state() == WorkerState::Lost
    });
    store.heartbeat("w-1", &[], Duration::from_secs(1)).unwrap();
    assert_eq!(state(), WorkerState::Running, "a heartbeat revives it");
    let counters = service.counters().unwrap();
    assert_eq!(counters.queue_depth["build"], 2);
    assert_eq!(counters.tasks["pending"], 2);
    assert_eq!(counters.tasks["cancelled"], 1);

    let agent = Agent::new(None, Some("s-1")).unwrap();
    let task = service
        .add_task(
            &agent,
            NewTask {
                title: "On PostgreSQL".to_owned(),
                ..Default::default()
            },
        )
        .unwrap();
    service.act(&agent, &task.id, TrackedAction::Start).unwrap();
    let resume = service.resume(None).unwrap();
    assert_eq!(resume.session.as_deref(), Some("s-1"));
    assert_eq!(resume.current_task.unwrap().task.id, task.id);
}
