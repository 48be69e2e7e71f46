//! Conformance checks for the Plan -> Spec -> Phase pipeline and the
//! coordinator's messages: ids, the state machine with one event per
//! change, idempotent structure (so crash recovery never duplicates a spec
//! or phase), all-or-nothing spec sets, cascades, cost roll-up, the
//! scheduler's ready query, and message delivery with dead letters.

use taskdaemon_core::pipeline::{
    Delivery, MessageKind, NewMessage, NewPhase, NewPlan, NewSpec, PipelineCost, PipelineStatus,
    PlanContent,
};
use taskdaemon_core::{EventKind, PipelineError};

use super::spec as process_spec;
use crate::{HistoryFilter, MessageFilter, PlanFilter, Store, StoreError};

/// A plan request for tests.
pub fn new_plan(goal: &str, auto_approve: bool) -> NewPlan {
    NewPlan {
        goal: goal.to_owned(),
        target_branch: "main".to_owned(),
        base_commit: "0123abcd".to_owned(),
        auto_approve,
        ..NewPlan::default()
    }
}

/// A spec with `deps`.
pub fn new_spec(name: &str, deps: &[&str], priority: i32) -> NewSpec {
    NewSpec {
        name: name.to_owned(),
        title: format!("Spec {name}"),
        body: format!("Build {name}."),
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        priority,
    }
}

fn new_phase(name: &str) -> NewPhase {
    NewPhase {
        name: name.to_owned(),
        title: format!("Phase {name}"),
        body: "write it".to_owned(),
        validation: format!("test -f {name}.txt"),
    }
}

/// A plan that runs, ready for specs.
fn running_plan(store: &dyn Store, goal: &str) -> String {
    let plan = store.create_plan(&new_plan(goal, true), "t").unwrap();
    store
        .set_plan_status(&plan.id, PipelineStatus::Running, None, "t")
        .unwrap();
    plan.id
}

/// Kinds of the events on `id` (a plan, spec or phase id).
fn kinds(store: &dyn Store, id: &str) -> Vec<EventKind> {
    let filter = HistoryFilter {
        task_id: Some(id.to_owned()),
        ..HistoryFilter::default()
    };
    store
        .history_page(&filter, 0, 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// Draft -> approve -> running, with the shared id counter, an idempotent
/// submit, and one event per change.
pub fn plan_lifecycle(store: &dyn Store) {
    let task = store
        .create_process(&process_spec(None, &["x"]), "t")
        .unwrap();
    assert_eq!(task.id, "TASK-1");
    let plan = store
        .create_plan(&new_plan("Add OAuth login\nwith GitHub", false), "cli")
        .unwrap();
    assert_eq!(plan.id, "PLAN-2", "plans share the one id counter");
    assert_eq!(plan.status, PipelineStatus::Draft);
    assert_eq!(plan.display_title(), "Add OAuth login");
    let auto = store.create_plan(&new_plan("other", true), "cli").unwrap();
    assert_eq!(auto.status, PipelineStatus::Pending);

    let content = PlanContent {
        title: "OAuth".into(),
        summary: "login via GitHub".into(),
        body: "1. callback\n2. session".into(),
    };
    let submitted = store.submit_plan("plan-2", &content, "loop").unwrap();
    assert_eq!(submitted.title.as_deref(), Some("OAuth"));
    // A replayed submit changes nothing; other content is refused.
    assert_eq!(
        store.submit_plan(&plan.id, &content, "loop").unwrap(),
        submitted
    );
    let other = PlanContent {
        body: "something else".into(),
        ..content.clone()
    };
    assert!(matches!(
        store.submit_plan(&plan.id, &other, "loop"),
        Err(StoreError::Conflict(_))
    ));

    let approved = store.approve_plan(&plan.id, "cli").unwrap();
    assert_eq!(approved.status, PipelineStatus::Pending);
    let again = store.approve_plan(&plan.id, "cli").unwrap_err();
    assert!(
        matches!(&again, StoreError::Conflict(m) if m.contains("PLAN-2 is pending")),
        "{again}"
    );
    let running = store
        .set_plan_status(&plan.id, PipelineStatus::Running, None, "daemon")
        .unwrap();
    assert_eq!(running.status, PipelineStatus::Running);
    assert_eq!(
        kinds(store, &plan.id),
        vec![
            EventKind::PlanCreated,
            EventKind::PlanSubmitted,
            EventKind::PlanStatus,
            EventKind::PlanStatus
        ]
    );

    // An illegal change names both states and leaves no trace.
    let err = store
        .set_plan_status(&plan.id, PipelineStatus::Draft, None, "t")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "illegal status change for PLAN-2: running -> draft"
    );
    assert_eq!(store.plan(&plan.id).unwrap(), running);
    assert_eq!(kinds(store, &plan.id).len(), 4);

    let missing = store.plan("PLAN-99").unwrap_err();
    assert_eq!(missing.to_string(), "no plan 'PLAN-99'");
    assert!(matches!(store.plan("TASK-1"), Err(StoreError::Pipeline(_))));

    let all = store.plans(&PlanFilter::default()).unwrap();
    let ids: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["PLAN-2", "PLAN-3"]);
    let newest = store
        .plans(&PlanFilter {
            limit: Some(1),
            ..PlanFilter::default()
        })
        .unwrap();
    assert_eq!(newest[0].id, "PLAN-3");
}

