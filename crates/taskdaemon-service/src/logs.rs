//! Reading log files: the last lines of a process's output, the last line a
//! loop logged, a chunk of output from an offset (so a reader polling a log
//! gets each byte once), and following a log as it grows. Only the end is
//! read, however long the file. A log that rotates (see
//! [`taskdaemon_workspace::logfile`]) reads as one stream: its rotated
//! copies, oldest first, then the live file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use taskdaemon_workspace::Workspace;
use taskdaemon_workspace::logfile::rotations;

/// The last `lines` lines of a log, reaching into its rotated copies when
/// the live file holds fewer. A missing log has no lines.
pub fn tail_log(path: &Path, lines: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let files: Vec<PathBuf> = rotations(path)
        .into_iter()
        .chain([path.to_owned()])
        .rev()
        .collect();
    for file in files {
        let have = line_count(&out);
        if have >= lines {
            break;
        }
        let chunk = match tail_lines(&file, lines - have) {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut joined = chunk;
        if !joined.is_empty() && !joined.ends_with(b"\n") && !out.is_empty() {
            // A line cut by rotation continues in the newer file.
            joined.extend_from_slice(&out);
            out = joined;
            continue;
        }
        joined.extend_from_slice(&out);
        out = joined;
    }
    Ok(out)
}

/// Lines in `bytes`, counting a final line without a newline.
fn line_count(bytes: &[u8]) -> usize {
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
    newlines + usize::from(!bytes.is_empty() && !bytes.ends_with(b"\n"))
}

/// The whole log: its rotated copies, oldest first, then the live file.
/// Returns the bytes and a cursor at their end, to follow from.
pub fn read_whole_log(path: &Path) -> io::Result<(Vec<u8>, LogCursor)> {
    let mut bytes = Vec::new();
    for copy in rotations(path) {
        match File::open(&copy) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let mut cursor = LogCursor::new(path);
    bytes.extend(cursor.read_new()?);
    Ok((bytes, cursor))
}

/// A reader's place in a growing log that may rotate: what was appended
/// since the last read comes back once, including what was written to the
/// old file just before it was rotated away.
#[derive(Debug, Clone)]
pub struct LogCursor {
    path: PathBuf,
    /// The file read last (device, inode), if any was.
    file: Option<(u64, u64)>,
    offset: u64,
}

impl LogCursor {
    /// A cursor at the start of the live file.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            file: None,
            offset: 0,
        }
    }

    /// A cursor at the end of the live file as it is now.
    pub fn at_end(path: &Path) -> io::Result<Self> {
        let mut cursor = Self::new(path);
        match std::fs::metadata(path) {
            Ok(meta) => {
                cursor.file = Some((meta.dev(), meta.ino()));
                cursor.offset = meta.len();
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(cursor)
    }

    /// The log this cursor reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was written since the last call.
    pub fn read_new(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let live = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        let meta = live.metadata()?;
        let id = (meta.dev(), meta.ino());
        if let Some(old) = self.file.filter(|old| *old != id) {
            // Rotated since the last read: finish the old file where it now
            // lives, then any newer copies whole, then the live file from 0.
            let copies = rotations(&self.path);
            let at = copies
                .iter()
                .position(|copy| std::fs::metadata(copy).is_ok_and(|m| (m.dev(), m.ino()) == old));
            if let Some(at) = at {
                if let Ok(mut file) = File::open(&copies[at]) {
                    file.seek(SeekFrom::Start(self.offset))?;
                    file.read_to_end(&mut out)?;
                }
                for newer in &copies[at + 1..] {
                    if let Ok(mut file) = File::open(newer) {
                        // The file opened above as the live one, rotated
                        // since: it is read below, from its start.
                        let copy = file.metadata()?;
                        if (copy.dev(), copy.ino()) == id {
                            break;
                        }
                        file.read_to_end(&mut out)?;
                    }
                }
            }
            self.offset = 0;
        }
        // Truncated in place (rotation with no copies kept): start over.
        if meta.len() < self.offset {
            self.offset = 0;
        }
        let mut live = live;
        live.seek(SeekFrom::Start(self.offset))?;
        let read = (&mut live)
            .take(meta.len() - self.offset)
            .read_to_end(&mut out)?;
        self.offset += read as u64;
        self.file = Some(id);
        Ok(out)
    }
}

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
                // Rotated copies count: the tail may start before this file.
                let bytes = tail_log(&path, lines).map_err(failed)?;
                (len.saturating_sub(bytes.len() as u64), Ok(bytes))
            }
            _ => (0, read_range(&path, 0, len)),
        };
        let bytes = bytes.map_err(failed)?;
        Ok(LogChunk {
            id,
            path: path.display().to_string(),
            offset,
            // A tail that began in a rotated copy still ends at this file's end.
            next_offset: (offset + bytes.len() as u64).min(len),
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

    #[test]
    fn a_rotating_log_reads_as_one_stream() {
        use taskdaemon_workspace::logfile::RotatingFile;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout.log");
        let mut log = RotatingFile::open(&path, 12, 3).unwrap();
        let (mut followed, mut cursor) = read_whole_log(&path).unwrap();
        assert!(followed.is_empty());
        for n in 0..10 {
            log.write_all(format!("line {n}\n").as_bytes()).unwrap();
            // Read after every other write, so some rotations happen unseen.
            if n % 2 == 1 {
                followed.extend(cursor.read_new().unwrap());
            }
        }
        let expected: String = (0..10).map(|n| format!("line {n}\n")).collect();
        assert_eq!(String::from_utf8(followed).unwrap(), expected);

        // Three copies of one line each and the live file: the last four.
        assert_eq!(
            String::from_utf8(tail_log(&path, 3).unwrap()).unwrap(),
            "line 7\nline 8\nline 9\n"
        );
        let (whole, _) = read_whole_log(&path).unwrap();
        assert_eq!(
            String::from_utf8(whole).unwrap(),
            "line 6\nline 7\nline 8\nline 9\n"
        );
        assert!(
            tail_log(&dir.path().join("missing.log"), 5)
                .unwrap()
                .is_empty()
        );
    }
}
