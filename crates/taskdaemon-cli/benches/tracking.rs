//! Benchmark helpers for tracked work (issue 3), driven by `bench/tracking.sh`.
//!
//! A `harness = false` bench target, so it builds with the release profile and
//! may use the store directly. Subcommands:
//!
//! - `seed --db PATH --tasks N --events M [--taskwarrior DIR]`: fills a store
//!   with N tracked tasks (dependencies, labels, priorities, most of them done)
//!   and M events in all, plus memory, in one bulk transaction through SQLite
//!   (the search triggers index every row as in normal use). With
//!   `--taskwarrior`, writes the same tasks as Taskwarrior 2.x data files.
//! - `inproc --db PATH --workspace DIR [--runs N]`: times, in this process,
//!   `ready`, `search`, the snapshot write and durable transitions
//!   (create/start/done on the seeded store), printing p50/p99.
//! - `rss --runs N -- CMD ARGS...`: runs a command N times and prints its
//!   peak resident set (max over runs, from `wait4`) in KiB.
//!
//! Without a subcommand (as plain `cargo bench` runs it) it seeds a small
//! temporary store and runs `inproc` on it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use taskdaemon_core::{NewTracked, TrackedAction};
use taskdaemon_store::{SqliteStore, Store};
use taskdaemon_workspace::Workspace;

mod support;