/// Adding a spec twice with the same content is a no-op; other content,
/// unknown dependencies and cycles refuse the whole set, writing nothing.
pub fn specs_are_added_once(store: &dyn Store) {
    let draft = store.create_plan(&new_plan("draft", false), "t").unwrap();
    assert!(matches!(
        store.add_specs(&draft.id, &[new_spec("a", &[], 0)], "t"),
        Err(StoreError::Conflict(_))
    ));
    let plan = running_plan(store, "goal");
    let set = [new_spec("a", &[], 0), new_spec("b", &["a"], 5)];
    let created = store.add_specs(&plan, &set, "loop").unwrap();
    assert_eq!(created.len(), 2);
    assert_eq!(created[1].id, format!("{plan}/b"));
    assert_eq!(created[1].depends_on, vec!["a".to_owned()]);
    assert_eq!(created[1].priority, 5);
    assert_eq!(created[1].status, PipelineStatus::Pending);
    assert_eq!(created[1].branch, format!("td/{plan}/b"));
    assert_eq!(
        created[1].worktree,
        format!(".taskdaemon/worktrees/{plan}/b")
    );

    // The crash-recovery replay: same set, same records, no new events.
    let events_before = store.last_event_seq().unwrap();
    let replay = store.add_specs(&plan, &set, "loop").unwrap();
    assert_eq!(replay, created);
    assert_eq!(store.last_event_seq().unwrap(), events_before);
    // One at a time works too, and is as idempotent.
    let one = store
        .add_specs(&plan, &[new_spec("b", &["a"], 5)], "loop")
        .unwrap();
    assert_eq!(one[0], created[1]);

    let changed = store
        .add_specs(
            &plan,
            &[new_spec("c", &[], 0), new_spec("a", &["b"], 0)],
            "t",
        )
        .unwrap_err();
    assert!(
        matches!(&changed, StoreError::Conflict(m) if m.contains("spec 'a' already exists")),
        "{changed}"
    );
    let unknown = store
        .add_specs(
            &plan,
            &[new_spec("c", &[], 0), new_spec("d", &["zz"], 0)],
            "t",
        )
        .unwrap_err();
    assert!(
        matches!(
            &unknown,
            StoreError::Pipeline(PipelineError::UnknownDependency { missing, .. }) if missing == "zz"
        ),
        "{unknown}"
    );
    let cycle = store
        .add_specs(
            &plan,
            &[new_spec("c", &["d"], 0), new_spec("d", &["c", "b"], 0)],
            "t",
        )
        .unwrap_err();
    assert_eq!(
        cycle.to_string(),
        "the specs' dependencies form a cycle: d -> c -> d"
    );
    let bad_name = store
        .add_specs(&plan, &[new_spec("Bad_Name", &[], 0)], "t")
        .unwrap_err();
    assert!(bad_name.to_string().contains("'Bad_Name'"), "{bad_name}");
    // Nothing of a refused set stayed behind.
    let tree = store.plan_tree(&plan).unwrap();
    let names: Vec<&str> = tree.specs.iter().map(|s| s.spec.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(store.last_event_seq().unwrap(), events_before);
    // A later spec may depend on an earlier one.
    store
        .add_specs(&plan, &[new_spec("c", &["b"], 0)], "t")
        .unwrap();
    assert_eq!(
        kinds(store, &format!("{plan}/c")),
        vec![EventKind::SpecCreated]
    );
    assert!(matches!(
        store.spec(&format!("{plan}/zz")),
        Err(StoreError::Missing { what: "spec", .. })
    ));
}

/// Phases are numbered from 1 in creation order, added once by name.
pub fn phases_are_numbered_and_added_once(store: &dyn Store) {
    let plan = running_plan(store, "goal");
    store
        .add_specs(&plan, &[new_spec("a", &[], 0)], "t")
        .unwrap();
    let spec = format!("{plan}/a");
    let first = store
        .add_phases(&spec, &[new_phase("one"), new_phase("two")], "loop")
        .unwrap();
    let numbers: Vec<u32> = first.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(first[1].id, format!("{spec}/2"));
    assert_eq!(first[1].validation, "test -f two.txt");
    // Replaying the first, then adding a third: numbering goes on.
    let more = store
        .add_phases(&spec, &[new_phase("one"), new_phase("three")], "loop")
        .unwrap();
    assert_eq!(more[0], first[0]);
    assert_eq!(more[1].number, 3);
    let mut other = new_phase("two");
    other.validation = "false".into();
    assert!(matches!(
        store.add_phases(&spec, &[other], "loop"),
        Err(StoreError::Conflict(_))
    ));
    let mut no_validation = new_phase("four");
    no_validation.validation = " ".into();
    assert!(matches!(
        store.add_phases(&spec, &[no_validation], "loop"),
        Err(StoreError::Pipeline(PipelineError::Empty(_)))
    ));
    let tree = store.plan_tree(&plan).unwrap();
    assert_eq!(tree.specs[0].phases.len(), 3);
    let phase = store
        .set_phase_status(&format!("{spec}/1"), PipelineStatus::Running, None, "d")
        .unwrap();
    assert_eq!(phase.status, PipelineStatus::Running);
    assert_eq!(
        kinds(store, &phase.id),
        vec![EventKind::PhaseCreated, EventKind::PhaseStatus]
    );
}

/// The scheduler's query: pending specs of running plans with every
/// dependency succeeded, by spec priority, then plan age.
pub fn ready_specs_follow_dependencies_and_priority(store: &dyn Store) {
    let old = running_plan(store, "old");
    let new = running_plan(store, "new");
    let draft = store.create_plan(&new_plan("draft", true), "t").unwrap();
    store
        .add_specs(
            &old,
            &[
                new_spec("a", &[], 0),
                new_spec("b", &["a"], 9),
                new_spec("c", &[], 1),
            ],
            "t",
        )
        .unwrap();
    store
        .add_specs(&new, &[new_spec("x", &[], 0), new_spec("y", &[], 1)], "t")
        .unwrap();
    // A pending (not yet running) plan's specs wait.
    store
        .add_specs(&draft.id, &[new_spec("p", &[], 100)], "t")
        .unwrap();
    let ready = |store: &dyn Store| -> Vec<String> {
        store
            .ready_specs(10)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
    };
    assert_eq!(
        ready(store),
        [
            format!("{old}/c"),
            format!("{new}/y"),
            format!("{old}/a"),
            format!("{new}/x")
        ]
    );
    let a = format!("{old}/a");
    store
        .set_spec_status(&a, PipelineStatus::Running, None, "d")
        .unwrap();
    assert!(!ready(store).contains(&format!("{old}/b")));
    store
        .set_spec_status(&a, PipelineStatus::Succeeded, None, "d")
        .unwrap();
    assert_eq!(ready(store)[0], format!("{old}/b"), "priority 9 goes first");
    assert_eq!(store.ready_specs(2).unwrap().len(), 2);
}

/// Cancel reaches every unfinished spec and phase; resume brings paused
/// and failed work back without touching what succeeded.
pub fn cancel_and_resume_cascade(store: &dyn Store) {
    let plan = running_plan(store, "goal");
    store
        .add_specs(&plan, &[new_spec("a", &[], 0), new_spec("b", &[], 0)], "t")
        .unwrap();
    let (a, b) = (format!("{plan}/a"), format!("{plan}/b"));
    store
        .add_phases(&a, &[new_phase("one"), new_phase("two")], "t")
        .unwrap();
    let one = format!("{a}/1");
    let two = format!("{a}/2");
    store
        .set_spec_status(&a, PipelineStatus::Running, None, "d")
        .unwrap();
    store
        .set_phase_status(&one, PipelineStatus::Running, None, "d")
        .unwrap();
    store
        .set_phase_status(&one, PipelineStatus::Succeeded, None, "d")
        .unwrap();
    store
        .set_phase_status(&two, PipelineStatus::Running, None, "d")
        .unwrap();
    store
        .set_phase_status(&two, PipelineStatus::Failed, Some("exit 1"), "d")
        .unwrap();
    store
        .set_spec_status(&a, PipelineStatus::Paused, Some("conflict in x.rs"), "d")
        .unwrap();
    store
        .set_plan_status(&plan, PipelineStatus::Paused, Some("conflict"), "d")
        .unwrap();

    let resumed = store.resume_plan(&plan, "cli").unwrap();
    assert_eq!(resumed.plan.status, PipelineStatus::Pending);
    assert_eq!(resumed.plan.note.as_deref(), Some("resumed"));
    let spec_a = &resumed.specs[0];
    assert_eq!(spec_a.spec.status, PipelineStatus::Pending);
    assert_eq!(spec_a.phases[0].status, PipelineStatus::Succeeded);
    assert_eq!(spec_a.phases[1].status, PipelineStatus::Pending);
    assert_eq!(resumed.specs[1].spec.status, PipelineStatus::Pending);
    // Nothing paused or failed is left: resume again is refused.
    assert!(matches!(
        store.resume_plan(&plan, "cli"),
        Err(StoreError::Conflict(_))
    ));

    store
        .set_spec_status(&b, PipelineStatus::Running, None, "d")
        .unwrap();
    store
        .set_spec_status(&b, PipelineStatus::Succeeded, None, "d")
        .unwrap();
    let before = store.last_event_seq().unwrap();
    let cancelled = store.cancel_plan(&plan, "no longer needed", "cli").unwrap();
    assert_eq!(cancelled.plan.status, PipelineStatus::Cancelled);
    assert_eq!(cancelled.specs[0].spec.status, PipelineStatus::Cancelled);
    assert_eq!(
        cancelled.specs[0].phases[0].status,
        PipelineStatus::Succeeded
    );
    assert_eq!(
        cancelled.specs[0].phases[1].status,
        PipelineStatus::Cancelled
    );
    assert_eq!(cancelled.specs[1].spec.status, PipelineStatus::Succeeded);
    // Plan, spec a and its phase 2: three events.
    let events = store.events_after(before, &[], 100).unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(
        store.cancel_plan(&plan, "again", "cli"),
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .plans(&PlanFilter {
                open_only: true,
                ..PlanFilter::default()
            })
            .unwrap()
            .is_empty()
    );
}

/// Spending recorded on a phase adds up on its spec and plan.
pub fn costs_roll_up(store: &dyn Store) {
    let plan = running_plan(store, "goal");
    store
        .add_specs(&plan, &[new_spec("a", &[], 0), new_spec("b", &[], 0)], "t")
        .unwrap();
    let a = format!("{plan}/a");
    store.add_phases(&a, &[new_phase("one")], "t").unwrap();
    let cost = |i, o, usd| PipelineCost {
        input_tokens: i,
        output_tokens: o,
        cost_usd: usd,
    };
    store
        .add_pipeline_cost(&format!("{a}/1"), &cost(100, 10, 0.5))
        .unwrap();
    store.add_pipeline_cost(&a, &cost(1, 1, 0.25)).unwrap();
    store
        .add_pipeline_cost(&format!("{plan}/b"), &cost(5, 0, 1.0))
        .unwrap();
    store.add_pipeline_cost(&plan, &cost(0, 2, 0.0)).unwrap();
    let tree = store.plan_tree(&plan).unwrap();
    assert_eq!(tree.specs[0].phases[0].cost, cost(100, 10, 0.5));
    assert_eq!(tree.specs[0].spec.cost, cost(101, 11, 0.75));
    assert_eq!(tree.specs[1].spec.cost, cost(5, 0, 1.0));
    assert_eq!(tree.plan.cost, cost(106, 13, 1.75));
    assert!(matches!(
        store.add_pipeline_cost(&format!("{a}/9"), &cost(1, 1, 1.0)),
        Err(StoreError::Missing { what: "phase", .. })
    ));
    store.set_pipeline_loop(&a, Some("LOOP-9")).unwrap();
    assert_eq!(store.spec(&a).unwrap().loop_task.as_deref(), Some("LOOP-9"));
    store.set_pipeline_loop(&a, None).unwrap();
    assert_eq!(store.spec(&a).unwrap().loop_task, None);
    // Every loop that ran a piece of the plan is kept, once, oldest first.
    store
        .set_pipeline_loop(&format!("{a}/1"), Some("LOOP-10"))
        .unwrap();
    store.set_pipeline_loop(&a, Some("LOOP-9")).unwrap();
    store.set_pipeline_loop(&plan, Some("LOOP-8")).unwrap();
    assert_eq!(
        store.pipeline_loops(&plan).unwrap(),
        vec![
            (a.clone(), "LOOP-9".to_owned()),
            (format!("{a}/1"), "LOOP-10".to_owned()),
            (plan.clone(), "LOOP-8".to_owned()),
        ]
    );
}

/// A pipeline loop's recorded iterations are charged to the record it is
/// linked from (and up), each once: recording one again (a crash replay)
/// charges nothing. A loop linked from nothing charges nothing.
pub fn loop_iterations_are_charged_once(store: &dyn Store) {
    let plan = running_plan(store, "goal");
    store
        .add_specs(&plan, &[new_spec("a", &[], 0)], "t")
        .unwrap();
    let a = format!("{plan}/a");
    store.add_phases(&a, &[new_phase("one")], "t").unwrap();
    let phase = format!("{a}/1");
    let charged = store
        .create_loop(&super::loops::new_loop("ralph"), "daemon")
        .unwrap()
        .task
        .id;
    let unlinked = store
        .create_loop(&super::loops::new_loop("other"), "daemon")
        .unwrap()
        .task
        .id;
    store.set_pipeline_loop(&phase, Some(&charged)).unwrap();
    let iteration = |n: u32| taskdaemon_core::LoopIteration {
        iteration: n,
        tool_calls: 1,
        validation_exit_code: Some(1),
        passed: false,
        input_tokens: 100,
        output_tokens: 10,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        cost_usd: 0.5,
    };
    for id in [&charged, &unlinked] {
        store.mark_loop_running(id, 1, "daemon").unwrap();
        assert!(
            store
                .record_loop_iteration(id, &iteration(1), "daemon")
                .unwrap()
        );
        assert!(
            !store
                .record_loop_iteration(id, &iteration(1), "daemon")
                .unwrap()
        );
        assert!(
            store
                .record_loop_iteration(id, &iteration(2), "daemon")
                .unwrap()
        );
    }
    let two = PipelineCost {
        input_tokens: 200,
        output_tokens: 20,
        cost_usd: 1.0,
    };
    let tree = store.plan_tree(&plan).unwrap();
    assert_eq!(
        tree.specs[0].phases[0].cost, two,
        "iteration 1 once, then 2"
    );
    assert_eq!(tree.specs[0].spec.cost, two);
    assert_eq!(tree.plan.cost, two, "the unlinked loop charged nothing");
}

/// A loop record pointing at a loop task that does not exist is reported
/// by the integrity check and removed by repair; the rest of the plan and
/// its real loop records stay.
pub fn repair_removes_pipeline_orphans(store: &dyn Store) {
    let plan = running_plan(store, "goal");
    store
        .add_specs(&plan, &[new_spec("a", &[], 0)], "t")
        .unwrap();
    let a = format!("{plan}/a");
    let task = store
        .create_process(&process_spec(None, &["true"]), "t")
        .unwrap();
    store.set_pipeline_loop(&a, Some(&task.id)).unwrap();
    assert_eq!(
        store.check_integrity().unwrap().problems,
        Vec::<String>::new()
    );
    store.set_pipeline_loop(&plan, Some("LOOP-404")).unwrap();
    let problems = store.check_integrity().unwrap().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!("{plan} -> LOOP-404: loop record of ")),
        "{problems:?}"
    );
    let report = store.repair("t").unwrap();
    assert_eq!(report.orphans_removed, vec![format!("{plan} -> LOOP-404")]);
    assert_eq!(report.remaining, Vec::<String>::new());
    assert_eq!(
        store.pipeline_loops(&plan).unwrap(),
        vec![(a.clone(), task.id.clone())]
    );
    assert_eq!(store.plan_tree(&plan).unwrap().specs.len(), 1);
    let again = store.repair("t").unwrap();
    assert!(again.orphans_removed.is_empty(), "{again:?}");
}

