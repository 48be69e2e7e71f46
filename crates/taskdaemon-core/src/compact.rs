//! The compact one-line form of a tracked task, for agents: a listing of a
//! thousand tasks must fit a tool result (about 25,000 characters a page),
//! so each line carries only what choosing work needs.

use crate::TaskRecord;

/// Longest title a compact line keeps, in characters.
pub const COMPACT_TITLE: usize = 60;

/// `TASK-3 pending p10 Write the parser <TASK-1 [2/3 done] @cli:s1`.
pub fn compact_line(task: &TaskRecord) -> String {
    let mut line = format!(
        "{} {} p{} {}",
        task.id,
        task.status,
        task.priority,
        shorten(task.title(), COMPACT_TITLE)
    );
    if !task.depends_on.is_empty() {
        line.push_str(&format!(" <{}", task.depends_on.join(",")));
    }
    if let Some(rollup) = &task.rollup {
        line.push_str(&format!(" [{rollup}]"));
    }
    if let Some(claim) = &task.claim {
        line.push_str(&format!(" @{}", claim.by));
    }
    line
}

fn shorten(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut out: String = flat.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_titles_are_cut() {
        assert_eq!(shorten("a  b\nc", 10), "a b c");
        let cut = shorten(&"x".repeat(100), 60);
        assert_eq!(cut.chars().count(), 60);
        assert!(cut.ends_with('…'));
    }
}
