//! The TUI's state and its key handling: a pure state machine. A key goes
//! in ([`App::handle_key`]), the state changes and an [`Action`] comes out
//! for the runtime to carry out against the service (kill, retry, send a
//! chat message, export...). Nothing here does I/O, so every key is
//! unit-tested without a terminal.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};
use taskdaemon_core::time::Millis;
use taskdaemon_core::{Event, Status};
use taskdaemon_service::{ChatMessage, ChatRole};

use crate::export::ExportFormat;
use crate::list::ListState;
use crate::model::{ChatLine, Model};
use crate::style::Theme;

/// What `/plan` answers until the plan pipeline exists.
pub const PLAN_NOT_AVAILABLE: &str = "new-plan is not available yet: the Plan -> Spec -> Phase \
pipeline has not been built, so a conversation cannot become a plan. Nothing was created.";

/// Rows a mouse wheel step scrolls.
const WHEEL_ROWS: isize = 3;

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Processes,
    Queues,
    Tracked,
    Executions,
    Plan,
    Chat,
    Records,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Processes,
        View::Queues,
        View::Tracked,
        View::Executions,
        View::Plan,
        View::Chat,
        View::Records,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Processes => "Processes",
            View::Queues => "Queues",
            View::Tracked => "Tracked",
            View::Executions => "Executions",
            View::Plan => "Plan",
            View::Chat => "Chat",
            View::Records => "Records",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    fn by_name(name: &str) -> Option<View> {
        let name = name.to_ascii_lowercase();
        View::ALL.into_iter().find(|v| {
            v.title().to_ascii_lowercase().starts_with(&name)
                || name.parse::<usize>().ok() == Some(v.index() + 1)
        })
    }

    /// Views whose rows can be selected, searched and filtered.
    fn is_list(self) -> bool {
        !matches!(self, View::Plan | View::Chat)
    }
}

/// What is being typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Search,
    Filter,
    Command,
    Chat,
}

impl PromptKind {
    pub fn sigil(self) -> &'static str {
        match self {
            PromptKind::Search => "/",
            PromptKind::Filter => "filter: ",
            PromptKind::Command => ":",
            PromptKind::Chat => "you> ",
        }
    }
}

/// An action on the service, carried out by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Kill {
        id: String,
    },
    Restart {
        id: String,
    },
    /// Stop a queue task.
    Cancel {
        id: String,
    },
    /// Cancel a tracked task.
    CancelTracked {
        id: String,
    },
    Retry {
        id: String,
    },
    StopLoop {
        id: String,
    },
    CopyId {
        id: String,
    },
    Export {
        format: ExportFormat,
        path: PathBuf,
    },
    /// Send the chat conversation to the model.
    ChatSend,
}

impl Command {
    /// The confirmation question, for the actions that ask one.
    pub fn question(&self) -> Option<String> {
        Some(match self {
            Command::Kill { id } => format!("Kill {id} (SIGTERM, then SIGKILL)?"),
            Command::Restart { id } => format!("Restart {id}?"),
            Command::Cancel { id } => format!("Cancel queue task {id}?"),
            Command::CancelTracked { id } => format!("Cancel tracked task {id}?"),
            Command::Retry { id } => format!("Retry {id} (its document goes back to pending)?"),
            Command::StopLoop { id } => format!("Stop loop {id}?"),
            Command::CopyId { id } => format!("Copy {id} to the clipboard (OSC 52)?"),
            Command::Export { .. } | Command::ChatSend => return None,
        })
    }
}

/// What the runtime does after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    Run(Command),
}

/// Where input goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Prompt { kind: PromptKind, text: String },
    Confirm(Command),
    Help,
}

