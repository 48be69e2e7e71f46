//! Loop benchmark (issue 5): N concurrent loops against the fake LLM server.
//!
//! A `harness = false` bench target, so it builds with the release profile.
//! `bash bench/loops.sh` builds everything and runs it; by hand:
//!
//! ```text
//! loops --td target/release/taskdaemon [--loops 50,500]
//! ```
//!
//! Two measurements per N:
//! - **through the daemon**: N `loop run --detach` against one daemon
//!   (`[loops] max_concurrent = N`), each loop writing a file with one tool
//!   call and validating with `test -f`: iterations per second (first start
//!   to last end, from the store) and the daemon's peak RSS (`VmHWM`);
//! - **in process**: the same loops on a current-thread runtime (as in the
//!   daemon) with a client wrapper that times the model: engine overhead per
//!   iteration and per tool call = iteration wall time - model time -
//!   validation time. With N loops on one thread this includes waiting for
//!   the others; the N = 1 row is the bare cost.
//!
//! Figures and targets are printed; nothing fails on them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{Value, json};
use taskdaemon_fake_llm::{FakeLlm, Reply, Turn};
use taskdaemon_llm::{
    CommandSpec, EventStream, IterationRecord, Llm, LlmClient, LlmError, LlmRequest, LoopHooks,
    LoopRunner, LoopSpec, Provider, ProviderConfig, RateLimiter, build_client,
};

const KEY: &str = "sk-bench-not-a-real-key";

fn main() {
    let mut td = None;
    let mut counts = vec![50usize, 500];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--td" => td = args.next().map(PathBuf::from),
            "--loops" => {
                counts = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            }
            // `cargo bench` passes --bench; ignore what we do not know.
            _ => {}
        }
    }
    let td = td.unwrap_or_else(|| PathBuf::from("target/release/taskdaemon"));
    if !td.is_file() {
        eprintln!("no taskdaemon binary at {} (pass --td PATH)", td.display());
        std::process::exit(2);
    }
    let fake_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    println!("## Loops against the fake LLM server");
    println!(
        "machine: {} cores, load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    println!(
        "| loops | iterations | tool calls | iterations/s (daemon) | daemon peak RSS | engine overhead / iteration | engine overhead / tool call |"
    );
    println!("|---|---|---|---|---|---|---|");
    let bare = in_process(&fake_rt, 1, 20);
    println!(
        "| 1 (in process, sequential) | {} | {} | - | - | {:.3} ms | {:.3} ms |",
        bare.iterations, bare.tool_calls, bare.per_iteration_ms, bare.per_tool_ms
    );
    for &n in &counts {
        let daemon = through_daemon(&fake_rt, &td, n);
        let engine = in_process(&fake_rt, n, 1);
        println!(
            "| {n} | {} | {} | {:.1} | {:.1} MiB | {:.3} ms | {:.3} ms |",
            daemon.iterations,
            daemon.tool_calls,
            daemon.iterations_per_sec,
            daemon.peak_rss_kb as f64 / 1024.0,
            engine.per_iteration_ms,
            engine.per_tool_ms
        );
        if daemon.failed > 0 {
            println!("|  | ({} loops did not succeed) | | | | | |", daemon.failed);
        }
    }
    println!();
    println!(
        "targets: 500 loops under 200 MiB daemon RSS; < 1 ms engine overhead per tool call (the sequential row)."
    );
}

/// Replies for `n` loops: each needs a write and then an end of turn. The
/// server hands them out in arrival order, so a loop may get them in another
/// order and take an extra iteration; there are spares for that.
fn script(n: usize) -> Vec<Reply> {
    (0..n * 3)
        .flat_map(|_| {
            [
                Turn::tool(
                    "write_file",
                    json!({"path": "out.txt", "content": "done\n"}),
                )
                .into(),
                Turn::text("Wrote out.txt.").into(),
            ]
        })
        .collect()
}

struct DaemonRun {
    iterations: u64,
    tool_calls: u64,
    iterations_per_sec: f64,
    peak_rss_kb: u64,
    failed: usize,
}

