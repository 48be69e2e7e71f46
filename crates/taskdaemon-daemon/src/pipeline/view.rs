//! The scheduler's memory of open plans: each plan's record and its specs'
//! records (no phases), and what the next pass has to look at.
//!
//! A full pass rebuilds the view from the store; between full passes the
//! driver's own writes (it makes every status change but a person's) keep it
//! current, so the pass after a step ends decides from memory instead of
//! re-reading every open plan's whole tree. A person's change reaches the
//! daemon as a wake-up asking for a full pass (and the scheduler's tick is
//! a full pass too, should one be lost). Which specs are ready is decided
//! from it too: the pass after a step ends reads nothing from the store.

use std::collections::{HashMap, HashSet};

use taskdaemon_core::pipeline::{
    PipelineStatus, PlanRecord, PlanTree, SpecRecord, plan_outcome, ready_specs,
};

/// Open plans as the driver last wrote or read them.
#[derive(Debug, Default)]
pub(super) struct View {
    plans: HashMap<String, PlanView>,
}

#[derive(Debug)]
struct PlanView {
    plan: PlanRecord,
    /// In creation order (a failed spec named in the outcome is the first).
    specs: Vec<SpecRecord>,
}

/// What a plan's next plan-level step needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlanStep {
    /// A plan or spec loop: new model work, held back under backpressure.
    Loop,
    /// Recording the outcome its specs reached: no model call.
    Outcome,
}

impl View {
    /// Replaces everything with what the store holds now.
    pub(super) fn rebuild(&mut self, trees: &[PlanTree]) {
        self.plans = trees
            .iter()
            .filter(|t| t.plan.status.is_open())
            .map(|t| {
                let view = PlanView {
                    plan: t.plan.clone(),
                    specs: t.specs.iter().map(|s| s.spec.clone()).collect(),
                };
                (t.plan.id.clone(), view)
            })
            .collect();
    }

    /// A plan as just written or read; an ended plan leaves the view.
    pub(super) fn plan(&mut self, record: &PlanRecord) {
        if !record.status.is_open() {
            self.plans.remove(&record.id);
            return;
        }
        match self.plans.get_mut(&record.id) {
            Some(view) => view.plan = record.clone(),
            None => {
                self.plans.insert(
                    record.id.clone(),
                    PlanView {
                        plan: record.clone(),
                        specs: Vec::new(),
                    },
                );
            }
        }
    }

    /// A spec as just created or written (of a plan the view holds).
    pub(super) fn spec(&mut self, record: &SpecRecord) {
        let Some(view) = self.plans.get_mut(&record.plan) else {
            return;
        };
        match view.specs.iter_mut().find(|s| s.id == record.id) {
            Some(spec) => *spec = record.clone(),
            None => view.specs.push(record.clone()),
        }
    }

    /// The plan-level step `plan` has to take now, if any.
    pub(super) fn step_due(&self, plan: &str) -> Option<PlanStep> {
        let view = self.plans.get(plan)?;
        plan_step(&view.plan, &view.specs)
    }

    /// The specs that may start now, in the store's order (priority, plan
    /// age, creation). A spec the view thinks ready but is not (a person
    /// changed it since) costs a task that reads it and stops; one it
    /// misses is found by the next full pass.
    pub(super) fn ready(&self) -> Vec<SpecRecord> {
        ready_specs(
            self.plans
                .values()
                .map(|view| (&view.plan, view.specs.as_slice())),
        )
    }

    /// Open plans held (none: the scheduler sleeps until the store changes).
    pub(super) fn len(&self) -> usize {
        self.plans.len()
    }

    /// Whether a plan runs (its target branch is then watched).
    pub(super) fn any_running(&self) -> bool {
        self.plans
            .values()
            .any(|view| view.plan.status == PipelineStatus::Running)
    }
}

/// Whether a plan has a plan-level step to take, and of which kind. A
/// running plan whose specs are under way has none: its spec loop ended in
/// the task that ran it, which then stopped. (The first pass after a start
/// looks at every plan, so a spec loop a crash interrupted is resumed.)
pub(super) fn plan_step(plan: &PlanRecord, specs: &[SpecRecord]) -> Option<PlanStep> {
    match plan.status {
        PipelineStatus::Draft if plan.body.is_none() => Some(PlanStep::Loop),
        PipelineStatus::Pending => Some(PlanStep::Loop),
        PipelineStatus::Running if specs.is_empty() => Some(PlanStep::Loop),
        PipelineStatus::Running => plan_outcome(specs).map(|_| PlanStep::Outcome),
        _ => None,
    }
}

