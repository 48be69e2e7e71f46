//! The rehydrate summary: what an agent needs right after its context was compacted.
//!
//! The renderer takes plain data gathered by the caller and produces Markdown
//! that never exceeds a budget of tokens (counted as 4 characters per token).
//! Every line has a priority; when the budget is tight, lines are kept in
//! priority order and the first line that does not fit ends the selection, so
//! what is dropped is always the least important part.

use serde::Serialize;

use crate::process::ExitOutcome;
use crate::status::Status;
use crate::time::{Millis, format_age, serde_rfc3339};

/// Characters counted as one token.
pub const CHARS_PER_TOKEN: usize = 4;

/// Longest command shown on one line.
const MAX_COMMAND_CHARS: usize = 80;
/// Longest log line shown.
const MAX_LOG_CHARS: usize = 120;

/// A process that runs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunningItem {
    pub id: String,
    pub command: String,
    /// Container tasks: the image it runs in (mode `container`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub pid: Option<i32>,
    #[serde(with = "serde_rfc3339")]
    pub started_at: Millis,
    pub last_line: Option<String>,
}

/// A process that ended since the last rehydrate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndedItem {
    pub id: String,
    pub command: String,
    /// Container tasks: the image it ran in (mode `container`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub status: Status,
    pub exit: Option<ExitOutcome>,
    #[serde(with = "serde_rfc3339")]
    pub finished_at: Millis,
    pub error: Option<String>,
}

/// Something that needs attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertItem {
    pub task_id: Option<String>,
    /// A pipeline alert's message (`MSG-N`): a loop raised it for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Who raised a pipeline alert (`PLAN-N/spec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(with = "serde_rfc3339")]
    pub at: Millis,
    pub message: String,
}

/// The tracked task being worked on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentItem {
    pub id: String,
    pub title: String,
    #[serde(with = "serde_rfc3339::option")]
    pub started_at: Option<Millis>,
    pub files_modified: Vec<String>,
    pub decisions: Vec<String>,
}

/// A tracked task that could start now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyItem {
    pub id: String,
    pub title: String,
    pub priority: i32,
}

/// A plan that has not ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanItem {
    pub id: String,
    pub title: String,
    pub status: crate::pipeline::PipelineStatus,
    pub specs_succeeded: usize,
    pub specs_total: usize,
}

/// A question a loop asked the human, not answered yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryItem {
    /// `MSG-N`.
    pub id: String,
    pub plan: String,
    /// The spec (or `plan`) whose loop asks.
    pub from: String,
    pub question: String,
    #[serde(with = "serde_rfc3339")]
    pub at: Millis,
}

/// Everything the summary may show, gathered by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RehydrateInput {
    pub workspace: String,
    #[serde(with = "serde_rfc3339")]
    pub now: Millis,
    pub daemon_pid: Option<i32>,
    pub running: Vec<RunningItem>,
    pub ended: Vec<EndedItem>,
    pub alerts: Vec<AlertItem>,
    pub current: Option<CurrentItem>,
    pub ready: Vec<ReadyItem>,
    /// Recent decisions, newest first.
    pub decisions: Vec<String>,
    /// Plans in progress, oldest first.
    pub plans: Vec<PlanItem>,
    /// Queries waiting for the human, oldest first.
    pub queries: Vec<QueryItem>,
    /// Gates that have not opened (waiting, or never opening), by task.
    pub gates: Vec<crate::gate::Gate>,
}

/// The rendered summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rehydrated {
    pub markdown: String,
    pub budget_tokens: usize,
    /// Tokens the Markdown uses, by the same 4-characters rule.
    pub tokens: usize,
    /// Lines left out to stay within the budget.
    pub omitted_lines: usize,
    /// Tasks whose ended or alert line was kept: what the reader has now seen.
    pub shown_ids: Vec<String>,
}

/// How an ended process's line ranks: a failure or loss is trouble and is
/// kept before what succeeded or was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndedClass {
    Trouble,
    Finished,
}

impl EndedClass {
    /// The class of a process that ended as `status`.
    pub fn of(status: Status) -> Self {
        if matches!(status, Status::Failed | Status::Lost) {
            EndedClass::Trouble
        } else {
            EndedClass::Finished
        }
    }

