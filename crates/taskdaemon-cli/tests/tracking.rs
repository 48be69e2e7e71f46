//! Tracked work through the real binary: tasks and dependencies, memory and
//! search, the seed snapshot, history and its archive, export/import, backup
//! and repair, many writers at once and writers killed mid-write.

mod common;

use std::collections::HashSet;
use std::fs;
use std::process::Stdio;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{COMMAND_TIMEOUT, Run, Ws, run_command, sigkill};
use serde_json::Value;

fn add(ws: &Ws, args: &[&str]) -> String {
    let mut full = vec!["task", "add"];
    full.extend_from_slice(args);
    ws.run(&full).ok().last_line()
}

fn show(ws: &Ws, id: &str) -> Value {
    ws.run(&["task", "show", id, "--json"]).ok().json()
}

fn snapshot(ws: &Ws) -> Value {
    let text =
        fs::read_to_string(ws.root().join(".auto-dev/tasks/current.json")).expect("current.json");
    serde_json::from_str(&text).expect("current.json is JSON")
}

#[test]
fn dependencies_gate_ready_work_and_bad_edges_fail_clearly() {
    let ws = Ws::new();
    let schema = add(
        &ws,
        &["Design the schema", "--priority", "high", "--label", "db"],
    );
    let queries = add(&ws, &["Write queries", "--after", &schema]);
    let api = add(&ws, &["Build the API", "--after", &queries]);
    let docs = add(&ws, &["Write docs", "--priority", "low"]);
    assert_eq!(show(&ws, &queries)["status"], "blocked");

    let ready = ws.run(&["task", "ready", "--json"]).ok().json();
    let ids: Vec<&str> = ready
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [schema.as_str(), docs.as_str()], "priority order");

    let cycle = ws.run(&["task", "dep", "add", &schema, &api]);
    assert_eq!(cycle.code, Some(2), "{cycle:#?}");
    assert!(
        cycle
            .stderr
            .contains(&format!("{schema} -> {api} -> {queries} -> {schema}")),
        "the error names the cycle: {}",
        cycle.stderr
    );
    let own = ws.run(&["task", "dep", "add", &docs, &docs]);
    assert_eq!(own.code, Some(2));
    assert!(
        own.stderr.contains("cannot depend on itself"),
        "{}",
        own.stderr
    );
    let unknown = ws.run(&["task", "dep", "add", &docs, "TASK-404"]);
    assert_eq!(unknown.code, Some(3), "{unknown:#?}");
    assert!(unknown.stderr.contains("TASK-404"));
    let never_started = ws.run(&["task", "done", &docs]);
    assert_eq!(never_started.code, Some(4), "{never_started:#?}");
    assert!(
        never_started.stderr.contains("never started"),
        "{}",
        never_started.stderr
    );
    let blocked = ws.run(&["task", "start", &queries]);
    assert_eq!(blocked.code, Some(4));
    assert!(
        blocked.stderr.contains(&format!("blocked by {schema}")),
        "{}",
        blocked.stderr
    );
    let bad_kind = ws.run(&["remember", "x", "--kind", "wish"]);
    assert_eq!(bad_kind.code, Some(2));
    let empty = ws.run(&["task", "add", " "]);
    assert_eq!(empty.code, Some(2), "{empty:#?}");

    ws.run(&["task", "start", &schema]).ok();
    ws.run(&["task", "done", &schema, "--note", "v1 tables"])
        .ok();
    assert_eq!(show(&ws, &queries)["status"], "pending");
    assert_eq!(show(&ws, &api)["status"], "blocked");
    let listed = ws
        .run(&["task", "list", "--label", "db", "--json"])
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let task = &listed[0];
    assert_eq!(task["id"], schema.as_str());
    assert_eq!(task["status"], "succeeded");
    assert_eq!(task["note"], "v1 tables");
    for field in [
        "title",
        "depends_on",
        "created_at",
        "started_at",
        "finished_at",
    ] {
        assert!(
            task.get(field).is_some(),
            "task list JSON lacks {field}: {task:#}"
        );
    }
}

