//! API keys that cannot leak through formatting.

use std::fmt;

/// An API key. `Debug` and `Display` print `[REDACTED]`; the only way to the
/// raw value is [`ApiKey::expose`], used when building request headers and
/// when scrubbing the key out of error text.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a raw key.
    pub fn new(raw: impl Into<String>) -> Self {
        ApiKey(raw.into())
    }

    /// The raw key, for the `x-api-key` / `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `[REDACTED]`, so a
    /// server that echoes the request back cannot smuggle the key into an error.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, "[REDACTED]")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_key() {
        let key = ApiKey::new("sk-ant-secret-123456");
        assert!(!format!("{key:?}").contains("secret"));
        assert!(!format!("{key}").contains("secret"));
        assert!(!format!("{:#?}", Some(&key)).contains("secret"));
        assert_eq!(key.expose(), "sk-ant-secret-123456");
        assert_eq!(
            key.scrub("bad key sk-ant-secret-123456!"),
            "bad key [REDACTED]!"
        );
    }
}
