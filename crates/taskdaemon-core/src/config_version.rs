//! Versions of the loop-type configuration (`taskdaemon.yml`) the daemon
//! has loaded: what `config history` lists and what each loop records it
//! runs with. The resolved types are opaque JSON here, as loop specs are.

use serde::{Deserialize, Serialize};

use crate::time::{Millis, serde_rfc3339};

/// How alerts about the loop-type configuration begin (events with no
/// task): the daemon writes them, `status` finds the current one by it.
pub const CONFIG_ALERT_PREFIX: &str = "loop types:";

/// A configuration about to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConfigVersion {
    /// Equal digests mean equal configurations; recording the newest
    /// version's digest again records nothing.
    pub digest: String,
    /// The file it came from; `None` for the built-in types alone.
    pub file: Option<String>,
    /// The loop-type names, for listings.
    pub type_names: Vec<String>,
    /// The resolved types, as JSON.
    pub types: serde_json::Value,
}

/// A recorded configuration version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigVersion {
    /// 1, 2, 3, ... in the order loaded.
    pub version: i64,
    pub digest: String,
    pub file: Option<String>,
    #[serde(with = "serde_rfc3339")]
    pub loaded_at: Millis,
    pub type_names: Vec<String>,
    /// The resolved types (absent in listings).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub types: serde_json::Value,
}
