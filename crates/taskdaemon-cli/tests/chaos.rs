//! Chaos: the daemon is SIGKILLed a hundred times at random moments while a
//! driver spawns processes, drops queue documents, adds and closes tracked
//! tasks and submits work. Afterwards nothing acknowledged is missing, no
//! document is lost or run twice, nothing is orphaned, every exit code is
//! recorded and `repair` finds nothing.
//!
//! The moments and the driver's choices come from a seeded generator; the
//! seed is printed, and `TD_CHAOS_SEED=N` replays the same choices (the
//! interleaving with the daemon still varies from run to run).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Run, Ws, alive, group_members, sigkill};
use rustix::process::Signal;
use serde_json::Value;

const ROUNDS: usize = 100;
/// Drivers changing the workspace side by side.
const DRIVERS: usize = 2;
const ADHOC: &str = "tasks/ad-hoc";
/// The submitted work's queue (run by a `worker` at the end).
const SUBMIT_QUEUE: &str = "chaos";
/// How long everything may take to settle after the last kill.
const SETTLE: Duration = Duration::from_secs(120);

/// splitmix64: small, seedable, good enough to pick moments and actions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    match std::env::var("TD_CHAOS_SEED") {
        Ok(text) => text.parse().expect("TD_CHAOS_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(17),
    }
}

/// What the driver saw acknowledged (a CLI call that exited 0, or a
/// document renamed into `pending/`).
#[derive(Default, Debug)]
struct Acked {
    /// Spawned process id -> the exit code its command ends with.
    spawned: BTreeMap<String, i32>,
    /// Tracked task id -> its title.
    tracked: BTreeMap<String, String>,
    /// Tracked tasks whose `task start` was acknowledged.
    started: HashSet<String>,
    /// Tracked tasks whose `task done` was acknowledged.
    done: HashSet<String>,
    /// Ledger tokens of the documents dropped.
    documents: Vec<String>,
    /// Submitted task ids (their ledger token is the id).
    submitted: Vec<String>,
    /// Calls that failed while the daemon was being killed.
    failed_calls: usize,
}

impl Acked {
    fn absorb(&mut self, other: Acked) {
        self.spawned.extend(other.spawned);
        self.tracked.extend(other.tracked);
        self.started.extend(other.started);
        self.done.extend(other.done);
        self.documents.extend(other.documents);
        self.submitted.extend(other.submitted);
        self.failed_calls += other.failed_calls;
    }
}

/// A driver: keeps changing the workspace until `stop`, recording what
/// was acknowledged.
fn drive(ws: &Ws, driver: usize, mut rng: Rng, stop: &AtomicBool) -> Acked {
    let ledger = ws.root().join("ledger");
    let ledger = ledger.display();
    let mut acked = Acked::default();
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        match rng.below(100) {
            0..=29 => {
                // Some end at once, some outlive a daemon or two.
                let code = rng.below(4) as i32;
                let script = format!("sleep 0.{}; exit {code}", rng.below(10));
                let run = ws.run(&["spawn", "--", "sh", "-c", &script]);
                if note(&mut acked, &run) {
                    acked.spawned.insert(run.last_line(), code);
                }
            }
            30..=54 => {
                let token = format!("doc-{driver}-{n:05}");
                // The ledger line is the run's last act: a line is a run
                // to completion.
                let pause = rng.below(4);
                let text = format!(
                    "---\nexecutor: command\ncommand: sleep 0.{pause}; echo {token} >> {ledger}\n---\n"
                );
                ws.drop_document(ADHOC, &format!("task-{driver}-{n:05}.md"), &text);
                acked.documents.push(token);
            }
            55..=74 => {
                let title = format!("chaos item {driver}-{n}");
                let run = ws.run(&["task", "add", &title]);
                if note(&mut acked, &run) {
                    acked.tracked.insert(run.last_line(), title);
                }
            }
            75..=84 => {
                let open: Vec<String> = acked
                    .tracked
                    .keys()
                    .filter(|id| !acked.done.contains(*id))
                    .cloned()
                    .collect();
                if open.is_empty() {
                    continue;
                }
                let id = open[rng.below(open.len() as u64) as usize].clone();
                if !acked.started.contains(&id) {
                    if note(&mut acked, &ws.run(&["task", "start", &id])) {
                        acked.started.insert(id);
                    }
                } else if note(&mut acked, &ws.run(&["task", "done", &id])) {
                    acked.done.insert(id);
                }
            }
            _ => {
                let id = format!("sub-{driver}-{n:05}");
                let command = format!("echo {id} >> {ledger}");
                let run = ws.run(&[
                    "submit",
                    "--command",
                    &command,
                    "--queue",
                    SUBMIT_QUEUE,
                    "--id",
                    &id,
                ]);
                if note(&mut acked, &run) {
                    acked.submitted.push(id);
                }
            }
        }
        thread::sleep(Duration::from_millis(rng.below(40)));
    }
    acked
}

