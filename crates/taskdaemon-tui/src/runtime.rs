//! The UI loop: draws, waits for the next message (a key, a batch of
//! change-feed events, an action's result, a chat answer, a tick) and
//! applies it. Three threads feed it: terminal input, the change feed
//! (the service's blocking subscription), and one short-lived thread per
//! action, so a kill that waits for the process never freezes the screen.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crossterm::event::Event as TermEvent;
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{Event, TrackedAction};
use taskdaemon_service::{Agent, ChatMessage, ChatReply, ChatRole, FeedOptions, Service};

use crate::app::{Action, App, Command, View};
use crate::model::{ChatLine, Model, RECORDS_AT_START};
use crate::style::Theme;
use crate::terminal::{self, Tty};
use crate::{Options, TuiError, export, ui};

/// How long the loop sleeps without a message (for signals and the clock).
const TICK: Duration = Duration::from_millis(250);
/// How often resource samples, the daemon's state and the followed log are re-read.
const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Events handed over at a time.
const EVENT_BATCH: usize = 500;
/// Grace between SIGTERM and SIGKILL for kill and cancel.
const KILL_GRACE: Duration = Duration::from_secs(5);

enum Msg {
    Input(TermEvent),
    Events(Vec<Event>),
    FeedFailed(String),
    Done(Result<String, String>),
    Chat(Result<ChatReply, String>),
}

/// Opens the terminal and runs until the user quits or a signal arrives.
pub fn run(service: Service, options: Options) -> Result<(), TuiError> {
    let (tx, rx) = mpsc::channel();
    // Warnings must not write over the screen: they go to the status line.
    let warnings = tx.clone();
    let service = Arc::new(service.on_warning(move |message| {
        let _ignored = warnings.send(Msg::Done(Err(format!("warning: {message}"))));
    }));
    let stop = terminal::termination_flag()?;
    let feed = service.feed(FeedOptions::default())?;
    let start_seq = feed.last_seq();
    let subscription = feed.subscribe((start_seq - RECORDS_AT_START).max(0));
    let mut model = Model::load(&service, start_seq)?;
    model.chat.model = options.chat;
    spawn_feed(subscription, tx.clone());
    spawn_input(tx.clone());

    let mut tty = terminal::enter()?;
    let app = App::new(model, Theme::from_env(), now_millis());
    let result = UiLoop {
        service,
        app,
        tx,
        stop,
        detail: None,
        last_sample: Instant::now(),
    }
    .run(&mut tty, &rx);
    terminal::restore();
    drop(feed);
    result
}

fn spawn_feed(mut subscription: taskdaemon_service::Subscription, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        loop {
            let first = match subscription.next_timeout(Some(Duration::from_secs(3600))) {
                Ok(Some(event)) => event,
                Ok(None) => continue,
                Err(e) => {
                    if tx.send(Msg::FeedFailed(e.to_string())).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let mut batch = vec![first];
            while batch.len() < EVENT_BATCH {
                match subscription.next_timeout(None) {
                    Ok(Some(event)) => batch.push(event),
                    _ => break,
                }
            }
            if tx.send(Msg::Events(batch)).is_err() {
                return;
            }
        }
    });
}

fn spawn_input(tx: Sender<Msg>) {
    std::thread::spawn(move || {
        while let Ok(event) = crossterm::event::read() {
            if tx.send(Msg::Input(event)).is_err() {
                return;
            }
        }
    });
}

struct UiLoop {
    service: Arc<Service>,
    app: App,
    tx: Sender<Msg>,
    stop: Arc<AtomicBool>,
    /// What the detail pane shows now.
    detail: Option<(View, String)>,
    last_sample: Instant,
}

impl UiLoop {
    fn run(mut self, tty: &mut Tty, rx: &Receiver<Msg>) -> Result<(), TuiError> {
        self.app.data_changed();
        loop {
            self.follow_selection();
            self.app.now = now_millis();
            tty.draw(|frame| ui::draw(frame, &mut self.app))?;
            let first = match rx.recv_timeout(TICK) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            // Everything already waiting is applied before the next frame.
            let mut quit = false;
            for msg in first.into_iter().chain(rx.try_iter()) {
                quit |= self.handle(msg, tty)?;
            }
            if quit {
                return Ok(());
            }
            if self.last_sample.elapsed() >= SAMPLE_EVERY {
                self.last_sample = Instant::now();
                self.sample();
            }
        }
    }

