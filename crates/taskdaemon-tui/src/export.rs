//! Export of the Records view as shown (search and filter applied): a JSON
//! array of events, or CSV with one event per line. The file is written
//! atomically, so a failed export leaves nothing half-written.

use std::path::Path;

use taskdaemon_core::Event;
use taskdaemon_core::time::to_rfc3339;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Csv,
}

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "seq,at,task,actor,kind,message";

/// Renders `events` in `format`.
pub fn render(events: &[&Event], format: ExportFormat) -> Result<Vec<u8>, String> {
    match format {
        ExportFormat::Json => {
            let mut out = serde_json::to_vec_pretty(events).map_err(|e| e.to_string())?;
            out.push(b'\n');
            Ok(out)
        }
        ExportFormat::Csv => {
            let mut out = String::from(CSV_HEADER);
            out.push('\n');
            for e in events {
                let fields = [
                    e.seq.to_string(),
                    to_rfc3339(e.at),
                    e.task_id.clone().unwrap_or_default(),
                    e.actor.clone(),
                    e.kind.to_string(),
                    e.message.clone(),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            Ok(out.into_bytes())
        }
    }
}

/// Writes `events` to `path`; returns how many were written.
pub fn write(events: &[&Event], format: ExportFormat, path: &Path) -> Result<usize, String> {
    let bytes = render(events, format)?;
    taskdaemon_workspace::write_atomic(path, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(events.len())
}

/// Quotes a field when it holds a comma, quote or line break (RFC 4180).
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\nbye"), "\"say \"\"hi\"\"\nbye\"");
    }
}
