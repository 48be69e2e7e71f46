//! Typed links, subtasks, `next`, `ready --graph`, compact pages and claims
//! through the real binary; the claim race runs 20 real processes against
//! SQLite and against PostgreSQL (when `TASKDAEMON_TEST_DATABASE_URL` is set).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier};
use std::thread;

use common::{COMMAND_TIMEOUT, Run, Ws, run_command};
use serde_json::Value;
use taskdaemon_core::NewTracked;
use taskdaemon_store::testing::TestSchema;
use taskdaemon_store::{SqliteStore, Store};

fn add(ws: &Ws, args: &[&str]) -> String {
    let mut all = vec!["task", "add"];
    all.extend_from_slice(args);
    ws.run(&all).ok().last_line()
}

#[test]
fn links_subtasks_next_and_graph() {
    let ws = Ws::new();
    let schema = add(&ws, &["schema", "--priority", "high"]);
    let api = add(&ws, &["api"]);
    let docs = add(&ws, &["docs"]);
    ws.run(&["task", "link", &schema, "blocks", &api]).ok();
    ws.run(&["task", "link", &docs, "discovered-from", &api])
        .ok();
    let cycle = ws.run(&["task", "link", &api, "blocks", &schema]);
    assert_eq!(cycle.code, Some(2), "{cycle:#?}");
    assert!(
        cycle
            .stderr
            .contains(&format!("{schema} -> {api} -> {schema}")),
        "{cycle:#?}"
    );
    let bad = ws.run(&["task", "link", &api, "depends", &schema]);
    assert_eq!(bad.code, Some(2), "{bad:#?}");
    assert!(
        bad.stderr.contains("unknown link type 'depends'"),
        "{bad:#?}"
    );

    let shown = ws.run(&["task", "show", &api]).ok().stdout;
    assert!(shown.contains(&format!("blocked by {schema}")), "{shown}");
    assert!(shown.contains(&format!("led to {docs}")), "{shown}");
    let json = ws.run(&["task", "show", &api, "--json"]).ok().json();
    assert_eq!(json["links"][0]["kind"], "blocks", "{json:#}");

    // Subtasks: ids, the roll-up, the tree.
    let one = add(&ws, &["part one", "--parent", &schema]);
    let two = add(&ws, &["part two", "--parent", &schema]);
    assert_eq!(one, format!("{schema}.1"));
    assert_eq!(two, format!("{schema}.2"));
    ws.run(&["task", "start", &schema]).ok();
    ws.run(&["task", "start", &two]).ok();
    ws.run(&["task", "done", &two]).ok();
    let tree = ws.run(&["task", "tree", &schema]).ok().stdout;
    assert!(tree.contains("[1/2 done]"), "{tree}");
    assert!(
        tree.contains(&format!("  {one} pending part one")),
        "{tree}"
    );
    assert!(tree.contains(&format!("blocks {api}")), "{tree}");
    let list = ws.run(&["task", "list"]).ok().stdout;
    assert!(list.contains("[1/2 done]"), "{list}");

    // next: docs is older and has the same priority, but the subtask of the
    // task in progress comes first ("finish what is started").
    let next = ws.run(&["task", "next", "--explain"]).ok().stdout;
    assert!(next.starts_with(&format!("{one} part one")), "{next}");
    assert!(next.contains("rule 1"), "{next}");
    let next = ws.run(&["task", "next", "--json"]).ok().json();
    assert_eq!(next["rule"], "subtask-of-running");
    assert_eq!(next["runner_up"]["id"], docs.as_str());

    let graph = ws.run(&["task", "ready", "--graph", "--json"]).ok().json();
    assert_eq!(graph["layers"][0], serde_json::json!([docs, one]));
    assert_eq!(graph["layers"][1], serde_json::json!([api]));
    let done_parent = ws.run(&["task", "done", &schema]);
    assert_eq!(done_parent.code, Some(4), "{done_parent:#?}");
    assert!(
        done_parent.stderr.contains("open subtask"),
        "{done_parent:#?}"
    );

    ws.run(&["task", "unlink", &schema, &api]).ok();
    let shown = ws.run(&["task", "show", &api, "--json"]).ok().json();
    assert_eq!(shown["status"], "pending");
    let gone = ws.run(&["task", "unlink", &schema, "blocks", &api]);
    assert_eq!(gone.code, Some(3), "{gone:#?}");
}

