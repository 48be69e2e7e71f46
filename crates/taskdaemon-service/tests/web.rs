//! The web views and rules on a real SQLite workspace: the token, share
//! links and their scopes, and the filtered, paged task listing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::TestWs;
use taskdaemon_core::NewAgent;
use taskdaemon_core::process::RestartPolicy;
use taskdaemon_service::{Access, Agent, ErrorClass, LogSlice, NewTask, ShareScope, TaskQuery};

fn tracked(service: &taskdaemon_service::Service, title: &str, labels: &[&str]) -> String {
    let agent = Agent::new(Some("claude"), Some("conv-1")).unwrap();
    let new = NewTask {
        title: title.to_owned(),
        labels: labels.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    };
    service.add_task(&agent, new).unwrap().id
}

#[test]
fn token_is_private_stable_and_rotates() {
    let ws = TestWs::new();
    let service = ws.service();
    let token = service.web_token().unwrap();
    assert_eq!(token.len(), 64);
    let mode = std::fs::metadata(ws.workspace.web_token_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(service.web_token().unwrap(), token, "made once, then kept");
    assert_eq!(service.web_access(&token).unwrap(), Some(Access::Owner));
    assert_eq!(service.web_access("wrong").unwrap(), None);
    assert_eq!(service.web_access("").unwrap(), None);
    let rotated = service.rotate_web_token().unwrap();
    assert_ne!(rotated, token);
    assert_eq!(
        service.web_access(&token).unwrap(),
        None,
        "the old one is dead"
    );
    assert_eq!(service.web_access(&rotated).unwrap(), Some(Access::Owner));
}

#[test]
fn share_links_are_read_only_scoped_expire_and_revoke() {
    let ws = TestWs::new();
    let service = ws.service();
    let first = tracked(&service, "one", &[]);
    let second = tracked(&service, "two", &[]);
    let share = service
        .create_share(
            ShareScope::Task(first.to_lowercase()),
            Duration::from_secs(3600),
        )
        .unwrap();
    assert_eq!(share.scope, ShareScope::Task(first.clone()), "canonical id");
    let access = service.web_access(&share.secret).unwrap().unwrap();
    assert!(!access.can_act());
    let scope = access.scope();
    let page = service.task_page(&TaskQuery::default(), &scope).unwrap();
    assert_eq!(
        page.tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        [first.as_str()]
    );
    assert!(service.scoped_task(&first, &scope).is_ok());
    let hidden = service.scoped_task(&second, &scope).unwrap_err();
    assert_eq!(hidden.class(), ErrorClass::NotFound);

    // Listed without secrets; a fresh service (another host) sees them.
    let listed = ws.service().shares().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].secret.is_empty());

    let expired = service
        .create_share(ShareScope::All, Duration::ZERO)
        .unwrap();
    assert_eq!(service.web_access(&expired.secret).unwrap(), None);

    service.revoke_share(&share.id).unwrap();
    assert_eq!(service.web_access(&share.secret).unwrap(), None);
    let unknown = service.revoke_share("SHARE-nope").unwrap_err();
    assert_eq!(unknown.class(), ErrorClass::NotFound);
    let bad_task = service
        .create_share(ShareScope::Task("TASK-404".into()), Duration::from_secs(60))
        .unwrap_err();
    assert_eq!(bad_task.class(), ErrorClass::NotFound);
    let bad_queue = service
        .create_share(ShareScope::Queue("nope".into()), Duration::from_secs(60))
        .unwrap_err();
    assert_eq!(bad_queue.class(), ErrorClass::BadInput);
}

#[test]
fn task_pages_filter_and_follow_the_cursor_without_gaps() {
    let ws = TestWs::new();
    let service = ws.service();
    let mut made = Vec::new();
    for n in 0..7 {
        made.push(tracked(
            &service,
            &format!("t{n}"),
            if n % 2 == 0 { &["even"] } else { &[] },
        ));
    }
    let mut seen = Vec::new();
    let mut query = TaskQuery {
        limit: Some(3),
        ..Default::default()
    };
    loop {
        let page = service.task_page(&query, &ShareScope::All).unwrap();
        seen.extend(page.tasks.iter().map(|t| t.id.clone()));
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
    }
    made.reverse();
    assert_eq!(seen, made, "newest first, each once");

    let even = service
        .task_page(
            &TaskQuery {
                label: Some("even".into()),
                ..Default::default()
            },
            &ShareScope::All,
        )
        .unwrap();
    assert_eq!(even.tasks.len(), 4);
    let manual = TaskQuery {
        kind: Some("manual".into()),
        status: Some("pending".into()),
        tool: Some("Claude".into()),
        ..Default::default()
    };
    assert_eq!(
        service
            .task_page(&manual, &ShareScope::All)
            .unwrap()
            .tasks
            .len(),
        7
    );

    for bad in [
        TaskQuery {
            status: Some("sleeping".into()),
            ..Default::default()
        },
        TaskQuery {
            kind: Some("robot".into()),
            ..Default::default()
        },
        TaskQuery {
            cursor: Some("not-a-cursor".into()),
            ..Default::default()
        },
        TaskQuery {
            limit: Some(0),
            ..Default::default()
        },
    ] {
        let err = service.task_page(&bad, &ShareScope::All).unwrap_err();
        assert_eq!(err.class(), ErrorClass::BadInput, "{bad:?}: {err}");
    }
}

