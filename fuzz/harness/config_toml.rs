//! `.taskdaemon/config.toml`: parsing and validation, and for a file that
//! parses, the in-place edits `queues add` and `queues rm` make.

use std::path::Path;

use taskdaemon_workspace::{Config, NewQueueEntry, add_queue_entry, remove_queue_entry};

/// Whether the text is a valid config.
pub fn run(data: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    let config = Config::parse(text)?;
    let entry = NewQueueEntry {
        id: "fuzz-q",
        path: Path::new("queues/fuzz"),
        description: Some("d"),
        concurrency: Some(2),
    };
    if let Ok(added) = add_queue_entry(text, &entry) {
        let _ = remove_queue_entry(&added, "fuzz-q");
    }
    if let Some(first) = config.queue.first() {
        let _ = remove_queue_entry(text, first.id());
    }
    Ok(())
}