/// Messages: addressed and broadcast delivery, queries answered once,
/// dead letters with their reason.
pub fn messages_are_delivered_answered_or_dead(store: &dyn Store) {
    let plan = running_plan(store, "goal");
    store
        .add_specs(&plan, &[new_spec("a", &[], 0), new_spec("b", &[], 0)], "t")
        .unwrap();
    let send = |from: &str, to: &str, kind, body: &str| {
        store
            .send_message(
                &NewMessage {
                    plan: plan.clone(),
                    from: from.into(),
                    to: to.into(),
                    kind,
                    body: body.into(),
                },
                "t",
            )
            .unwrap()
    };
    let share = send("a", "plan", MessageKind::Share, "the API uses JWT");
    let query = send("b", "human", MessageKind::Query, "Which OAuth provider?");
    let alert = send("a", "b", MessageKind::Alert, "I changed lib.rs");
    assert_eq!(share.id, "MSG-1");
    assert_eq!(query.delivery, Delivery::Pending);

    let for_b: Vec<String> = store
        .pending_messages(&plan, "b")
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(for_b, [share.id.clone(), alert.id.clone()]);
    // A broadcast does not come back to its sender.
    assert!(store.pending_messages(&plan, "a").unwrap().is_empty());

    let delivered = store.mark_message_delivered(&share.id, "d").unwrap();
    assert_eq!(delivered.delivery, Delivery::Delivered);
    assert_eq!(
        store.mark_message_delivered(&share.id, "d").unwrap(),
        delivered,
        "marking again changes nothing"
    );
    assert_eq!(store.pending_messages(&plan, "b").unwrap().len(), 1);

    assert!(matches!(
        store.answer_message(&alert.id, "ok", "cli"),
        Err(StoreError::Conflict(_))
    ));
    let answered = store.answer_message("msg-2", "GitHub", "cli").unwrap();
    assert_eq!(answered.delivery, Delivery::Answered);
    assert_eq!(answered.answer.as_deref(), Some("GitHub"));
    assert!(matches!(
        store.answer_message(&query.id, "again", "cli"),
        Err(StoreError::Conflict(_))
    ));

    let dead = store
        .dead_letter(&alert.id, "spec b has ended", "d")
        .unwrap();
    assert_eq!(dead.delivery, Delivery::Dead);
    assert_eq!(dead.reason.as_deref(), Some("spec b has ended"));
    let letters = store
        .messages(&MessageFilter {
            plan: Some(plan.clone()),
            delivery: vec![Delivery::Dead],
            ..MessageFilter::default()
        })
        .unwrap();
    assert_eq!(letters, vec![dead]);
    let queries = store
        .messages(&MessageFilter {
            to: Some("human".into()),
            kind: Some(MessageKind::Query),
            ..MessageFilter::default()
        })
        .unwrap();
    assert_eq!(queries.len(), 1);

    let unknown = store
        .send_message(
            &NewMessage {
                plan: plan.clone(),
                from: "a".into(),
                to: "nobody".into(),
                kind: MessageKind::Share,
                body: "hi".into(),
            },
            "t",
        )
        .unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("recipient 'nobody' is not a spec"),
        "{unknown}"
    );
    assert!(matches!(
        store.message("MSG-99"),
        Err(StoreError::Missing {
            what: "message",
            ..
        })
    ));
    let sent = store
        .events_after(0, &[EventKind::MessageSent], 100)
        .unwrap();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].task_id.as_deref(), Some(plan.as_str()));
}

