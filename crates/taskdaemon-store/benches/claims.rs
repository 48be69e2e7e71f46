//! Claim throughput and latency on PostgreSQL and SQLite, side by side.
//!
//! For 1, 4 and 16 workers (threads, each with its own claims) it prints
//! no-op claims per second (claim, then record success at once), p50, p95
//! and p99 claim latency, first one task at a time (`claim` and
//! `complete_claim`, the path queue workers took before issue 17), then in
//! batches (`claim_batch` and `complete_claims`, the path they take now).
//!
//! Claim latency is the time of the claim call: from a worker asking for
//! work while tasks wait to it holding the lease (pick, lease, start,
//! commit). A task claimed in a batch waited as long as its batch's call;
//! `p50/claim` is a claim's share of its call (the call's time over the
//! tasks it claimed). The p50 target is judged on one worker claiming one
//! task at a time (nothing else queues the call); with 16 workers on this
//! machine's 2 cores a call also waits for a CPU, which the 16-worker rows
//! show. Last, the time from `submit` to the claim of an idle worker woken by
//! the store's waiter (`LISTEN`/`NOTIFY` on PostgreSQL): how long a task
//! that becomes claimable waits for an idle worker.
//!
//! CPU per claim (user + system, from /proc: this process, and on a local
//! PostgreSQL the server backends of this run) is printed beside the
//! times: unlike wall time it hardly moves with the load of other work on
//! the machine. Throughput is also printed as a ratio to the first-wave
//! baseline of 380-510 claims/s (PostgreSQL, 16 workers). Targets are
//! printed beside the figures; nothing fails on them.
//!
//!   cargo bench -p taskdaemon-store --bench claims        (bench/postgres.sh)
//!
//! Knobs: BENCH_DATABASE_URL (else TASKDAEMON_TEST_DATABASE_URL, else
//! postgres://postgres@127.0.0.1:5432/test), CLAIMS per one-at-a-time run
//! (2000), BATCH_CLAIMS per batched run (10000), BATCH (claims per batch,
//! 32), LATENCY_RUNS (50), BACKENDS (`postgres,sqlite`; add `async` for a
//! batched PostgreSQL run with `synchronous_commit=off`, an opt-in a URL can
//! carry, for comparison).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use taskdaemon_core::NewAgent;
use taskdaemon_core::process::{ExitOutcome, RestartPolicy};
use taskdaemon_store::{Completion, PgOptions, PgStore, SqliteStore, Store};

const TARGET_CLAIMS_PER_SEC: f64 = 5000.0;
const TARGET_P50: Duration = Duration::from_millis(2);
/// The first wave's PostgreSQL figures with 16 workers (issue 17).
const BASELINE: (f64, f64) = (380.0, 510.0);
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

/// Clock ticks per second of the CPU times in `/proc/PID/stat` (USER_HZ,
/// 100 on Linux whatever the kernel's own tick).
const USER_HZ: u64 = 100;

/// User + system CPU ticks of process `pid`, when `/proc` shows it.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the
    // first, utime the 12th and stime the 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU used so far by this process and by the server backends of the run.
struct CpuSample {
    client: u64,
    /// Ticks by backend pid; `None` when the backends cannot be seen (no
    /// PostgreSQL, or not on this machine).
    server: Option<HashMap<u32, u64>>,
}

/// Measures CPU per claim: this process's, and on a local PostgreSQL that
/// of the backends whose `application_name` is the run's.
struct CpuMeter {
    server: Option<(postgres::Client, String)>,
}

impl CpuMeter {
    fn sample(&mut self) -> CpuSample {
        let server = self.server.as_mut().and_then(|(client, name)| {
            let rows = client
                .query(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                    &[name],
                )
                .ok()?;
            rows.iter()
                .map(|row| {
                    let pid = u32::try_from(row.get::<_, i32>(0)).ok()?;
                    Some((pid, cpu_ticks(pid)?))
                })
                .collect()
        });
        CpuSample {
            client: cpu_ticks(std::process::id()).unwrap_or(0),
            server,
        }
    }

    /// CPU per claim since `before` for `claims` claims: this process's and
    /// the server's.
    fn per_claim(&mut self, before: &CpuSample, claims: usize) -> (Duration, Option<Duration>) {
        let after = self.sample();
        let per = |ticks: u64| {
            Duration::from_secs_f64(ticks as f64 / USER_HZ as f64 / claims.max(1) as f64)
        };
        let server = match (&before.server, &after.server) {
            (Some(before), Some(after)) => Some(
                after
                    .iter()
                    .map(|(pid, t)| t.saturating_sub(*before.get(pid).unwrap_or(&0)))
                    .sum(),
            ),
            _ => None,
        };
        (
            per(after.client.saturating_sub(before.client)),
            server.map(per),
        )
    }
}

