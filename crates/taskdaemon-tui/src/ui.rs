//! Drawing: one function per view, the tab bar, the status line and the
//! overlays (help, confirmation). Lists are virtualised: only the rows in
//! the viewport are built, whatever the list's length.

use std::ops::Range;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, Tabs, Wrap};
use taskdaemon_core::Status;
use taskdaemon_core::pipeline::PipelineStatus;
use taskdaemon_core::time::{Millis, to_rfc3339};
use taskdaemon_service::ChatRole;

use crate::app::{App, Mode, View};
use crate::model::ChatLine;
use crate::plan::plan_rows;
use crate::style::{status_label, status_symbol};

/// Keys shown by `?`.
pub const HELP: &[(&str, &str)] = &[
    ("1-7, Tab, S-Tab", "switch view"),
    ("j/k, ↓/↑, wheel", "move"),
    ("g/G, PgUp/PgDn, C-u/C-d", "jump, page"),
    (
        "/",
        "search the view (Enter applies, Esc in the list clears)",
    ),
    ("f", "filter: status:S kind:K task:ID queue:Q"),
    (
        ":",
        "command palette (kill, restart, cancel, retry, stop, copy, logs, export json|csv PATH, plan, view names, quit)",
    ),
    (
        "Enter, l",
        "open logs / progress of the selection (again: close)",
    ),
    ("x", "kill the selected process or queue task"),
    ("r", "restart the selected process"),
    ("c", "cancel the selected queue task or tracked task"),
    ("R", "retry the selected queue task"),
    ("s", "stop the selected loop"),
    ("y", "copy the selected id (OSC 52)"),
    (
        "i, Enter (Chat)",
        "type a message; /plan turns a chat into a plan (not available yet)",
    ),
    ("?", "this help"),
    ("q, C-c", "quit"),
];

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_tabs(frame, app, tabs);
    match app.view {
        View::Processes => draw_processes(frame, app, body),
        View::Queues => draw_queues(frame, app, body),
        View::Tracked => draw_tracked(frame, app, body),
        View::Executions => draw_executions(frame, app, body),
        View::Plan => draw_plan(frame, app, body),
        View::Chat => draw_chat(frame, app, body),
        View::Records => draw_records(frame, app, body),
    }
    draw_status(frame, app, status);
    match &app.mode {
        Mode::Help => draw_help(frame, app),
        Mode::Confirm(command) => {
            if let Some(question) = command.question() {
                draw_confirm(frame, app, &question);
            }
        }
        _ => {}
    }
}

fn draw_tabs(frame: &mut Frame, app: &App, area: Rect) {
    let titles: Vec<String> = View::ALL
        .iter()
        .map(|v| format!("{} {}", v.index() + 1, v.title()))
        .collect();
    let tabs = Tabs::new(titles)
        .select(app.view.index())
        .highlight_style(app.theme.selected().add_modifier(Modifier::BOLD))
        .divider("│");
    frame.render_widget(tabs, area);
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let daemon = match app.model.daemon.pid {
        Some(pid) => Span::styled(format!("▶ daemon {pid}"), theme.ok()),
        None => Span::styled(
            "✘ daemon down: showing the store (actions start it)",
            theme.warn(),
        ),
    };
    let mut spans = vec![daemon, Span::raw("  ")];
    match &app.mode {
        Mode::Prompt { kind, text } => {
            spans.push(Span::styled(
                format!("{}{text}█", kind.sigil()),
                theme.header(),
            ));
        }
        _ => match &app.message {
            Some(m) if m.error => spans.push(Span::styled(m.text.clone(), theme.error())),
            Some(m) => spans.push(Span::raw(m.text.clone())),
            None => spans.push(Span::styled("? help  : commands  q quit", theme.dim())),
        },
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A block titled with the view's row counts and its query.
fn list_block(app: &App, view: View, title: &str, total: usize) -> Block<'static> {
    let query = app.query(view);
    let mut text = format!(" {title} ({} of {total})", app.row_count(view));
    if !query.search.is_empty() {
        text.push_str(&format!("  /{}", query.search));
    }
    if !query.filter.is_empty() {
        text.push_str(&format!("  filter {}", query.filter.describe()));
    }
    text.push(' ');
    Block::bordered().title(text)
}

/// A table's column titles and widths.
struct Columns<'a> {
    header: &'a [&'static str],
    widths: &'a [Constraint],
}