/// The answer to a query reaches the spec that asked once: it is pending
/// for the asker from the moment it is answered until its loop reads it,
/// and not after; it is no message for the asker before it is answered.
pub fn an_answer_reaches_the_asker_once(store: &dyn Store) {
    let plan = running_plan(store, "goal");
    store
        .add_specs(&plan, &[new_spec("a", &[], 0), new_spec("b", &[], 0)], "t")
        .unwrap();
    let ask = |to: &str| {
        store
            .send_message(
                &NewMessage {
                    plan: plan.clone(),
                    from: "a".into(),
                    to: to.into(),
                    kind: MessageKind::Query,
                    body: "tabs or spaces?".into(),
                },
                "t",
            )
            .unwrap()
    };
    let pending_ids = |spec: &str| -> Vec<String> {
        store
            .pending_messages(&plan, spec)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect()
    };
    let to_human = ask("human");
    let to_b = ask("b");
    assert!(pending_ids("a").is_empty(), "nothing answered yet");
    assert_eq!(pending_ids("b"), [to_b.id.as_str()], "b is asked");
    assert!(matches!(
        store.deliver_message(&to_human.id, "a", "d"),
        Err(StoreError::Conflict(_))
    ));

    store.answer_message(&to_human.id, "tabs", "human").unwrap();
    store.deliver_message(&to_b.id, "b", "d").unwrap();
    store
        .answer_as(&plan, "b", &to_b.id, "spaces", "d")
        .unwrap();
    let pending = store.pending_messages(&plan, "a").unwrap();
    let answers: Vec<(&str, Option<&str>)> = pending
        .iter()
        .map(|m| (m.id.as_str(), m.answer.as_deref()))
        .collect();
    assert_eq!(
        answers,
        [
            (to_human.id.as_str(), Some("tabs")),
            (to_b.id.as_str(), Some("spaces"))
        ]
    );
    assert!(pending_ids("b").is_empty(), "b's question was read");

    let read = store.deliver_message(&to_human.id, "a", "d").unwrap();
    assert_eq!(
        read.delivery,
        Delivery::Answered,
        "still the answered query"
    );
    assert_eq!(read.answer.as_deref(), Some("tabs"));
    let delivered: Vec<(&str, Delivery)> = read
        .deliveries
        .iter()
        .map(|d| (d.recipient.as_str(), d.delivery))
        .collect();
    assert_eq!(delivered, [("a", Delivery::Delivered)]);
    assert_eq!(store.message(&to_human.id).unwrap(), read);
    assert_eq!(
        store.deliver_message(&to_human.id, "a", "d").unwrap(),
        read,
        "reading again changes nothing"
    );
    assert_eq!(pending_ids("a"), [to_b.id.as_str()], "one answer left");
    store.deliver_message(&to_b.id, "a", "d").unwrap();
    assert!(pending_ids("a").is_empty(), "every answer reached a once");

    let delivered = store
        .messages(&MessageFilter {
            plan: Some(plan.clone()),
            delivery: vec![Delivery::Delivered],
            ..MessageFilter::default()
        })
        .unwrap();
    assert!(
        delivered.is_empty(),
        "an answered query is answered, not delivered: {delivered:?}"
    );
    let answered = store
        .messages(&MessageFilter {
            plan: Some(plan.clone()),
            delivery: vec![Delivery::Answered],
            ..MessageFilter::default()
        })
        .unwrap();
    assert_eq!(answered.len(), 2, "{answered:?}");
}

