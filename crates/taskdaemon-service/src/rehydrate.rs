//! The post-compaction summary: what runs, what ended since the last
//! rehydrate, alerts, the task in progress, ready work and decisions. The
//! inputs are gathered here; `taskdaemon_core::rehydrate` renders them
//! within a token budget.
//!
//! A compaction marker (set before an agent's context is compacted) makes
//! the next summary for that session reach back to it, so what ended while
//! the agent was losing its context is shown again even if a rehydrate in
//! between already reported it.

use serde::Serialize;
use taskdaemon_core::pipeline::Delivery;
use taskdaemon_core::rehydrate::{
    AlertItem, CurrentItem, EndedItem, PlanItem, QueryItem, ReadyItem, RehydrateInput, Rehydrated,
    RunningItem, render,
};
use taskdaemon_core::time::{Millis, now_millis, serde_rfc3339};
use taskdaemon_core::{EventKind, MemoryKind, Status};
use taskdaemon_daemon::running_pid;
use taskdaemon_store::{MemoryFilter, ProcessFilter};

use crate::logs::{last_line, newest_log_line};
use crate::{Result, Service};

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

fn marker_key(session: Option<&str>) -> String {
    format!("{MARKER_KEY}:{}", session.unwrap_or("-"))
}

impl Service {
    /// The summary within `budget` tokens, as `session` sees it. Unless
    /// `peek`, what was shown is marked seen (an exit or alert cut for the
    /// budget stays unseen and shows next time).
    pub fn rehydrate(
        &self,
        budget: usize,
        session: Option<&str>,
        peek: bool,
    ) -> Result<Rehydration> {
        let cursor = self.rehydrate_cursor()?;
        self.rehydrate_from(cursor, None, budget, session, peek)
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
    ) -> Result<(Rehydration, Option<Compaction>)> {
        let cursor = self.rehydrate_cursor()?;
        let marker = self.compaction_marker(session)?;
        let from = marker.as_ref().map_or(cursor, |m| m.seq.min(cursor));
        let since = marker.as_ref().map(|m| m.at);
        let rehydration = self.rehydrate_from(from, since, budget, session, true)?;
        self.mark_shown_alerts(&rehydration)?;
        // What the summary showed is seen; the shared cursor never moves back.
        let newest = self.store.last_event_seq()?;
        let next = self.next_cursor(from, newest, &rehydration.rendered)?;
        self.store
            .set_meta(CURSOR_KEY, &next.max(cursor).to_string())?;
        if marker.is_some() {
            self.store.set_meta(&marker_key(session), "")?;
        }
        Ok((rehydration, marker))
    }

    fn rehydrate_cursor(&self) -> Result<i64> {
        Ok(self
            .store
            .meta(CURSOR_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// The summary of what happened after event `cursor` (and, for
    /// pipeline alerts a summary showed already, after time `since`).
    fn rehydrate_from(
        &self,
        cursor: i64,
        since: Option<Millis>,
        budget: usize,
        session: Option<&str>,
        peek: bool,
    ) -> Result<Rehydration> {
        // Read the newest event first so nothing committed meanwhile is skipped next time.
        let newest = self.store.last_event_seq()?;
        let input = self.rehydrate_input_since(cursor, since, session)?;
        let rendered = render(&input, budget);
        let rehydration = Rehydration { rendered, input };
        if !peek {
            let next = self.next_cursor(cursor, newest, &rehydration.rendered)?;
            self.store.set_meta(CURSOR_KEY, &next.to_string())?;
            self.mark_shown_alerts(&rehydration)?;
        }
        Ok(rehydration)
    }

    /// Pipeline alerts the summary kept are delivered: a person saw them
    /// (one cut for the budget stays pending and shows next time).
    fn mark_shown_alerts(&self, rehydration: &Rehydration) -> Result<()> {
        let shown: Vec<String> = rehydration
            .input
            .alerts
            .iter()
            .filter_map(|a| a.message_id.clone())
            .filter(|id| rehydration.rendered.shown_ids.contains(id))
            .collect();
        self.mark_alerts_seen(&shown)
    }

    /// Where the cursor goes past what was shown, and no further.
    fn next_cursor(&self, cursor: i64, newest: i64, rendered: &Rehydrated) -> Result<i64> {
        let mut next = newest;
        // The same newest items the summary considered; anything older was
        // beyond MAX_ITEMS and is passed over (`ps --all` still lists it).
        for event in self
            .store
            .newest_events_after(cursor, SEEN_KINDS, MAX_ITEMS)?
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
        self.rehydrate_input_since(cursor, None, session)
    }

    fn rehydrate_input_since(
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
            ended: self.ended_items(cursor)?,
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
        let live = self.store.processes(&ProcessFilter::default())?;
        let mut running: Vec<RunningItem> = live
            .iter()
            .filter(|t| t.status == Status::Running)
            .map(|t| RunningItem {
                id: t.id.clone(),
                command: t.command.clone(),
                image: t.image().map(str::to_owned),
                pid: t.pid,
                started_at: t.started_at.unwrap_or(t.created_at),
                last_line: newest_log_line(workspace, &t.id),
            })
            .collect();
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

    /// Processes that ended after `cursor`: newest first, one line per task,
    /// read with the few columns a line shows.
    fn ended_items(&self, cursor: i64) -> Result<Vec<EndedItem>> {
        Ok(self.store.newest_ended(cursor, MAX_ITEMS)?)
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
