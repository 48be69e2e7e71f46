//! Tracked work: tasks an agent does itself, with dependencies, the state
//! machine's actions, sessions, and `resume` (where work stands).
//!
//! Every change is a save trigger: after the store commits, the seed
//! snapshot `current.json` is rewritten.

use serde::Serialize;
use taskdaemon_core::decay::{CompactCandidate, CompactSummary, Original};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::tracked::Session;
use taskdaemon_core::{
    Event, IllegalTransition, Memory, MemoryKind, NewTracked, Status, TaskRecord, TrackedAction,
    TrackedEdit, TrackedView,
};
use taskdaemon_store::{MemoryFilter, StoreError, TrackedFilter};

use crate::{Agent, Result, Service, ServiceError};

/// Events shown by `resume`.
const RESUME_EVENTS: i64 = 10;
/// Ready tasks shown by `resume`.
const RESUME_READY: usize = 5;
/// Waiting queries shown by `resume`.
const RESUME_QUERIES: usize = 20;
/// Recent decisions shown by `resume`.
const RESUME_DECISIONS: usize = 5;
/// Decisions shown with one task.
const TASK_DECISIONS: usize = 20;

/// A tracked task to add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTask {
    pub title: String,
    pub description: Option<String>,
    pub priority: i32,
    pub labels: Vec<String>,
    /// Tasks that must succeed first.
    pub after: Vec<String>,
    /// The task this is a subtask of (`TASK-12` gives `TASK-12.1`).
    pub parent: Option<String>,
}

/// A task with its decisions, as `task show --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct ShownTask {
    #[serde(flatten)]
    pub task: TrackedView,
    pub decisions: Vec<Memory>,
    /// The text a compacted task had before its summary replaced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<Original>,
}

/// Most tasks `task compact --analyze` offers at once.
pub const COMPACT_BATCH: usize = 200;

/// Closed work offered for compaction, with what to do with it: JSON an
/// agent reads, summarises, and hands back to `task compact --apply`.
#[derive(Debug, Clone, Serialize)]
pub struct CompactAnalysis {
    pub instructions: &'static str,
    pub tasks: Vec<CompactCandidate>,
}

const COMPACT_INSTRUCTIONS: &str = "For each task, write a short summary of what was done and \
    decided (a few sentences: outcome, key decisions, files). Save a JSON array of \
    {\"id\": ID, \"summary\": TEXT} to a file and run `taskdaemon task compact --apply FILE`. \
    The summary replaces the description and note; the original stays searchable and \
    `taskdaemon task restore ID` brings it back.";

/// Where work stands: the task in progress, ready work, recent decisions
/// and the last events.
#[derive(Debug, Clone, Serialize)]
pub struct Resume {
    pub session: Option<String>,
    pub current_task: Option<ShownTask>,
    pub ready: Vec<TrackedView>,
    pub recent_decisions: Vec<Memory>,
    pub last_events: Vec<Event>,
    /// Plans not ended, with their progress.
    pub plans: Vec<crate::PlanSummary>,
    /// Queries loops asked the human that wait for an answer.
    pub waiting_queries: Vec<taskdaemon_core::MessageRecord>,
}

impl Service {
    /// Adds a tracked task (`blocked` while a dependency has not succeeded).
    pub fn add_task(&self, agent: &Agent, new: NewTask) -> Result<TaskRecord> {
        let task = self.store.create_tracked(
            &NewTracked {
                title: new.title,
                description: new.description,
                priority: new.priority,
                labels: new.labels,
                depends_on: new.after,
                parent: new.parent,
                tool: agent.tool.clone(),
                session: agent.session.clone(),
                id_scheme: self.config.tracked.ids,
            },
            &agent.actor(),
        )?;
        self.save_snapshot(agent.session.as_deref());
        Ok(task)
    }

    /// Start, done, fail or cancel a tracked task. A refusal says in words
    /// why the action does not apply, and what would.
    pub fn act(&self, agent: &Agent, id: &str, action: TrackedAction) -> Result<TaskRecord> {
        agent.touch(&*self.store)?;
        let task = match self.store.act_on_tracked(id, &action, &agent.actor()) {
            Ok(task) => task,
            Err(StoreError::IllegalTransition(illegal)) => {
                return Err(ServiceError::Refused {
                    hint: transition_hint(&action, &illegal),
                    source: StoreError::IllegalTransition(illegal),
                });
            }
            Err(other) => return Err(other.into()),
        };
        self.save_snapshot(agent.session.as_deref());
        Ok(task)
    }

    /// Changes a task's title, description, priority or labels.
    pub fn edit_task(&self, agent: &Agent, id: &str, edit: &TrackedEdit) -> Result<TaskRecord> {
        agent.touch(&*self.store)?;
        let task = self.store.edit_tracked(id, edit, &agent.actor())?;
        self.save_snapshot(agent.session.as_deref());
        Ok(task)
    }

    /// Makes `task` wait for `depends_on`; refused when it would close a cycle.
    pub fn add_dependency(
        &self,
        agent: &Agent,
        task: &str,
        depends_on: &str,
    ) -> Result<TaskRecord> {
        let task = self
            .store
            .add_dependency(task, depends_on, &agent.actor())?;
        self.save_snapshot(agent.session.as_deref());
        Ok(task)
    }

    /// `task` no longer waits for `depends_on`.
    pub fn remove_dependency(
        &self,
        agent: &Agent,
        task: &str,
        depends_on: &str,
    ) -> Result<TaskRecord> {
        let task = self
            .store
            .remove_dependency(task, depends_on, &agent.actor())?;
        self.save_snapshot(agent.session.as_deref());
        Ok(task)
    }