/// Whether the call was acknowledged; a failure must be a clean one (an
/// error message, an exit code), never a panic.
fn note(acked: &mut Acked, run: &Run) -> bool {
    assert!(
        !run.stderr.contains("panicked"),
        "a command panicked: {run:#?}"
    );
    if run.success() {
        return true;
    }
    assert!(run.code.is_some(), "a command died of a signal: {run:#?}");
    acked.failed_calls += 1;
    false
}

/// SIGKILLs every daemon of the workspace and waits until they are gone.
fn kill_daemons(ws: &Ws) -> usize {
    let daemons = ws.daemon_processes();
    for &pid in &daemons {
        sigkill(pid);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemons.iter().any(|&pid| alive(pid)) {
        assert!(Instant::now() < deadline, "a SIGKILLed daemon lives on");
        thread::sleep(Duration::from_millis(5));
    }
    daemons.len()
}

/// One round: start the daemon (without waiting for it), kill it at a
/// random moment (during its start-up and recovery as often as later).
fn round(ws: &Ws, rng: &mut Rng) -> usize {
    let mut start = ws.command(&["start"]);
    start.stdout(Stdio::null()).stderr(Stdio::null());
    let mut starter = start.spawn().expect("run start");
    thread::sleep(Duration::from_millis(rng.below(600)));
    let killed = kill_daemons(ws);
    let _ = starter.wait();
    killed
}

/// Counts the lines of the ledger.
fn ledger_counts(ws: &Ws) -> HashMap<String, usize> {
    let text = fs::read_to_string(ws.root().join("ledger")).unwrap_or_default();
    let mut counts = HashMap::new();
    for line in text.lines() {
        *counts.entry(line.trim().to_owned()).or_default() += 1;
    }
    counts
}

fn json_list(ws: &Ws, args: &[&str]) -> Vec<Value> {
    match ws.run(args).ok().json() {
        Value::Array(items) => items,
        other => panic!("{args:?} did not print an array: {other}"),
    }
}

/// Polls `check` for up to [`SETTLE`]; panics with its last complaint.
fn settle(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + SETTLE;
    loop {
        match check() {
            Ok(()) => return,
            Err(why) if Instant::now() > deadline => panic!("{what}: {why}"),
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn ended(status: &Value) -> bool {
    matches!(
        status.as_str(),
        Some("succeeded" | "failed" | "cancelled" | "lost")
    )
}

#[test]
fn a_hundred_sigkills_lose_nothing_acknowledged() {
    let seed = seed();
    eprintln!("chaos seed {seed} (replay the choices with TD_CHAOS_SEED={seed})");
    let began = Instant::now();
    let ws = Ws::new();
    let mut rng = Rng(seed);
    let driver_rngs: Vec<Rng> = (0..DRIVERS).map(|_| Rng(rng.next())).collect();
    let stop = AtomicBool::new(false);

    let (acked, kills) = thread::scope(|scope| {
        let drivers: Vec<_> = driver_rngs
            .into_iter()
            .enumerate()
            .map(|(d, driver_rng)| {
                let (ws, stop) = (&ws, &stop);
                scope.spawn(move || drive(ws, d, driver_rng, stop))
            })
            .collect();
        let mut kills = 0;
        for _ in 0..ROUNDS {
            kills += round(&ws, &mut rng);
        }
        stop.store(true, Ordering::SeqCst);
        let mut acked = Acked::default();
        for driver in drivers {
            acked.absorb(driver.join().expect("a driver panicked"));
        }
        // A driver's last call may have started a daemon: one last kill.
        kills += kill_daemons(&ws);
        (acked, kills)
    });
    eprintln!(
        "chaos: {ROUNDS} rounds, {kills} daemons killed, {} spawns, {} documents, {} tracked \
         ({} started, {} done), {} submitted acknowledged, {} calls failed, {:.1?}",
        acked.spawned.len(),
        acked.documents.len(),
        acked.tracked.len(),
        acked.started.len(),
        acked.done.len(),
        acked.submitted.len(),
        acked.failed_calls,
        began.elapsed()
    );
    assert!(kills >= ROUNDS / 2, "most rounds killed no daemon: {kills}");

    ws.run(&["start"]).ok();
    check_processes(&ws, &acked);
    check_documents(&ws, &acked);
    check_tracked(&ws, &acked);
    check_submitted(&ws, &acked);
    ws.run(&["stop"]).ok();
    check_no_orphans(&ws);
    check_repair(&ws);
    eprintln!("chaos: checked in {:.1?} in all", began.elapsed());
}

/// Every process task ends with its exit code; an acknowledged spawn with
/// the code its command exits with.
fn check_processes(ws: &Ws, acked: &Acked) {
    settle("every process task ends", || {
        let open: Vec<Value> = ws
            .ps_all()
            .into_iter()
            .filter(|t| !ended(&t["status"]))
            .collect();
        if open.is_empty() {
            Ok(())
        } else {
            Err(format!("{} still open: {open:#?}", open.len()))
        }
    });
    let all: HashMap<String, Value> = ws
        .ps_all()
        .into_iter()
        .map(|t| (t["id"].as_str().unwrap_or_default().to_owned(), t))
        .collect();
    for (id, code) in &acked.spawned {
        let task = all
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged spawn {id} is not in the store"));
        let want = if *code == 0 { "succeeded" } else { "failed" };
        assert_eq!(task["status"], want, "{task:#}\n{}", ws.diagnostics(id));
        assert_eq!(task["exit_code"], *code, "{task:#}");
    }
    for task in all.values() {
        assert!(
            task["exit_code"].is_i64(),
            "an exit code was not recorded: {task:#}\n{}",
            ws.diagnostics(task["id"].as_str().unwrap_or_default())
        );
    }
}

/// Every document ran once to completion (its ledger line), succeeded,
/// and its file moved to `completed/`.
fn check_documents(ws: &Ws, acked: &Acked) {
    let completed = ws.queue_dir(ADHOC).join("completed");
    settle("every document completes", || {
        let waiting: Vec<&String> = acked
            .documents
            .iter()
            .filter(|token| !completed.join(document_name(token)).exists())
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!("{} not in completed/: {waiting:?}", waiting.len()))
        }
    });
    let pending = ws.queue_dir(ADHOC).join("pending");
    let left = visible_entries(&pending);
    assert!(left.is_empty(), "left in pending/: {left:?}");
    let failed = visible_entries(&ws.queue_dir(ADHOC).join("failed"));
    assert!(failed.is_empty(), "documents failed: {failed:?}");
    let runs = ledger_counts(ws);
    for token in &acked.documents {
        assert_eq!(
            runs.get(token).copied().unwrap_or(0),
            1,
            "{token} did not run exactly once to completion"
        );
    }
    let tasks = json_list(
        ws,
        &[
            "tasks", "list", "--limit", "100000", "--queue", "ad-hoc", "--json",
        ],
    );
    let ids: Vec<&str> = tasks.iter().filter_map(|t| t["id"].as_str()).collect();
    for token in &acked.documents {
        let id = document_name(token).trim_end_matches(".md").to_owned();
        let task = tasks
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("{id} is not a queue task: {ids:?}"));
        assert_eq!(task["status"], "succeeded", "{task:#}");
    }
    assert_eq!(
        tasks.len(),
        acked.documents.len(),
        "a document became more than one task: {ids:?}"
    );
}

fn document_name(token: &str) -> String {
    format!("task-{}.md", token.trim_start_matches("doc-"))
}

fn visible_entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

fn check_tracked(ws: &Ws, acked: &Acked) {
    let tasks = json_list(ws, &["task", "list", "--limit", "100000", "--json"]);
    let by_id: HashMap<&str, &Value> = tasks
        .iter()
        .filter_map(|t| Some((t["id"].as_str()?, t)))
        .collect();
    for (id, title) in &acked.tracked {
        let task = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("acknowledged task {id} is missing"));
        assert_eq!(task["title"], title.as_str(), "{task:#}");
        let status = task["status"].as_str().unwrap_or_default();
        if acked.done.contains(id) {
            assert_eq!(status, "succeeded", "{task:#}");
        } else if acked.started.contains(id) {
            assert!(matches!(status, "running" | "succeeded"), "{task:#}");
        }
    }
}