/// Draws the visible window of `view`'s rows as a table; `row` builds one
/// row from a data index. Returns the window drawn.
fn draw_list(
    frame: &mut Frame,
    app: &mut App,
    view: View,
    area: Rect,
    block: Block<'static>,
    columns: Columns<'_>,
    row: impl Fn(&App, usize) -> Row<'static>,
) -> Range<usize> {
    let Columns { header, widths } = columns;
    // Borders and the header line.
    let height = area.height.saturating_sub(3) as usize;
    let len = app.row_count(view);
    let window = app.list_mut(view).window(len, height);
    let selected = app.list(view).selected;
    let rows: Vec<Row> = window
        .clone()
        .filter_map(|r| {
            let item = app.item(view, r)?;
            let built = row(app, item);
            Some(if r == selected {
                built.style(app.theme.selected())
            } else {
                built
            })
        })
        .collect();
    let header = Row::new(header.iter().map(|h| Cell::from(*h))).style(app.theme.header());
    let table = Table::new(rows, widths.to_vec())
        .header(header)
        .block(block)
        .column_spacing(1);
    frame.render_widget(table, area);
    window
}

fn status_cell(app: &App, status: Status) -> Cell<'static> {
    Cell::from(Span::styled(status_label(status), app.theme.status(status)))
}

/// `12s`, `5m`, `3h`, `2d`.
pub fn age(now: Millis, then: Millis) -> String {
    let secs = (now - then).max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

fn kib(kb: u64) -> String {
    if kb >= 1024 * 1024 {
        format!("{:.1}G", kb as f64 / (1024.0 * 1024.0))
    } else if kb >= 1024 {
        format!("{:.1}M", kb as f64 / 1024.0)
    } else {
        format!("{kb}K")
    }
}

fn count(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 1000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

fn cost(usd: f64) -> String {
    format!("${usd:.2}")
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

// ----- Processes -----

fn draw_processes(frame: &mut Frame, app: &mut App, area: Rect) {
    let [list, log] = split_detail(app, area);
    if list.height > 0 {
        let block = list_block(app, View::Processes, "Processes", app.model.processes.len());
        draw_list(
            frame,
            app,
            View::Processes,
            list,
            block,
            Columns {
                header: &[
                    "STATUS", "ID", "PID", "CPU%", "RSS", "AGE", "EXIT", "COMMAND",
                ],
                widths: &[
                    Constraint::Length(12),
                    Constraint::Length(12),
                    Constraint::Length(8),
                    Constraint::Length(6),
                    Constraint::Length(7),
                    Constraint::Length(5),
                    Constraint::Length(5),
                    Constraint::Fill(1),
                ],
            },
            |app, i| {
                let p = &app.model.processes[i];
                let t = &p.task;
                Row::new(vec![
                    status_cell(app, t.status),
                    Cell::from(t.id.clone()),
                    Cell::from(opt(t.pid)),
                    Cell::from(p.cpu_percent.map_or("-".to_owned(), |c| format!("{c:.1}"))),
                    Cell::from(p.rss_kb.map_or("-".to_owned(), kib)),
                    Cell::from(age(app.now, t.started_at.unwrap_or(t.created_at))),
                    Cell::from(exit_text(t.exit_code, t.signal)),
                    Cell::from(t.title().to_owned()),
                ])
            },
        );
    }
    draw_log(frame, app, log);
}

fn exit_text(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(signal)) => format!("sig{signal}"),
        _ => "-".to_owned(),
    }
}

/// The list above, the detail pane below (all detail when zoomed).
fn split_detail(app: &App, area: Rect) -> [Rect; 2] {
    if app.zoomed {
        return [Rect::default(), area];
    }
    Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area)
}

fn draw_log(frame: &mut Frame, app: &App, area: Rect) {
    if area.height == 0 {
        return;
    }
    let log = &app.model.log;
    let theme = app.theme;
    let title = match &log.task {
        Some(id) => format!(" Log {id} (following) "),
        None => " Log ".to_owned(),
    };
    let mut lines: Vec<Line> = Vec::new();
    if let Some(error) = &log.error {
        lines.push(Line::styled(error.clone(), theme.error()));
    }
    lines.extend(log.stdout.iter().map(|l| Line::raw(l.clone())));
    lines.extend(log.stderr.iter().map(|l| {
        Line::from(vec![
            Span::styled("err│ ", theme.warn()),
            Span::raw(l.clone()),
        ])
    }));
    if lines.is_empty() {
        lines.push(Line::styled(
            if log.task.is_some() {
                "(no output yet)"
            } else {
                "(select a task)"
            },
            theme.dim(),
        ));
    }
    // Show the end, like `tail -f`.
    let inner = area.height.saturating_sub(2) as usize;
    let skip = lines.len().saturating_sub(inner);
    let text = Text::from(lines.split_off(skip));
    frame.render_widget(
        Paragraph::new(text).block(Block::bordered().title(title)),
        area,
    );
}

