//! Folder queues end to end: documents dropped into `pending/` run through a
//! stand-in `claude` (a shell script printing the documented stream-json
//! lines) or the command executor, under the real daemon and shims.
//!
//! Order and parallelism are shown by rendezvous files, never by timing.

mod common;

use std::fs;
use std::path::Path;

use common::{Ws, alive, eventually, eventually_some, sigkill};
use serde_json::Value;

/// Fast settings: short debounce and retry backoff, and the ad-hoc queue.
const CONFIG: &str = r#"
[queues]
watch_debounce_ms = 50
retry_backoff = "50ms"

[[queue]]
id = "ad-hoc"
path = "tasks/ad-hoc"
"#;

/// The stand-in `claude`. The prompt (`$2`) steers it: its first word names
/// the run in `runs.log`; `WAIT:F` waits for file F; `FAIL` ends with an
/// error result and exit 1; `FAILONCE:F` fails unless F exists (and makes it);
/// `LOGIN` ends as Claude Code does when logged out (`is_error` with subtype
/// `success`).
const FAKE_CLAUDE: &str = r#"#!/bin/sh
prompt="$2"
name=${prompt%% *}
echo "start $name" >> "$RUNS_LOG"
echo '{"type":"system","subtype":"init","cwd":"'"$PWD"'","session_id":"sess-'"$name"'","tools":["Read"],"model":"fake"}'
echo 'this line is not JSON'
echo '{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"Working on '"$name"'"}],"usage":{"input_tokens":3,"output_tokens":2}},"session_id":"sess-'"$name"'"}'
for word in $prompt; do
  case $word in
    WAIT:*) f=${word#WAIT:}; while [ ! -e "$f" ]; do sleep 0.02; done ;;
    TOUCH:*) : > "${word#TOUCH:}" ;;
    FAILONCE:*) f=${word#FAILONCE:}; if [ ! -e "$f" ]; then : > "$f"; fail=1; fi ;;
    FAIL) fail=1 ;;
    LOGIN) login=1 ;;
  esac
done
echo "end $name" >> "$RUNS_LOG"
if [ -n "$login" ]; then
  echo '{"type":"result","subtype":"success","is_error":true,"duration_ms":3,"num_turns":1,"result":"Not logged in · Please run /login","session_id":"sess-'"$name"'","total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0}}'
  exit 1
fi
if [ -n "$fail" ]; then
  echo '{"type":"result","subtype":"error_during_execution","is_error":true,"num_turns":1,"result":"It broke","session_id":"sess-'"$name"'","total_cost_usd":0.001,"usage":{"input_tokens":1,"output_tokens":1}}'
  exit 1
fi
echo '{"type":"result","subtype":"success","is_error":false,"duration_ms":5,"num_turns":2,"result":"Finished '"$name"'","session_id":"sess-'"$name"'","total_cost_usd":0.0125,"usage":{"input_tokens":30,"output_tokens":12,"cache_read_input_tokens":100,"cache_creation_input_tokens":7}}'
"#;

/// A workspace with fast queue settings and the stand-in `claude` first on PATH.
fn queue_ws() -> Ws {
    let mut ws = Ws::new();
    ws.write_config(CONFIG);
    let bin = ws.root().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let claude = bin.join("claude");
    fs::write(&claude, FAKE_CLAUDE).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut fs::metadata(&claude).unwrap().permissions(),
        0o755,
    );
    fs::set_permissions(&claude, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    ws.prepend_path(&bin);
    let log = ws.root().join("runs.log");
    ws.set_env("RUNS_LOG", log.to_str().unwrap());
    ws
}

const ADHOC: &str = "tasks/ad-hoc";

fn runs(ws: &Ws) -> Vec<String> {
    fs::read_to_string(ws.root().join("runs.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn touch(ws: &Ws, name: &str) {
    fs::write(ws.root().join(name), "").unwrap();
}

/// [`queue_ws`] with queue `wide` (folder `wide/`) running `concurrency`
/// documents at once.
fn wide_queue_ws(concurrency: u32) -> Ws {
    let ws = queue_ws();
    let concurrency = concurrency.to_string();
    ws.run(&[
        "queues",
        "add",
        "wide",
        "--id",
        "wide",
        "--concurrency",
        &concurrency,
    ])
    .ok();
    ws
}

/// Changes the `concurrency` line of config.toml from `from` to `to`.
fn set_concurrency(ws: &Ws, from: u32, to: u32) {
    let config = fs::read_to_string(ws.state_dir().join("config.toml")).unwrap();
    let (old, new) = (
        format!("concurrency = {from}"),
        format!("concurrency = {to}"),
    );
    assert!(config.contains(&old), "{config}");
    ws.write_config(&config.replace(&old, &new));
}

/// The element of JSON array `rows` whose `field` is `value`.
fn row_where<'a>(rows: &'a Value, field: &str, value: &str) -> &'a Value {
    rows.as_array()
        .and_then(|rows| rows.iter().find(|row| row[field] == value))
        .unwrap_or_else(|| panic!("no {field} {value} in {rows:#}"))
}

fn task_json(ws: &Ws, id: &str) -> Value {
    ws.run(&["tasks", "show", id, "--json"]).ok().json()
}

