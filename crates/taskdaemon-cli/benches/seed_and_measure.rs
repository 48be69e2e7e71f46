//! Benchmark helpers for issue 2, driven by `bench/run.sh`.
//!
//! A `harness = false` bench target so that it builds with the release
//! profile and may use the store directly. Subcommands:
//!
//! - `seed --db PATH --count N`: writes N ended process records (and their
//!   events) through the real [`Store`] API, the way shims write them.
//! - `timeit --runs N --warmup W [--ok-codes 0,3] [--stdin FILE] -- CMD ARGS...`: runs a
//!   command N times (stdin from FILE or /dev/null, stdout and stderr to /dev/null, no
//!   shell) and prints
//!   `median p95 mean min` in milliseconds on one line.
//! - `exit-latency --exe BIN --workspace DIR --runs N --sleep-ms MS`: spawns
//!   commands that stamp their own exit time, and measures how long until the
//!   store shows them ended and until `taskdaemon wait` returns.
//! - `pueue-exit --pueue BIN --runs N --sleep-ms MS`: the same for pueue,
//!   from the `end` time its daemon records and from `pueue status --json`.
//! - `mem PID...`: prints `rss_kb pss_kb private_kb count anon_kb` summed over
//!   the pids (`private` counts file pages only this process maps, `anon` does not).
//!
//! Without a subcommand (as plain `cargo bench` runs it) it seeds a temporary
//! store and times the store queries behind `status` and `rehydrate`
//! in-process.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use taskdaemon_core::process::{ExitOutcome, ProcessIdentity, RestartMode, RestartPolicy};
use taskdaemon_core::{EventKind, NewProcess};
use taskdaemon_store::{ProcessFilter, SqliteStore, Started, Store};

mod support;

use support::{Result, number, options, required};

