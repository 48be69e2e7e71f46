//! Key handling: the App state machine, key in, action out, over a model
//! loaded from a real store. No terminal involved.

mod common;

use std::path::PathBuf;

use common::Fixture;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use taskdaemon_tui::app::{Action, App, Command, Mode, PromptKind, View};
use taskdaemon_tui::export::ExportFormat;
use taskdaemon_tui::style::Theme;

fn app() -> (Fixture, App) {
    let fixture = Fixture::filled();
    let mut app = App::new(fixture.model(), Theme { color: false }, 0);
    app.data_changed();
    (fixture, app)
}

fn press(app: &mut App, code: KeyCode) -> Action {
    app.handle_key(KeyEvent::from(code))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

fn error(app: &App) -> String {
    let message = app.message.clone().expect("a message");
    assert!(message.error, "expected an error, got {message:?}");
    message.text
}

#[test]
fn number_keys_and_tab_switch_views() {
    let (_f, mut app) = app();
    assert_eq!(app.view, View::Processes);
    press(&mut app, KeyCode::Char('7'));
    assert_eq!(app.view, View::Records);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::Processes, "Tab wraps around");
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.view, View::Records);
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(app.view, View::Tracked);
}

#[test]
fn vim_keys_and_arrows_move_inside_the_list() {
    let (_f, mut app) = app();
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(app.selected_id(View::Tracked).as_deref(), Some("TASK-3"));
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(
        app.selected_id(View::Tracked).as_deref(),
        Some("TASK-4"),
        "tree order"
    );
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    assert_eq!(
        app.selected_id(View::Tracked).as_deref(),
        Some("TASK-5"),
        "stops at the end"
    );
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(app.list(View::Tracked).selected, 0);
    press(&mut app, KeyCode::Char('G'));
    assert_eq!(app.list(View::Tracked).selected, 2);
    press(&mut app, KeyCode::Char('k'));
    press(&mut app, KeyCode::Up);
    press(&mut app, KeyCode::Up);
    assert_eq!(app.list(View::Tracked).selected, 0);
    app.handle_mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 0,
        row: 0,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(app.list(View::Tracked).selected, 2, "the wheel scrolls");
}

#[test]
fn kill_asks_first_and_runs_only_on_yes() {
    let (_f, mut app) = app();
    assert_eq!(press(&mut app, KeyCode::Char('x')), Action::None);
    let kill = Command::Kill {
        id: "TASK-1".to_owned(),
    };
    assert_eq!(app.mode, Mode::Confirm(kill.clone()));
    assert_eq!(
        press(&mut app, KeyCode::Char('n')),
        Action::None,
        "no: nothing runs"
    );
    assert_eq!(app.mode, Mode::Normal);
    press(&mut app, KeyCode::Char('x'));
    assert_eq!(press(&mut app, KeyCode::Char('y')), Action::Run(kill));
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn each_action_on_the_selection_confirms_its_own_command() {
    let (_f, mut app) = app();
    let cases = [
        (
            '1',
            'r',
            Command::Restart {
                id: "TASK-1".into(),
            },
        ),
        (
            '2',
            'c',
            Command::Cancel {
                id: "fix-typos".into(),
            },
        ),
        (
            '2',
            'R',
            Command::Retry {
                id: "fix-typos".into(),
            },
        ),
        (
            '2',
            'x',
            Command::Kill {
                id: "fix-typos".into(),
            },
        ),
        (
            '3',
            'c',
            Command::CancelTracked {
                id: "TASK-3".into(),
            },
        ),
        (
            '4',
            's',
            Command::StopLoop {
                id: "LOOP-6".into(),
            },
        ),
        (
            '4',
            'y',
            Command::CopyId {
                id: "LOOP-6".into(),
            },
        ),
    ];
    for (view, key, command) in cases {
        press(&mut app, KeyCode::Char(view));
        press(&mut app, KeyCode::Char(key));
        assert_eq!(app.mode, Mode::Confirm(command.clone()), "{view} {key}");
        assert!(command.question().is_some());
        assert_eq!(press(&mut app, KeyCode::Enter), Action::Run(command));
    }
}

#[test]
fn an_action_that_does_not_fit_the_view_is_refused() {
    let (_f, mut app) = app();
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(press(&mut app, KeyCode::Char('x')), Action::None);
    assert_eq!(
        app.mode,
        Mode::Normal,
        "no confirmation for a refused action"
    );
    assert!(error(&app).contains("kill does not apply in Tracked"));
    press(&mut app, KeyCode::Char('5'));
    press(&mut app, KeyCode::Char('y'));
    assert!(error(&app).contains("nothing selected"));
}

#[test]
fn search_keeps_matching_rows_and_escape_clears_it() {
    let (_f, mut app) = app();
    press(&mut app, KeyCode::Char('/'));
    assert!(matches!(
        app.mode,
        Mode::Prompt {
            kind: PromptKind::Search,
            ..
        }
    ));
    typed(&mut app, "CARGO");
    assert_eq!(app.row_count(View::Processes), 2, "applies on Enter only");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.row_count(View::Processes), 1);
    assert_eq!(app.selected_id(View::Processes).as_deref(), Some("TASK-2"));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.row_count(View::Processes), 2);
}

