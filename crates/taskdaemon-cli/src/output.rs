//! Shared rendering for human output: tables, colours, log tails.

use std::io::{self, IsTerminal};

use taskdaemon_core::Status;

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Colours a status for a terminal; plain text otherwise.
pub fn status_cell(status: Status) -> String {
    if !io::stdout().is_terminal() || std::env::var_os("NO_COLOR").is_some() {
        return status.to_string();
    }
    let colour = match status {
        Status::Running => "32",
        Status::Succeeded => "36",
        Status::Failed | Status::Lost => "31",
        Status::Cancelled => "33",
        Status::Pending | Status::Blocked => "2",
    };
    format!("\x1b[{colour}m{status}\x1b[0m")
}

/// Renders rows as aligned columns under a header. Cells may hold colour
/// codes, so widths are measured on the visible text.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let visible = |cell: &str| strip_ansi(cell).chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(visible(cell));
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - visible(cell) + 2));
            }
        }
        out.push('\n');
    };
    push_row(header.to_vec());
    for row in rows {
        push_row(row.iter().map(String::as_str).collect());
    }
    out
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_visible_text() {
        let out = table(
            &["ID", "STATUS"],
            &[vec!["TASK-1".into(), "\x1b[32mrunning\x1b[0m".into()]],
        );
        assert_eq!(strip_ansi(&out), "ID      STATUS\nTASK-1  running\n");
    }
}