    fn priority(self) -> Priority {
        match self {
            EndedClass::Trouble => Priority::Trouble,
            EndedClass::Finished => Priority::Finished,
        }
    }
}

/// Ended processes the caller counted but has not read yet, by class: each
/// comes after every read one of its class (a caller reads each class newest
/// first), so its line would rank right behind theirs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnreadEnded {
    pub trouble: usize,
    pub finished: usize,
}

impl UnreadEnded {
    fn total(self) -> usize {
        self.trouble + self.finished
    }
}

/// How much a line matters; lower is kept first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Priority {
    Title,
    Running,
    Trouble,
    Finished,
    Detail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Title,
    Current,
    Running,
    Ended,
    Alerts,
    Ready,
    Gates,
    Decisions,
    Plans,
    Queries,
}

struct Line {
    section: Section,
    priority: Priority,
    text: String,
    /// The task an ended or alert line reports, so callers learn what was seen.
    reports: Option<String>,
    /// The line of an ended process not read yet: its text is unknown.
    unread: Option<EndedClass>,
}

/// Renders `input` within `budget_tokens`.
pub fn render(input: &RehydrateInput, budget_tokens: usize) -> Rehydrated {
    // With nothing unread, no selection can reach an unread line.
    match render_within(input, UnreadEnded::default(), budget_tokens) {
        Ok(rendered) | Err(Unread { rendered, .. }) => rendered,
    }
}

/// The selection reached the line of an ended process that was not read.
#[derive(Debug, Clone)]
pub struct Unread {
    /// The class to read more of.
    pub class: EndedClass,
    /// The summary with the unread lines left out: not what the whole input renders to.
    rendered: Rehydrated,
}

/// Renders `input` as if `unread` more ended processes followed the read
/// ones, so a caller can read only the lines a budget could show: counts and
/// the note on omitted lines include the unread ones. The result is what
/// the whole list renders to, or `Err` naming the class whose unread lines
/// the selection reached (read more of it and render again). Selection is a
/// prefix of one fixed order and an unread line ranks right behind the read
/// lines of its class, so a selection that stops before every unread line
/// is the selection of the whole list.
pub fn render_within(
    input: &RehydrateInput,
    unread: UnreadEnded,
    budget_tokens: usize,
) -> Result<Rehydrated, Unread> {
    let lines = lines_for(input, unread);
    let headers = section_headers(input, unread);
    let budget_chars = budget_tokens.saturating_mul(CHARS_PER_TOKEN);

    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by_key(|&i| (lines[i].priority, i));

    let mut selection = select(&lines, &headers, &order, budget_chars);
    let mut omitted = lines.len() - selection.kept.len();
    let mut note = String::new();
    if omitted > 0 && selection.reached_unread.is_none() {
        // Make room for the note saying how much was left out, then select
        // again: a smaller budget stops no later, so no unread line is reached.
        let reserve = omitted_note(lines.len()).chars().count() + 1;
        selection = select(
            &lines,
            &headers,
            &order,
            budget_chars.saturating_sub(reserve),
        );
        omitted = lines.len() - selection.kept.len();
        if omitted > 0 && !selection.kept.is_empty() {
            note = omitted_note(omitted);
        }
    }
    let kept = selection.kept;

    let markdown = assemble(&lines, &headers, &kept, &note);
    let tokens = markdown.chars().count().div_ceil(CHARS_PER_TOKEN);
    let shown_ids = kept
        .iter()
        .filter_map(|&i| lines[i].reports.clone())
        .collect();
    let rendered = Rehydrated {
        markdown,
        budget_tokens,
        tokens,
        omitted_lines: omitted,
        shown_ids,
    };
    match selection.reached_unread {
        Some(class) => Err(Unread { class, rendered }),
        None => Ok(rendered),
    }
}

/// The lines a budget keeps, and whether choosing them reached an unread line.
struct Selection {
    kept: Vec<usize>,
    reached_unread: Option<EndedClass>,
}