#[test]
fn documents_run_in_file_name_order_and_leave_results() {
    let ws = queue_ws();
    // Dropped while no daemon runs, out of order: the start-up scan finds them.
    ws.drop_document(ADHOC, "task-3.md", "third\n");
    ws.drop_document(ADHOC, "task-1.md", "first\n");
    ws.drop_document(ADHOC, "task-2.md", "---\nmodel: fake-model\n---\nsecond\n");
    fs::write(
        ws.queue_dir(ADHOC).join("pending/.#task-0.md"),
        "editor lock",
    )
    .unwrap();
    fs::write(ws.queue_dir(ADHOC).join("pending/task-0.md~"), "backup").unwrap();
    ws.run(&["start"]).ok();

    let result = ws.wait_result(ADHOC, "task-3");
    assert_eq!(
        runs(&ws),
        [
            "start first",
            "end first",
            "start second",
            "end second",
            "start third",
            "end third"
        ],
        "one at a time, in file-name order"
    );
    assert_eq!(result["status"], "succeeded", "{result:#}");
    assert_eq!(result["task_id"], "task-3");
    assert_eq!(result["queue"], "ad-hoc");
    assert_eq!(result["attempt"], 1);
    assert_eq!(result["exit_code"], 0);
    assert_eq!(result["session_id"], "sess-third");
    assert_eq!(result["num_turns"], 2);
    assert_eq!(result["cost_usd"], 0.0125);
    assert_eq!(
        result["tokens"],
        serde_json::json!({"input": 30, "output": 12, "cache_read": 100, "cache_creation": 7})
    );
    assert_eq!(result["error"], Value::Null);
    assert!(result["duration_ms"].as_u64().is_some(), "{result:#}");
    let report = fs::read_to_string(ws.queue_dir(ADHOC).join("reports/task-3.md")).unwrap();
    assert!(report.contains("Finished third"), "{report}");
    assert!(report.contains("sess-third"), "{report}");

    assert_eq!(
        names_in(&ws.queue_dir(ADHOC).join("completed")),
        ["task-1.md", "task-2.md", "task-3.md"]
    );
    assert_eq!(
        names_in(&ws.queue_dir(ADHOC).join("pending")),
        [".#task-0.md", "task-0.md~"],
        "editor files stay, no lock is left"
    );
    let shown = task_json(&ws, "task-2");
    assert_eq!(shown["kind"], "agent");
    assert!(
        shown["argv"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "fake-model"),
        "{shown:#}"
    );
    let workers = ws.run(&["workers", "list", "--json"]).ok().json();
    assert_eq!(workers[0]["queue"], "ad-hoc");
    assert_eq!(workers[0]["done"], 3, "{workers:#}");
    assert_eq!(workers[0]["failed"], 0);
    assert_eq!(workers[0]["current_task"], Value::Null);
    let status = ws.run(&["status", "--detailed", "--json"]).ok().json();
    assert_eq!(status["workers"][0]["done"], 3, "{status:#}");
    assert_eq!(status["tasks"]["succeeded"], 3, "{status:#}");
}