fn through_daemon(fake_rt: &tokio::runtime::Runtime, td: &Path, n: usize) -> DaemonRun {
    let fake = fake_rt.block_on(FakeLlm::start(script(n))).expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let cli = |args: &[&str]| {
        let out = Command::new(td)
            .arg("--workspace")
            .arg(root)
            .args(args)
            .env("ANTHROPIC_API_KEY", KEY)
            .env("ANTHROPIC_BASE_URL", fake.base_url())
            .stdin(Stdio::null())
            .output()
            .expect("taskdaemon");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(&["init"]);
    std::fs::write(
        root.join(".taskdaemon/config.toml"),
        format!(
            "[loops]\nmax_concurrent = {n}\nrequests_per_minute = 100000000\nbreaker_failures = 1000000\n"
        ),
    )
    .expect("config");
    std::fs::write(root.join("spec.md"), "Write out.txt.\n").expect("spec");
    cli(&["start"]);
    let pid: i32 = std::fs::read_to_string(root.join(".taskdaemon/daemon.pid"))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0);
    let spec = root.join("spec.md");
    let spec = spec.to_str().expect("utf-8");
    // Submit from a few threads: one CLI process per loop.
    let next = Arc::new(AtomicU64::new(0));
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let next = next.clone();
            let cli = &cli;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                    if i >= n {
                        return;
                    }
                    let work = root.join(format!("w{i}"));
                    std::fs::create_dir_all(&work).expect("workdir");
                    cli(&[
                        "loop",
                        "run",
                        "--detach",
                        "--spec",
                        spec,
                        "--validate",
                        "test -f out.txt",
                        "--max-iterations",
                        "6",
                        "--workdir",
                        work.to_str().expect("utf-8"),
                    ]);
                }
            });
        }
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let live: Value =
            serde_json::from_str(&cli(&["loop", "list", "--json"])).unwrap_or_default();
        if live.as_array().is_some_and(|a| a.is_empty()) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let peak_rss_kb = status_kb(pid, "VmHWM:");
    let all: Value =
        serde_json::from_str(&cli(&["loop", "list", "--all", "--json"])).unwrap_or_default();
    let loops = all.as_array().cloned().unwrap_or_default();
    let time = |v: &Value| {
        v.as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis())
    };
    let first = loops
        .iter()
        .filter_map(|l| time(&l["started_at"]))
        .min()
        .unwrap_or(0);
    let last = loops
        .iter()
        .filter_map(|l| time(&l["finished_at"]))
        .max()
        .unwrap_or(0);
    let iterations: u64 = loops
        .iter()
        .map(|l| l["iterations"].as_u64().unwrap_or(0))
        .sum();
    let tool_calls: u64 = loops
        .iter()
        .map(|l| l["tool_calls"].as_u64().unwrap_or(0))
        .sum();
    let failed = loops.iter().filter(|l| l["status"] != "succeeded").count();
    cli(&["stop"]);
    drop(fake);
    DaemonRun {
        iterations,
        tool_calls,
        iterations_per_sec: iterations as f64 / ((last - first).max(1) as f64 / 1000.0),
        peak_rss_kb,
        failed,
    }
}

