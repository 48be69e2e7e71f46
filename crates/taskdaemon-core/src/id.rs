//! Human task ids: `PREFIX-N`.
//!
//! `N` comes from one counter shared by every prefix in a workspace, so ids
//! never collide across tools and their order is the order of creation
//! (`CLAUDE-1`, `GEMINI-2`, `TASK-3`). The prefix is the upper-cased tool name,
//! or `TASK` when no tool is given.
//!
//! Clones of one workspace that sync through git each run their own counter,
//! so two of them would mint the same `TASK-13`. The `hash` scheme
//! ([`IdScheme::Hash`]) gives `PREFIX-XXXXXXXXXX` instead: ten Crockford
//! base-32 characters (50 bits) taken from the task's random UUID, so clones
//! never agree on an id except by a chance of about n²/2⁵¹ for n tasks.

use std::fmt;
use std::str::FromStr;

/// The prefix used when a task is created without `--tool`.
pub const DEFAULT_PREFIX: &str = "TASK";

/// Longest accepted tool name / prefix.
const MAX_PREFIX_LEN: usize = 32;

/// How new tracked tasks are numbered (`[tracked] ids` in the config).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IdScheme {
    /// `PREFIX-N` from the workspace's counter: short, in creation order.
    #[default]
    Counter,
    /// `PREFIX-XXXXXXXXXX` from the task's UUID: no two clones collide.
    Hash,
}

/// Characters of a hash id: Crockford's base 32 (no I, L, O, U).
const HASH_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in the hash part of an id (5 bits each).
pub const HASH_LEN: usize = 10;

/// The hash id of a task whose UUID has the random bits `entropy`:
/// `PREFIX-` and the low 50 bits in base 32.
pub fn hash_id(tool: Option<&str>, entropy: u128) -> Result<String, IdError> {
    let prefix = prefix_for_tool(tool)?;
    let hash: String = (0..HASH_LEN)
        .rev()
        .map(|i| HASH_ALPHABET[((entropy >> (5 * i)) & 0x1f) as usize] as char)
        .collect();
    Ok(format!("{prefix}-{hash}"))
}

/// The stored spelling of an id: human ids and hash ids upper-case (so
/// `claude-3` names `CLAUDE-3` and `task-7h3k…` names `TASK-7H3K…`);
/// anything else is kept as written.
pub fn canonical_id(id: &str) -> String {
    if let Ok(human) = id.parse::<HumanId>() {
        return human.to_string();
    }
    match id.rsplit_once('-') {
        Some((prefix, hash)) if is_hash(hash) && prefix_for_tool(Some(prefix)).is_ok() => {
            id.to_ascii_uppercase()
        }
        _ => id.to_owned(),
    }
}

fn is_hash(text: &str) -> bool {
    text.len() == HASH_LEN
        && text
            .bytes()
            .all(|b| HASH_ALPHABET.contains(&b.to_ascii_uppercase()))
}

/// A malformed tool name or id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "invalid tool name '{0}': use 1 to 32 letters, digits, '_' or '-', starting with a letter"
    )]
    InvalidTool(String),
    #[error("invalid task id '{0}': expected PREFIX-N such as TASK-3 or CLAUDE-12")]
    InvalidId(String),
}

/// A human id such as `CLAUDE-12`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HumanId {
    prefix: String,
    number: u64,
}

impl HumanId {
    /// Builds the id for counter value `number` and the given tool.
    pub fn for_tool(tool: Option<&str>, number: u64) -> Result<Self, IdError> {
        Ok(Self {
            prefix: prefix_for_tool(tool)?,
            number,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn number(&self) -> u64 {
        self.number
    }
}

impl fmt::Display for HumanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.prefix, self.number)
    }
}

impl FromStr for HumanId {
    type Err = IdError;

