//! Conformance checks for tracked work, memory, search, history and transfer.

use taskdaemon_core::time::now_millis;
use taskdaemon_core::tracked::SearchSource;
use taskdaemon_core::{
    EventKind, MemoryKind, NewMemory, NewTracked, Status, TaskRecord, TrackedAction,
};

use crate::{ExportRecord, HistoryFilter, MemoryFilter, Store, StoreError, TrackedFilter};

/// A tracked task spec for tests.
pub fn tracked(title: &str, depends_on: &[&str]) -> NewTracked {
    NewTracked {
        title: title.to_owned(),
        depends_on: depends_on.iter().map(|s| (*s).to_owned()).collect(),
        ..NewTracked::default()
    }
}

fn add(store: &dyn Store, title: &str, depends_on: &[&str]) -> TaskRecord {
    store
        .create_tracked(&tracked(title, depends_on), "t")
        .unwrap()
}

fn done(store: &dyn Store, id: &str) -> TaskRecord {
    store
        .act_on_tracked(id, &TrackedAction::Start, "t")
        .unwrap();
    store
        .act_on_tracked(id, &TrackedAction::Done { note: None }, "t")
        .unwrap()
}

pub(super) fn event_kinds(store: &dyn Store, id: &str) -> Vec<EventKind> {
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

pub fn lifecycle(store: &dyn Store) {
    let task = add(store, "Write the parser", &[]);
    assert_eq!(task.status, Status::Pending);
    assert_eq!(task.title(), "Write the parser");
    let refused = store.act_on_tracked(&task.id, &TrackedAction::Done { note: None }, "t");
    assert!(
        matches!(refused, Err(StoreError::IllegalTransition(_))),
        "done before start must be refused: {refused:?}"
    );
    let running = store
        .act_on_tracked(&task.id, &TrackedAction::Start, "t")
        .unwrap();
    assert_eq!(running.status, Status::Running);
    assert!(running.started_at.is_some());
    let files = ["src/parser.rs".to_owned(), "src/lib.rs".to_owned()];
    let with_files = store.add_task_files(&task.id, &files, "t").unwrap();
    assert_eq!(with_files.files_modified, files);
    let finished = store
        .act_on_tracked(
            &task.id,
            &TrackedAction::Done {
                note: Some("parser handles CRLF".to_owned()),
            },
            "t",
        )
        .unwrap();
    assert_eq!(finished.status, Status::Succeeded);
    assert_eq!(finished.note.as_deref(), Some("parser handles CRLF"));
    assert!(finished.finished_at.is_some());
    assert_eq!(
        event_kinds(store, &task.id),
        [
            EventKind::Created,
            EventKind::Started,
            EventKind::ContextUpdated,
            EventKind::Finished
        ]
    );
    let process = store
        .create_process(&super::spec(None, &["true"]), "t")
        .unwrap();
    let err = store
        .act_on_tracked(&process.id, &TrackedAction::Start, "t")
        .unwrap_err();
    assert!(err.to_string().contains("process task"), "{err}");
    let failed = add(store, "doomed", &[]);
    store
        .act_on_tracked(&failed.id, &TrackedAction::Start, "t")
        .unwrap();
    store
        .act_on_tracked(
            &failed.id,
            &TrackedAction::Fail {
                reason: "no".to_owned(),
            },
            "t",
        )
        .unwrap();
    let succeeded: Vec<String> = store
        .recently_succeeded(5)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        succeeded,
        std::slice::from_ref(&task.id),
        "only successes are listed"
    );
}

pub fn dependencies_block_and_release(store: &dyn Store) {
    let a = add(store, "schema", &[]);
    let b = add(store, "queries", &[&a.id]);
    let c = add(store, "api", &[&a.id, &b.id]);
    assert_eq!(b.status, Status::Blocked);
    assert_eq!(c.depends_on, [a.id.clone(), b.id.clone()]);
    let ready: Vec<String> = store.ready(10).unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ready, std::slice::from_ref(&a.id));
    let err = store
        .act_on_tracked(&b.id, &TrackedAction::Start, "t")
        .unwrap_err();
    assert!(err.to_string().contains(&a.id), "names the blocker: {err}");

    done(store, &a.id);
    assert_eq!(store.task(&b.id).unwrap().status, Status::Pending);
    assert_eq!(
        store.task(&c.id).unwrap().status,
        Status::Blocked,
        "c still waits for b"
    );
    assert!(event_kinds(store, &b.id).contains(&EventKind::Unblocked));

    // Removing the unmet edge releases c; adding an unmet one blocks it again.
    let c = store.remove_dependency(&c.id, &b.id, "t").unwrap();
    assert_eq!(c.status, Status::Pending);
    assert_eq!(c.depends_on, std::slice::from_ref(&a.id));
    let c = store.add_dependency(&c.id, &b.id, "t").unwrap();
    assert_eq!(c.status, Status::Blocked);
    let missing = store.remove_dependency(&a.id, &b.id, "t");
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