fn main() -> ExitCode {
    // `cargo bench` appends `--bench`; it means nothing here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("seed") => seed_cmd(&args[1..]),
        Some("timeit") => timeit_cmd(&args[1..]),
        Some("exit-latency") => exit_latency_cmd(&args[1..]),
        Some("mem") => mem_cmd(&args[1..]),
        Some("pueue-exit") => pueue_exit_cmd(&args[1..]),
        None => in_process(),
        Some(other) => Err(format!(
            "unknown subcommand '{other}' (expected seed, timeit, exit-latency, pueue-exit or mem)"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("seed_and_measure: {message}");
            ExitCode::FAILURE
        }
    }
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

// ---------------------------------------------------------------- seed

fn seed_cmd(args: &[String]) -> Result<()> {
    let (opts, _) = options(args)?;
    let db = PathBuf::from(required(&opts, "db")?);
    let count = number(&opts, "count", 10_000)?;
    let started = Instant::now();
    let store = SqliteStore::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
    seed(&store, count)?;
    eprintln!(
        "seeded {count} ended processes into {} in {:.1}s",
        db.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes `count` ended processes the way a shim does: created, started, then
/// an exit (mostly success, some failures, signals, cancellations and losses).
fn seed(store: &SqliteStore, count: u64) -> Result<()> {
    let err = |e: taskdaemon_store::StoreError| e.to_string();
    // Spawned tasks store the caller's whole environment; keep the rows as big.
    let env: Vec<(String, String)> = std::env::vars().collect();
    let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "00000000-0000-0000-0000-000000000000".to_owned());
    let tools = [Some("claude"), Some("codex"), None, Some("aider")];
    for n in 0..count {
        let tool = tools[(n % tools.len() as u64) as usize];
        let argv: Vec<String> = match n % 5 {
            0 => vec!["cargo".into(), "test".into(), "--workspace".into()],
            1 => vec!["npm".into(), "run".into(), "dev".into()],
            2 => vec!["sh".into(), "-c".into(), format!("make -j4 target-{n}")],
            3 => vec!["pytest".into(), "-x".into(), format!("tests/test_{n}.py")],
            _ => vec!["sleep".into(), (n % 60).to_string()],
        };
        let spec = NewProcess {
            tool: tool.map(str::to_owned),
            name: (n % 3 == 0).then(|| format!("job-{n}")),
            session: Some(format!("session-{}", n / 100)),
            argv,
            cwd: "/work/project".to_owned(),
            env: env.clone(),
            restart: RestartPolicy {
                mode: RestartMode::Never,
                max_restarts: 0,
                initial_backoff: Duration::from_secs(1),
            },
            hang_timeout_ms: None,
            limits: Default::default(),
            container: None,
        };
        let task = store.create_process(&spec, "daemon").map_err(err)?;
        let pid = 100_000 + (n % 200_000) as i32;
        if n % 97 == 0 {
            store
                .record_start_failure(&task.id, "cannot start: No such file or directory", "shim")
                .map_err(err)?;
            continue;
        }
        let identity = |pid: i32| ProcessIdentity {
            boot_id: boot_id.clone(),
            pid,
            start_time: 1_000 + n,
        };
        let started = Started {
            process: identity(pid),
            pgid: pid,
            shim: identity(pid - 1),
        };
        store
            .mark_started(&task.id, 0, &started, "shim")
            .map_err(err)?;
        if n % 89 == 0 {
            store
                .mark_lost(
                    &task.id,
                    "process vanished with no recorded exit status",
                    "daemon",
                )
                .map_err(err)?;
            continue;
        }
        if n % 13 == 0 {
            store.request_stop(&task.id, "daemon").map_err(err)?;
        }
        let outcome = match n % 13 {
            0 => ExitOutcome::signalled(15),
            7 => ExitOutcome::exited(1),
            11 => ExitOutcome::exited(101),
            _ => ExitOutcome::exited(0),
        };
        store
            .record_exit(&task.id, pid, outcome, None, "shim")
            .map_err(err)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- timeit

/// Median, p95, mean and min of some durations in milliseconds.
struct Summary {
    median: f64,
    p95: f64,
    mean: f64,
    min: f64,
}

fn summarize(values: &mut [f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        // Nearest rank.
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        values[rank - 1]
    };
    Some(Summary {
        median: if values.len() % 2 == 1 {
            values[values.len() / 2]
        } else {
            (values[values.len() / 2 - 1] + values[values.len() / 2]) / 2.0
        },
        p95: pick(0.95),
        mean: values.iter().sum::<f64>() / values.len() as f64,
        min: values[0],
    })
}

fn timeit_cmd(args: &[String]) -> Result<()> {
    let (opts, command) = options(args)?;
    let runs = number(&opts, "runs", 200)?;
    let warmup = number(&opts, "warmup", 5)?;
    // Exit codes that count as success (`supervisorctl status` says 3 when a
    // program is stopped).
    let ok_codes: Vec<i32> = opts
        .get("ok-codes")
        .map_or("0", String::as_str)
        .split(',')
        .map(|c| c.trim().parse().map_err(|e| format!("--ok-codes {c}: {e}")))
        .collect::<Result<_>>()?;
    let (program, rest) = command
        .split_first()
        .ok_or("timeit needs a command after --")?;
    let stdin_file = opts.get("stdin").cloned();
    let run_once = || -> Result<f64> {
        let stdin = match &stdin_file {
            Some(path) => {
                Stdio::from(fs::File::open(path).map_err(|e| format!("--stdin {path}: {e}"))?)
            }
            None => Stdio::null(),
        };
        let start = Instant::now();
        let status = Command::new(program)
            .args(rest)
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let elapsed = start.elapsed().as_secs_f64() * 1000.0;
        if !status.status.code().is_some_and(|c| ok_codes.contains(&c)) {
            return Err(format!(
                "`{}` failed ({}): {}",
                command.join(" "),
                status.status,
                String::from_utf8_lossy(&status.stderr).trim()
            ));
        }
        Ok(elapsed)
    };
    for _ in 0..warmup {
        run_once()?;
    }
    let mut times = Vec::with_capacity(runs as usize);
    for _ in 0..runs {
        times.push(run_once()?);
    }
    let s = summarize(&mut times).ok_or("--runs must be at least 1")?;
    println!("{:.2} {:.2} {:.2} {:.2}", s.median, s.p95, s.mean, s.min);
    Ok(())
}

// ---------------------------------------------------------------- exit latency

/// One measured exit, all in milliseconds after the command stamped its exit.
struct ExitSample {
    /// `finished_at` as recorded (millisecond resolution, taken before commit).
    recorded: f64,
    /// First time a reader polling the store every 0.5 ms saw it ended.
    visible: f64,
    /// When `taskdaemon wait ID` returned.
    wait: f64,
}

fn exit_latency_cmd(args: &[String]) -> Result<()> {
    let (opts, _) = options(args)?;
    let exe = PathBuf::from(required(&opts, "exe")?);
    let workspace = PathBuf::from(required(&opts, "workspace")?);
    let runs = number(&opts, "runs", 20)?;
    let sleep_ms = number(&opts, "sleep-ms", 300)?;
    let marker_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = SqliteStore::open(&workspace.join(".taskdaemon/state.db"))
        .map_err(|e| format!("cannot open the store: {e}"))?;
    let mut samples = Vec::new();
    for run in 0..runs {
        let marker = marker_dir.path().join(format!("exit-{run}"));
        samples.push(exit_once(&exe, &workspace, &store, &marker, sleep_ms)?);
    }
    let column = |f: fn(&ExitSample) -> f64| {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        summarize(&mut v)
    };
    for (name, summary) in [
        ("recorded", column(|s| s.recorded)),
        ("visible", column(|s| s.visible)),
        ("wait", column(|s| s.wait)),
    ] {
        if let Some(s) = summary {
            println!(
                "{name} {:.2} {:.2} {:.2} {:.2}",
                s.median, s.p95, s.mean, s.min
            );
        }
    }
    Ok(())
}

fn exit_once(
    exe: &Path,
    workspace: &Path,
    store: &SqliteStore,
    marker: &Path,
    sleep_ms: u64,
) -> Result<ExitSample> {
    // `exec date`: the supervised process itself stamps the time and exits.
    let script = format!(
        "sleep {}; exec date +%s%N > '{}'",
        sleep_ms as f64 / 1000.0,
        marker.display()
    );
    let spawned = Command::new(exe)
        .arg("--workspace")
        .arg(workspace)
        .args(["spawn", "--tool", "bench", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("spawn: {e}"))?;
    if !spawned.status.success() {
        return Err(format!("spawn failed: {}", spawned.status));
    }
    let id = String::from_utf8_lossy(&spawned.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();

    let waited: Arc<Mutex<Option<i128>>> = Arc::default();
    let wait_thread = {
        let (exe, workspace, id, waited) = (
            exe.to_owned(),
            workspace.to_owned(),
            id.clone(),
            waited.clone(),
        );
        thread::spawn(move || {
            let status = Command::new(&exe)
                .arg("--workspace")
                .arg(&workspace)
                .args(["wait", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let at = now_nanos();
            if status.is_ok() {
                *waited.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(30);
    let visible_at = loop {
        let task = store.task(&id).map_err(|e| e.to_string())?;
        if task.status.is_terminal() {
            break now_nanos();
        }
        if Instant::now() > deadline {
            return Err(format!("{id} did not end within 30s"));
        }
        thread::sleep(Duration::from_micros(500));
    };
    wait_thread
        .join()
        .map_err(|_| "wait thread panicked".to_owned())?;
    let waited_at = waited
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .ok_or("taskdaemon wait failed")?;
    let exited_at: i128 = fs::read_to_string(marker)
        .map_err(|e| format!("{}: {e}", marker.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("marker: {e}"))?;
    let task = store.task(&id).map_err(|e| e.to_string())?;
    let finished_ms = task.finished_at.ok_or("no finished_at recorded")?;
    let ms = |at: i128| (at - exited_at) as f64 / 1e6;
    Ok(ExitSample {
        recorded: ms(i128::from(finished_ms) * 1_000_000),
        visible: ms(visible_at),
        wait: ms(waited_at),
    })
}

// ---------------------------------------------------------------- pueue

fn pueue_exit_cmd(args: &[String]) -> Result<()> {
    let (opts, _) = options(args)?;
    let pueue = opts.get("pueue").map_or("pueue", String::as_str);
    let runs = number(&opts, "runs", 20)?;
    let sleep_ms = number(&opts, "sleep-ms", 300)?;
    let marker_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (mut recorded, mut visible) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let marker = marker_dir.path().join(format!("pueue-exit-{run}"));
        let script = format!(
            "sleep {}; exec date +%s%N > '{}'",
            sleep_ms as f64 / 1000.0,
            marker.display()
        );
        let added = Command::new(pueue)
            .args(["add", "--print-task-id", "--", &script])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{pueue} add: {e}"))?;
        if !added.status.success() {
            return Err(format!(
                "pueue add failed: {}",
                String::from_utf8_lossy(&added.stderr).trim()
            ));
        }
        let id = String::from_utf8_lossy(&added.stdout).trim().to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        let (visible_at, end) = loop {
            let status = Command::new(pueue)
                .args(["status", "--json"])
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("{pueue} status: {e}"))?;
            let seen = now_nanos();
            let json: serde_json::Value = serde_json::from_slice(&status.stdout)
                .map_err(|e| format!("pueue status --json: {e}"))?;
            if let Some(end) = pueue_end(&json["tasks"][&id]) {
                break (seen, end);
            }
            if Instant::now() > deadline {
                return Err(format!("pueue task {id} did not end within 30s"));
            }
            thread::sleep(Duration::from_millis(1));
        };
        let exited_at: i128 = fs::read_to_string(&marker)
            .map_err(|e| format!("{}: {e}", marker.display()))?
            .trim()
            .parse()
            .map_err(|e| format!("marker: {e}"))?;
        recorded.push((end - exited_at) as f64 / 1e6);
        visible.push((visible_at - exited_at) as f64 / 1e6);
    }
    for (name, values) in [("recorded", &mut recorded), ("visible", &mut visible)] {
        if let Some(s) = summarize(values) {
            println!(
                "{name} {:.2} {:.2} {:.2} {:.2}",
                s.median, s.p95, s.mean, s.min
            );
        }
    }
    Ok(())
}

/// The end time (ns since the epoch) of a finished pueue task: pueue 4 keeps
/// it in `status.Done.end`, pueue 3 in the task's own `end`.
fn pueue_end(task: &serde_json::Value) -> Option<i128> {
    let done = task.get("status")?.get("Done")?;
    let end = done.get("end").or_else(|| task.get("end"))?.as_str()?;
    let at = chrono::DateTime::parse_from_rfc3339(end).ok()?;
    at.timestamp_nanos_opt().map(i128::from)
}

// ---------------------------------------------------------------- memory

/// `(rss, pss, private, anonymous)` in kB of one process, from `/proc/PID/smaps_rollup`.
fn memory_of(pid: &str) -> Option<(u64, u64, u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some((
        field("Rss:"),
        field("Pss:"),
        field("Private_Clean:") + field("Private_Dirty:"),
        field("Anonymous:"),
    ))
}

fn mem_cmd(pids: &[String]) -> Result<()> {
    let (mut rss, mut pss, mut private, mut anon, mut count) = (0, 0, 0, 0, 0);
    for pid in pids {
        if let Some((r, p, v, a)) = memory_of(pid) {
            rss += r;
            pss += p;
            private += v;
            anon += a;
            count += 1;
        }
    }
    println!("{rss} {pss} {private} {count} {anon}");
    Ok(())
}

// ---------------------------------------------------------------- in-process

fn in_process() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = dir.path().join("state.db");
    let count = 10_000;
    eprintln!("seeding {count} processes into a temporary store (10-20 s)...");
    let store = SqliteStore::open(&db).map_err(|e| e.to_string())?;
    let started = Instant::now();
    seed(&store, count)?;
    println!(
        "seed: {count} ended processes in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let time = |name: &str, f: &dyn Fn() -> Result<()>| -> Result<()> {
        let mut times = Vec::new();
        for _ in 0..200 {
            let start = Instant::now();
            f()?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let s = summarize(&mut times).ok_or("no runs")?;
        println!(
            "{name:<40} median {:>7.3} ms  p95 {:>7.3} ms",
            s.median, s.p95
        );
        Ok(())
    };
    let err = |e: taskdaemon_store::StoreError| e.to_string();
    time("open store", &|| {
        SqliteStore::open(&db).map(drop).map_err(err)
    })?;
    time("status_counts", &|| {
        store.status_counts().map(drop).map_err(err)
    })?;
    time("processes (live)", &|| {
        store
            .processes(&ProcessFilter::default())
            .map(drop)
            .map_err(err)
    })?;
    time("processes (all, newest 70: registry)", &|| {
        store
            .processes(&ProcessFilter {
                all: true,
                tool: None,
                limit: Some(70),
            })
            .map(drop)
            .map_err(err)
    })?;
    let ids: Vec<String> = store
        .processes(&ProcessFilter {
            all: true,
            tool: None,
            limit: Some(500),
        })
        .map_err(err)?
        .into_iter()
        .map(|t| t.id)
        .collect();
    time("task() x 500 (rehydrate's lookups)", &|| {
        ids.iter()
            .try_for_each(|id| store.task(id).map(drop))
            .map_err(err)
    })?;
    time("events_after(0, ended, 500)", &|| {
        store
            .events_after(
                0,
                &[EventKind::Exited, EventKind::Lost, EventKind::StartFailed],
                500,
            )
            .map(drop)
            .map_err(err)
    })?;
    Ok(())
}