/// Submitted work is all there; a worker then runs each of it once.
fn check_submitted(ws: &Ws, acked: &Acked) {
    let queued = json_list(
        ws,
        &[
            "tasks",
            "list",
            "--limit",
            "100000",
            "--queue",
            SUBMIT_QUEUE,
            "--json",
        ],
    );
    for id in &acked.submitted {
        assert!(
            queued.iter().any(|t| t["id"] == id.as_str()),
            "acknowledged submission {id} is missing"
        );
    }
    let mut worker = ws.command(&["worker", "--queue", SUBMIT_QUEUE]);
    worker.stdout(Stdio::null()).stderr(Stdio::null());
    let mut worker = worker.spawn().expect("start a worker");
    settle("the worker runs every submission", || {
        let open: Vec<Value> = json_list(
            ws,
            &[
                "tasks",
                "list",
                "--limit",
                "100000",
                "--queue",
                SUBMIT_QUEUE,
                "--json",
            ],
        )
        .into_iter()
        .filter(|t| !ended(&t["status"]))
        .collect();
        if open.is_empty() {
            Ok(())
        } else {
            Err(format!("{} not ended", open.len()))
        }
    });
    common::signal(worker.id() as i32, Signal::TERM);
    let _ = worker.wait();
    let runs = ledger_counts(ws);
    for task in json_list(
        ws,
        &[
            "tasks",
            "list",
            "--limit",
            "100000",
            "--queue",
            SUBMIT_QUEUE,
            "--json",
        ],
    ) {
        assert_eq!(task["status"], "succeeded", "{task:#}");
        let id = task["id"].as_str().unwrap_or_default();
        assert_eq!(runs.get(id).copied().unwrap_or(0), 1, "{id} ran {runs:?}");
    }
}

