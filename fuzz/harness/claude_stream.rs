//! Claude Code's `stream-json` output, read as the claude-code executor
//! reads a task's stdout log: whole, and line by line.

use taskdaemon_queue::StreamSummary;

/// Whether the stream held any line of a known type.
pub fn run(data: &[u8]) -> Result<(), String> {
    let summary = StreamSummary::read(data);
    let _ = summary.error();
    let mut by_line = StreamSummary::default();
    for line in String::from_utf8_lossy(data).lines() {
        by_line.push_line(line);
    }
    let _ = by_line.error();
    if summary.events == 0 {
        return Err("no stream-json events".to_owned());
    }
    Ok(())
}
