//! Plans as people and agents handle them: `new-plan` (after checking the
//! repository), listing and showing plans with their costs, approve,
//! cancel, resume, and the human side of the coordinator (messages to a
//! plan's loops, answers to their queries, dead letters).
//!
//! Running a plan (the scheduler, worktrees, the loops) is the daemon's;
//! this module only records what people decide.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use taskdaemon_core::pipeline::{
    BROADCAST, Delivery, HUMAN, MessageKind, MessageRecord, NewMessage, NewPlan, PhaseRecord,
    PlanRecord, PlanTree, SpecRecord,
};
use taskdaemon_core::{LoopRecord, Status};
use taskdaemon_store::{MessageFilter, PlanFilter, StoreError};

use crate::{Agent, Result, Service, ServiceError};

/// What `new-plan` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewPlanInput {
    /// The request: what to build.
    pub goal: String,
    /// The branch to merge into; the checked-out branch when absent.
    pub target: Option<String>,
    /// Skip `plan approve`.
    pub auto_approve: bool,
}

/// A plan as `plan list` shows it: the record and how far its specs are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanSummary {
    #[serde(flatten)]
    pub plan: PlanRecord,
    pub specs_succeeded: usize,
    pub specs_total: usize,
}

impl PlanSummary {
    fn of(tree: PlanTree) -> Self {
        let (specs_succeeded, specs_total) = tree.progress();
        Self {
            plan: tree.plan,
            specs_succeeded,
            specs_total,
        }
    }
}

/// A loop that ran a plan, spec or phase, with what it spent.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LoopCost {
    pub id: String,
    pub status: Status,
    pub iterations: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

impl From<&LoopRecord> for LoopCost {
    fn from(l: &LoopRecord) -> Self {
        Self {
            id: l.task.id.clone(),
            status: l.task.status,
            iterations: l.iterations,
            input_tokens: l.input_tokens,
            output_tokens: l.output_tokens,
            cost_usd: l.cost_usd,
        }
    }
}

/// A phase with the loops that ran it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PhaseShow {
    #[serde(flatten)]
    pub phase: PhaseRecord,
    pub loops: Vec<LoopCost>,
}

/// A spec with the loops that ran it (its phase loop) and its phases.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SpecShow {
    #[serde(flatten)]
    pub spec: SpecRecord,
    pub loops: Vec<LoopCost>,
    pub phases: Vec<PhaseShow>,
}

/// `plan show`: the tree plan -> specs -> phases -> loops, each with its cost.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PlanShow {
    #[serde(flatten)]
    pub plan: PlanRecord,
    /// Specs succeeded and in all.
    pub specs_succeeded: usize,
    pub specs_total: usize,
    /// The plan's own loops (planning, spec creation).
    pub loops: Vec<LoopCost>,
    pub specs: Vec<SpecShow>,
}

/// A message a person sends to a plan's loops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanMessage {
    /// A spec name, or `plan` (every loop of the plan) when absent.
    pub to: Option<String>,
    pub kind: MessageKind,
    pub body: String,
}

/// Where a repository stands for a new plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryState {
    pub branch: String,
    pub commit: String,
}

