//! The post-compaction summary: what runs, what ended since the last
//! rehydrate, alerts, the task in progress, ready work and decisions. The
//! inputs are gathered here; `taskdaemon_core::rehydrate` renders them
//! within a token budget.
//!
//! A compaction marker (set before an agent's context is compacted) makes
//! the next summary for that session reach back to it, so what ended while
//! the agent was losing its context is shown again even if a rehydrate in
//! between already reported it.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use taskdaemon_core::pipeline::Delivery;
use taskdaemon_core::rehydrate::{
    AlertItem, CHARS_PER_TOKEN, CurrentItem, EndedClass, EndedItem, PlanItem, QueryItem, ReadyItem,
    RehydrateInput, Rehydrated, RunningItem, UnreadEnded, render, render_within,
};
use taskdaemon_core::time::{Millis, now_millis, serde_rfc3339, to_rfc3339};
use taskdaemon_core::{EventKind, MemoryKind, Status};
use taskdaemon_daemon::running_pid;
use taskdaemon_store::{EndedRef, MemoryFilter};

use crate::logs::{last_line, newest_log_line};
use crate::{Agent, Result, Service};

/// Where the last rehydrate stopped reading events.
const CURSOR_KEY: &str = "rehydrate.cursor";
/// Where a session's compaction marker is kept (`-` for no session).
const MARKER_KEY: &str = "rehydrate.compaction";
/// At most this many ended processes and alerts are considered; the budget cuts further.
const MAX_ITEMS: usize = 500;
/// Events that report something the reader should see once.
const SEEN_KINDS: &[EventKind] = &[
    EventKind::Exited,
    EventKind::Lost,
    EventKind::StartFailed,
    EventKind::Alert,
];
/// Ready tasks and recent decisions considered.
const MAX_TRACKED_ITEMS: usize = 5;
/// The length of a typical ended line, to guess how many the budget shows.
const TYPICAL_ENDED_LINE_CHARS: usize = 48;
/// Ended lines of each class read at least, when there are that many.
const MIN_ENDED_READ: usize = 8;

/// How much of the ended list a summary reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Only the lines the budget could show: the summary is the same.
    Budget,
    /// Every line, for callers that want what the summary was made from.
    All,
}

/// A rendered summary and what it was rendered from.
#[derive(Debug, Clone, Serialize)]
pub struct Rehydration {
    #[serde(flatten)]
    pub rendered: Rehydrated,
    #[serde(flatten)]
    pub input: RehydrateInput,
}

/// The point an agent's context was compacted at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compaction {
    pub session: Option<String>,
    /// The newest event when the marker was set: later events are news.
    pub seq: i64,
    #[serde(with = "serde_rfc3339")]
    pub at: Millis,
}

/// How many ended lines of each class (failures, then the rest) a summary
/// within `budget` tokens reads first: as many as the budget holds at a
/// typical line's length, failures first as they rank first.
fn first_reads(budget: usize, trouble: usize, finished: usize) -> [usize; 2] {
    let fits = budget.saturating_mul(CHARS_PER_TOKEN) / TYPICAL_ENDED_LINE_CHARS;
    let first_trouble = fits.max(MIN_ENDED_READ).min(trouble);
    let first_finished = fits.saturating_sub(first_trouble).max(MIN_ENDED_READ);
    [first_trouble, first_finished.min(finished)]
}

fn marker_key(session: Option<&str>) -> String {
    format!("{MARKER_KEY}:{}", session.unwrap_or("-"))
}

impl Service {
    /// The summary within `budget` tokens, as `session` sees it. Unless
    /// `peek`, what was shown is marked seen (an exit or alert cut for the
    /// budget stays unseen and shows next time). Of the processes that
    /// ended, only the lines the budget could show are read.
    pub fn rehydrate(
        &self,
        budget: usize,
        session: Option<&str>,
        peek: bool,
    ) -> Result<Rehydrated> {
        let cursor = self.rehydrate_cursor()?;
        let (_, rendered) =
            self.rehydrate_from(cursor, None, budget, session, peek, Reading::Budget)?;
        Ok(rendered)
    }

    /// [`rehydrate`](Self::rehydrate) with everything the summary was
    /// rendered from, every ended process included.
    pub fn rehydration(
        &self,
        budget: usize,
        session: Option<&str>,
        peek: bool,
    ) -> Result<Rehydration> {
        let cursor = self.rehydrate_cursor()?;
        let (input, rendered) =
            self.rehydrate_from(cursor, None, budget, session, peek, Reading::All)?;
        Ok(Rehydration { rendered, input })
    }

