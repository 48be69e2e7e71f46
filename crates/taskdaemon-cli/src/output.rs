//! Shared rendering for human output: tables, colours, log tails.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, SeekFrom};
use std::path::Path;

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

/// The last `lines` lines of a file, reading only as much of its end as needed.
pub fn tail_lines(path: &Path, lines: usize) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    const CHUNK: u64 = 8192;
    loop {
        let newlines = buf.iter().filter(|&&b| b == b'\n').count();
        // One newline more than lines wanted, not counting a final one.
        let needed = lines + usize::from(buf.last() == Some(&b'\n'));
        if newlines > needed || start == 0 {
            break;
        }
        let read_from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (start - read_from) as usize];
        file.seek(SeekFrom::Start(read_from))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        start = read_from;
    }
    let body_end = if buf.last() == Some(&b'\n') {
        buf.len() - 1
    } else {
        buf.len()
    };
    let mut count = 0;
    let mut cut = 0;
    for (i, &b) in buf[..body_end].iter().enumerate().rev() {
        if b == b'\n' {
            count += 1;
            if count == lines {
                cut = i + 1;
                break;
            }
        }
    }
    if lines == 0 {
        return Ok(Vec::new());
    }
    Ok(buf[cut..].to_vec())
}

/// The last non-empty line of a file, if any.
pub fn last_line(path: &Path) -> Option<String> {
    let tail = tail_lines(path, 3).ok()?;
    String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn tail_reads_the_last_lines_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut file = File::create(&path).unwrap();
        for i in 0..5000 {
            writeln!(file, "line {i}").unwrap();
        }
        let tail = String::from_utf8(tail_lines(&path, 3).unwrap()).unwrap();
        assert_eq!(tail, "line 4997\nline 4998\nline 4999\n");
        assert_eq!(tail_lines(&path, 0).unwrap(), b"");
        assert_eq!(
            tail_lines(&path, 100_000).unwrap().len() as u64,
            file.metadata().unwrap().len()
        );
        assert_eq!(last_line(&path).as_deref(), Some("line 4999"));
    }

    #[test]
    fn tail_of_a_file_without_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc").unwrap();
        assert_eq!(tail_lines(&path, 2).unwrap(), b"b\nc");
    }

    #[test]
    fn table_aligns_visible_text() {
        let out = table(
            &["ID", "STATUS"],
            &[vec!["TASK-1".into(), "\x1b[32mrunning\x1b[0m".into()]],
        );
        assert_eq!(strip_ansi(&out), "ID      STATUS\nTASK-1  running\n");
    }
}
