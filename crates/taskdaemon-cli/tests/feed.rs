//! The service's change feed, fed by other processes: the real `taskdaemon`
//! binary commits in the same SQLite workspace, or (PostgreSQL) in another
//! workspace on the same database, and a subscriber in this process sees
//! the event.

mod common;

use std::time::Duration;

use common::Ws;
use taskdaemon_core::EventKind;
use taskdaemon_service::Service;
use taskdaemon_store::testing::TestSchema;
use taskdaemon_workspace::Workspace;

const WAIT: Option<Duration> = Some(Duration::from_secs(20));

/// Waits for the `created` event of `id`.
fn expect_created(subscription: &mut taskdaemon_service::Subscription, id: &str) {
    loop {
        let event = subscription
            .next_timeout(WAIT)
            .unwrap()
            .unwrap_or_else(|| panic!("the event of {id} never arrived"));
        if event.task_id.as_deref() == Some(id) {
            assert_eq!(event.kind, EventKind::Created);
            return;
        }
    }
}

#[test]
fn sqlite_event_from_another_process_reaches_a_subscriber() {
    let ws = Ws::new();
    let service = Service::open(Workspace::open(ws.root()).unwrap()).unwrap();
    let mut subscription = service
        .subscribe(service.store().last_event_seq().unwrap())
        .unwrap();
    assert!(subscription.next_timeout(None).unwrap().is_none());
    let id = ws
        .run(&["task", "add", "Committed by another process"])
        .ok()
        .last_line();
    expect_created(&mut subscription, &id);
    let id = ws.run(&["task", "add", "And another"]).ok().last_line();
    expect_created(&mut subscription, &id);
}

#[test]
fn postgres_event_from_another_workspace_reaches_a_subscriber() {
    let Some(schema) = TestSchema::create("cli_feed_other_workspace") else {
        return;
    };
    let url = schema.url();
    // The subscriber's workspace names the database in its config ...
    let mine = Ws::new();
    mine.write_config(&format!("[store]\ndatabase_url = \"{url}\"\n"));
    let service = Service::open(Workspace::open(mine.root()).unwrap()).unwrap();
    assert!(service.location().display().starts_with("postgres://"));
    let mut subscription = service
        .subscribe(service.store().last_event_seq().unwrap())
        .unwrap();
    // ... and another workspace (another host, as far as it knows) writes.
    let theirs = Ws::new();
    let id = theirs
        .run(&["--database-url", &url, "task", "add", "From elsewhere"])
        .ok()
        .last_line();
    expect_created(&mut subscription, &id);
}
