//! The dependency graph between tasks: which edges are allowed and when a task
//! may start.
//!
//! Dependencies must form a DAG. The store never loads the whole graph: it
//! hands [`find_cycle`] a function that returns one task's dependencies, and
//! the search visits only what is reachable from the new edge's target.

use std::collections::{HashMap, HashSet};

use crate::status::Status;

/// A dependency edge that cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    #[error("{0} cannot depend on itself")]
    SelfDependency(String),
    /// The path that the new edge would close, starting and ending at the same task.
    #[error("adding {task} -> {depends_on} would make a cycle: {}", .cycle.join(" -> "))]
    Cycle {
        task: String,
        depends_on: String,
        cycle: Vec<String>,
    },
}

/// Checks that `task` may depend on `depends_on`, given `dependencies_of`
/// (the ids a task already depends on).
///
/// The edge closes a cycle exactly when `task` is reachable from `depends_on`;
/// the error then names the whole loop, e.g. `A -> B -> C -> A`.
pub fn check_new_edge<E>(
    task: &str,
    depends_on: &str,
    mut dependencies_of: impl FnMut(&str) -> Result<Vec<String>, E>,
) -> Result<Result<(), EdgeError>, E> {
    if task == depends_on {
        return Ok(Err(EdgeError::SelfDependency(task.to_owned())));
    }
    match find_path(depends_on, task, &mut dependencies_of)? {
        None => Ok(Ok(())),
        Some(path) => {
            let mut cycle = Vec::with_capacity(path.len() + 1);
            cycle.push(task.to_owned());
            cycle.extend(path);
            Ok(Err(EdgeError::Cycle {
                task: task.to_owned(),
                depends_on: depends_on.to_owned(),
                cycle,
            }))
        }
    }
}

/// A shortest dependency path from `from` to `to` (both included), if any.
///
/// Breadth-first, so the cycle reported to a user is the shortest one.
fn find_path<E>(
    from: &str,
    to: &str,
    dependencies_of: &mut impl FnMut(&str) -> Result<Vec<String>, E>,
) -> Result<Option<Vec<String>>, E> {
    let mut parent: HashMap<String, String> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::from([from.to_owned()]);
    let mut frontier = vec![from.to_owned()];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for node in frontier {
            if node == to {
                return Ok(Some(unwind(&parent, from, &node)));
            }
            for dep in dependencies_of(&node)? {
                if seen.insert(dep.clone()) {
                    parent.insert(dep.clone(), node.clone());
                    next.push(dep);
                }
            }
        }
        frontier = next;
    }
    Ok(None)
}

fn unwind(parent: &HashMap<String, String>, from: &str, to: &str) -> Vec<String> {
    let mut path = vec![to.to_owned()];
    let mut at = to;
    while at != from {
        match parent.get(at) {
            Some(p) => {
                path.push(p.clone());
                at = p;
            }
            None => break,
        }
    }
    path.reverse();
    path
}

/// Whether a dependency in `status` lets its dependents start.
///
/// Only success counts: a failed or cancelled dependency keeps its dependents
/// blocked until it is retried and succeeds, or the edge is removed.
pub fn satisfies(status: Status) -> bool {
    status == Status::Succeeded
}

/// The waiting status a not-yet-started task should have, given the statuses
/// of its dependencies: `pending` when all are satisfied, else `blocked`.
pub fn waiting_status(dependencies: impl IntoIterator<Item = Status>) -> Status {
    if dependencies.into_iter().all(satisfies) {
        Status::Pending
    } else {
        Status::Blocked
    }
}

/// An open task of the graph with the tasks it waits for and their statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenNode {
    pub id: String,
    pub status: Status,
    pub depends_on: Vec<(String, Status)>,
}

/// `ready --graph`: waiting work in layers that can each run in parallel.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Layers {
    /// Layer 0 can start now; layer k once the layers before it are done.
    pub layers: Vec<Vec<String>>,
    /// Tasks that wait (directly or not) on work that failed, was cancelled
    /// or is gone: they cannot start until that is retried or unlinked.
    pub stuck: Vec<String>,
}