pub fn bad_edges_are_refused_and_leave_no_trace(store: &dyn Store) {
    let a = add(store, "a", &[]);
    let b = add(store, "b", &[&a.id]);
    let c = add(store, "c", &[&b.id]);
    let before = store.last_event_seq().unwrap();
    let cycle = store.add_dependency(&a.id, &c.id, "t").unwrap_err();
    assert_eq!(
        cycle.to_string(),
        format!(
            "adding {a} -> {c} would make a cycle: {a} -> {c} -> {b} -> {a}",
            a = a.id,
            b = b.id,
            c = c.id
        )
    );
    let itself = store.add_dependency(&a.id, &a.id, "t").unwrap_err();
    assert!(
        itself.to_string().contains("cannot depend on itself"),
        "{itself}"
    );
    let unknown = store.add_dependency(&a.id, "TASK-999", "t").unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(ref id) if id == "TASK-999"));
    let unknown = store.create_tracked(&tracked("d", &["TASK-999"]), "t");
    assert!(matches!(unknown, Err(StoreError::NotFound(_))));
    let empty = store.create_tracked(&tracked("  ", &[]), "t");
    assert!(matches!(empty, Err(StoreError::Invalid(_))));
    assert_eq!(
        store.last_event_seq().unwrap(),
        before,
        "nothing was written"
    );
    assert!(store.task(&a.id).unwrap().depends_on.is_empty());
}

pub fn ready_orders_by_priority(store: &dyn Store) {
    let low = store
        .create_tracked(
            &NewTracked {
                priority: -10,
                ..tracked("low", &[])
            },
            "t",
        )
        .unwrap();
    let first_normal = add(store, "normal 1", &[]);
    let urgent = store
        .create_tracked(
            &NewTracked {
                priority: 20,
                ..tracked("urgent", &[])
            },
            "t",
        )
        .unwrap();
    let second_normal = add(store, "normal 2", &[]);
    let ready: Vec<String> = store.ready(10).unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(
        ready,
        [urgent.id, first_normal.id, second_normal.id, low.id]
    );
    assert_eq!(store.ready(2).unwrap().len(), 2);
}

pub fn labels_and_status_filter(store: &dyn Store) {
    let ui = store
        .create_tracked(
            &NewTracked {
                labels: vec!["ui".to_owned(), "bug".to_owned()],
                ..tracked("button", &[])
            },
            "t",
        )
        .unwrap();
    assert_eq!(ui.labels, ["bug", "ui"]);
    let other = add(store, "other", &[]);
    done(store, &other.id);
    let by_label = store
        .tracked(&TrackedFilter {
            label: Some("ui".to_owned()),
            ..TrackedFilter::default()
        })
        .unwrap();
    assert_eq!(by_label.len(), 1);
    assert_eq!(by_label[0].id, ui.id);
    let succeeded = store
        .tracked(&TrackedFilter {
            status: Some(Status::Succeeded),
            ..TrackedFilter::default()
        })
        .unwrap();
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0].id, other.id);
    store
        .create_process(&super::spec(None, &["true"]), "t")
        .unwrap();
    assert_eq!(
        store.tracked(&TrackedFilter::default()).unwrap().len(),
        2,
        "processes are not tracked tasks"
    );
}

fn memory(kind: MemoryKind, text: &str, key: Option<&str>, task: Option<&str>) -> NewMemory {
    NewMemory {
        kind,
        text: text.to_owned(),
        task_id: task.map(str::to_owned),
        key: key.map(str::to_owned),
        session: Some("s-1".to_owned()),
    }
}

