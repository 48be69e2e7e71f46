//! Finding the line of a field in block-style YAML, for errors found after
//! parsing (a bad `extends`, a template naming an unknown variable, ...),
//! when serde no longer knows where a value was.

/// 1-based (line, column) of the key at `path` (e.g. `["types", "spec",
/// "prompt"]`); the deepest key found when the full path is not there.
pub fn locate(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for segment in path {
        let Some((index, indent)) = find_child(&lines, from, parent_indent, segment) else {
            return found;
        };
        found = Some((index + 1, indent + 1));
        from = index + 1;
        parent_indent = Some(indent);
    }
    found
}

/// The line of key `name` among the direct children of the block that
/// starts at `from` (children are indented deeper than `parent_indent`).
fn find_child(
    lines: &[&str],
    from: usize,
    parent_indent: Option<usize>,
    name: &str,
) -> Option<(usize, usize)> {
    let mut child_indent = None;
    for (index, line) in lines.iter().enumerate().skip(from) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if parent_indent.is_some_and(|p| indent <= p) {
            return None;
        }
        let level = *child_indent.get_or_insert(indent);
        if indent == level && key_of(trimmed) == Some(name) {
            return Some((index, indent));
        }
    }
    None
}

fn key_of(line: &str) -> Option<&str> {
    let (key, _) = line.split_once(':')?;
    Some(key.trim().trim_matches(|c| c == '"' || c == '\''))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_at_their_own_level() {
        let text =
            "types:\n  a:\n    inputs:\n      prompt: {}\n    prompt: hi\n  b:\n    model: m\n";
        assert_eq!(locate(text, &["types", "a", "prompt"]), Some((5, 5)));
        assert_eq!(locate(text, &["types", "b", "model"]), Some((7, 5)));
        assert_eq!(locate(text, &["types", "b", "nothing"]), Some((6, 3)));
        assert_eq!(locate(text, &["nope"]), None);
    }
}
