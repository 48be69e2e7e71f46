//! The iteration prompt: a handlebars template over spec, progress and iteration.

use handlebars::Handlebars;
use serde_json::json;

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

/// A compiled prompt template. Output is not HTML-escaped.
#[derive(Debug, Clone)]
pub struct PromptTemplate {
    registry: Handlebars<'static>,
}

impl PromptTemplate {
    /// Compiles `source`.
    pub fn new(source: &str) -> Result<Self, SpecError> {
        let mut registry = Handlebars::new();
        registry.register_escape_fn(handlebars::no_escape);
        registry
            .register_template_string("prompt", source)
            .map_err(|e| SpecError::Template(e.to_string()))?;
        Ok(PromptTemplate { registry })
    }

    /// Renders the prompt for one iteration.
    pub fn render(
        &self,
        spec: &str,
        progress: &str,
        iteration: u32,
        max_iterations: u32,
    ) -> Result<String, String> {
        self.registry
            .render(
                "prompt",
                &json!({"spec": spec, "progress": progress, "iteration": iteration,
                        "max_iterations": max_iterations}),
            )
            .map_err(|e| e.to_string())
    }
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
}
