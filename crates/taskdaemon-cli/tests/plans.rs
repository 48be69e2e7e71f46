//! Plans through the real binary on a real git repository: `new-plan`
//! refuses a repository it cannot build in, `plan ...` commands move a plan
//! through its life, `plan show --json` prints the tree with costs, and
//! rehydrate and `task resume` show plans in progress and questions
//! waiting for the human. What the daemon's driver records (specs, phases,
//! costs, a loop's query) is written through the store, as the driver will.

mod common;

use std::fs;
use std::process::Command;

use common::Ws;
use serde_json::Value;
use taskdaemon_core::pipeline::{
    MessageKind, NewMessage, NewPhase, NewSpec, PipelineCost, PipelineStatus,
};
use taskdaemon_store::{SqliteStore, Store};

fn git(ws: &Ws, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(ws.root())
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A workspace that is a git repository on `main` with one commit.
fn repo() -> Ws {
    let ws = Ws::new();
    git(&ws, &["init", "--quiet", "--initial-branch=main"]);
    fs::write(ws.root().join("README.md"), "hello\n").unwrap();
    git(&ws, &["add", "README.md"]);
    git(&ws, &["commit", "--quiet", "-m", "first"]);
    ws
}

fn store(ws: &Ws) -> SqliteStore {
    SqliteStore::open(&ws.db_path()).unwrap()
}

fn show(ws: &Ws, id: &str) -> Value {
    ws.run(&["plan", "show", id, "--json"]).ok().json()
}

fn spec(name: &str, deps: &[&str]) -> NewSpec {
    NewSpec {
        name: name.to_owned(),
        title: format!("Spec {name}"),
        body: "build it".to_owned(),
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        priority: 0,
    }
}

fn phase(name: &str) -> NewPhase {
    NewPhase {
        name: name.to_owned(),
        title: format!("Phase {name}"),
        body: "write the file".to_owned(),
        validation: format!("test -f {name}.txt"),
    }
}

#[test]
fn new_plan_refuses_a_repository_it_cannot_build_in_and_writes_nothing() {
    let ws = Ws::new();
    let no_repo = ws.run(&["new-plan", "Add OAuth login"]);
    assert_eq!(no_repo.code, Some(2), "{no_repo:#?}");
    assert!(
        no_repo.stderr.contains("is not a git repository"),
        "{no_repo:#?}"
    );

    git(&ws, &["init", "--quiet", "--initial-branch=main"]);
    fs::write(ws.root().join("README.md"), "hello\n").unwrap();
    git(&ws, &["add", "README.md"]);
    git(&ws, &["commit", "--quiet", "-m", "first"]);
    fs::write(ws.root().join("README.md"), "changed\n").unwrap();
    let dirty = ws.run(&["new-plan", "Add OAuth login"]);
    assert_eq!(dirty.code, Some(2), "{dirty:#?}");
    assert!(
        dirty.stderr.contains("uncommitted changes (README.md)"),
        "{dirty:#?}"
    );
    git(&ws, &["checkout", "--quiet", "--", "README.md"]);

    let missing = ws.run(&["new-plan", "Add OAuth login", "--target", "release"]);
    assert_eq!(missing.code, Some(2), "{missing:#?}");
    assert!(
        missing
            .stderr
            .contains("target branch 'release' does not exist"),
        "{missing:#?}"
    );
    let head = git(&ws, &["rev-parse", "HEAD"]);
    git(&ws, &["checkout", "--quiet", "--detach", &head]);
    let detached = ws.run(&["new-plan", "Add OAuth login"]);
    assert_eq!(detached.code, Some(2), "{detached:#?}");
    assert!(
        detached
            .stderr
            .contains("detached HEAD: check out a branch or pass --target BRANCH"),
        "{detached:#?}"
    );
    git(&ws, &["checkout", "--quiet", "main"]);
    let none = ws.run(&["plan", "list", "--all", "--json"]).ok().json();
    assert_eq!(none, Value::Array(Vec::new()), "nothing was half-created");

    // Untracked files (the workspace's own .taskdaemon/ among them) are fine.
    fs::write(ws.root().join("notes.txt"), "scratch\n").unwrap();
    let id = ws.run(&["new-plan", "Add OAuth login"]).ok().last_line();
    assert!(id.starts_with("PLAN-"), "{id}");
    let plan = show(&ws, &id);
    assert_eq!(plan["status"], "draft");
    assert_eq!(plan["target_branch"], "main");
    assert_eq!(plan["base_commit"], git(&ws, &["rev-parse", "HEAD"]));
    assert_eq!(plan["goal"], "Add OAuth login");
}

#[test]
fn plans_move_through_approve_cancel_and_resume() {
    let ws = repo();
    git(&ws, &["branch", "release"]);
    fs::write(
        ws.root().join("request.md"),
        "# Add OAuth\n\nWith GitHub.\n",
    )
    .unwrap();
    let auto = ws
        .run(&[
            "new-plan",
            "--file",
            "request.md",
            "--auto-approve",
            "--target",
            "release",
        ])
        .ok()
        .last_line();
    let auto_plan = show(&ws, &auto);
    assert_eq!(auto_plan["status"], "pending");
    assert_eq!(auto_plan["target_branch"], "release");
    assert_eq!(auto_plan["goal"], "# Add OAuth\n\nWith GitHub.");
    let twice = ws.run(&["plan", "approve", &auto]);
    assert_eq!(twice.code, Some(4), "{twice:#?}");
    assert!(
        twice.stderr.contains("only a draft plan can be approved"),
        "{twice:#?}"
    );

    let draft = ws.run(&["new-plan", "Refactor the store"]).ok().last_line();
    let listed = ws.run(&["plan", "list", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[1]["id"], draft.as_str());
    assert_eq!(listed[1]["specs_total"], 0);
    let approved = ws.run(&["plan", "approve", &draft, "--json"]).ok().json();
    assert_eq!(approved["status"], "pending");

    // The daemon's driver starts it and a merge conflict pauses a spec.
    let store = store(&ws);
    store
        .set_plan_status(&draft, PipelineStatus::Running, None, "daemon")
        .unwrap();
    store
        .add_specs(&draft, &[spec("a", &[]), spec("b", &["a"])], "loop")
        .unwrap();
    let a = format!("{draft}/a");
    store
        .set_spec_status(&a, PipelineStatus::Running, None, "daemon")
        .unwrap();
    store
        .set_spec_status(
            &a,
            PipelineStatus::Paused,
            Some("conflict in README.md"),
            "daemon",
        )
        .unwrap();
    store
        .set_plan_status(
            &draft,
            PipelineStatus::Paused,
            Some("a spec is paused"),
            "daemon",
        )
        .unwrap();
    let resumed = ws.run(&["plan", "resume", &draft, "--json"]).ok().json();
    assert_eq!(resumed["status"], "pending");
    assert_eq!(resumed["specs"][0]["status"], "pending");
    let nothing = ws.run(&["plan", "resume", &draft]);
    assert_eq!(nothing.code, Some(4), "{nothing:#?}");

    let cancelled = ws
        .run(&["plan", "cancel", &draft, "--reason", "not needed", "--json"])
        .ok()
        .json();
    assert_eq!(cancelled["status"], "cancelled");
    for spec in cancelled["specs"].as_array().unwrap() {
        assert_eq!(spec["status"], "cancelled");
        assert_eq!(spec["note"], "not needed");
    }
    let open = ws.run(&["plan", "list", "--json"]).ok().json();
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    let all = ws.run(&["plan", "list", "--all"]).ok().stdout;
    assert!(all.contains(&draft) && all.contains("cancelled"), "{all}");

    let unknown = ws.run(&["plan", "show", "PLAN-999"]);
    assert_eq!(unknown.code, Some(3), "{unknown:#?}");
    assert!(
        unknown.stderr.contains("no plan 'PLAN-999'"),
        "{unknown:#?}"
    );
    let bad = ws.run(&["plan", "approve", "TASK-1"]);
    assert_eq!(bad.code, Some(2), "{bad:#?}");
}

#[test]
fn plan_show_prints_the_tree_with_costs_that_add_up() {
    let ws = repo();
    let id = ws
        .run(&["new-plan", "Two specs", "--auto-approve"])
        .ok()
        .last_line();
    let store = store(&ws);
    store
        .set_plan_status(&id, PipelineStatus::Running, None, "daemon")
        .unwrap();
    store
        .add_specs(&id, &[spec("a", &[]), spec("b", &["a"])], "loop")
        .unwrap();
    for name in ["a", "b"] {
        let spec_id = format!("{id}/{name}");
        store
            .add_phases(&spec_id, &[phase("one"), phase("two")], "loop")
            .unwrap();
        for number in [1, 2] {
            store
                .add_pipeline_cost(
                    &format!("{spec_id}/{number}"),
                    &PipelineCost {
                        input_tokens: 1000,
                        output_tokens: 100,
                        cost_usd: 0.25,
                    },
                )
                .unwrap();
        }
    }
    // The Ralph loop of phase a/1, with one iteration's spending.
    let ralph = store
        .create_loop(
            &taskdaemon_core::NewLoop {
                name: Some(format!("{id}/a/1")),
                session: None,
                argv: vec!["ralph".to_owned()],
                workdir: ws.root().display().to_string(),
                spec: serde_json::json!({ "spec": "phase one" }),
            },
            "daemon",
        )
        .unwrap();
    let ralph = ralph.task.id;
    store.mark_loop_running(&ralph, 1, "daemon").unwrap();
    store
        .record_loop_iteration(
            &ralph,
            &taskdaemon_core::LoopIteration {
                iteration: 1,
                input_tokens: 1000,
                output_tokens: 100,
                cost_usd: 0.25,
                ..Default::default()
            },
            "daemon",
        )
        .unwrap();
    store
        .set_pipeline_loop(&format!("{id}/a/1"), Some(&ralph))
        .unwrap();
    let tree = show(&ws, &id);
    assert_eq!(tree["status"], "running");
    assert_eq!(tree["specs_total"], 2);
    let loops = &tree["specs"][0]["phases"][0]["loops"];
    assert_eq!(loops[0]["id"], ralph.as_str(), "{tree}");
    assert_eq!(loops[0]["status"], "running");
    assert_eq!(loops[0]["iterations"], 1);
    assert_eq!(loops[0]["cost_usd"], 0.25);
    assert_eq!(
        tree["specs"][0]["phases"][1]["loops"],
        serde_json::json!([])
    );
    let specs = tree["specs"].as_array().unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[1]["id"], format!("{id}/b"));
    assert_eq!(specs[1]["depends_on"], serde_json::json!(["a"]));
    assert_eq!(specs[1]["branch"], format!("td/{id}/b"));
    let phases = specs[0]["phases"].as_array().unwrap();
    assert_eq!(phases[1]["id"], format!("{id}/a/2"));
    assert_eq!(phases[1]["validation"], "test -f two.txt");
    assert_eq!(phases[1]["cost"]["input_tokens"], 1000);
    assert_eq!(specs[0]["cost"]["cost_usd"], 0.5);
    assert_eq!(tree["cost"]["input_tokens"], 4000);
    assert_eq!(tree["cost"]["output_tokens"], 400);
    assert_eq!(tree["cost"]["cost_usd"], 1.0);

    let text = ws.run(&["plan", "show", &id]).ok().stdout;
    assert!(
        text.contains(&format!("- {id}/b Spec b: pending (priority 0, after a)")),
        "{text}"
    );
    assert!(
        text.contains("2. two Phase two: pending, validate `test -f two.txt`"),
        "{text}"
    );
    assert!(text.contains("0/2 specs done, cost $1.0000"), "{text}");
    assert!(
        text.contains(&format!(
            "loop {ralph}: running, 1 iterations, $0.2500 (1000 in / 100 out)"
        )),
        "{text}"
    );
}

#[test]
fn queries_wait_in_rehydrate_until_answered_and_dead_letters_are_listed() {
    let ws = repo();
    let id = ws
        .run(&["new-plan", "Add OAuth login", "--auto-approve"])
        .ok()
        .last_line();
    let store = store(&ws);
    store
        .set_plan_status(&id, PipelineStatus::Running, None, "daemon")
        .unwrap();
    store
        .add_specs(&id, &[spec("auth", &[]), spec("ui", &["auth"])], "loop")
        .unwrap();
    let query = store
        .send_message(
            &NewMessage {
                plan: id.clone(),
                from: "auth".into(),
                to: "human".into(),
                kind: MessageKind::Query,
                body: "Which OAuth provider should I use?".into(),
            },
            "daemon",
        )
        .unwrap();

    let summary = ws.run(&["rehydrate"]).ok().stdout;
    assert!(
        summary.contains(&format!("- {id} Add OAuth login: running, 0/2 specs done")),
        "{summary}"
    );
    assert!(
        summary.contains("## Waiting for your answer (1)"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("{} ({id}, from auth, ", query.id))
            && summary.contains("Which OAuth provider should I use?"),
        "{summary}"
    );
    let resume = ws.run(&["task", "resume", "--json"]).ok().json();
    assert_eq!(resume["waiting_queries"][0]["id"], query.id.as_str());
    assert_eq!(resume["plans"][0]["id"], id.as_str());
    let resume_text = ws.run(&["task", "resume"]).ok().stdout;
    assert!(
        resume_text.contains("## Plans in progress (1)"),
        "{resume_text}"
    );
    assert!(
        resume_text.contains(&format!("taskdaemon plan answer {} TEXT", query.id)),
        "{resume_text}"
    );

    let answered = ws
        .run(&["plan", "answer", &query.id, "GitHub", "--json"])
        .ok()
        .json();
    assert_eq!(answered["delivery"], "answered");
    assert_eq!(answered["answer"], "GitHub");
    assert_eq!(
        store.message(&query.id).unwrap().answer.as_deref(),
        Some("GitHub")
    );
    let again = ws.run(&["plan", "answer", &query.id, "GitLab"]);
    assert_eq!(again.code, Some(4), "{again:#?}");
    let summary = ws.run(&["rehydrate"]).ok().stdout;
    assert!(!summary.contains("Waiting for your answer"), "{summary}");

    // A person's message goes to every loop of the plan by default.
    let sent = ws
        .run(&["plan", "message", &id, "Use the staging keys", "--json"])
        .ok()
        .json();
    assert_eq!(sent["to"], "plan");
    assert_eq!(sent["from"], "human");
    assert_eq!(sent["kind"], "share");
    let stop = ws
        .run(&[
            "plan", "message", &id, "--to", "ui", "--kind", "stop", "halt",
        ])
        .ok()
        .last_line();
    let nobody = ws.run(&["plan", "message", &id, "--to", "nobody", "hello"]);
    assert_eq!(nobody.code, Some(2), "{nobody:#?}");
    assert!(
        nobody
            .stderr
            .contains("recipient 'nobody' is not a spec of"),
        "{nobody:#?}"
    );
    let pending: Vec<String> = store
        .pending_messages(&id, "ui")
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(pending, ["Use the staging keys", "halt"]);

    // The driver could not deliver the stop: it is a dead letter with its reason.
    store
        .dead_letter(&stop, "spec ui has ended", "daemon")
        .unwrap();
    let letters = ws.run(&["plan", "dead-letters", &id, "--json"]).ok().json();
    assert_eq!(letters.as_array().unwrap().len(), 1, "{letters}");
    assert_eq!(letters[0]["id"], stop.as_str());
    assert_eq!(letters[0]["reason"], "spec ui has ended");
    let table = ws.run(&["plan", "dead-letters"]).ok().stdout;
    assert!(
        table.contains("spec ui has ended") && table.contains("human -> ui"),
        "{table}"
    );
}

/// A plan in progress with specs `auth` and `ui`, an alert and a query from
/// `auth` to the human, written as the daemon's driver writes them.
fn plan_needing_attention(ws: &Ws) -> (String, String, String) {
    let id = ws
        .run(&["new-plan", "Add OAuth login", "--auto-approve"])
        .ok()
        .last_line();
    let store = store(ws);
    store
        .set_plan_status(&id, PipelineStatus::Running, None, "daemon")
        .unwrap();
    store
        .add_specs(&id, &[spec("auth", &[]), spec("ui", &["auth"])], "loop")
        .unwrap();
    let send = |kind, body: &str| {
        store
            .send_message(
                &NewMessage {
                    plan: id.clone(),
                    from: "auth".into(),
                    to: "human".into(),
                    kind,
                    body: body.into(),
                },
                "daemon",
            )
            .unwrap()
            .id
    };
    let alert = send(MessageKind::Alert, "rebase on main conflicts in src/lib.rs");
    let query = send(MessageKind::Query, "Which OAuth provider should I use?");
    (id, alert, query)
}

#[test]
fn a_pipeline_alert_shows_once_in_rehydrate_and_in_status_while_the_plan_runs() {
    let ws = repo();
    let (id, alert, query) = plan_needing_attention(&ws);

    let peek = ws.run(&["rehydrate", "--json", "--peek"]).ok().json();
    let alerts = peek["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{peek:#}");
    assert_eq!(alerts[0]["message_id"], alert.as_str());
    assert_eq!(alerts[0]["source"], format!("{id}/auth").as_str());
    assert_eq!(peek["queries"][0]["id"], query.as_str());
    assert_eq!(peek["plans"][0]["id"], id.as_str());

    let summary = ws.run(&["rehydrate"]).ok().stdout;
    assert!(
        summary.contains(&format!(
            "- {id}/auth [{alert}]: rebase on main conflicts in src/lib.rs"
        )),
        "{summary}"
    );
    assert_eq!(
        store(&ws).message(&alert).unwrap().delivery,
        taskdaemon_core::pipeline::Delivery::Delivered,
        "a summary that showed the alert delivered it"
    );
    let again = ws.run(&["rehydrate"]).ok().stdout;
    assert!(!again.contains(&alert), "an alert shows once: {again}");
    assert!(
        again.contains(&query),
        "a query waits until answered: {again}"
    );

    let status = ws.run(&["status", "--json"]).ok().json();
    assert_eq!(status["pipeline"]["plans"][0]["id"], id.as_str());
    assert_eq!(status["pipeline"]["queries"][0]["id"], query.as_str());
    assert_eq!(status["pipeline"]["alerts"][0]["id"], alert.as_str());
    let text = ws.run(&["status"]).ok().stdout;
    assert!(
        text.contains(&format!(
            "plan       {id} Add OAuth login: running, 0/2 specs done"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "query      {query} ({id}, from auth): Which OAuth provider"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "alert      {alert} ({id}, from auth): rebase on main conflicts in src/lib.rs"
        )),
        "{text}"
    );

    ws.run(&["plan", "cancel", &id]).ok();
    let status = ws.run(&["status", "--json"]).ok().json();
    assert_eq!(status["pipeline"]["plans"], serde_json::json!([]));
    assert_eq!(
        status["pipeline"]["alerts"],
        serde_json::json!([]),
        "an ended plan's alerts no longer ask for attention"
    );
}

#[test]
fn repair_removes_worktrees_no_spec_owns_and_keeps_their_branches() {
    let ws = repo();
    let (id, _, _) = plan_needing_attention(&ws);
    let worktrees = ws.state_dir().join("worktrees").join(&id);
    let add = |name: &str| {
        let path = worktrees.join(name);
        git(
            &ws,
            &[
                "worktree",
                "add",
                "--quiet",
                "-b",
                &format!("td/{id}/{name}"),
                path.to_str().unwrap(),
            ],
        );
        path
    };
    let owned = add("auth");
    let stray = add("ghost");

    let report = ws.run(&["repair", "--json"]).ok().json();
    assert_eq!(
        report["worktrees_removed"],
        serde_json::json!([stray.to_str().unwrap()]),
        "{report:#}"
    );
    assert!(!stray.exists(), "the stray worktree is gone");
    assert!(
        owned.join("README.md").exists(),
        "the spec's worktree stays"
    );
    assert!(
        git(&ws, &["branch", "--list", &format!("td/{id}/ghost")]).contains("ghost"),
        "the stray worktree's branch is kept"
    );
    let text = ws.run(&["repair"]).ok().stdout;
    assert!(!text.contains("removed worktree"), "nothing left: {text}");
    assert!(text.contains("healthy"), "{text}");
}