    /// Records files the work on a task touched.
    pub fn add_task_files(&self, agent: &Agent, id: &str, files: &[String]) -> Result<TaskRecord> {
        agent.touch(&*self.store)?;
        let task = self.store.add_task_files(id, files, &agent.actor())?;
        self.save_snapshot(agent.session.as_deref());
        Ok(task)
    }

    /// Tracked tasks, oldest first (the newest `limit` when limited).
    pub fn tracked(&self, filter: &TrackedFilter) -> Result<Vec<TaskRecord>> {
        Ok(self.store.tracked(filter)?)
    }

    /// Unblocked tasks that have not started, most urgent first.
    pub fn ready(&self, limit: usize) -> Result<Vec<TaskRecord>> {
        Ok(self.store.ready(limit)?)
    }

    /// One task with the decisions recorded for it.
    pub fn tracked_task(&self, id: &str) -> Result<(TaskRecord, Vec<Memory>)> {
        let task = self.store.task(id)?;
        let decisions = self.decisions_of(&task.id)?;
        Ok((task, decisions))
    }

    /// One task as `task show` prints it: with its decisions, and its
    /// original text when it was compacted.
    pub fn shown_task(&self, id: &str) -> Result<ShownTask> {
        let (task, decisions) = self.tracked_task(id)?;
        let original = self.store.task_original(&task.id)?;
        let gates = self.store.gates(&task.id)?;
        Ok(ShownTask {
            task: TrackedView::from(&task).with_gates(gates),
            decisions,
            original,
        })
    }

    /// Closed work that ended more than `older_than` ago and is not
    /// compacted, oldest first, with the text to summarise.
    pub fn compact_analysis(&self, older_than: std::time::Duration) -> Result<CompactAnalysis> {
        let cutoff = now_millis() - older_than.as_millis() as i64;
        let tasks = self.store.compact_candidates(cutoff, COMPACT_BATCH)?;
        Ok(CompactAnalysis {
            instructions: COMPACT_INSTRUCTIONS,
            tasks: tasks.iter().map(CompactCandidate::from).collect(),
        })
    }

    /// Stores the summaries an agent wrote; all or nothing.
    pub fn compact_apply(
        &self,
        agent: &Agent,
        summaries: &[CompactSummary],
    ) -> Result<Vec<TaskRecord>> {
        let tasks = self.store.compact_tracked(summaries, &agent.actor())?;
        self.save_snapshot(agent.session.as_deref());
        Ok(tasks)
    }

    /// Gives a compacted task its original text back.
    pub fn restore_task(&self, agent: &Agent, id: &str) -> Result<TaskRecord> {
        let task = self.store.restore_tracked(id, &agent.actor())?;
        self.save_snapshot(agent.session.as_deref());
        Ok(task)
    }

    fn decisions_of(&self, id: &str) -> Result<Vec<Memory>> {
        Ok(self.store.memories(&MemoryFilter {
            kind: Some(MemoryKind::Decision),
            task_id: Some(id.to_owned()),
            limit: Some(TASK_DECISIONS),
        })?)
    }

    /// Where work stands for `session` (or the latest session).
    pub fn resume(&self, session: Option<&str>) -> Result<Resume> {
        let session = match session {
            Some(id) => Some(id.to_owned()),
            None => self.store.latest_session()?.map(|s| s.id),
        };
        let running = self.store.current_candidates(session.as_deref())?;
        let current = taskdaemon_core::snapshot::pick_current(&running, session.as_deref());
        let current_task = match current {
            Some(task) => Some(ShownTask {
                task: TrackedView::from(task),
                decisions: self.decisions_of(&task.id)?,
                original: self.store.task_original(&task.id)?,
            }),
            None => None,
        };
        let last = self.store.last_event_seq()?;
        Ok(Resume {
            session,
            current_task,
            ready: self
                .store
                .ready(RESUME_READY)?
                .iter()
                .map(TrackedView::from)
                .collect(),
            recent_decisions: self.store.memories(&MemoryFilter {
                kind: Some(MemoryKind::Decision),
                task_id: None,
                limit: Some(RESUME_DECISIONS),
            })?,
            last_events: self.store.events_after(
                (last - RESUME_EVENTS).max(0),
                &[],
                RESUME_EVENTS as usize,
            )?,
            plans: self.plans_in_progress()?,
            waiting_queries: self.waiting_queries(RESUME_QUERIES)?,
        })
    }

    /// Marks a session ended and saves the snapshot.
    pub fn end_session(&self, session: &str) -> Result<Session> {
        let agent = Agent::session(session);
        let ended = self.store.end_session(session, &agent.actor())?;
        self.save_snapshot(Some(session));
        Ok(ended)
    }

    /// One session by id, or the latest one (`None` when there is none yet).
    pub fn session(&self, id: Option<&str>) -> Result<Option<Session>> {
        match id {
            Some(id) => match self.store.session(id)? {
                Some(session) => Ok(Some(session)),
                None => Err(StoreError::NotFound(format!("session {id}")).into()),
            },
            None => Ok(self.store.latest_session()?),
        }
    }
}

/// Says in words why `action` does not apply, and what would.
pub fn transition_hint(action: &TrackedAction, illegal: &IllegalTransition) -> String {
    let id = &illegal.id;
    match (action, illegal.from) {
        (TrackedAction::Done { .. }, Status::Pending | Status::Blocked) => {
            format!(
                "cannot mark {id} done: it was never started (`taskdaemon task start {id}` first)"
            )
        }
        (_, from) if from.is_terminal() => {
            format!("cannot {} {id}: it already ended ({from})", action.verb())
        }
        (TrackedAction::Start, Status::Running) => format!("{id} is already running"),
        _ => format!("cannot {} {id} while it is {}", action.verb(), illegal.from),
    }
}