pub fn memory_keys_replace(store: &dyn Store) {
    let task = add(store, "pick a queue", &[]);
    let first = store
        .remember(
            &memory(
                MemoryKind::Decision,
                "use SKIP LOCKED",
                Some("queue"),
                Some(&task.id),
            ),
            "t",
        )
        .unwrap();
    let second = store
        .remember(
            &memory(
                MemoryKind::Decision,
                "use LISTEN/NOTIFY",
                Some("queue"),
                None,
            ),
            "t",
        )
        .unwrap();
    assert_eq!(first.id, second.id, "a key names one memory");
    assert_eq!(
        store
            .memory_by_key("queue")
            .unwrap()
            .map(|m| m.text)
            .as_deref(),
        Some("use LISTEN/NOTIFY")
    );
    assert!(store.memory_by_key("nope").unwrap().is_none());
    assert_eq!(second.text, "use LISTEN/NOTIFY");
    store
        .remember(
            &memory(MemoryKind::Pattern, "tests need --locked", None, None),
            "t",
        )
        .unwrap();
    let all = store.memories(&MemoryFilter::default()).unwrap();
    assert_eq!(all.len(), 2);
    let decisions = store
        .memories(&MemoryFilter {
            kind: Some(MemoryKind::Decision),
            ..MemoryFilter::default()
        })
        .unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].text, "use LISTEN/NOTIFY");
    let bad = store.remember(&memory(MemoryKind::Note, " ", None, None), "t");
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    let unknown = store.remember(&memory(MemoryKind::Note, "x", None, Some("TASK-77")), "t");
    assert!(matches!(unknown, Err(StoreError::NotFound(_))));
}

pub fn search_ranks_all_sources(store: &dyn Store) {
    let task = store
        .create_tracked(
            &NewTracked {
                description: Some("the reconnect loop drops frames".to_owned()),
                ..tracked("Fix websocket reconnect", &[])
            },
            "t",
        )
        .unwrap();
    add(store, "Unrelated chore", &[]);
    store
        .remember(
            &memory(
                MemoryKind::Decision,
                "websocket: use tokio-tungstenite",
                None,
                None,
            ),
            "t",
        )
        .unwrap();
    let hits = store.search("websocket", 10).unwrap();
    let sources: Vec<SearchSource> = hits.iter().map(|h| h.source).collect();
    assert!(sources.contains(&SearchSource::Task), "{hits:?}");
    assert!(sources.contains(&SearchSource::Memory), "{hits:?}");
    assert_eq!(hits[0].id, task.id, "a title match ranks first: {hits:?}");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    // Words, not syntax: quotes and operators in the query are plain text.
    let odd = store.search("\"reconnect\" AND (frames", 10).unwrap();
    assert_eq!(odd[0].id, task.id);
    // Prefixes match, and history is searched too.
    assert!(!store.search("reconn", 10).unwrap().is_empty());
    let history = store.search("chore", 10).unwrap();
    assert!(history.iter().any(|h| h.source == SearchSource::History));
    assert!(store.search("zebra", 10).unwrap().is_empty());
    assert!(matches!(
        store.search(" -- ", 10),
        Err(StoreError::Invalid(_))
    ));
}

pub fn history_pages_across_the_archive(store: &dyn Store) {
    let old = add(store, "archived work on quasar", &[]);
    done(store, &old.id);
    let archived_until = store.last_event_seq().unwrap();
    let report = store.archive_events(now_millis() + 1).unwrap();
    assert_eq!(report.events, archived_until as u64);
    assert!(report.chunks >= 1);
    assert_eq!(
        store.last_event_seq().unwrap(),
        archived_until,
        "the sequence survives"
    );
    let new = add(store, "live work", &[]);
    assert!(store.last_event_seq().unwrap() > archived_until);
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store
            .history_page(&HistoryFilter::default(), cursor, 2)
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        seen.extend(page.into_iter().map(|e| (e.seq, e.task_id)));
    }
    let seqs: Vec<i64> = seen.iter().map(|(s, _)| *s).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    assert_eq!(seqs.len() as i64, store.last_event_seq().unwrap());
    assert!(
        seen.iter()
            .any(|(_, t)| t.as_deref() == Some(new.id.as_str()))
    );
    assert_eq!(
        event_kinds(store, &old.id).len(),
        3,
        "archived events by task"
    );
    let hits = store.search("quasar", 10).unwrap();
    assert!(
        hits.iter().any(|h| h.source == SearchSource::History),
        "archived events stay searchable: {hits:?}"
    );
    let since = HistoryFilter {
        since: Some(now_millis() + 60_000),
        ..HistoryFilter::default()
    };
    assert!(store.history_page(&since, 0, 10).unwrap().is_empty());
}