#[test]
fn filter_by_status_kind_and_task() {
    let (_f, mut app) = app();
    press(&mut app, KeyCode::Char('f'));
    typed(&mut app, "status:failed");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.row_count(View::Processes), 1);
    assert_eq!(app.selected_id(View::Processes).as_deref(), Some("TASK-2"));

    press(&mut app, KeyCode::Char('7'));
    press(&mut app, KeyCode::Char('f'));
    typed(&mut app, "kind:created task:task-");
    press(&mut app, KeyCode::Enter);
    let shown = app.shown_records();
    assert_eq!(shown.len(), 5, "five TASK-N tasks were created: {shown:?}");
    assert!(shown.iter().all(|e| e.kind.to_string() == "created"));

    // A bad term is an error naming it; the filter stays as it was.
    press(&mut app, KeyCode::Char('f'));
    press(&mut app, KeyCode::Backspace);
    typed(&mut app, " colour:red");
    press(&mut app, KeyCode::Enter);
    assert!(error(&app).contains("colour"));
    assert_eq!(app.shown_records().len(), 5);
    press(&mut app, KeyCode::Char('f'));
    for _ in 0..40 {
        press(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "status:sleeping");
    press(&mut app, KeyCode::Enter);
    assert!(error(&app).contains("status:sleeping"));
}

#[test]
fn the_command_palette_runs_commands() {
    let (_f, mut app) = app();
    press(&mut app, KeyCode::Char(':'));
    typed(&mut app, "records");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Records);

    press(&mut app, KeyCode::Char(':'));
    typed(&mut app, "export csv /tmp/out.csv");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Action::Run(Command::Export {
            format: ExportFormat::Csv,
            path: PathBuf::from("/tmp/out.csv"),
        })
    );
    press(&mut app, KeyCode::Char(':'));
    typed(&mut app, "export xml x");
    assert_eq!(press(&mut app, KeyCode::Enter), Action::None);
    assert!(error(&app).contains("xml"));

    press(&mut app, KeyCode::Char(':'));
    typed(&mut app, "1");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Char(':'));
    typed(&mut app, "kill");
    press(&mut app, KeyCode::Enter);
    assert!(
        matches!(app.mode, Mode::Confirm(Command::Kill { .. })),
        "still asks"
    );
    press(&mut app, KeyCode::Esc);

    press(&mut app, KeyCode::Char(':'));
    typed(&mut app, "frobnicate");
    press(&mut app, KeyCode::Enter);
    assert!(error(&app).contains("unknown command"));

    press(&mut app, KeyCode::Char(':'));
    typed(&mut app, "quit");
    assert_eq!(press(&mut app, KeyCode::Enter), Action::Quit);
}

#[test]
fn help_opens_and_any_key_closes_it() {
    let (_f, mut app) = app();
    press(&mut app, KeyCode::Char('?'));
    assert_eq!(app.mode, Mode::Help);
    assert_eq!(
        press(&mut app, KeyCode::Char('q')),
        Action::None,
        "q closes help, not the app"
    );
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(press(&mut app, KeyCode::Char('q')), Action::Quit);
}

#[test]
fn ctrl_c_quits_from_anywhere() {
    let (_f, mut app) = app();
    press(&mut app, KeyCode::Char('/'));
    let action = app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(action, Action::Quit);
}

#[test]
fn chat_sends_once_and_plan_is_refused_plainly() {
    let (_f, mut app) = app();
    press(&mut app, KeyCode::Char('6'));
    press(&mut app, KeyCode::Char('i'));
    typed(&mut app, "hello");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Action::Run(Command::ChatSend)
    );
    assert!(app.model.chat.waiting);
    assert_eq!(app.model.chat.conversation().len(), 1);
    press(&mut app, KeyCode::Enter);
    typed(&mut app, "again");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Action::None,
        "one question at a time"
    );
    assert!(error(&app).contains("still answering"));

    press(&mut app, KeyCode::Enter);
    typed(&mut app, "/plan build it");
    assert_eq!(press(&mut app, KeyCode::Enter), Action::None);
    assert!(error(&app).contains("not available yet"));
    assert_eq!(
        app.model.chat.conversation().len(),
        1,
        "/plan is not sent to the model"
    );
}

#[test]
fn open_logs_zooms_the_detail_pane_and_escape_closes_it() {
    let (_f, mut app) = app();
    assert_eq!(
        app.detail_target(),
        Some((View::Processes, "TASK-1".to_owned()))
    );
    press(&mut app, KeyCode::Char('l'));
    assert!(app.zoomed);
    press(&mut app, KeyCode::Esc);
    assert!(!app.zoomed);
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Enter);
    assert!(!app.zoomed);
    assert!(error(&app).contains("no logs"));
}
