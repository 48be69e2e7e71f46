//! `.taskdaemon/config.toml`: settings, validated with errors that name the line.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use taskdaemon_core::duration::parse_duration;
use toml::Spanned;

/// The config file a fresh workspace gets: every setting, at its default, explained.
pub const DEFAULT_CONFIG: &str = r#"# taskdaemon workspace configuration. Durations read like 500ms, 5s, 10m, 1h.

[daemon]
# How often the watchdog samples CPU, memory and child count of supervised processes.
sample_interval = "2s"
# Alert when a process shows no output and uses no CPU for this long.
hang_timeout = "10m"
# Rotate .taskdaemon/daemon.log when it grows past this many bytes; keep this many old logs.
log_max_bytes = 10485760
log_keep = 5

[logs]
# Each supervised process's stdout and stderr: a file rotates when it reaches
# max_bytes, keeping `backups` older copies (stdout.log.1 is the newest).
max_bytes = 52428800
backups = 3
# All process logs of the workspace together: past this, the daemon deletes the
# logs of the tasks that ended longest ago (running tasks keep theirs). 0: no cap.
total_max_bytes = 2147483648

[registry]
# Mirror the process table to a JSON file for tools that read files.
enabled = true
# Relative to the workspace root.
path = ".claude/process_registry.json"

[autodev]
# Seed 003's task files: current.json (with current.json.bak, the copy before
# the last write), memory.json and history/. Relative to the workspace root.
dir = ".auto-dev/tasks"

[queues]
# Watch each queue's pending/ folder and run the task documents dropped there.
watch_enabled = true
# A document must be unchanged this long before it runs (half-written files wait).
watch_debounce_ms = 500
# Which file names in pending/ are task documents.
watch_patterns = ["task-*.md"]
# A larger document is never run: it goes to failed/ with the reason. Symlinks,
# directories, FIFOs, sockets and devices named like documents are never run either.
max_document_bytes = 1048576
# Attempts per document unless its front matter says max_attempts.
max_attempts = 3
# Wait before the second attempt; doubles for each further one (capped at 60s).
retry_backoff = "2s"

[history]
# The daemon moves events older than this into compressed archive chunks (hourly);
# they stay in `history` and `search`. `archive = false` keeps every event live.
archive = true
archive_after = "30d"

[loops]
# LLM loops running at once; more wait for a slot.
max_concurrent = 50
# Model calls per minute per provider, shared by all loops (a token bucket).
requests_per_minute = 1000
# Open the circuit breaker after this many provider failures in a row, for breaker_cooldown.
breaker_failures = 5
breaker_cooldown = "30s"

[pipeline]
# The branch finished specs are merged into; default: the branch checked out
# when the plan is created.
# target_branch = "main"
# "ff": rebase a finished spec's branch on the target and fast-forward the
# target to it; "merge": rebase, then record a merge commit (--no-ff).
merge = "ff"
# How often the target branch is checked for new commits (running specs are
# then rebased between iterations); it is also checked on demand.
main_poll = "30s"
# How often the scheduler looks for specs ready to start (with jitter), besides
# whenever events arrive.
scheduler_interval = "10s"
# On a rebase conflict, start a Ralph iteration asked to resolve it, rather
# than only pausing the spec with an alert naming the files.
resolve_conflicts = false

[executors]
# The Claude Code CLI; default: `claude` found on PATH.
# claude_path = "/usr/local/bin/claude"

[store]
# Keep the state in PostgreSQL instead of .taskdaemon/state.db, so workers on
# several hosts share it. --database-url and TASKDAEMON_DATABASE_URL win over this.
# database_url = "postgres://taskdaemon@db.example:5432/taskdaemon"

[tracked]
# How new tracked tasks get their ids: "counter" gives TASK-12 (short, in
# creation order); "hash" gives TASK-7H3KX9M2QA, so clones that sync their
# exports through git never mint the same id.
ids = "counter"