    /// Applies one message; returns true to quit.
    fn handle(&mut self, msg: Msg, tty: &mut Tty) -> Result<bool, TuiError> {
        match msg {
            Msg::Input(TermEvent::Key(key)) => match self.app.handle_key(key) {
                Action::Quit => return Ok(true),
                Action::Run(command) => self.execute(command, tty),
                Action::None => {}
            },
            Msg::Input(TermEvent::Mouse(mouse)) => {
                self.app.handle_mouse(mouse);
            }
            // A resize needs only the next frame, drawn at the new size.
            Msg::Input(_) => {}
            Msg::Events(events) => {
                match self.app.model.apply(&self.service, events) {
                    Ok(_) => {}
                    Err(e) => self.app.report(Err(format!("reading changes failed: {e}"))),
                }
                self.app.data_changed();
                self.reload_detail();
            }
            Msg::FeedFailed(e) => self.app.report(Err(format!("change feed: {e}"))),
            Msg::Done(result) => self.app.report(result),
            Msg::Chat(result) => {
                let chat = &mut self.app.model.chat;
                chat.waiting = false;
                match result {
                    Ok(reply) => chat.lines.push(ChatLine::Said(ChatMessage {
                        role: ChatRole::Assistant,
                        text: reply.text,
                    })),
                    Err(e) => chat.lines.push(ChatLine::Notice(format!("no answer: {e}"))),
                }
            }
        }
        Ok(false)
    }

    /// Loads the detail pane when the selection moved to another task.
    fn follow_selection(&mut self) {
        let target = self.app.detail_target();
        if target != self.detail {
            self.detail = target;
            self.reload_detail();
        }
    }

    fn reload_detail(&mut self) {
        match &self.detail {
            Some((View::Executions, id)) => {
                let id = id.clone();
                self.app.model.load_progress(&self.service, &id);
            }
            Some((_, id)) => {
                let id = id.clone();
                self.app.model.load_log(&self.service, &id);
            }
            None => {}
        }
    }

    /// What changes without events: the daemon coming and going, resource
    /// samples of running processes, the followed log's new lines.
    fn sample(&mut self) {
        let model = &mut self.app.model;
        model.refresh_daemon(&self.service);
        let running = model.processes.iter().any(|p| !p.task.status.is_terminal());
        if running && self.app.view == View::Processes {
            if let Err(e) = self.app.model.refresh_processes(&self.service) {
                self.app.report(Err(e.to_string()));
            }
            self.app.data_changed();
        }
        self.reload_detail();
    }

    fn execute(&mut self, command: Command, tty: &mut Tty) {
        match command {
            Command::CopyId { id } => {
                let result = terminal::copy_osc52(tty.backend_mut(), &id)
                    .map(|()| format!("copied {id}"))
                    .map_err(|e| format!("copy failed: {e}"));
                self.app.report(result);
            }
            Command::Export { format, path } => {
                let records = self.app.shown_records();
                let result = export::write(&records, format, &path)
                    .map(|n| format!("exported {n} records to {}", path.display()));
                self.app.report(result);
            }
            Command::ChatSend => {
                let service = self.service.clone();
                let tx = self.tx.clone();
                let model = self.app.model.chat.model.clone();
                let conversation = self.app.model.chat.conversation();
                std::thread::spawn(move || {
                    let reply = service
                        .chat(&model, &conversation)
                        .map_err(|e| e.to_string());
                    let _ignored = tx.send(Msg::Chat(reply));
                });
            }
            other => {
                self.app.report(Ok(format!("{}…", describe(&other))));
                let service = self.service.clone();
                let tx = self.tx.clone();
                std::thread::spawn(move || {
                    let _ignored = tx.send(Msg::Done(act(&service, &other)));
                });
            }
        }
    }
}

fn describe(command: &Command) -> String {
    match command {
        Command::Kill { id } => format!("killing {id}"),
        Command::Restart { id } => format!("restarting {id}"),
        Command::Cancel { id } | Command::CancelTracked { id } => format!("cancelling {id}"),
        Command::Retry { id } => format!("retrying {id}"),
        Command::StopLoop { id } => format!("stopping {id}"),
        Command::CopyId { id } => format!("copying {id}"),
        Command::Export { path, .. } => format!("exporting to {}", path.display()),
        Command::ChatSend => "asking the model".to_owned(),
    }
}

/// Carries out an action on the service; the answer is the status line.
pub fn act(service: &Service, command: &Command) -> Result<String, String> {
    let result = match command {
        Command::Kill { id } => service
            .kill(id, "TERM", KILL_GRACE)
            .map(|t| format!("{} {}", t.id, t.status)),
        Command::Restart { id } => service
            .restart(id, KILL_GRACE)
            .map(|t| format!("{} restarted ({})", t.id, t.status)),
        Command::Cancel { id } => service
            .cancel(id, KILL_GRACE)
            .map(|t| format!("{} {}", t.id, t.status)),
        Command::CancelTracked { id } => Agent::new(None, None)
            .and_then(|agent| service.act(&agent, id, TrackedAction::Cancel))
            .map(|t| format!("{} {}", t.id, t.status)),
        Command::Retry { id } => service
            .retry(id)
            .map(|path| format!("{id} queued again: {}", path.display())),
        Command::StopLoop { id } => service
            .loop_stop(id)
            .map(|l| format!("{} {}", l.task.id, l.task.status)),
        Command::CopyId { .. } | Command::Export { .. } | Command::ChatSend => {
            return Err("not an action on the service".to_owned());
        }
    };
    result.map_err(|e| e.to_string())
}
