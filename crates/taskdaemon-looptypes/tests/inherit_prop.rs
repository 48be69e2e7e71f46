//! Random inheritance chains resolve exactly as a small reference
//! implementation of the documented rule says: scalars override (the most
//! derived type that sets one wins), maps merge key by key, lists replace,
//! `null` removes an inherited key.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use taskdaemon_looptypes::{LoopTypes, Network};

const TOOLS: [&str; 6] = [
    "read_file",
    "write_file",
    "edit_file",
    "list_dir",
    "search_files",
    "run_command",
];

/// What one level of a chain sets (None = not set).
#[derive(Debug, Clone)]
struct Level {
    model: Option<String>,
    max_iterations: Option<u32>,
    concurrency: Option<u32>,
    network_none: Option<bool>,
    /// tool -> None (null: remove) or Some(commands) (None = `{}`)
    tools: BTreeMap<String, Option<Option<Vec<String>>>>,
}

fn level() -> impl Strategy<Value = Level> {
    let tool = (
        proptest::sample::select(TOOLS.to_vec()),
        prop_oneof![
            Just(None),
            Just(Some(None)),
            proptest::collection::vec("[a-z]{1,4}", 0..3).prop_map(|c| Some(Some(c))),
        ],
    );
    (
        proptest::option::of("[a-z]{1,6}"),
        proptest::option::of(1u32..30),
        proptest::option::of(1u32..9),
        proptest::option::of(any::<bool>()),
        proptest::collection::vec(tool, 0..4),
    )
        .prop_map(
            |(model, max_iterations, concurrency, network_none, tools)| Level {
                model,
                max_iterations,
                concurrency,
                network_none,
                // `commands` is an option of run_command only.
                tools: tools
                    .into_iter()
                    .map(|(t, v)| match v {
                        Some(Some(_)) if t != "run_command" => (t.to_owned(), Some(None)),
                        v => (t.to_owned(), v),
                    })
                    .collect(),
            },
        )
}

fn to_json(level: &Level, parent: &str) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("extends".into(), json!(parent));
    if let Some(m) = &level.model {
        map.insert("model".into(), json!(m));
    }
    if let Some(n) = level.max_iterations {
        map.insert("max_iterations".into(), json!(n));
    }
    if let Some(c) = level.concurrency {
        map.insert("concurrency".into(), json!(c));
    }
    if let Some(none) = level.network_none {
        map.insert("network".into(), json!(if none { "none" } else { "open" }));
    }
    if !level.tools.is_empty() {
        let tools: serde_json::Map<String, Value> = level
            .tools
            .iter()
            .map(|(t, v)| {
                let value = match v {
                    None => Value::Null,
                    Some(None) => json!({}),
                    Some(Some(commands)) => json!({ "commands": commands }),
                };
                (t.clone(), value)
            })
            .collect();
        map.insert("tools".into(), Value::Object(tools));
    }
    Value::Object(map)
}

/// The reference: fold the levels, root first, over ralph's built-in values.
struct Expected {
    model: String,
    model_from: String,
    max_iterations: u32,
    concurrency: Option<u32>,
    network_none: bool,
    tools: BTreeMap<String, Option<Vec<String>>>,
}

fn reference(levels: &[Level]) -> Expected {
    let mut e = Expected {
        model: "claude-sonnet-4-5".into(),
        model_from: "ralph".into(),
        max_iterations: 10,
        concurrency: None,
        network_none: false,
        tools: TOOLS.iter().map(|t| (t.to_string(), None)).collect(),
    };
    for (i, level) in levels.iter().enumerate() {
        if let Some(m) = &level.model {
            e.model = m.clone();
            e.model_from = format!("t{i}");
        }
        e.max_iterations = level.max_iterations.unwrap_or(e.max_iterations);
        e.concurrency = level.concurrency.or(e.concurrency);
        e.network_none = level.network_none.unwrap_or(e.network_none);
        for (tool, value) in &level.tools {
            match value {
                None => {
                    e.tools.remove(tool);
                }
                Some(None) => {
                    e.tools.entry(tool.clone()).or_insert(None);
                }
                Some(Some(commands)) => {
                    e.tools.insert(tool.clone(), Some(commands.clone()));
                }
            }
        }
    }
    e
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn chains_resolve_like_the_reference(levels in proptest::collection::vec(level(), 1..7)) {
        let mut types = serde_json::Map::new();
        for (i, level) in levels.iter().enumerate() {
            let parent = if i == 0 { "ralph".to_owned() } else { format!("t{}", i - 1) };
            types.insert(format!("t{i}"), to_json(level, &parent));
        }
        // JSON is YAML.
        let text = serde_json::to_string_pretty(&json!({ "types": types })).unwrap();
        let loaded = LoopTypes::load_text(&text, "t.yml", None, &|_| None).unwrap();
        let leaf = loaded.get(&format!("t{}", levels.len() - 1)).unwrap();
        let want = reference(&levels);
        prop_assert_eq!(&leaf.model, &want.model);
        prop_assert_eq!(&leaf.provenance["model"].type_name, &want.model_from);
        prop_assert_eq!(leaf.max_iterations, want.max_iterations);
        prop_assert_eq!(leaf.concurrency, want.concurrency);
        prop_assert_eq!(leaf.network == Network::None, want.network_none);
        let got: BTreeMap<String, Option<Vec<String>>> =
            leaf.tools.iter().map(|(k, v)| (k.clone(), v.commands.clone())).collect();
        prop_assert_eq!(got, want.tools);
        prop_assert_eq!(leaf.chain.len(), levels.len() + 1);
    }
}
