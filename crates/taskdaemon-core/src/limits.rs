//! Per-task resource limits (`spawn --max-memory 2G --max-cpu-time 10m
//! --max-files N --nice N`, or the same in a queue document's front matter),
//! and the size syntax they are written in.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::format_duration;

/// What a supervised command may use. Every limit is optional; none set
/// means the command runs as the shim does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResourceLimits {
    /// Resident memory of the whole process group, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<u64>,
    /// CPU time of the command, in milliseconds (whole seconds are enforced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu_time_ms: Option<u64>,
    /// Open file descriptors per process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u64>,
    /// Scheduling niceness, -20 (first) to 19 (last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nice: Option<i32>,
}

impl ResourceLimits {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The reason a task ended when it went over its memory limit.
    pub fn memory_exceeded(&self, rss: u64) -> Option<String> {
        let max = self.max_memory?;
        (rss > max).then(|| {
            format!(
                "killed: over its memory limit (--max-memory {}, resident {})",
                format_size(max),
                format_size(rss)
            )
        })
    }

    /// The reason a task ended when it used up its CPU time.
    pub fn cpu_time_exceeded(&self) -> Option<String> {
        let max = self.max_cpu_time_ms?;
        Some(format!(
            "killed: used up its CPU time (--max-cpu-time {})",
            format_duration(Duration::from_millis(max))
        ))
    }

    /// Checks values a kernel would refuse, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(nice) = self.nice
            && !(-20..=19).contains(&nice)
        {
            return Err(format!("nice must be between -20 and 19, not {nice}"));
        }
        if self.max_memory == Some(0) {
            return Err("max_memory must be more than 0".to_owned());
        }
        if self.max_files == Some(0) {
            return Err("max_files must be more than 0".to_owned());
        }
        if self.max_cpu_time_ms.is_some_and(|ms| ms < 1000) {
            return Err("max_cpu_time must be at least 1s".to_owned());
        }
        Ok(())
    }
}

impl fmt::Display for ResourceLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(bytes) = self.max_memory {
            parts.push(format!("memory {}", format_size(bytes)));
        }
        if let Some(ms) = self.max_cpu_time_ms {
            parts.push(format!(
                "cpu {}",
                format_duration(Duration::from_millis(ms))
            ));
        }
        if let Some(files) = self.max_files {
            parts.push(format!("files {files}"));
        }
        if let Some(nice) = self.nice {
            parts.push(format!("nice {nice}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Parses a size: a number of bytes, or one with a binary unit `K`, `M`,
/// `G` or `T` (`KiB`, `MB` and lower case read the same).
pub fn parse_size(input: &str) -> Result<u64, String> {
    let text = input.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{input}` is not a size (try 512M or 2G)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "`{other}` in `{input}` is not a size unit (K, M, G, T)"
            ));
        }
    };
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("`{input}` is out of range"));
    }
    Ok(bytes as u64)
}

/// A size for people: `2.0G`, `512M`, `900K`, `12B`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            let value = bytes as f64 / scale as f64;
            return if value.fract() == 0.0 {
                format!("{value:.0}{unit}")
            } else {
                format!("{value:.1}{unit}")
            };
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("2X").unwrap_err().contains("not a size unit"));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert!(parse_size("0").is_err());
        assert_eq!(format_size(2 << 30), "2G");
        assert_eq!(format_size(1536), "1.5K");
        assert_eq!(format_size(12), "12B");
    }

    #[test]
    fn limits_validate_and_explain() {
        let limits = ResourceLimits {
            max_memory: Some(64 << 20),
            max_cpu_time_ms: Some(600_000),
            max_files: Some(64),
            nice: Some(5),
        };
        assert_eq!(limits.validate(), Ok(()));
        assert_eq!(limits.to_string(), "memory 64M, cpu 10m, files 64, nice 5");
        assert_eq!(limits.memory_exceeded(64 << 20), None);
        assert!(
            limits
                .memory_exceeded(65 << 20)
                .unwrap()
                .contains("--max-memory 64M")
        );
        assert!(
            ResourceLimits {
                nice: Some(40),
                ..limits
            }
            .validate()
            .unwrap_err()
            .contains("nice")
        );
        assert!(ResourceLimits::default().is_empty());
    }
}
