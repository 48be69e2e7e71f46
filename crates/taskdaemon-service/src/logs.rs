//! Reading log files: the last lines of a process's output, the last line a
//! loop logged (only the end is read, however long the file), and a chunk of
//! output from an offset, so a reader polling a log gets each byte once.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;
use taskdaemon_workspace::Workspace;

use crate::{Result, Service, ServiceError};

/// Most bytes one [`Service::read_log`] returns; read on from `next_offset`.
pub const MAX_LOG_CHUNK: u64 = 256 * 1024;

/// Part of a process's output log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogChunk {
    pub id: String,
    pub path: String,
    /// Where `text` starts in the file.
    pub offset: u64,
    /// Pass as `since` to read only what comes after this chunk.
    pub next_offset: u64,
    /// The file's length when read.
    pub len: u64,
    /// The bytes read (invalid UTF-8 replaced).
    pub text: String,
}

impl Service {
    /// A process's output (stderr's with `stderr`): the last `tail` lines,
    /// or what follows byte `since` (at most [`MAX_LOG_CHUNK`] bytes), or the
    /// whole file up to that limit. A log not written yet reads as empty.
    pub fn read_log(
        &self,
        id: &str,
        stderr: bool,
        tail: Option<usize>,
        since: Option<u64>,
    ) -> Result<LogChunk> {
        let (id, path) = self.log_path(id, stderr)?;
        let failed =
            |e: io::Error| ServiceError::Failed(format!("cannot read {}: {e}", path.display()));
        let len = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(failed(e)),
        };
        let (offset, bytes) = match (tail, since) {
            (_, Some(since)) => (since.min(len), read_range(&path, since.min(len), len)),
            (Some(lines), None) if len > 0 => {
                let bytes = tail_lines(&path, lines).map_err(failed)?;
                (len - bytes.len() as u64, Ok(bytes))
            }
            _ => (0, read_range(&path, 0, len)),
        };
        let bytes = bytes.map_err(failed)?;
        Ok(LogChunk {
            id,
            path: path.display().to_string(),
            offset,
            next_offset: offset + bytes.len() as u64,
            len,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

/// Up to [`MAX_LOG_CHUNK`] bytes of `path` from `from`, not past `len`.
fn read_range(path: &Path, from: u64, len: u64) -> io::Result<Vec<u8>> {
    let end = len.min(from.saturating_add(MAX_LOG_CHUNK));
    if end <= from {
        return Ok(Vec::new());
    }
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::with_capacity((end - from) as usize);
    file.take(end - from).read_to_end(&mut bytes)?;
    Ok(bytes)
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
    fn a_range_stops_at_the_chunk_limit_and_the_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, vec![b'x'; (MAX_LOG_CHUNK + 10) as usize]).unwrap();
        assert_eq!(
            read_range(&path, 0, MAX_LOG_CHUNK + 10).unwrap().len() as u64,
            MAX_LOG_CHUNK
        );
        assert_eq!(
            read_range(&path, MAX_LOG_CHUNK, MAX_LOG_CHUNK + 10)
                .unwrap()
                .len(),
            10
        );
        assert!(read_range(&path, 50, 20).unwrap().is_empty());
    }

    #[test]
    fn tail_of_a_file_without_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc").unwrap();
        assert_eq!(tail_lines(&path, 2).unwrap(), b"b\nc");
    }
}
