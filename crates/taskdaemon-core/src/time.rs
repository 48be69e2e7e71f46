//! Timestamps as the store keeps them: milliseconds since the Unix epoch.
//!
//! Integers sort and compare cheaply in both SQLite and PostgreSQL; conversion to
//! RFC 3339 happens only at the edges (JSON output, human rendering).

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// The current wall-clock time in milliseconds.
pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

/// The current wall-clock time in microseconds since the Unix epoch: the
/// precision an exit's detection latency is measured with.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// Renders `millis` as RFC 3339 with millisecond precision (`2026-11-25T20:17:29.123Z`).
pub fn to_rfc3339(millis: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A point in time given as a duration ago (`2h`, `3d`) or an RFC 3339 time.
pub fn parse_since(text: &str) -> Result<Millis, String> {
    parse_since_at(text, now_millis())
}

/// [`parse_since`] with "now" given, so a duration ago is exact.
pub fn parse_since_at(text: &str, now: Millis) -> Result<Millis, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    let ago = crate::duration::parse_duration(text)
        .map_err(|_| format!("expected a duration such as 2h or an RFC 3339 time, got '{text}'"))?;
    Ok(now - ago.as_millis() as i64)
}

/// Renders an elapsed time compactly for humans: `45s`, `12m`, `3h05m`, `2d4h`.
pub fn format_age(millis: i64) -> String {
    let secs = (millis.max(0)) / 1000;
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Serde helpers that write [`Millis`] as RFC 3339 strings in JSON output.
pub mod serde_rfc3339 {
    use super::{Millis, to_rfc3339};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Millis, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&to_rfc3339(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Millis, D::Error> {
        let text = String::deserialize(deserializer)?;
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| t.timestamp_millis())
            .map_err(serde::de::Error::custom)
    }

    /// The same for optional timestamps (`null` when absent).
    pub mod option {
        use super::super::{Millis, to_rfc3339};
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            value: &Option<Millis>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(v) => serializer.serialize_some(&to_rfc3339(*v)),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Millis>, D::Error> {
            Option::<String>::deserialize(deserializer)?
                .map(|text| {
                    chrono::DateTime::parse_from_rfc3339(&text)
                        .map(|t| t.timestamp_millis())
                        .map_err(serde::de::Error::custom)
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_ago_or_a_time() {
        assert_eq!(
            parse_since("2026-01-02T03:04:05Z").unwrap(),
            1_767_323_045_000
        );
        let now = 1_767_323_045_000;
        assert_eq!(parse_since_at("2h", now).unwrap(), now - 7_200_000);
        // Without a given "now", the clock is read once, between these two readings.
        let before = now_millis();
        let since = parse_since("2h").unwrap();
        let after = now_millis();
        assert!((before - 7_200_000..=after - 7_200_000).contains(&since));
        assert!(
            parse_since("yesterday")
                .unwrap_err()
                .contains("'yesterday'")
        );
    }

    #[test]
    fn ages_are_compact() {
        assert_eq!(format_age(5_000), "5s");
        assert_eq!(format_age(125_000), "2m05s");
        assert_eq!(format_age(3_900_000), "1h05m");
        assert_eq!(format_age(90_000_000), "1d1h");
        assert_eq!(format_age(-10), "0s");
    }

    #[test]
    fn rfc3339_round_trips_through_millis() {
        let text = to_rfc3339(1_764_101_849_123);
        assert_eq!(text, "2025-11-25T20:17:29.123Z");
    }
}
