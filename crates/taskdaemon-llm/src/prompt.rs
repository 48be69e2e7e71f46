//! The iteration prompt: a handlebars template (strict mode, with the
//! `json`, `indent`, `truncate` and `file` helpers beside handlebars' own
//! `eq`/`ne`/`and`/`or`/`not`, and named partials) over the engine's
//! variables (`spec`, `progress`, `iteration`, `max_iterations`) and a loop
//! type's inputs.
//!
//! This is the one place the helpers are defined: the loop-type loader
//! (`taskdaemon-looptypes`) checks templates with [`PromptTemplate::compile`]
//! and [`ENGINE_VARIABLES`], and the engine renders with the same registry.

use std::collections::BTreeMap;
use std::path::Path;

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};
use serde_json::{Map, Value, json};

use crate::confine::Sandbox;
use crate::spec::SpecError;

/// The template used when a loop gives none.
pub const DEFAULT_TEMPLATE: &str = r#"You are iteration {{iteration}} of at most {{max_iterations}} of an autonomous development loop.
You start with no memory of earlier iterations except the progress notes below.
Work in the current directory with the tools provided. When the spec is implemented,
stop calling tools and end your turn; a validation command then checks your work.

## Spec

{{spec}}

## Progress from earlier iterations

{{#if progress}}{{progress}}{{else}}None: this is the first iteration.{{/if}}
"#;

/// The system prompt of every call.
pub const SYSTEM_PROMPT: &str = "You are a careful software engineer working inside a sandboxed directory. \
Use the tools to read, write and run things; paths are relative to the working directory. \
Make the smallest change that satisfies the spec, then end your turn with a short summary.";

/// Variables the engine sets for every iteration; a loop type's inputs may
/// not reuse these names.
pub const ENGINE_VARIABLES: [&str; 4] = ["spec", "progress", "iteration", "max_iterations"];

/// Helpers this module registers (besides handlebars' built-ins).
pub const HELPERS: [&str; 4] = ["json", "indent", "truncate", "file"];

/// Bytes the `file` helper reads at most; more is cut with a marker.
const FILE_HELPER_LIMIT: usize = 256 * 1024;

/// A compiled prompt template. Output is not HTML-escaped.
#[derive(Debug, Clone)]
pub struct PromptTemplate {
    registry: Handlebars<'static>,
    /// Extra top-level variables (a loop type's inputs).
    vars: Map<String, Value>,
}

impl PromptTemplate {
    /// Compiles `source` with no partials and no `file` helper root.
    pub fn new(source: &str) -> Result<Self, SpecError> {
        Self::compile(source, &BTreeMap::new(), None).map_err(SpecError::Template)
    }

    /// Compiles `source` with `partials`. The `file` helper reads only
    /// inside `file_root` (a loop's worktree); without one it refuses.
    /// The error names the template (`prompt` or the partial) and where.
    pub fn compile(
        source: &str,
        partials: &BTreeMap<String, String>,
        file_root: Option<&Path>,
    ) -> Result<Self, String> {
        let mut registry = Handlebars::new();
        registry.register_escape_fn(handlebars::no_escape);
        registry.set_strict_mode(true);
        register_helpers(&mut registry, file_root)?;
        for (name, text) in partials {
            registry
                .register_partial(name, text)
                .map_err(|e| format!("partial '{name}': {e}"))?;
        }
        registry
            .register_template_string("prompt", source)
            .map_err(|e| e.to_string())?;
        Ok(PromptTemplate {
            registry,
            vars: Map::new(),
        })
    }

    /// Adds top-level variables to every render (they never replace an
    /// engine variable).
    pub fn with_vars(mut self, vars: Map<String, Value>) -> Self {
        self.vars = vars;
        self
    }

    /// Renders the prompt for one iteration.
    pub fn render(
        &self,
        spec: &str,
        progress: &str,
        iteration: u32,
        max_iterations: u32,
    ) -> Result<String, String> {
        let mut data = self.vars.clone();
        for (key, value) in [
            ("spec", json!(spec)),
            ("progress", json!(progress)),
            ("iteration", json!(iteration)),
            ("max_iterations", json!(max_iterations)),
        ] {
            data.insert(key.to_owned(), value);
        }
        self.registry
            .render("prompt", &Value::Object(data))
            .map_err(|e| e.to_string())
    }

    /// Renders a one-off template string (e.g. a validation command) with
    /// the same helpers, in strict mode, over `data`.
    pub fn render_once(source: &str, data: &Value) -> Result<String, String> {
        let mut registry = Handlebars::new();
        registry.register_escape_fn(handlebars::no_escape);
        registry.set_strict_mode(true);
        register_helpers(&mut registry, None)?;
        registry
            .render_template(source, data)
            .map_err(|e| e.to_string())
    }
}

fn register_helpers(
    registry: &mut Handlebars<'static>,
    file_root: Option<&Path>,
) -> Result<(), String> {
    registry.register_helper("json", Box::new(json_helper));
    registry.register_helper("indent", Box::new(indent_helper));
    registry.register_helper("truncate", Box::new(truncate_helper));
    let sandbox = match file_root {
        Some(root) => Some(
            Sandbox::new(root).map_err(|e| format!("file helper root {}: {e}", root.display()))?,
        ),
        None => None,
    };
    registry.register_helper(
        "file",
        Box::new(
            move |h: &Helper<'_>,
                  _: &Handlebars<'_>,
                  _: &Context,
                  _: &mut RenderContext<'_, '_>,
                  out: &mut dyn Output|
                  -> HelperResult {
                let path = string_param(h, "file", 0)?;
                let Some(sandbox) = &sandbox else {
                    return Err(helper_error("file: no worktree to read from"));
                };
                let resolved = sandbox
                    .resolve(&path)
                    .map_err(|e| helper_error(&format!("file {path}: {e}")))?;
                let text = std::fs::read_to_string(&resolved)
                    .map_err(|e| helper_error(&format!("file {path}: {e}")))?;
                out.write(&crate::command::truncate_output(&text, FILE_HELPER_LIMIT))?;
                Ok(())
            },
        ),
    );
    Ok(())
}

/// `{{json value}}`: the value as pretty JSON.
fn json_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let value = h
        .param(0)
        .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("json", 0))?;
    let text = serde_json::to_string_pretty(value.value())
        .map_err(|e| helper_error(&format!("json: {e}")))?;
    out.write(&text)?;
    Ok(())
}

