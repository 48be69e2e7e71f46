//! Git branch names: the one rule for which names taskdaemon accepts.
//!
//! The config's `[pipeline] target_branch` and every branch the git crate
//! passes to `git` are checked here, so a typo is refused with a reason before
//! anything runs, and no name can be mistaken for a command-line option.

/// Checks `name` against git's ref-name rules (`git check-ref-format --branch`),
/// returning why it is refused.
pub fn check_branch_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a branch name cannot be empty".to_owned());
    }
    if name.starts_with('-') {
        return Err(format!("'{name}': a branch name cannot start with '-'"));
    }
    if name == "@" || name == "HEAD" {
        return Err(format!("'{name}' is not a branch name"));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c.is_ascii_control() || " ~^:?*[\\".contains(c))
    {
        return Err(format!(
            "'{name}': a branch name cannot contain {}",
            match c {
                ' ' => "spaces".to_owned(),
                c if c.is_ascii_control() => "control characters".to_owned(),
                c => format!("'{c}'"),
            }
        ));
    }
    for bad in ["..", "@{", "//"] {
        if name.contains(bad) {
            return Err(format!("'{name}': a branch name cannot contain '{bad}'"));
        }
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return Err(format!(
            "'{name}': a branch name cannot start or end with '/' or end with '.'"
        ));
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return Err(format!(
            "'{name}': no part of a branch name may start with '.' or end with '.lock'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in ["main", "td/PLAN-3/add-oauth", "release/1.2", "feature_x"] {
            assert_eq!(check_branch_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn names_git_refuses_are_refused_with_a_reason() {
        for (name, why) in [
            ("", "empty"),
            ("-rf", "'-'"),
            ("a b", "spaces"),
            ("a..b", "'..'"),
            ("a~1", "'~'"),
            ("x/", "'/'"),
            ("x.lock", ".lock"),
            ("a/.hidden", "start with '.'"),
            ("a@{1}", "'@{'"),
            ("HEAD", "not a branch"),
        ] {
            let err = check_branch_name(name).unwrap_err();
            assert!(err.contains(why), "{name}: {err}");
        }
    }
}
