//! Git-friendly sync with real git: two clones of a repository keep their
//! tracked work in an exported `tasks.jsonl`, diverge, and merge through
//! `git merge` with `taskdaemon merge-driver` installed as the merge driver;
//! `import --merge` then brings the merged work into a clone's store.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{Ws, bin};
use serde_json::Value;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "git {args:?} failed: {text}");
    text
}

/// Mints hash ids, so the clones' new tasks never share an id.
fn use_hash_ids(ws: &Ws) {
    let path = ws.state_dir().join("config.toml");
    let config = fs::read_to_string(&path).unwrap();
    assert!(config.contains("ids = \"counter\""), "{config}");
    fs::write(&path, config.replace("ids = \"counter\"", "ids = \"hash\"")).unwrap();
}

fn add(ws: &Ws, title: &str) -> String {
    ws.run(&["task", "add", title]).ok().last_line()
}

fn export_and_commit(ws: &Ws, message: &str) {
    ws.run(&["export", "--tracked", "--output", "tasks.jsonl"])
        .ok();
    git(ws.root(), &["add", "tasks.jsonl"]);
    git(ws.root(), &["commit", "-q", "-m", message]);
}

fn install_driver(repo: &Path) {
    let driver = format!("{} merge-driver %O %A %B", bin().display());
    git(repo, &["config", "merge.taskdaemon.driver", &driver]);
    git(
        repo,
        &["config", "merge.taskdaemon.name", "taskdaemon export merge"],
    );
}

/// Tasks of an export by id.
fn tasks_in(file: &Path) -> Vec<Value> {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["type"] == "task")
        .collect()
}

fn task<'a>(tasks: &'a [Value], id: &str) -> &'a Value {
    tasks
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("{id} missing from {tasks:#?}"))
}

#[test]
fn diverging_clones_merge_through_git_without_conflict_or_loss() {
    // Clone A: the repository, its tracked work exported into it.
    let a = Ws::new();
    use_hash_ids(&a);
    git(a.root(), &["init", "-q", "-b", "main"]);
    fs::write(a.root().join(".gitignore"), ".taskdaemon/\ntasks/\n").unwrap();
    fs::write(
        a.root().join(".gitattributes"),
        "tasks.jsonl merge=taskdaemon\n",
    )
    .unwrap();
    git(a.root(), &["add", ".gitignore", ".gitattributes"]);
    let shared = add(&a, "shared work");
    a.run(&["remember", "memory stays per clone", "--kind", "note"])
        .ok();
    let finished = add(&a, "finished on B");
    export_and_commit(&a, "tracked work");

    // Clone B: a clone of the repository, its store loaded from the export.
    let b = Ws::uninitialised();
    git(b.root(), &["clone", "-q", a.root().to_str().unwrap(), "."]);
    b.run(&["init"]).ok();
    use_hash_ids(&b);
    b.run(&["import", "tasks.jsonl"]).ok();

    // They diverge: both add a task and label the shared one; B finishes one.
    let from_a = add(&a, "added on A");
    a.run(&["task", "edit", &shared, "--label", "from-a"]).ok();
    export_and_commit(&a, "work on A");
    let from_b = add(&b, "added on B");
    // Memory is numbered per clone (both make MEM-2): it stays out of the file.
    b.run(&["remember", "B's own note", "--kind", "note"]).ok();
    a.run(&["remember", "A's own note", "--kind", "note"]).ok();
    b.run(&["task", "edit", &shared, "--label", "from-b"]).ok();
    b.run(&["task", "start", &finished]).ok();
    b.run(&["task", "done", &finished, "--note", "done on B"])
        .ok();
    export_and_commit(&b, "work on B");
    assert_ne!(from_a, from_b, "hash ids of two clones differ");

    // A merges B's branch with the driver: no conflict.
    install_driver(a.root());
    git(
        a.root(),
        &["fetch", "-q", b.root().to_str().unwrap(), "main"],
    );
    let merged = git(a.root(), &["merge", "--no-edit", "FETCH_HEAD"]);
    assert!(!merged.contains("CONFLICT"), "{merged}");
    let text = fs::read_to_string(a.root().join("tasks.jsonl")).unwrap();
    assert!(!text.contains("\"type\":\"event\""), "{text}");
    assert!(!text.contains("\"type\":\"memory\""), "{text}");
    let tasks = tasks_in(&a.root().join("tasks.jsonl"));
    let ids: Vec<&str> = tasks.iter().filter_map(|t| t["id"].as_str()).collect();
    for id in [&shared, &finished, &from_a, &from_b] {
        assert!(ids.contains(&id.as_str()), "{id} lost: {ids:?}");
    }
    let mut labels: Vec<&str> = task(&tasks, &shared)["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    labels.sort();
    assert_eq!(labels, ["from-a", "from-b"]);
    assert_eq!(task(&tasks, &finished)["status"], "succeeded");
    assert_eq!(task(&tasks, &finished)["note"], "done on B");

    // The merged file applies to A's store, which holds work already.
    let applied = a.run(&["import", "--merge", "tasks.jsonl"]).ok();
    assert!(applied.stdout.contains("1 tasks added"), "{applied:?}");
    let shown = a.run(&["task", "show", &from_b, "--json"]).ok().json();
    assert_eq!(shown["title"], "added on B");
    let shown = a.run(&["task", "show", &finished, "--json"]).ok().json();
    assert_eq!(shown["status"], "succeeded");
    let shown = a.run(&["task", "show", &shared, "--json"]).ok().json();
    assert_eq!(shown["labels"].as_array().map(Vec::len), Some(2), "{shown}");

    // Exporting again gives the merged file back: A's work and B's agree.
    let again = a.root().join("again.jsonl");
    a.run(&["export", "--tracked", "--output", again.to_str().unwrap()])
        .ok();
    let again = tasks_in(&again);
    for id in [&shared, &finished, &from_a, &from_b] {
        assert_eq!(task(&again, id), task(&tasks, id), "{id}");
    }
}

#[test]
fn colliding_counter_ids_are_a_conflict_not_a_silent_merge() {
    let dir = tempfile::tempdir().unwrap();
    let line = |id: &str, uuid: &str| {
        format!(
            "{{\"type\":\"header\",\"format\":\"taskdaemon-export\",\"version\":1,\"schema\":1}}\n\
             {{\"type\":\"task\",\"id\":\"{id}\",\"uuid\":\"{uuid}\",\"created_at\":\"x\",\"updated_at\":\"x\"}}\n"
        )
    };
    let base = dir.path().join("base");
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    fs::write(&base, line("TASK-1", "u1").lines().next().unwrap()).unwrap();
    fs::write(&ours, line("TASK-2", "u2")).unwrap();
    fs::write(&theirs, line("TASK-2", "u3")).unwrap();
    let run = common::run_command(
        {
            let mut c = Command::new(bin());
            c.args(["merge-driver"]).arg(&base).arg(&ours).arg(&theirs);
            c
        },
        common::COMMAND_TIMEOUT,
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("TASK-2"), "{run:?}");
    assert_eq!(
        fs::read_to_string(&ours).unwrap(),
        line("TASK-2", "u2"),
        "ours untouched"
    );

    fs::write(&theirs, "not json\n").unwrap();
    let run = common::run_command(
        {
            let mut c = Command::new(bin());
            c.args(["merge-driver"]).arg(&base).arg(&ours).arg(&theirs);
            c
        },
        common::COMMAND_TIMEOUT,
    );
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("line 1"), "{run:?}");
}

