//! The plan pipeline driven by a real daemon: a plan goes from `new-plan`
//! through its plan, spec and phase loops to Ralph loops that write files
//! in git worktrees, and is merged into `main` of a real repository. The
//! fake LLM server plays every model, scripted by which tools a request
//! offers (and, for loops of one kind, by what their prompt names).

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::fake::Fake;
use common::{Ws, eventually, sigkill};
use serde_json::{Value, json};
use taskdaemon_core::pipeline::{MessageKind, NewPlan};
use taskdaemon_fake_llm::{RecordedRequest, Reply, Route, Turn, Usage};
use taskdaemon_store::testing::TestSchema;
use taskdaemon_store::{MessageFilter, PgOptions, PgStore, SqliteStore, Store};

const WAIT: Duration = Duration::from_secs(90);

fn usage() -> Usage {
    Usage {
        input_tokens: 100,
        output_tokens: 10,
        ..Usage::default()
    }
}

fn tool(name: &str, input: Value) -> Reply {
    Turn::tool(name, input).with_usage(usage()).into()
}

fn text(words: &str) -> Reply {
    Turn::text(words).with_usage(usage()).into()
}

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

/// A git repository on `main` with one commit, its daemon pointed at `fake`
/// and scheduling every 200 ms.
fn repo(fake: &Fake) -> Ws {
    let mut ws = Ws::new();
    git(&ws, &["init", "--quiet", "--initial-branch=main"]);
    fs::write(ws.root().join("README.md"), "hello\n").unwrap();
    git(&ws, &["add", "README.md"]);
    git(&ws, &["commit", "--quiet", "-m", "first"]);
    ws.write_config("[pipeline]\nscheduler_interval = \"200ms\"\n");
    ws.set_env("ANTHROPIC_API_KEY", "sk-test");
    ws.set_env("ANTHROPIC_BASE_URL", &fake.server().base_url());
    ws.set_env("GIT_AUTHOR_NAME", "Test");
    ws.set_env("GIT_AUTHOR_EMAIL", "test@example.com");
    ws.set_env("GIT_COMMITTER_NAME", "Test");
    ws.set_env("GIT_COMMITTER_EMAIL", "test@example.com");
    ws
}

fn show(ws: &Ws, id: &str) -> Value {
    ws.run(&["plan", "show", id, "--json"]).ok().json()
}

fn wait_plan(ws: &Ws, id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        last = show(ws, id);
        if last["status"] == status {
            return last;
        }
        if last["status"] == "failed" || last["status"] == "cancelled" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{id} did not become {status}: {last:#}");
}

/// The routes of a plan loop submitting a plan.
fn plan_route() -> Route {
    Route::offering("submit_plan").reply(tool(
        "submit_plan",
        json!({"title": "Two files", "summary": "a then b", "body": "Write a, then b."}),
    ))
}

/// A phase loop for spec `name` creating phases `<name>1` and `<name>2`.
fn phase_route(name: &str) -> Route {
    let phase = |n: u32| {
        tool(
            "create_phase",
            json!({
                "name": format!("{name}{n}"),
                "title": format!("write {name}{n}.txt"),
                "body": format!("Create {name}{n}.txt"),
                "validation": format!("test -f {name}{n}.txt"),
            }),
        )
    };
    Route::offering("create_phase")
        .prompt_contains(format!("for spec `{name}`"))
        .replies([phase(1), phase(2), tool("finish", json!({}))])
}

/// The Ralph loop of phase `phase` (e.g. `a1`): writes `a1.txt`, ends its turn.
fn ralph_route(spec: &str, number: u32) -> Route {
    let file = format!("{spec}{number}.txt");
    Route::offering("send_message")
        .prompt_contains(format!("# Phase {number} of spec `{spec}`"))
        .replies([
            tool(
                "write_file",
                json!({"path": file, "content": format!("{file}\n")}),
            ),
            text("done"),
        ])
}

fn spec_call(name: &str, deps: &[&str]) -> Reply {
    tool(
        "create_spec",
        json!({"name": name, "title": format!("Spec {name}"), "body": format!("Build {name}"), "depends_on": deps}),
    )
}

/// Every Ralph, phase and spec route of the two-spec plan (a, then b).
fn cascade_routes(spec_replies: Vec<Reply>) -> Vec<Route> {
    vec![
        plan_route(),
        Route::offering("create_spec").replies(spec_replies),
        phase_route("a"),
        phase_route("b"),
        ralph_route("a", 1),
        ralph_route("a", 2),
        ralph_route("b", 1),
        ralph_route("b", 2),
    ]
}

/// Tokens of every loop in a `plan show --json` tree.
fn loop_tokens(tree: &Value) -> u64 {
    let sum = |loops: &Value| -> u64 {
        loops
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["input_tokens"].as_u64().unwrap())
            .sum()
    };
    let mut total = sum(&tree["loops"]);
    for spec in tree["specs"].as_array().unwrap() {
        total += sum(&spec["loops"]);
        for phase in spec["phases"].as_array().unwrap() {
            total += sum(&phase["loops"]);
        }
    }
    total
}

fn assert_merged_in_order(ws: &Ws, plan: &str) {
    let log = git(ws, &["log", "--format=%s", "--reverse", "main"]);
    let subjects: Vec<&str> = log.lines().collect();
    let phases: Vec<&str> = subjects
        .iter()
        .copied()
        .filter(|s| s.starts_with(plan))
        .collect();
    assert_eq!(
        phases,
        [
            format!("{plan}/a/1: write a1.txt"),
            format!("{plan}/a/2: write a2.txt"),
            format!("{plan}/b/1: write b1.txt"),
            format!("{plan}/b/2: write b2.txt"),
        ],
        "each phase committed once, a before b: {log}"
    );
    for file in ["a1.txt", "a2.txt", "b1.txt", "b2.txt"] {
        assert!(ws.root().join(file).is_file(), "{file} is on main");
    }
    let worktrees = git(ws, &["worktree", "list"]);
    assert_eq!(worktrees.lines().count(), 1, "{worktrees}");
    assert!(
        !ws.root().join(".taskdaemon/worktrees").join(plan).exists(),
        "the plan's worktrees are gone"
    );
}

