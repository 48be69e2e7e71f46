//! The model kept current from the change feed, and the export of what the
//! Records view shows.

mod common;

use std::time::Duration;

use common::{Fixture, eventually};
use crossterm::event::{KeyCode, KeyEvent};
use taskdaemon_service::{Agent, FeedOptions, NewTask, Service};
use taskdaemon_tui::app::App;
use taskdaemon_tui::export::{self, CSV_HEADER, ExportFormat};
use taskdaemon_tui::model::Model;
use taskdaemon_tui::style::Theme;

#[test]
fn feed_events_update_only_what_they_touch() {
    let fixture = Fixture::filled();
    let service = &fixture.service;
    let feed = service.feed(FeedOptions::default()).unwrap();
    let start = feed.last_seq();
    let mut subscription = feed.subscribe(start);
    let mut model = Model::load(service, start).unwrap();
    assert_eq!(model.tracked.tasks.len(), 3);
    let processes_before = model.processes.len();

    // Another process (a CLI, an agent) changes the store.
    let other = Service::open(fixture.workspace.clone()).unwrap();
    let agent = Agent::new(None, None).unwrap();
    let added = other
        .add_task(
            &agent,
            NewTask {
                title: "Review the API".to_owned(),
                after: vec!["TASK-4".to_owned()],
                ..NewTask::default()
            },
        )
        .unwrap();

    let mut events = Vec::new();
    eventually("the created event", || {
        while let Ok(Some(e)) = subscription.next_timeout(Some(Duration::from_millis(100))) {
            events.push(e);
        }
        !events.is_empty()
    });
    let touched = model.apply(service, events).unwrap();
    assert!(touched.tracked && !touched.processes && !touched.loops);
    assert_eq!(model.processes.len(), processes_before);
    let tracked = &model.tracked;
    let row = tracked
        .tree
        .iter()
        .find(|r| tracked.tasks[r.index].id == added.id)
        .expect("the new task is in the tree");
    assert_eq!(row.depth, 2, "under TASK-4, under TASK-3");
    assert_eq!(
        model.records.last().unwrap().task_id.as_deref(),
        Some(added.id.as_str())
    );
}

#[test]
fn export_writes_the_filtered_records_as_json_and_csv() {
    let fixture = Fixture::filled();
    let mut app = App::new(fixture.model(), Theme { color: false }, 0);
    app.data_changed();
    for key in ['7', 'f'] {
        app.handle_key(KeyEvent::from(KeyCode::Char(key)));
    }
    for c in "task:task-3".chars() {
        app.handle_key(KeyEvent::from(KeyCode::Char(c)));
    }
    app.handle_key(KeyEvent::from(KeyCode::Enter));
    let shown = app.shown_records();
    assert!(
        shown.len() >= 3,
        "created, started, remembered at least: {shown:?}"
    );
    assert!(shown.iter().all(|e| e.task_id.as_deref() == Some("TASK-3")));

    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("records.json");
    assert_eq!(
        export::write(&shown, ExportFormat::Json, &json_path).unwrap(),
        shown.len()
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    let array = json.as_array().unwrap();
    assert_eq!(array.len(), shown.len());
    assert_eq!(array[0]["task_id"], "TASK-3");
    assert_eq!(array[0]["seq"], shown[0].seq);

    let csv_path = dir.path().join("records.csv");
    export::write(&shown, ExportFormat::Csv, &csv_path).unwrap();
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], CSV_HEADER);
    assert_eq!(lines.len(), shown.len() + 1);
    assert!(lines[1].starts_with(&format!("{},", shown[0].seq)));
    assert!(lines[1].contains(",TASK-3,"));

    // A path under a regular file cannot be written: an error naming it.
    std::fs::write(dir.path().join("plain-file"), "x").unwrap();
    let bad = dir.path().join("plain-file").join("out.csv");
    let error = export::write(&shown, ExportFormat::Csv, &bad).unwrap_err();
    assert!(error.contains("plain-file"), "{error}");
}