#[test]
fn a_thousand_tasks_page_within_a_tool_result() {
    let ws = Ws::new();
    ws.run(&["task", "list"]).ok();
    let store = SqliteStore::open(&ws.db_path()).unwrap();
    for n in 0..1000 {
        let title = format!(
            "task number {n} with a title long enough to be shortened in the compact listing"
        );
        store
            .create_tracked(
                &NewTracked {
                    title,
                    ..NewTracked::default()
                },
                "t",
            )
            .unwrap();
    }
    drop(store);
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut args = vec!["task", "list", "--format", "compact", "--limit", "250"];
        if let Some(c) = &cursor {
            args.extend(["--cursor", c.as_str()]);
        }
        let page = ws.run(&args).ok().stdout;
        pages += 1;
        assert!(page.len() <= 25_000, "page {pages} is {} chars", page.len());
        cursor = None;
        for line in page.lines() {
            match line.strip_prefix("# more: --cursor ") {
                Some(next) => cursor = Some(next.to_owned()),
                None => assert!(seen.insert(line.split(' ').next().unwrap().to_owned())),
            }
        }
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    assert_eq!(pages, 4);
}

/// 20 agents run `task claim --next` at once against 10 ready tasks.
fn claim_race(ws: &Ws, url: Option<&str>) {
    for n in 0..10 {
        let title = format!("ready {n}");
        let mut args = vec!["task", "add", title.as_str()];
        if let Some(url) = url {
            args.splice(0..0, ["--database-url", url]);
        }
        ws.run(&args).ok();
    }
    const AGENTS: usize = 20;
    let barrier = Arc::new(Barrier::new(AGENTS));
    let handles: Vec<_> = (0..AGENTS)
        .map(|n| {
            let session = format!("agent-{n}");
            let mut args = vec!["task", "claim", "--next", "--session", session.as_str()];
            if let Some(url) = url {
                args.splice(0..0, ["--database-url", url]);
            }
            let command = ws.command(&args);
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                run_command(command, COMMAND_TIMEOUT)
            })
        })
        .collect();
    let runs: Vec<Run> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut nothing = 0;
    for run in &runs {
        match run.code {
            Some(0) => *taken.entry(run.last_line()).or_default() += 1,
            Some(3) if run.stderr.contains("nothing ready to claim") => nothing += 1,
            _ => panic!("unexpected claim result: {run:#?}"),
        }
    }
    assert_eq!(taken.len(), 10, "{taken:?}");
    assert!(
        taken.values().all(|&n| n == 1),
        "a task was taken twice: {taken:?}"
    );
    assert_eq!(nothing, 10);
    let mut list = vec!["task", "list", "--json"];
    if let Some(url) = url {
        list.splice(0..0, ["--database-url", url]);
    }
    let tasks = ws.run(&list).ok().json();
    let holders: HashSet<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t: &Value| {
            assert_eq!(t["status"], "running", "{t:#}");
            t["claim"]["by"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        holders.len(),
        10,
        "each claimer holds one task: {holders:?}"
    );
}

#[test]
fn twenty_claimers_ten_tasks_sqlite() {
    claim_race(&Ws::new(), None);
}

#[test]
fn twenty_claimers_ten_tasks_postgres() {
    let Some(schema) = TestSchema::create("tracked_links_claim_race") else {
        return;
    };
    claim_race(&Ws::new(), Some(&schema.url()));
}

#[test]
fn stale_claims_are_listed_and_taken_over() {
    let ws = Ws::new();
    let id = add(&ws, &["long job"]);
    let claimed = ws.run(&["task", "claim", &id, "--session", "a1", "--lease", "0s"]);
    assert_eq!(claimed.ok().last_line(), id);
    let stale = ws.run(&["task", "stale", "--json"]).ok().json();
    assert_eq!(stale[0]["id"], id.as_str(), "{stale:#}");
    assert_eq!(stale[0]["claim"]["by"], "cli:a1");
    // Any call by the claiming agent renews its lease.
    ws.run(&[
        "task",
        "context",
        &id,
        "--file",
        "src/a.rs",
        "--session",
        "a1",
    ])
    .ok();
    let stale = ws.run(&["task", "stale", "--json"]).ok().json();
    assert_eq!(stale, serde_json::json!([]));
    let refused = ws.run(&["task", "claim", &id, "--session", "a2"]);
    assert_eq!(refused.code, Some(4), "{refused:#?}");

    let id = add(&ws, &["abandoned job"]);
    ws.run(&["task", "claim", &id, "--session", "a1", "--lease", "0s"])
        .ok();
    let over = ws.run(&["task", "claim", &id, "--session", "a2"]).ok();
    assert_eq!(over.last_line(), id);
    let refused = ws.run(&["task", "claim", &id, "--session", "a3"]);
    assert_eq!(refused.code, Some(4), "{refused:#?}");
    assert!(refused.stderr.contains("claimed by cli:a2"), "{refused:#?}");
    let anonymous = ws.run(&["task", "claim", "--next"]);
    assert_eq!(anonymous.code, Some(2), "{anonymous:#?}");
}