#[test]
fn a_plan_of_two_dependent_specs_is_merged_into_main_in_order() {
    let fake = Fake::start_routed(cascade_routes(vec![
        spec_call("a", &[]),
        spec_call("b", &["a"]),
        tool("finish", json!({})),
    ]));
    let ws = repo(&fake);
    let id = ws.run(&["new-plan", "Write two files"]).ok().last_line();
    ws.run(&["start"]).ok();
    eventually("the plan is submitted", || {
        show(&ws, &id)["title"] == "Two files"
    });
    assert_eq!(show(&ws, &id)["status"], "draft", "it waits for approval");
    ws.run(&["plan", "approve", &id]).ok();
    let tree = wait_plan(&ws, &id, "succeeded");

    assert_merged_in_order(&ws, &id);
    let specs = tree["specs"].as_array().unwrap();
    assert_eq!(specs.len(), 2, "{tree:#}");
    for spec in specs {
        assert_eq!(spec["status"], "succeeded", "{spec:#}");
        assert_eq!(spec["phases"].as_array().unwrap().len(), 2, "{spec:#}");
        assert_eq!(spec["loops"].as_array().unwrap().len(), 1, "{spec:#}");
    }
    // Plan loop 1 request, spec loop 3, two phase loops 3 each, four Ralph loops 2 each.
    assert_eq!(fake.requests().len(), 18, "no request repeated");
    let tokens = loop_tokens(&tree);
    assert_eq!(tokens, 18 * 100, "every request's tokens are some loop's");
    assert_eq!(
        tree["cost"]["input_tokens"].as_u64(),
        Some(tokens),
        "{tree:#}"
    );
    let listed = ws.run(&["loop", "list", "--all", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 8, "{listed:#}");
}

#[test]
fn a_spec_cycle_is_refused_to_the_model_and_the_plan_goes_on_with_a_valid_set() {
    let fake = Fake::start_routed(cascade_routes(vec![
        spec_call("a", &["b"]),
        spec_call("b", &["a"]),
        tool("finish", json!({})),
        spec_call("a", &[]),
        spec_call("b", &["a"]),
        tool("finish", json!({})),
    ]));
    let ws = repo(&fake);
    let id = ws
        .run(&["new-plan", "Write two files", "--auto-approve"])
        .ok()
        .last_line();
    ws.run(&["start"]).ok();
    wait_plan(&ws, &id, "succeeded");
    let spec_requests: Vec<RecordedRequest> = fake
        .requests()
        .into_iter()
        .filter(|r| r.offered_tools().contains(&"create_spec".to_owned()))
        .collect();
    let after_finish = serde_json::to_string(&spec_requests[3].body).unwrap();
    assert!(
        after_finish.contains("cycle") && after_finish.contains("none of a, b was created"),
        "the model reads the refusal: {after_finish}"
    );
    assert_merged_in_order(&ws, &id);
}

#[test]
fn a_daemon_killed_mid_cascade_finishes_the_plan_without_repeating_work() {
    // Phase b1's Ralph loop gets no answer to its first request: the
    // daemon is killed while it waits.
    let mut routes = cascade_routes(vec![
        spec_call("a", &[]),
        spec_call("b", &["a"]),
        tool("finish", json!({})),
    ]);
    routes.retain(|r| r.when_prompt_contains.as_deref() != Some("# Phase 1 of spec `b`"));
    routes.push(
        Route::offering("send_message")
            .prompt_contains("# Phase 1 of spec `b`")
            .replies([
                Reply::Stall,
                tool(
                    "write_file",
                    json!({"path": "b1.txt", "content": "b1.txt\n"}),
                ),
                text("done"),
            ]),
    );
    let fake = Fake::start_routed(routes);
    let ws = repo(&fake);
    let id = ws
        .run(&["new-plan", "Write two files", "--auto-approve"])
        .ok()
        .last_line();
    ws.run(&["start"]).ok();
    eventually("b1's loop asks the model", || {
        fake.requests()
            .iter()
            .any(|r| r.prompt().contains("# Phase 1 of spec `b`"))
    });
    let before = fake.requests().len();
    sigkill(ws.daemon_pid().expect("daemon runs"));
    eventually("the daemon is gone", || ws.daemon_pid().is_none());
    ws.run(&["start"]).ok();
    wait_plan(&ws, &id, "succeeded");

    assert_merged_in_order(&ws, &id);
    let requests = fake.requests();
    let repeated = |tool: &str| {
        requests
            .iter()
            .filter(|r| r.offered_tools().contains(&tool.to_owned()))
            .count()
    };
    assert_eq!(repeated("submit_plan"), 1, "the plan loop ran once");
    assert_eq!(repeated("create_spec"), 3, "the spec loop ran once");
    assert_eq!(repeated("create_phase"), 6, "each phase loop ran once");
    // a1, a2 and b2: 2 requests each; b1: the one left unanswered, then 2.
    assert_eq!(requests.len(), before + 2 + 2, "only b1 and b2 asked after");
    let specs = show(&ws, &id)["specs"].clone();
    assert_eq!(specs.as_array().unwrap().len(), 2, "no spec created twice");
}

#[test]
fn a_share_reaches_the_next_prompt_and_a_message_to_an_ended_spec_is_a_dead_letter() {
    let mut routes = cascade_routes(vec![
        spec_call("a", &[]),
        spec_call("b", &["a"]),
        tool("finish", json!({})),
    ]);
    routes.retain(|r| {
        let prompt = r.when_prompt_contains.as_deref();
        prompt != Some("# Phase 1 of spec `a`") && prompt != Some("# Phase 2 of spec `b`")
    });
    routes.push(
        Route::offering("send_message")
            .prompt_contains("# Phase 1 of spec `a`")
            .replies([
                tool(
                    "send_message",
                    json!({"to": "b", "kind": "share", "body": "the files end with a newline"}),
                ),
                tool(
                    "write_file",
                    json!({"path": "a1.txt", "content": "a1.txt\n"}),
                ),
                text("done"),
            ]),
    );
    routes.push(
        Route::offering("send_message")
            .prompt_contains("# Phase 2 of spec `b`")
            .replies([
                tool(
                    "send_message",
                    json!({"to": "a", "kind": "share", "body": "thanks for the tip"}),
                ),
                tool(
                    "write_file",
                    json!({"path": "b2.txt", "content": "b2.txt\n"}),
                ),
                text("done"),
            ]),
    );
    let fake = Fake::start_routed(routes);
    let ws = repo(&fake);
    let id = ws
        .run(&["new-plan", "Write two files", "--auto-approve"])
        .ok()
        .last_line();
    ws.run(&["start"]).ok();
    wait_plan(&ws, &id, "succeeded");

    let requests = fake.requests();
    let b1 = requests
        .iter()
        .find(|r| r.prompt().contains("# Phase 1 of spec `b`"))
        .expect("b1 ran");
    assert!(
        b1.prompt().contains("share from a")
            && b1.prompt().contains("the files end with a newline"),
        "a's share is in b's next prompt: {}",
        b1.prompt()
    );
    let a1 = requests
        .iter()
        .find(|r| r.prompt().contains("# Phase 1 of spec `a`"))
        .expect("a1 ran");
    assert!(!a1.prompt().contains("the files end with a newline"));

    let dead = ws.run(&["plan", "dead-letters", &id, "--json"]).ok().json();
    let dead = dead.as_array().unwrap();
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert_eq!(dead[0]["body"], "thanks for the tip");
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap()
            .contains("spec a has ended (succeeded)"),
        "{dead:#?}"
    );
    let told = requests
        .iter()
        .filter(|r| r.prompt().contains("# Phase 2 of spec `b`"))
        .nth(1)
        .expect("b2's second request");
    assert!(
        serde_json::to_string(&told.body)
            .unwrap()
            .contains("could not be delivered"),
        "the model is told: {}",
        serde_json::to_string(&told.body).unwrap()
    );
}

