//! Seed 002's task-monitor `config.json` (`version`, `settings`,
//! `project_workspace`, `queues`), read for `queues import-config`.
//!
//! This module owns the seed format and its mapping onto our config: it
//! reads the JSON strictly (an unknown field or a bad value is an error
//! naming its JSON path, such as `queues[1].added_at`) and returns the new
//! config.toml text in one piece, so the caller writes all of it or nothing.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::config::{Config, NewQueueEntry, add_queue_entry, valid_queue_id};

/// One queue of the seed's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedQueue {
    pub id: String,
    pub path: PathBuf,
    pub description: Option<String>,
    /// When the seed added it, as the seed wrote it.
    pub added_at: Option<String>,
}

/// The seed's settings that have a counterpart in `[queues]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedSettings {
    pub watch_enabled: Option<bool>,
    pub watch_debounce_ms: Option<u64>,
    pub watch_patterns: Option<Vec<String>>,
    pub max_attempts: Option<u32>,
    /// Read and checked, but taskdaemon has no such switch: a document runs
    /// once its content is stable, whatever its hash.
    pub enable_file_hash: Option<bool>,
}

/// The whole seed config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedConfig {
    pub version: Option<String>,
    pub settings: SeedSettings,
    pub project_workspace: Option<PathBuf>,
    pub queues: Vec<SeedQueue>,
}

/// What importing changes: the config text and what each queue became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedImport {
    pub config_text: String,
    /// `(queue, absolute folder, newly added)`; `false`: already registered there.
    pub queues: Vec<(SeedQueue, PathBuf, bool)>,
    /// The `[queues]` settings set, as `key = value` lines.
    pub settings: Vec<String>,
}

type Fields<'a> = &'a Map<String, Value>;

fn object<'a>(value: &'a Value, path: &str) -> Result<Fields<'a>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{path}: expected an object, found {}", kind(value)))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn only(fields: Fields<'_>, allowed: &[&str], path: &str) -> Result<(), String> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(format!(
            "{}{unknown}: unknown field (known: {})",
            prefix(path),
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}.")
    }
}

fn string(value: &Value, path: &str) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{path}: expected a string, found {}", kind(value)))
}

fn optional_string(fields: Fields<'_>, key: &str, path: &str) -> Result<Option<String>, String> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => string(v, &format!("{}{key}", prefix(path))).map(Some),
    }
}

fn boolean(value: &Value, path: &str) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("{path}: expected true or false, found {}", kind(value)))
}

fn unsigned(value: &Value, path: &str, min: u64, max: u64) -> Result<u64, String> {
    match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{path}: expected a whole number from {min} to {max}, found {value}"
        )),
    }
}

/// The seed writes `datetime.now().isoformat()`: `2026-01-05T10:22:33.123456`,
/// perhaps with an offset. Checks the date and time part.
fn check_timestamp(text: &str, path: &str) -> Result<(), String> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let shaped = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b' '))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16);
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "{path}: '{text}' is not an ISO 8601 time such as 2026-01-05T10:22:33"
        ))
    }
}

