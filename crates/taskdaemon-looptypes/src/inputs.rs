//! A loop's inputs: `k=v` strings checked against the type's typed
//! parameters, defaults filled in, into the JSON its templates render with.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::raw::{InputDef, InputKind};

/// Checks `given` (`name -> text`) against `defs`; every declared input is
/// in the result (`null` for an optional one left out).
pub fn resolve_inputs(
    type_name: &str,
    defs: &BTreeMap<String, InputDef>,
    given: &BTreeMap<String, String>,
) -> Result<Map<String, Value>, String> {
    if let Some(unknown) = given.keys().find(|k| !defs.contains_key(*k)) {
        let names: Vec<&str> = defs.keys().map(String::as_str).collect();
        return Err(crate::error::with_suggestion(
            format!("type {type_name} has no input `{unknown}`"),
            unknown,
            names.iter().copied(),
        ) + &format!(
            "; its inputs: {}",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ));
    }
    let mut values = Map::new();
    for (name, def) in defs {
        let value = match (given.get(name), &def.default) {
            (Some(text), _) => {
                parse_value(def.kind, text).map_err(|e| format!("input `{name}`: {e}"))?
            }
            (None, Some(default)) => default.clone(),
            (None, None) => {
                return Err(format!(
                    "type {type_name} needs input `{name}` ({}): give --input {name}=VALUE",
                    def.description.as_deref().unwrap_or(kind_name(def.kind))
                ));
            }
        };
        check_value(def, &value).map_err(|e| format!("input `{name}`: {e}"))?;
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// Checks a value (given or a default) against its definition.
pub fn check_value(def: &InputDef, value: &Value) -> Result<(), String> {
    let fits = match def.kind {
        InputKind::String | InputKind::Path => value.is_string(),
        InputKind::Integer => value.is_i64() || value.is_u64(),
        InputKind::Number => value.is_number(),
        InputKind::Boolean => value.is_boolean(),
    };
    if !fits {
        return Err(format!("{value} is not {}", with_article(def.kind)));
    }
    if def.kind == InputKind::Path
        && let Some(path) = value.as_str()
    {
        check_path(path)?;
    }
    if let Some(choices) = &def.choices
        && !choices.contains(value)
    {
        let list: Vec<String> = choices.iter().map(Value::to_string).collect();
        return Err(format!("{value} is not one of {}", list.join(", ")));
    }
    if let Some(n) = value.as_f64()
        && (def.min.is_some_and(|min| n < min) || def.max.is_some_and(|max| n > max))
    {
        return Err(format!(
            "{n} is outside {}..={}",
            def.min.map_or(String::new(), |m| m.to_string()),
            def.max.map_or(String::new(), |m| m.to_string())
        ));
    }
    Ok(())
}

/// A path input is worktree-relative and safe to put in a shell command
/// line between single quotes.
fn check_path(path: &str) -> Result<(), String> {
    let ok_chars = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/+@".contains(c));
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|p| p == "..") || !ok_chars {
        return Err(format!(
            "path `{path}` must be relative to the worktree, without `..`, using letters, digits and . _ - / + @"
        ));
    }
    Ok(())
}

fn parse_value(kind: InputKind, text: &str) -> Result<Value, String> {
    Ok(match kind {
        InputKind::String | InputKind::Path => Value::String(text.to_owned()),
        InputKind::Integer => Value::from(
            text.trim()
                .parse::<i64>()
                .map_err(|_| format!("`{text}` is not an integer"))?,
        ),
        InputKind::Number => {
            let n: f64 = text
                .trim()
                .parse()
                .map_err(|_| format!("`{text}` is not a number"))?;
            serde_json::Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(|| format!("`{text}` is not a finite number"))?
        }
        InputKind::Boolean => match text.trim() {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => return Err(format!("`{text}` is not a boolean (true/false)")),
        },
    })
}

fn with_article(kind: InputKind) -> String {
    let name = kind_name(kind);
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

fn kind_name(kind: InputKind) -> &'static str {
    match kind {
        InputKind::String => "string",
        InputKind::Integer => "integer",
        InputKind::Number => "number",
        InputKind::Boolean => "boolean",
        InputKind::Path => "path",
    }
}

/// Splits `k=v` arguments; a repeated key is an error.
pub fn parse_pairs(pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("--input {pair}: expected NAME=VALUE"));
        };
        if map
            .insert(key.trim().to_owned(), value.to_owned())
            .is_some()
        {
            return Err(format!("--input {key} is given twice"));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(kind: InputKind, default: Option<Value>) -> InputDef {
        InputDef {
            kind,
            description: None,
            default,
            choices: None,
            min: None,
            max: None,
        }
    }

    #[test]
    fn types_defaults_and_errors() {
        let mut defs = BTreeMap::new();
        defs.insert("goal".to_owned(), def(InputKind::String, None));
        defs.insert(
            "n".to_owned(),
            InputDef {
                min: Some(1.0),
                max: Some(5.0),
                ..def(InputKind::Integer, Some(json!(2)))
            },
        );
        defs.insert(
            "file".to_owned(),
            def(InputKind::Path, Some(json!("PLAN.md"))),
        );
        let given = parse_pairs(&["goal=ship it".into()]).unwrap();
        let values = resolve_inputs("plan", &defs, &given).unwrap();
        assert_eq!(
            Value::Object(values),
            json!({"goal": "ship it", "n": 2, "file": "PLAN.md"})
        );

        let err = resolve_inputs("plan", &defs, &BTreeMap::new()).unwrap_err();
        assert!(err.contains("needs input `goal`"), "{err}");
        let bad = parse_pairs(&["goal=x".into(), "n=9".into()]).unwrap();
        assert!(
            resolve_inputs("plan", &defs, &bad)
                .unwrap_err()
                .contains("outside")
        );
        let bad = parse_pairs(&["goal=x".into(), "file=../etc".into()]).unwrap();
        assert!(
            resolve_inputs("plan", &defs, &bad)
                .unwrap_err()
                .contains("relative")
        );
        let bad = parse_pairs(&["gaol=x".into()]).unwrap();
        assert!(
            resolve_inputs("plan", &defs, &bad)
                .unwrap_err()
                .contains("did you mean `goal`")
        );
        assert!(parse_pairs(&["novalue".into()]).is_err());
    }
}