/// `{{indent text N}}`: every line after the first indented by N spaces
/// (the first line sits where the expression is).
fn indent_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let text = string_param(h, "indent", 0)?;
    let width = count_param(h, "indent", 1)?;
    let pad = " ".repeat(width);
    let indented: Vec<String> = text
        .split('\n')
        .enumerate()
        .map(|(i, line)| {
            if i == 0 || line.is_empty() {
                line.to_owned()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect();
    out.write(&indented.join("\n"))?;
    Ok(())
}

/// `{{truncate text N}}`: at most N characters, with `...` when cut.
fn truncate_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let text = string_param(h, "truncate", 0)?;
    let limit = count_param(h, "truncate", 1)?;
    if text.chars().count() <= limit {
        out.write(&text)?;
    } else {
        let cut: String = text.chars().take(limit).collect();
        out.write(&format!("{cut}..."))?;
    }
    Ok(())
}

/// Parameter `index` as text (a non-string value is rendered as JSON).
fn string_param(h: &Helper<'_>, helper: &'static str, index: usize) -> Result<String, RenderError> {
    let value = h
        .param(index)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(helper, index))?;
    Ok(match value.value() {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

fn count_param(h: &Helper<'_>, helper: &'static str, index: usize) -> Result<usize, RenderError> {
    h.param(index)
        .and_then(|p| p.value().as_u64())
        .map(|n| n as usize)
        .ok_or_else(|| {
            helper_error(&format!(
                "{helper}: parameter {} must be a number",
                index + 1
            ))
        })
}

fn helper_error(message: &str) -> RenderError {
    RenderErrorReason::Other(message.to_owned()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_without_escaping() {
        let t = PromptTemplate::new("{{iteration}}: {{spec}} | {{progress}}").unwrap();
        assert_eq!(
            t.render("a < b && \"c\"", "p", 2, 5).unwrap(),
            "2: a < b && \"c\" | p"
        );
        let d = PromptTemplate::new(DEFAULT_TEMPLATE).unwrap();
        let first = d.render("S", "", 1, 3).unwrap();
        assert!(first.contains("first iteration") && first.contains("S"));
        assert!(PromptTemplate::new("{{#if}}").is_err());
    }

    #[test]
    fn strict_mode_names_the_missing_variable() {
        let t = PromptTemplate::new("hello {{nobody}}").unwrap();
        let err = t.render("s", "", 1, 1).unwrap_err();
        assert!(err.contains("nobody"), "{err}");
    }

    #[test]
    fn helpers_and_partials_and_vars() {
        let mut partials = BTreeMap::new();
        partials.insert("head".to_owned(), "# {{title}}\n".to_owned());
        let source = "{{> head}}\n{{json tags}}\n- {{indent body 2}}\n{{truncate title 3}}\n\
                      {{#if (and (eq kind \"a\") (or false true))}}yes{{/if}}";
        let mut vars = Map::new();
        vars.insert("title".into(), json!("Title"));
        vars.insert("tags".into(), json!(["x"]));
        vars.insert("body".into(), json!("one\ntwo"));
        vars.insert("kind".into(), json!("a"));
        let t = PromptTemplate::compile(source, &partials, None)
            .unwrap()
            .with_vars(vars);
        let out = t.render("s", "", 1, 1).unwrap();
        assert_eq!(out, "# Title\n[\n  \"x\"\n]\n- one\n  two\nTit...\nyes");
    }

    #[test]
    fn file_helper_reads_only_inside_the_root() {
        let outer = tempfile::tempdir().unwrap();
        let work = outer.path().join("work");
        std::fs::create_dir(&work).unwrap();
        std::fs::write(work.join("notes.md"), "inside").unwrap();
        std::fs::write(outer.path().join("secret"), "outside").unwrap();
        let inside =
            PromptTemplate::compile("{{file \"notes.md\"}}", &BTreeMap::new(), Some(&work))
                .unwrap();
        assert_eq!(inside.render("", "", 1, 1).unwrap(), "inside");
        for bad in ["../secret", "/etc/hostname"] {
            let t = PromptTemplate::compile(
                &format!("{{{{file \"{bad}\"}}}}"),
                &BTreeMap::new(),
                Some(&work),
            )
            .unwrap();
            let err = t.render("", "", 1, 1).unwrap_err();
            assert!(err.contains("outside the workdir"), "{bad}: {err}");
        }
        let rootless =
            PromptTemplate::compile("{{file \"notes.md\"}}", &BTreeMap::new(), None).unwrap();
        assert!(rootless.render("", "", 1, 1).is_err());
    }
}