#[test]
fn queues_run_in_parallel() {
    let ws = queue_ws();
    ws.run(&[
        "queues",
        "add",
        "work/a",
        "--id",
        "a",
        "--description",
        "Queue A",
    ])
    .ok();
    ws.run(&["queues", "add", "work/b", "--id", "b"]).ok();
    // Each waits for the other to have started: both finish only if they
    // run at the same time.
    ws.drop_document(
        "work/a",
        "task-a.md",
        "alpha TOUCH:a-started WAIT:b-started\n",
    );
    ws.drop_document(
        "work/b",
        "task-b.md",
        "beta TOUCH:b-started WAIT:a-started\n",
    );
    ws.run(&["start"]).ok();
    assert_eq!(ws.wait_result("work/a", "task-a")["status"], "succeeded");
    assert_eq!(ws.wait_result("work/b", "task-b")["status"], "succeeded");

    let list = ws.run(&["queues", "list", "--json"]).ok().json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ad-hoc", "a", "b"]);
    assert_eq!(list[1]["description"], "Queue A");
    assert_eq!(list[1]["done"], 1);
    ws.run(&["queues", "rm", "--queue-id", "b"]).ok();
    let list = ws.run(&["queues", "list", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        ws.queue_dir("work/b/results/task-b.json").exists(),
        "files are kept"
    );
}

#[test]
fn a_queue_runs_up_to_its_concurrency_at_once_in_queue_order() {
    let ws = wide_queue_ws(2);
    // The first two each wait for the other to have started (so both end
    // only if they run at once), then for `go`; the third waits for a slot.
    ws.drop_document(
        "wide",
        "task-1.md",
        "one TOUCH:1-started WAIT:2-started WAIT:go\n",
    );
    ws.drop_document(
        "wide",
        "task-2.md",
        "two TOUCH:2-started WAIT:1-started WAIT:go\n",
    );
    ws.drop_document("wide", "task-3.md", "three TOUCH:3-started\n");
    ws.run(&["start"]).ok();
    eventually("the first two documents running at once", || {
        ws.root().join("1-started").exists() && ws.root().join("2-started").exists()
    });
    let workers = ws.run(&["workers", "list", "--json"]).ok().json();
    let wide = row_where(&workers, "queue", "wide");
    assert_eq!(
        wide["running"],
        serde_json::json!(["task-1", "task-2"]),
        "{workers:#}"
    );
    let table = ws.run(&["workers", "list"]).ok().stdout;
    assert!(table.contains("task-1,task-2"), "{table}");
    assert!(
        !ws.root().join("3-started").exists(),
        "a third document started while two ran: {:?}",
        runs(&ws)
    );
    let third = ws.run(&["tasks", "show", "task-3"]);
    assert!(
        third.stderr.contains("no task with id 'task-3'"),
        "the third is not even recorded yet: {third:#?}"
    );

    // A reload (any `queues add` or `rm`) takes a changed concurrency in
    // place: the third starts beside the two still waiting.
    set_concurrency(&ws, 2, 3);
    ws.run(&["queues", "add", "other", "--id", "other"]).ok();
    assert_eq!(ws.wait_result("wide", "task-3")["status"], "succeeded");
    assert!(!ws.root().join("go").exists(), "the first two still wait");

    touch(&ws, "go");
    assert_eq!(ws.wait_result("wide", "task-1")["status"], "succeeded");
    assert_eq!(ws.wait_result("wide", "task-2")["status"], "succeeded");
    let starts: Vec<String> = runs(&ws)
        .into_iter()
        .filter(|line| line.starts_with("start "))
        .collect();
    assert_eq!(starts.len(), 3, "{starts:?}");
    assert_eq!(
        starts[2], "start three",
        "started in queue order: {starts:?}"
    );
    let list = ws.run(&["queues", "list", "--json"]).ok().json();
    let wide = row_where(&list, "id", "wide");
    assert_eq!(wide["concurrency"], 3, "{list:#}");
    assert_eq!(wide["done"], 3, "{list:#}");
}

#[test]
fn a_queue_s_concurrency_must_be_sensible() {
    let ws = queue_ws();
    let out = ws.run(&[
        "queues",
        "add",
        "zero",
        "--id",
        "zero",
        "--concurrency",
        "0",
    ]);
    assert!(!out.success(), "{out:#?}");
    assert!(
        out.stderr
            .contains("queues add: concurrency: must be between 1 and 1024, not 0"),
        "{}",
        out.stderr
    );
    assert!(!ws.queue_dir("zero").exists(), "no folder made");
    let config = fs::read_to_string(ws.state_dir().join("config.toml")).unwrap();
    assert!(!config.contains("zero"), "nothing written: {config}");
}

#[test]
fn a_queue_added_while_the_daemon_runs_gets_a_worker() {
    let ws = queue_ws();
    ws.run(&["start"]).ok();
    ws.run(&["queues", "add", "later", "--id", "later"]).ok();
    ws.drop_document(
        "later",
        "task-x.md",
        "---\nexecutor: command\ncommand: echo hi\n---\n",
    );
    assert_eq!(ws.wait_result("later", "task-x")["status"], "succeeded");
}

#[test]
fn a_running_task_holds_a_lock_naming_its_process() {
    let ws = queue_ws();
    ws.run(&["start"]).ok();
    ws.drop_document(ADHOC, "task-l.md", "locked WAIT:release\n");
    let lock_path = ws.queue_dir(ADHOC).join("pending/.task-task-l.lock");
    let text = common::eventually_some("the lock file", || fs::read_to_string(&lock_path).ok());
    let lock: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(lock["task_id"], "task-l");
    assert_eq!(lock["queue"], "ad-hoc");
    let thread_id = lock["thread_id"].as_str().expect("thread_id is a string");
    assert!(
        !thread_id.is_empty() && thread_id.bytes().all(|b| b.is_ascii_digit()),
        "seed 002 writes digits: {thread_id}"
    );
    assert!(
        lock["started_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{lock:#}"
    );
    let pid = lock["pid"].as_i64().unwrap() as i32;
    assert!(alive(pid), "the lock names a live process");
    assert_eq!(lock["identity"]["pid"], pid);
    assert!(lock["identity"]["start_time"].as_u64().is_some());
    let task = task_json(&ws, "task-l");
    assert_eq!(task["status"], "running");
    assert_eq!(lock["executor_pid"], task["pid"]);
    let workers = ws.run(&["workers", "status", "--json"]).ok().json();
    assert_eq!(
        workers["workers"][0]["current_task"], "task-l",
        "{workers:#}"
    );
    assert!(workers["workers"][0]["since"].is_string());

    touch(&ws, "release");
    ws.wait_result(ADHOC, "task-l");
    assert!(!lock_path.exists(), "the lock is removed with the result");
}

#[test]
fn stale_locks_are_cleaned_up_and_live_ones_respected() {
    let mut ws = queue_ws();
    let pending = ws.queue_dir(ADHOC).join("pending");
    let lock = |id: &str, pid: i64, boot: &str, start: u64| {
        serde_json::json!({
            "task_id": id, "queue": "ad-hoc", "thread_id": "140245", "pid": pid,
            "started_at": "2026-01-01T00:00:00.000Z", "executor_pid": null,
            "identity": {"boot_id": boot, "pid": pid, "start_time": start}
        })
        .to_string()
    };
    // A lock left by a process of another boot: stale.
    ws.drop_document(ADHOC, "task-s.md", "stale\n");
    fs::write(
        pending.join(".task-task-s.lock"),
        lock("task-s", 1, "another-boot", 5),
    )
    .unwrap();
    // A lock that is garbage: stale too.
    ws.drop_document(ADHOC, "task-t.md", "garbage\n");
    fs::write(pending.join(".task-task-t.lock"), "{half a lock").unwrap();
    // A lock held by a live process: its document must not run meanwhile.
    let holder = ws.start_own("sleep", &["300"]);
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let start_time = common::proc_stat(holder).unwrap().start_time;
    ws.drop_document(ADHOC, "task-h.md", "held\n");
    fs::write(
        pending.join(".task-task-h.lock"),
        lock("task-h", holder.into(), boot.trim(), start_time),
    )
    .unwrap();

    ws.run(&["start"]).ok();
    assert_eq!(ws.wait_result(ADHOC, "task-s")["status"], "succeeded");
    assert_eq!(ws.wait_result(ADHOC, "task-t")["status"], "succeeded");
    assert!(!pending.join(".task-task-s.lock").exists());
    assert!(!pending.join(".task-task-t.lock").exists());
    assert!(
        pending.join("task-h.md").exists(),
        "a live lock holds its document"
    );
    assert!(pending.join(".task-task-h.lock").exists());
    assert!(!runs(&ws).contains(&"start held".to_owned()));

    sigkill(holder);
    assert_eq!(ws.wait_result(ADHOC, "task-h")["status"], "succeeded");
    assert!(!pending.join(".task-task-h.lock").exists());
}

#[test]
fn failed_attempts_are_retried_up_to_max_attempts() {
    let ws = queue_ws();
    ws.drop_document(
        ADHOC,
        "task-1.md",
        "---\nexecutor: command\ncommand: echo attempt >> attempts.txt; exit 3\n---\n",
    );
    ws.drop_document(
        ADHOC,
        "task-2.md",
        "---\nmax_attempts: 2\n---\nflaky FAILONCE:flaky-marker\n",
    );
    ws.drop_document(
        ADHOC,
        "task-3.md",
        "---\nmax_attempts: 1\n---\nbroken FAIL\n",
    );
    ws.run(&["start"]).ok();

    let failed = ws.wait_result(ADHOC, "task-1");
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(failed["attempt"], 3, "the config default of 3 attempts");
    assert_eq!(failed["exit_code"], 3);
    assert_eq!(failed["error"], "exit 3");
    assert_eq!(
        fs::read_to_string(ws.root().join("attempts.txt"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    let report = fs::read_to_string(ws.queue_dir(ADHOC).join("reports/task-1.md")).unwrap();
    assert!(
        report.contains("3 of 3") && report.contains("attempt"),
        "{report}"
    );

    let flaky = ws.wait_result(ADHOC, "task-2");
    assert_eq!(flaky["status"], "succeeded", "{flaky:#}");
    assert_eq!(flaky["attempt"], 2);
    assert_eq!(
        flaky["session_id"], "sess-flaky",
        "the summary is the last attempt's"
    );

    let broken = ws.wait_result(ADHOC, "task-3");
    assert_eq!(broken["status"], "failed");
    assert_eq!(broken["attempt"], 1);
    assert_eq!(broken["error"], "It broke", "{broken:#}");
    // The result is written first and the document moved after it.
    let failed_docs = common::eventually_some("task-1.md and task-3.md in failed/", || {
        let names = names_in(&ws.queue_dir(ADHOC).join("failed"));
        (names.len() == 2).then_some(names)
    });
    assert_eq!(failed_docs, ["task-1.md", "task-3.md"]);
    let completed = common::eventually_some("task-2.md in completed/", || {
        let names = names_in(&ws.queue_dir(ADHOC).join("completed"));
        (!names.is_empty()).then_some(names)
    });
    assert_eq!(completed, ["task-2.md"]);
}

#[test]
fn malformed_and_vanished_documents_do_not_stop_the_worker() {
    let ws = queue_ws();
    ws.run(&["start"]).ok();
    ws.drop_document(
        ADHOC,
        "task-1.md",
        "---\nexecutor: command\nretries: 3\ncommand: true\n---\n",
    );
    let bad = ws.wait_result(ADHOC, "task-1");
    assert_eq!(bad["status"], "failed");
    let error = bad["error"].as_str().unwrap();
    assert!(
        error.contains("line 3") && error.contains("retries"),
        "{error}"
    );
    let report = fs::read_to_string(ws.queue_dir(ADHOC).join("reports/task-1.md")).unwrap();
    assert!(
        report.contains("line 3") && report.contains("retries"),
        "{report}"
    );
    assert!(ws.queue_dir(ADHOC).join("failed/task-1.md").exists());

    // One runs; the next is deleted and another renamed away while queued.
    ws.drop_document(ADHOC, "task-2.md", "blocker WAIT:go\n");
    eventually("task-2 runs", || {
        runs(&ws).contains(&"start blocker".to_owned())
    });
    ws.drop_document(ADHOC, "task-3.md", "deleted\n");
    ws.drop_document(ADHOC, "task-4.md", "renamed\n");
    fs::remove_file(ws.queue_dir(ADHOC).join("pending/task-3.md")).unwrap();
    fs::rename(
        ws.queue_dir(ADHOC).join("pending/task-4.md"),
        ws.root().join("task-4.md"),
    )
    .unwrap();
    touch(&ws, "go");
    ws.wait_result(ADHOC, "task-2");
    ws.drop_document(ADHOC, "task-5.md", "after\n");
    assert_eq!(ws.wait_result(ADHOC, "task-5")["status"], "succeeded");
    let ran = runs(&ws);
    assert!(
        !ran.iter()
            .any(|r| r.contains("deleted") || r.contains("renamed")),
        "{ran:?}"
    );
}

/// Entries of `pending/` named like documents that are not plain files of
/// a sane size are never run, never read through a link, never block the
/// worker, and are reported once each (even across a daemon restart).
#[test]
fn untrusted_entries_in_pending_are_refused_once_and_never_run() {
    let ws = queue_ws();
    ws.write_config(&CONFIG.replace(
        "retry_backoff = \"50ms\"",
        "retry_backoff = \"50ms\"\nmax_document_bytes = 100",
    ));
    let pending = ws.queue_dir(ADHOC).join("pending");
    fs::create_dir_all(&pending).unwrap();
    // Outside the workspace: the fake claude would log "start leaked" if it ran.
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.md");
    fs::write(&secret, "leaked secret contents\n").unwrap();
    std::os::unix::fs::symlink(&secret, pending.join("task-1.md")).unwrap();
    let fifo = std::ffi::CString::new(
        pending
            .join("task-2.md")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    fs::create_dir(pending.join("task-3.md")).unwrap();
    fs::write(
        pending.join("task-4.md"),
        format!("big {}\n", "x".repeat(200)),
    )
    .unwrap();

    ws.run(&["start"]).ok();
    let expected = [
        ("task-1", "symbolic link"),
        ("task-2", "FIFO"),
        ("task-3", "directory"),
        ("task-4", "100-byte limit"),
    ];
    for (id, reason) in expected {
        let result = ws.wait_result(ADHOC, id);
        assert_eq!(result["status"], "failed", "{id}: {result}");
        let error = result["error"].as_str().unwrap();
        assert!(error.contains(reason), "{id}: {error}");
    }
    // The worker was not blocked: a good document still runs.
    ws.drop_document(ADHOC, "task-5.md", "after\n");
    assert_eq!(ws.wait_result(ADHOC, "task-5")["status"], "succeeded");

    // Files and links went to failed/; the FIFO and the directory stay.
    assert!(ws.queue_dir(ADHOC).join("failed/task-1.md").is_symlink());
    assert!(ws.queue_dir(ADHOC).join("failed/task-4.md").is_file());
    assert!(pending.join("task-2.md").symlink_metadata().is_ok());
    assert!(pending.join("task-3.md").is_dir());
    assert_eq!(
        fs::read_to_string(&secret).unwrap(),
        "leaked secret contents\n"
    );
    let ran = runs(&ws);
    assert_eq!(ran, ["start after", "end after"], "{ran:?}");

    // A restarted daemon finds the FIFO and the directory again, and does
    // not report them a second time.
    ws.run(&["stop"]).ok();
    ws.run(&["start"]).ok();
    ws.drop_document(ADHOC, "task-6.md", "later\n");
    assert_eq!(ws.wait_result(ADHOC, "task-6")["status"], "succeeded");
    let listed = ws.run(&["tasks", "list", "--json"]).ok().json();
    let reports = |document: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["document"] == document)
            .count()
    };
    assert_eq!(
        (reports("task-2.md"), reports("task-3.md")),
        (1, 1),
        "{listed}"
    );
}

/// The store is told of a result before its file is written; a daemon that
/// died in between writes the missing file when it starts again.
#[test]
fn a_missing_result_file_is_restored_from_the_store() {
    let ws = queue_ws();
    ws.drop_document(ADHOC, "task-r.md", "---\nexecutor: command\n---\necho hi\n");
    ws.run(&["start"]).ok();
    let written = ws.wait_result(ADHOC, "task-r");
    // Whoever sees the file finds the store agreeing.
    let stored = ws.run(&["tasks", "logs", "task-r", "--result"]).ok().json();
    assert_eq!(stored, written);
    ws.run(&["stop"]).ok();
    let file = ws.queue_dir(ADHOC).join("results/task-r.json");
    fs::remove_file(&file).unwrap();
    ws.run(&["start"]).ok();
    assert_eq!(ws.wait_result(ADHOC, "task-r"), written);
}

#[test]
fn a_task_survives_kill_9_of_the_daemon_and_runs_once() {
    let ws = queue_ws();
    ws.drop_document(ADHOC, "task-k.md", "crash WAIT:go-on\n");
    ws.drop_document(ADHOC, "task-z.md", "later\n");
    ws.run(&["start"]).ok();
    eventually("the task runs", || {
        runs(&ws).contains(&"start crash".to_owned())
    });
    let pid = ws.wait_task_running("task-k");
    let daemon = ws.daemon_pid().unwrap();

    sigkill(daemon);
    eventually("the daemon is gone", || ws.daemon_pid().is_none());
    assert!(alive(pid), "the executor survives the daemon");
    // It ends while no daemon runs; the next daemon records the result.
    touch(&ws, "go-on");
    eventually("the executor ends", || !alive(pid));
    ws.run(&["start"]).ok();
    let result = ws.wait_result(ADHOC, "task-k");
    assert_eq!(result["status"], "succeeded", "{result:#}");
    assert_eq!(result["attempt"], 1);
    assert_eq!(ws.wait_result(ADHOC, "task-z")["status"], "succeeded");
    let starts = runs(&ws).iter().filter(|r| *r == "start crash").count();
    assert_eq!(starts, 1, "run exactly once: {:?}", runs(&ws));
}

#[test]
fn the_running_documents_of_a_concurrent_queue_survive_kill_9_and_run_once() {
    let ws = wide_queue_ws(3);
    for name in ["one", "two", "three"] {
        ws.drop_document(
            "wide",
            &format!("task-{name}.md"),
            &format!("{name} WAIT:go-on\n"),
        );
    }
    ws.drop_document("wide", "task-zz.md", "later\n");
    ws.run(&["start"]).ok();
    let pids: Vec<i32> = ["one", "two", "three"]
        .iter()
        .map(|name| ws.wait_task_running(&format!("task-{name}")))
        .collect();
    sigkill(ws.daemon_pid().unwrap());
    eventually("the daemon is gone", || ws.daemon_pid().is_none());
    assert!(pids.iter().all(|pid| alive(*pid)), "the executors survive");
    // They end while no daemon runs. The next daemon, told to run one at
    // a time, still records all three, then runs the fourth.
    touch(&ws, "go-on");
    eventually("the executors end", || pids.iter().all(|pid| !alive(*pid)));
    set_concurrency(&ws, 3, 1);
    ws.run(&["start"]).ok();
    for name in ["one", "two", "three"] {
        let result = ws.wait_result("wide", &format!("task-{name}"));
        assert_eq!(result["status"], "succeeded", "{result:#}");
        assert_eq!(result["attempt"], 1, "{result:#}");
    }
    assert_eq!(ws.wait_result("wide", "task-zz")["status"], "succeeded");
    let runs = runs(&ws);
    for name in ["one", "two", "three", "later"] {
        let starts = runs
            .iter()
            .filter(|r| **r == format!("start {name}"))
            .count();
        assert_eq!(starts, 1, "{name} ran exactly once: {runs:?}");
    }
}

#[test]
fn a_task_still_running_after_a_daemon_restart_is_adopted() {
    let ws = queue_ws();
    ws.drop_document(ADHOC, "task-r.md", "resume WAIT:finish\n");
    ws.run(&["start"]).ok();
    let pid = ws.wait_task_running("task-r");
    sigkill(ws.daemon_pid().unwrap());
    eventually("the daemon is gone", || ws.daemon_pid().is_none());
    ws.run(&["start"]).ok();
    // The new daemon must wait for it, not start it again.
    assert_eq!(task_json(&ws, "task-r")["pid"], pid);
    touch(&ws, "finish");
    let result = ws.wait_result(ADHOC, "task-r");
    assert_eq!(result["status"], "succeeded");
    assert_eq!(runs(&ws).iter().filter(|r| *r == "start resume").count(), 1);
    // The lock goes after the result is written.
    eventually("the lock file is removed", || {
        !ws.queue_dir(ADHOC)
            .join("pending/.task-task-r.lock")
            .exists()
    });
}

#[test]
fn cancel_kills_the_group_and_records_it() {
    let ws = queue_ws();
    ws.run(&["start"]).ok();
    ws.drop_document(
        ADHOC,
        "task-c.md",
        "---\nexecutor: command\ncommand: sleep 300 & wait\n---\n",
    );
    let pid = ws.wait_task_running("task-c");
    let cancel = ws.run(&["tasks", "cancel", "task-c", "--grace", "2s"]).ok();
    assert!(cancel.stdout.contains("cancelled"), "{cancel:#?}");
    let result = ws.wait_result(ADHOC, "task-c");
    assert_eq!(result["status"], "cancelled", "{result:#}");
    assert!(!alive(pid));
    assert!(
        common::group_members(pid).is_empty(),
        "the whole group is gone"
    );
    assert!(ws.queue_dir(ADHOC).join("failed/task-c.md").exists());
    let again = ws.run(&["tasks", "cancel", "task-c"]);
    assert_eq!(again.code, Some(4), "{again:#?}");
    let logs = ws.run(&["tasks", "logs", "task-c", "--output"]).ok();
    assert_eq!(logs.code, Some(0));
}

/// `/proc/PID/comm`, without its newline.
fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}

/// A plain command runs as its own program right under the shim, with no
/// shell between; a script that needs the shell (here an operator) still
/// runs under `sh`.
#[test]
fn a_simple_command_runs_without_a_shell() {
    let ws = queue_ws();
    ws.run(&["start"]).ok();
    for (name, command, program) in [
        ("task-plain", "sleep 300", "sleep"),
        ("task-shell", "sleep 300; true", "sh"),
    ] {
        ws.drop_document(
            ADHOC,
            &format!("{name}.md"),
            &format!("---\nexecutor: command\ncommand: {command}\n---\n"),
        );
        let pid = ws.wait_task_running(name);
        assert_eq!(comm(pid), program, "{command}");
        let parent = common::proc_stat(pid).map(|s| s.ppid).unwrap_or_default();
        let task = ws.run(&["tasks", "show", name, "--json"]).ok().json();
        assert_eq!(
            task["shim_pid"].as_i64(),
            Some(i64::from(parent)),
            "{task:#}"
        );
        assert_eq!(comm(parent), "taskdaemon", "{command}");
        ws.run(&["tasks", "cancel", name, "--grace", "2s"]).ok();
        let result = ws.wait_result(ADHOC, name);
        assert_eq!(result["status"], "cancelled", "{result:#}");
    }
}

#[test]
fn a_timed_out_attempt_is_reported_as_a_timeout_and_command_tasks_show_no_tokens() {
    let ws = queue_ws();
    ws.run(&["start"]).ok();
    ws.drop_document(
        ADHOC,
        "task-t.md",
        "---\nexecutor: command\ncommand: sleep 300\ntimeout: 200ms\nmax_attempts: 1\n---\n",
    );
    let result = ws.wait_result(ADHOC, "task-t");
    assert_eq!(result["status"], "failed", "{result:#}");
    let error = result["error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out after"), "{result:#}");
    assert!(ws.queue_dir(ADHOC).join("failed/task-t.md").exists());
    // Nothing counted tokens for a command: no all-zero line.
    let shown = ws.run(&["tasks", "show", "task-t"]).ok().stdout;
    assert!(!shown.contains("tokens"), "{shown}");
    assert!(shown.contains("timed out after"), "{shown}");
}

#[test]
fn queue_commands_reject_bad_input_clearly() {
    let ws = queue_ws();
    let bad = ws.run(&["queues", "add", "x", "--id", "no spaces"]);
    assert_eq!(bad.code, Some(2), "{bad:#?}");
    assert!(bad.stderr.contains("not a valid queue id"), "{bad:#?}");
    let dup = ws.run(&["queues", "add", "y", "--id", "ad-hoc"]);
    assert_eq!(dup.code, Some(2));
    assert!(dup.stderr.contains("already exists"), "{dup:#?}");
    let missing = ws.run(&["queues", "rm", "--queue-id", "nope"]);
    assert_eq!(missing.code, Some(2));
    ws.write_config("[queues]\nmax_attempts = 0\n");
    let invalid = ws.run(&["workers", "list"]);
    assert_eq!(invalid.code, Some(1));
    assert!(
        invalid.stderr.contains("queues.max_attempts"),
        "{invalid:#?}"
    );
}

#[test]
fn service_install_writes_and_removes_a_user_unit() {
    let ws = queue_ws();
    let dir = ws.root().join("units");
    let unit_dir = dir.to_str().unwrap();
    let dry = ws
        .run(&["service", "install", "--dry-run", "--unit-dir", unit_dir])
        .ok();
    assert!(dry.stdout.contains("KillMode=process"), "{dry:#?}");
    assert!(!dir.join("taskdaemon.service").exists());
    ws.run(&["service", "install", "--unit-dir", unit_dir]).ok();
    let unit = fs::read_to_string(dir.join("taskdaemon.service")).unwrap();
    assert!(
        unit.contains("__daemon") && unit.contains(&ws.root().display().to_string()),
        "{unit}"
    );
    ws.run(&["service", "uninstall", "--unit-dir", unit_dir])
        .ok();
    assert!(!dir.join("taskdaemon.service").exists());
}

#[test]
fn tasks_logs_result_prints_the_result_json_with_added_at() {
    let ws = queue_ws();
    ws.drop_document(
        ADHOC,
        "task-res.md",
        "---\nexecutor: command\n---\necho result-output\n",
    );
    ws.run(&["start"]).ok();
    let file = ws.wait_result(ADHOC, "task-res");
    let printed = ws
        .run(&["tasks", "logs", "task-res", "--result"])
        .ok()
        .json();
    assert_eq!(printed, file, "the store's result is the file's");
    assert_eq!(printed["status"], "succeeded");
    let added = printed["added_at"].as_str().expect("added_at is recorded");
    let started = printed["started_at"].as_str().unwrap();
    assert!(added <= started, "added {added} after started {started}");
    // Without a flag: the result too, as seed 002's `logs` prints it.
    assert_eq!(ws.run(&["tasks", "logs", "task-res"]).ok().json(), file);
    // --output: the executor's output itself.
    let output = ws.run(&["tasks", "logs", "task-res", "--output"]).ok();
    assert!(output.stdout.contains("result-output"), "{output:#?}");

    let shown = ws.run(&["tasks", "show", "task-res"]).ok();
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("added") && l.contains(added)),
        "{shown:#?}"
    );
    let path = ws.queue_dir(ADHOC).join("completed/task-res.md");
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("path") && l.ends_with(path.to_str().unwrap())),
        "the document's path: {shown:#?}"
    );
    let shown = task_json(&ws, "task-res");
    assert_eq!(shown["added_at"], added, "{shown:#}");
    assert_eq!(shown["document_path"], path.to_str().unwrap());
    let report = fs::read_to_string(ws.queue_dir(ADHOC).join("reports/task-res.md")).unwrap();
    assert!(report.contains(&format!("| added | {added} |")), "{report}");

    // A task with no result (yet), and one that is not a queue task.
    let running = ws.spawn(&["--", "sleep", "600"]);
    let none = ws.run(&["tasks", "logs", &running, "--result"]);
    assert_eq!(none.code, Some(2), "{none:#?}");
    let missing = ws.run(&["tasks", "logs", "task-nope", "--result"]);
    assert_eq!(missing.code, Some(3), "{missing:#?}");
    let clash = ws.run(&["tasks", "logs", "task-res", "--result", "--follow"]);
    assert_eq!(clash.code, Some(2), "{clash:#?}");
}