impl SeedConfig {
    /// Parses the seed's JSON; errors name the JSON path of the problem.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            format!(
                "not valid JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            )
        })?;
        let top = object(&value, "(top level)")?;
        only(
            top,
            &[
                "version",
                "settings",
                "project_workspace",
                "queues",
                "created_at",
                "updated_at",
            ],
            "",
        )?;
        for key in ["created_at", "updated_at"] {
            if let Some(t) = optional_string(top, key, "")? {
                check_timestamp(&t, key)?;
            }
        }
        let settings = match top.get("settings") {
            None | Some(Value::Null) => SeedSettings::default(),
            Some(v) => parse_settings(v)?,
        };
        let queues = match top.get("queues") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, q)| parse_queue(q, &format!("queues[{i}]")))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!("queues: expected an array, found {}", kind(other)));
            }
        };
        let mut seen = std::collections::HashSet::new();
        for (i, q) in queues.iter().enumerate() {
            if !seen.insert(q.id.as_str()) {
                return Err(format!("queues[{i}].id: '{}' appears twice", q.id));
            }
        }
        Ok(Self {
            version: optional_string(top, "version", "")?,
            settings,
            project_workspace: optional_string(top, "project_workspace", "")?.map(PathBuf::from),
            queues,
        })
    }

    /// Applies the seed config to config.toml `text` of the workspace at
    /// `root`: `[queues]` settings set, one `[[queue]]` per seed queue (a
    /// relative path is taken from `project_workspace`, else from `root`).
    /// A queue id already registered at the same folder is kept; at another
    /// folder it is an error.
    pub fn apply(&self, text: &str, root: &Path) -> Result<SeedImport, String> {
        let current = Config::parse(text)?;
        let base = self.project_workspace.as_deref().unwrap_or(root);
        let mut settings = Vec::new();
        let mut updated = self.set_settings(text, &mut settings)?;
        let mut queues = Vec::new();
        for (i, q) in self.queues.iter().enumerate() {
            let folder = if q.path.is_absolute() {
                q.path.clone()
            } else {
                base.join(&q.path)
            };
            if let Some(existing) = current.queue_entry(&q.id) {
                let at = if existing.path.is_absolute() {
                    existing.path.clone()
                } else {
                    root.join(&existing.path)
                };
                if same_folder(&at, &folder) {
                    queues.push((q.clone(), folder, false));
                    continue;
                }
                return Err(format!(
                    "queues[{i}].id: '{}' is already a queue here, at {} (not {}); remove it first (`queues rm --queue-id {}`)",
                    q.id,
                    at.display(),
                    folder.display(),
                    q.id
                ));
            }
            // Inside the workspace the entry stays relative, so the workspace can move.
            let recorded = folder.strip_prefix(root).unwrap_or(&folder).to_owned();
            let entry = NewQueueEntry {
                id: &q.id,
                path: &recorded,
                description: q.description.as_deref(),
                concurrency: None,
            };
            updated = add_queue_entry(&updated, &entry).map_err(|e| format!("queues[{i}]: {e}"))?;
            queues.push((q.clone(), folder, true));
        }
        Config::parse(&updated)?;
        Ok(SeedImport {
            config_text: updated,
            queues,
            settings,
        })
    }

    fn set_settings(&self, text: &str, applied: &mut Vec<String>) -> Result<String, String> {
        let s = &self.settings;
        let mut values: Vec<(&str, toml_edit::Value)> = Vec::new();
        if let Some(v) = s.watch_enabled {
            values.push(("watch_enabled", v.into()));
        }
        if let Some(v) = s.watch_debounce_ms {
            values.push(("watch_debounce_ms", (v as i64).into()));
        }
        if let Some(v) = &s.watch_patterns {
            values.push((
                "watch_patterns",
                toml_edit::Value::Array(v.iter().map(String::as_str).collect()),
            ));
        }
        if let Some(v) = s.max_attempts {
            values.push(("max_attempts", i64::from(v).into()));
        }
        if values.is_empty() {
            return Ok(text.to_owned());
        }
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
        let table = doc
            .entry("queues")
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
            .as_table_mut()
            .ok_or("`queues` in the config is not a [queues] table")?;
        for (key, value) in values {
            applied.push(format!("{key} = {value}"));
            table.insert(key, toml_edit::value(value));
        }
        Ok(doc.to_string())
    }
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn parse_settings(value: &Value) -> Result<SeedSettings, String> {
    let fields = object(value, "settings")?;
    only(
        fields,
        &[
            "watch_enabled",
            "watch_debounce_ms",
            "watch_patterns",
            "watch_recursive",
            "max_attempts",
            "enable_file_hash",
        ],
        "settings",
    )?;
    let mut settings = SeedSettings::default();
    for (key, v) in fields {
        let path = format!("settings.{key}");
        match key.as_str() {
            "watch_enabled" => settings.watch_enabled = Some(boolean(v, &path)?),
            "watch_debounce_ms" => {
                settings.watch_debounce_ms = Some(unsigned(v, &path, 0, 3_600_000)?);
            }
            "watch_patterns" => settings.watch_patterns = Some(patterns(v, &path)?),
            "watch_recursive" => {
                if boolean(v, &path)? {
                    return Err(format!(
                        "{path}: true is not supported: taskdaemon runs the documents in a queue's pending/ folder itself, not in its subfolders"
                    ));
                }
            }
            "max_attempts" => {
                settings.max_attempts = Some(unsigned(v, &path, 1, 1000)? as u32);
            }
            "enable_file_hash" => settings.enable_file_hash = Some(boolean(v, &path)?),
            _ => unreachable!("checked by only()"),
        }
    }
    Ok(settings)
}

fn patterns(value: &Value, path: &str) -> Result<Vec<String>, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "{path}: expected an array of patterns, found {}",
            kind(value)
        ));
    };
    if items.is_empty() {
        return Err(format!("{path}: must name at least one pattern"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let p = string(p, &format!("{path}[{i}]"))?;
            if p.trim().is_empty() {
                return Err(format!("{path}[{i}]: is empty"));
            }
            Ok(p)
        })
        .collect()
}

