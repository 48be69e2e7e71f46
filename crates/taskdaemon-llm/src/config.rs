//! Which provider to talk to, where, and with which key.
//!
//! Keys come only from the environment (`ANTHROPIC_API_KEY`,
//! `OPENAI_API_KEY`), never from config files, so they never land on disk.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::LlmError;
use crate::secret::ApiKey;

/// A model provider (wire protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI chat completions, or any compatible server.
    OpenAi,
}

impl Provider {
    /// Environment variable holding the key.
    pub fn key_var(self) -> &'static str {
        match self {
            Provider::Anthropic => "ANTHROPIC_API_KEY",
            Provider::OpenAi => "OPENAI_API_KEY",
        }
    }

    /// Environment variable that overrides the base URL.
    pub fn base_url_var(self) -> &'static str {
        match self {
            Provider::Anthropic => "ANTHROPIC_BASE_URL",
            Provider::OpenAi => "OPENAI_BASE_URL",
        }
    }

    /// The public endpoint.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::Anthropic => "https://api.anthropic.com",
            Provider::OpenAi => "https://api.openai.com",
        }
    }

    /// Every variable that may hold a key, so child processes can be stripped of them.
    pub const KEY_VARS: [&'static str; 2] = ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"];
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
        })
    }
}

/// A provider name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider '{0}' (expected 'anthropic' or 'openai')")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "anthropic" | "claude" => Ok(Provider::Anthropic),
            "openai" | "openai-compatible" | "openai_compatible" => Ok(Provider::OpenAi),
            _ => Err(UnknownProvider(s.to_string())),
        }
    }
}

/// Everything a client needs to reach a provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The provider.
    pub provider: Provider,
    /// Base URL without a trailing slash or `/v1`, e.g. `https://api.anthropic.com`.
    pub base_url: String,
    /// The key (redacted in `Debug`).
    pub api_key: ApiKey,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response before the attempt fails.
    pub read_timeout: Duration,
}

impl ProviderConfig {
    /// Resolves from the process environment: base URL from `base_url` (a config
    /// value) or the provider's `*_BASE_URL` variable; the key from `*_API_KEY`.
    pub fn from_env(provider: Provider, base_url: Option<&str>) -> Result<Self, LlmError> {
        Self::resolve(provider, base_url, |name| std::env::var(name).ok())
    }

    /// Like [`ProviderConfig::from_env`] with an explicit environment lookup.
    pub fn resolve(
        provider: Provider,
        base_url: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LlmError> {
        let key = env(provider.key_var())
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| {
                LlmError::Config(format!(
                    "{} is not set (API keys are read only from the environment)",
                    provider.key_var()
                ))
            })?;
        let base = base_url
            .map(str::to_string)
            .or_else(|| env(provider.base_url_var()).filter(|u| !u.trim().is_empty()))
            .unwrap_or_else(|| provider.default_base_url().to_string());
        Ok(ProviderConfig {
            provider,
            base_url: normalize_base_url(&base)?,
            api_key: ApiKey::new(key.trim()),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
        })
    }
}

/// Trims trailing slashes and a trailing `/v1` (OpenAI-style base URLs carry
/// it; we append the versioned path ourselves).
fn normalize_base_url(url: &str) -> Result<String, LlmError> {
    let url = url.trim().trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(LlmError::Config(format!(
            "base URL must start with http:// or https://: {url}"
        )));
    }
    Ok(url.strip_suffix("/v1").unwrap_or(url).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn key_only_from_env_and_base_url_precedence() {
        let e = [
            ("ANTHROPIC_API_KEY", "sk-test-abcdef"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/"),
        ];
        let cfg = ProviderConfig::resolve(Provider::Anthropic, None, env(&e)).unwrap();
        assert_eq!(cfg.base_url, "http://127.0.0.1:9");
        assert_eq!(cfg.api_key.expose(), "sk-test-abcdef");
        assert!(!format!("{cfg:?}").contains("sk-test"));
        let cfg =
            ProviderConfig::resolve(Provider::Anthropic, Some("http://h:1"), env(&e)).unwrap();
        assert_eq!(cfg.base_url, "http://h:1");
        let err = ProviderConfig::resolve(Provider::OpenAi, None, env(&e)).unwrap_err();
        assert!(err.to_string().contains("OPENAI_API_KEY"));
    }

    #[test]
    fn openai_base_url_drops_v1_and_bad_urls_fail() {
        let e = [("OPENAI_API_KEY", "k-123456")];
        let cfg =
            ProviderConfig::resolve(Provider::OpenAi, Some("https://x.test/v1/"), env(&e)).unwrap();
        assert_eq!(cfg.base_url, "https://x.test");
        assert!(ProviderConfig::resolve(Provider::OpenAi, Some("ftp://x"), env(&e)).is_err());
    }

    #[test]
    fn provider_names() {
        assert_eq!("anthropic".parse::<Provider>(), Ok(Provider::Anthropic));
        assert_eq!("OpenAI".parse::<Provider>(), Ok(Provider::OpenAi));
        let err = "gemini".parse::<Provider>().unwrap_err();
        assert!(err.to_string().contains("gemini"));
    }
}