/// What the scheduler's next pass looks at; wake-ups add to it, a pass takes it.
#[derive(Debug, Default)]
pub(super) struct Work {
    /// Read every open plan from the store (start, tick, a person's change).
    pub(super) full: bool,
    /// Plans whose plan-level step may be due (a step of theirs ended).
    pub(super) plans: HashSet<String>,
    /// Specs may have become ready (some were created, or one succeeded).
    pub(super) ready: bool,
}

impl Work {
    /// Whether there is anything to do.
    pub(super) fn is_empty(&self) -> bool {
        !self.full && !self.ready && self.plans.is_empty()
    }

    /// Puts back what a pass could not do (held back by backpressure).
    pub(super) fn merge(&mut self, other: Work) {
        self.full |= other.full;
        self.ready |= other.ready;
        self.plans.extend(other.plans);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskdaemon_core::pipeline::PipelineCost;

    fn plan(status: PipelineStatus, body: Option<&str>) -> PlanRecord {
        PlanRecord {
            id: "PLAN-1".into(),
            goal: "g".into(),
            title: None,
            summary: None,
            body: body.map(str::to_owned),
            status,
            target_branch: "main".into(),
            base_commit: "0".repeat(40),
            auto_approve: false,
            note: None,
            loop_task: None,
            cost: PipelineCost::default(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn spec(name: &str, status: PipelineStatus) -> SpecRecord {
        SpecRecord {
            id: format!("PLAN-1/{name}"),
            plan: "PLAN-1".into(),
            name: name.into(),
            title: name.into(),
            body: "b".into(),
            status,
            priority: 0,
            depends_on: Vec::new(),
            branch: format!("td/PLAN-1/{name}"),
            worktree: format!(".taskdaemon/worktrees/PLAN-1/{name}"),
            note: None,
            loop_task: None,
            cost: PipelineCost::default(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn steps_follow_the_plan_and_its_specs() {
        use PipelineStatus::*;
        assert_eq!(plan_step(&plan(Draft, None), &[]), Some(PlanStep::Loop));
        assert_eq!(
            plan_step(&plan(Draft, Some("b")), &[]),
            None,
            "waits for approval"
        );
        assert_eq!(
            plan_step(&plan(Pending, Some("b")), &[]),
            Some(PlanStep::Loop)
        );
        assert_eq!(
            plan_step(&plan(Running, Some("b")), &[]),
            Some(PlanStep::Loop)
        );
        let running = [spec("a", Succeeded), spec("b", Running)];
        assert_eq!(plan_step(&plan(Running, Some("b")), &running), None);
        let done = [spec("a", Succeeded), spec("b", Succeeded)];
        assert_eq!(
            plan_step(&plan(Running, Some("b")), &done),
            Some(PlanStep::Outcome)
        );
    }

    #[test]
    fn the_view_follows_the_drivers_writes() {
        use PipelineStatus::*;
        let mut view = View::default();
        view.plan(&plan(Running, Some("b")));
        assert_eq!(view.step_due("PLAN-1"), Some(PlanStep::Loop), "no spec yet");
        view.spec(&spec("a", Pending));
        assert_eq!(view.step_due("PLAN-1"), None);
        view.spec(&spec("a", Succeeded));
        assert_eq!(view.step_due("PLAN-1"), Some(PlanStep::Outcome));
        let mut b = spec("b", Pending);
        b.depends_on = vec!["a".into()];
        view.spec(&b);
        assert_eq!(view.step_due("PLAN-1"), None, "b is still to run");
        let ready: Vec<String> = view.ready().into_iter().map(|s| s.id).collect();
        assert_eq!(ready, ["PLAN-1/b"], "a succeeded: b is ready");
        view.plan(&plan(Succeeded, Some("b")));
        assert!(view.ready().is_empty(), "nothing of an ended plan is ready");
        assert_eq!(
            view.step_due("PLAN-1"),
            None,
            "an ended plan leaves the view"
        );
        assert_eq!(view.len(), 0);
        view.spec(&spec("a", Running));
        assert_eq!(view.len(), 0, "a spec of a plan not held is ignored");
    }
}
