//! Typed links between tracked tasks, the parent-child roll-up, and agents'
//! claims on tasks.
//!
//! A link reads as a sentence, `FROM KIND TO` (`TASK-1 blocks TASK-2`). Three
//! kinds block: they become an edge of the dependency graph
//! ([`LinkKind::blocking_edge`]), so [`crate::graph::check_new_edge`] keeps
//! them acyclic together. The others only record how tasks relate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::time::{Millis, serde_rfc3339};

/// What a link between two tasks means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LinkKind {
    /// `A blocks B`: B cannot start before A succeeded (today's dependency).
    Blocks,
    /// `P parent-child C`: C is a subtask of P; P cannot be done while C is open.
    ParentChild,
    /// `A waits-for B`: A cannot start before B succeeded.
    WaitsFor,
    Related,
    /// `A discovered-from B`: A was found while working on B.
    DiscoveredFrom,
    /// `A supersedes B`: A replaces B.
    Supersedes,
    /// `A caused-by B`: A (a bug, say) was caused by B.
    CausedBy,
}

impl LinkKind {
    pub const ALL: [LinkKind; 7] = [
        LinkKind::Blocks,
        LinkKind::ParentChild,
        LinkKind::WaitsFor,
        LinkKind::Related,
        LinkKind::DiscoveredFrom,
        LinkKind::Supersedes,
        LinkKind::CausedBy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Blocks => "blocks",
            LinkKind::ParentChild => "parent-child",
            LinkKind::WaitsFor => "waits-for",
            LinkKind::Related => "related",
            LinkKind::DiscoveredFrom => "discovered-from",
            LinkKind::Supersedes => "supersedes",
            LinkKind::CausedBy => "caused-by",
        }
    }

    /// Whether the link is an edge of the dependency graph (and so may not
    /// close a cycle).
    pub fn is_blocking(self) -> bool {
        matches!(
            self,
            LinkKind::Blocks | LinkKind::ParentChild | LinkKind::WaitsFor
        )
    }

    /// Whether the link keeps a task from *starting* (it is a dependency the
    /// `pending`/`blocked` rule reads). A parent-child link blocks the
    /// parent's completion instead, so a parent can be in progress while its
    /// subtasks are done.
    pub fn gates_start(self) -> bool {
        matches!(self, LinkKind::Blocks | LinkKind::WaitsFor)
    }

    /// The dependency edge `(waiting task, task waited for)` that
    /// `from KIND to` makes, for blocking kinds.
    pub fn blocking_edge<'a>(self, from: &'a str, to: &'a str) -> Option<(&'a str, &'a str)> {
        match self {
            LinkKind::Blocks => Some((to, from)),
            LinkKind::WaitsFor | LinkKind::ParentChild => Some((from, to)),
            _ => None,
        }
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LinkKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let wanted = text.trim().replace('_', "-");
        LinkKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| {
                let names: Vec<&str> = LinkKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown link type '{text}' (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// One link, read as `from kind to`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskLink {
    pub from: String,
    pub kind: LinkKind,
    pub to: String,
}

impl TaskLink {
    /// The stored form, one line: `from<TAB>kind<TAB>to`.
    pub fn parse_stored(line: &str) -> Result<Self, String> {
        let mut parts = line.split('\t');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(from), Some(kind), Some(to), None) => Ok(TaskLink {
                from: from.to_owned(),
                kind: kind.parse()?,
                to: to.to_owned(),
            }),
            _ => Err(format!("malformed link '{line}'")),
        }
    }

    /// The link as seen from `task`: `("blocks", other)` when `task` is the
    /// subject, `("blocked by", other)` when it is the object.
    pub fn seen_from(&self, task: &str) -> (&'static str, &str) {
        if self.from == task {
            return (self.kind.as_str(), &self.to);
        }
        let phrase = match self.kind {
            LinkKind::Blocks => "blocked by",
            LinkKind::ParentChild => "child of",
            LinkKind::WaitsFor => "waited for by",
            LinkKind::Related => "related",
            LinkKind::DiscoveredFrom => "led to",
            LinkKind::Supersedes => "superseded by",
            LinkKind::CausedBy => "caused",
        };
        (phrase, &self.from)
    }
}

impl fmt::Display for TaskLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.from, self.kind, self.to)
    }
}

/// Parses the stored links (one per line), sorted, each once.
pub fn parse_stored_links(text: Option<&str>) -> Result<Vec<TaskLink>, String> {
    let mut links = text
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(TaskLink::parse_stored)
        .collect::<Result<Vec<_>, _>>()?;
    links.sort();
    links.dedup();
    Ok(links)
}

/// A parent's subtasks, counted: "2/3 done".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rollup {
    pub total: u32,
    pub done: u32,
    /// Subtasks not ended yet (pending, blocked or running).
    pub open: u32,
}

impl Rollup {
    /// The stored form `total/done/open`; `None` for a task without subtasks.
    pub fn parse_stored(text: Option<&str>) -> Result<Option<Self>, String> {
        let Some(text) = text else { return Ok(None) };
        let numbers: Vec<u32> = text
            .split('/')
            .map(|n| n.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("malformed roll-up '{text}': {e}"))?;
        match numbers[..] {
            [0, ..] => Ok(None),
            [total, done, open] => Ok(Some(Rollup { total, done, open })),
            _ => Err(format!("malformed roll-up '{text}'")),
        }
    }
}

