//! The Plan view's data shape: plans -> specs -> phases, each with a status
//! and a cost, drawn as a tree. No plan pipeline exists yet (the store holds
//! no plans), so the view says so; this is the tree it will fill.

use taskdaemon_core::Status;

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
    pub status: Status,
    pub cost_usd: f64,
    pub children: Vec<PlanNode>,
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
            status: Status::Pending,
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