/// Which rows a view keeps: `key:value` terms (`status:failed`,
/// `kind:exited`, `task:TASK-3`, `queue:build`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub status: Option<Status>,
    /// A task kind (`process`, `manual`...) or, in Records, an event kind.
    pub kind: Option<String>,
    /// A task id prefix.
    pub task: Option<String>,
    pub queue: Option<String>,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut filter = Filter::default();
        for term in text.split_whitespace() {
            let Some((key, value)) = term.split_once(':') else {
                return Err(format!(
                    "filter term '{term}': write key:value (status, kind, task, queue)"
                ));
            };
            let value = value.to_ascii_lowercase();
            match key {
                "status" => {
                    filter.status = Some(value.parse().map_err(|_| {
                        format!(
                            "filter status:{value}: use one of {}",
                            Status::ALL.map(|s| s.as_str()).join(", ")
                        )
                    })?)
                }
                "kind" => filter.kind = Some(value),
                "task" => filter.task = Some(value),
                "queue" => filter.queue = Some(value),
                other => {
                    return Err(format!(
                        "filter key '{other}': use status, kind, task or queue"
                    ));
                }
            }
        }
        Ok(filter)
    }

    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    pub fn describe(&self) -> String {
        let mut terms = Vec::new();
        if let Some(s) = self.status {
            terms.push(format!("status:{s}"));
        }
        for (key, value) in [
            ("kind", &self.kind),
            ("task", &self.task),
            ("queue", &self.queue),
        ] {
            if let Some(v) = value {
                terms.push(format!("{key}:{v}"));
            }
        }
        terms.join(" ")
    }
}

/// A view's search text and filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Case-insensitive words that must all appear in a row.
    pub search: String,
    pub filter: Filter,
}

impl Query {
    pub fn is_empty(&self) -> bool {
        self.search.trim().is_empty() && self.filter.is_empty()
    }
}

/// A line in the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub error: bool,
}

/// The whole TUI state.
#[derive(Debug)]
pub struct App {
    pub model: Model,
    pub view: View,
    pub mode: Mode,
    pub theme: Theme,
    /// The clock ages are shown against (set each frame; fixed in tests).
    pub now: Millis,
    lists: [ListState; 7],
    queries: [Query; 7],
    /// Rows kept by each view's query (indices into its data); `None`: all.
    rows: [Option<Vec<usize>>; 7],
    pub message: Option<Message>,
    /// The log (Processes, Queues) or progress (Executions) pane fills the view.
    pub zoomed: bool,
}

impl App {
    pub fn new(model: Model, theme: Theme, now: Millis) -> Self {
        Self {
            model,
            view: View::Processes,
            mode: Mode::Normal,
            theme,
            now,
            lists: Default::default(),
            queries: Default::default(),
            rows: Default::default(),
            message: None,
            zoomed: false,
        }
    }

    pub fn query(&self, view: View) -> &Query {
        &self.queries[view.index()]
    }

    pub fn list_mut(&mut self, view: View) -> &mut ListState {
        &mut self.lists[view.index()]
    }

    pub fn list(&self, view: View) -> ListState {
        self.lists[view.index()]
    }

