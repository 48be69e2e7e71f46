//! Task documents (Markdown with YAML front matter), parsed as the queue
//! worker does: as the front matter says, then as each executor would.

use taskdaemon_queue::{ExecutorKind, TaskDocument};

/// Whether the text is a document that runs as its front matter says.
pub fn run(data: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    let _ = TaskDocument::priority_of(text);
    for kind in ExecutorKind::all() {
        let _ = TaskDocument::parse_as(text, Some(kind.as_str()));
    }
    let doc = TaskDocument::parse(text).map_err(|e| e.to_string())?;
    let _ = doc.option::<String>("model");
    let _ = doc.option::<Vec<String>>("allowed_tools");
    let _ = doc.option::<serde_json::Value>("command");
    Ok(())
}