/// Splits waiting tasks (`pending`/`blocked`) into parallel layers.
///
/// A task's layer is one past the highest layer among what it still waits
/// for; succeeded and running work counts as done or under way, so a task
/// waiting only on running work is in layer 1. Tasks are listed in the order
/// given (the caller's order, most urgent first).
pub fn parallel_layers(nodes: &[OpenNode]) -> Layers {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    // None: not decided yet; Some(None): stuck; Some(Some(k)): layer k.
    let mut layer: Vec<Option<Option<usize>>> = vec![None; nodes.len()];
    // Each round decides at least one node of an acyclic graph.
    for _ in 0..=nodes.len() {
        let mut changed = false;
        for (i, node) in nodes.iter().enumerate() {
            if layer[i].is_some() {
                continue;
            }
            if let Some(decided) = decide_layer(node, &index, &layer) {
                layer[i] = Some(decided);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut out = Layers::default();
    for (node, decided) in nodes.iter().zip(layer) {
        match decided.flatten() {
            Some(k) => {
                if out.layers.len() <= k {
                    out.layers.resize(k + 1, Vec::new());
                }
                out.layers[k].push(node.id.clone());
            }
            None => out.stuck.push(node.id.clone()),
        }
    }
    out
}

/// The layer of `node` when what it waits for is decided; `None` while not.
fn decide_layer(
    node: &OpenNode,
    index: &HashMap<&str, usize>,
    layer: &[Option<Option<usize>>],
) -> Option<Option<usize>> {
    if node.status == Status::Pending {
        return Some(Some(0));
    }
    let mut at = 0;
    for (dep, status) in &node.depends_on {
        match status {
            Status::Succeeded => {}
            Status::Running => at = at.max(1),
            Status::Pending | Status::Blocked => match index.get(dep.as_str()) {
                Some(&j) => match layer[j]? {
                    Some(k) => at = at.max(k + 1),
                    None => return Some(None),
                },
                None => return Some(None),
            },
            _ => return Some(None),
        }
    }
    Some(Some(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::convert::Infallible;

    /// An in-memory graph for the tests: adjacency lists of dependencies.
    #[derive(Default, Clone, Debug)]
    struct Graph(HashMap<String, Vec<String>>);

    impl Graph {
        fn deps(&self, id: &str) -> Result<Vec<String>, Infallible> {
            Ok(self.0.get(id).cloned().unwrap_or_default())
        }

        fn try_add(&mut self, task: &str, dep: &str) -> Result<(), EdgeError> {
            let graph = self.clone();
            check_new_edge(task, dep, |id| graph.deps(id)).unwrap_or_else(|e| match e {})?;
            let edges = self.0.entry(task.to_owned()).or_default();
            if !edges.iter().any(|d| d == dep) {
                edges.push(dep.to_owned());
            }
            Ok(())
        }

        /// Kahn's algorithm: a reference acyclicity check independent of the code under test.
        fn is_acyclic(&self, nodes: usize) -> bool {
            let mut indegree = vec![0usize; nodes];
            for deps in self.0.values() {
                for d in deps {
                    indegree[d.parse::<usize>().unwrap()] += 1;
                }
            }
            let mut queue: Vec<usize> = (0..nodes).filter(|&n| indegree[n] == 0).collect();
            let mut visited = 0;
            while let Some(n) = queue.pop() {
                visited += 1;
                for d in self.0.get(&n.to_string()).into_iter().flatten() {
                    let d = d.parse::<usize>().unwrap();
                    indegree[d] -= 1;
                    if indegree[d] == 0 {
                        queue.push(d);
                    }
                }
            }
            visited == nodes
        }
    }

    #[test]
    fn cycle_error_names_the_loop() {
        let mut g = Graph::default();
        g.try_add("A", "B").unwrap();
        g.try_add("B", "C").unwrap();
        let err = g.try_add("C", "A").unwrap_err();
        assert_eq!(
            err.to_string(),
            "adding C -> A would make a cycle: C -> A -> B -> C"
        );
    }

    #[test]
    fn self_dependency_is_refused() {
        let err = Graph::default().try_add("A", "A").unwrap_err();
        assert_eq!(err, EdgeError::SelfDependency("A".to_owned()));
    }

    #[test]
    fn diamonds_are_fine() {
        let mut g = Graph::default();
        for (t, d) in [("D", "B"), ("D", "C"), ("B", "A"), ("C", "A")] {
            g.try_add(t, d).unwrap();
        }
    }

    #[test]
    fn waiting_status_needs_every_dependency_done() {
        use Status::*;
        assert_eq!(waiting_status([]), Pending);
        assert_eq!(waiting_status([Succeeded, Succeeded]), Pending);
        assert_eq!(waiting_status([Succeeded, Running]), Blocked);
        assert_eq!(waiting_status([Failed]), Blocked);
        assert_eq!(waiting_status([Cancelled]), Blocked);
    }

    fn node(id: &str, status: Status, deps: &[(&str, Status)]) -> OpenNode {
        OpenNode {
            id: id.to_owned(),
            status,
            depends_on: deps.iter().map(|(d, s)| ((*d).to_owned(), *s)).collect(),
        }
    }

    #[test]
    fn layers_follow_the_waits() {
        use Status::*;
        let nodes = [
            node("A", Pending, &[]),
            node("B", Pending, &[("X", Succeeded)]),
            node("C", Blocked, &[("A", Pending), ("B", Pending)]),
            node("D", Blocked, &[("C", Blocked)]),
            node("E", Blocked, &[("R", Running)]),
            node("F", Blocked, &[("Z", Failed)]),
            node("G", Blocked, &[("F", Blocked)]),
        ];
        let got = parallel_layers(&nodes);
        assert_eq!(
            got.layers,
            [vec!["A", "B"], vec!["C", "E"], vec!["D"]]
                .map(|l| l.into_iter().map(str::to_owned).collect::<Vec<_>>())
        );
        assert_eq!(got.stuck, ["F", "G"]);
    }

    proptest! {
        /// Whatever edges are tried, the accepted ones never form a cycle, and an
        /// edge is refused only when it really would close one.
        #[test]
        fn accepted_edges_stay_acyclic(edges in proptest::collection::vec((0usize..12, 0usize..12), 0..80)) {
            let mut g = Graph::default();
            for (t, d) in edges {
                let before = g.clone();
                match g.try_add(&t.to_string(), &d.to_string()) {
                    Ok(()) => prop_assert!(g.is_acyclic(12)),
                    Err(EdgeError::SelfDependency(_)) => prop_assert_eq!(t, d),
                    Err(EdgeError::Cycle { cycle, .. }) => {
                        let mut with_edge = before.clone();
                        with_edge.0.entry(t.to_string()).or_default().push(d.to_string());
                        prop_assert!(!with_edge.is_acyclic(12));
                        // The reported cycle is a real path of existing edges plus the new one.
                        prop_assert_eq!(cycle.first(), cycle.last());
                        for pair in cycle.windows(2) {
                            let has = with_edge.0.get(&pair[0]).is_some_and(|ds| ds.contains(&pair[1]));
                            prop_assert!(has, "{} -> {} is not an edge", pair[0], pair[1]);
                        }
                    }
                }
            }
        }
    }
}