/// Picks the longest prefix of `order` that fits in `budget_chars`, counting
/// each section header once, when its first line is kept. An unread line
/// ends the selection: whether it would fit is unknown.
fn select(lines: &[Line], headers: &Headers, order: &[usize], budget_chars: usize) -> Selection {
    let mut used = 0usize;
    let mut open_sections: Vec<Section> = Vec::new();
    let mut kept = Vec::new();
    let mut reached_unread = None;
    for &i in order {
        let line = &lines[i];
        if line.unread.is_some() {
            reached_unread = line.unread;
            break;
        }
        let mut cost = line.text.chars().count() + 1;
        let header = headers.get(line.section);
        let needs_header = header.is_some() && !open_sections.contains(&line.section);
        if needs_header {
            cost += header.map_or(0, |h| h.chars().count() + 1);
        }
        if used + cost > budget_chars {
            break;
        }
        used += cost;
        if needs_header {
            open_sections.push(line.section);
        }
        kept.push(i);
    }
    kept.sort_unstable();
    Selection {
        kept,
        reached_unread,
    }
}

fn assemble(lines: &[Line], headers: &Headers, kept: &[usize], note: &str) -> String {
    let mut out = String::new();
    let mut current: Option<Section> = None;
    for &i in kept {
        let line = &lines[i];
        if current != Some(line.section) {
            current = Some(line.section);
            if let Some(header) = headers.get(line.section) {
                out.push_str(header);
                out.push('\n');
            }
        }
        out.push_str(&line.text);
        out.push('\n');
    }
    if !note.is_empty() {
        out.push_str(note);
        out.push('\n');
    }
    out
}

fn omitted_note(count: usize) -> String {
    format!("_{count} lines omitted for the budget: see `taskdaemon ps --all`, `task resume`_")
}

struct Headers {
    running: String,
    ended: String,
    alerts: String,
    ready: String,
    gates: String,
    plans: String,
    queries: String,
}

impl Headers {
    fn get(&self, section: Section) -> Option<&str> {
        match section {
            Section::Title => None,
            Section::Current => Some("## Current task"),
            Section::Running => Some(&self.running),
            Section::Ended => Some(&self.ended),
            Section::Alerts => Some(&self.alerts),
            Section::Ready => Some(&self.ready),
            Section::Gates => Some(&self.gates),
            Section::Decisions => Some("## Recent decisions"),
            Section::Plans => Some(&self.plans),
            Section::Queries => Some(&self.queries),
        }
    }
}

fn section_headers(input: &RehydrateInput, unread: UnreadEnded) -> Headers {
    Headers {
        running: format!("## Running ({})", input.running.len()),
        ended: format!(
            "## Ended since last rehydrate ({})",
            input.ended.len() + unread.total()
        ),
        alerts: format!("## Alerts ({})", input.alerts.len()),
        ready: format!("## Ready to start ({})", input.ready.len()),
        gates: format!("## Gates not open ({})", input.gates.len()),
        plans: format!("## Plans in progress ({})", input.plans.len()),
        queries: format!("## Waiting for your answer ({})", input.queries.len()),
    }
}