[web]
# Serve the dashboard and HTTP API from the daemon (`taskdaemon dashboard` prints the URL).
# listen = "127.0.0.1:7777"
# A non-loopback address needs this too; without TLS the token travels in clear.
# allow_remote = false
# Serve HTTPS (PEM files, relative to the workspace root unless absolute).
# tls_cert = "certs/dashboard.crt"
# tls_key = "certs/dashboard.key"

# Folder queues: `taskdaemon queues add PATH --id ID` adds one here.
[[queue]]
id = "ad-hoc"
path = "tasks/ad-hoc"
description = "Tasks dropped in by hand"

[[queue]]
id = "planned"
path = "tasks/planning"
description = "Planned work, run in order"
"#;

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The message from the TOML parser names the line, column and field.
    #[error("invalid config {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// The whole config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub logs: LogsConfig,
    pub registry: RegistryConfig,
    pub autodev: AutodevConfig,
    pub queues: QueuesConfig,
    pub executors: ExecutorsConfig,
    pub history: HistoryConfig,
    pub loops: LoopsConfig,
    pub pipeline: PipelineConfig,
    pub store: StoreConfig,
    pub web: WebConfig,
    pub tracked: TrackedConfig,
    /// `[[queue]]` entries, in file order.
    pub queue: Vec<QueueEntry>,
}

/// `[queues]`: settings every folder queue shares.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueuesConfig {
    pub watch_enabled: bool,
    pub watch_debounce_ms: u64,
    pub watch_patterns: Vec<String>,
    /// Documents larger than this are refused (not read, not run).
    pub max_document_bytes: u64,
    pub max_attempts: u32,
    #[serde(deserialize_with = "human_duration")]
    pub retry_backoff: Duration,
}

impl Default for QueuesConfig {
    fn default() -> Self {
        Self {
            watch_enabled: true,
            watch_debounce_ms: 500,
            watch_patterns: vec!["task-*.md".to_owned()],
            max_document_bytes: 1024 * 1024,
            max_attempts: 3,
            retry_backoff: Duration::from_secs(2),
        }
    }
}

/// `[history]`: archiving old events.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    pub archive: bool,
    #[serde(deserialize_with = "human_duration")]
    pub archive_after: Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            archive: true,
            archive_after: Duration::from_secs(30 * 86_400),
        }
    }
}

/// `[executors]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorsConfig {
    /// The `claude` binary; none: `claude` on PATH.
    pub claude_path: Option<PathBuf>,
}

/// `[store]`: where the state lives.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// A `postgres://` URL; none: the workspace's SQLite file.
    pub database_url: Option<String>,
}

/// `[tracked]`: tracked work.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackedConfig {
    /// How new tracked tasks' ids are minted.
    pub ids: taskdaemon_core::id::IdScheme,
}

/// `[web]`: the dashboard and HTTP API the daemon serves.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// `HOST:PORT` the daemon serves the dashboard on; none: no web server.
    pub listen: Option<String>,
    /// Allow a non-loopback `listen` address.
    pub allow_remote: bool,
    /// Serve HTTPS with this PEM certificate chain (relative to the
    /// workspace root unless absolute) ...
    pub tls_cert: Option<PathBuf>,
    /// ... and this PEM private key.
    pub tls_key: Option<PathBuf>,
}

/// One `[[queue]]`: a folder queue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueEntry {
    /// Names the queue in commands and results; letters, digits, `-`, `_`, `.`.
    pub id: Spanned<String>,
    /// The queue folder, relative to the workspace root unless absolute.
    pub path: PathBuf,
    #[serde(default)]
    pub description: Option<String>,
    /// How many of its documents run at once. They start in queue order
    /// (priority, then name) whatever this is; with 1 (the default) each
    /// also waits for the one before it to end.
    #[serde(default = "one_at_a_time")]
    pub concurrency: u32,
}

/// The most documents one queue runs at once.
pub const MAX_QUEUE_CONCURRENCY: u32 = 1024;

fn one_at_a_time() -> u32 {
    1
}

impl QueueEntry {
    pub fn id(&self) -> &str {
        self.id.get_ref()
    }
}

