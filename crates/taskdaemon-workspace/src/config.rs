//! `.taskdaemon/config.toml`: settings, validated with errors that name the line.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use taskdaemon_core::duration::parse_duration;

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

[registry]
# Mirror the process table to a JSON file for tools that read files.
enabled = true
# Relative to the workspace root.
path = ".claude/process_registry.json"

[loops]
# LLM loops running at once; more wait for a slot.
max_concurrent = 50
# Model calls per minute per provider, shared by all loops (a token bucket).
requests_per_minute = 1000
# Open the circuit breaker after this many provider failures in a row, for breaker_cooldown.
breaker_failures = 5
breaker_cooldown = "30s"
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
    pub registry: RegistryConfig,
    pub loops: LoopsConfig,
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
        Ok(config)
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
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

fn human_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_to_the_defaults() {
        assert_eq!(Config::parse(DEFAULT_CONFIG).unwrap(), Config::default());
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
    fn partial_files_fill_in_defaults() {
        let config = Config::parse("[registry]\nenabled = false\n").unwrap();
        assert!(!config.registry.enabled);
        assert_eq!(config.daemon, DaemonConfig::default());
    }
}