fn lines_for(input: &RehydrateInput, unread: UnreadEnded) -> Vec<Line> {
    let mut lines = vec![Line {
        section: Section::Title,
        priority: Priority::Title,
        text: title(input),
        reports: None,
        unread: None,
    }];
    if input.running.is_empty()
        && input.ended.is_empty()
        && unread.total() == 0
        && input.alerts.is_empty()
        && input.current.is_none()
        && input.plans.is_empty()
        && input.queries.is_empty()
    {
        lines.push(Line {
            section: Section::Title,
            priority: Priority::Running,
            text: "Nothing runs and nothing ended since the last rehydrate.".to_owned(),
            reports: None,
            unread: None,
        });
    }
    if let Some(current) = &input.current {
        lines.extend(current_lines(current, input.now));
    }
    for item in &input.running {
        lines.push(Line {
            section: Section::Running,
            priority: Priority::Running,
            text: running_line(item, input.now),
            reports: None,
            unread: None,
        });
        if let Some(last) = item.last_line.as_deref().filter(|l| !l.trim().is_empty()) {
            lines.push(Line {
                section: Section::Running,
                priority: Priority::Detail,
                text: format!("  last: {}", clip(last.trim(), MAX_LOG_CHARS)),
                reports: None,
                unread: None,
            });
        }
    }
    // A question blocks a loop until a person answers: as urgent as what
    // runs, and kept before the plans' progress when the budget is tight.
    for item in &input.queries {
        lines.push(Line {
            section: Section::Queries,
            priority: Priority::Running,
            text: query_line(item, input.now),
            reports: None,
            unread: None,
        });
    }
    for item in &input.plans {
        lines.push(Line {
            section: Section::Plans,
            priority: Priority::Running,
            text: format!(
                "- {} {}: {}, {}/{} specs done",
                item.id,
                clip(&item.title, MAX_COMMAND_CHARS),
                item.status,
                item.specs_succeeded,
                item.specs_total
            ),
            reports: None,
            unread: None,
        });
    }
    for item in &input.alerts {
        lines.push(Line {
            section: Section::Alerts,
            priority: Priority::Trouble,
            text: alert_line(item, input.now),
            reports: item.message_id.clone().or_else(|| item.task_id.clone()),
            unread: None,
        });
    }
    for item in &input.ended {
        lines.push(Line {
            section: Section::Ended,
            priority: EndedClass::of(item.status).priority(),
            text: ended_line(item, input.now),
            reports: Some(item.id.clone()),
            unread: None,
        });
    }
    // Behind the read ones, still in the ended section: the same place in
    // the order as the lines they stand for.
    let unread_lines = [
        (EndedClass::Trouble, unread.trouble),
        (EndedClass::Finished, unread.finished),
    ];
    for (class, count) in unread_lines {
        lines.extend((0..count).map(|_| Line {
            section: Section::Ended,
            priority: class.priority(),
            text: String::new(),
            reports: None,
            unread: Some(class),
        }));
    }
    for item in &input.ready {
        lines.push(Line {
            section: Section::Ready,
            priority: Priority::Finished,
            text: format!(
                "- {} {} (priority {})",
                item.id,
                clip(&item.title, MAX_COMMAND_CHARS),
                item.priority
            ),
            reports: None,
            unread: None,
        });
    }
    for gate in &input.gates {
        let never = gate.state() == crate::gate::GateState::Never;
        lines.push(Line {
            section: Section::Gates,
            priority: if never {
                Priority::Trouble
            } else {
                Priority::Finished
            },
            text: format!(
                "- {} {}",
                gate.task_id,
                clip(&gate.describe(), MAX_COMMAND_CHARS)
            ),
            reports: None,
            unread: None,
        });
    }
    for decision in &input.decisions {
        lines.push(Line {
            section: Section::Decisions,
            priority: Priority::Finished,
            text: format!("- {}", clip(decision, MAX_LOG_CHARS)),
            reports: None,
            unread: None,
        });
    }
    lines
}

/// The current task first (as important as what runs), its context after.
fn current_lines(current: &CurrentItem, now: Millis) -> Vec<Line> {
    let since = current
        .started_at
        .map(|s| format!(", started {} ago", format_age(now - s)))
        .unwrap_or_default();
    let mut lines = vec![Line {
        section: Section::Current,
        priority: Priority::Running,
        text: format!(
            "- {} {}{since}",
            current.id,
            clip(&current.title, MAX_COMMAND_CHARS)
        ),
        reports: None,
        unread: None,
    }];
    if !current.files_modified.is_empty() {
        lines.push(Line {
            section: Section::Current,
            priority: Priority::Detail,
            text: format!(
                "  files: {}",
                clip(&current.files_modified.join(", "), MAX_LOG_CHARS)
            ),
            reports: None,
            unread: None,
        });
    }
    for decision in &current.decisions {
        lines.push(Line {
            section: Section::Current,
            priority: Priority::Trouble,
            text: format!("  decided: {}", clip(decision, MAX_LOG_CHARS)),
            reports: None,
            unread: None,
        });
    }
    lines
}

fn title(input: &RehydrateInput) -> String {
    let daemon = match input.daemon_pid {
        Some(pid) => format!("daemon pid {pid}"),
        None => "daemon down; supervised processes still run".to_owned(),
    };
    format!("# taskdaemon: {} ({daemon})", input.workspace)
}