/// A `[[queue]]` entry to add (see [`add_queue_entry`]).
#[derive(Debug, Clone, Copy)]
pub struct NewQueueEntry<'a> {
    pub id: &'a str,
    /// As written to the file: relative to the workspace root unless absolute.
    pub path: &'a Path,
    pub description: Option<&'a str>,
    /// None leaves the key out (one at a time).
    pub concurrency: Option<u32>,
}

/// Why `concurrency` cannot be a queue's concurrency, if it cannot.
fn check_concurrency(concurrency: u32) -> Result<(), String> {
    if (1..=MAX_QUEUE_CONCURRENCY).contains(&concurrency) {
        Ok(())
    } else {
        Err(format!(
            "must be between 1 and {MAX_QUEUE_CONCURRENCY}, not {concurrency}"
        ))
    }
}

/// Whether `id` is a usable queue id.
pub fn valid_queue_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// `[daemon]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    #[serde(deserialize_with = "human_duration")]
    pub sample_interval: Duration,
    #[serde(deserialize_with = "human_duration")]
    pub hang_timeout: Duration,
    pub log_max_bytes: u64,
    pub log_keep: u32,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            sample_interval: Duration::from_secs(2),
            hang_timeout: Duration::from_secs(600),
            log_max_bytes: 10 * 1024 * 1024,
            log_keep: 5,
        }
    }
}

/// `[logs]`: bounds on supervised processes' output files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Largest size of one stream's log file before it rotates (0: unbounded).
    pub max_bytes: u64,
    /// Rotated copies kept per stream.
    pub backups: u32,
    /// Cap on all process logs together; the oldest ended tasks' go first (0: none).
    pub total_max_bytes: u64,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            max_bytes: 50 * 1024 * 1024,
            backups: 3,
            total_max_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// `[registry]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    pub enabled: bool,
    pub path: PathBuf,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: PathBuf::from(".claude/process_registry.json"),
        }
    }
}

/// `[autodev]`: where seed 003's task files are written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutodevConfig {
    pub dir: PathBuf,
}

impl Default for AutodevConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(".auto-dev/tasks"),
        }
    }
}

/// `[loops]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoopsConfig {
    /// Loops running at once; more wait for a slot.
    pub max_concurrent: usize,
    /// Model calls per minute per provider, shared by every loop.
    pub requests_per_minute: u32,
    /// Consecutive provider failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls.
    #[serde(deserialize_with = "human_duration")]
    pub breaker_cooldown: Duration,
}

impl Default for LoopsConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 50,
            requests_per_minute: 1000,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// `[pipeline]`: plans worked out spec by spec in git worktrees.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Where finished specs are merged; none: the branch checked out when
    /// the plan is created.
    pub target_branch: Option<String>,
    pub merge: MergeMode,
    /// How often the target branch is checked for new commits.
    #[serde(deserialize_with = "human_duration")]
    pub main_poll: Duration,
    /// How often the scheduler looks for ready specs (besides on events).
    #[serde(deserialize_with = "human_duration")]
    pub scheduler_interval: Duration,
    /// Start a Ralph iteration to resolve a rebase conflict instead of only pausing.
    pub resolve_conflicts: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            target_branch: None,
            merge: MergeMode::default(),
            main_poll: Duration::from_secs(30),
            scheduler_interval: Duration::from_secs(10),
            resolve_conflicts: false,
        }
    }
}

/// `[pipeline] merge`: how a finished spec joins its target branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum MergeMode {
    /// `"ff"`: rebased on the target, which is fast-forwarded to it.
    #[default]
    #[serde(rename = "ff")]
    FastForward,
    /// `"merge"`: rebased, then a `--no-ff` merge commit.
    #[serde(rename = "merge")]
    MergeCommit,
}