#[test]
fn the_snapshot_follows_every_save_trigger() {
    let ws = Ws::new();
    fs::write(ws.root().join("Cargo.toml"), "[package]\n").unwrap();
    let with_session = |args: &[&str]| {
        let mut command = ws.command(args);
        command.env("TASKDAEMON_SESSION", "conv-7");
        run_command(command, COMMAND_TIMEOUT).ok()
    };
    let first = with_session(&["task", "add", "Port the parser"]).last_line();
    let snap = snapshot(&ws);
    assert_eq!(snap["session_id"], "conv-7");
    assert!(snap["current_task"].is_null());

    with_session(&["task", "start", &first]);
    with_session(&["task", "context", &first, "--file", "src/parse.rs"]);
    with_session(&[
        "remember",
        "keep the old grammar",
        "--kind",
        "decision",
        "--task",
        &first,
    ]);
    with_session(&["remember", "run tests with --locked", "--kind", "pattern"]);
    let snap = snapshot(&ws);
    let keys: HashSet<&str> = snap
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "session_id",
        "started_at",
        "current_task",
        "completed_tasks",
        "memory",
    ] {
        assert!(keys.contains(key), "current.json lacks {key}: {snap:#}");
    }
    let current = &snap["current_task"];
    assert_eq!(current["id"], first.as_str());
    assert_eq!(current["name"], "Port the parser");
    assert_eq!(current["status"], "in_progress", "the seed's status");
    assert_eq!(current["state"], "running", "ours, beside it");
    assert!(current["started_at"].is_string());
    assert_eq!(
        current["context"]["files_modified"],
        serde_json::json!(["src/parse.rs"])
    );
    assert_eq!(
        current["context"]["decisions"],
        serde_json::json!(["keep the old grammar"])
    );
    assert_eq!(
        snap["memory"]["project_type"], "rust",
        "detected from Cargo.toml"
    );
    assert_eq!(
        snap["memory"]["learned_patterns"],
        serde_json::json!(["run tests with --locked"])
    );
    assert_eq!(snap["memory"]["key_decisions"][0], "keep the old grammar");

    with_session(&["task", "done", &first]);
    let snap = snapshot(&ws);
    assert!(snap["current_task"].is_null());
    let done = &snap["completed_tasks"][0];
    assert_eq!(done["id"], first.as_str());
    assert!(done["completed_at"].is_string());
    assert!(done["duration_seconds"].as_f64().unwrap() >= 0.0);

    // The session end is a trigger too, and is recorded.
    with_session(&["session", "end"]);
    let session = ws.run(&["session", "show", "conv-7", "--json"]).ok().json();
    assert!(session["ended_at"].is_string(), "{session:#}");

    // A project type an agent recorded wins over the guess.
    with_session(&[
        "remember",
        "rust workspace with a web UI",
        "--kind",
        "fact",
        "--key",
        "project_type",
    ]);
    assert_eq!(
        snapshot(&ws)["memory"]["project_type"],
        "rust workspace with a web UI"
    );
}

#[test]
fn resume_and_rehydrate_show_where_work_stands() {
    let ws = Ws::new();
    let current = add(&ws, &["Fix the flaky reconnect"]);
    let next = add(&ws, &["Add metrics", "--priority", "urgent"]);
    ws.run(&["task", "start", &current]).ok();
    ws.run(&["task", "context", &current, "--file", "src/ws.rs"])
        .ok();
    ws.run(&[
        "remember",
        "retry with jitter",
        "--kind",
        "decision",
        "--task",
        &current,
    ])
    .ok();

    let resume = ws.run(&["task", "resume", "--json"]).ok().json();
    assert_eq!(resume["current_task"]["id"], current.as_str());
    assert_eq!(resume["current_task"]["files_modified"][0], "src/ws.rs");
    assert_eq!(
        resume["current_task"]["decisions"][0]["text"],
        "retry with jitter"
    );
    assert_eq!(resume["ready"][0]["id"], next.as_str());
    let kinds: Vec<&str> = resume["last_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"context_updated"), "{kinds:?}");

    let text = ws.run(&["task", "resume"]).ok().stdout;
    assert!(
        text.contains(&format!("- {current} Fix the flaky reconnect")),
        "{text}"
    );

    let md = ws.run(&["rehydrate", "--peek"]).ok().stdout;
    assert!(md.contains("## Current task"), "{md}");
    assert!(
        md.contains(&format!("- {current} Fix the flaky reconnect")),
        "{md}"
    );
    assert!(md.contains("decided: retry with jitter"), "{md}");
    assert!(
        md.contains(&format!("- {next} Add metrics (priority 20)")),
        "{md}"
    );
    // Still within a small budget, the current task survives.
    let small = ws
        .run(&["rehydrate", "--peek", "--budget", "70"])
        .ok()
        .stdout;
    assert!(small.chars().count() <= 280, "{small}");
    assert!(
        !small.contains("Add metrics"),
        "ready work is cut first: {small}"
    );
    assert!(small.contains(&current), "{small}");
}

#[test]
fn search_finds_tasks_memory_and_archived_history_by_rank() {
    let ws = Ws::new();
    let task = add(
        &ws,
        &[
            "Websocket reconnect drops frames",
            "--description",
            "seen on slow links",
        ],
    );
    add(&ws, &["Unrelated chore"]);
    ws.run(&[
        "remember",
        "the websocket server lives in crates/web",
        "--kind",
        "fact",
    ])
    .ok();
    ws.run(&["task", "start", &task]).ok();
    ws.run(&[
        "task",
        "fail",
        &task,
        "--reason",
        "needs a heartbeat protocol",
    ])
    .ok();

    let hits = ws.run(&["search", "websocket", "--json"]).ok().json();
    let hits = hits.as_array().unwrap();
    assert_eq!(hits[0]["id"], task.as_str(), "title match first: {hits:#?}");
    assert!(hits.iter().any(|h| h["source"] == "memory"), "{hits:#?}");
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // The failure reason is in the task (note) and in its history event.
    let before = ws.run(&["search", "heartbeat", "--json"]).ok().json();
    assert!(
        before
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["source"] == "history")
    );

    // Archive everything; history and search still see it.
    let events_before = ws.run(&["history", "--json"]).ok().stdout.lines().count();
    let archived = ws
        .run(&["archive", "--older-than", "0s", "--json"])
        .ok()
        .json();
    assert_eq!(archived["events"].as_u64().unwrap() as usize, events_before);
    let events_after = ws.run(&["history", "--json"]).ok().stdout;
    assert_eq!(events_after.lines().count(), events_before);
    let mine = ws.run(&["history", "--task", &task, "--json"]).ok().stdout;
    let kinds: Vec<String> = mine
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["created", "started", "finished"]);
    let after = ws.run(&["search", "heartbeat", "--json"]).ok().json();
    assert_eq!(after, before, "archiving changes no search result");

    let none = ws.run(&["search", "zebra"]).ok();
    assert!(none.stdout.is_empty() && none.stderr.contains("nothing matches"));
    let unknown = ws.run(&["history", "--task", "TASK-99"]);
    assert_eq!(unknown.code, Some(3));
}

