//! The change feed on a real SQLite file and, when the test server is
//! configured, on PostgreSQL: events committed through another store handle
//! (another connection, as another process or host would use) arrive; a
//! subscriber whose buffer overflowed resumes from its last sequence number
//! without a gap. (Events from another *process*, through the real binary,
//! are tested in `taskdaemon-cli/tests/feed.rs`.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestWs, eventually};
use taskdaemon_core::{EventKind, NewEvent};
use taskdaemon_service::{FeedOptions, Service, Subscription};
use taskdaemon_store::testing::TestSchema;
use taskdaemon_store::{Location, SqliteStore, Store};

const WAIT: Option<Duration> = Some(Duration::from_secs(20));

fn alert(store: &dyn Store, n: usize) -> i64 {
    store
        .append_event(
            None,
            &NewEvent::new(EventKind::Alert, "test", format!("alert {n}")),
        )
        .unwrap()
        .seq
}

/// Reads `count` events and checks they are the alerts `first..`, each once,
/// in order, with contiguous sequence numbers.
fn expect_alerts(subscription: &mut Subscription, first: usize, count: usize) {
    let mut last: Option<i64> = None;
    for n in first..first + count {
        let event = subscription
            .next_timeout(WAIT)
            .unwrap()
            .unwrap_or_else(|| panic!("alert {n} never arrived"));
        assert_eq!(event.message, format!("alert {n}"));
        if let Some(last) = last {
            assert_eq!(event.seq, last + 1, "no gap and no repeat");
        }
        last = Some(event.seq);
        assert_eq!(subscription.last_seq(), event.seq);
    }
}

#[test]
fn sqlite_events_of_another_connection_arrive_in_order() {
    let ws = TestWs::new();
    let service = ws.service();
    let writer = SqliteStore::open(&ws.workspace.db_path()).unwrap();
    alert(&writer, 0);
    let from = writer.last_event_seq().unwrap();
    let mut live = service.subscribe(from).unwrap();
    let mut everything = service.subscribe(0).unwrap();
    assert!(
        live.next_timeout(None).unwrap().is_none(),
        "nothing after {from} yet"
    );
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in 1..=20 {
                alert(&writer, n);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        expect_alerts(&mut live, 1, 20);
    });
    expect_alerts(&mut everything, 0, 21);
    assert_eq!(live.overflows(), 0);
}

/// A subscriber that reads nothing while more than its buffer commits.
fn slow_subscriber_resumes_without_gap(service: &Service, writer: &dyn Store) {
    let feed = service.feed(FeedOptions { buffer: 4, page: 3 }).unwrap();
    let mut slow = feed.subscribe(writer.last_event_seq().unwrap());
    let mut prompt = feed.subscribe(writer.last_event_seq().unwrap());
    for n in 0..50 {
        alert(writer, n);
    }
    let newest = writer.last_event_seq().unwrap();
    eventually("the feed to read every event", || feed.last_seq() >= newest);
    assert!(slow.overflows() > 0, "its buffer overflowed");
    expect_alerts(&mut slow, 0, 50);
    expect_alerts(&mut prompt, 0, 50);
    assert!(
        slow.next_timeout(None).unwrap().is_none(),
        "each event once"
    );
    // And it keeps following live events after catching up.
    alert(writer, 50);
    expect_alerts(&mut slow, 50, 1);
}

#[test]
fn sqlite_slow_subscriber_resumes_without_gap() {
    let ws = TestWs::new();
    let writer = SqliteStore::open(&ws.workspace.db_path()).unwrap();
    slow_subscriber_resumes_without_gap(&ws.service(), &writer);
}

#[test]
fn a_subscription_resumes_from_a_sequence_number() {
    let ws = TestWs::new();
    let service = ws.service();
    let seqs: Vec<i64> = (0..5).map(|n| alert(service.store(), n)).collect();
    let mut resumed = service.subscribe(seqs[2]).unwrap();
    expect_alerts(&mut resumed, 3, 2);
    assert!(resumed.next_timeout(None).unwrap().is_none());
}

#[test]
fn postgres_events_of_another_workspace_arrive() {
    let Some(schema) = TestSchema::create("service_feed_other_workspace") else {
        return;
    };
    let url = schema.url();
    // Two workspaces on one database: the subscriber's, and the writer's.
    let service = Service::open_location(Location::Postgres(url.clone())).unwrap();
    let writer: Arc<dyn Store> = taskdaemon_store::open(&Location::Postgres(url)).unwrap();
    let mut live = service.subscribe(writer.last_event_seq().unwrap()).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in 0..20 {
                alert(&*writer, n);
            }
        });
        expect_alerts(&mut live, 0, 20);
    });
    slow_subscriber_resumes_without_gap(&service, &*writer);
}