#[test]
fn retry_puts_a_failed_document_back_and_it_runs_as_a_new_task() {
    let ws = queue_ws();
    let marker = ws.root().join("fixed");
    ws.run(&["start"]).ok();
    ws.drop_document(
        ADHOC,
        "task-flaky.md",
        &format!(
            "---\nexecutor: command\nmax_attempts: 1\ncommand: test -e {}\n---\n",
            marker.display()
        ),
    );
    assert_eq!(ws.wait_result(ADHOC, "task-flaky")["status"], "failed");
    let failed = ws.queue_dir(ADHOC).join("failed/task-flaky.md");
    assert!(failed.exists());

    // A process is not a queue task; an unknown id is not found.
    let process = ws.spawn(&["--", "true"]);
    assert_eq!(ws.run(&["tasks", "retry", &process]).code, Some(2));
    assert_eq!(ws.run(&["tasks", "retry", "task-nope"]).code, Some(3));

    fs::write(&marker, "").unwrap();
    let retried = ws.run(&["tasks", "retry", "task-flaky"]).ok();
    assert!(
        retried.stdout.contains("pending/task-flaky.md"),
        "{}",
        retried.stdout
    );
    assert!(!failed.exists(), "the document left failed/");
    let rerun = ws.wait_result(ADHOC, "task-flaky~2");
    assert_eq!(rerun["status"], "succeeded");
    assert!(
        ws.queue_dir(ADHOC)
            .join("completed/task-flaky~2.md")
            .exists()
    );
    // The first attempt keeps its own record.
    assert_eq!(task_json(&ws, "task-flaky")["status"], "failed");

    // A document of the same name waiting in pending/ is never overwritten.
    ws.run(&["stop"]).ok();
    fs::write(ws.queue_dir(ADHOC).join("pending/task-flaky.md"), "newer\n").unwrap();
    let refused = ws.run(&["tasks", "retry", "task-flaky~2"]);
    assert_eq!(refused.code, Some(4), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("exists already"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        fs::read_to_string(ws.queue_dir(ADHOC).join("pending/task-flaky.md")).unwrap(),
        "newer\n"
    );
}

#[test]
fn an_is_error_result_keeps_claude_codes_message_as_written() {
    let ws = queue_ws();
    ws.drop_document(
        ADHOC,
        "task-login.md",
        "---\nmax_attempts: 1\n---\nlogin LOGIN\n",
    );
    ws.run(&["start"]).ok();
    let result = ws.wait_result(ADHOC, "task-login");
    assert_eq!(result["status"], "failed", "{result:#}");
    assert_eq!(
        result["error"], "Not logged in · Please run /login",
        "the message as Claude Code wrote it, not its subtype: {result:#}"
    );
    let logs = ws.run(&["tasks", "logs", "task-login"]).ok().json();
    assert_eq!(logs["error"], "Not logged in · Please run /login");
}

/// A started workspace whose ad-hoc worker ran document `first` (`true`),
/// and the standby shim it has since; also the document's text.
fn started_with_a_standby(first: &str) -> (Ws, i32, &'static str) {
    let ws = queue_ws();
    ws.run(&["start"]).ok();
    let quick = "---\nexecutor: command\ncommand: \"true\"\n---\n";
    ws.drop_document(ADHOC, &format!("{first}.md"), quick);
    assert_eq!(ws.wait_result(ADHOC, first)["status"], "succeeded");
    let standby = eventually_some("a standby shim", || {
        let shims = ws.standby_shims();
        (shims.len() == 1).then(|| shims[0])
    });
    (ws, standby, quick)
}

/// The standby forks each shim before its document comes: a spare that
/// leads its own session and has the store open already, waiting. The
/// next document runs under that very process, and a new spare takes its
/// place; when the daemon dies the spare exits with the standby, having
/// run nothing.
#[test]
fn a_standby_readies_the_next_documents_shim_before_the_document_comes() {
    let (ws, standby, quick) = started_with_a_standby("task-r1");
    let store = ws.state_dir().join("state.db");
    let spare = eventually_some("a spare shim with the store open", || {
        let children = common::live_children(standby);
        let spare = *children.first().filter(|_| children.len() == 1)?;
        common::holds_open(spare, &store).then_some(spare)
    });
    let stat = common::proc_stat(spare).expect("the spare's stat");
    assert_eq!(stat.pgrp, spare, "it leads its own group: {stat:?}");
    let args = common::cmdline(spare);
    assert!(
        args.iter().any(|a| a == "__shim") && !args.iter().any(|a| a == "__shim-standby"),
        "ps shows it as a shim: {args:?}"
    );

    ws.drop_document(ADHOC, "task-r2.md", quick);
    let result = ws.wait_result(ADHOC, "task-r2");
    assert_eq!(result["status"], "succeeded", "{result:#}");
    let task = task_json(&ws, "task-r2");
    assert_eq!(
        task["shim_pid"].as_i64(),
        Some(i64::from(spare)),
        "the spare ran it: {task:#}"
    );
    let shim_log = ws.state_dir().join("procs/task-r2/shim.log");
    assert!(shim_log.exists(), "its stderr is the task's shim.log");
    let next = eventually_some("the next spare", || {
        let children = common::live_children(standby);
        children.into_iter().find(|&pid| pid != spare)
    });

    sigkill(ws.daemon_pid().unwrap());
    eventually("the standby exits", || !alive(standby));
    eventually("its spare exits too", || !alive(next));
    let listed = ws.run(&["tasks", "list", "--json"]).ok().json();
    let tasks: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(tasks, ["task-r1", "task-r2"], "the spare ran nothing");
}

/// A worker starts its shims through one standby shim: each is a fork of
/// it, in a session of its own, and runs its document as a fresh shim
/// would. The standby lives on between documents and exits by itself when
/// its daemon dies, even by SIGKILL, while a shim it started runs on.
#[test]
fn a_standby_shim_forks_each_documents_shim_and_dies_with_its_daemon() {
    let (ws, standby, quick) = started_with_a_standby("task-s1");
    let mut shim_pids = Vec::new();
    for name in ["task-s2", "task-s3"] {
        ws.drop_document(ADHOC, &format!("{name}.md"), quick);
        let result = ws.wait_result(ADHOC, name);
        assert_eq!(result["status"], "succeeded", "{result:#}");
        assert_eq!(result["exit_code"], 0, "{result:#}");
        let task = task_json(&ws, name);
        let shim = task["shim_pid"].as_i64().expect("a shim pid");
        assert_ne!(shim, i64::from(standby), "a shim of its own: {task:#}");
        shim_pids.push(shim);
        let shim_log = ws.state_dir().join(format!("procs/{name}/shim.log"));
        assert!(shim_log.exists(), "its stderr is the task's shim.log");
        assert_eq!(
            ws.standby_shims(),
            vec![standby],
            "the same standby lives on"
        );
    }
    assert_ne!(shim_pids[0], shim_pids[1]);

    // A shim that runs on: the standby's child, leading its own session.
    let slow = "---\nexecutor: command\ncommand: \"sleep 30\"\n---\n";
    ws.drop_document(ADHOC, "task-s4.md", slow);
    let shim = eventually_some("the running shim", || {
        let shown = ws.run(&["tasks", "show", "task-s4", "--json"]);
        let task = shown.success().then(|| shown.json())?;
        (task["status"] == "running").then(|| task["shim_pid"].as_i64())?
    });
    let shim = i32::try_from(shim).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{shim}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_eq!(
        fields[1],
        standby.to_string(),
        "its parent is the standby: {stat}"
    );
    assert_eq!(fields[3], shim.to_string(), "it leads its session: {stat}");
    let args = common::cmdline(shim);
    assert!(
        args.iter().any(|a| a == "__shim") && !args.iter().any(|a| a == "__shim-standby"),
        "ps shows it as a shim: {args:?}"
    );

    sigkill(ws.daemon_pid().unwrap());
    eventually("the standby exits", || !alive(standby));
    assert!(ws.standby_shims().is_empty());
    assert!(alive(shim), "the shim outlives the daemon and the standby");
    let command = task_json(&ws, "task-s4")["pid"]
        .as_i64()
        .expect("the command's pid");
    sigkill(shim);
    common::sigkill_group(i32::try_from(command).unwrap());
}