#[test]
fn export_and_import_round_trip_in_both_formats() {
    let ws = Ws::new();
    let a = add(&ws, &["first", "--label", "x"]);
    add(
        &ws,
        &["second", "--after", &a, "--description", "needs first"],
    );
    ws.run(&["task", "start", &a]).ok();
    ws.run(&[
        "remember",
        "decided A",
        "--kind",
        "decision",
        "--task",
        &a,
        "--key",
        "k",
    ])
    .ok();
    let process = ws.spawn(&["--", "true"]);
    ws.wait_status(&process, "succeeded");
    ws.run(&["archive", "--older-than", "0s"]).ok();
    ws.run(&["task", "done", &a]).ok();

    for format in ["jsonl", "json"] {
        let file = ws.root().join(format!("export.{format}"));
        let file_arg = file.to_str().unwrap();
        ws.run(&["export", "--format", format, "--output", file_arg])
            .ok();
        let target = Ws::new();
        let imported = target.run(&["import", file_arg]).ok();
        assert!(
            imported.stdout.contains("imported 3 tasks, 1 memories"),
            "{imported:#?}"
        );
        let again = target.run(&["export", "--format", format]).ok().stdout;
        assert_eq!(
            again,
            fs::read_to_string(&file).unwrap(),
            "{format} round trip"
        );
        assert_eq!(show(&target, &a)["status"], "succeeded");
        assert!(target.root().join(".auto-dev/tasks/current.json").exists());
        // Importing twice is refused and changes nothing.
        let twice = target.run(&["import", file_arg]);
        assert_eq!(twice.code, Some(4), "{twice:#?}");
    }

    // A truncated file names where it broke and imports nothing.
    let full = fs::read_to_string(ws.root().join("export.jsonl")).unwrap();
    let cut = &full[..full.len() / 2];
    let broken = ws.root().join("broken.jsonl");
    fs::write(&broken, cut).unwrap();
    let target = Ws::new();
    let failed = target.run(&["import", broken.to_str().unwrap()]);
    assert_eq!(failed.code, Some(2), "{failed:#?}");
    assert!(
        failed.stderr.contains("broken.jsonl: line "),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("nothing was imported"));
    let listed = target.run(&["task", "list", "--json"]).ok().json();
    assert_eq!(listed, serde_json::json!([]));
}

