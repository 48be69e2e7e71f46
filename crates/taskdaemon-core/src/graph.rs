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
