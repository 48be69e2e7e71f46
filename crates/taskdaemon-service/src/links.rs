//! Typed links, subtasks, `next`, the parallel layers of waiting work and
//! agents' claims: the service face of `taskdaemon_core::{links, next,
//! graph}` over the store.

use serde::Serialize;
use taskdaemon_core::graph::{Layers, parallel_layers};
use taskdaemon_core::links::CLAIM_LEASE_MS;
use taskdaemon_core::next::{NextPick, pick_next};
use taskdaemon_core::time::Millis;
use taskdaemon_core::{LinkKind, TaskRecord, TrackedView};

use crate::{Agent, Result, Service, ServiceError};

/// Deepest subtask nesting `task tree` follows (ids like `T-1.2.3...`).
const TREE_DEPTH: usize = 16;

/// The task to do now, with the decision.
#[derive(Debug, Clone, Serialize)]
pub struct NextTask {
    pub task: TrackedView,
    #[serde(flatten)]
    pub pick: NextPick,
}

/// One page of tracked tasks, newest first, and the cursor of the next.
#[derive(Debug, Clone, Serialize)]
pub struct TrackedPage {
    pub tasks: Vec<TaskRecord>,
    /// Give it back as the cursor for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// A task with its subtasks, for `task tree`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskTree {
    #[serde(flatten)]
    pub task: TrackedView,
    pub children: Vec<TaskTree>,
}

impl Service {
    /// Links `from KIND to`; returns `from`.
    pub fn link_tasks(
        &self,
        agent: &Agent,
        from: &str,
        kind: LinkKind,
        to: &str,
    ) -> Result<TaskRecord> {
        agent.touch(&*self.store)?;
        let task = self.store.link_tasks(from, kind, to, &agent.actor())?;
        self.save_snapshot(agent.session.as_deref());
        Ok(task)
    }

    /// Removes the links `from [KIND] to`; returns `from`.
    pub fn unlink_tasks(
        &self,
        agent: &Agent,
        from: &str,
        kind: Option<LinkKind>,
        to: &str,
    ) -> Result<TaskRecord> {
        agent.touch(&*self.store)?;
        let task = self.store.unlink_tasks(from, kind, to, &agent.actor())?;
        self.save_snapshot(agent.session.as_deref());
        Ok(task)
    }

    /// The one task to do now (see `taskdaemon_core::next`); `None` when
    /// nothing is ready.
    pub fn next_task(&self) -> Result<Option<NextTask>> {
        let Some(pick) = pick_next(self.store.next_candidates()?) else {
            return Ok(None);
        };
        let task = self.store.task(&pick.task.id)?;
        Ok(Some(NextTask {
            task: TrackedView::from(&task),
            pick,
        }))
    }

    /// A page of tracked tasks, newest first, from `cursor` (a previous
    /// page's `next_cursor`) on.
    pub fn tracked_page(
        &self,
        status: Option<taskdaemon_core::Status>,
        label: Option<String>,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<TrackedPage> {
        let limit = limit.max(1);
        let mut tasks = self.store.task_page(&taskdaemon_store::TaskPageFilter {
            status,
            kind: Some(taskdaemon_core::TaskKind::Manual),
            label,
            before_uuid: cursor,
            limit: limit + 1,
            ..Default::default()
        })?;
        let more = tasks.len() > limit;
        tasks.truncate(limit);
        let next_cursor = more
            .then(|| tasks.last().map(|t| t.uuid.to_string()))
            .flatten();
        Ok(TrackedPage { tasks, next_cursor })
    }

    /// Waiting work in layers that can each run in parallel.
    pub fn ready_graph(&self) -> Result<Layers> {
        Ok(parallel_layers(&self.store.open_graph()?))
    }

    /// Claims task `id` (or the task `next` picks) for the agent; `None`
    /// when nothing is ready. The lease lasts `lease` (30 minutes unless
    /// given) past the agent's last activity.
    pub fn claim_task(
        &self,
        agent: &Agent,
        id: Option<&str>,
        lease: Option<Millis>,
    ) -> Result<Option<TaskRecord>> {
        if agent.session.is_none() {
            return Err(ServiceError::BadInput(
                "a claim belongs to an agent: give --session (or TASKDAEMON_SESSION)".to_owned(),
            ));
        }
        agent.touch(&*self.store)?;
        let lease = lease.unwrap_or(CLAIM_LEASE_MS);
        let actor = agent.actor();
        let claimed = self.store.claim_tracked(id, &actor, lease, &actor)?;
        if claimed.is_some() {
            self.save_snapshot(agent.session.as_deref());
        }
        Ok(claimed)
    }

    /// Claimed tasks whose lease ran out (reclaimable).
    pub fn stale_claims(&self) -> Result<Vec<TaskRecord>> {
        Ok(self.store.stale_claims()?)
    }

    /// Task `id` with its subtasks, recursively.
    pub fn task_tree(&self, id: &str) -> Result<TaskTree> {
        self.subtree(&self.store.task(id)?, TREE_DEPTH)
    }

    fn subtree(&self, task: &TaskRecord, depth: usize) -> Result<TaskTree> {
        let mut children = Vec::new();
        if depth > 0 {
            for link in task
                .links
                .iter()
                .filter(|l| l.kind == LinkKind::ParentChild && l.from == task.id)
            {
                children.push(self.subtree(&self.store.task(&link.to)?, depth - 1)?);
            }
        }
        Ok(TaskTree {
            task: TrackedView::from(task),
            children,
        })
    }
}

/// Extends the leases of the agent's claims: any activity keeps them.
pub(crate) fn renew(agent: &Agent, store: &dyn taskdaemon_store::Store) -> Result<()> {
    if agent.session.is_some() {
        store.renew_claims(&agent.actor(), CLAIM_LEASE_MS)?;
    }
    Ok(())
}
