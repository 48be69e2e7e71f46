//! Every view rendered with ratatui's TestBackend against a real store (a
//! temporary workspace), snapshot-tested with insta. Colours are off (the
//! `NO_COLOR` theme) and times and ages are redacted, so the snapshots are
//! the same on every run.

mod common;

use common::Fixture;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use taskdaemon_service::{ChatMessage, ChatRole};
use taskdaemon_tui::app::{Action, App, View};
use taskdaemon_tui::model::ChatLine;
use taskdaemon_tui::style::Theme;
use taskdaemon_tui::ui;

const NOW: i64 = 1_800_000_000_000;

fn render(app: &mut App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
    terminal.draw(|frame| ui::draw(frame, app)).unwrap();
    terminal.backend().to_string()
}

fn app(fixture: &Fixture) -> App {
    let mut app = App::new(fixture.model(), Theme { color: false }, NOW);
    app.data_changed();
    app
}

/// Loads the detail pane as the runtime does when the selection settles.
fn load_detail(app: &mut App, fixture: &Fixture) {
    match app.detail_target() {
        Some((View::Executions, id)) => app.model.load_progress(&fixture.service, &id),
        Some((_, id)) => app.model.load_log(&fixture.service, &id),
        None => {}
    }
}

macro_rules! snapshot {
    ($name:expr, $screen:expr) => {
        insta::with_settings!({filters => vec![
            (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "[time]"),
            (r"\b\d+[smhd]\b", "[age]"),
        ]}, {
            insta::assert_snapshot!($name, $screen);
        });
    };
}

fn key(app: &mut App, code: KeyCode) -> Action {
    app.handle_key(KeyEvent::from(code))
}

#[test]
fn processes_view() {
    let fixture = Fixture::filled();
    let mut app = app(&fixture);
    load_detail(&mut app, &fixture);
    let screen = render(&mut app);
    assert!(
        screen.contains("listening on :8080"),
        "the log pane follows TASK-1"
    );
    snapshot!("processes", screen);
}

#[test]
fn queues_view() {
    let fixture = Fixture::filled();
    let mut app = app(&fixture);
    key(&mut app, KeyCode::Char('2'));
    load_detail(&mut app, &fixture);
    let screen = render(&mut app);
    assert!(screen.contains("$0.42"), "the result's cost");
    snapshot!("queues", screen);
}

#[test]
fn tracked_view() {
    let fixture = Fixture::filled();
    let mut app = app(&fixture);
    key(&mut app, KeyCode::Char('3'));
    let screen = render(&mut app);
    assert!(
        screen.contains("└─ TASK-4 Write the API"),
        "TASK-4 hangs under TASK-3"
    );
    snapshot!("tracked", screen);
}

#[test]
fn executions_view() {
    let fixture = Fixture::filled();
    let mut app = app(&fixture);
    key(&mut app, KeyCode::Char('4'));
    load_detail(&mut app, &fixture);
    let screen = render(&mut app);
    assert!(screen.contains("1/5"), "iteration of max");
    snapshot!("executions", screen);
}

#[test]
fn plan_view_without_plans_says_how_to_start_one() {
    let fixture = Fixture::filled();
    let mut app = app(&fixture);
    key(&mut app, KeyCode::Char('5'));
    snapshot!("plan", render(&mut app));
}

#[test]
fn plan_view_shows_the_tree_with_costs_and_what_waits_for_an_answer() {
    use taskdaemon_core::pipeline::{
        MessageKind, NewMessage, NewPhase, NewPlan, NewSpec, PipelineCost, PipelineStatus,
    };

    let fixture = Fixture::filled();
    let store = fixture.service.store();
    let plan = store
        .create_plan(
            &NewPlan {
                goal: "Add OAuth login".into(),
                target_branch: "main".into(),
                base_commit: "0123abcd".into(),
                auto_approve: true,
                ..NewPlan::default()
            },
            "test",
        )
        .unwrap()
        .id;
    store
        .set_plan_status(&plan, PipelineStatus::Running, None, "daemon")
        .unwrap();
    let spec = |name: &str| NewSpec {
        name: name.into(),
        title: format!("Spec {name}"),
        body: "build it".into(),
        depends_on: Vec::new(),
        priority: 0,
    };
    store
        .add_specs(&plan, &[spec("auth"), spec("ui")], "loop")
        .unwrap();
    let phase = NewPhase {
        name: "schema".into(),
        title: "Write the schema".into(),
        body: "tables".into(),
        validation: "true".into(),
    };
    store
        .add_phases(&format!("{plan}/auth"), &[phase], "loop")
        .unwrap();
    store
        .add_pipeline_cost(
            &format!("{plan}/auth/1"),
            &PipelineCost {
                input_tokens: 1000,
                output_tokens: 100,
                cost_usd: 0.25,
            },
        )
        .unwrap();
    store
        .send_message(
            &NewMessage {
                plan: plan.clone(),
                from: "auth".into(),
                to: "human".into(),
                kind: MessageKind::Query,
                body: "Which provider?".into(),
            },
            "daemon",
        )
        .unwrap();
    let mut app = app(&fixture);
    key(&mut app, KeyCode::Char('5'));
    let screen = render(&mut app);
    for expected in [
        &format!("plan {plan} Add OAuth login") as &str,
        "├─ spec auth",
        "│  └─ phase 1 Write the schema",
        "└─ spec ui",
        "running",
        "$0.25",
        "Waiting for you",
        "? MSG-1 ",
        "from auth: Which provider? (taskdaemon plan answer MSG-1 TEXT)",
    ] {
        assert!(screen.contains(expected), "{expected:?} missing:\n{screen}");
    }
}

#[test]
fn chat_view() {
    let fixture = Fixture::filled();
    let mut app = app(&fixture);
    key(&mut app, KeyCode::Char('6'));
    app.model.chat.lines.push(ChatLine::Said(ChatMessage {
        role: ChatRole::User,
        text: "How should I split the login work?".to_owned(),
    }));
    app.model.chat.lines.push(ChatLine::Said(ChatMessage {
        role: ChatRole::Assistant,
        text: "Schema first, then the API.".to_owned(),
    }));
    key(&mut app, KeyCode::Char('i'));
    for c in "/plan".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        Action::None,
        "/plan sends nothing"
    );
    snapshot!("chat", render(&mut app));
}

#[test]
fn records_view_searched() {
    let fixture = Fixture::filled();
    let mut app = app(&fixture);
    key(&mut app, KeyCode::Char('7'));
    snapshot!("records", render(&mut app));
    key(&mut app, KeyCode::Char('/'));
    for c in "schema".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    snapshot!("records_searched", render(&mut app));
}

#[test]
fn help_and_confirmation_overlays() {
    let fixture = Fixture::filled();
    let mut app = app(&fixture);
    key(&mut app, KeyCode::Char('?'));
    snapshot!("help", render(&mut app));
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('x'));
    snapshot!("confirm_kill", render(&mut app));
}

#[test]
fn a_tiny_terminal_still_renders() {
    let fixture = Fixture::filled();
    let mut app = app(&fixture);
    for (w, h) in [(20, 5), (1, 1), (120, 3)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|frame| ui::draw(frame, &mut app)).unwrap();
    }
}
