//! `task next`: the one task to do now, and why.
//!
//! The order, rule by rule (the first rule that tells two tasks apart decides):
//! 1. a subtask of a task in progress comes first (finish what is started);
//! 2. then the higher priority;
//! 3. then the task that unblocks more waiting work;
//! 4. then the older task.
//!
//! The store hands over the candidates: every ready subtask of a running
//! task and every ready task at the highest ready priority (nothing else can
//! win), with what each unblocks.

use std::cmp::Ordering;

use serde::Serialize;

use crate::time::Millis;

/// A ready task as the `next` rule sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextCandidate {
    pub id: String,
    pub priority: i32,
    /// Open tasks waiting directly on this one.
    pub unblocks: u32,
    /// The running task this one is a subtask of.
    pub running_parent: Option<String>,
    pub created_at: Millis,
    /// The store's creation order, for tasks created in the same millisecond.
    pub seq: i64,
}

/// The rule that decided between the pick and the runner-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NextRule {
    /// Nothing else was ready.
    OnlyCandidate,
    SubtaskOfRunning,
    Priority,
    Unblocks,
    Age,
}

/// The task to do now, the one that came second, and the rule between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextPick {
    pub task: NextCandidate,
    pub runner_up: Option<NextCandidate>,
    pub rule: NextRule,
    /// The decision in words.
    pub explanation: String,
}

/// `Less` when `a` should be done before `b`.
pub fn compare(a: &NextCandidate, b: &NextCandidate) -> Ordering {
    b.running_parent
        .is_some()
        .cmp(&a.running_parent.is_some())
        .then(b.priority.cmp(&a.priority))
        .then(b.unblocks.cmp(&a.unblocks))
        .then((a.created_at, a.seq).cmp(&(b.created_at, b.seq)))
}

/// The first rule that tells `winner` before `other`.
fn deciding_rule(winner: &NextCandidate, other: &NextCandidate) -> NextRule {
    if winner.running_parent.is_some() != other.running_parent.is_some() {
        NextRule::SubtaskOfRunning
    } else if winner.priority != other.priority {
        NextRule::Priority
    } else if winner.unblocks != other.unblocks {
        NextRule::Unblocks
    } else {
        NextRule::Age
    }
}

/// The task to do now among `candidates`; `None` when nothing is ready.
pub fn pick_next(mut candidates: Vec<NextCandidate>) -> Option<NextPick> {
    candidates.sort_by(compare);
    let mut ranked = candidates.into_iter();
    let task = ranked.next()?;
    let runner_up = ranked.next();
    let rule = runner_up
        .as_ref()
        .map_or(NextRule::OnlyCandidate, |r| deciding_rule(&task, r));
    let explanation = explain(&task, runner_up.as_ref(), rule);
    Some(NextPick {
        task,
        runner_up,
        rule,
        explanation,
    })
}

fn tasks(n: u32) -> String {
    if n == 1 {
        "1 task".to_owned()
    } else {
        format!("{n} tasks")
    }
}