/// Checks that `root` is a git repository without uncommitted changes to
/// tracked files, and that `target` (or the checked-out branch) exists;
/// returns the branch and its commit. Untracked files do not count: a
/// spec's worktree starts from the commit, which they are not part of.
///
/// Uses the git CLI for these three questions only; this moves to the
/// `taskdaemon-git` crate once it lands.
pub fn check_repository(root: &Path, target: Option<&str>) -> Result<RepositoryState> {
    let git = |args: &[&str]| -> Result<(bool, String)> {
        let output = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .map_err(|e| ServiceError::Failed(format!("cannot run git: {e}")))?;
        let text = if output.status.success() {
            String::from_utf8_lossy(&output.stdout)
        } else {
            String::from_utf8_lossy(&output.stderr)
        };
        // Only the end is trimmed: a porcelain status line starts with its columns.
        Ok((output.status.success(), text.trim_end().to_owned()))
    };
    let (inside, _) = git(&["rev-parse", "--is-inside-work-tree"])?;
    if !inside {
        return Err(ServiceError::BadInput(format!(
            "{} is not a git repository: a plan's specs run in git worktrees (run `git init` and commit first)",
            root.display()
        )));
    }
    let branch = match target {
        Some(branch) => branch.to_owned(),
        None => {
            let (on_branch, branch) = git(&["symbolic-ref", "--quiet", "--short", "HEAD"])?;
            if !on_branch {
                return Err(ServiceError::BadInput(format!(
                    "{} has a detached HEAD: check out a branch or pass --target BRANCH",
                    root.display()
                )));
            }
            branch
        }
    };
    let (exists, commit) = git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("refs/heads/{branch}^{{commit}}"),
    ])?;
    if !exists || commit.is_empty() {
        return Err(ServiceError::BadInput(format!(
            "target branch '{branch}' does not exist in {} (create it, or pass --target with an existing branch)",
            root.display()
        )));
    }
    let (ok, changes) = git(&["status", "--porcelain", "--untracked-files=no"])?;
    if !ok {
        return Err(ServiceError::Failed(format!(
            "git status failed in {}: {changes}",
            root.display()
        )));
    }
    if !changes.is_empty() {
        let files: Vec<&str> = changes
            .lines()
            .take(5)
            .map(|l| l.get(3..).unwrap_or(l))
            .collect();
        return Err(ServiceError::BadInput(format!(
            "{} has uncommitted changes ({}): commit or stash them first, so every spec starts from a known commit",
            root.display(),
            files.join(", ")
        )));
    }
    Ok(RepositoryState { branch, commit })
}

impl Service {
    /// Creates a plan for `input.goal` after checking the workspace's
    /// repository: `draft` until approved, or `pending` when auto-approved.
    pub fn new_plan(&self, agent: &Agent, input: NewPlanInput) -> Result<PlanRecord> {
        let goal = input.goal.trim();
        if goal.is_empty() {
            return Err(ServiceError::BadInput(
                "a plan needs a goal: `taskdaemon new-plan \"GOAL\"` or --file request.md"
                    .to_owned(),
            ));
        }
        let root = self.workspace()?.root();
        let repo = check_repository(root, input.target.as_deref())?;
        let plan = self.store.create_plan(
            &NewPlan {
                goal: goal.to_owned(),
                target_branch: repo.branch,
                base_commit: repo.commit,
                auto_approve: input.auto_approve,
                ..NewPlan::default()
            },
            &agent.actor(),
        )?;
        self.wake_pipeline();
        Ok(plan)
    }

    /// Plans, oldest first, with their progress; only those not ended when `open_only`.
    pub fn plans(&self, open_only: bool) -> Result<Vec<PlanSummary>> {
        let filter = PlanFilter {
            open_only,
            limit: None,
        };
        self.store
            .plans(&filter)?
            .into_iter()
            .map(|plan| Ok(PlanSummary::of(self.store.plan_tree(&plan.id)?)))
            .collect()
    }