#[test]
fn a_loop_answers_another_specs_query_and_reads_a_broadcast_once() {
    let mut routes = cascade_routes(vec![
        spec_call("a", &[]),
        spec_call("b", &["a"]),
        tool("finish", json!({})),
    ]);
    routes.retain(|r| {
        let prompt = r.when_prompt_contains.as_deref();
        prompt != Some("# Phase 1 of spec `a`") && prompt != Some("# Phase 1 of spec `b`")
    });
    // a asks b (MSG-1, the workspace's first message) and tells every loop a finding (MSG-2).
    routes.push(
        Route::offering("ask")
            .prompt_contains("# Phase 1 of spec `a`")
            .replies([
                tool("ask", json!({"to": "b", "question": "tabs or spaces?"})),
                tool(
                    "send_message",
                    json!({"to": "plan", "kind": "share", "body": "README is plain text"}),
                ),
                tool(
                    "write_file",
                    json!({"path": "a1.txt", "content": "a1.txt\n"}),
                ),
                text("done"),
            ]),
    );
    routes.push(
        Route::offering("answer")
            .prompt_contains("# Phase 1 of spec `b`")
            .replies([
                tool("answer", json!({"message": "MSG-1", "answer": "tabs"})),
                tool("answer", json!({"message": "MSG-2", "answer": "noted"})),
                tool(
                    "write_file",
                    json!({"path": "b1.txt", "content": "b1.txt\n"}),
                ),
                text("done"),
            ]),
    );
    let fake = Fake::start_routed(routes);
    let ws = repo(&fake);
    let id = ws
        .run(&["new-plan", "Write two files", "--auto-approve"])
        .ok()
        .last_line();
    ws.run(&["start"]).ok();
    wait_plan(&ws, &id, "succeeded");

    let requests = fake.requests();
    let prompts = |phase: &str| -> Vec<String> {
        requests
            .iter()
            .filter(|r| r.prompt().contains(phase))
            .map(|r| r.prompt())
            .collect()
    };
    let b1 = prompts("# Phase 1 of spec `b`");
    assert!(
        b1[0].contains("query from a (MSG-1): tabs or spaces?")
            && b1[0].contains("share from a (MSG-2): README is plain text"),
        "a's question and broadcast reach b: {}",
        b1[0]
    );
    let b2 = prompts("# Phase 2 of spec `b`");
    assert!(!b2.is_empty(), "b2 ran");
    assert!(
        b2.iter().all(|p| !p.contains("README is plain text")),
        "b read the broadcast once: {b2:#?}"
    );
    // The model is told when it answers what is not a question put to it.
    let refused = requests
        .iter()
        .filter(|r| r.prompt().contains("# Phase 1 of spec `b`"))
        .nth(2)
        .expect("b1's third request");
    assert!(
        serde_json::to_string(&refused.body)
            .unwrap()
            .contains("MSG-2 is a share, not a query"),
        "{}",
        serde_json::to_string(&refused.body).unwrap()
    );

    let store = SqliteStore::open(&ws.db_path()).unwrap();
    let query = store.message("MSG-1").unwrap();
    assert_eq!(query.answer.as_deref(), Some("tabs"), "{query:?}");
    let share = store.message("MSG-2").unwrap();
    let deliveries: Vec<(&str, &str)> = share
        .deliveries
        .iter()
        .map(|d| (d.recipient.as_str(), d.delivery.as_str()))
        .collect();
    assert_eq!(deliveries, [("b", "delivered")], "{share:?}");
}