#[test]
fn queue_scope_sees_only_that_queue() {
    let ws = TestWs::new();
    let service = ws.service();
    tracked(&service, "not queued", &[]);
    let queued = service
        .store()
        .create_agent(
            &NewAgent {
                wanted_id: "job-1".into(),
                queue: "ad-hoc".into(),
                document: "job-1.md".into(),
                executor: "command".into(),
                argv: vec!["true".into()],
                cwd: "/".into(),
                env: Vec::new(),
                restart: RestartPolicy::default(),
                max_attempts: 1,
                timeout_ms: None,
                limits: Default::default(),
                container: None,
            },
            "test",
        )
        .unwrap();
    let scope = ShareScope::Queue("ad-hoc".into());
    let page = service.task_page(&TaskQuery::default(), &scope).unwrap();
    assert_eq!(
        page.tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        [queued.id.as_str()]
    );
    let other = TaskQuery {
        queue: Some("planned".into()),
        ..Default::default()
    };
    assert!(service.task_page(&other, &scope).unwrap().tasks.is_empty());
    assert!(service.scope_allows(&queued, &scope).unwrap());
}

#[test]
fn logs_read_by_tail_or_byte_range_and_follow_on() {
    let ws = TestWs::new();
    let service = ws.service();
    let id = tracked(&service, "logs", &[]);
    let empty = service
        .task_log(&id, &ShareScope::All, false, LogSlice::Tail(10))
        .unwrap();
    assert_eq!((empty.size, empty.text.as_str()), (0, ""));
    let path = ws.workspace.stdout_log(&id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
    let tail = service
        .task_log(&id, &ShareScope::All, false, LogSlice::Tail(2))
        .unwrap();
    assert_eq!(tail.text, "two\nthree\n");
    assert_eq!((tail.offset, tail.end, tail.size), (4, 14, 14));
    let range = service
        .task_log(
            &id,
            &ShareScope::All,
            false,
            LogSlice::Range {
                offset: 4,
                length: 3,
            },
        )
        .unwrap();
    assert_eq!((range.text.as_str(), range.end), ("two", 7));
    let past = service
        .task_log(
            &id,
            &ShareScope::All,
            false,
            LogSlice::Range {
                offset: 99,
                length: 3,
            },
        )
        .unwrap();
    assert_eq!((past.text.as_str(), past.offset), ("", 14));
    let other = tracked(&service, "other", &[]);
    let hidden = service
        .task_log(&id, &ShareScope::Task(other), false, LogSlice::Tail(1))
        .unwrap_err();
    assert_eq!(hidden.class(), ErrorClass::NotFound);
    let bad = service
        .spawn_request(taskdaemon_service::SpawnRequest::default())
        .unwrap_err();
    assert_eq!(bad.class(), ErrorClass::BadInput);
}

#[test]
fn aggregates_and_report_count_outcomes_durations_and_reasons() {
    use taskdaemon_core::process::ExitOutcome;
    use taskdaemon_store::conformance::{spec, started};
    let ws = TestWs::new();
    let service = ws.service();
    let store = service.store();
    let mut ids = Vec::new();
    for (pid, code) in [(100, 0), (200, 0), (300, 7)] {
        let task = store.create_process(&spec(None, &["true"]), "t").unwrap();
        store.mark_started(&task.id, 0, &started(pid), "t").unwrap();
        store
            .record_exit(&task.id, pid, ExitOutcome::exited(code), None, "t")
            .unwrap();
        ids.push(task.id);
    }
    let queued = store
        .submit(
            &taskdaemon_store::conformance::agent("build", "job.md"),
            "t",
        )
        .unwrap();
    store.request_stop(&queued.id, "t").unwrap();
    tracked(&service, "still open", &[]);

    let aggregates = service.aggregates(0).unwrap();
    assert_eq!(aggregates.total.finished, 4);
    assert_eq!(aggregates.total.succeeded, 2);
    assert_eq!(aggregates.total.failed, 1);
    assert_eq!(aggregates.total.cancelled, 1);
    assert_eq!(aggregates.total.completion_rate, Some(0.5));
    assert!(aggregates.total.p50_ms.is_some(), "three tasks started");
    let kinds: Vec<(&str, u64)> = aggregates
        .by_kind
        .iter()
        .map(|a| (a.key.as_str(), a.finished))
        .collect();
    assert_eq!(kinds, [("agent", 1), ("process", 3)]);
    let queues: Vec<&str> = aggregates.by_queue.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(queues, ["-", "build"]);
    assert_eq!(aggregates.by_day.len(), 1);
    let future = taskdaemon_core::time::now_millis() + 60_000;
    assert_eq!(service.aggregates(future).unwrap().total.finished, 0);

    let report = service.report(0).unwrap();
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].id, ids[2]);
    let markdown = report.to_markdown();
    assert!(
        markdown.contains("4 tasks ended: 2 succeeded, 1 failed, 1 cancelled"),
        "{markdown}"
    );
    assert!(markdown.contains(&format!("**{}**", ids[2])), "{markdown}");
    assert!(report.to_html().starts_with("<!doctype html>"));
}