use support::{Result, number, options, required};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("seed") => seed_cmd(&args[1..]),
        Some("inproc") => inproc_cmd(&args[1..]),
        Some("rss") => rss_cmd(&args[1..]),
        None => small_run(),
        Some(other) => Err(format!(
            "unknown subcommand '{other}' (expected seed, inproc or rss)"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tracking bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A small deterministic generator: the same data on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A vocabulary of made-up words. Word 0 (`build`) is common on purpose; the
/// rest follow a skewed distribution, so some are frequent and most are rare.
fn vocabulary() -> Vec<String> {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "qua", "sor", "dan", "fel", "gim",
        "hux", "jor",
    ];
    let mut words = vec!["build".to_owned()];
    for a in SYLLABLES {
        for b in SYLLABLES {
            for c in SYLLABLES {
                words.push(format!("{a}{b}{c}"));
            }
        }
    }
    words
}

fn phrase(rng: &mut Rng, words: &[String], len: usize) -> String {
    (0..len)
        .map(|_| {
            // Squaring skews the choice towards the start of the list.
            let r = rng.below(1 << 16) as f64 / 65536.0;
            let index = ((r * r) * words.len() as f64) as usize;
            if rng.below(10) == 0 {
                words[0].as_str()
            } else {
                words[index.min(words.len() - 1)].as_str()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------- seed

fn seed_cmd(args: &[String]) -> Result<()> {
    let (opts, _) = options(args)?;
    let db = PathBuf::from(required(&opts, "db")?);
    let tasks = number(&opts, "tasks", 100_000)?;
    let events = number(&opts, "events", 1_000_000)?;
    let taskwarrior = opts.get("taskwarrior").map(PathBuf::from);
    let started = Instant::now();
    seed(&db, tasks, events, taskwarrior.as_deref())?;
    eprintln!(
        "seeded {tasks} tasks and {events} events into {} in {:.1}s",
        db.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Task `n`'s status: most work is done, some failed, some open.
fn status_of(n: u64, total: u64) -> &'static str {
    let open_from = total - total / 10;
    match n {
        n if n >= open_from && n % 3 == 0 => "blocked",
        n if n >= open_from => "pending",
        n if n % 20 == 0 => "failed",
        n if n % 50 == 1 => "running",
        _ => "succeeded",
    }
}

fn seed(db: &Path, tasks: u64, events: u64, taskwarrior: Option<&Path>) -> Result<()> {
    // Open through the store first: it creates the schema and its triggers.
    drop(SqliteStore::open(db).map_err(|e| e.to_string())?);
    let mut conn = Connection::open(db).map_err(|e| e.to_string())?;
    conn.execute_batch("PRAGMA synchronous=OFF;")
        .map_err(|e| e.to_string())?;
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let words = vocabulary();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let base: i64 = taskdaemon_core::time::now_millis() - 90 * 86_400_000;
    let restart = serde_json::to_string(&taskdaemon_core::RestartPolicy::default())
        .map_err(|e| e.to_string())?;
    let mut tw_pending = String::new();
    let mut tw_completed = String::new();
    {
        let sql = |e: rusqlite::Error| e.to_string();
        let mut task_stmt = tx
            .prepare(
                "INSERT INTO tasks (uuid, id, kind, name, status, argv, env, restart, description,
                   priority, created_at, started_at, finished_at, updated_at)
                 VALUES (?1, ?2, 'manual', ?3, ?4, '[]', '[]', ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )
            .map_err(sql)?;
        let mut dep_stmt = tx
            .prepare("INSERT OR IGNORE INTO task_deps (task_id, depends_on) VALUES (?1, ?2)")
            .map_err(sql)?;
        let mut label_stmt = tx
            .prepare("INSERT OR IGNORE INTO task_labels (task_id, label) VALUES (?1, ?2)")
            .map_err(sql)?;
        let mut event_stmt = tx
            .prepare(
                "INSERT INTO events (at, task_id, actor, kind, message) VALUES (?1, ?2, 'cli', ?3, ?4)",
            )
            .map_err(sql)?;
        let span = 90 * 86_400_000 / tasks.max(1) as i64;
        let events_per_task = events / tasks.max(1);
        let mut written_events = 0u64;
        for n in 1..=tasks {
            let id = format!("TASK-{n}");
            let status = status_of(n, tasks);
            let title_len = 3 + rng.below(5) as usize;
            let title = phrase(&mut rng, &words, title_len);
            let description_len = 8 + rng.below(12) as usize;
            let description = phrase(&mut rng, &words, description_len);
            let created = base + n as i64 * span;
            let started = (status != "pending" && status != "blocked").then_some(created + 1000);
            let finished = matches!(status, "succeeded" | "failed").then_some(created + 60_000);
            let priority = rng.below(31) as i64 - 10;
            task_stmt
                .execute(params![
                    uuid::Uuid::now_v7().to_string(),
                    id,
                    title,
                    status,
                    restart,
                    description,
                    priority,
                    created,
                    started,
                    finished.unwrap_or(created),
                ])
                .map_err(sql)?;
            if status == "blocked" {
                let dep = n - 1 - rng.below(n.min(1000) - 1).min(n - 2);
                dep_stmt
                    .execute(params![id, format!("TASK-{}", dep.max(1))])
                    .map_err(sql)?;
            } else if n > 1 && rng.below(4) == 0 {
                // A dependency that is already satisfied.
                let dep = 1 + rng.below((n - 1).min(tasks - tasks / 10));
                if status_of(dep, tasks) == "succeeded" {
                    dep_stmt
                        .execute(params![id, format!("TASK-{dep}")])
                        .map_err(sql)?;
                }
            }
            if rng.below(3) == 0 {
                label_stmt
                    .execute(params![id, format!("area-{}", rng.below(20))])
                    .map_err(sql)?;
            }
            let budget = if n == tasks {
                events - written_events
            } else {
                events_per_task
            };
            for e in 0..budget {
                let (kind, message) = match e {
                    0 => ("created", title.clone()),
                    1 if started.is_some() => ("started", "started".to_owned()),
                    2 if finished.is_some() => (
                        "finished",
                        format!("{status}: {}", phrase(&mut rng, &words, 4)),
                    ),
                    _ => (
                        "context_updated",
                        format!("files: src/{}.rs", phrase(&mut rng, &words, 1)),
                    ),
                };
                event_stmt
                    .execute(params![created + e as i64, id, kind, message])
                    .map_err(sql)?;
                written_events += 1;
            }
            if taskwarrior.is_some() {
                let tw = taskwarrior_line(&id, &title, status, created, priority);
                if matches!(status, "pending" | "blocked" | "running") {
                    tw_pending.push_str(&tw);
                } else {
                    tw_completed.push_str(&tw);
                }
            }
        }
        let mut memory_stmt = tx
            .prepare(
                "INSERT INTO memory (kind, text, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            )
            .map_err(sql)?;
        for m in 0..(tasks / 20) {
            let kind = ["decision", "pattern", "note", "fact"][(m % 4) as usize];
            memory_stmt
                .execute(params![kind, phrase(&mut rng, &words, 12), base + m as i64])
                .map_err(sql)?;
        }
        tx.execute(
            "INSERT INTO counters (name, value) VALUES ('task_id', ?1)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [tasks as i64],
        )
        .map_err(sql)?;
    }
    tx.commit().map_err(|e| e.to_string())?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
        .map_err(|e| e.to_string())?;
    if let Some(dir) = taskwarrior {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        fs::write(dir.join("pending.data"), tw_pending).map_err(|e| e.to_string())?;
        fs::write(dir.join("completed.data"), tw_completed).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One task in Taskwarrior 2.x's data file format (FF4).
fn taskwarrior_line(id: &str, title: &str, status: &str, created: i64, priority: i64) -> String {
    let tw_status = match status {
        "succeeded" => "completed",
        "failed" => "deleted",
        _ => "pending",
    };
    let uuid = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.as_bytes());
    let priority = match priority {
        p if p >= 10 => " priority:\"H\"",
        p if p <= -5 => " priority:\"L\"",
        _ => "",
    };
    let end = if tw_status == "pending" {
        String::new()
    } else {
        format!(" end:\"{}\"", created / 1000 + 60)
    };
    format!(
        "[description:\"{title}\" entry:\"{}\"{end}{priority} status:\"{tw_status}\" uuid:\"{uuid}\"]\n",
        created / 1000
    )
}

// ---------------------------------------------------------------- inproc

/// Percentiles of a set of durations, in milliseconds.
fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    format!(
        "p50 {:.3} ms  p99 {:.3} ms  (n={})",
        at(0.5),
        at(0.99),
        samples.len()
    )
}

fn time_n(runs: u64, mut f: impl FnMut() -> Result<()>) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(runs as usize);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
    }
    Ok(samples)
}

fn inproc_cmd(args: &[String]) -> Result<()> {
    let (opts, _) = options(args)?;
    let db = PathBuf::from(required(&opts, "db")?);
    let workspace =
        Workspace::open(Path::new(required(&opts, "workspace")?)).map_err(|e| e.to_string())?;
    let runs = number(&opts, "runs", 200)?;
    inproc(&db, &workspace, runs)
}

fn inproc(db: &Path, workspace: &Workspace, runs: u64) -> Result<()> {
    let store = SqliteStore::open(db).map_err(|e| e.to_string())?;
    let e = |e: taskdaemon_store::StoreError| e.to_string();
    let ready = time_n(runs, || store.ready(20).map(drop).map_err(e))?;
    println!("store ready(20)             {}", summary(ready));
    let words = vocabulary();
    let rare = &words[words.len() - 7];
    let search_rare = time_n(runs, || store.search(rare, 20).map(drop).map_err(e))?;
    println!("store search (rare word)    {}", summary(search_rare));
    let search_two = time_n(runs, || {
        store
            .search(&format!("{} {}", words[3], words[40]), 20)
            .map(drop)
            .map_err(e)
    })?;
    println!("store search (two words)    {}", summary(search_two));
    let search_common = time_n(runs.min(50), || {
        store.search("build", 20).map(drop).map_err(e)
    })?;
    println!("store search (common word)  {}", summary(search_common));
    let build = time_n(runs, || {
        taskdaemon_daemon::snapshot::build(workspace, &store, None)
            .map(drop)
            .map_err(e)
    })?;
    println!("snapshot build (queries)    {}", summary(build));
    let snapshot = time_n(runs.min(100), || {
        taskdaemon_daemon::snapshot::write(workspace, &Default::default(), &store, None)
            .map(drop)
            .map_err(|e| e.to_string())
    })?;
    println!("snapshot write (projection) {}", summary(snapshot));

    // Durable transitions: each is one committed, fsynced transaction.
    let cycles = runs.min(300);
    let mut writes = Vec::with_capacity(cycles as usize * 3);
    let started = Instant::now();
    for n in 0..cycles {
        let t = Instant::now();
        let task = store
            .create_tracked(
                &NewTracked {
                    title: format!("bench transition {n}"),
                    ..NewTracked::default()
                },
                "bench",
            )
            .map_err(e)?;
        writes.push(t.elapsed());
        let t = Instant::now();
        store
            .act_on_tracked(&task.id, &TrackedAction::Start, "bench")
            .map_err(e)?;
        writes.push(t.elapsed());
        let t = Instant::now();
        store
            .act_on_tracked(&task.id, &TrackedAction::Done { note: None }, "bench")
            .map_err(e)?;
        writes.push(t.elapsed());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count = writes.len();
    println!("durable state write         {}", summary(writes));
    println!(
        "fsync floor on this disk    {}",
        summary(fsync_floor(workspace, cycles)?)
    );
    println!(
        "transitions per second      {:.0} ({count} writes in {elapsed:.2}s, one writer, fsync each)",
        count as f64 / elapsed
    );
    Ok(())
}

/// What one fsync of a small append costs here: no durable write can be faster.
fn fsync_floor(workspace: &Workspace, runs: u64) -> Result<Vec<Duration>> {
    let path = workspace.state_dir().join("fsync-probe");
    let mut file = fs::File::create(&path).map_err(|e| e.to_string())?;
    let samples = time_n(runs, || {
        file.write_all(&[0u8; 128]).map_err(|e| e.to_string())?;
        file.sync_data().map_err(|e| e.to_string())
    });
    let _ = fs::remove_file(&path);
    samples
}

// ---------------------------------------------------------------- rss

fn rss_cmd(args: &[String]) -> Result<()> {
    let (opts, command) = options(args)?;
    let runs = number(&opts, "runs", 3)?;
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| "rss needs a command after --".to_owned())?;
    let mut peak = 0i64;
    for _ in 0..runs {
        let child = Command::new(program)
            .args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{program}: {e}"))?;
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child, with valid pointers to locals.
        let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
        if waited < 0 {
            return Err(format!("wait4: {}", std::io::Error::last_os_error()));
        }
        peak = peak.max(usage.ru_maxrss);
    }
    println!("{peak}");
    Ok(())
}

// ---------------------------------------------------------------- default

/// `cargo bench`: a small store, timed in process.
fn small_run() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("td-tracking-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (workspace, _) = Workspace::init(&dir).map_err(|e| e.to_string())?;
    let db = workspace.db_path();
    seed(&db, 10_000, 100_000, None)?;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "10,000 tasks, 100,000 events (bench/tracking.sh runs the full size):"
    );
    let result = inproc(&db, &workspace, 100);
    let _ = fs::remove_dir_all(&dir);
    result
}