fn explain(task: &NextCandidate, runner_up: Option<&NextCandidate>, rule: NextRule) -> String {
    let id = &task.id;
    let Some(other) = runner_up else {
        return format!("{id} is the only ready task");
    };
    let oid = &other.id;
    match rule {
        NextRule::OnlyCandidate => format!("{id} is the only ready task"),
        NextRule::SubtaskOfRunning => format!(
            "{id} is a subtask of {}, which is in progress; {oid} is not (rule 1: finish what is started)",
            task.running_parent.as_deref().unwrap_or("?")
        ),
        NextRule::Priority => format!(
            "{id} has priority {}, above {oid}'s {} (rule 2: priority)",
            task.priority, other.priority
        ),
        NextRule::Unblocks => format!(
            "{id} unblocks {}, {oid} unblocks {} (rule 3: unblock the most work; both priority {})",
            tasks(task.unblocks),
            tasks(other.unblocks),
            task.priority
        ),
        NextRule::Age => format!(
            "{id} is older than {oid} (rule 4: age; both priority {}, each unblocks {})",
            task.priority,
            tasks(task.unblocks)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(
        id: &str,
        priority: i32,
        unblocks: u32,
        parent: Option<&str>,
        at: Millis,
    ) -> NextCandidate {
        NextCandidate {
            id: id.to_owned(),
            priority,
            unblocks,
            running_parent: parent.map(str::to_owned),
            created_at: at,
            seq: at,
        }
    }

    #[test]
    fn each_rule_decides_and_says_so() {
        let pick = pick_next(vec![c("A", 20, 5, None, 1), c("B", 0, 0, Some("P"), 2)]).unwrap();
        assert_eq!(
            (pick.task.id.as_str(), pick.rule),
            ("B", NextRule::SubtaskOfRunning)
        );
        assert!(
            pick.explanation.contains("subtask of P"),
            "{}",
            pick.explanation
        );

        let pick = pick_next(vec![c("A", 0, 5, None, 1), c("B", 10, 0, None, 2)]).unwrap();
        assert_eq!(
            (pick.task.id.as_str(), pick.rule),
            ("B", NextRule::Priority)
        );

        let pick = pick_next(vec![c("A", 0, 1, None, 1), c("B", 0, 3, None, 2)]).unwrap();
        assert_eq!(
            (pick.task.id.as_str(), pick.rule),
            ("B", NextRule::Unblocks)
        );
        assert!(
            pick.explanation
                .contains("unblocks 3 tasks, A unblocks 1 task")
        );

        let pick = pick_next(vec![c("B", 0, 0, None, 2), c("A", 0, 0, None, 1)]).unwrap();
        assert_eq!((pick.task.id.as_str(), pick.rule), ("A", NextRule::Age));
        assert_eq!(pick.runner_up.map(|r| r.id).as_deref(), Some("B"));
    }

    #[test]
    fn one_or_no_candidate() {
        assert!(pick_next(Vec::new()).is_none());
        let pick = pick_next(vec![c("A", 0, 0, None, 1)]).unwrap();
        assert_eq!(pick.rule, NextRule::OnlyCandidate);
        assert_eq!(pick.explanation, "A is the only ready task");
    }

    use proptest::prelude::*;

    /// The order written out plainly, as the issue states it: a subtask of
    /// work in progress, then priority, then what it unblocks, then age.
    fn reference_best(cands: &[NextCandidate]) -> &NextCandidate {
        let mut best = &cands[0];
        for c in &cands[1..] {
            let better = if c.running_parent.is_some() != best.running_parent.is_some() {
                c.running_parent.is_some()
            } else if c.priority != best.priority {
                c.priority > best.priority
            } else if c.unblocks != best.unblocks {
                c.unblocks > best.unblocks
            } else if c.created_at != best.created_at {
                c.created_at < best.created_at
            } else {
                c.seq < best.seq
            };
            if better {
                best = c;
            }
        }
        best
    }

    fn candidates() -> impl Strategy<Value = Vec<NextCandidate>> {
        proptest::collection::vec(
            (-2i32..3, 0u32..3, proptest::bool::weighted(0.2), 0i64..5),
            1..25,
        )
        .prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(n, (priority, unblocks, sub, at))| NextCandidate {
                    id: format!("T-{n}"),
                    priority,
                    unblocks,
                    running_parent: sub.then(|| "P".to_owned()),
                    created_at: at,
                    seq: n as i64,
                })
                .collect()
        })
    }

    proptest! {
        /// `pick_next` agrees with the plain reference, and the rule it names
        /// is the first one that tells the pick from the runner-up.
        #[test]
        fn next_agrees_with_the_reference(cands in candidates()) {
            let expected = reference_best(&cands).id.clone();
            let pick = pick_next(cands.clone()).unwrap();
            prop_assert_eq!(&pick.task.id, &expected);
            if let Some(runner) = &pick.runner_up {
                let rest: Vec<NextCandidate> =
                    cands.iter().filter(|c| c.id != expected).cloned().collect();
                prop_assert_eq!(&runner.id, &reference_best(&rest).id);
                prop_assert_eq!(pick.rule, deciding_rule(&pick.task, runner));
            } else {
                prop_assert_eq!(pick.rule, NextRule::OnlyCandidate);
            }
        }
    }
}