fn parse_queue(value: &Value, path: &str) -> Result<SeedQueue, String> {
    let fields = object(value, path)?;
    only(fields, &["id", "path", "description", "added_at"], path)?;
    let id = match fields.get("id") {
        Some(v) => string(v, &format!("{path}.id"))?,
        None => return Err(format!("{path}.id: missing")),
    };
    if !valid_queue_id(&id) {
        return Err(format!(
            "{path}.id: '{id}' is not a valid queue id (use letters, digits, '-', '_' or '.', starting with a letter or digit)"
        ));
    }
    let folder = match fields.get("path") {
        Some(v) => string(v, &format!("{path}.path"))?,
        None => return Err(format!("{path}.path: missing")),
    };
    if folder.trim().is_empty() {
        return Err(format!("{path}.path: is empty"));
    }
    let added_at = optional_string(fields, "added_at", path)?;
    if let Some(t) = &added_at {
        check_timestamp(t, &format!("{path}.added_at"))?;
    }
    Ok(SeedQueue {
        id,
        path: PathBuf::from(folder),
        description: optional_string(fields, "description", path)?.filter(|d| !d.is_empty()),
        added_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like the seed's `MonitorConfig` as it saves it.
    const SEED: &str = r#"{
  "version": "2.0",
  "settings": {
    "watch_enabled": true,
    "watch_debounce_ms": 250,
    "watch_patterns": ["task-*.md"],
    "watch_recursive": false,
    "max_attempts": 2,
    "enable_file_hash": true
  },
  "project_workspace": "/home/admin/workspaces/datachat",
  "queues": [
    {"id": "ad-hoc", "path": "/home/admin/workspaces/datachat/tasks/ad-hoc", "description": "Quick tasks", "added_at": "2026-01-05T10:22:33.123456"}
  ],
  "created_at": "2026-01-05T10:20:00.000001",
  "updated_at": "2026-01-05T10:22:33.123456"
}"#;

    #[test]
    fn the_seeds_own_shape_parses_field_for_field() {
        let seed = SeedConfig::parse(SEED).unwrap();
        assert_eq!(seed.version.as_deref(), Some("2.0"));
        assert_eq!(seed.settings.watch_debounce_ms, Some(250));
        assert_eq!(seed.settings.max_attempts, Some(2));
        assert_eq!(seed.settings.enable_file_hash, Some(true));
        assert_eq!(seed.queues[0].id, "ad-hoc");
        assert_eq!(
            seed.queues[0].added_at.as_deref(),
            Some("2026-01-05T10:22:33.123456")
        );
    }

    #[test]
    fn errors_name_the_json_path() {
        let cases = [
            (
                SEED.replace("\"max_attempts\": 2", "\"max_attempts\": 0"),
                "settings.max_attempts:",
            ),
            (
                SEED.replace("\"watch_recursive\": false", "\"watch_recursive\": true"),
                "settings.watch_recursive:",
            ),
            (
                SEED.replace(
                    "\"added_at\": \"2026-01-05T10:22:33.123456\"",
                    "\"added_at\": \"yesterday\"",
                ),
                "queues[0].added_at:",
            ),
            (
                SEED.replace("\"description\"", "\"colour\": 1, \"description\""),
                "queues[0].colour: unknown field",
            ),
            (
                SEED.replace("\"version\"", "\"verison\": 1, \"version\""),
                "verison: unknown field",
            ),
            (
                SEED.replace(
                    "\"watch_patterns\": [\"task-*.md\"]",
                    "\"watch_patterns\": []",
                ),
                "settings.watch_patterns:",
            ),
            (
                SEED.replace("\"id\": \"ad-hoc\"", "\"id\": \"bad id\""),
                "queues[0].id:",
            ),
        ];
        for (text, want) in cases {
            let e = SeedConfig::parse(&text).unwrap_err();
            assert!(e.starts_with(want), "{e} (wanted {want})");
        }
    }

    #[test]
    fn applying_sets_queue_settings_and_adds_relative_entries() {
        let root = Path::new("/home/admin/workspaces/datachat");
        let seed = SeedConfig::parse(SEED).unwrap();
        let import = seed.apply("", root).unwrap();
        let config = Config::parse(&import.config_text).unwrap();
        assert_eq!(config.queues.watch_debounce_ms, 250);
        assert_eq!(config.queues.max_attempts, 2);
        let entry = config.queue_entry("ad-hoc").unwrap();
        assert_eq!(entry.path, Path::new("tasks/ad-hoc"));
        assert_eq!(entry.description.as_deref(), Some("Quick tasks"));
        assert!(import.queues[0].2, "newly added");
        // Again: the same queue at the same folder is kept, not refused.
        let again = seed.apply(&import.config_text, root).unwrap();
        assert!(!again.queues[0].2);
    }
}