#[test]
fn pipeline_loop_types_are_refused_by_hand() {
    let fake = Fake::start_routed(Vec::new());
    let ws = repo(&fake);
    let root = ws.root().display().to_string();
    let refused = ws.run(&[
        "loop",
        "run",
        "--type",
        "pipeline-plan",
        "--input",
        "request=anything",
        "--workdir",
        &root,
        "--detach",
    ]);
    assert_eq!(refused.code, Some(2), "{refused:#?}");
    assert!(
        refused
            .stderr
            .contains("loop type `pipeline-plan` runs only under a plan"),
        "{refused:#?}"
    );
    assert!(fake.requests().is_empty(), "no model was asked");
    let loops = ws.run(&["loop", "list", "--all", "--json"]).ok().json();
    assert_eq!(loops, Value::Array(Vec::new()), "nothing was created");
}

#[test]
fn a_spec_conflicting_with_main_pauses_with_an_alert_and_resume_merges_it_once_resolved() {
    let mut routes = vec![
        plan_route(),
        Route::offering("create_spec").replies([spec_call("a", &[]), tool("finish", json!({}))]),
        phase_route("a"),
        ralph_route("a", 2),
    ];
    routes.push(
        Route::offering("send_message")
            .prompt_contains("# Phase 1 of spec `a`")
            .replies([
                tool(
                    "write_file",
                    json!({"path": "README.md", "content": "from the spec\n"}),
                ),
                tool(
                    "write_file",
                    json!({"path": "a1.txt", "content": "a1.txt\n"}),
                ),
                text("done"),
            ]),
    );
    let fake = Fake::start_routed(routes);
    let ws = repo(&fake);
    let id = ws.run(&["new-plan", "Change the readme"]).ok().last_line();
    // Main moves after the plan's base: the spec will conflict with it.
    fs::write(ws.root().join("README.md"), "from main\n").unwrap();
    git(
        &ws,
        &["commit", "--quiet", "-am", "main changes the readme"],
    );
    ws.run(&["start"]).ok();
    eventually("the plan is submitted", || {
        show(&ws, &id)["title"] == "Two files"
    });
    ws.run(&["plan", "approve", &id]).ok();
    let paused = eventually_paused(&ws, &id);
    assert!(
        paused["note"].as_str().unwrap().contains("README.md"),
        "{paused:#}"
    );
    let store = SqliteStore::open(&ws.db_path()).unwrap();
    let alerts = store
        .messages(&MessageFilter {
            plan: Some(id.clone()),
            kind: Some(MessageKind::Alert),
            ..MessageFilter::default()
        })
        .unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].to, "human");
    assert!(alerts[0].body.contains("README.md"), "{alerts:#?}");

    let worktree = ws.root().join(".taskdaemon/worktrees").join(&id).join("a");
    fs::write(worktree.join("README.md"), "from main and the spec\n").unwrap();
    let added = Command::new("git")
        .current_dir(&worktree)
        .args(["add", "README.md"])
        .status()
        .unwrap();
    assert!(added.success());
    ws.run(&["plan", "resume", &id]).ok();
    wait_plan(&ws, &id, "succeeded");
    assert_eq!(
        fs::read_to_string(ws.root().join("README.md")).unwrap(),
        "from main and the spec\n"
    );
    let log = git(&ws, &["log", "--format=%s", "main"]);
    assert_eq!(
        log.lines()
            .filter(|l| l.starts_with(&format!("{id}/a/1")))
            .count(),
        1,
        "{log}"
    );
}