#[test]
fn export_is_in_a_stable_order_with_sorted_keys() {
    let ws = Ws::new();
    for n in 1..=11 {
        add(&ws, &format!("task {n}"));
    }
    let first = ws.run(&["export"]).ok().stdout;
    let second = ws.run(&["export"]).ok().stdout;
    assert_eq!(first, second, "the same store exports the same bytes");
    let mut ids = Vec::new();
    for line in first.lines() {
        let mut value: Value = serde_json::from_str(line).unwrap();
        value.sort_all_objects();
        assert_eq!(serde_json::to_string(&value).unwrap(), line, "keys sorted");
        if value["type"] == "task" {
            ids.push(value["id"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (1..=11).map(|n| format!("TASK-{n}")).collect();
    assert_eq!(ids, expected, "tasks by id, TASK-2 before TASK-10");
}

#[test]
fn import_merge_refuses_an_id_that_names_another_task() {
    let ws = Ws::new();
    let mine = add(&ws, "mine");
    let file = ws.root().join("other.jsonl");
    ws.run(&["export", "--tracked", "--output", file.to_str().unwrap()])
        .ok();
    // The other clone's TASK-1 is another task: same id, another uuid.
    let text = fs::read_to_string(&file).unwrap();
    let other: String = text
        .lines()
        .map(|line| {
            let mut record: Value = serde_json::from_str(line).unwrap();
            if record["type"] == "task" {
                record["uuid"] = Value::from("01a22ad6-0000-7000-8000-000000000000");
                record["name"] = Value::from("theirs");
            }
            format!("{record}\n")
        })
        .collect();
    fs::write(&file, other).unwrap();
    let run = ws.run(&["import", "--merge", file.to_str().unwrap()]);
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr.contains(&mine) && run.stderr.contains("collided"),
        "{run:?}"
    );
    let shown = ws.run(&["task", "show", &mine, "--json"]).ok().json();
    assert_eq!(shown["title"], "mine", "nothing was imported");
}