fn running_line(item: &RunningItem, now: Millis) -> String {
    let pid = item.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
    format!(
        "- {} `{}`{}: running {}{pid}",
        item.id,
        clip(&item.command, MAX_COMMAND_CHARS),
        in_container(item.image.as_deref()),
        format_age(now - item.started_at),
    )
}

fn ended_line(item: &EndedItem, now: Millis) -> String {
    let how = match (&item.exit, &item.error) {
        (Some(exit), _) => format!(", {exit}"),
        (None, Some(error)) => format!(", {}", clip(error, MAX_LOG_CHARS)),
        (None, None) => String::new(),
    };
    format!(
        "- {} `{}`{}: {}{how}, {} ago",
        item.id,
        clip(&item.command, MAX_COMMAND_CHARS),
        in_container(item.image.as_deref()),
        item.status,
        format_age(now - item.finished_at),
    )
}

/// ` in container IMAGE` for container tasks, nothing for processes.
fn in_container(image: Option<&str>) -> String {
    image
        .map(|image| format!(" in container {}", clip(image, MAX_COMMAND_CHARS)))
        .unwrap_or_default()
}

fn query_line(item: &QueryItem, now: Millis) -> String {
    format!(
        "- {} ({}, from {}, {} ago): {} (answer: `taskdaemon plan answer {} TEXT`)",
        item.id,
        item.plan,
        item.from,
        format_age(now - item.at),
        clip(&item.question, MAX_LOG_CHARS),
        item.id
    )
}

fn alert_line(item: &AlertItem, now: Millis) -> String {
    let subject = item
        .task_id
        .as_deref()
        .or(item.source.as_deref())
        .unwrap_or("daemon");
    let reference = item
        .message_id
        .as_deref()
        .map(|id| format!(" [{id}]"))
        .unwrap_or_default();
    format!(
        "- {subject}{reference}: {} ({} ago)",
        clip(&item.message, MAX_LOG_CHARS),
        format_age(now - item.at)
    )
}