/// Waits for spec `a` of `plan` to pause; returns it.
fn eventually_paused(ws: &Ws, plan: &str) -> Value {
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        last = show(ws, plan);
        let spec = &last["specs"][0];
        if spec["status"] == "paused" {
            return spec.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("spec a of {plan} did not pause: {last:#}");
}

#[test]
fn a_plan_cancelled_while_the_daemon_was_down_does_not_resume_its_loops() {
    let fake = Fake::start_routed(vec![
        plan_route(),
        Route::offering("create_spec").replies([spec_call("a", &[]), tool("finish", json!({}))]),
        phase_route("a"),
        Route::offering("send_message")
            .prompt_contains("# Phase 1 of spec `a`")
            .replies([
                Reply::Stall,
                tool(
                    "write_file",
                    json!({"path": "a1.txt", "content": "a1.txt\n"}),
                ),
                text("done"),
            ]),
    ]);
    let ws = repo(&fake);
    let id = ws
        .run(&["new-plan", "Write a file", "--auto-approve"])
        .ok()
        .last_line();
    ws.run(&["start"]).ok();
    eventually("a1's loop asks the model", || {
        fake.requests()
            .iter()
            .any(|r| r.prompt().contains("# Phase 1 of spec `a`"))
    });
    sigkill(ws.daemon_pid().expect("daemon runs"));
    eventually("the daemon is gone", || ws.daemon_pid().is_none());
    ws.run(&["plan", "cancel", &id]).ok();
    let before = fake.requests().len();
    ws.run(&["start"]).ok();

    let ralph = show(&ws, &id)["specs"][0]["phases"][0]["loops"][0]["id"]
        .as_str()
        .expect("a1's loop is linked")
        .to_owned();
    let status = |loop_id: &str| -> String {
        let shown = ws.run(&["loop", "show", loop_id, "--json"]).ok().json();
        let status = if shown["status"].is_string() {
            &shown["status"]
        } else {
            &shown["task"]["status"]
        };
        status.as_str().unwrap_or_default().to_owned()
    };
    eventually("a1's loop ends", || {
        ["cancelled", "failed", "succeeded"].contains(&status(&ralph).as_str())
    });
    assert_eq!(status(&ralph), "cancelled");
    assert_eq!(
        fake.requests().len(),
        before,
        "no model call after the restart"
    );
    assert_eq!(show(&ws, &id)["status"], "cancelled");
}

#[test]
fn worktrees_of_specs_that_are_not_open_are_removed_when_the_daemon_starts() {
    let fake = Fake::start_routed(Vec::new());
    let ws = repo(&fake);
    // A real worktree of a spec the store does not know, and a leftover folder.
    let stray = ws.root().join(".taskdaemon/worktrees/PLAN-9/gone");
    git(
        &ws,
        &[
            "worktree",
            "add",
            "--quiet",
            "-b",
            "td/PLAN-9/gone",
            stray.to_str().unwrap(),
        ],
    );
    let leftover = ws.root().join(".taskdaemon/worktrees/PLAN-9/half");
    fs::create_dir_all(&leftover).unwrap();
    ws.run(&["start"]).ok();
    eventually("orphaned worktrees are removed", || {
        !stray.exists() && !leftover.exists()
    });
    let worktrees = git(&ws, &["worktree", "list"]);
    assert_eq!(worktrees.lines().count(), 1, "{worktrees}");
}

/// Waits up to [`WAIT`] for `pred` on the plan's `plan show --json`.
fn wait_show(ws: &Ws, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        last = show(ws, id);
        if pred(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{id}: {what} did not happen: {last:#}");
}

#[test]
fn plan_commands_wake_the_daemon_whatever_its_scheduler_interval() {
    let fake = Fake::start_routed(cascade_routes(vec![
        spec_call("a", &[]),
        tool("finish", json!({})),
    ]));
    let ws = repo(&fake);
    // An hour between ticks: only a wake-up can start anything after the
    // daemon's first pass.
    ws.write_config("[pipeline]\nscheduler_interval = \"1h\"\n");
    ws.run(&["start"]).ok();
    let id = ws.run(&["new-plan", "Write a file"]).ok().last_line();
    wait_show(&ws, &id, "the plan is submitted", |p| {
        p["title"] == "Two files"
    });
    // The plan loop has ended and the draft waits: nothing is due until
    // a person approves it.
    assert_eq!(show(&ws, &id)["status"], "draft");
    ws.run(&["plan", "approve", &id]).ok();
    let tree = wait_plan(&ws, &id, "succeeded");
    assert_eq!(tree["specs"][0]["status"], "succeeded", "{tree:#}");
}

/// Starts a daemon with an hour between scheduler ticks, waits for its
/// first pass (over no plan), writes a plan with `store` (a handle of the
/// test's own, as a process that cannot reach the socket, or another host,
/// would: no `WakePipeline`) and waits for the plan loop to take it: only
/// the daemon's watch on the store can wake it.
fn a_plan_written_straight_into_the_store_is_taken_up(
    mut ws: Ws,
    store: impl FnOnce() -> Box<dyn Store>,
) {
    ws.write_config("[pipeline]\nscheduler_interval = \"1h\"\n");
    ws.set_env("TASKDAEMON_LOG", "info,taskdaemon_daemon=debug");
    ws.run(&["start"]).ok();
    // The first pass has read the (empty) plan table and is done.
    wait_log(&ws, "scheduler pass");
    let plan = store()
        .create_plan(
            &NewPlan {
                goal: "Write a file".to_owned(),
                target_branch: "main".to_owned(),
                base_commit: git(&ws, &["rev-parse", "HEAD"]),
                ..NewPlan::default()
            },
            "test",
        )
        .unwrap();
    let shown = wait_show(&ws, &plan.id, "the plan loop submits the plan", |p| {
        p["title"] == "Two files"
    });
    assert_eq!(shown["status"], "draft", "{shown:#}");
}

fn one_spec_routes() -> Vec<Route> {
    cascade_routes(vec![spec_call("a", &[]), tool("finish", json!({}))])
}

#[test]
fn a_plan_written_straight_into_the_store_wakes_a_scheduler_with_no_plan_open() {
    let fake = Fake::start_routed(one_spec_routes());
    let ws = repo(&fake);
    let db = ws.db_path();
    a_plan_written_straight_into_the_store_is_taken_up(ws, || {
        Box::new(SqliteStore::open(&db).unwrap())
    });
}

#[test]
fn a_plan_written_into_postgres_by_another_host_wakes_a_scheduler_with_no_plan_open() {
    let Some(schema) = TestSchema::create("pipeline_plan_from_another_host") else {
        return;
    };
    let url = schema.url();
    let fake = Fake::start_routed(one_spec_routes());
    let mut ws = repo(&fake);
    ws.set_env("TASKDAEMON_DATABASE_URL", &url);
    a_plan_written_straight_into_the_store_is_taken_up(ws, || {
        Box::new(PgStore::open(&PgOptions::new(&url)).unwrap())
    });
}

/// The scheduler's state as `status --json` reports it.
fn scheduler_state(ws: &Ws) -> Value {
    ws.run(&["status", "--json"]).ok().json()["scheduler"].clone()
}

#[test]
fn an_open_circuit_breaker_holds_new_plans_back_until_it_closes() {
    // The first plan's model answers 500 until the breaker opens (after two
    // failures in a row); the second plan's answers.
    let routes = vec![
        Route::offering("submit_plan")
            .prompt_contains("first goal")
            .replies((0..10).map(|_| Reply::ServerError { status: None })),
        Route::offering("submit_plan")
            .prompt_contains("second goal")
            .reply(tool(
                "submit_plan",
                json!({"title": "Second", "summary": "s", "body": "b"}),
            )),
    ];
    let fake = Fake::start_routed(routes);
    let ws = repo(&fake);
    ws.write_config(
        "[loops]\nbreaker_failures = 2\nbreaker_cooldown = \"15s\"\n\n[pipeline]\nscheduler_interval = \"200ms\"\n",
    );
    let first = ws.run(&["new-plan", "first goal"]).ok().last_line();
    ws.run(&["start"]).ok();
    let deadline = std::time::Instant::now() + WAIT;
    while !scheduler_state(&ws)["held"]
        .as_str()
        .is_some_and(|r| r.contains("circuit breaker is open"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the breaker never held the scheduler back: {}",
            scheduler_state(&ws)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = ws
        .run(&["new-plan", "second goal", "--auto-approve"])
        .ok()
        .last_line();
    let deadline = std::time::Instant::now() + WAIT;
    let held = loop {
        let state = scheduler_state(&ws);
        let waiting = state["waiting_plans"]
            .as_array()
            .is_some_and(|w| w.iter().any(|p| p == &json!(second)));
        if waiting {
            break state;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{second} was never held back: {state}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        held["held"].as_str().unwrap().contains("anthropic"),
        "{held}"
    );
    assert!(held["held_since"].is_number(), "{held}");
    // `status` says so to a person too (while the breaker is still open).
    let status = ws.run(&["status"]).ok().stdout;
    let line = status
        .lines()
        .find(|l| l.starts_with("scheduler  held back since "))
        .unwrap_or_else(|| panic!("no scheduler line: {status}"));
    assert!(
        line.contains("circuit breaker is open") && line.contains(&second),
        "{line}"
    );
    // Held back: no loop of the second plan started, nothing asked the model.
    assert_eq!(show(&ws, &second)["loops"], json!([]), "{held}");
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.prompt().contains("second goal")),
        "the second plan's loop asked the model while the breaker was open"
    );
    // Once the breaker lets a call through again, the held plan goes on.
    wait_show(&ws, &second, "the second plan is submitted", |p| {
        p["title"] == "Second"
    });
    assert_eq!(scheduler_state(&ws)["held"], Value::Null);
    let status = ws.run(&["status"]).ok().stdout;
    assert!(!status.contains("held back"), "{status}");
    let first = show(&ws, &first);
    assert_ne!(first["status"], "running", "{first:#}");
}

/// Waits until the daemon's log has a line containing `text`.
fn wait_log(ws: &Ws, text: &str) {
    let path = ws.state_dir().join("daemon.log");
    let deadline = std::time::Instant::now() + WAIT;
    while !fs::read_to_string(&path).is_ok_and(|log| log.contains(text)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never logged {text:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Phase a1's Ralph loop: iteration 1 changes README.md, then waits (in a
/// command) for the file `go`; iteration 2 gets `second` as its first turn
/// (then `done`), and a new loop the same again.
fn mid_phase_routes(go: &std::path::Path, second: Reply) -> Vec<Route> {
    let wait = format!("while [ ! -e '{}' ]; do sleep 0.05; done", go.display());
    let a1 = tool(
        "write_file",
        json!({"path": "a1.txt", "content": "a1.txt\n"}),
    );
    vec![
        plan_route(),
        Route::offering("create_spec").replies([spec_call("a", &[]), tool("finish", json!({}))]),
        phase_route("a"),
        ralph_route("a", 2),
        Route::offering("send_message")
            .prompt_contains("# Phase 1 of spec `a`")
            .replies([
                tool(
                    "write_file",
                    json!({"path": "README.md", "content": "from the spec\n"}),
                ),
                tool("run_command", json!({"argv": ["sh", "-c", wait]})),
                text("done"),
                second,
                a1.clone(),
                text("done"),
                a1,
                text("done"),
            ]),
    ]
}

/// Starts the plan, lets phase a1's first iteration change README.md, moves
/// main's README.md under it, and lets the iteration end once the daemon
/// has seen main move.
fn move_main_mid_phase(ws: &Ws, id: &str, fake: &Fake, go: &std::path::Path) {
    ws.run(&["start"]).ok();
    wait_show(ws, id, "the plan is submitted", |p| {
        p["title"] == "Two files"
    });
    ws.run(&["plan", "approve", id]).ok();
    wait_log(ws, "watching a target branch");
    let deadline = std::time::Instant::now() + WAIT;
    while !fake
        .requests()
        .iter()
        .any(|r| r.prompt().contains("# Phase 1 of spec `a`"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "phase a1 never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    fs::write(ws.root().join("README.md"), "from main\n").unwrap();
    git(ws, &["commit", "--quiet", "-am", "main changes the readme"]);
    wait_log(ws, "target branch moved");
    fs::write(go, "").unwrap();
}

#[test]
fn main_moving_between_iterations_rebases_and_a_conflict_pauses_the_spec() {
    let go = tempfile::tempdir().unwrap();
    let go = go.path().join("go");
    let fake = Fake::start_routed(mid_phase_routes(&go, text("stopped before this")));
    let ws = repo(&fake);
    let id = ws.run(&["new-plan", "Change the readme"]).ok().last_line();
    move_main_mid_phase(&ws, &id, &fake, &go);

    let paused = eventually_paused(&ws, &id);
    assert!(
        paused["note"].as_str().unwrap().contains("README.md"),
        "{paused:#}"
    );
    let tree = show(&ws, &id);
    assert_eq!(
        tree["specs"][0]["phases"][0]["status"], "running",
        "{tree:#}"
    );
    let store = SqliteStore::open(&ws.db_path()).unwrap();
    let alerts = store
        .messages(&MessageFilter {
            plan: Some(id.clone()),
            kind: Some(MessageKind::Alert),
            ..MessageFilter::default()
        })
        .unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(alerts[0].body.contains("README.md"), "{alerts:#?}");

    let worktree = ws.root().join(".taskdaemon/worktrees").join(&id).join("a");
    fs::write(worktree.join("README.md"), "from main and the spec\n").unwrap();
    let added = Command::new("git")
        .current_dir(&worktree)
        .args(["add", "README.md"])
        .status()
        .unwrap();
    assert!(added.success());
    ws.run(&["plan", "resume", &id]).ok();
    wait_plan(&ws, &id, "succeeded");
    assert_eq!(
        fs::read_to_string(ws.root().join("README.md")).unwrap(),
        "from main and the spec\n"
    );
    assert!(ws.root().join("a1.txt").exists() && ws.root().join("a2.txt").exists());
}

#[test]
fn with_resolve_conflicts_the_next_iteration_resolves_a_conflict_between_iterations() {
    let go = tempfile::tempdir().unwrap();
    let go = go.path().join("go");
    let resolve = tool(
        "write_file",
        json!({"path": "README.md", "content": "resolved by the model\n"}),
    );
    let fake = Fake::start_routed(mid_phase_routes(&go, resolve));
    let ws = repo(&fake);
    ws.write_config("[pipeline]\nscheduler_interval = \"200ms\"\nresolve_conflicts = true\n");
    let id = ws.run(&["new-plan", "Change the readme"]).ok().last_line();
    move_main_mid_phase(&ws, &id, &fake, &go);

    wait_plan(&ws, &id, "succeeded");
    let asked = fake.requests().iter().any(|r| {
        r.prompt().contains("Resolve a rebase conflict first") && r.prompt().contains("README.md")
    });
    assert!(
        asked,
        "the iteration after the move was asked to resolve it"
    );
    assert_eq!(
        fs::read_to_string(ws.root().join("README.md")).unwrap(),
        "resolved by the model\n"
    );
    let store = SqliteStore::open(&ws.db_path()).unwrap();
    let alerts = store
        .messages(&MessageFilter {
            plan: Some(id.clone()),
            kind: Some(MessageKind::Alert),
            ..MessageFilter::default()
        })
        .unwrap();
    assert!(alerts.is_empty(), "nothing paused: {alerts:#?}");
    let log = git(&ws, &["log", "--format=%s", "main"]);
    assert!(log.contains("main changes the readme"), "{log}");
}

#[test]
fn an_answered_query_reaches_the_asking_loop_once() {
    // Phase a1's first iteration asks a person, then waits (in a command)
    // for the file `go`; the second ends without the file, the third
    // writes it. Phase a2 is a new loop of the same spec.
    let go = tempfile::tempdir().unwrap();
    let go = go.path().join("go");
    let wait = format!("while [ ! -e '{}' ]; do sleep 0.05; done", go.display());
    let fake = Fake::start_routed(vec![
        plan_route(),
        Route::offering("create_spec").replies([spec_call("a", &[]), tool("finish", json!({}))]),
        phase_route("a"),
        ralph_route("a", 2),
        Route::offering("ask")
            .prompt_contains("# Phase 1 of spec `a`")
            .replies([
                tool("ask", json!({"to": "human", "question": "which colour?"})),
                tool("run_command", json!({"argv": ["sh", "-c", wait]})),
                text("asked"),
                text("not yet"),
                tool(
                    "write_file",
                    json!({"path": "a1.txt", "content": "a1.txt\n"}),
                ),
                text("done"),
            ]),
    ]);
    let ws = repo(&fake);
    let id = ws
        .run(&["new-plan", "Pick a colour", "--auto-approve"])
        .ok()
        .last_line();
    ws.run(&["start"]).ok();
    let store = SqliteStore::open(&ws.db_path()).unwrap();
    let query_filter = MessageFilter {
        plan: Some(id.clone()),
        kind: Some(MessageKind::Query),
        ..MessageFilter::default()
    };
    let deadline = std::time::Instant::now() + WAIT;
    let query = loop {
        if let Some(query) = store.messages(&query_filter).unwrap().pop() {
            break query;
        }
        assert!(std::time::Instant::now() < deadline, "a never asked");
        std::thread::sleep(Duration::from_millis(50));
    };
    ws.run(&["plan", "answer", &query.id, "ultramarine"]).ok();
    fs::write(&go, "").unwrap();
    wait_plan(&ws, &id, "succeeded");

    let requests = fake.requests();
    let prompts = |phase: &str| -> Vec<String> {
        requests
            .iter()
            .filter(|r| r.prompt().contains(phase))
            .map(|r| r.prompt())
            .collect()
    };
    // a1: iteration 1 (ask, command, text), 2 (text), 3 (write, text).
    let a1 = prompts("# Phase 1 of spec `a`");
    assert_eq!(a1.len(), 6, "{a1:#?}");
    let answer = format!(
        "answer from human to your question {} (\"which colour?\"): ultramarine",
        query.id
    );
    assert!(
        !a1[0].contains("ultramarine"),
        "not answered yet: {}",
        a1[0]
    );
    assert!(
        a1[3].contains(&answer),
        "the next iteration reads the answer: {}",
        a1[3]
    );
    assert!(
        !a1[4].contains("ultramarine"),
        "the iteration after does not read it again: {}",
        a1[4]
    );
    let a2 = prompts("# Phase 2 of spec `a`");
    assert!(!a2.is_empty(), "a2 ran");
    assert!(
        a2.iter().all(|p| !p.contains("ultramarine")),
        "nor does the next phase's loop: {a2:#?}"
    );
    let read = store.message(&query.id).unwrap();
    assert_eq!(read.answer.as_deref(), Some("ultramarine"));
    let delivered: Vec<(&str, &str)> = read
        .deliveries
        .iter()
        .map(|d| (d.recipient.as_str(), d.delivery.as_str()))
        .collect();
    assert_eq!(delivered, [("a", "delivered")], "{read:?}");
}

/// Spec a's routes for a conflict at the merge: phase a1 changes README.md
/// (as main will), and `resolver` answers the loop asked to resolve it.
fn merge_conflict_routes(resolver: Route) -> Vec<Route> {
    vec![
        resolver,
        plan_route(),
        Route::offering("create_spec").replies([spec_call("a", &[]), tool("finish", json!({}))]),
        phase_route("a"),
        ralph_route("a", 2),
        Route::offering("send_message")
            .prompt_contains("# Phase 1 of spec `a`")
            .replies([
                tool(
                    "write_file",
                    json!({"path": "README.md", "content": "from the spec\n"}),
                ),
                tool(
                    "write_file",
                    json!({"path": "a1.txt", "content": "a1.txt\n"}),
                ),
                text("done"),
            ]),
    ]
}

/// A plan whose spec conflicts with main at the merge, run with
/// `resolve_conflicts`; returns its id once approved.
fn run_merge_conflict(ws: &Ws) -> String {
    ws.write_config("[pipeline]\nscheduler_interval = \"200ms\"\nresolve_conflicts = true\n");
    let id = ws.run(&["new-plan", "Change the readme"]).ok().last_line();
    // Main moves after the plan's base: the spec conflicts with it when it
    // is rebased to be merged.
    fs::write(ws.root().join("README.md"), "from main\n").unwrap();
    git(ws, &["commit", "--quiet", "-am", "main changes the readme"]);
    ws.run(&["start"]).ok();
    wait_show(ws, &id, "the plan is submitted", |p| {
        p["title"] == "Two files"
    });
    ws.run(&["plan", "approve", &id]).ok();
    id
}

fn alerts_of(ws: &Ws, plan: &str) -> Vec<taskdaemon_core::pipeline::MessageRecord> {
    SqliteStore::open(&ws.db_path())
        .unwrap()
        .messages(&MessageFilter {
            plan: Some(plan.to_owned()),
            kind: Some(MessageKind::Alert),
            ..MessageFilter::default()
        })
        .unwrap()
}

#[test]
fn with_resolve_conflicts_a_ralph_loop_resolves_a_conflict_at_the_merge() {
    let resolver = Route::offering("send_message")
        .prompt_contains("Resolve the conflict merging spec `a`")
        .replies([
            tool(
                "write_file",
                json!({"path": "README.md", "content": "from main and the spec\n"}),
            ),
            text("done"),
        ]);
    let fake = Fake::start_routed(merge_conflict_routes(resolver));
    let ws = repo(&fake);
    let id = run_merge_conflict(&ws);

    let tree = wait_plan(&ws, &id, "succeeded");
    let asked: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| r.prompt())
        .filter(|p| p.contains("Resolve the conflict merging spec `a`"))
        .collect();
    assert!(
        !asked.is_empty() && asked.iter().all(|p| p.contains("README.md")),
        "the loop was given the conflicting file: {asked:#?}"
    );
    assert_eq!(
        fs::read_to_string(ws.root().join("README.md")).unwrap(),
        "from main and the spec\n"
    );
    assert!(ws.root().join("a1.txt").exists() && ws.root().join("a2.txt").exists());
    assert!(alerts_of(&ws, &id).is_empty(), "nothing paused");
    let log = git(&ws, &["log", "--format=%s", "main"]);
    assert!(log.contains("main changes the readme"), "{log}");
    for phase in ["a/1", "a/2"] {
        assert_eq!(
            log.lines()
                .filter(|l| l.starts_with(&format!("{id}/{phase}")))
                .count(),
            1,
            "{log}"
        );
    }
    // The resolving loop is charged to the last phase, which stays succeeded.
    let phase = &tree["specs"][0]["phases"][1];
    assert_eq!(phase["status"], "succeeded", "{tree:#}");
    assert_eq!(phase["loops"].as_array().unwrap().len(), 2, "{tree:#}");
}

#[test]
fn with_resolve_conflicts_a_conflict_the_loop_cannot_resolve_at_the_merge_pauses() {
    // The loop never edits the file: each iteration's validation finds the
    // markers, until the loop gives up.
    let resolver = Route::offering("send_message")
        .prompt_contains("Resolve the conflict merging spec `a`")
        .replies((0..20).map(|_| text("I cannot tell which side is right")));
    let fake = Fake::start_routed(merge_conflict_routes(resolver));
    let ws = repo(&fake);
    let id = run_merge_conflict(&ws);

    let paused = eventually_paused(&ws, &id);
    let note = paused["note"].as_str().unwrap();
    assert!(
        note.contains("README.md") && note.contains("the loop asked to resolve it ended"),
        "{paused:#}"
    );
    let alerts = alerts_of(&ws, &id);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].to, "human");
    assert!(alerts[0].body.contains("README.md"), "{alerts:#?}");
    let worktree = ws.root().join(".taskdaemon/worktrees").join(&id).join("a");
    let readme = fs::read_to_string(worktree.join("README.md")).unwrap();
    assert!(readme.contains("<<<<<<<"), "the rebase waits: {readme}");
    assert_eq!(
        git(&ws, &["log", "-1", "--format=%s", "main"]),
        "main changes the readme",
        "nothing was merged"
    );
}