#[test]
fn repair_rewrites_corrupt_projections_and_backup_is_a_working_copy() {
    let ws = Ws::new();
    let id = add(&ws, &["something"]);
    fs::write(
        ws.root().join(".auto-dev/tasks/current.json"),
        "{\"session_id\": nul",
    )
    .unwrap();
    let registry = ws.root().join(".claude/process_registry.json");
    fs::create_dir_all(registry.parent().unwrap()).unwrap();
    fs::write(&registry, "").unwrap();

    let report = ws.run(&["repair", "--json"]).ok().json();
    assert_eq!(report["problems_found"], serde_json::json!([]));
    let projections = report["projections"].as_array().unwrap();
    assert!(
        projections.iter().all(|p| p["rewritten"] == true),
        "{report:#}"
    );
    assert!(
        projections[0]["found"]
            .as_str()
            .unwrap()
            .starts_with("corrupt (")
            && projections[0]["found"].as_str().unwrap().contains("line 1"),
        "{report:#}"
    );
    assert!(
        projections[1]["found"]
            .as_str()
            .unwrap()
            .starts_with("corrupt")
    );
    assert_eq!(snapshot(&ws)["version"].as_i64().unwrap(), 1);
    let registry: Value = serde_json::from_str(&fs::read_to_string(&registry).unwrap()).unwrap();
    assert!(registry["processes"].is_array());

    let backup = ws.run(&["backup"]).ok().last_line();
    let copy = Ws::new();
    fs::copy(&backup, copy.db_path()).unwrap();
    assert_eq!(show(&copy, &id)["title"], "something");
}

#[test]
fn a_hundred_concurrent_writers_lose_nothing() {
    const WRITERS: usize = 100;
    let ws = Ws::new();
    let barrier = Arc::new(Barrier::new(WRITERS));
    let handles: Vec<_> = (0..WRITERS)
        .map(|n| {
            let mut command = ws.command(&["task", "add", &format!("work item {n}")]);
            command.env("TASKDAEMON_SESSION", format!("agent-{}", n % 7));
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                run_command(command, COMMAND_TIMEOUT)
            })
        })
        .collect();
    let runs: Vec<Run> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let failed: Vec<&Run> = runs.iter().filter(|r| !r.success()).collect();
    assert!(
        failed.is_empty(),
        "{} writers failed: {failed:#?}",
        failed.len()
    );
    for run in &runs {
        assert!(!run.stderr.contains("locked"), "{run:#?}");
    }
    let ids: HashSet<String> = runs.iter().map(Run::last_line).collect();
    assert_eq!(ids.len(), WRITERS);
    let listed = ws.run(&["task", "list", "--json"]).ok().json();
    let titles: HashSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect();
    let expected: HashSet<String> = (0..WRITERS).map(|n| format!("work item {n}")).collect();
    assert_eq!(titles, expected);
    // The snapshot reflects the last state and is whole.
    assert_eq!(
        snapshot(&ws)["version"].as_i64().unwrap(),
        WRITERS as i64,
        "the last writer wrote the newest snapshot"
    );
}

#[test]
fn writers_killed_mid_write_lose_nothing_acknowledged() {
    let ws = Ws::new();
    let mut acknowledged = Vec::new();
    for round in 0..6 {
        // Start a batch of writers and kill half of them at staggered moments.
        let mut children = Vec::new();
        for n in 0..10 {
            let mut command = ws.command(&["task", "add", &format!("round {round} item {n}")]);
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            children.push(command.spawn().expect("spawn writer"));
        }
        for (n, child) in children.iter().enumerate() {
            if n % 2 == 1 {
                thread::sleep(Duration::from_millis(3 * n as u64));
                sigkill(child.id() as i32);
            }
        }
        for child in children {
            let output = child.wait_with_output().expect("wait writer");
            if output.status.success() {
                let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
                acknowledged.push(id);
            }
        }
    }
    assert!(acknowledged.len() >= 30, "the unkilled writers all succeed");
    // Reopen: every acknowledged task is there and the store is healthy.
    for id in &acknowledged {
        assert_eq!(show(&ws, id)["status"], "pending", "{id} lost");
    }
    let report = ws.run(&["repair", "--json"]).ok().json();
    assert_eq!(
        report["problems_found"],
        serde_json::json!([]),
        "{report:#}"
    );
    assert_eq!(report["store"]["remaining"], serde_json::json!([]));
    // And the store takes new writes.
    add(&ws, &["after the crashes"]);
}

#[test]
fn the_daemon_archives_old_history_and_it_stays_searchable() {
    let ws = Ws::new();
    ws.write_config("[history]\narchive = true\narchive_after = \"0s\"\n");
    let task = add(&ws, &["Calibrate the flux capacitor"]);
    let events_before = ws.run(&["history", "--json"]).ok().stdout.lines().count();
    // Any daemon start runs the first archive pass.
    ws.run(&["start"]).ok();
    let archived = || -> i64 {
        let db = rusqlite::Connection::open(ws.db_path()).unwrap();
        db.query_row(
            "SELECT coalesce(sum(count), 0) FROM event_archive",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    common::eventually("the daemon archives the history", || {
        archived() >= events_before as i64
    });
    let history = ws.run(&["history", "--task", &task, "--json"]).ok().stdout;
    assert_eq!(history.lines().count(), 1, "{history}");
    let hits = ws.run(&["search", "capacitor", "--json"]).ok().json();
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .any(|h| h["source"] == "history"),
        "{hits:#}"
    );
}
