//! Durations as users type them (`500ms`, `5s`, `2m`, `1h30m`).
//!
//! The one parser for every `--grace`, `--hang-timeout` and config duration, so
//! that they all accept the same spellings and fail with the same message.

use std::time::Duration;

/// A duration the user wrote that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("invalid duration '{input}': {reason} (examples: 500ms, 5s, 2m, 1h30m)")]
pub struct DurationError {
    pub input: String,
    pub reason: String,
}

/// Parses a human duration. A bare number is taken as seconds, since that is
/// what people mean by `--grace 5`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(DurationError {
            input: input.to_owned(),
            reason: "it is empty".to_owned(),
        });
    }
    if let Ok(secs) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(trimmed).map_err(|e| DurationError {
        input: input.to_owned(),
        reason: e.to_string(),
    })
}

/// Formats a duration the way [`parse_duration`] reads it back.
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_spellings() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
    }

    #[test]
    fn rejects_garbage_with_the_input_in_the_message() {
        let err = parse_duration("5x").unwrap_err();
        assert!(err.to_string().contains("'5x'"), "{err}");
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-3s").is_err());
    }

    #[test]
    fn format_round_trips() {
        let d = Duration::from_millis(90_500);
        assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
    }
}