pub fn sessions_are_tracked(store: &dyn Store) {
    assert!(store.latest_session().unwrap().is_none());
    store
        .create_tracked(
            &NewTracked {
                session: Some("s-1".to_owned()),
                tool: Some("claude".to_owned()),
                ..tracked("first", &[])
            },
            "t",
        )
        .unwrap();
    store.touch_session("s-2", Some("gemini")).unwrap();
    let latest = store.latest_session().unwrap().unwrap();
    assert_eq!(latest.id, "s-2");
    assert_eq!(
        store.session("s-1").unwrap().unwrap().tool.as_deref(),
        Some("claude")
    );
    let ended = store.end_session("s-2", "t").unwrap();
    assert!(ended.ended_at.is_some());
}

pub fn export_streams_everything(store: &dyn Store) {
    let a = add(store, "a", &[]);
    add(store, "b", &[&a.id]);
    store
        .remember(&memory(MemoryKind::Fact, "rust 1.95", None, None), "t")
        .unwrap();
    let records = super::export_all(store);
    assert!(matches!(records[0], ExportRecord::Header(_)));
    let count = |f: fn(&ExportRecord) -> bool| records.iter().filter(|r| f(r)).count();
    assert_eq!(count(|r| matches!(r, ExportRecord::Task(_))), 2);
    assert_eq!(count(|r| matches!(r, ExportRecord::Memory(_))), 1);
    assert_eq!(
        count(|r| matches!(r, ExportRecord::Event(_))) as i64,
        store.last_event_seq().unwrap()
    );
    assert!(records.iter().any(
        |r| matches!(r, ExportRecord::Counter { name, value } if name == "task_id" && *value == 2)
    ));
}

pub fn import_refuses_a_non_empty_store(store: &dyn Store) {
    add(store, "a", &[]);
    let err = store.begin_import().err().expect("must refuse");
    assert!(err.to_string().contains("empty store"), "{err}");
    // The refusal left the store usable.
    add(store, "b", &[]);
}

pub fn integrity_and_repair(store: &dyn Store) {
    let a = add(store, "a", &[]);
    add(store, "b", &[&a.id]);
    store
        .remember(&memory(MemoryKind::Note, "a note", None, None), "t")
        .unwrap();
    assert_eq!(
        store.check_integrity().unwrap().problems,
        Vec::<String>::new()
    );
    let before = store.search("note", 5).unwrap();
    assert!(before.iter().any(|h| h.source == SearchSource::Memory));
    let report = store.repair("t").unwrap();
    assert!(report.remaining.is_empty(), "{report:?}");
    assert!(report.reindexed >= 3);
    assert!(report.resettled.is_empty());
    let ids = |hits: Vec<taskdaemon_core::tracked::SearchHit>| {
        hits.into_iter().map(|h| h.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.search("note", 5).unwrap()),
        ids(before),
        "the rebuilt index finds the same"
    );
}

pub fn edits_change_scope_and_are_recorded(store: &dyn Store) {
    let task = store
        .create_tracked(
            &NewTracked {
                labels: vec!["old".to_owned()],
                ..tracked("first title", &[])
            },
            "t",
        )
        .unwrap();
    let edit = taskdaemon_core::TrackedEdit {
        title: Some("better title".to_owned()),
        priority: Some(7),
        add_labels: vec!["new".to_owned()],
        remove_labels: vec!["old".to_owned()],
        ..Default::default()
    };
    let edited = store.edit_tracked(&task.id, &edit, "t").unwrap();
    assert_eq!(edited.title(), "better title");
    assert_eq!(edited.priority, 7);
    assert_eq!(edited.labels, ["new"]);
    assert_eq!(edited.description, None, "untouched fields stay");
    let events = store
        .history_page(
            &HistoryFilter {
                task_id: Some(task.id.clone()),
                ..HistoryFilter::default()
            },
            0,
            10,
        )
        .unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.kind, EventKind::Edited);
    assert_eq!(last.before.as_ref().unwrap()["title"], "first title");
    assert_eq!(last.after.as_ref().unwrap()["labels"][0], "new");
    assert_eq!(
        store.search("better", 5).unwrap()[0].id,
        task.id,
        "reindexed"
    );
    let before = store.last_event_seq().unwrap();
    let nothing = store.edit_tracked(&task.id, &taskdaemon_core::TrackedEdit::default(), "t");
    assert!(matches!(nothing, Err(StoreError::Invalid(_))));
    let process = store
        .create_process(&super::spec(None, &["true"]), "t")
        .unwrap();
    assert!(store.edit_tracked(&process.id, &edit, "t").is_err());
    assert_eq!(
        store.last_event_seq().unwrap(),
        before + 1,
        "only the process was created"
    );
}

