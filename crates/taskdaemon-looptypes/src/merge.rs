//! Inheritance: layers merged in order (base first), with provenance.
//!
//! The rule, for each key a layer sets: a map merges into the inherited map
//! key by key (recursively); anything else (a scalar or a list) replaces the
//! inherited value; `null` removes the inherited key. Provenance records, for
//! every leaf of the result, the layer that set it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The file (`<builtin>` for the built-in types).
    pub file: String,
    /// The type whose definition set it.
    #[serde(rename = "type")]
    pub type_name: String,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.type_name, self.file)
    }
}

/// Dotted leaf path -> the layer that set it.
pub type Provenance = BTreeMap<String, Source>;

/// Merges `layer` into `base`, recording provenance under `prefix`.
pub fn merge(
    base: &mut Map<String, Value>,
    layer: &Map<String, Value>,
    source: &Source,
    provenance: &mut Provenance,
    prefix: &str,
) {
    for (key, value) in layer {
        let path = join(prefix, key);
        match (base.get_mut(key), value) {
            (_, Value::Null) => {
                base.remove(key);
                forget(provenance, &path);
            }
            (Some(Value::Object(inherited)), Value::Object(child)) => {
                if !child.is_empty() {
                    // The inherited map is no longer an empty leaf of its own.
                    provenance.remove(&path);
                }
                merge(inherited, child, source, provenance, &path);
            }
            _ => {
                forget(provenance, &path);
                record(value, source, provenance, &path);
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Drops provenance of `path` and everything under it.
fn forget(provenance: &mut Provenance, path: &str) {
    let below = format!("{path}.");
    provenance.retain(|k, _| k != path && !k.starts_with(&below));
}

fn record(value: &Value, source: &Source, provenance: &mut Provenance, path: &str) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                if !child.is_null() {
                    record(child, source, provenance, &join(path, key));
                }
            }
        }
        _ => {
            provenance.insert(path.to_owned(), source.clone());
        }
    }
}

/// `value` with every `null` inside maps removed (a fresh layer's nulls
/// mean "remove the inherited key"; with nothing inherited they mean nothing).
pub fn strip_nulls(value: &mut Value) {
    if let Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
        for child in map.values_mut() {
            strip_nulls(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn src(name: &str) -> Source {
        Source {
            file: "f".into(),
            type_name: name.into(),
        }
    }

    #[test]
    fn scalars_override_maps_merge_lists_replace_null_removes() {
        let mut base = json!({"a": 1, "m": {"x": 1, "y": 2}, "l": [1, 2], "gone": {"k": 1}})
            .as_object()
            .cloned()
            .unwrap();
        let mut prov = Provenance::new();
        let layer0 = base.clone();
        base.clear();
        merge(&mut base, &layer0, &src("base"), &mut prov, "");
        let child = json!({"a": 2, "m": {"y": 3, "z": 4}, "l": [9], "gone": null});
        merge(
            &mut base,
            child.as_object().unwrap(),
            &src("child"),
            &mut prov,
            "",
        );
        assert_eq!(
            Value::Object(base),
            json!({"a": 2, "m": {"x": 1, "y": 3, "z": 4}, "l": [9]})
        );
        let by: Vec<(&str, &str)> = prov
            .iter()
            .map(|(k, v)| (k.as_str(), v.type_name.as_str()))
            .collect();
        assert_eq!(
            by,
            [
                ("a", "child"),
                ("l", "child"),
                ("m.x", "base"),
                ("m.y", "child"),
                ("m.z", "child")
            ]
        );
    }
}