/// A broadcast has a delivery per recipient loop: one loop reading it does
/// not take it from the others, a recipient is delivered once, a spec that
/// ended without reading it gets a dead delivery with the reason, and an
/// addressed message is read only by its recipient.
pub fn broadcasts_are_delivered_per_recipient(store: &dyn Store) {
    let plan = running_plan(store, "goal");
    let specs = [
        new_spec("a", &[], 0),
        new_spec("b", &[], 0),
        new_spec("c", &[], 0),
    ];
    store.add_specs(&plan, &specs, "t").unwrap();
    let send = |from: &str, to: &str, body: &str| {
        store
            .send_message(
                &NewMessage {
                    plan: plan.clone(),
                    from: from.into(),
                    to: to.into(),
                    kind: MessageKind::Share,
                    body: body.into(),
                },
                "t",
            )
            .unwrap()
    };
    let pending_ids = |spec: &str| -> Vec<String> {
        store
            .pending_messages(&plan, spec)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect()
    };
    let share = send("a", "plan", "the API uses JWT");
    assert!(share.deliveries.is_empty());
    assert_eq!(pending_ids("b"), [share.id.as_str()]);
    assert_eq!(pending_ids("c"), [share.id.as_str()]);

    let read = store.deliver_message(&share.id, "b", "d").unwrap();
    assert_eq!(read.delivery, Delivery::Pending, "others may still read it");
    assert_eq!(read.deliveries.len(), 1);
    assert_eq!(read.deliveries[0].recipient, "b");
    assert_eq!(read.deliveries[0].delivery, Delivery::Delivered);
    assert!(pending_ids("b").is_empty(), "b read it");
    assert_eq!(pending_ids("c"), [share.id.as_str()], "c has not");
    assert_eq!(
        store.deliver_message(&share.id, "b", "d").unwrap(),
        read,
        "reading again changes nothing"
    );
    assert_eq!(store.message(&share.id).unwrap(), read);
    assert!(matches!(
        store.deliver_message(&share.id, "a", "d"),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.deliver_message(&share.id, "zz", "d"),
        Err(StoreError::Invalid(_))
    ));

    let dead = store
        .dead_letter_for(&share.id, "c", "spec c has ended", "d")
        .unwrap();
    let c = dead.deliveries.iter().find(|d| d.recipient == "c").unwrap();
    assert_eq!(c.delivery, Delivery::Dead);
    assert_eq!(c.reason.as_deref(), Some("spec c has ended"));
    assert!(matches!(
        store.deliver_message(&share.id, "c", "d"),
        Err(StoreError::Conflict(_))
    ));
    let letters = store
        .messages(&MessageFilter {
            plan: Some(plan.clone()),
            delivery: vec![Delivery::Dead],
            ..MessageFilter::default()
        })
        .unwrap();
    assert_eq!(
        letters,
        vec![dead.clone()],
        "a broadcast dead for one recipient is a dead letter"
    );

    let addressed = send("a", "b", "for b only");
    assert!(matches!(
        store.deliver_message(&addressed.id, "c", "d"),
        Err(StoreError::Conflict(_))
    ));
    let addressed = store.deliver_message(&addressed.id, "b", "d").unwrap();
    assert_eq!(addressed.delivery, Delivery::Delivered);
    assert!(addressed.deliveries.is_empty());
    assert!(matches!(
        store.dead_letter_for(&addressed.id, "c", "x", "d"),
        Err(StoreError::Conflict(_))
    ));

    // A spec that ends after a broadcast, without reading it, missed it.
    let second = send("b", "plan", "second finding");
    store
        .set_spec_status(&format!("{plan}/c"), PipelineStatus::Cancelled, None, "t")
        .unwrap();
    let settled = store.settle_broadcasts(&plan, "d").unwrap();
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert_eq!(settled[0].id, second.id);
    let missed: Vec<(&str, Delivery)> = settled[0]
        .deliveries
        .iter()
        .map(|d| (d.recipient.as_str(), d.delivery))
        .collect();
    assert_eq!(missed, [("c", Delivery::Dead)], "a is still open");
    assert!(
        settled[0].deliveries[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("spec c ended (cancelled)"),
        "{settled:?}"
    );
    assert!(store.settle_broadcasts(&plan, "d").unwrap().is_empty());
    assert_eq!(pending_ids("a"), [second.id.as_str()]);

    let delivered = store
        .events_after(0, &[EventKind::MessageDelivered], 100)
        .unwrap();
    assert!(
        delivered
            .iter()
            .any(|e| e.message == format!("{} delivered to b", share.id)),
        "{delivered:?}"
    );
}

/// Fills `store` with a running plan carrying everything an export must
/// keep: specs with a dependency, phases, costs, a loop id, notes, and
/// messages in each delivery state. Returns the plan's id.
pub fn fill_plan(store: &dyn Store) -> String {
    let plan = running_plan(store, "exported goal");
    store
        .submit_plan(
            &plan,
            &PlanContent {
                title: "T".into(),
                summary: "S".into(),
                body: "B".into(),
            },
            "t",
        )
        .unwrap();
    store
        .add_specs(
            &plan,
            &[new_spec("b", &[], 3), new_spec("a", &["b"], 0)],
            "t",
        )
        .unwrap();
    let b = format!("{plan}/b");
    store
        .add_phases(&b, &[new_phase("one"), new_phase("two")], "t")
        .unwrap();
    store
        .set_spec_status(&b, PipelineStatus::Running, None, "t")
        .unwrap();
    store
        .set_phase_status(&format!("{b}/1"), PipelineStatus::Running, Some("go"), "t")
        .unwrap();
    store
        .set_pipeline_loop(&format!("{b}/1"), Some("LOOP-1"))
        .unwrap();
    store
        .add_pipeline_cost(
            &format!("{b}/1"),
            &PipelineCost {
                input_tokens: 10,
                output_tokens: 2,
                cost_usd: 0.125,
            },
        )
        .unwrap();
    let message = |to: &str, kind| NewMessage {
        plan: plan.clone(),
        from: "b".into(),
        to: to.into(),
        kind,
        body: format!("to {to}"),
    };
    let share = store
        .send_message(&message("plan", MessageKind::Share), "t")
        .unwrap();
    store
        .dead_letter_for(&share.id, "a", "spec a ended", "t")
        .unwrap();
    let query = store
        .send_message(&message("human", MessageKind::Query), "t")
        .unwrap();
    store.answer_message(&query.id, "yes", "t").unwrap();
    let stop = store
        .send_message(&message("a", MessageKind::Stop), "t")
        .unwrap();
    store.dead_letter(&stop.id, "ended", "t").unwrap();
    plan
}