    /// A plan with its specs, phases and the loops that ran them, each with its cost.
    pub fn plan_show(&self, id: &str) -> Result<PlanShow> {
        let tree = self.store.plan_tree(id)?;
        let mut by_node: HashMap<String, Vec<LoopCost>> = HashMap::new();
        for (node, loop_id) in self.store.pipeline_loops(&tree.plan.id)? {
            // A loop removed from the store (never, today) leaves no line.
            match self.store.loop_record(&loop_id) {
                Ok(record) => by_node.entry(node).or_default().push((&record).into()),
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut loops_of = |id: &str| by_node.remove(id).unwrap_or_default();
        let (specs_succeeded, specs_total) = tree.progress();
        Ok(PlanShow {
            loops: loops_of(&tree.plan.id),
            specs: tree
                .specs
                .into_iter()
                .map(|s| SpecShow {
                    loops: loops_of(&s.spec.id),
                    phases: s
                        .phases
                        .into_iter()
                        .map(|p| PhaseShow {
                            loops: loops_of(&p.id),
                            phase: p,
                        })
                        .collect(),
                    spec: s.spec,
                })
                .collect(),
            plan: tree.plan,
            specs_succeeded,
            specs_total,
        })
    }

    /// `draft -> pending`: the scheduler may start it.
    pub fn approve_plan(&self, agent: &Agent, id: &str) -> Result<PlanRecord> {
        let plan = self.store.approve_plan(id, &agent.actor())?;
        self.wake_pipeline();
        Ok(plan)
    }

    /// Cancels the plan and its unfinished specs and phases. Loops still
    /// running for it are stopped by the daemon, which follows the events.
    pub fn cancel_plan(&self, agent: &Agent, id: &str, reason: Option<&str>) -> Result<PlanTree> {
        let reason = reason
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .unwrap_or("cancelled on request");
        let tree = self.store.cancel_plan(id, reason, &agent.actor())?;
        self.wake_pipeline();
        Ok(tree)
    }

    /// Puts a paused or failed plan (and its paused or failed specs and
    /// phases) back to pending; succeeded phases do not run again.
    pub fn resume_plan(&self, agent: &Agent, id: &str) -> Result<PlanTree> {
        let tree = self.store.resume_plan(id, &agent.actor())?;
        self.wake_pipeline();
        Ok(tree)
    }

    /// Sends a person's message to a plan's loops (all of them by default).
    pub fn plan_message(
        &self,
        agent: &Agent,
        plan: &str,
        message: HumanMessage,
    ) -> Result<MessageRecord> {
        let plan = self.store.plan(plan)?;
        let to = message.to.unwrap_or_else(|| BROADCAST.to_owned());
        if to == HUMAN {
            return Err(ServiceError::BadInput(
                "a message from a person goes to a spec or to the whole plan, not to 'human'"
                    .to_owned(),
            ));
        }
        let sent = self.store.send_message(
            &NewMessage {
                plan: plan.id,
                from: HUMAN.to_owned(),
                to,
                kind: message.kind,
                body: message.body,
            },
            &agent.actor(),
        )?;
        self.wake_pipeline();
        Ok(sent)
    }

    /// Answers a query a loop asked.
    pub fn answer_message(&self, agent: &Agent, id: &str, answer: &str) -> Result<MessageRecord> {
        if answer.trim().is_empty() {
            return Err(ServiceError::BadInput(
                "an answer must not be empty".to_owned(),
            ));
        }
        let answered = self.store.answer_message(id, answer, &agent.actor())?;
        self.wake_pipeline();
        Ok(answered)
    }

    /// Answers query `message` of `plan`: refused when the message belongs
    /// to another plan (a person answering from a plan's page means that
    /// plan's question).
    pub fn answer_plan_query(
        &self,
        agent: &Agent,
        plan: &str,
        message: &str,
        answer: &str,
    ) -> Result<MessageRecord> {
        let plan = self.store.plan(plan)?;
        let found = self.store.message(message)?;
        if found.plan != plan.id {
            return Err(ServiceError::BadInput(format!(
                "{} belongs to {}, not {}",
                found.id, found.plan, plan.id
            )));
        }
        self.answer_message(agent, &found.id, answer)
    }

    /// Messages that could not be delivered, of one plan or all, oldest first.
    pub fn dead_letters(&self, plan: Option<&str>) -> Result<Vec<MessageRecord>> {
        Ok(self.store.messages(&MessageFilter {
            plan: plan.map(str::to_owned),
            delivery: vec![Delivery::Dead],
            ..MessageFilter::default()
        })?)
    }

    /// Queries loops asked a person that have no answer yet, the newest `limit`.
    pub fn waiting_queries(&self, limit: usize) -> Result<Vec<MessageRecord>> {
        Ok(self.store.messages(&MessageFilter {
            to: Some(HUMAN.to_owned()),
            kind: Some(MessageKind::Query),
            delivery: vec![Delivery::Pending, Delivery::Delivered],
            limit: Some(limit),
            ..MessageFilter::default()
        })?)
    }

    /// What holds the daemon's plan scheduler back now (a rate limit used
    /// up, a circuit breaker open) and which plans wait for it; nothing
    /// while no daemon runs.
    pub fn scheduler_state(&self) -> taskdaemon_daemon::scheduler_state::SchedulerState {
        match &self.workspace {
            Some(workspace) => taskdaemon_daemon::scheduler_state::read(workspace),
            None => Default::default(),
        }
    }

    /// Tells a running daemon that a person changed a plan, so its scheduler
    /// acts now (as `queues add` tells it to reload). Without a daemon there
    /// is nothing to tell: its first pass at start reads every plan; and a
    /// wake-up that does not arrive is covered by the scheduler's tick
    /// while a plan is open, and by its watch on the store while none is.
    fn wake_pipeline(&self) {
        let Some(workspace) = &self.workspace else {
            return;
        };
        if let Ok(mut client) = taskdaemon_daemon::Client::connect(workspace)
            && let Err(e) = client.request(&taskdaemon_daemon::protocol::Request::WakePipeline)
        {
            self.warn(&format!("the daemon did not take the plan change in: {e}"));
        }
    }

    /// Plans not ended (drafts included: they wait for a person), with
    /// their progress; for rehydrate and `task resume`.
    pub fn plans_in_progress(&self) -> Result<Vec<PlanSummary>> {
        self.plans(true)
    }

    /// Alerts loops raised for a person, of plans that have not ended, the
    /// newest `limit`, oldest first. With `unseen_only`, only those no
    /// summary has shown yet (still pending).
    pub fn pipeline_alerts(&self, limit: usize, unseen_only: bool) -> Result<Vec<MessageRecord>> {
        let delivery = if unseen_only {
            vec![Delivery::Pending]
        } else {
            vec![Delivery::Pending, Delivery::Delivered]
        };
        let open: Vec<String> = self
            .store
            .plans(&PlanFilter {
                open_only: true,
                limit: None,
            })?
            .into_iter()
            .map(|p| p.id)
            .collect();
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let alerts = self.store.messages(&MessageFilter {
            to: Some(HUMAN.to_owned()),
            kind: Some(MessageKind::Alert),
            delivery,
            limit: Some(limit),
            ..MessageFilter::default()
        })?;
        Ok(alerts
            .into_iter()
            .filter(|m| open.contains(&m.plan))
            .collect())
    }

    /// Marks alerts a person was shown (by a summary) as delivered; one a
    /// concurrent summary delivered already is left as it is.
    pub fn mark_alerts_seen(&self, ids: &[String]) -> Result<()> {
        for id in ids {
            match self.store.mark_message_delivered(id, "rehydrate") {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// What of the pipeline waits for a person: plans in progress, queries
    /// without an answer, and alerts of plans not ended. Computed here
    /// once; `status`, the dashboard and the TUI format it.
    pub fn pipeline_attention(&self) -> Result<PipelineAttention> {
        Ok(PipelineAttention {
            plans: self.plans_in_progress()?,
            queries: self.waiting_queries(ATTENTION_ITEMS)?,
            alerts: self.pipeline_alerts(ATTENTION_ITEMS, false)?,
        })
    }
}

/// At most this many queries and alerts in [`PipelineAttention`].
pub const ATTENTION_ITEMS: usize = 20;

/// The pipeline's part of a status report: what a person should look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PipelineAttention {
    /// Plans not ended, oldest first.
    pub plans: Vec<PlanSummary>,
    /// Queries loops asked a person, not answered yet, oldest first.
    pub queries: Vec<MessageRecord>,
    /// Alerts loops raised for a person, of plans not ended, oldest first.
    pub alerts: Vec<MessageRecord>,
}

impl PipelineAttention {
    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty() && self.queries.is_empty() && self.alerts.is_empty()
    }
}