// ----- Queues -----

fn draw_queues(frame: &mut Frame, app: &mut App, area: Rect) {
    let workers_height = (app.model.workers.len() as u16 + 3).min(8);
    let [workers, rest] = if app.zoomed {
        [Rect::default(), area]
    } else {
        Layout::vertical([Constraint::Length(workers_height), Constraint::Min(3)]).areas(area)
    };
    if workers.height > 0 {
        draw_workers(frame, app, workers);
    }
    let [list, log] = split_detail(app, rest);
    if list.height > 0 {
        let block = list_block(
            app,
            View::Queues,
            "Queue tasks",
            app.model.queue_tasks.len(),
        );
        draw_list(
            frame,
            app,
            View::Queues,
            list,
            block,
            Columns {
                header: &[
                    "STATUS", "ID", "QUEUE", "EXECUTOR", "TRY", "EXIT", "COST", "TOKENS", "AGE",
                    "DOCUMENT",
                ],
                widths: &[
                    Constraint::Length(12),
                    Constraint::Length(14),
                    Constraint::Length(10),
                    Constraint::Length(11),
                    Constraint::Length(5),
                    Constraint::Length(4),
                    Constraint::Length(7),
                    Constraint::Length(7),
                    Constraint::Length(4),
                    Constraint::Fill(1),
                ],
            },
            |app, i| {
                let q = &app.model.queue_tasks[i];
                Row::new(vec![
                    status_cell(app, q.status),
                    Cell::from(q.id.clone()),
                    Cell::from(q.queue.clone()),
                    Cell::from(q.executor.clone()),
                    Cell::from(format!("{}/{}", q.attempt, q.max_attempts)),
                    Cell::from(opt(q.exit_code)),
                    Cell::from(q.cost_usd.map_or("-".to_owned(), cost)),
                    Cell::from(
                        q.tokens
                            .map_or("-".to_owned(), |t| count(t.input + t.output)),
                    ),
                    Cell::from(age(app.now, q.created_at)),
                    Cell::from(q.document.clone()),
                ])
            },
        );
    }
    draw_log(frame, app, log);
}

fn draw_workers(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let rows: Vec<Row> = app
        .model
        .workers
        .iter()
        .map(|w| {
            Row::new(vec![
                Cell::from(w.queue.clone()),
                Cell::from(w.worker.clone().unwrap_or_else(|| "folder".to_owned())),
                Cell::from(w.state.to_string()),
                Cell::from(opt(w.current_task.clone())),
                Cell::from(w.since_ms.map_or("-".to_owned(), |s| age(app.now, s))),
                Cell::from(w.pending.to_string()),
                Cell::from(w.done.to_string()),
                Cell::from(w.failed.to_string()),
            ])
        })
        .collect();
    let header = Row::new([
        "QUEUE", "WORKER", "STATE", "CURRENT", "FOR", "PENDING", "DONE", "FAILED",
    ])
    .style(theme.header());
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(20),
            Constraint::Length(8),
            Constraint::Length(16),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(6),
        ],
    )
    .header(header)
    .block(Block::bordered().title(" Workers "));
    frame.render_widget(table, area);
}

// ----- Tracked -----