    /// Records that `session`'s context is about to be compacted: the next
    /// [`rehydrate_after_compaction`](Self::rehydrate_after_compaction)
    /// shows everything that ends from now on.
    pub fn mark_compaction(&self, session: Option<&str>) -> Result<Compaction> {
        let compaction = Compaction {
            session: session.map(str::to_owned),
            seq: self.store.last_event_seq()?,
            at: now_millis(),
        };
        self.store.set_meta(
            &marker_key(session),
            &format!("{} {}", compaction.seq, compaction.at),
        )?;
        Ok(compaction)
    }

    /// The compaction marker of `session`, if one is set and not used yet.
    pub fn compaction_marker(&self, session: Option<&str>) -> Result<Option<Compaction>> {
        let value = self.store.meta(&marker_key(session))?.unwrap_or_default();
        let Some((seq, at)) = value.split_once(' ') else {
            return Ok(None);
        };
        Ok(match (seq.parse(), at.parse()) {
            (Ok(seq), Ok(at)) => Some(Compaction {
                session: session.map(str::to_owned),
                seq,
                at,
            }),
            _ => None,
        })
    }

    /// The summary after `session`'s context was compacted: what ended since
    /// its marker (or since the last rehydrate, without one), marked seen.
    /// The marker is used up.
    pub fn rehydrate_after_compaction(
        &self,
        budget: usize,
        session: Option<&str>,
    ) -> Result<(Rehydrated, Option<Compaction>)> {
        let cursor = self.rehydrate_cursor()?;
        let marker = self.compaction_marker(session)?;
        let from = marker.as_ref().map_or(cursor, |m| m.seq.min(cursor));
        let since = marker.as_ref().map(|m| m.at);
        let (input, rendered) =
            self.rehydrate_from(from, since, budget, session, true, Reading::Budget)?;
        self.mark_shown_alerts(&input.alerts, &rendered)?;
        // What the summary showed is seen; the shared cursor never moves back.
        let newest = self.store.last_event_seq()?;
        let next = self.next_cursor(from, newest, &rendered)?;
        self.move_cursor(cursor, next.max(cursor))?;
        if marker.is_some() {
            self.store.set_meta(&marker_key(session), "")?;
        }
        Ok((rendered, marker))
    }

    /// What an agent's new or resumed session is told: the session is
    /// recorded, then the summary within `budget` tokens, marked seen. After
    /// a compaction it reaches back to the session's marker (see
    /// [`rehydrate_after_compaction`](Self::rehydrate_after_compaction)),
    /// under a line saying when the context was compacted.
    pub fn session_start(
        &self,
        agent: &Agent,
        after_compaction: bool,
        budget: usize,
    ) -> Result<String> {
        self.begin_session(agent)?;
        let session = agent.session.as_deref();
        if !after_compaction {
            return Ok(self.rehydrate(budget, session, false)?.markdown);
        }
        let (rendered, marker) = self.rehydrate_after_compaction(budget, session)?;
        Ok(match marker {
            Some(m) => format!(
                "Your context was compacted at {}; what ended since then is listed below.\n\n{}",
                to_rfc3339(m.at),
                rendered.markdown
            ),
            None => rendered.markdown,
        })
    }

    /// Stores the cursor `to`, read as `from`. Nothing moved, nothing to
    /// write: a summary of a quiet workspace opens no write connection (no
    /// second schema to load, no wait for the write lock).
    fn move_cursor(&self, from: i64, to: i64) -> Result<()> {
        if to != from {
            self.store.set_meta(CURSOR_KEY, &to.to_string())?;
        }
        Ok(())
    }

