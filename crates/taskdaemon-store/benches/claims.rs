//! Claim throughput and latency on PostgreSQL and SQLite, side by side.
//!
//! For 1, 4 and 16 workers (threads, each with its own claims) it prints
//! no-op claims per second (claim, then record success at once), p50 and
//! p99 claim latency, and the time from `submit` to the claim of an idle
//! worker woken by the store's waiter (`LISTEN`/`NOTIFY` on PostgreSQL).
//! Targets are printed beside the figures; nothing fails on them.
//!
//!   cargo bench -p taskdaemon-store --bench claims        (bench/postgres.sh)
//!
//! Knobs: BENCH_DATABASE_URL (else TASKDAEMON_TEST_DATABASE_URL, else
//! postgres://postgres@127.0.0.1:5432/test), CLAIMS per run (2000),
//! LATENCY_RUNS (50).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use taskdaemon_core::NewAgent;
use taskdaemon_core::process::{ExitOutcome, RestartPolicy};
use taskdaemon_store::{PgOptions, PgStore, SqliteStore, Store};

const TARGET_CLAIMS_PER_SEC: f64 = 5000.0;
const LEASE: Duration = Duration::from_secs(60);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn job(n: usize) -> NewAgent {
    NewAgent {
        wanted_id: format!("job-{n}"),
        queue: "bench".to_owned(),
        document: format!("job-{n}.md"),
        executor: "command".to_owned(),
        argv: vec!["true".to_owned()],
        cwd: "/".to_owned(),
        env: Vec::new(),
        restart: RestartPolicy::default(),
        max_attempts: 1,
        timeout_ms: None,
        limits: Default::default(),
        container: None,
    }
}

/// Submits `count` jobs from a few threads (so commits can share fsyncs).
fn fill(store: &Arc<dyn Store>, first: usize, count: usize) {
    let threads = 8;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let store = store.clone();
            scope.spawn(move || {
                for n in (first + t..first + count).step_by(threads) {
                    store.submit(&job(n), "bench").expect("submit");
                }
            });
        }
    });
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

struct Figures {
    claims_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

/// `workers` threads claim and complete until the queue is empty.
fn claim_run(store: &Arc<dyn Store>, workers: usize, claims: usize, first: usize) -> Figures {
    fill(store, first, claims);
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let store = store.clone();
                scope.spawn(move || {
                    let id = format!("bench-{w}");
                    let mut latencies = Vec::new();
                    loop {
                        let t = Instant::now();
                        let Some(claim) = store.claim(&id, &[], LEASE).expect("claim") else {
                            break;
                        };
                        latencies.push(t.elapsed());
                        store
                            .complete_claim(
                                &claim.lease,
                                ExitOutcome::exited(0),
                                &serde_json::json!({}),
                            )
                            .expect("complete");
                    }
                    latencies
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut sorted = latencies;
    sorted.sort();
    Figures {
        claims_per_sec: sorted.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&sorted, 0.50),
        p99: percentile(&sorted, 0.99),
    }
}

/// An idle worker waits on the store's waiter; each submit is timed to
/// the worker's claim.
fn wake_latency(store: &Arc<dyn Store>, runs: usize, first: usize) -> (Duration, Duration) {
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let stop = Arc::new(AtomicBool::new(false));
    let mut waiter = store.work_waiter().expect("waiter");
    let worker = {
        let store = store.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut latencies = Vec::new();
            while let Ok(submitted) = rx.recv() {
                loop {
                    if let Some(claim) = store.claim("waker", &[], LEASE).expect("claim") {
                        latencies.push(submitted.elapsed());
                        store
                            .complete_claim(
                                &claim.lease,
                                ExitOutcome::exited(0),
                                &serde_json::json!({}),
                            )
                            .expect("complete");
                        break;
                    }
                    if stop.load(Ordering::Relaxed) {
                        return latencies;
                    }
                    waiter.wait(Duration::from_secs(2)).expect("wait");
                }
            }
            latencies
        })
    };
    for n in 0..runs {
        std::thread::sleep(Duration::from_millis(20));
        let submitted = Instant::now();
        tx.send(submitted).expect("send");
        store.submit(&job(first + n), "bench").expect("submit");
        // Let the worker finish before the next one.
        std::thread::sleep(Duration::from_millis(30));
    }
    drop(tx);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = worker.join().expect("waker");
    latencies.sort();
    (percentile(&latencies, 0.5), percentile(&latencies, 0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn bench(name: &str, store: &Arc<dyn Store>, claims: usize, latency_runs: usize) {
    println!("\n{name}");
    println!(
        "  {:>7}  {:>12}  {:>10}  {:>10}",
        "workers", "claims/s", "p50", "p99"
    );
    let mut first = 0;
    for workers in [1, 4, 16] {
        let f = claim_run(store, workers, claims, first);
        first += claims;
        let target = if workers == 16 {
            format!(
                "  (target >= {TARGET_CLAIMS_PER_SEC:.0}/s: {})",
                if f.claims_per_sec >= TARGET_CLAIMS_PER_SEC {
                    "met"
                } else {
                    "NOT met"
                }
            )
        } else {
            String::new()
        };
        println!(
            "  {workers:>7}  {:>12.0}  {:>10}  {:>10}{target}",
            f.claims_per_sec,
            ms(f.p50),
            ms(f.p99)
        );
    }
    let (p50, p99) = wake_latency(store, latency_runs, first);
    println!(
        "  submit -> claim by an idle worker: p50 {}, p99 {}",
        ms(p50),
        ms(p99)
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // useful either: this runs only as a benchmark.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let claims = env_usize("CLAIMS", 2000);
    let latency_runs = env_usize("LATENCY_RUNS", 50);
    let url = std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TASKDAEMON_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    println!("claims: {claims} per run, no-op tasks (claim, then record success)");

    let schema = format!("td_bench_{}", std::process::id());
    match PgStore::open(&PgOptions {
        url: url.clone(),
        schema: Some(schema.clone()),
        pool_size: 24,
    }) {
        Ok(pg) => {
            let pg: Arc<dyn Store> = Arc::new(pg);
            bench(
                &format!("PostgreSQL ({})", taskdaemon_store::redact_url(&url)),
                &pg,
                claims,
                latency_runs,
            );
            drop(pg);
            if let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
            }
        }
        Err(e) => println!("\nPostgreSQL skipped: {e}"),
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("state.db")).expect("sqlite"));
    bench("SQLite (one host)", &sqlite, claims, latency_runs);
}