fn status_kb(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Model time: from sending a request to the last event of its stream.
#[derive(Debug)]
struct Timed {
    inner: Arc<dyn LlmClient>,
    model_nanos: Arc<AtomicU64>,
}

#[async_trait]
impl LlmClient for Timed {
    fn provider(&self) -> Provider {
        self.inner.provider()
    }

    async fn stream(&self, request: &LlmRequest) -> Result<EventStream, LlmError> {
        let start = Instant::now();
        let stream = self.inner.stream(request).await?;
        let total = self.model_nanos.clone();
        let mut last = start;
        let stream = stream.map(move |event| {
            // Credit the time since the previous event (or the request).
            let now = Instant::now();
            total.fetch_add((now - last).as_nanos() as u64, Ordering::Relaxed);
            last = now;
            event
        });
        Ok(Box::pin(stream))
    }
}

/// Validation time per loop, from the hooks.
#[derive(Default)]
struct ValidationClock {
    started: Mutex<Option<Instant>>,
    nanos: Arc<AtomicU64>,
}

impl LoopHooks for ValidationClock {
    fn on_validation_start(&self, _iteration: u32) {
        *self.started.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn on_iteration_end(&self, _record: &IterationRecord) {
        if let Some(start) = self
            .started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            self.nanos
                .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }
}

struct EngineRun {
    iterations: u64,
    tool_calls: u64,
    per_iteration_ms: f64,
    per_tool_ms: f64,
}

/// `n` concurrent loops of `rounds` sequential runs each, in this process.
fn in_process(fake_rt: &tokio::runtime::Runtime, n: usize, rounds: usize) -> EngineRun {
    let fake = fake_rt
        .block_on(FakeLlm::start(script(n * rounds)))
        .expect("fake");
    let dir = tempfile::tempdir().expect("tempdir");
    let model_nanos = Arc::new(AtomicU64::new(0));
    let validation_nanos = Arc::new(AtomicU64::new(0));
    let config = ProviderConfig::resolve(Provider::Anthropic, Some(&fake.base_url()), |name| {
        (name == "ANTHROPIC_API_KEY").then(|| KEY.to_owned())
    })
    .expect("config");
    let client = Arc::new(Timed {
        inner: build_client(config).expect("client"),
        model_nanos: model_nanos.clone(),
    });
    let llm = Llm::new(client).with_rate_limiter(RateLimiter::new(1_000_000, 1e9));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(32)
        .build()
        .expect("runtime");
    let wall_nanos = Arc::new(AtomicU64::new(0));
    let (iterations, tool_calls) = runtime.block_on(async {
        let mut handles = Vec::new();
        for i in 0..n {
            let (llm, root) = (llm.clone(), dir.path().to_path_buf());
            let (wall, validation) = (wall_nanos.clone(), validation_nanos.clone());
            handles.push(tokio::spawn(async move {
                let mut totals = (0u64, 0u64);
                for round in 0..rounds {
                    let work = root.join(format!("w{i}-{round}"));
                    std::fs::create_dir_all(&work).expect("workdir");
                    let mut spec = LoopSpec::new(
                        "Write out.txt.",
                        CommandSpec::Argv(vec!["test".into(), "-f".into(), "out.txt".into()]),
                        "anthropic",
                        "claude-sonnet-4-5",
                        &work,
                    );
                    spec.max_iterations = 6;
                    let config = spec.into_config().expect("spec");
                    let hooks = Arc::new(ValidationClock {
                        nanos: validation.clone(),
                        ..ValidationClock::default()
                    });
                    let runner = LoopRunner::new(config, llm.clone(), work.join("progress.jsonl"))
                        .expect("runner")
                        .with_hooks(hooks);
                    let start = Instant::now();
                    let _ = runner.run().await;
                    wall.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    for r in taskdaemon_llm::ProgressLog::read(&work.join("progress.jsonl"))
                        .unwrap_or_default()
                    {
                        totals.0 += 1;
                        totals.1 += u64::from(r.tool_calls);
                    }
                }
                totals
            }));
        }
        let mut sum = (0, 0);
        for handle in handles {
            if let Ok((it, tools)) = handle.await {
                sum.0 += it;
                sum.1 += tools;
            }
        }
        sum
    });
    drop(fake);
    let engine = wall_nanos.load(Ordering::Relaxed) as f64
        - model_nanos.load(Ordering::Relaxed) as f64
        - validation_nanos.load(Ordering::Relaxed) as f64;
    let engine_ms = engine.max(0.0) / 1e6;
    EngineRun {
        iterations,
        tool_calls,
        per_iteration_ms: engine_ms / iterations.max(1) as f64,
        per_tool_ms: engine_ms / tool_calls.max(1) as f64,
    }
}