    fn rehydrate_cursor(&self) -> Result<i64> {
        Ok(self
            .store
            .meta(CURSOR_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// The summary of what happened after event `cursor` (and, for
    /// pipeline alerts a summary showed already, after time `since`), and
    /// what it was rendered from (with [`Reading::Budget`], only the ended
    /// processes it needed).
    fn rehydrate_from(
        &self,
        cursor: i64,
        since: Option<Millis>,
        budget: usize,
        session: Option<&str>,
        peek: bool,
        reading: Reading,
    ) -> Result<(RehydrateInput, Rehydrated)> {
        // Read the newest event first so nothing committed meanwhile is skipped next time.
        let newest = self.store.last_event_seq()?;
        let mut input = self.rehydrate_input_without_ended(cursor, since, session)?;
        let ended = self.store.newest_ended(cursor, MAX_ITEMS)?;
        let rendered = match reading {
            Reading::All => {
                input.ended = self.store.ended_items(&ended)?;
                render(&input, budget)
            }
            Reading::Budget => self.render_reading_ended(&mut input, &ended, budget)?,
        };
        if !peek {
            let next = self.next_cursor(cursor, newest, &rendered)?;
            self.move_cursor(cursor, next)?;
            self.mark_shown_alerts(&input.alerts, &rendered)?;
        }
        Ok((input, rendered))
    }

    /// Renders `input` with the lines of `ended` read only as far as the
    /// budget could show them: first [`first_reads`], then four times more
    /// of a class whose unread lines the selection reached (see
    /// [`render_within`]). Leaves what was read in `input.ended`.
    fn render_reading_ended(
        &self,
        input: &mut RehydrateInput,
        ended: &[EndedRef],
        budget: usize,
    ) -> Result<Rehydrated> {
        let of_class = |class| {
            ended
                .iter()
                .filter(move |e| EndedClass::of(e.status) == class)
                .collect::<Vec<_>>()
        };
        let (trouble, finished) = (
            of_class(EndedClass::Trouble),
            of_class(EndedClass::Finished),
        );
        let mut wanted = first_reads(budget, trouble.len(), finished.len());
        let mut read: HashMap<String, EndedItem> = HashMap::new();
        loop {
            let wanted_refs: Vec<&EndedRef> = trouble[..wanted[0]]
                .iter()
                .chain(&finished[..wanted[1]])
                .copied()
                .collect();
            let to_read: Vec<EndedRef> = wanted_refs
                .iter()
                .filter(|e| !read.contains_key(&e.id))
                .map(|e| (*e).clone())
                .collect();
            for item in self.store.ended_items(&to_read)? {
                read.insert(item.id.clone(), item);
            }
            let wanted_ids: HashSet<&str> = wanted_refs.iter().map(|e| e.id.as_str()).collect();
            input.ended = ended
                .iter()
                .filter(|e| wanted_ids.contains(e.id.as_str()))
                .filter_map(|e| read.get(&e.id).cloned())
                .collect();
            let unread = UnreadEnded {
                trouble: trouble.len() - wanted[0],
                finished: finished.len() - wanted[1],
            };
            match render_within(input, unread, budget) {
                Ok(rendered) => return Ok(rendered),
                Err(more) => {
                    // An unread line of this class was reached, so some are left.
                    let (slot, total) = match more.class {
                        EndedClass::Trouble => (0, trouble.len()),
                        EndedClass::Finished => (1, finished.len()),
                    };
                    wanted[slot] = (wanted[slot] * 4).max(MIN_ENDED_READ).min(total);
                }
            }
        }
    }

    /// Pipeline alerts the summary kept are delivered: a person saw them
    /// (one cut for the budget stays pending and shows next time).
    fn mark_shown_alerts(&self, alerts: &[AlertItem], rendered: &Rehydrated) -> Result<()> {
        let shown: Vec<String> = alerts
            .iter()
            .filter_map(|a| a.message_id.clone())
            .filter(|id| rendered.shown_ids.contains(id))
            .collect();
        self.mark_alerts_seen(&shown)
    }

    /// Where the cursor goes past what was shown, and no further.
    fn next_cursor(&self, cursor: i64, newest: i64, rendered: &Rehydrated) -> Result<i64> {
        let mut next = newest;
        // The same newest items the summary considered; anything older was
        // beyond MAX_ITEMS and is passed over (`ps --all` still lists it).
        // Only their tasks matter here, so only those are read.
        for event in self
            .store
            .newest_event_tasks(cursor, SEEN_KINDS, MAX_ITEMS)?
        {
            let Some(id) = event.task_id.as_deref() else {
                continue;
            };
            if event.seq > newest {
                break;
            }
            if !rendered.shown_ids.iter().any(|shown| shown == id) {
                next = next.min(event.seq - 1);
                break;
            }
        }
        Ok(next)
    }

    /// Everything a summary is rendered from: events after `cursor` count as new.
    pub fn rehydrate_input(&self, cursor: i64, session: Option<&str>) -> Result<RehydrateInput> {
        let mut input = self.rehydrate_input_without_ended(cursor, None, session)?;
        let ended = self.store.newest_ended(cursor, MAX_ITEMS)?;
        input.ended = self.store.ended_items(&ended)?;
        Ok(input)
    }

    /// Everything but the ended processes, which the caller reads as far as it needs.
    fn rehydrate_input_without_ended(
        &self,
        cursor: i64,
        since: Option<Millis>,
        session: Option<&str>,
    ) -> Result<RehydrateInput> {
        let workspace = self.workspace()?;
        let (current, ready, decisions) = self.tracked_work(session)?;
        Ok(RehydrateInput {
            workspace: workspace.root().display().to_string(),
            now: now_millis(),
            daemon_pid: running_pid(workspace),
            running: self.running_items()?,
            ended: Vec::new(),
            alerts: self.alert_items(cursor, since)?,
            current,
            ready,
            decisions,
            plans: self.plan_items()?,
            queries: self.query_items()?,
            gates: self.store.shut_gates()?,
        })
    }

    /// Plans in progress with how many of their specs are done.
    fn plan_items(&self) -> Result<Vec<PlanItem>> {
        Ok(self
            .plans_in_progress()?
            .into_iter()
            .map(|p| PlanItem {
                title: p.plan.display_title().to_owned(),
                id: p.plan.id,
                status: p.plan.status,
                specs_succeeded: p.specs_succeeded,
                specs_total: p.specs_total,
            })
            .collect())
    }

    /// Queries loops asked the human that wait for an answer.
    fn query_items(&self) -> Result<Vec<QueryItem>> {
        Ok(self
            .waiting_queries(MAX_ITEMS)?
            .into_iter()
            .map(|m| QueryItem {
                id: m.id,
                plan: m.plan,
                from: m.from,
                question: m.body,
                at: m.created_at,
            })
            .collect())
    }

    /// Running processes with their newest log line, then running loops.
    fn running_items(&self) -> Result<Vec<RunningItem>> {
        let workspace = self.workspace()?;
        let mut running = self.store.running_items()?;
        for item in &mut running {
            item.last_line = newest_log_line(workspace, &item.id);
        }
        // Loops run inside the daemon: no pid; their log's last line says where they are.
        running.extend(
            self.store
                .loops(false)?
                .into_iter()
                .filter(|l| l.task.status == Status::Running)
                .map(|l| RunningItem {
                    last_line: last_line(&workspace.loop_log(&l.task.id)),
                    command: format!("loop: {}", l.task.title()),
                    id: l.task.id,
                    image: None,
                    pid: None,
                    started_at: l.task.started_at.unwrap_or(l.task.created_at),
                }),
        );
        Ok(running)
    }

    /// Alert events after `cursor`, and the pipeline's alerts for a person
    /// no summary has shown (or, with `since`, shown after that time),
    /// newest first.
    fn alert_items(&self, cursor: i64, since: Option<Millis>) -> Result<Vec<AlertItem>> {
        let mut items: Vec<AlertItem> = self
            .store
            .newest_events_after(cursor, &[EventKind::Alert], MAX_ITEMS)?
            .into_iter()
            .rev()
            .map(|e| AlertItem {
                task_id: e.task_id,
                message_id: None,
                source: None,
                at: e.at,
                message: e.message,
            })
            .collect();
        let pipeline = self.pipeline_alerts(MAX_ITEMS, since.is_none())?;
        items.extend(
            pipeline
                .into_iter()
                .filter(|m| {
                    m.delivery == Delivery::Pending || since.is_some_and(|at| m.updated_at >= at)
                })
                .map(|m| AlertItem {
                    task_id: None,
                    source: Some(format!("{}/{}", m.plan, m.from)),
                    message_id: Some(m.id),
                    at: m.created_at,
                    message: m.body,
                }),
        );
        items.sort_by_key(|a| std::cmp::Reverse(a.at));
        Ok(items)
    }

    /// The tracked task in progress, ready work and recent decisions.
    fn tracked_work(
        &self,
        session: Option<&str>,
    ) -> Result<(Option<CurrentItem>, Vec<ReadyItem>, Vec<String>)> {
        let decisions = |task: Option<&str>| -> Result<Vec<String>> {
            Ok(self
                .store
                .memories(&MemoryFilter {
                    kind: Some(MemoryKind::Decision),
                    task_id: task.map(str::to_owned),
                    limit: Some(MAX_TRACKED_ITEMS),
                })?
                .into_iter()
                .map(|m| m.text)
                .collect())
        };
        let running = self.store.current_candidates(session)?;
        let current = match taskdaemon_core::snapshot::pick_current(&running, session) {
            Some(task) => Some(CurrentItem {
                id: task.id.clone(),
                title: task.title().to_owned(),
                started_at: task.started_at,
                files_modified: task.files_modified.clone(),
                decisions: decisions(Some(&task.id))?,
            }),
            None => None,
        };
        let ready = self
            .store
            .ready(MAX_TRACKED_ITEMS)?
            .into_iter()
            .map(|t| ReadyItem {
                title: t.title().to_owned(),
                id: t.id,
                priority: t.priority,
            })
            .collect();
        Ok((current, ready, decisions(None)?))
    }
}