/// `ids = "hash"`: ids from the task's UUID, found in any case, usable as
/// dependencies; the counter scheme is untouched by them.
pub fn hash_ids_are_unique_and_found(store: &dyn Store) {
    let hashed = |title: &str, depends_on: &[&str]| NewTracked {
        id_scheme: taskdaemon_core::id::IdScheme::Hash,
        tool: Some("claude".to_owned()),
        ..tracked(title, depends_on)
    };
    let first = store.create_tracked(&hashed("first", &[]), "t").unwrap();
    let hash = first.id.strip_prefix("CLAUDE-").unwrap_or_default();
    assert_eq!(hash.len(), taskdaemon_core::id::HASH_LEN, "{}", first.id);
    assert_eq!(
        store.task(&first.id.to_lowercase()).unwrap().id,
        first.id,
        "a hash id is found in lower case too"
    );
    let second = store
        .create_tracked(&hashed("second", &[&first.id.to_lowercase()]), "t")
        .unwrap();
    assert_eq!(second.depends_on, vec![first.id.clone()]);
    assert_eq!(second.status, Status::Blocked);
    let mut ids: Vec<String> = (0..50)
        .map(|n| {
            store
                .create_tracked(&hashed(&format!("t{n}"), &[]), "t")
                .unwrap()
                .id
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50);
    let counted = add(store, "counted", &[]);
    assert!(
        counted.id.parse::<taskdaemon_core::HumanId>().is_ok(),
        "the default scheme still counts: {}",
        counted.id
    );
}

pub(super) fn exported_tasks(store: &dyn Store) -> Vec<crate::ExportedTask> {
    let mut tasks = Vec::new();
    store
        .export(&mut |record| {
            if let ExportRecord::Task(task) = record {
                tasks.push(*task);
            }
            Ok(())
        })
        .unwrap();
    tasks
}

/// `import --merge`: new tasks are added, newer versions replace, older
/// ones are kept, and an id naming another task refuses the whole file.
pub fn merge_import_applies_tracked_work(store: &dyn Store) {
    let edited = add(store, "edited elsewhere", &[]);
    let same = add(store, "the same", &[]);
    let local = add(store, "changed here later", &[]);
    let mut tasks = exported_tasks(store);
    let by_id = |tasks: &mut Vec<crate::ExportedTask>, id: &str| {
        let at = tasks.iter().position(|t| t.task.id == id).unwrap();
        tasks.remove(at)
    };
    let mut newer = by_id(&mut tasks, &edited.id);
    newer.task.name = Some("edited title".to_owned());
    newer.task.labels = vec!["from-b".to_owned()];
    newer.task.updated_at += 1_000;
    let unchanged = by_id(&mut tasks, &same.id);
    let mut older = by_id(&mut tasks, &local.id);
    older.task.name = Some("stale title".to_owned());
    older.task.updated_at -= 1_000;
    let mut added = unchanged.clone();
    added.task.id = "TASK-9000".to_owned();
    added.task.uuid = uuid::Uuid::now_v7();
    added.task.name = Some("zanzibar from the other clone".to_owned());
    added.task.depends_on = vec![edited.id.clone()];

    let mut collided = added.clone();
    collided.task.uuid = uuid::Uuid::now_v7();
    collided.task.id = same.id.clone();
    let file = [newer.clone(), unchanged.clone(), older, added.clone()];
    let counters = [("task_id".to_owned(), 9000)];
    let err = store
        .merge_tracked(&[added.clone(), collided], &counters, "t")
        .unwrap_err();
    assert!(err.to_string().contains("collided"), "{err}");
    assert!(
        matches!(store.task("TASK-9000"), Err(StoreError::NotFound(_))),
        "a refused merge writes nothing"
    );

    let report = store.merge_tracked(&file, &counters, "t").unwrap();
    assert_eq!(report.added, vec!["TASK-9000".to_owned()]);
    assert_eq!(report.updated, vec![edited.id.clone()]);
    assert_eq!(report.unchanged, 1);
    assert_eq!(report.kept, vec![local.id.clone()]);
    let now = store.task(&edited.id).unwrap();
    assert_eq!(now.title(), "edited title");
    assert_eq!(now.labels, vec!["from-b".to_owned()]);
    assert_eq!(store.task(&local.id).unwrap().title(), "changed here later");
    assert_eq!(
        store.task("TASK-9000").unwrap().depends_on,
        vec![edited.id.clone()]
    );
    assert!(event_kinds(store, &edited.id).contains(&EventKind::Edited));
    let hits = store.search("zanzibar", 5).unwrap();
    assert!(hits.iter().any(|h| h.id == "TASK-9000"), "{hits:?}");
    let hits = store.search("edited", 5).unwrap();
    assert!(hits.iter().any(|h| h.id == edited.id), "{hits:?}");
    // The counter moved past the merged numbers: no new id reuses them.
    let next = add(store, "after the merge", &[]);
    assert_eq!(next.id, "TASK-9001");
    // Applying the same file again changes nothing.
    let again = store.merge_tracked(&file, &counters, "t").unwrap();
    assert!(
        again.added.is_empty() && again.updated.is_empty(),
        "{again:?}"
    );
}

/// Decay: closed work is compacted to a summary, search finds the summary
/// and the original, `restore` gives the original back; open work and a
/// second compaction are refused, all or nothing.
pub fn compact_and_restore(store: &dyn Store) {
    use taskdaemon_core::decay::CompactSummary;
    let old = add(store, "Port the parser", &[]);
    store
        .edit_tracked(
            &old.id,
            &taskdaemon_core::TrackedEdit {
                description: Some("rewrote the xylophone tokenizer by hand".to_owned()),
                ..Default::default()
            },
            "t",
        )
        .unwrap();
    store
        .act_on_tracked(&old.id, &TrackedAction::Start, "t")
        .unwrap();
    store
        .act_on_tracked(
            &old.id,
            &TrackedAction::Done {
                note: Some("kept the quokka fallback".to_owned()),
            },
            "t",
        )
        .unwrap();
    let open = add(store, "still open", &[]);
    let future = now_millis() + 60_000;
    let candidates: Vec<String> = store
        .compact_candidates(future, 10)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(candidates, vec![old.id.clone()]);
    assert!(store.compact_candidates(0, 10).unwrap().is_empty());

    let summary = |id: &str, text: &str| CompactSummary {
        id: id.to_owned(),
        summary: text.to_owned(),
    };
    let refused = store.compact_tracked(
        &[summary(&old.id, "parser ported"), summary(&open.id, "nope")],
        "t",
    );
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("has not ended")),
        "{refused:?}"
    );
    assert!(
        store.task_original(&old.id).unwrap().is_none(),
        "all or nothing"
    );

    let done = store
        .compact_tracked(&[summary(&old.id, "parser ported; marimba summary")], "t")
        .unwrap();
    assert_eq!(
        done[0].description.as_deref(),
        Some("parser ported; marimba summary")
    );
    assert_eq!(done[0].note, None);
    let original = store.task_original(&old.id).unwrap().unwrap();
    assert_eq!(
        original.description.as_deref(),
        Some("rewrote the xylophone tokenizer by hand")
    );
    assert_eq!(original.note.as_deref(), Some("kept the quokka fallback"));
    let finds = |word: &str| {
        store
            .search(word, 5)
            .unwrap()
            .iter()
            .any(|h| h.id == old.id)
    };
    assert!(finds("marimba"), "the summary is searchable");
    assert!(finds("xylophone"), "the original is searchable");
    assert!(finds("quokka"), "the original note is searchable");
    assert!(store.compact_candidates(future, 10).unwrap().is_empty());
    let again = store.compact_tracked(&[summary(&old.id, "twice")], "t");
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.to_string().contains("compacted already")),
        "{again:?}"
    );

    let restored = store.restore_tracked(&old.id, "t").unwrap();
    assert_eq!(
        restored.description.as_deref(),
        Some("rewrote the xylophone tokenizer by hand")
    );
    assert_eq!(restored.note.as_deref(), Some("kept the quokka fallback"));
    assert!(store.task_original(&old.id).unwrap().is_none());
    assert!(!finds("marimba"), "the summary is gone from search");
    assert!(finds("xylophone"));
    let never = store.restore_tracked(&open.id, "t");
    assert!(
        never
            .as_ref()
            .is_err_and(|e| e.to_string().contains("never compacted")),
        "{never:?}"
    );
    assert_eq!(
        store.check_integrity().unwrap().problems,
        Vec::<String>::new()
    );
}