impl Config {
    /// Reads `path`; a missing file means all defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses and validates config text; the error names line and field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Config = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        config.validate()?;
        config.validate_queues(text)?;
        Ok(config)
    }

    /// The `[[queue]]` entry with this id.
    pub fn queue_entry(&self, id: &str) -> Option<&QueueEntry> {
        self.queue.iter().find(|q| q.id() == id)
    }

    fn validate_queues(&self, text: &str) -> Result<(), String> {
        let q = &self.queues;
        if q.max_attempts == 0 {
            return Err("queues.max_attempts: must be at least 1".to_owned());
        }
        if q.watch_patterns.is_empty() || q.watch_patterns.iter().any(|p| p.trim().is_empty()) {
            return Err(
                "queues.watch_patterns: needs at least one non-empty pattern such as \"task-*.md\""
                    .to_owned(),
            );
        }
        if q.watch_patterns.iter().any(|p| p.contains('/')) {
            return Err(
                "queues.watch_patterns: patterns match file names, so they cannot contain '/'"
                    .to_owned(),
            );
        }
        if q.watch_debounce_ms > 600_000 {
            return Err("queues.watch_debounce_ms: at most 600000 (10 minutes)".to_owned());
        }
        let line_of = |entry: &QueueEntry| {
            let start = entry.id.span().start.min(text.len());
            text[..start].matches('\n').count() + 1
        };
        for (index, entry) in self.queue.iter().enumerate() {
            let line = line_of(entry);
            if !valid_queue_id(entry.id()) {
                return Err(format!(
                    "line {line}, queue[{index}].id: '{}' is not a valid queue id (use letters, digits, '-', '_' or '.', starting with a letter or digit)",
                    entry.id()
                ));
            }
            if entry.path.as_os_str().is_empty() {
                return Err(format!(
                    "line {line}, queue[{index}].path: must not be empty"
                ));
            }
            if let Err(why) = check_concurrency(entry.concurrency) {
                return Err(format!("line {line}, queue[{index}].concurrency: {why}"));
            }
            if let Some(first) = self.queue[..index].iter().find(|e| e.id() == entry.id()) {
                return Err(format!(
                    "line {line}, queue[{index}].id: queue '{}' is already defined on line {}",
                    entry.id(),
                    line_of(first)
                ));
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        if self.daemon.sample_interval < Duration::from_millis(50) {
            return Err("daemon.sample_interval: must be at least 50ms".to_owned());
        }
        if self.daemon.hang_timeout.is_zero() {
            return Err("daemon.hang_timeout: must be more than zero".to_owned());
        }
        if self.daemon.log_max_bytes < 4096 {
            return Err("daemon.log_max_bytes: must be at least 4096".to_owned());
        }
        if self.loops.max_concurrent == 0 || self.loops.max_concurrent > 10_000 {
            return Err("loops.max_concurrent: must be between 1 and 10000".to_owned());
        }
        if self.loops.requests_per_minute == 0 {
            return Err("loops.requests_per_minute: must be at least 1".to_owned());
        }
        if self.loops.breaker_failures == 0 {
            return Err("loops.breaker_failures: must be at least 1".to_owned());
        }
        let pipeline = &self.pipeline;
        if let Some(branch) = &pipeline.target_branch {
            taskdaemon_core::branch::check_branch_name(branch)
                .map_err(|reason| format!("pipeline.target_branch: {reason}"))?;
        }
        if pipeline.main_poll < Duration::from_secs(1) {
            return Err("pipeline.main_poll: must be at least 1s".to_owned());
        }
        if pipeline.scheduler_interval < Duration::from_millis(100) {
            return Err("pipeline.scheduler_interval: must be at least 100ms".to_owned());
        }
        if self.autodev.dir.as_os_str().is_empty() {
            return Err("autodev.dir: must not be empty".to_owned());
        }
        if self.registry.enabled && self.registry.path.as_os_str().is_empty() {
            return Err(
                "registry.path: must not be empty while the registry is enabled".to_owned(),
            );
        }
        Ok(())
    }
}

/// Turns the parser's error into one line: `line 4, column 19: <what>`.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().to_owned();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before.len() - line_start + 1;
            // Name the field: the key of the `key = value` line the error is on.
            let line_text = text[line_start..].lines().next().unwrap_or("");
            let key = line_text
                .split_once('=')
                .map(|(key, _)| key.trim())
                .filter(|key| !key.is_empty() && !message.contains(*key));
            match key {
                Some(key) => format!("line {line}, column {column}: {key}: {message}"),
                None => format!("line {line}, column {column}: {message}"),
            }
        }
        None => message,
    }
}