/// With the daemon stopped and everything ended, no process the test's
/// daemon started lives on: no tagged process and no member of any
/// process group the store names.
fn check_no_orphans(ws: &Ws) {
    let mut groups = HashSet::new();
    for task in ws.ps_all() {
        for field in ["pgid", "pid", "shim_pid"] {
            if let Some(pgid) = task[field].as_i64() {
                groups.insert(pgid as i32);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tagged = ws.tagged_processes();
        let members: Vec<(i32, Vec<i32>)> = groups
            .iter()
            .map(|&g| (g, group_members(g)))
            .filter(|(_, m)| !m.is_empty())
            .collect();
        if tagged.is_empty() && members.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "orphans: tagged {:?}, groups {members:?}",
            tagged
                .iter()
                .map(|&p| (p, common::cmdline(p)))
                .collect::<Vec<_>>()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn check_repair(ws: &Ws) {
    let repair = ws.run(&["repair", "--json"]).ok().json();
    assert_eq!(repair["problems_found"], Value::Array(vec![]), "{repair:#}");
    assert_eq!(
        repair["store"]["resettled"],
        Value::Array(vec![]),
        "{repair:#}"
    );
    assert_eq!(
        repair["store"]["orphans_removed"],
        Value::Array(vec![]),
        "{repair:#}"
    );
    assert_eq!(
        repair["store"]["remaining"],
        Value::Array(vec![]),
        "{repair:#}"
    );
    for projection in repair["projections"].as_array().into_iter().flatten() {
        let found = projection["found"].as_str().unwrap_or_default();
        assert!(!found.starts_with("corrupt"), "{repair:#}");
    }
    let conn = rusqlite::Connection::open(ws.db_path()).expect("open the store");
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(verdict, "ok");
}

// ---------------------------------------------------------------------------
// The other faults, one test each.

/// Whether a test that could not set up its fault must fail (under CI, as
/// root, where it should work) rather than skip.
fn must_run() -> bool {
    std::env::var_os("CI").is_some() && rustix::process::geteuid().is_root()
}

/// Skips loudly, or fails under CI.
fn skip(test: &str, why: &str) {
    assert!(!must_run(), "{test}: {why} (under CI this must work)");
    eprintln!("\n*** SKIPPED {test}: {why} ***\n");
}

/// A small tmpfs, unmounted on drop.
struct SmallMount {
    dir: tempfile::TempDir,
}

impl SmallMount {
    fn new(size: &str) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("td-full-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs refused: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallMount {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut command = std::process::Command::new("umount");
            if lazy {
                command.arg("-l");
            }
            command
                .arg(self.dir.path())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !umount(false) {
            umount(true);
        }
    }
}

/// Fills the file system holding `dir` with one file; returns its path.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = fs::File::create(&path).expect("create the filler");
    let block = vec![0u8; 64 * 1024];
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc_enospc()) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // Whatever is left below one block, too.
    while let Ok(n) = file.write(&[0u8; 512]) {
        if n == 0 {
            break;
        }
    }
    let _ = file.sync_all();
    path
}

fn libc_enospc() -> i32 {
    rustix::io::Errno::NOSPC.raw_os_error()
}

/// The store passes SQLite's own integrity check.
fn integrity_ok(ws: &Ws) {
    let conn = rusqlite::Connection::open(ws.db_path()).expect("open the store");
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(verdict, "ok");
}

/// `repair` finds nothing wrong.
fn repair_finds_nothing(ws: &Ws) {
    check_repair(ws);
}

fn clean_failure(run: &Run, what: &str) {
    assert!(!run.success(), "{what} succeeded: {run:#?}");
    assert!(
        run.code.is_some() && !run.stderr.contains("panicked"),
        "{what} did not fail cleanly: {run:#?}"
    );
}

#[test]
fn disk_full_fails_clearly_and_corrupts_nothing() {
    let mount = match SmallMount::new("24m") {
        Ok(mount) => mount,
        Err(why) => return skip("disk_full_fails_clearly_and_corrupts_nothing", &why),
    };
    let ws = Ws::new_in(mount.path());
    let kept = ws
        .run(&["task", "add", "before the disk filled"])
        .ok()
        .last_line();
    ws.run(&["remember", "--kind", "decision", "keep this decision"])
        .ok();
    let ran = ws.spawn_sh("exit 3");
    ws.wait_status(&ran, "failed");
    // A process that ends while the disk is full.
    let waits = ws.spawn_sh("while [ ! -e go ]; do sleep 0.05; done; exit 4");
    ws.wait_status(&waits, "running");

    fs::write(ws.root().join("ready"), "").expect("write ready");
    let filler = fill(mount.path());
    // The process ends on the full disk; its shim cannot write the exit
    // anywhere until space returns, which takes longer than its first retries.
    fs::rename(ws.root().join("ready"), ws.root().join("go")).expect("rename to go");
    let ended_at = Instant::now();
    for args in [
        &["task", "add", "while the disk is full"][..],
        &["remember", "--kind", "decision", "written while full"][..],
        &["spawn", "--", "true"][..],
    ] {
        let run = ws.run(args);
        clean_failure(&run, &format!("{args:?} on a full disk"));
        eprintln!("{args:?} on a full disk: {}", run.stderr.trim());
        let stderr = run.stderr.to_lowercase();
        assert!(
            stderr.contains("full") || stderr.contains("no space"),
            "{args:?}: the error does not say the disk is full: {run:#?}"
        );
    }
    // Reads still work on a full disk.
    let shown = ws.run(&["task", "show", &kept, "--json"]).ok().json();
    assert_eq!(shown["title"], "before the disk filled");
    thread::sleep(Duration::from_secs(15).saturating_sub(ended_at.elapsed()));
    assert_eq!(
        ws.task_status(&waits),
        "running",
        "the exit was recorded on a full disk"
    );

    fs::remove_file(&filler).expect("remove the filler");
    integrity_ok(&ws);
    let shown = ws.run(&["task", "show", &kept, "--json"]).ok().json();
    assert_eq!(shown["title"], "before the disk filled");
    let memory = ws.run(&["memory", "list", "--json"]).ok().stdout;
    assert!(memory.contains("keep this decision"), "{memory}");
    assert!(!memory.contains("written while full"), "{memory}");
    let task = ws.wait_status(&waits, "failed");
    assert_eq!(task["exit_code"], 4, "{task:#}");
    assert_eq!(ws.task(&ran)["exit_code"], 3);
    // Working again, daemon included.
    ws.run(&["task", "add", "after the space came back"]).ok();
    let again = ws.spawn_sh("exit 0");
    ws.wait_status(&again, "succeeded");
    ws.run(&["stop"]).ok();
    repair_finds_nothing(&ws);
    integrity_ok(&ws);
    drop(ws);
}

/// Another program holding `BEGIN EXCLUSIVE` on the store: the `sqlite3`
/// shell, or, without it, a connection of the test's own.
enum Locker {
    Shell(std::process::Child),
    Connection(rusqlite::Connection),
}

impl Locker {
    fn lock(db: &Path) -> Self {
        use std::io::{BufRead, Write};
        let shell = std::process::Command::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let Ok(mut shell) = shell else {
            eprintln!("no sqlite3 shell: the lock is held by a connection of the test's own");
            let conn = rusqlite::Connection::open(db).expect("open the store");
            conn.execute_batch("BEGIN EXCLUSIVE")
                .expect("take the lock");
            return Self::Connection(conn);
        };
        let stdin = shell.stdin.as_mut().expect("sqlite3 stdin");
        stdin
            .write_all(b"BEGIN EXCLUSIVE;\nSELECT 'locked';\n")
            .expect("talk to sqlite3");
        stdin.flush().expect("talk to sqlite3");
        let mut line = String::new();
        std::io::BufReader::new(shell.stdout.as_mut().expect("sqlite3 stdout"))
            .read_line(&mut line)
            .expect("read sqlite3");
        assert_eq!(line.trim(), "locked", "sqlite3 did not take the lock");
        Self::Shell(shell)
    }

    fn release(self) {
        match self {
            Self::Shell(mut shell) => {
                drop(shell.stdin.take());
                let status = shell.wait().expect("wait for sqlite3");
                assert!(status.success(), "sqlite3: {status}");
            }
            Self::Connection(conn) => conn.execute_batch("ROLLBACK").expect("release the lock"),
        }
    }
}

#[test]
fn a_locked_store_waits_fails_naming_the_lock_and_recovers() {
    let ws = Ws::new();
    let kept = ws.run(&["task", "add", "before the lock"]).ok().last_line();
    let waits = ws.spawn_sh("while [ ! -e go ]; do sleep 0.05; done; exit 6");
    ws.wait_status(&waits, "running");

    let locker = Locker::lock(&ws.db_path());
    // The process ends while the store is locked: its shim must keep the exit.
    fs::write(ws.root().join("go"), "").expect("write go");
    let writers: Vec<_> = [
        &["task", "add", "while locked"][..],
        &["spawn", "--", "true"][..],
    ]
    .into_iter()
    .map(|args| {
        let command = ws.command(args);
        thread::spawn(move || common::run_command(command, common::COMMAND_TIMEOUT))
    })
    .collect();
    // Reads do not wait for the writer.
    let shown = ws.run(&["task", "show", &kept, "--json"]).ok().json();
    assert_eq!(shown["title"], "before the lock");
    for writer in writers {
        let run = writer.join().expect("writer thread");
        clean_failure(&run, "a write while the store is locked");
        assert!(
            run.stderr.contains("locked") && run.stderr.contains("state.db"),
            "the error does not name the lock: {run:#?}"
        );
    }
    locker.release();

    let task = ws.wait_status(&waits, "failed");
    assert_eq!(task["exit_code"], 6, "{task:#}");
    ws.run(&["task", "add", "after the lock"]).ok();
    let again = ws.spawn_sh("exit 0");
    ws.wait_status(&again, "succeeded");
    let shown = ws.run(&["task", "show", &kept, "--json"]).ok().json();
    assert_eq!(shown["title"], "before the lock");
    ws.run(&["stop"]).ok();
    repair_finds_nothing(&ws);
}

/// A private PostgreSQL server in a temporary directory, run as the
/// `postgres` user (it refuses root); stopped on drop.
struct PrivatePg {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePg {
    fn start() -> Result<Self, String> {
        let bin = fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no /usr/lib/postgresql: {e}"))?
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
            .ok_or("no initdb/pg_ctl under /usr/lib/postgresql/*/bin")?;
        let dir = tempfile::Builder::new()
            .prefix("td-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let owner = std::process::Command::new("chown")
            .arg("postgres:")
            .arg(dir.path())
            .status()
            .map_err(|e| e.to_string())?;
        if !owner.success() {
            return Err("cannot give the data directory to the postgres user".into());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let pg = Self { dir, bin, port };
        pg.as_postgres(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )?;
        pg.ctl(&["start"])?;
        Ok(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn as_postgres(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let out = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `pg_ctl ACTION` (start, restart, stop), waiting for it.
    fn ctl(&self, action: &[&str]) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("server.log").display().to_string();
        let mut args = vec!["-D", &data, "-l", &log, "-o", &options, "-w"];
        args.extend_from_slice(action);
        self.as_postgres("pg_ctl", &args)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.ctl(&["-m", "immediate", "stop"]);
    }
}

/// Queue tasks of `queue` not ended yet, and all of them.
fn queue_tasks(ws: &Ws, queue: &str) -> (usize, Vec<Value>) {
    let tasks = json_list(
        ws,
        &[
            "tasks", "list", "--limit", "100000", "--queue", queue, "--json",
        ],
    );
    let open = tasks.iter().filter(|t| !ended(&t["status"])).count();
    (open, tasks)
}

#[test]
fn postgres_restarted_mid_run_loses_nothing() {
    const JOBS: usize = 60;
    let pg = match PrivatePg::start() {
        Ok(pg) => pg,
        Err(why) => return skip("postgres_restarted_mid_run_loses_nothing", &why),
    };
    let mut ws = Ws::new();
    ws.set_env("TASKDAEMON_DATABASE_URL", &pg.url());
    let ledger = ws.root().join("ledger");
    let kept = ws
        .run(&["task", "add", "before the restart"])
        .ok()
        .last_line();
    // A supervised process that ends just after the restart.
    let waits = ws.spawn_sh("while [ ! -e go ]; do sleep 0.05; done; exit 9");
    ws.wait_status(&waits, "running");

    let mut worker = ws.command(&["worker", "--queue", "pg", "--concurrency", "2"]);
    worker.stdout(Stdio::null()).stderr(Stdio::null());
    let mut worker = worker.spawn().expect("start a worker");
    let submit = |n: usize| {
        let command = format!("sleep 0.2; echo job-{n} >> {}", ledger.display());
        let id = format!("job-{n}");
        ws.run(&[
            "submit",
            "--command",
            &command,
            "--queue",
            "pg",
            "--id",
            &id,
        ])
        .ok();
    };
    for n in 0..JOBS / 2 {
        submit(n);
    }
    settle("the worker makes progress", || {
        let (open, tasks) = queue_tasks(&ws, "pg");
        let done = tasks.len() - open;
        (done >= 5).then_some(()).ok_or(format!("{done} done"))
    });
    pg.ctl(&["-m", "fast", "restart"])
        .expect("restart the private PostgreSQL");
    fs::write(ws.root().join("go"), "").expect("write go");
    for n in JOBS / 2..JOBS {
        submit(n);
    }
    settle("every job ends", || {
        let (open, _) = queue_tasks(&ws, "pg");
        (open == 0).then_some(()).ok_or(format!("{open} open"))
    });
    common::signal(worker.id() as i32, Signal::TERM);
    let _ = worker.wait();

    let (_, tasks) = queue_tasks(&ws, "pg");
    assert_eq!(tasks.len(), JOBS);
    let runs = ledger_counts(&ws);
    for task in &tasks {
        assert_eq!(task["status"], "succeeded", "{task:#}");
        let id = task["id"].as_str().unwrap_or_default();
        assert_eq!(runs.get(id).copied(), Some(1), "{id} ran {runs:?}");
    }
    let task = ws.wait_status(&waits, "failed");
    assert_eq!(task["exit_code"], 9, "{task:#}");
    // The daemon reconnected: it starts and records new work.
    let again = ws.spawn_sh("exit 0");
    ws.wait_status(&again, "succeeded");
    let shown = ws.run(&["task", "show", &kept, "--json"]).ok().json();
    assert_eq!(shown["title"], "before the restart");
    ws.run(&["stop"]).ok();
    drop(ws);
    drop(pg);
}
