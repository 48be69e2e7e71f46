//! The Plan view's data shape: plans -> specs -> phases, each with a status
//! and a cost, drawn as a tree, built from the service's `plan show`.

use taskdaemon_core::pipeline::PipelineStatus;
use taskdaemon_service::PlanShow;

use crate::tree::flatten;

/// What a node of the plan tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    Plan,
    Spec,
    Phase,
}

impl PlanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanKind::Plan => "plan",
            PlanKind::Spec => "spec",
            PlanKind::Phase => "phase",
        }
    }
}

/// A plan, spec or phase with what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanNode {
    pub kind: PlanKind,
    pub title: String,
    pub status: PipelineStatus,
    pub cost_usd: f64,
    pub children: Vec<PlanNode>,
}

impl PlanNode {
    /// The tree of one plan as `plan show` gives it.
    pub fn from_show(show: &PlanShow) -> Self {
        PlanNode {
            kind: PlanKind::Plan,
            title: format!("{} {}", show.plan.id, show.plan.display_title()),
            status: show.plan.status,
            cost_usd: show.plan.cost.cost_usd,
            children: show
                .specs
                .iter()
                .map(|s| PlanNode {
                    kind: PlanKind::Spec,
                    title: s.spec.name.clone(),
                    status: s.spec.status,
                    cost_usd: s.spec.cost.cost_usd,
                    children: s
                        .phases
                        .iter()
                        .map(|p| PlanNode {
                            kind: PlanKind::Phase,
                            title: format!("{} {}", p.phase.number, p.phase.title),
                            status: p.phase.status,
                            cost_usd: p.phase.cost.cost_usd,
                            children: Vec::new(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The nodes in tree order, each with its guide (`├─ `...).
pub fn plan_rows(plans: &[PlanNode]) -> Vec<(String, &PlanNode)> {
    let mut nodes: Vec<&PlanNode> = Vec::new();
    let mut parents: Vec<Option<usize>> = Vec::new();
    let mut stack: Vec<(&PlanNode, Option<usize>)> =
        plans.iter().rev().map(|p| (p, None)).collect();
    while let Some((node, parent)) = stack.pop() {
        let index = nodes.len();
        nodes.push(node);
        parents.push(parent);
        stack.extend(node.children.iter().rev().map(|c| (c, Some(index))));
    }
    flatten(&parents)
        .into_iter()
        .map(|row| (row.guide, nodes[row.index]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: PlanKind, title: &str, children: Vec<PlanNode>) -> PlanNode {
        PlanNode {
            kind,
            title: title.to_owned(),
            status: PipelineStatus::Pending,
            cost_usd: 0.0,
            children,
        }
    }

    #[test]
    fn plans_specs_and_phases_nest_in_order() {
        let plans = vec![node(
            PlanKind::Plan,
            "login",
            vec![
                node(
                    PlanKind::Spec,
                    "backend",
                    vec![
                        node(PlanKind::Phase, "schema", vec![]),
                        node(PlanKind::Phase, "api", vec![]),
                    ],
                ),
                node(PlanKind::Spec, "frontend", vec![]),
            ],
        )];
        let rows: Vec<String> = plan_rows(&plans)
            .into_iter()
            .map(|(guide, n)| format!("{guide}{} {}", n.kind.as_str(), n.title))
            .collect();
        assert_eq!(
            rows,
            [
                "plan login",
                "├─ spec backend",
                "│  ├─ phase schema",
                "│  └─ phase api",
                "└─ spec frontend",
            ]
        );
    }
}