fn human_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// Adds a `[[queue]]` entry to config text, keeping its comments and layout.
/// Fails (naming the problem) when the id is invalid or taken.
pub fn add_queue_entry(text: &str, entry: &NewQueueEntry<'_>) -> Result<String, String> {
    let NewQueueEntry {
        id,
        path,
        description,
        concurrency,
    } = *entry;
    let current = Config::parse(text)?;
    if !valid_queue_id(id) {
        return Err(format!(
            "'{id}' is not a valid queue id (use letters, digits, '-', '_' or '.', starting with a letter or digit)"
        ));
    }
    if current.queue_entry(id).is_some() {
        return Err(format!("a queue with id '{id}' already exists"));
    }
    if let Some(concurrency) = concurrency {
        check_concurrency(concurrency).map_err(|why| format!("concurrency: {why}"))?;
    }
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let path = path
        .to_str()
        .ok_or_else(|| format!("{}: the path is not valid UTF-8", path.display()))?;
    let mut table = toml_edit::Table::new();
    table.insert("id", toml_edit::value(id));
    table.insert("path", toml_edit::value(path));
    if let Some(description) = description {
        table.insert("description", toml_edit::value(description));
    }
    if let Some(concurrency) = concurrency {
        table.insert("concurrency", toml_edit::value(i64::from(concurrency)));
    }
    match doc.entry("queue") {
        toml_edit::Entry::Occupied(mut entry) => match entry.get_mut().as_array_of_tables_mut() {
            Some(array) => array.push(table),
            None => {
                return Err("`queue` in the config is not a list of [[queue]] tables".to_owned());
            }
        },
        toml_edit::Entry::Vacant(entry) => {
            let mut array = toml_edit::ArrayOfTables::new();
            array.push(table);
            entry.insert(toml_edit::Item::ArrayOfTables(array));
        }
    }
    let updated = doc.to_string();
    Config::parse(&updated)?;
    Ok(updated)
}