fn draw_tracked(frame: &mut Frame, app: &mut App, area: Rect) {
    let [tree, side] =
        Layout::horizontal([Constraint::Percentage(64), Constraint::Percentage(36)]).areas(area);
    let block = list_block(
        app,
        View::Tracked,
        "Tracked work",
        app.model.tracked.tasks.len(),
    );
    draw_list(
        frame,
        app,
        View::Tracked,
        tree,
        block,
        Columns {
            header: &["STATUS", "TASK", "PRI", "AFTER"],
            widths: &[
                Constraint::Length(12),
                Constraint::Fill(1),
                Constraint::Length(4),
                Constraint::Length(18),
            ],
        },
        |app, i| {
            let tracked = &app.model.tracked;
            let row = &tracked.tree[i];
            let t = &tracked.tasks[row.index];
            let current = tracked.current.as_deref() == Some(t.id.as_str());
            let mut title = vec![
                Span::styled(row.guide.clone(), app.theme.dim()),
                Span::raw(format!("{} {}", t.id, t.title())),
            ];
            if current {
                title.push(Span::styled("  ◀ current", app.theme.header()));
            }
            Row::new(vec![
                status_cell(app, t.status),
                Cell::from(Line::from(title)),
                Cell::from(t.priority.to_string()),
                Cell::from(t.depends_on.join(",")),
            ])
        },
    );
    draw_work_summary(frame, app, side);
}

fn draw_work_summary(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let tracked = &app.model.tracked;
    let mut lines = vec![Line::styled("Current", theme.header())];
    match tracked.current.as_deref().and_then(|id| tracked.get(id)) {
        Some(t) => lines.push(Line::raw(format!(
            "{} {} {}",
            status_symbol(t.status),
            t.id,
            t.title()
        ))),
        None => lines.push(Line::styled("(none in progress)", theme.dim())),
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!("Ready ({})", tracked.ready.len()),
        theme.header(),
    ));
    if tracked.ready.is_empty() {
        lines.push(Line::styled("(nothing ready)", theme.dim()));
    }
    for t in &tracked.ready {
        lines.push(Line::raw(format!(
            "{} {} {}",
            status_symbol(t.status),
            t.id,
            t.title()
        )));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Memory: recent decisions", theme.header()));
    if tracked.decisions.is_empty() {
        lines.push(Line::styled("(none recorded)", theme.dim()));
    }
    for m in &tracked.decisions {
        let task = m
            .task_id
            .as_deref()
            .map(|t| format!(" [{t}]"))
            .unwrap_or_default();
        lines.push(Line::raw(format!("• {}{task}", m.text)));
    }
    let para = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(" Where work stands "));
    frame.render_widget(para, area);
}

// ----- Executions -----

fn draw_executions(frame: &mut Frame, app: &mut App, area: Rect) {
    let [list, detail] = split_detail(app, area);
    if list.height > 0 {
        let block = list_block(app, View::Executions, "Loops", app.model.loops.len());
        draw_list(
            frame,
            app,
            View::Executions,
            list,
            block,
            Columns {
                header: &[
                    "STATUS",
                    "ID",
                    "ITER",
                    "VALIDATION",
                    "TOOLS",
                    "TOKENS IN/OUT",
                    "COST",
                    "AGE",
                    "NAME",
                ],
                widths: &[
                    Constraint::Length(12),
                    Constraint::Length(10),
                    Constraint::Length(6),
                    Constraint::Length(10),
                    Constraint::Length(5),
                    Constraint::Length(13),
                    Constraint::Length(7),
                    Constraint::Length(4),
                    Constraint::Fill(1),
                ],
            },
            |app, i| {
                let l = &app.model.loops[i];
                let max = l.spec.get("max_iterations").and_then(|m| m.as_u64());
                Row::new(vec![
                    status_cell(app, l.task.status),
                    Cell::from(l.task.id.clone()),
                    Cell::from(match max {
                        Some(max) => format!("{}/{max}", l.iterations),
                        None => l.iterations.to_string(),
                    }),
                    Cell::from(validation(l.last_validation_exit_code)),
                    Cell::from(l.tool_calls.to_string()),
                    Cell::from(format!(
                        "{}/{}",
                        count(l.input_tokens),
                        count(l.output_tokens)
                    )),
                    Cell::from(cost(l.cost_usd)),
                    Cell::from(age(app.now, l.task.created_at)),
                    Cell::from(l.task.title().to_owned()),
                ])
            },
        );
    }
    draw_progress(frame, app, detail);
}

fn validation(code: Option<i32>) -> String {
    match code {
        Some(0) => "✔ passed".to_owned(),
        Some(code) => format!("✘ exit {code}"),
        None => "-".to_owned(),
    }
}