impl fmt::Display for Rollup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} done", self.done, self.total)
    }
}

/// Who holds a task, and until when, unless they stay active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Claim {
    pub by: String,
    #[serde(with = "serde_rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub lease_until: Millis,
}

impl Claim {
    /// A claim whose lease ran out: anyone may take the task over.
    pub fn is_stale(&self, now: Millis) -> bool {
        self.lease_until <= now
    }
}

/// How long a claim lasts without activity by the agent that holds it.
pub const CLAIM_LEASE_MS: Millis = 30 * 60 * 1000;

/// The id of the `n`th subtask of `parent`: `TASK-12.1`.
pub fn child_id(parent: &str, n: u32) -> String {
    format!("{parent}.{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_say_whether_they_block() {
        for kind in LinkKind::ALL {
            assert_eq!(kind.as_str().parse::<LinkKind>(), Ok(kind));
        }
        assert_eq!("Waits_For".parse::<LinkKind>(), Ok(LinkKind::WaitsFor));
        let err = "depends".parse::<LinkKind>().unwrap_err();
        assert!(
            err.contains("'depends'") && err.contains("caused-by"),
            "{err}"
        );
        let blocking: Vec<_> = LinkKind::ALL
            .into_iter()
            .filter(|k| k.is_blocking())
            .collect();
        assert_eq!(
            blocking,
            [LinkKind::Blocks, LinkKind::ParentChild, LinkKind::WaitsFor]
        );
    }

    #[test]
    fn blocking_edges_point_from_the_waiting_task() {
        assert_eq!(LinkKind::Blocks.blocking_edge("A", "B"), Some(("B", "A")));
        assert_eq!(LinkKind::WaitsFor.blocking_edge("A", "B"), Some(("A", "B")));
        assert_eq!(
            LinkKind::ParentChild.blocking_edge("P", "C"),
            Some(("P", "C"))
        );
        assert_eq!(LinkKind::Related.blocking_edge("A", "B"), None);
    }

    #[test]
    fn stored_links_parse_and_read_from_either_end() {
        let links =
            parse_stored_links(Some("B\tblocks\tC\nA\tparent-child\tB\nB\tblocks\tC")).unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].to_string(), "A parent-child B");
        assert_eq!(links[0].seen_from("B"), ("child of", "A"));
        assert_eq!(links[1].seen_from("B"), ("blocks", "C"));
        assert!(TaskLink::parse_stored("A blocks B").is_err());
    }

    #[test]
    fn rollups_parse() {
        assert_eq!(Rollup::parse_stored(Some("0/0/0")), Ok(None));
        let r = Rollup::parse_stored(Some("3/2/1")).unwrap().unwrap();
        assert_eq!(r.to_string(), "2/3 done");
        assert!(Rollup::parse_stored(Some("x")).is_err());
    }

    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::convert::Infallible;

    /// Kahn's algorithm over the edges: an acyclicity check independent of
    /// the graph module.
    fn acyclic(edges: &[(usize, usize)], nodes: usize) -> bool {
        let mut indegree = vec![0usize; nodes];
        for &(_, to) in edges {
            indegree[to] += 1;
        }
        let mut queue: Vec<usize> = (0..nodes).filter(|&n| indegree[n] == 0).collect();
        let mut seen = 0;
        while let Some(n) = queue.pop() {
            seen += 1;
            for &(from, to) in edges {
                if from == n {
                    indegree[to] -= 1;
                    if indegree[to] == 0 {
                        queue.push(to);
                    }
                }
            }
        }
        seen == nodes
    }

    proptest! {
        /// Whatever typed links are tried, the blocking ones accepted (by the
        /// rule the stores apply: `blocking_edge` then `check_new_edge`)
        /// never form a cycle, and non-blocking ones are never refused.
        #[test]
        fn typed_links_keep_the_blocking_graph_acyclic(
            tries in proptest::collection::vec((0usize..8, 0usize..7, 0usize..8), 0..60)
        ) {
            let mut edges: Vec<(usize, usize)> = Vec::new();
            for (from, kind, to) in tries {
                let kind = LinkKind::ALL[kind];
                let (a, b) = (from.to_string(), to.to_string());
                let Some((waiter, waited)) = kind.blocking_edge(&a, &b) else {
                    prop_assert!(!kind.is_blocking());
                    continue;
                };
                let mut deps: HashMap<String, Vec<String>> = HashMap::new();
                for (w, d) in &edges {
                    deps.entry(w.to_string()).or_default().push(d.to_string());
                }
                let verdict = crate::graph::check_new_edge(waiter, waited, |id| {
                    Ok::<_, Infallible>(deps.get(id).cloned().unwrap_or_default())
                })
                .unwrap_or_else(|e| match e {});
                let edge = (waiter.parse::<usize>().unwrap(), waited.parse::<usize>().unwrap());
                let mut with = edges.clone();
                with.push(edge);
                match verdict {
                    Ok(()) => {
                        edges.push(edge);
                        prop_assert!(acyclic(&edges, 8));
                    }
                    Err(_) => prop_assert!(edge.0 == edge.1 || !acyclic(&with, 8)),
                }
            }
        }
    }
}