/// Removes the `[[queue]]` entry with this id from config text.
pub fn remove_queue_entry(text: &str, id: &str) -> Result<String, String> {
    Config::parse(text)?;
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let Some(array) = doc
        .get_mut("queue")
        .and_then(toml_edit::Item::as_array_of_tables_mut)
    else {
        return Err(format!("no queue with id '{id}'"));
    };
    let before = array.len();
    array.retain(|table| table.get("id").and_then(|v| v.as_str()) != Some(id));
    if array.len() == before {
        return Err(format!("no queue with id '{id}'"));
    }
    if array.is_empty() {
        doc.remove("queue");
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_to_the_defaults() {
        let parsed = Config::parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(
            Config {
                queue: Vec::new(),
                ..parsed
            },
            Config::default(),
            "everything but the ad-hoc and planned queues is at its default"
        );
    }

    #[test]
    fn tracked_ids_are_counter_or_hash() {
        let config = Config::parse("[tracked]\nids = \"hash\"\n").unwrap();
        assert_eq!(config.tracked.ids, taskdaemon_core::id::IdScheme::Hash);
        let err = Config::parse("[tracked]\nids = \"uuid\"\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("uuid"), "{err}");
    }

    #[test]
    fn errors_name_line_and_field() {
        let err = Config::parse("[daemon]\nhang_timeout = \"10 parsecs\"\n").unwrap_err();
        assert!(err.starts_with("line 2,"), "{err}");
        assert!(err.contains("10 parsecs"), "{err}");

        let err = Config::parse("[daemon]\nsample_intervall = \"1s\"\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("sample_intervall"),
            "{err}"
        );

        let err = Config::parse("[daemon]\nsample_interval = \"1ms\"\n").unwrap_err();
        assert!(err.contains("daemon.sample_interval"), "{err}");
    }

    #[test]
    fn the_default_file_registers_the_ad_hoc_and_planned_queues() {
        let config = Config::parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(config.queue.len(), 2);
        assert_eq!(config.queue[0].id(), "ad-hoc");
        assert_eq!(config.queue[0].path, PathBuf::from("tasks/ad-hoc"));
        assert_eq!(config.queue[1].id(), crate::PLANNED_QUEUE);
        assert_eq!(
            config.queue[1].path,
            Path::new("tasks").join(crate::PLANNED_QUEUE_DIR)
        );
        assert_eq!(config.queues, QueuesConfig::default());
    }

    #[test]
    fn queue_errors_name_line_and_field() {
        let err = Config::parse("[queues]\nmax_attempts = 0\n").unwrap_err();
        assert!(err.contains("queues.max_attempts"), "{err}");
        let err = Config::parse("[queues]\nwatch_patterns = []\n").unwrap_err();
        assert!(err.contains("queues.watch_patterns"), "{err}");
        let err = Config::parse("[queues]\nwatch_debounce_ms = \"soon\"\n").unwrap_err();
        assert!(
            err.starts_with("line 2") && err.contains("watch_debounce_ms"),
            "{err}"
        );
        let text = "[[queue]]\nid = \"a\"\npath = \"x\"\n\n[[queue]]\nid = \"a\"\npath = \"y\"\n";
        let err = Config::parse(text).unwrap_err();
        assert!(
            err.starts_with("line 6, queue[1].id") && err.contains("line 2"),
            "{err}"
        );
        let err = Config::parse("[[queue]]\nid = \"a b\"\npath = \"x\"\n").unwrap_err();
        assert!(err.starts_with("line 2, queue[0].id"), "{err}");
        let err = Config::parse("[[queue]]\nid = \"a\"\n").unwrap_err();
        assert!(err.contains("path"), "{err}");
        let err = Config::parse("[[queue]]\nid = \"a\"\npath = \"x\"\ncolour = 1\n").unwrap_err();
        assert!(err.starts_with("line 4") && err.contains("colour"), "{err}");
    }

    fn entry<'a>(id: &'a str, path: &'a str) -> NewQueueEntry<'a> {
        NewQueueEntry {
            id,
            path: Path::new(path),
            description: None,
            concurrency: None,
        }
    }

    #[test]
    fn queues_are_added_and_removed_keeping_comments() {
        let docs = NewQueueEntry {
            description: Some("Docs"),
            ..entry("docs", "work/docs")
        };
        let added = add_queue_entry(DEFAULT_CONFIG, &docs).unwrap();
        assert!(added.contains("# Watch each queue"), "comments kept");
        let config = Config::parse(&added).unwrap();
        assert_eq!(config.queue.len(), 3);
        let docs = config.queue_entry("docs").unwrap();
        assert_eq!(docs.description.as_deref(), Some("Docs"));
        assert_eq!(docs.concurrency, 1, "one at a time unless asked");
        assert!(
            add_queue_entry(&added, &entry("docs", "x"))
                .unwrap_err()
                .contains("already exists")
        );
        assert!(add_queue_entry(&added, &entry("no/slash", "x")).is_err());
        let removed = remove_queue_entry(&added, "ad-hoc").unwrap();
        let removed = remove_queue_entry(&removed, "planned").unwrap();
        let config = Config::parse(&removed).unwrap();
        assert_eq!(
            config.queue.iter().map(QueueEntry::id).collect::<Vec<_>>(),
            ["docs"]
        );
        assert!(
            remove_queue_entry(&removed, "ad-hoc")
                .unwrap_err()
                .contains("no queue")
        );
        let empty = remove_queue_entry(&removed, "docs").unwrap();
        assert!(Config::parse(&empty).unwrap().queue.is_empty());
        let again = add_queue_entry(&empty, &entry("x", "x")).unwrap();
        assert_eq!(Config::parse(&again).unwrap().queue.len(), 1);
    }

    #[test]
    fn a_queue_s_concurrency_is_written_and_checked() {
        let wide = NewQueueEntry {
            concurrency: Some(8),
            ..entry("wide", "w")
        };
        let added = add_queue_entry(DEFAULT_CONFIG, &wide).unwrap();
        let config = Config::parse(&added).unwrap();
        assert_eq!(config.queue_entry("wide").unwrap().concurrency, 8);
        for bad in [0, MAX_QUEUE_CONCURRENCY + 1] {
            let refused = NewQueueEntry {
                concurrency: Some(bad),
                ..entry("wide2", "w2")
            };
            let err = add_queue_entry(&added, &refused).unwrap_err();
            assert!(err.starts_with("concurrency: must be between 1"), "{err}");
        }
        let text = "[[queue]]\nid = \"a\"\npath = \"x\"\n\n[[queue]]\nid = \"b\"\npath = \"y\"\nconcurrency = 0\n";
        let err = Config::parse(text).unwrap_err();
        assert!(
            err.starts_with("line 6, queue[1].concurrency: must be between 1 and 1024"),
            "{err}"
        );
        let err =
            Config::parse("[[queue]]\nid = \"a\"\npath = \"x\"\nconcurrency = -2\n").unwrap_err();
        assert!(
            err.starts_with("line 4") && err.contains("concurrency"),
            "{err}"
        );
    }

    #[test]
    fn loops_settings_are_checked() {
        let config = Config::parse("[loops]\nmax_concurrent = 500\n").unwrap();
        assert_eq!(config.loops.max_concurrent, 500);
        let err = Config::parse("[loops]\nmax_concurrent = 0\n").unwrap_err();
        assert!(err.contains("loops.max_concurrent"), "{err}");
        let err = Config::parse("[loops]\nmax_concurent = 5\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("max_concurent"),
            "{err}"
        );
        let err = Config::parse("[loops]\nmax_concurrent = \"many\"\n").unwrap_err();
        assert!(err.starts_with("line 2,"), "{err}");
    }

    #[test]
    fn pipeline_settings_are_read_and_checked() {
        let config = Config::parse(
            "[pipeline]\ntarget_branch = \"develop\"\nmerge = \"merge\"\nmain_poll = \"5s\"\nscheduler_interval = \"2s\"\nresolve_conflicts = true\n",
        )
        .unwrap();
        assert_eq!(
            config.pipeline,
            PipelineConfig {
                target_branch: Some("develop".to_owned()),
                merge: MergeMode::MergeCommit,
                main_poll: Duration::from_secs(5),
                scheduler_interval: Duration::from_secs(2),
                resolve_conflicts: true,
            }
        );
        assert_eq!(
            Config::parse(DEFAULT_CONFIG).unwrap().pipeline.merge,
            MergeMode::FastForward
        );

        let err = Config::parse("[pipeline]\nmerge = \"squash\"\n").unwrap_err();
        assert!(
            err.starts_with("line 2") && err.contains("merge") && err.contains("squash"),
            "{err}"
        );
        let err = Config::parse("[pipeline]\ntarget_branch = \"my branch\"\n").unwrap_err();
        assert!(
            err.starts_with("pipeline.target_branch") && err.contains("spaces"),
            "{err}"
        );
        let err = Config::parse("[pipeline]\nmain_poll = \"10ms\"\n").unwrap_err();
        assert!(err.contains("pipeline.main_poll"), "{err}");
        let err = Config::parse("[pipeline]\nscheduler_interval = \"1ms\"\n").unwrap_err();
        assert!(err.contains("pipeline.scheduler_interval"), "{err}");
        let err = Config::parse("[pipeline]\nmain_pol = \"5s\"\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("main_pol"), "{err}");
    }

    #[test]
    fn partial_files_fill_in_defaults() {
        let config = Config::parse("[registry]\nenabled = false\n").unwrap();
        assert!(!config.registry.enabled);
        assert_eq!(config.daemon, DaemonConfig::default());
    }
}
