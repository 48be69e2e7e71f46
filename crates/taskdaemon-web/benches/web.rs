//! Web figures, printed, never asserted (run by `bench/web.sh`): API
//! latency under 50 concurrent clients with 10,000 tasks in the store,
//! WebSocket latency from commit to client, the dashboard's first load in
//! headless Chromium, and the daemon's RSS with 100 open WebSockets. Drives the real binary (`TASKDAEMON_BIN`, default
//! target/release/taskdaemon) over loopback.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use taskdaemon_core::{NewTracked, TrackedEdit};
use taskdaemon_service::Service;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn td(bin: &Path, root: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .arg("--workspace")
        .arg(root)
        .args(args)
        .output()
        .expect("run taskdaemon");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn percentiles(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at =
        |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.50), at(0.95), at(0.99))
}

fn rss_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The CPU time (user + system) process `pid` has used, in ms.
fn cpu_ms(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |n: usize| {
        fields
            .get(n)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (11 and 12 after the state).
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) * 1000.0 / hz
}

fn stream(base: &str, token: &str, query: &str) -> WebSocket<MaybeTlsStream<TcpStream>> {
    let url = format!("{}/api/v1/stream{query}", base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tungstenite::connect(request).expect("ws").0
}

fn main() {
    let tasks = env_usize("TASKS", 10_000);
    let clients = env_usize("CLIENTS", 50);
    let requests = env_usize("REQUESTS", 200);
    let ws_samples = env_usize("WS_SAMPLES", 200);
    let sockets = env_usize("SOCKETS", 100);
    let bin = std::env::var_os("TASKDAEMON_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/taskdaemon")
        });
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (service, _) = Service::init(root).unwrap();

    let seeding = Instant::now();
    let store = service.store_arc();
    for n in 0..tasks {
        let new = NewTracked {
            title: format!("seeded task {n}"),
            labels: if n % 10 == 0 {
                vec!["tenth".to_owned()]
            } else {
                Vec::new()
            },
            ..NewTracked::default()
        };
        store.create_tracked(&new, "bench").unwrap();
    }
    println!(
        "seeded {tasks} tasks in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    td(&bin, root, &["start", "--web", "127.0.0.1:0"]);
    let base = std::fs::read_to_string(root.join(".taskdaemon/web.url"))
        .unwrap()
        .trim()
        .to_owned();
    let token = td(&bin, root, &["web", "token"]);
    let pid = td(&bin, root, &["status", "--json"]);
    let pid = serde_json::from_str::<serde_json::Value>(&pid).unwrap()["pid"].to_string();

    // API latency under concurrent clients.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for (label, path) in [
        ("list (50 of 10,000)", "/api/v1/tasks?limit=50".to_owned()),
        (
            "list filtered (label)",
            "/api/v1/tasks?limit=50&label=tenth".to_owned(),
        ),
        ("show", format!("/api/v1/tasks/TASK-{}", tasks / 2)),
    ] {
        let cpu_before = cpu_ms(&pid);
        let (samples, wall) = runtime.block_on(load(&base, &token, &path, clients, requests));
        let count = samples.len();
        let cpu_us = (cpu_ms(&pid) - cpu_before) * 1000.0 / count as f64;
        let (p50, p95, p99) = percentiles(samples);
        println!(
            "API {label}: {clients} clients x {requests} requests: p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms, {:.0} req/s, daemon CPU {cpu_us:.0} us/request",
            count as f64 / wall
        );
    }

    // The same reads while another process commits all along: the daemon's
    // kept answers last only until the next commit, so this line measures
    // reads that mostly miss them.
    let writes = env_usize("WRITES_PER_S", 100);
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let (store, writing) = (store.clone(), writing.clone());
        std::thread::spawn(move || {
            let mut commits = 0u64;
            let pause = Duration::from_secs(1) / writes.max(1) as u32;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                let edit = TrackedEdit {
                    title: Some(format!("rewritten {commits}")),
                    ..TrackedEdit::default()
                };
                store.edit_tracked("TASK-2", &edit, "bench").unwrap();
                commits += 1;
                std::thread::sleep(pause);
            }
            commits
        })
    };
    let mut written = Vec::new();
    for (label, path) in [
        ("list (50 of 10,000)", "/api/v1/tasks?limit=50".to_owned()),
        ("show", format!("/api/v1/tasks/TASK-{}", tasks / 2)),
    ] {
        let started = Instant::now();
        let cpu_before = cpu_ms(&pid);
        let (samples, wall) = runtime.block_on(load(&base, &token, &path, clients, requests));
        let cpu_us = (cpu_ms(&pid) - cpu_before) * 1000.0 / samples.len() as f64;
        written.push((label, samples, wall, started.elapsed(), cpu_us));
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let commits = writer.join().unwrap();
    let elapsed: f64 = written.iter().map(|w| w.3.as_secs_f64()).sum();
    for (label, samples, wall, _, cpu_us) in written {
        let count = samples.len();
        let (p50, p95, p99) = percentiles(samples);
        println!(
            "API {label} under writes ({:.0} commits/s from another process): p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms, {:.0} req/s, daemon CPU {cpu_us:.0} us/request",
            commits as f64 / elapsed,
            count as f64 / wall
        );
    }

    // Commit-to-client latency: a change committed here, seen on the socket.
    let mut socket = stream(&base, &token, "?topics=kind:edited");
    let _snapshot = socket.read().unwrap();
    let mut latencies = Vec::new();
    for n in 0..ws_samples {
        let edit = TrackedEdit {
            title: Some(format!("edited {n}")),
            ..TrackedEdit::default()
        };
        let event_seq_before = store.last_event_seq().unwrap();
        store.edit_tracked("TASK-1", &edit, "bench").unwrap();
        let committed = Instant::now();
        loop {
            if let Message::Text(text) = socket.read().unwrap() {
                let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                if value["seq"].as_i64().is_some_and(|s| s > event_seq_before) {
                    latencies.push(committed.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
            }
        }
    }
    let (p50, _, p99) = percentiles(latencies);
    println!("WebSocket commit to client ({ws_samples} changes): p50 {p50:.2} ms, p99 {p99:.2} ms");
    drop(socket);

    first_load(&base, &token);

    // Memory with many open sockets.
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kb(&pid);
    let mut open = Vec::new();
    for _ in 0..sockets {
        let mut socket = stream(&base, &token, "");
        let _snapshot = socket.read().unwrap();
        open.push(socket);
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kb(&pid);
    println!(
        "daemon RSS: {:.1} MiB before, {:.1} MiB with {sockets} WebSockets open (+{:.1} MiB)",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 1024.0
    );
    drop(open);
    td(&bin, root, &["stop"]);
}

/// The dashboard's first load in headless Chromium (bench/first-load.js),
/// when node with playwright-core (`NODE_PATH`) and Chromium (`CHROMIUM`,
/// default /usr/bin/chromium) are there; a line saying why not otherwise.
fn first_load(base: &str, token: &str) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if std::env::var_os("NODE_PATH").is_none() || !Path::new(&chromium).is_file() {
        println!(
            "dashboard first load: skipped (needs NODE_PATH with playwright-core and {chromium})"
        );
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/first-load.js");
    let out = Command::new("node")
        .arg(script)
        .env("TD_BASE", base)
        .env("TD_TOKEN", token)
        .env("TD_CHROMIUM", &chromium)
        .output();
    let figures = match out {
        Ok(out) if out.status.success() => {
            serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()
        }
        Ok(out) => {
            println!(
                "dashboard first load: failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("dashboard first load: cannot run node: {e}");
            return;
        }
    };
    let samples = |key: &str| -> Vec<f64> {
        figures
            .as_ref()
            .and_then(|f| f[key].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect()
    };
    let (live, tasks) = (samples("live_ms"), samples("tasks_ms"));
    if live.is_empty() || tasks.is_empty() {
        println!("dashboard first load: no figures from bench/first-load.js");
        return;
    }
    let (live_count, tasks_count) = (live.len(), tasks.len());
    let (live_p50, _, live_max) = percentiles(live);
    let (tasks_p50, _, tasks_max) = percentiles(tasks);
    println!(
        "dashboard first load in Chromium (cold context, {live_count} loads): stream live p50 {live_p50:.0} ms (max {live_max:.0} ms); task list shown p50 {tasks_p50:.0} ms (max {tasks_max:.0} ms, {tasks_count} loads)"
    );
}

/// `clients` keep-alive clients each making `requests` GETs of `path`;
/// returns every latency in ms and the wall time in s.
async fn load(
    base: &str,
    token: &str,
    path: &str,
    clients: usize,
    requests: usize,
) -> (Vec<f64>, f64) {
    let url = Arc::new(format!("{base}{path}"));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..clients {
        let url = url.clone();
        let auth = format!("Bearer {token}");
        handles.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut samples = Vec::with_capacity(requests);
            for _ in 0..requests {
                let t = Instant::now();
                let response = client
                    .get(url.as_str())
                    .header("authorization", &auth)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                let _ = response.bytes().await.unwrap();
                samples.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    (all, started.elapsed().as_secs_f64())
}