fn draw_progress(frame: &mut Frame, app: &App, area: Rect) {
    if area.height == 0 {
        return;
    }
    let theme = app.theme;
    let mut lines: Vec<Line> = Vec::new();
    let title = match &app.model.progress {
        Some(show) => {
            for it in &show.progress {
                let ok = it.validation_exit_code == Some(0);
                lines.push(Line::from(vec![
                    Span::styled(format!("#{} ", it.iteration), theme.header()),
                    Span::styled(
                        validation(it.validation_exit_code),
                        if ok { theme.ok() } else { theme.error() },
                    ),
                    Span::raw(format!(
                        "  tools {}  tokens {}/{}  {}",
                        it.tool_calls,
                        count(it.usage.input_tokens),
                        count(it.usage.output_tokens),
                        it.summary.lines().next().unwrap_or("")
                    )),
                ]));
                if !ok {
                    for out in it
                        .validation_output
                        .lines()
                        .rev()
                        .take(3)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                    {
                        lines.push(Line::styled(format!("    {out}"), theme.dim()));
                    }
                }
            }
            if lines.is_empty() {
                lines.push(Line::styled("(no iteration finished yet)", theme.dim()));
            }
            format!(" Progress {} ", show.record.task.id)
        }
        None => {
            if let Some(e) = &app.model.progress_error {
                lines.push(Line::styled(e.clone(), theme.error()));
            } else {
                lines.push(Line::styled("(select a loop)", theme.dim()));
            }
            " Progress ".to_owned()
        }
    };
    let inner = area.height.saturating_sub(2) as usize;
    let skip = lines.len().saturating_sub(inner);
    let text = Text::from(lines.split_off(skip));
    frame.render_widget(
        Paragraph::new(text).block(Block::bordered().title(title)),
        area,
    );
}

// ----- Plan -----

/// The Plan view: the newest plans -> specs -> phases as a tree with
/// status and cost, and below it what waits for a person (queries to
/// answer with `plan answer`, alerts).
pub fn draw_plan(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let plans = &app.model.plans;
    if plans.is_empty() {
        let text = vec![
            Line::styled("No plans yet.", theme.warn()),
            Line::raw(""),
            Line::raw(
                "`taskdaemon new-plan \"GOAL\"` starts one: a plan loop reads the repository,",
            ),
            Line::raw("then specs, phases and Ralph loops in git worktrees work it out. Each plan"),
            Line::raw("shows here with its specs and phases as a tree, with status and cost."),
        ];
        let para = Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Plan "));
        frame.render_widget(para, area);
        return;
    }
    let waiting = attention_lines(app);
    let height = u16::try_from(waiting.len()).unwrap_or(u16::MAX);
    let [tree, below] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(if waiting.is_empty() {
            0
        } else {
            height.saturating_add(2)
        }),
    ])
    .areas(area);
    let rows: Vec<Row> = plan_rows(plans)
        .into_iter()
        .map(|(guide, node)| {
            Row::new(vec![
                pipeline_status_cell(app, node.status),
                Cell::from(Line::from(vec![
                    Span::styled(guide, theme.dim()),
                    Span::raw(format!("{} {}", node.kind.as_str(), node.title)),
                ])),
                Cell::from(cost(node.cost_usd)),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Length(8),
        ],
    )
    .header(Row::new(["STATUS", "PLAN / SPEC / PHASE", "COST"]).style(theme.header()))
    .block(Block::bordered().title(" Plan "));
    frame.render_widget(table, tree);
    if !waiting.is_empty() {
        let para = Paragraph::new(waiting)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" Waiting for you "));
        frame.render_widget(para, below);
    }
}

/// One line per query waiting for an answer and per alert of an open plan.
fn attention_lines(app: &App) -> Vec<Line<'static>> {
    let Some(attention) = &app.model.attention else {
        return Vec::new();
    };
    let theme = app.theme;
    let mut lines: Vec<Line> = attention
        .queries
        .iter()
        .map(|q| {
            Line::from(vec![
                Span::styled(format!("? {} ", q.id), theme.warn()),
                Span::raw(format!(
                    "{} from {}: {} (taskdaemon plan answer {} TEXT)",
                    q.plan,
                    q.from,
                    q.body.replace(['\n', '\r'], " "),
                    q.id
                )),
            ])
        })
        .collect();
    lines.extend(attention.alerts.iter().map(|a| {
        Line::from(vec![
            Span::styled(format!("! {} ", a.id), theme.warn()),
            Span::raw(format!(
                "{} from {}: {}",
                a.plan,
                a.from,
                a.body.replace(['\n', '\r'], " ")
            )),
        ])
    }));
    lines
}

