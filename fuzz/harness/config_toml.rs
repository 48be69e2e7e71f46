//! `.taskdaemon/config.toml`: parsing and validation, and for a file that
//! parses, the in-place edits `queues add` and `queues rm` make.

use std::path::Path;

use taskdaemon_workspace::{Config, add_queue_entry, remove_queue_entry};

/// Whether the text is a valid config.
pub fn run(data: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    let config = Config::parse(text)?;
    if let Ok(added) = add_queue_entry(text, "fuzz-q", Path::new("queues/fuzz"), Some("d")) {
        let _ = remove_queue_entry(&added, "fuzz-q");
    }
    if let Some(first) = config.queue.first() {
        let _ = remove_queue_entry(text, first.id());
    }
    Ok(())
}
