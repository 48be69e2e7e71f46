//! Reading the end of log files: the last lines of a process's output, the
//! last line a loop logged. Only the end is read, however long the file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use taskdaemon_workspace::Workspace;

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

/// The last line of whichever of a process's stdout and stderr was written last.
pub(crate) fn newest_log_line(workspace: &Workspace, id: &str) -> Option<String> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let (out, err) = (workspace.stdout_log(id), workspace.stderr_log(id));
    let first = if modified(&err) > modified(&out) {
        &err
    } else {
        &out
    };
    last_line(first).or_else(|| last_line(if first == &out { &err } else { &out }))
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
}
