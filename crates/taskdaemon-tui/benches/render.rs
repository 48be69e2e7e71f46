//! TUI figures, driven by `bench/tui.sh` (a `harness = false` bench, built
//! with the release profile):
//!
//! - load: reading every view through the service (`Model::load`);
//! - frame: drawing the Tracked view (120x40, TestBackend) while scrolling
//!   through every task, p50/p99/max;
//! - input to frame: one key (`j`, or PgDn every tenth) handled and the
//!   next frame drawn, p50/p99/max;
//! - search: `/` + a word + Enter over all tasks;
//! - event to frame: a task added by another service (as a CLI would),
//!   from its event's arrival to the frame showing it (re-read, tree, draw);
//! - RSS of this process after loading.
//!
//! `render --workspace DIR [--frames N]` measures an existing workspace;
//! without arguments (plain `cargo bench`) it fills a small temporary one.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use taskdaemon_core::time::now_millis;
use taskdaemon_service::{Agent, FeedOptions, NewTask, Service};
use taskdaemon_tui::app::{App, View};
use taskdaemon_tui::model::Model;
use taskdaemon_tui::style::Theme;
use taskdaemon_tui::ui;
use taskdaemon_workspace::{DEFAULT_CONFIG, Workspace};

type Result<T> = std::result::Result<T, String>;

fn main() {
    if let Err(e) = run() {
        eprintln!("render bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let frames: usize = value("--frames")
        .map(|f| f.parse().map_err(|e| format!("--frames: {e}")))
        .transpose()?
        .unwrap_or(2000);
    let _temp;
    let workspace = match value("--workspace") {
        Some(dir) => Workspace::open(std::path::Path::new(&dir)).map_err(|e| e.to_string())?,
        None => {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let (workspace, _) = Workspace::init(dir.path()).map_err(|e| e.to_string())?;
            std::fs::write(workspace.config_path(), DEFAULT_CONFIG).map_err(|e| e.to_string())?;
            fill(
                &Service::open(workspace.clone()).map_err(|e| e.to_string())?,
                2000,
            )?;
            _temp = dir;
            workspace
        }
    };
    let service = Service::open(workspace.clone()).map_err(|e| e.to_string())?;
    measure(&service, &workspace, frames)
}

fn fill(service: &Service, tasks: usize) -> Result<()> {
    let agent = Agent::new(None, None).map_err(|e| e.to_string())?;
    for n in 0..tasks {
        let after = if n % 3 == 2 {
            vec![format!("TASK-{}", n)]
        } else {
            Vec::new()
        };
        service
            .add_task(
                &agent,
                NewTask {
                    title: format!("build step {n}"),
                    after,
                    ..NewTask::default()
                },
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn measure(service: &Service, workspace: &Workspace, frames: usize) -> Result<()> {
    let e = |e: taskdaemon_service::ServiceError| e.to_string();
    let feed = service.feed(FeedOptions::default()).map_err(e)?;
    let started = Instant::now();
    let model = Model::load(service, feed.last_seq()).map_err(e)?;
    let load = started.elapsed();
    let tasks = model.tracked.tasks.len();
    println!("tasks                 {tasks}");
    println!("load (all views)      {:.1} ms", ms(load));
    println!("rss after load        {} KiB", rss_kib());

    let mut app = App::new(model, Theme { color: true }, now_millis());
    app.data_changed();
    app.handle_key(KeyEvent::from(KeyCode::Char('3')));
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).map_err(|e| e.to_string())?;
    let mut draw = |app: &mut App| -> Result<Duration> {
        let t = Instant::now();
        terminal
            .draw(|frame| ui::draw(frame, app))
            .map_err(|e| e.to_string())?;
        Ok(t.elapsed())
    };
    draw(&mut app)?;

    let mut render = Vec::with_capacity(frames);
    let mut input = Vec::with_capacity(frames);
    for n in 0..frames {
        let key = if n % 10 == 9 {
            KeyCode::PageDown
        } else {
            KeyCode::Char('j')
        };
        let t = Instant::now();
        app.handle_key(KeyEvent::from(key));
        render.push(draw(&mut app)?);
        input.push(t.elapsed());
    }
    println!(
        "frame (Tracked view)  {}   selection at row {}",
        summary(&mut render),
        app.list(View::Tracked).selected
    );
    println!("input to frame        {}", summary(&mut input));

    let t = Instant::now();
    for key in [
        KeyCode::Char('/'),
        KeyCode::Char('9'),
        KeyCode::Char('9'),
        KeyCode::Enter,
    ] {
        app.handle_key(KeyEvent::from(key));
    }
    draw(&mut app)?;
    println!(
        "search over all tasks {:.1} ms   ({} rows kept)",
        ms(t.elapsed()),
        app.row_count(View::Tracked)
    );
    app.handle_key(KeyEvent::from(KeyCode::Esc));

    // A change made elsewhere, until the frame that shows it.
    let other = Service::open(workspace.clone()).map_err(e)?;
    let agent = Agent::new(None, None).map_err(e)?;
    let mut subscription = feed.subscribe(feed.last_seq());
    let mut change = Vec::new();
    for n in 0..20 {
        let added = other
            .add_task(
                &agent,
                NewTask {
                    title: format!("live change {n}"),
                    ..NewTask::default()
                },
            )
            .map_err(e)?;
        // From the event's arrival: the TUI's own share (the commit-to-event
        // latency is the feed's, measured by bench/feed.sh).
        let mut events = Vec::new();
        let t = loop {
            let event = subscription
                .next_timeout(Some(Duration::from_secs(10)))
                .map_err(e)?
                .ok_or("no event within 10 s")?;
            let done = event.task_id.as_deref() == Some(added.id.as_str());
            events.push(event);
            if done {
                break Instant::now();
            }
        };
        app.model.apply(service, events).map_err(e)?;
        app.data_changed();
        draw(&mut app)?;
        change.push(t.elapsed());
    }
    println!("event to frame        {}", summary(&mut change));
    println!("rss at the end        {} KiB", rss_kib());
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    format!(
        "p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n={})",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(samples[samples.len() - 1]),
        samples.len()
    )
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