struct Figures {
    claims_per_sec: f64,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    /// The p50 of a claim's share of its call (the call's time over the
    /// tasks it claimed): what a claim costs a worker.
    p50_share: Duration,
    /// CPU per claim (claim and completion): this process, the server.
    cpu: (Duration, Option<Duration>),
}

/// `workers` threads claim `batch` at a time (one at a time through
/// `claim`/`complete_claim` when `batch` is 1) and complete what they claimed
/// until the queue is empty.
fn claim_run(
    store: &Arc<dyn Store>,
    meter: &mut CpuMeter,
    workers: usize,
    batch: usize,
    claims: usize,
    first: usize,
) -> Figures {
    fill(store, first, claims);
    let cpu_before = meter.sample();
    let started = Instant::now();
    let latencies: Vec<(Duration, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let store = store.clone();
                scope.spawn(move || {
                    let id = format!("bench-{w}");
                    let mut latencies = Vec::new();
                    loop {
                        let done = if batch == 1 {
                            one_at_a_time(&*store, &id, &mut latencies)
                        } else {
                            in_a_batch(&*store, &id, batch, &mut latencies)
                        };
                        if !done {
                            break;
                        }
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
    let cpu = meter.per_claim(&cpu_before, claims);
    assert_eq!(latencies.len(), claims, "every job claimed once");
    let mut sorted: Vec<Duration> = latencies.iter().map(|(call, _)| *call).collect();
    sorted.sort();
    let mut shares: Vec<Duration> = latencies.iter().map(|(_, share)| *share).collect();
    shares.sort();
    Figures {
        claims_per_sec: sorted.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&sorted, 0.50),
        p95: percentile(&sorted, 0.95),
        p99: percentile(&sorted, 0.99),
        p50_share: percentile(&shares, 0.50),
        cpu,
    }
}

/// One claim and its completion; `false` when nothing was left.
fn one_at_a_time(store: &dyn Store, id: &str, latencies: &mut Vec<(Duration, Duration)>) -> bool {
    let t = Instant::now();
    let Some(claim) = store.claim(id, &[], LEASE).expect("claim") else {
        return false;
    };
    let waited = t.elapsed();
    latencies.push((waited, waited));
    store
        .complete_claim(&claim.lease, ExitOutcome::exited(0), &serde_json::json!({}))
        .expect("complete");
    true
}

/// One batch claimed and completed; `false` when nothing was left.
fn in_a_batch(
    store: &dyn Store,
    id: &str,
    batch: usize,
    latencies: &mut Vec<(Duration, Duration)>,
) -> bool {
    let t = Instant::now();
    let claims = store.claim_batch(id, &[], LEASE, batch).expect("claim");
    if claims.is_empty() {
        return false;
    }
    let waited = t.elapsed();
    let share = waited / claims.len() as u32;
    latencies.extend(std::iter::repeat_n((waited, share), claims.len()));
    let ends: Vec<Completion> = claims
        .into_iter()
        .map(|c| Completion {
            lease: c.lease,
            outcome: ExitOutcome::exited(0),
            result: serde_json::json!({}),
        })
        .collect();
    let answers = store.complete_claims(&ends).expect("complete");
    assert!(answers.iter().all(Result::is_ok), "every end recorded");
    true
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

fn ratio_to_baseline(per_sec: f64) -> String {
    format!("x{:.1}-x{:.1}", per_sec / BASELINE.1, per_sec / BASELINE.0)
}

struct Knobs {
    claims: usize,
    batch_claims: usize,
    batch: usize,
    latency_runs: usize,
}

fn bench(
    name: &str,
    store: &Arc<dyn Store>,
    meter: &mut CpuMeter,
    knobs: &Knobs,
    batches: &[usize],
) {
    println!("\n{name}");
    println!(
        "  {:>7}  {:>5}  {:>10}  {:>9}  {:>9}  {:>9}  {:>11}  {:>13}  {:>17}",
        "workers",
        "batch",
        "claims/s",
        "p50",
        "p95",
        "p99",
        "p50/claim",
        "vs 380-510/s",
        "CPU/claim us+srv"
    );
    let mut first = 0;
    for &batch in batches {
        let claims = if batch == 1 {
            knobs.claims
        } else {
            knobs.batch_claims
        };
        for workers in [1, 4, 16] {
            let f = claim_run(store, meter, workers, batch, claims, first);
            first += claims;
            println!(
                "  {workers:>7}  {batch:>5}  {:>10.0}  {:>9}  {:>9}  {:>9}  {:>11}  {:>13}  {:>17}{}",
                f.claims_per_sec,
                ms(f.p50),
                ms(f.p95),
                ms(f.p99),
                ms(f.p50_share),
                ratio_to_baseline(f.claims_per_sec),
                cpu(f.cpu),
                verdict(workers, batch, &f),
            );
        }
    }
    if batches.contains(&1) {
        let (p50, p99) = wake_latency(store, knobs.latency_runs, first);
        println!(
            "  submit -> claim by an idle worker: p50 {}, p99 {}",
            ms(p50),
            ms(p99)
        );
    }
}

/// CPU per claim, microseconds: this process + the server (`-` unseen).
fn cpu((client, server): (Duration, Option<Duration>)) -> String {
    let us = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1e6);
    format!("{}+{}", us(client), server.map_or("-".to_owned(), us))
}

/// The targets a row is judged on: throughput with 16 workers; the claim
/// call's p50 with one worker claiming one task at a time.
fn verdict(workers: usize, batch: usize, f: &Figures) -> String {
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    match (workers, batch) {
        (16, _) => format!(
            "  target >= {TARGET_CLAIMS_PER_SEC:.0}/s: {}",
            met(f.claims_per_sec >= TARGET_CLAIMS_PER_SEC)
        ),
        (1, 1) => format!(
            "  target claim p50 < {}: {}",
            ms(TARGET_P50),
            met(f.p50 < TARGET_P50)
        ),
        _ => String::new(),
    }
}

/// The PostgreSQL runs, in a schema of their own, with `options` added to
/// the connection's.
fn bench_postgres(url: &str, options: &str, knobs: &Knobs, batches: &[usize]) {
    let schema = format!("td_bench_{}", std::process::id());
    // The run's backends carry a name of their own, for the CPU meter.
    let application = schema.clone();
    let joiner = if url.contains('?') { '&' } else { '?' };
    let named_url = format!("{url}{joiner}application_name={application}");
    let (name, opened_url) = if options.is_empty() {
        (
            format!("PostgreSQL ({})", taskdaemon_store::redact_url(url)),
            named_url,
        )
    } else {
        (
            format!("PostgreSQL with {options} (opt-in, not the default)"),
            format!(
                "{named_url}&options={}",
                options.replace(' ', "%20").replace('=', "%3D")
            ),
        )
    };
    match PgStore::open(&PgOptions {
        url: opened_url,
        schema: Some(schema.clone()),
        pool_size: 24,
    }) {
        Ok(pg) => {
            let pg: Arc<dyn Store> = Arc::new(pg);
            let mut meter = CpuMeter {
                server: postgres::Client::connect(url, postgres::NoTls)
                    .ok()
                    .map(|client| (client, application)),
            };
            bench(&name, &pg, &mut meter, knobs, batches);
            drop(pg);
            if let Ok(mut client) = postgres::Client::connect(url, postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
            }
        }
        Err(e) => println!("\nPostgreSQL skipped: {e}"),
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // useful either: this runs only as a benchmark.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let knobs = Knobs {
        claims: env_usize("CLAIMS", 2000),
        batch_claims: env_usize("BATCH_CLAIMS", 10_000),
        batch: env_usize("BATCH", 32).clamp(2, taskdaemon_store::MAX_BATCH),
        latency_runs: env_usize("LATENCY_RUNS", 50),
    };
    let backends = std::env::var("BACKENDS").unwrap_or_else(|_| "postgres,sqlite".to_owned());
    let url = std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TASKDAEMON_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    println!(
        "no-op tasks (claim, then record success): {} per one-at-a-time run, {} per batched run \
         (batches of {}); latency = the claim call's time (a worker asks while tasks wait, until \
         it holds the lease); CPU/claim = microseconds of CPU per claim and its completion, \
         this process + the PostgreSQL backends",
        knobs.claims, knobs.batch_claims, knobs.batch
    );

    if backends.contains("postgres") {
        let all = [1, knobs.batch];
        bench_postgres(&url, "", &knobs, &all);
        if backends.contains("async") {
            // An opt-in a URL can carry: commits stop waiting for the disk,
            // so a server crash may forget the last claims (their tasks run
            // again); completions fenced as ever. Measured, not the default.
            bench_postgres(&url, "-c synchronous_commit=off", &knobs, &[knobs.batch]);
        }
    }

    if backends.contains("sqlite") {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("state.db")).expect("sqlite"));
        let mut meter = CpuMeter { server: None };
        bench(
            "SQLite (one host)",
            &sqlite,
            &mut meter,
            &knobs,
            &[1, knobs.batch],
        );
    }
}