    /// Parses `PREFIX-N`, case-insensitively for the prefix (`claude-3` is `CLAUDE-3`).
    fn from_str(text: &str) -> Result<Self, IdError> {
        let invalid = || IdError::InvalidId(text.to_owned());
        let (prefix, number) = text.rsplit_once('-').ok_or_else(invalid)?;
        let number: u64 = number.parse().map_err(|_| invalid())?;
        if !number_is_canonical(text, number) {
            return Err(invalid());
        }
        let prefix = prefix_for_tool(Some(prefix)).map_err(|_| invalid())?;
        Ok(Self { prefix, number })
    }
}

fn number_is_canonical(text: &str, number: u64) -> bool {
    text.ends_with(&format!("-{number}"))
}

/// The id prefix for a tool: its name upper-cased, `TASK` when absent.
pub fn prefix_for_tool(tool: Option<&str>) -> Result<String, IdError> {
    let Some(tool) = tool else {
        return Ok(DEFAULT_PREFIX.to_owned());
    };
    let valid = !tool.is_empty()
        && tool.len() <= MAX_PREFIX_LEN
        && tool.starts_with(|c: char| c.is_ascii_alphabetic())
        && tool
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(IdError::InvalidTool(tool.to_owned()));
    }
    Ok(tool.to_ascii_uppercase())
}

/// Normalises a tool name for storage and filtering (`Claude` and `claude` are one tool).
pub fn normalize_tool(tool: &str) -> Result<String, IdError> {
    prefix_for_tool(Some(tool)).map(|p| p.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tool_gives_prefix() {
        assert_eq!(
            HumanId::for_tool(Some("claude"), 1).unwrap().to_string(),
            "CLAUDE-1"
        );
        assert_eq!(HumanId::for_tool(None, 3).unwrap().to_string(), "TASK-3");
    }

    #[test]
    fn parse_is_case_insensitive_and_strict() {
        let id: HumanId = "claude-12".parse().unwrap();
        assert_eq!(id.to_string(), "CLAUDE-12");
        for bad in [
            "",
            "CLAUDE",
            "CLAUDE-",
            "-3",
            "CLAUDE-03",
            "CLA UDE-3",
            "1X-2",
            "X-+3",
        ] {
            assert!(
                bad.parse::<HumanId>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn bad_tool_names_are_rejected() {
        assert!(prefix_for_tool(Some("")).is_err());
        assert!(prefix_for_tool(Some("9lives")).is_err());
        assert!(prefix_for_tool(Some("a/b")).is_err());
        assert_eq!(prefix_for_tool(Some("gemini-cli")).unwrap(), "GEMINI-CLI");
    }

    #[test]
    fn hash_ids_are_prefixed_base32() {
        let id = hash_id(Some("claude"), 0x3_ffff_ffff_ffff).unwrap();
        assert_eq!(id, "CLAUDE-ZZZZZZZZZZ");
        assert_eq!(hash_id(None, 1).unwrap(), "TASK-0000000001");
        assert_eq!(canonical_id("task-7h3kx9m2qa"), "TASK-7H3KX9M2QA");
        assert_eq!(canonical_id("claude-12"), "CLAUDE-12");
        assert_eq!(
            canonical_id("task-7h3kx9m2qu"),
            "task-7h3kx9m2qu",
            "U is not base 32"
        );
        assert_eq!(canonical_id("my-build"), "my-build");
    }

    proptest! {
        #[test]
        fn hash_ids_are_canonical_and_distinct_for_distinct_bits(a in 0u128..(1 << 50), b in 0u128..(1 << 50)) {
            let (x, y) = (hash_id(None, a).unwrap(), hash_id(None, b).unwrap());
            prop_assert_eq!(canonical_id(&x.to_lowercase()), x.clone());
            prop_assert_eq!(x == y, a == b);
        }

        #[test]
        fn display_parse_round_trip(tool in "[a-zA-Z][a-zA-Z0-9_-]{0,20}", n in 0u64..u64::MAX) {
            let id = HumanId::for_tool(Some(&tool), n).unwrap();
            let parsed: HumanId = id.to_string().parse().unwrap();
            prop_assert_eq!(parsed, id);
        }
    }
}