    fn say(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: false,
        });
    }

    fn complain(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: true,
        });
    }

    /// Reports how an action ended.
    pub fn report(&mut self, result: Result<String, String>) {
        match result {
            Ok(text) => self.say(text),
            Err(text) => self.complain(text),
        }
    }

    // ----- rows -----

    /// How many items a view holds before its query.
    fn total(&self, view: View) -> usize {
        match view {
            View::Processes => self.model.processes.len(),
            View::Queues => self.model.queue_tasks.len(),
            View::Tracked => self.model.tracked.tree.len(),
            View::Executions => self.model.loops.len(),
            View::Records => self.model.records.len(),
            View::Plan | View::Chat => 0,
        }
    }

    /// Rows the view shows.
    pub fn row_count(&self, view: View) -> usize {
        match &self.rows[view.index()] {
            Some(rows) => rows.len(),
            None => self.total(view),
        }
    }

    /// The data index of shown row `row`.
    pub fn item(&self, view: View, row: usize) -> Option<usize> {
        match &self.rows[view.index()] {
            Some(rows) => rows.get(row).copied(),
            None => (row < self.total(view)).then_some(row),
        }
    }

    /// The data index of the selected row.
    pub fn selected_item(&self, view: View) -> Option<usize> {
        self.item(view, self.lists[view.index()].selected)
    }

    /// Re-applies every view's query after the data changed.
    pub fn data_changed(&mut self) {
        for view in View::ALL {
            self.recompute(view);
        }
    }

    fn recompute(&mut self, view: View) {
        let query = &self.queries[view.index()];
        self.rows[view.index()] = if query.is_empty() {
            None
        } else {
            let words: Vec<String> = query
                .search
                .split_whitespace()
                .map(str::to_lowercase)
                .collect();
            Some(
                (0..self.total(view))
                    .filter(|&i| self.keeps(view, i, &words, &query.filter))
                    .collect(),
            )
        };
        let len = self.row_count(view);
        self.lists[view.index()].clamp(len);
    }

    /// Whether item `i` of `view` passes the filter and holds every word.
    fn keeps(&self, view: View, i: usize, words: &[String], filter: &Filter) -> bool {
        let m = &self.model;
        let (status, kind, task, queue, text): (
            Option<Status>,
            String,
            Option<&str>,
            Option<&str>,
            String,
        ) = match view {
            View::Processes => {
                let p = &m.processes[i];
                (
                    Some(p.task.status),
                    "process".to_owned(),
                    Some(&p.task.id),
                    None,
                    format!(
                        "{} {} {} {}",
                        p.task.id,
                        p.task.title(),
                        p.task.command,
                        p.task.status
                    ),
                )
            }
            View::Queues => {
                let q = &m.queue_tasks[i];
                (
                    Some(q.status),
                    "agent".to_owned(),
                    Some(&q.id),
                    Some(&q.queue),
                    format!(
                        "{} {} {} {} {}",
                        q.id, q.queue, q.document, q.executor, q.status
                    ),
                )
            }
            View::Tracked => {
                let t = &m.tracked.tasks[m.tracked.tree[i].index];
                (
                    Some(t.status),
                    "manual".to_owned(),
                    Some(&t.id),
                    None,
                    format!("{} {} {} {}", t.id, t.title(), t.status, t.labels.join(" ")),
                )
            }
            View::Executions => {
                let l = &m.loops[i];
                (
                    Some(l.task.status),
                    "loop".to_owned(),
                    Some(&l.task.id),
                    None,
                    format!("{} {} {}", l.task.id, l.task.title(), l.task.status),
                )
            }
            View::Records => {
                let e = &m.records[i];
                (
                    None,
                    e.kind.to_string(),
                    e.task_id.as_deref(),
                    None,
                    format!(
                        "{} {} {} {}",
                        e.task_id.as_deref().unwrap_or(""),
                        e.actor,
                        e.kind,
                        e.message
                    ),
                )
            }
            View::Plan | View::Chat => return false,
        };
        if filter.status.is_some_and(|s| Some(s) != status) {
            return false;
        }
        if filter.kind.as_ref().is_some_and(|k| *k != kind) {
            return false;
        }
        if let Some(prefix) = &filter.task
            && !task.is_some_and(|t| t.to_ascii_lowercase().starts_with(prefix))
        {
            return false;
        }
        if let Some(wanted) = &filter.queue
            && !queue.is_some_and(|q| q.eq_ignore_ascii_case(wanted))
        {
            return false;
        }
        let text = text.to_lowercase();
        words.iter().all(|w| text.contains(w.as_str()))
    }

    /// The records the Records view shows (search and filter applied), oldest first.
    pub fn shown_records(&self) -> Vec<&Event> {
        (0..self.row_count(View::Records))
            .filter_map(|row| self.item(View::Records, row))
            .map(|i| &self.model.records[i])
            .collect()
    }

    /// The id of the selected row's task, in views that list tasks.
    pub fn selected_id(&self, view: View) -> Option<String> {
        let i = self.selected_item(view)?;
        let m = &self.model;
        match view {
            View::Processes => Some(m.processes[i].task.id.clone()),
            View::Queues => Some(m.queue_tasks[i].id.clone()),
            View::Tracked => Some(m.tracked.tasks[m.tracked.tree[i].index].id.clone()),
            View::Executions => Some(m.loops[i].task.id.clone()),
            View::Records => m.records[i].task_id.clone(),
            View::Plan | View::Chat => None,
        }
    }

    /// What the detail pane shows: a process's (or queue task's) log, a loop's progress.
    pub fn detail_target(&self) -> Option<(View, String)> {
        match self.view {
            View::Processes | View::Queues | View::Executions => {
                Some((self.view, self.selected_id(self.view)?))
            }
            _ => None,
        }
    }

    // ----- input -----

    /// Handles one key; returns what the runtime must do.
    pub fn handle_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        match self.mode.clone() {
            Mode::Normal => self.normal_key(key),
            Mode::Prompt { kind, text } => self.prompt_key(kind, text, key),
            Mode::Confirm(command) => {
                self.mode = Mode::Normal;
                match key.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                        Action::Run(command)
                    }
                    _ => {
                        self.say("not done");
                        Action::None
                    }
                }
            }
            Mode::Help => {
                self.mode = Mode::Normal;
                Action::None
            }
        }
    }

    /// Mouse wheel scrolls the current list.
    pub fn handle_mouse(&mut self, mouse: MouseEvent) -> Action {
        let delta = match mouse.kind {
            MouseEventKind::ScrollDown => WHEEL_ROWS,
            MouseEventKind::ScrollUp => -WHEEL_ROWS,
            _ => return Action::None,
        };
        self.move_selection(delta);
        Action::None
    }

    fn move_selection(&mut self, delta: isize) {
        let view = self.view;
        let len = self.row_count(view);
        self.lists[view.index()].move_by(delta, len);
    }

    fn switch(&mut self, view: View) {
        self.view = view;
        self.zoomed = false;
    }

    fn normal_key(&mut self, key: KeyEvent) -> Action {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let view = self.view;
        let len = self.row_count(view);
        let page = 20;
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char(c @ '1'..='7') => {
                self.switch(View::ALL[c as usize - '1' as usize]);
            }
            KeyCode::Tab => self.switch(View::ALL[(view.index() + 1) % View::ALL.len()]),
            KeyCode::BackTab => {
                self.switch(View::ALL[(view.index() + View::ALL.len() - 1) % View::ALL.len()])
            }
            KeyCode::Char('d') if ctrl => self.move_selection(page / 2),
            KeyCode::Char('u') if ctrl => self.move_selection(-page / 2),
            KeyCode::Char('j') | KeyCode::Down => self.move_selection(1),
            KeyCode::Char('k') | KeyCode::Up => self.move_selection(-1),
            KeyCode::PageDown => self.move_selection(page),
            KeyCode::PageUp => self.move_selection(-page),
            KeyCode::Char('g') | KeyCode::Home => self.lists[view.index()].first(),
            KeyCode::Char('G') | KeyCode::End => self.lists[view.index()].last(len),
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char(':') => self.open_prompt(PromptKind::Command, String::new()),
            KeyCode::Char('/') if view.is_list() => {
                let text = self.query(view).search.clone();
                self.open_prompt(PromptKind::Search, text);
            }
            KeyCode::Char('f') if view.is_list() => {
                let text = self.query(view).filter.describe();
                self.open_prompt(PromptKind::Filter, text);
            }
            KeyCode::Esc => {
                if self.zoomed {
                    self.zoomed = false;
                } else if !self.query(view).is_empty() {
                    self.queries[view.index()] = Query::default();
                    self.recompute(view);
                    self.say("search and filter cleared");
                }
            }
            KeyCode::Enter | KeyCode::Char('i') if view == View::Chat => {
                self.open_prompt(PromptKind::Chat, String::new())
            }
            KeyCode::Enter | KeyCode::Char('l') => self.open_logs(),
            KeyCode::Char('x') => {
                return self.on_selection("kill", |v, id| match v {
                    View::Processes | View::Queues => Some(Command::Kill { id }),
                    _ => None,
                });
            }
            KeyCode::Char('r') => {
                return self.on_selection("restart", |v, id| {
                    (v == View::Processes).then_some(Command::Restart { id })
                });
            }
            KeyCode::Char('c') => {
                return self.on_selection("cancel", |v, id| match v {
                    View::Queues => Some(Command::Cancel { id }),
                    View::Tracked => Some(Command::CancelTracked { id }),
                    _ => None,
                });
            }
            KeyCode::Char('R') => {
                return self.on_selection("retry", |v, id| {
                    (v == View::Queues).then_some(Command::Retry { id })
                });
            }
            KeyCode::Char('s') => {
                return self.on_selection("stop", |v, id| {
                    (v == View::Executions).then_some(Command::StopLoop { id })
                });
            }
            KeyCode::Char('y') => {
                return self.on_selection("copy", |_, id| Some(Command::CopyId { id }));
            }
            _ => {}
        }
        Action::None
    }

    fn open_prompt(&mut self, kind: PromptKind, text: String) {
        self.mode = Mode::Prompt { kind, text };
    }

    fn open_logs(&mut self) {
        match self.view {
            View::Processes | View::Queues | View::Executions => {
                if self.selected_id(self.view).is_some() {
                    self.zoomed = !self.zoomed;
                } else {
                    self.complain("logs: nothing selected");
                }
            }
            other => self.complain(format!(
                "logs: {} has no logs (Processes, Queues and Executions do)",
                other.title()
            )),
        }
    }

    /// Builds the action `make` gives for the selection, behind a confirmation.
    fn on_selection(
        &mut self,
        verb: &str,
        make: impl FnOnce(View, String) -> Option<Command>,
    ) -> Action {
        let Some(id) = self.selected_id(self.view) else {
            self.complain(format!("{verb}: nothing selected"));
            return Action::None;
        };
        match make(self.view, id) {
            Some(command) => {
                self.mode = Mode::Confirm(command);
                Action::None
            }
            None => {
                self.complain(format!("{verb} does not apply in {}", self.view.title()));
                Action::None
            }
        }
    }

    fn prompt_key(&mut self, kind: PromptKind, mut text: String, key: KeyEvent) -> Action {
        match key.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                Action::None
            }
            KeyCode::Backspace => {
                text.pop();
                self.mode = Mode::Prompt { kind, text };
                Action::None
            }
            KeyCode::Char(c) => {
                text.push(c);
                self.mode = Mode::Prompt { kind, text };
                Action::None
            }
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                self.submit(kind, text)
            }
            _ => Action::None,
        }
    }

    fn submit(&mut self, kind: PromptKind, text: String) -> Action {
        let view = self.view;
        match kind {
            PromptKind::Search => {
                self.queries[view.index()].search = text.trim().to_owned();
                self.apply_query(view);
                Action::None
            }
            PromptKind::Filter => {
                match Filter::parse(&text) {
                    Ok(filter) => {
                        self.queries[view.index()].filter = filter;
                        self.apply_query(view);
                    }
                    Err(e) => self.complain(e),
                }
                Action::None
            }
            PromptKind::Command => self.palette(&text),
            PromptKind::Chat => self.chat(text),
        }
    }

    fn apply_query(&mut self, view: View) {
        self.recompute(view);
        self.lists[view.index()] = ListState::default();
        let shown = self.row_count(view);
        self.say(format!("{shown} of {} rows", self.total(view)));
    }

    fn chat(&mut self, text: String) -> Action {
        let text = text.trim().to_owned();
        if text.is_empty() {
            return Action::None;
        }
        if text == "/plan" || text.starts_with("/plan ") {
            self.model
                .chat
                .lines
                .push(ChatLine::Notice(PLAN_NOT_AVAILABLE.to_owned()));
            self.complain("/plan: new-plan is not available yet");
            return Action::None;
        }
        if self.model.chat.waiting {
            self.complain("chat: the model is still answering");
            return Action::None;
        }
        self.model.chat.lines.push(ChatLine::Said(ChatMessage {
            role: ChatRole::User,
            text,
        }));
        self.model.chat.waiting = true;
        Action::Run(Command::ChatSend)
    }

    /// Runs a `:` command.
    fn palette(&mut self, line: &str) -> Action {
        let mut words = line.split_whitespace();
        let Some(word) = words.next() else {
            return Action::None;
        };
        let rest: Vec<&str> = words.collect();
        let key = |c: char| KeyEvent::from(KeyCode::Char(c));
        match word {
            "q" | "quit" => Action::Quit,
            "help" => {
                self.mode = Mode::Help;
                Action::None
            }
            "kill" => self.normal_key(key('x')),
            "restart" => self.normal_key(key('r')),
            "cancel" => self.normal_key(key('c')),
            "retry" => self.normal_key(key('R')),
            "stop" => self.normal_key(key('s')),
            "copy" => self.normal_key(key('y')),
            "logs" => {
                self.open_logs();
                Action::None
            }
            "search" => self.submit(PromptKind::Search, rest.join(" ")),
            "filter" => self.submit(PromptKind::Filter, rest.join(" ")),
            "plan" => {
                self.complain(PLAN_NOT_AVAILABLE);
                Action::None
            }
            "export" => self.export(&rest),
            other => match View::by_name(other) {
                Some(view) => {
                    self.switch(view);
                    Action::None
                }
                None => {
                    self.complain(format!("unknown command ':{other}' (press ? for help)"));
                    Action::None
                }
            },
        }
    }

    fn export(&mut self, args: &[&str]) -> Action {
        let (Some(format), Some(path)) = (args.first(), args.get(1)) else {
            self.complain("usage: :export json|csv PATH (exports the Records view as shown)");
            return Action::None;
        };
        let format = match *format {
            "json" => ExportFormat::Json,
            "csv" => ExportFormat::Csv,
            other => {
                self.complain(format!("export format '{other}': use json or csv"));
                return Action::None;
            }
        };
        Action::Run(Command::Export {
            format,
            path: PathBuf::from(path),
        })
    }
}