/// A pipeline status in the colour of the task status it is closest to.
fn pipeline_status_cell(app: &App, status: PipelineStatus) -> Cell<'static> {
    let like = match status {
        PipelineStatus::Draft | PipelineStatus::Pending => Status::Pending,
        PipelineStatus::Running => Status::Running,
        PipelineStatus::Succeeded => Status::Succeeded,
        PipelineStatus::Failed => Status::Failed,
        PipelineStatus::Cancelled => Status::Cancelled,
        PipelineStatus::Blocked | PipelineStatus::Paused => Status::Blocked,
    };
    let label = format!("{} {status}", status_symbol(like));
    Cell::from(Span::styled(label, app.theme.status(like)))
}

// ----- Chat -----

fn draw_chat(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme;
    let chat = &app.model.chat;
    let mut lines: Vec<Line> = Vec::new();
    for line in &chat.lines {
        match line {
            ChatLine::Said(m) => {
                let (who, style) = match m.role {
                    ChatRole::User => ("you", theme.header()),
                    ChatRole::Assistant => ("model", theme.ok()),
                };
                for (n, text) in m.text.lines().enumerate() {
                    let lead = if n == 0 {
                        format!("{who}> ")
                    } else {
                        "     ".to_owned()
                    };
                    lines.push(Line::from(vec![
                        Span::styled(lead, style),
                        Span::raw(text.to_owned()),
                    ]));
                }
            }
            ChatLine::Notice(text) => lines.push(Line::styled(format!("! {text}"), theme.warn())),
        }
    }
    if chat.waiting {
        lines.push(Line::styled("model> …", theme.dim()));
    }
    if lines.is_empty() {
        lines.push(Line::styled(
            "Press i (or Enter) to talk with the model loops use; /plan would turn the chat into a plan (not available yet).",
            theme.dim(),
        ));
    }
    let model = chat
        .model
        .model
        .clone()
        .unwrap_or_else(|| "default model".to_owned());
    let title = format!(" Chat with {} ({model}) ", chat.model.provider);
    let inner_height = area.height.saturating_sub(2) as usize;
    // Keep the end of the conversation in view: count wrapped lines.
    let width = area.width.saturating_sub(2).max(1) as usize;
    let total: usize = lines.iter().map(|l| l.width().div_ceil(width).max(1)).sum();
    let scroll = total.saturating_sub(inner_height) as u16;
    let para = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(title));
    frame.render_widget(para.scroll((scroll, 0)), area);
}

// ----- Records -----

fn draw_records(frame: &mut Frame, app: &mut App, area: Rect) {
    let block = list_block(app, View::Records, "Records", app.model.records.len());
    draw_list(
        frame,
        app,
        View::Records,
        area,
        block,
        Columns {
            header: &["SEQ", "AT", "TASK", "KIND", "ACTOR", "MESSAGE"],
            widths: &[
                Constraint::Length(7),
                Constraint::Length(20),
                Constraint::Length(12),
                Constraint::Length(18),
                Constraint::Length(12),
                Constraint::Fill(1),
            ],
        },
        |app, i| {
            let e = &app.model.records[i];
            let at = to_rfc3339(e.at);
            Row::new(vec![
                Cell::from(e.seq.to_string()),
                Cell::from(at.get(..19).unwrap_or(&at).replace('T', " ")),
                Cell::from(opt(e.task_id.clone())),
                Cell::from(e.kind.to_string()),
                Cell::from(e.actor.clone()),
                Cell::from(e.message.clone()),
            ])
        },
    );
}

// ----- overlays -----

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn draw_help(frame: &mut Frame, app: &App) {
    let theme = app.theme;
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!("{keys:>24}  "), theme.header()),
                Span::raw(*what),
            ])
        })
        .collect();
    let area = centered(frame.area(), 100, HELP.len() as u16 + 4);
    frame.render_widget(Clear, area);
    let para = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(" Keys (any key closes) "));
    frame.render_widget(para, area);
}

fn draw_confirm(frame: &mut Frame, app: &App, question: &str) {
    let area = centered(frame.area(), (question.len() as u16 + 6).max(30), 5);
    frame.render_widget(Clear, area);
    let text = vec![
        Line::raw(question.to_owned()),
        Line::styled("y: yes    n, Esc: no", app.theme.dim()),
    ];
    let para = Paragraph::new(text)
        .alignment(Alignment::Center)
        .block(Block::bordered().title(" Confirm ").style(Style::new()));
    frame.render_widget(para, area);
}
