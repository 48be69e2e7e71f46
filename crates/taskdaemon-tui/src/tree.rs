//! Trees drawn as indented rows (`├─`, `└─`): tracked work by dependency,
//! and plans -> specs -> phases once plans exist. The tree is flattened once
//! when the data changes; rendering then takes a window of the flat rows
//! like any list.

/// Guides are drawn this deep; deeper rows are marked `…`.
pub const MAX_GUIDE_DEPTH: usize = 16;

/// One row of a flattened tree: which item, and the guide drawn before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeRow {
    /// Index into the items the tree was built from.
    pub index: usize,
    pub depth: usize,
    /// `│ ├─ ` and the like.
    pub guide: String,
}

/// Flattens a forest given each item's parent (by index; `None` for a
/// root), keeping the items' order among siblings. Items whose parent chain
/// loops are shown as roots, so every item appears exactly once.
pub fn flatten(parents: &[Option<usize>]) -> Vec<TreeRow> {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); parents.len()];
    let mut roots = Vec::new();
    for (index, parent) in parents.iter().enumerate() {
        match parent {
            Some(p) if *p < parents.len() && *p != index => children[*p].push(index),
            _ => roots.push(index),
        }
    }
    let mut rows = Vec::with_capacity(parents.len());
    let mut seen = vec![false; parents.len()];
    for root in roots {
        walk(root, &children, &mut seen, &mut rows);
    }
    // Items only reachable through a loop of parents become roots.
    for index in 0..parents.len() {
        if !seen[index] {
            walk(index, &children, &mut seen, &mut rows);
        }
    }
    rows
}

/// Depth-first from `root`, without recursion (trees may be deep).
fn walk(root: usize, children: &[Vec<usize>], seen: &mut [bool], rows: &mut Vec<TreeRow>) {
    // (item, depth, guide prefix of its children's rows, last among siblings)
    let mut stack: Vec<(usize, usize, String, bool)> = vec![(root, 0, String::new(), true)];
    while let Some((index, depth, prefix, last)) = stack.pop() {
        if std::mem::replace(&mut seen[index], true) {
            continue;
        }
        let (guide, child_prefix) = if depth == 0 {
            (String::new(), String::new())
        } else if depth > MAX_GUIDE_DEPTH {
            // Deeper rows share one guide: a long chain stays linear in size.
            (format!("{prefix}… "), prefix)
        } else if last {
            (format!("{prefix}└─ "), format!("{prefix}   "))
        } else {
            (format!("{prefix}├─ "), format!("{prefix}│  "))
        };
        rows.push(TreeRow {
            index,
            depth,
            guide,
        });
        let list = &children[index];
        for (i, &child) in list.iter().enumerate().rev() {
            stack.push((child, depth + 1, child_prefix.clone(), i + 1 == list.len()));
        }
    }
}

/// Parents by dependency: each task hangs under the first of its
/// dependencies that `position` finds (the others show in its row).
pub fn dependency_parents<'a>(
    depends_on: impl Iterator<Item = &'a [String]>,
    position: impl Fn(&str) -> Option<usize>,
) -> Vec<Option<usize>> {
    depends_on
        .map(|deps| deps.iter().find_map(|dep| position(dep)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(rows: &[TreeRow]) -> Vec<String> {
        rows.iter()
            .map(|r| format!("{}{}", r.guide, r.index))
            .collect()
    }

    #[test]
    fn children_hang_under_their_parent_in_order() {
        // 0 ─ 1 ─ 3
        //   └ 2
        // 4
        let rows = flatten(&[None, Some(0), Some(0), Some(1), None]);
        assert_eq!(lines(&rows), ["0", "├─ 1", "│  └─ 3", "└─ 2", "4"]);
        assert_eq!(rows[2].depth, 2);
    }

    #[test]
    fn a_loop_of_parents_still_shows_every_item_once() {
        let rows = flatten(&[Some(1), Some(0), None]);
        let mut shown: Vec<usize> = rows.iter().map(|r| r.index).collect();
        shown.sort();
        assert_eq!(shown, [0, 1, 2]);
    }

    #[test]
    fn dependencies_pick_the_first_listed_parent() {
        let deps: Vec<Vec<String>> = vec![
            vec![],
            vec!["A".into()],
            vec!["missing".into(), "B".into(), "A".into()],
        ];
        let ids = ["A", "B", "C"];
        let parents = dependency_parents(deps.iter().map(Vec::as_slice), |id| {
            ids.iter().position(|i| *i == id)
        });
        assert_eq!(parents, [None, Some(0), Some(1)]);
    }
}