/// Shortens `text` to at most `max` characters, marking the cut with `…`.
fn clip(text: &str, max: usize) -> String {
    let single_line = text.replace(['\n', '\r'], " ");
    if single_line.chars().count() <= max {
        return single_line;
    }
    let mut cut: String = single_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: Millis = 1_800_000_000_000;

    fn running(id: &str, command: &str, last: Option<&str>) -> RunningItem {
        RunningItem {
            id: id.to_owned(),
            command: command.to_owned(),
            image: None,
            pid: Some(42),
            started_at: NOW - 65_000,
            last_line: last.map(str::to_owned),
        }
    }

    fn ended(id: &str, status: Status, code: i32) -> EndedItem {
        EndedItem {
            id: id.to_owned(),
            command: "make test".to_owned(),
            image: None,
            status,
            exit: Some(ExitOutcome::exited(code)),
            finished_at: NOW - 5_000,
            error: None,
        }
    }

    fn input() -> RehydrateInput {
        RehydrateInput {
            workspace: "/w".to_owned(),
            now: NOW,
            daemon_pid: Some(7),
            running: vec![running("TASK-1", "cargo build", Some("Compiling serde"))],
            ended: vec![
                ended("TASK-2", Status::Succeeded, 0),
                ended("TASK-3", Status::Failed, 2),
            ],
            alerts: vec![AlertItem {
                task_id: Some("TASK-1".to_owned()),
                message_id: None,
                source: None,
                at: NOW - 1000,
                message: "no output and no CPU for 10m".to_owned(),
            }],
            current: None,
            ready: Vec::new(),
            decisions: Vec::new(),
            plans: Vec::new(),
            queries: Vec::new(),
            gates: Vec::new(),
        }
    }

    #[test]
    fn plans_and_waiting_queries_are_shown_and_queries_outrank_plans() {
        let mut input = input();
        input.plans = vec![PlanItem {
            id: "PLAN-4".to_owned(),
            title: "Add OAuth login".to_owned(),
            status: crate::pipeline::PipelineStatus::Running,
            specs_succeeded: 1,
            specs_total: 3,
        }];
        input.queries = vec![QueryItem {
            id: "MSG-2".to_owned(),
            plan: "PLAN-4".to_owned(),
            from: "auth".to_owned(),
            question: "Which provider?".to_owned(),
            at: NOW - 30_000,
        }];
        let full = render(&input, 10_000).markdown;
        assert!(
            full.contains(
                "## Plans in progress (1)\n- PLAN-4 Add OAuth login: running, 1/3 specs done\n"
            ),
            "{full}"
        );
        assert!(
            full.contains("## Waiting for your answer (1)\n- MSG-2 (PLAN-4, from auth, 30s ago): Which provider? (answer: `taskdaemon plan answer MSG-2 TEXT`)\n"),
            "{full}"
        );
        // Room for the title, the question and the omission note only: the
        // question wins over the plan's progress.
        input.running.clear();
        input.ended.clear();
        input.alerts.clear();
        input.plans[0].title = "x".repeat(200);
        let full = render(&input, 10_000).markdown;
        let question = full.lines().find(|l| l.starts_with("- MSG-2")).unwrap();
        let header = "## Waiting for your answer (1)";
        let title = full.lines().next().unwrap();
        let note = omitted_note(3);
        let chars = title.len() + question.len() + header.len() + note.len() + 4;
        let tight = render(&input, chars.div_ceil(CHARS_PER_TOKEN)).markdown;
        assert!(tight.contains("MSG-2"), "{tight}");
        assert!(!tight.contains("## Plans in progress"), "{tight}");
    }

    #[test]
    fn a_pipeline_alert_names_its_source_and_message_and_reports_the_message() {
        let mut input = input();
        input.alerts = vec![AlertItem {
            task_id: None,
            message_id: Some("MSG-7".to_owned()),
            source: Some("PLAN-4/auth".to_owned()),
            at: NOW - 2_000,
            message: "rebase conflicts in src/lib.rs".to_owned(),
        }];
        let out = render(&input, 10_000);
        assert!(
            out.markdown
                .contains("- PLAN-4/auth [MSG-7]: rebase conflicts in src/lib.rs (2s ago)"),
            "{}",
            out.markdown
        );
        assert!(out.shown_ids.contains(&"MSG-7".to_owned()));
    }

    #[test]
    fn generous_budget_shows_everything() {
        let out = render(&input(), 10_000);
        assert_eq!(out.omitted_lines, 0);
        let md = &out.markdown;
        assert!(md.starts_with("# taskdaemon: /w (daemon pid 7)\n"), "{md}");
        assert!(
            md.contains("- TASK-1 `cargo build`: running 1m05s, pid 42\n"),
            "{md}"
        );
        assert!(md.contains("  last: Compiling serde\n"), "{md}");
        assert!(
            md.contains("- TASK-3 `make test`: failed, exit 2, 5s ago\n"),
            "{md}"
        );
        assert!(md.contains("## Alerts (1)\n- TASK-1: no output"), "{md}");
    }

    #[test]
    fn tight_budget_drops_log_details_before_running_and_failures() {
        let mut input = input();
        input.running[0].last_line = Some(format!("Compiling serde {}", "x".repeat(100)));
        let full = render(&input, 10_000).markdown;
        // 20 characters short: the long log line (the least important) must go.
        let budget = (full.chars().count() - 20) / CHARS_PER_TOKEN;
        let out = render(&input, budget);
        assert!(out.markdown.chars().count() <= budget * CHARS_PER_TOKEN);
        assert!(
            out.markdown.contains("TASK-1 `cargo build`"),
            "{}",
            out.markdown
        );
        assert!(
            out.markdown.contains("TASK-3 `make test`: failed"),
            "{}",
            out.markdown
        );
        assert!(
            out.markdown.contains("TASK-2 `make test`: succeeded"),
            "{}",
            out.markdown
        );
        assert!(
            !out.markdown.contains("last: Compiling"),
            "{}",
            out.markdown
        );
        assert!(out.markdown.contains("1 lines omitted"), "{}", out.markdown);
        assert_eq!(out.omitted_lines, 1);
        assert_eq!(
            out.shown_ids,
            ["TASK-1", "TASK-2", "TASK-3"],
            "alert and both ends were shown"
        );
    }

    #[test]
    fn tracked_work_is_shown_and_the_current_task_outranks_ready_work() {
        let mut input = input();
        input.current = Some(CurrentItem {
            id: "TASK-9".to_owned(),
            title: "Port the parser".to_owned(),
            started_at: Some(NOW - 120_000),
            files_modified: vec!["src/parse.rs".to_owned()],
            decisions: vec!["keep the old grammar".to_owned()],
        });
        input.ready = vec![ReadyItem {
            id: "TASK-10".to_owned(),
            title: "Write docs".to_owned(),
            priority: 0,
        }];
        input.decisions = vec!["SQLite by default".to_owned()];
        let full = render(&input, 10_000).markdown;
        assert!(
            full.contains("## Current task\n- TASK-9 Port the parser, started 2m00s ago\n  files: src/parse.rs\n  decided: keep the old grammar\n"),
            "{full}"
        );
        assert!(
            full.contains("## Ready to start (1)\n- TASK-10 Write docs (priority 0)\n"),
            "{full}"
        );
        assert!(
            full.contains("## Recent decisions\n- SQLite by default\n"),
            "{full}"
        );
        // Squeezed: the current task stays, ready work goes.
        let budget = (full.chars().count() - 60) / CHARS_PER_TOKEN;
        let tight = render(&input, budget).markdown;
        assert!(tight.contains("TASK-9 Port the parser"), "{tight}");
        assert!(!tight.contains("TASK-10"), "{tight}");
    }

    #[test]
    fn gates_not_open_are_listed_with_why() {
        use crate::gate::{Gate, GateKind};
        let gate = |seq, failed: Option<&str>| Gate {
            task_id: "TASK-4".to_owned(),
            seq,
            kind: GateKind::UntilSucceeds,
            target: Some("CLAUDE-7".to_owned()),
            until: None,
            opened_at: None,
            failed: failed.map(str::to_owned),
            attempts: 0,
            next_check: None,
            created_at: NOW,
        };
        let mut input = input();
        input.gates = vec![gate(1, None), gate(2, Some("CLAUDE-7 failed"))];
        let full = render(&input, 10_000).markdown;
        assert!(
            full.contains("## Gates not open (2)\n- TASK-4 #1 until-succeeds CLAUDE-7: waiting\n"),
            "{full}"
        );
        assert!(full.contains("can never open: CLAUDE-7 failed"), "{full}");
    }

    #[test]
    fn zero_budget_is_empty() {
        assert_eq!(render(&input(), 0).markdown, "");
    }

    #[test]
    fn clip_marks_the_cut() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("a\nb", 10), "a b");
    }

    fn arb_input() -> impl Strategy<Value = RehydrateInput> {
        let run = (
            "[A-Z]{1,6}-[0-9]{1,4}",
            "[a-z ./-]{0,200}",
            proptest::option::of(".{0,300}"),
        )
            .prop_map(|(id, cmd, last)| running(&id, &cmd, last.as_deref()));
        let end = ("[A-Z]{1,6}-[0-9]{1,4}", 0..4u8, -1i32..256).prop_map(|(id, s, code)| {
            let status = [
                Status::Succeeded,
                Status::Failed,
                Status::Cancelled,
                Status::Lost,
            ][s as usize];
            ended(&id, status, code)
        });
        (
            proptest::collection::vec(run, 0..30),
            proptest::collection::vec(end, 0..30),
        )
            .prop_map(|(running, ended)| RehydrateInput {
                workspace: "/some/workspace".to_owned(),
                now: NOW,
                daemon_pid: None,
                running,
                ended,
                alerts: Vec::new(),
                current: None,
                ready: Vec::new(),
                decisions: Vec::new(),
                plans: Vec::new(),
                queries: Vec::new(),
                gates: Vec::new(),
            })
    }

    /// What a caller reading ended lines lazily renders: the first `first`
    /// of each class read, four times more of a class whose unread lines
    /// the selection reached. Returns the summary and how many renders it took.
    fn render_reading_lazily(
        input: &RehydrateInput,
        budget: usize,
        first: usize,
    ) -> (Rehydrated, usize) {
        let of_class = |class| {
            input
                .ended
                .iter()
                .filter(move |item| EndedClass::of(item.status) == class)
                .count()
        };
        let (trouble, finished) = (
            of_class(EndedClass::Trouble),
            of_class(EndedClass::Finished),
        );
        let (mut read_trouble, mut read_finished) = (first.min(trouble), first.min(finished));
        let mut renders = 0;
        loop {
            let (mut seen_trouble, mut seen_finished) = (0, 0);
            let mut partial = input.clone();
            partial.ended.retain(|item| {
                let (seen, limit) = match EndedClass::of(item.status) {
                    EndedClass::Trouble => (&mut seen_trouble, read_trouble),
                    EndedClass::Finished => (&mut seen_finished, read_finished),
                };
                *seen += 1;
                *seen <= limit
            });
            let unread = UnreadEnded {
                trouble: trouble - read_trouble,
                finished: finished - read_finished,
            };
            renders += 1;
            match render_within(&partial, unread, budget) {
                Ok(rendered) => return (rendered, renders),
                Err(Unread {
                    class: EndedClass::Trouble,
                    ..
                }) => {
                    assert!(unread.trouble > 0, "reached a trouble line that was read");
                    read_trouble = (read_trouble * 4).max(1).min(trouble);
                }
                Err(Unread {
                    class: EndedClass::Finished,
                    ..
                }) => {
                    assert!(unread.finished > 0, "reached a finished line that was read");
                    read_finished = (read_finished * 4).max(1).min(finished);
                }
            }
        }
    }

    #[test]
    fn a_budget_that_reaches_unread_lines_asks_for_more_of_their_class() {
        let mut input = input();
        input.alerts.clear();
        input.ended = (1..=40)
            .map(|n| ended(&format!("TASK-{n}"), Status::Failed, 1))
            .chain((41..=80).map(|n| ended(&format!("TASK-{n}"), Status::Succeeded, 0)))
            .collect();
        let whole = render(&input, 300);
        // Room for some failures but not all: reading one of each class
        // reaches an unread failure first, and only failures are read after.
        assert!(whole.omitted_lines > 0);
        let (lazily, renders) = render_reading_lazily(&input, 300, 1);
        assert_eq!(lazily, whole);
        assert!(renders > 1, "one failure read cannot fill 300 tokens");
        assert!(
            whole
                .markdown
                .contains("## Ended since last rehydrate (80)")
        );
        assert!(!whole.markdown.contains("succeeded"), "{}", whole.markdown);
    }

    proptest! {
        /// Reading ended lines only as far as the budget needs renders what
        /// reading them all does.
        #[test]
        fn reading_ended_lines_lazily_renders_the_same(
            input in arb_input(),
            budget in 0usize..1500,
            first in 0usize..6,
            ready in 0usize..4,
        ) {
            let mut input = input;
            input.ready = (0..ready)
                .map(|n| ReadyItem { id: format!("TASK-{n}"), title: "next".to_owned(), priority: 0 })
                .collect();
            let whole = render(&input, budget);
            let (lazily, _) = render_reading_lazily(&input, budget, first);
            prop_assert_eq!(lazily, whole);
        }

        #[test]
        fn never_exceeds_the_budget(input in arb_input(), budget in 0usize..3000) {
            let out = render(&input, budget);
            prop_assert!(out.markdown.chars().count() <= budget * CHARS_PER_TOKEN);
            prop_assert!(out.tokens <= budget);
        }

        /// A running process is never dropped while a less important line is kept.
        #[test]
        fn running_lines_go_last(input in arb_input(), budget in 0usize..3000) {
            let md = render(&input, budget).markdown;
            let any_detail_or_finished = md.contains("  last: ") || md.contains(": succeeded") || md.contains(": cancelled");
            if any_detail_or_finished {
                for item in &input.running {
                    let shown = format!("- {} `", item.id);
                    prop_assert!(md.contains(&shown), "missing {} in {}", item.id, md);
                }
            }
        }
    }
}
