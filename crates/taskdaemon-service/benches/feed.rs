//! Change-feed latency: from an event's commit (through a store handle of
//! its own, as another process or host would write) to its arrival at a
//! subscriber, p50/p99, on SQLite and PostgreSQL side by side. Targets are
//! printed beside the figures; nothing fails on them.
//!
//!   cargo bench -p taskdaemon-service --bench feed        (bench/feed.sh)
//!
//! Knobs: BENCH_DATABASE_URL (else TASKDAEMON_TEST_DATABASE_URL, else
//! postgres://postgres@127.0.0.1:5432/test), FEED_EVENTS (300 per backend),
//! FEED_GAP_MS (3, the pause between commits).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use taskdaemon_core::{EventKind, NewEvent};
use taskdaemon_service::Service;
use taskdaemon_store::testing::{TEST_DATABASE_URL, TestSchema};
use taskdaemon_store::{Location, Store};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Commits `events` alerts through `writer` while `service` follows them.
fn measure(label: &str, target: Duration, location: &Location, events: u64, gap: Duration) {
    let service = Service::open_location(location.clone()).expect("open the subscriber's store");
    let writer: Arc<dyn Store> = taskdaemon_store::open(location).expect("open the writer's store");
    let mut subscription = service
        .subscribe(writer.last_event_seq().expect("last seq"))
        .expect("subscribe");
    let (tx, rx) = mpsc::channel::<(String, (Instant, Instant))>();
    let writing = std::thread::spawn(move || {
        for n in 0..events {
            let message = format!("bench {n}");
            let started = Instant::now();
            writer
                .append_event(None, &NewEvent::new(EventKind::Alert, "bench", &message))
                .expect("append");
            // The commit happened between the two instants.
            let returned = Instant::now();
            let _ = tx.send((message, (started, returned)));
            std::thread::sleep(gap);
        }
    });
    let mut received: Vec<(String, Instant)> = Vec::new();
    while (received.len() as u64) < events {
        match subscription.next_timeout(Some(Duration::from_secs(10))) {
            Ok(Some(event)) => received.push((event.message, Instant::now())),
            Ok(None) => {
                println!("{label}: an event did not arrive within 10 s");
                return;
            }
            Err(e) => {
                println!("{label}: {e}");
                return;
            }
        }
    }
    let _ = writing.join();
    let committed: HashMap<String, (Instant, Instant)> = rx.try_iter().collect();
    let since = |pick: fn(&(Instant, Instant)) -> Instant| -> Vec<Duration> {
        let mut latencies: Vec<Duration> = received
            .iter()
            .filter_map(|(message, at)| {
                Some(at.saturating_duration_since(pick(committed.get(message)?)))
            })
            .collect();
        latencies.sort();
        latencies
    };
    // From the write's return (the commit is just before it; PostgreSQL's
    // append then re-reads the event, so a subscriber may even be first),
    // and, as an upper bound, from the write's start.
    let latencies = since(|(_, returned)| *returned);
    let upper = since(|(started, _)| *started);
    if latencies.is_empty() {
        println!("{label}: nothing measured");
        return;
    }
    let p99 = percentile(&latencies, 0.99);
    println!("{label}");
    println!(
        "    {events} events  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (target p99 < {} ms: {}); from the write's start: p50 {:.2} ms  p99 {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3,
        target.as_millis(),
        if p99 < target { "met" } else { "MISSED" },
        percentile(&upper, 0.50).as_secs_f64() * 1e3,
        percentile(&upper, 0.99).as_secs_f64() * 1e3,
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let events = env_u64("FEED_EVENTS", 300);
    let gap = Duration::from_millis(env_u64("FEED_GAP_MS", 3));
    println!("change feed: commit (another store handle) -> subscriber, one event every {gap:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    measure(
        "SQLite (inotify + data_version)",
        Duration::from_millis(10),
        &Location::Sqlite(dir.path().join("state.db")),
        events,
        gap,
    );

    let url = std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var(TEST_DATABASE_URL))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    // SAFETY: set before any thread of this process reads the environment.
    unsafe { std::env::set_var(TEST_DATABASE_URL, &url) };
    let reachable = postgres_reachable(&url);
    match reachable
        .then(|| TestSchema::create("feed bench"))
        .flatten()
    {
        Some(schema) => measure(
            &format!(
                "PostgreSQL (LISTEN/NOTIFY, {})",
                taskdaemon_store::redact_url(&url)
            ),
            Duration::from_millis(20),
            &Location::Postgres(schema.url()),
            events,
            gap,
        ),
        None => println!(
            "PostgreSQL skipped: nothing answers at {}",
            taskdaemon_store::redact_url(&url)
        ),
    }
}

fn postgres_reachable(url: &str) -> bool {
    taskdaemon_store::open(&Location::Postgres(format!(
        "{url}{}connect_timeout=2",
        if url.contains('?') { '&' } else { '?' }
    )))
    .is_ok()
}
