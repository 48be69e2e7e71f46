//! Drop-in for the seed tools' users: seed 003's `.auto-dev/tasks/` files
//! (current.json with its backup, memory.json, history/) as a projection of
//! the store, and seed 002's task-monitor `config.json` taken over by
//! `queues import-config`.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::{COMMAND_TIMEOUT, Ws, eventually_some, run_command};
use serde_json::{Value, json};

const AUTO_DEV: &str = ".auto-dev/tasks";

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

fn history_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn gunzip_json(path: &Path) -> Value {
    let mut text = String::new();
    flate2::read::GzDecoder::new(fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{} is not gzip: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn as_session(ws: &Ws, args: &[&str]) -> String {
    let mut command = ws.command(args);
    command.env("TASKDAEMON_SESSION", "conv-3");
    run_command(command, COMMAND_TIMEOUT).ok().last_line()
}

#[test]
fn the_auto_dev_files_follow_the_store_with_the_seeds_statuses() {
    let ws = Ws::new();
    let dir = ws.root().join(AUTO_DEV);
    let first = as_session(&ws, &["task", "add", "Port the parser"]);
    let before_start = fs::read(dir.join("current.json")).expect("written on create");
    as_session(&ws, &["task", "start", &first]);

    // One snapshot: the seed's place, not .taskdaemon/current.json.
    assert!(!ws.state_dir().join("current.json").exists());
    let current = read_json(&dir.join("current.json"));
    assert_eq!(current["session_id"], "conv-3");
    assert_eq!(current["current_task"]["id"], first.as_str());
    assert_eq!(current["current_task"]["status"], "in_progress");
    assert_eq!(current["current_task"]["state"], "running");
    // The copy replaced by the last write is kept whole.
    assert_eq!(
        fs::read(dir.join("current.json.bak")).unwrap(),
        before_start
    );

    as_session(
        &ws,
        &[
            "remember", "WAL mode", "--kind", "decision", "--task", &first,
        ],
    );
    as_session(&ws, &["remember", "run with --locked", "--kind", "pattern"]);
    as_session(
        &ws,
        &[
            "remember",
            "rust",
            "--kind",
            "fact",
            "--key",
            "project_type",
        ],
    );
    let memory = read_json(&dir.join("memory.json"));
    assert_eq!(memory["decisions"][0]["text"], "WAL mode");
    assert_eq!(memory["decisions"][0]["task_id"], first.as_str());
    assert_eq!(memory["learned_patterns"][0]["text"], "run with --locked");
    assert_eq!(memory["facts"][0]["key"], "project_type");
    assert_eq!(memory["facts"][0]["text"], "rust");

    as_session(&ws, &["task", "done", &first]);
    let second = as_session(&ws, &["task", "add", "Drop the old lexer"]);
    as_session(&ws, &["task", "cancel", &second]);
    let current = read_json(&dir.join("current.json"));
    assert!(current["current_task"].is_null(), "{current:#}");
    assert_eq!(current["completed_tasks"][0]["id"], first.as_str());

    // history/ is written by the daemon and by `autodev`; no daemon runs here.
    assert!(history_files(&dir.join("history")).is_empty());
    let written = ws.run(&["autodev", "--json"]).ok().json();
    assert_eq!(written["archived"], 2, "{written:#}");
    let files = history_files(&dir.join("history"));
    assert_eq!(files.len(), 2, "{files:?}");
    let archived: Vec<Value> = files.iter().map(|f| gunzip_json(f)).collect();
    let done = archived.iter().find(|a| a["id"] == first.as_str()).unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["name"], "Port the parser");
    assert_eq!(done["decisions"], json!(["WAL mode"]));
    let cancelled = archived
        .iter()
        .find(|a| a["id"] == second.as_str())
        .unwrap();
    assert_eq!(cancelled["status"], "failed", "the seed has no cancelled");
    assert_eq!(cancelled["state"], "cancelled");
    // An archived task is never archived twice.
    let again = ws.run(&["autodev", "--json"]).ok().json();
    assert_eq!(again["archived"], 0);
    assert_eq!(history_files(&dir.join("history")).len(), 2);
}

#[test]
fn the_directory_is_configurable_and_the_daemon_keeps_history_current() {
    let ws = Ws::new();
    ws.write_config("[autodev]\ndir = \"state/seed\"\n");
    let dir = ws.root().join("state/seed");
    let id = ws.run(&["task", "add", "Write the docs"]).ok().last_line();
    assert!(dir.join("current.json").is_file());
    assert!(!ws.root().join(AUTO_DEV).exists());

    ws.run(&["start"]).ok();
    ws.run(&["task", "start", &id]).ok();
    ws.run(&["task", "done", &id]).ok();
    // Nobody but the daemon archives on its own.
    let file = eventually_some("the daemon archives the ended task", || {
        history_files(&dir.join("history")).into_iter().next()
    });
    let archived = gunzip_json(&file);
    assert_eq!(archived["id"], id.as_str());
    assert_eq!(archived["status"], "completed");
}

#[test]
fn repair_rewrites_a_corrupt_current_json() {
    let ws = Ws::new();
    ws.run(&["task", "add", "something"]).ok();
    let current = ws.root().join(AUTO_DEV).join("current.json");
    fs::write(&current, "{\"session_id\": nul").unwrap();
    let report = ws.run(&["repair", "--json"]).ok().json();
    let first = &report["projections"][0];
    assert_eq!(first["path"], current.to_str().unwrap());
    assert!(first["found"].as_str().unwrap().starts_with("corrupt ("));
    assert!(read_json(&current)["completed_tasks"].is_array());
    assert!(ws.root().join(AUTO_DEV).join("memory.json").is_file());
}

fn seed_config(project: &Path, queues: Value) -> String {
    serde_json::to_string_pretty(&json!({
        "version": "2.0",
        "settings": {
            "watch_enabled": true,
            "watch_debounce_ms": 250,
            "watch_patterns": ["task-*.md", "job-*.md"],
            "watch_recursive": false,
            "max_attempts": 2,
            "enable_file_hash": true
        },
        "project_workspace": project,
        "queues": queues,
        "created_at": "2026-01-05T10:20:00.000001",
        "updated_at": "2026-01-05T10:22:33.123456"
    }))
    .unwrap()
}

#[test]
fn import_config_takes_over_the_task_monitors_queues_and_settings() {
    let ws = Ws::new();
    let outside = tempfile::tempdir().unwrap();
    let outside_queue = fs::canonicalize(outside.path()).unwrap().join("shared");
    let root = ws.root();
    let config = root.join("monitor.json");
    fs::write(
        &config,
        seed_config(
            root,
            json!([
                {"id": "ad-hoc", "path": root.join("tasks/ad-hoc"), "description": "",
                 "added_at": "2026-01-05T10:21:00.5"},
                {"id": "docs", "path": root.join("work/docs"), "description": "Documentation",
                 "added_at": "2026-01-05T10:22:33.123456"},
                {"id": "shared", "path": outside_queue, "added_at": "2026-01-06T08:00:00"}
            ]),
        ),
    )
    .unwrap();

    let imported = ws
        .run(&[
            "queues",
            "import-config",
            config.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    let added: Vec<(&str, bool)> = imported["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["id"].as_str().unwrap(), q["added"].as_bool().unwrap()))
        .collect();
    assert_eq!(added, [("ad-hoc", false), ("docs", true), ("shared", true)]);
    assert_eq!(
        imported["queues"][1]["added_at"],
        "2026-01-05T10:22:33.123456"
    );
    assert_eq!(imported["ignored_settings"], json!(["enable_file_hash"]));

    let listed = ws.run(&["queues", "list", "--json"]).ok().json();
    let docs = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == "docs")
        .expect("docs listed");
    assert_eq!(docs["description"], "Documentation");
    assert!(root.join("work/docs/pending").is_dir());
    assert!(outside_queue.join("failed").is_dir());
    let text = fs::read_to_string(ws.state_dir().join("config.toml")).unwrap();
    assert!(text.contains("watch_debounce_ms = 250"), "{text}");
    assert!(text.contains("max_attempts = 2"), "{text}");
    assert!(
        text.contains(r#"watch_patterns = ["task-*.md", "job-*.md"]"#),
        "{text}"
    );
    assert!(
        text.contains("path = \"work/docs\""),
        "inside: relative\n{text}"
    );
}

#[test]
fn a_bad_task_monitor_config_is_named_and_changes_nothing() {
    let ws = Ws::new();
    let root = ws.root();
    let config_toml = ws.state_dir().join("config.toml");
    let before = fs::read(&config_toml).unwrap();
    let good_queue = json!({"id": "docs", "path": root.join("work/docs"),
                            "added_at": "2026-01-05T10:22:33"});
    let other = tempfile::tempdir().unwrap();
    let cases = [
        (
            seed_config(root, json!([good_queue]))
                .replace("\"max_attempts\": 2", "\"max_attempts\": 0"),
            "settings.max_attempts",
        ),
        (
            seed_config(
                root,
                json!([good_queue, {"id": "x", "path": "/tmp/x", "colour": "red"}]),
            ),
            "queues[1].colour: unknown field",
        ),
        (
            seed_config(
                root,
                json!([good_queue, {"id": "y", "path": "/tmp/y", "added_at": "soon"}]),
            ),
            "queues[1].added_at",
        ),
        (
            seed_config(other.path(), json!([good_queue])),
            "project_workspace",
        ),
        (
            seed_config(
                root,
                json!([{"id": "ad-hoc", "path": root.join("elsewhere")}]),
            ),
            "queues[0].id: 'ad-hoc' is already a queue here",
        ),
        (
            "{\"version\": \"2.0\",".to_owned(),
            "not valid JSON at line 1",
        ),
    ];
    for (text, want) in cases {
        let file = root.join("monitor.json");
        fs::write(&file, &text).unwrap();
        let run = ws.run(&["queues", "import-config", file.to_str().unwrap()]);
        assert_eq!(run.code, Some(2), "{want}: {run:#?}");
        assert!(
            run.stderr.contains("monitor.json") && run.stderr.contains(want),
            "wanted {want}: {}",
            run.stderr
        );
        assert_eq!(fs::read(&config_toml).unwrap(), before, "{want}");
        assert!(!root.join("work/docs").exists(), "{want}: no folder made");
        assert!(!root.join("elsewhere").exists(), "{want}: no folder made");
    }
}

#[test]
fn registry_entries_carry_mode_pgid_start_time_and_boot_id() {
    let ws = Ws::new();
    let id = ws.spawn(&["--", "sleep", "60"]);
    let pid = ws.wait_task_running(&id);
    let registry = ws.root().join(".claude/process_registry.json");
    let entry = eventually_some("the registry lists the process", || {
        let text = fs::read_to_string(&registry).ok()?;
        let value: Value = serde_json::from_str(&text).ok()?;
        value["processes"]
            .as_array()?
            .iter()
            .find(|p| p["id"] == id.as_str() && p["pid"] == pid)
            .cloned()
    });
    assert_eq!(entry["mode"], "process", "{entry:#}");
    assert_eq!(entry["pgid"], pid, "the command leads its own group");
    let stat = common::proc_stat(pid).expect("running");
    assert_eq!(
        entry["start_time"].as_u64(),
        Some(stat.start_time),
        "{entry:#}"
    );
    let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(entry["boot_id"], boot_id.trim());
    ws.run(&["kill", &id]).ok();
}
