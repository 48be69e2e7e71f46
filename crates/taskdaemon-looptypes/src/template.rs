//! Load-time checks of prompt templates: they compile (with their
//! partials), every partial they include exists, and every variable they
//! name is an engine variable or one of the type's inputs. Variables inside
//! `#each` / `#with` blocks refer to the iterated value and are not checked
//! (that is only knowable when rendering, where strict mode catches it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use handlebars::template::{Parameter, TemplateElement};
use handlebars::{Path, Template};

/// A variable a template names that nothing provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    /// `prompt` or `partial NAME` or `validation`.
    pub template: String,
    /// 1-based line and column inside the template.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Templates parsed during one load, by source: types share partials and
/// often their parent's prompt, and parsing is the costly part of a check.
#[derive(Default)]
pub struct Parsed(HashMap<String, Rc<Template>>);

impl Parsed {
    /// Parses `source` (once per load), so a partial no prompt includes
    /// still fails the load when it is broken.
    pub fn parse(&mut self, template: &str, source: &str) -> Result<(), TemplateProblem> {
        self.get(template, source).map(|_| ())
    }

    fn get(&mut self, template: &str, source: &str) -> Result<Rc<Template>, TemplateProblem> {
        if let Some(hit) = self.0.get(source) {
            return Ok(hit.clone());
        }
        let compiled = Template::compile(source).map_err(|e| {
            let (line, column) = e.pos().unwrap_or((1, 1));
            TemplateProblem {
                template: template.to_owned(),
                line,
                column,
                message: e.reason().to_string(),
            }
        })?;
        let compiled = Rc::new(compiled);
        self.0.insert(source.to_owned(), compiled.clone());
        Ok(compiled)
    }
}

/// Checks `source` (named `template`) against `known` variables and
/// `partials` (checked too, once each).
pub fn check(
    parsed: &mut Parsed,
    template: &str,
    source: &str,
    partials: &BTreeMap<String, String>,
    known: &BTreeSet<String>,
) -> Result<(), TemplateProblem> {
    let mut seen = BTreeSet::new();
    check_one(parsed, template, source, partials, known, &mut seen)
}

fn check_one(
    parsed: &mut Parsed,
    template: &str,
    source: &str,
    partials: &BTreeMap<String, String>,
    known: &BTreeSet<String>,
    seen: &mut BTreeSet<String>,
) -> Result<(), TemplateProblem> {
    if !source.contains("{{") {
        return Ok(());
    }
    let compiled = parsed.get(template, source)?;
    let mut uses = Uses::default();
    walk(&compiled, &mut uses);
    if let Some((name, line, column)) = uses.variables.iter().find(|(v, _, _)| !known.contains(v)) {
        let mut names: Vec<&str> = known.iter().map(String::as_str).collect();
        names.sort_unstable();
        let message = crate::error::with_suggestion(
            format!("variable `{name}` is not an input of this type nor an engine variable"),
            name,
            names.iter().copied(),
        ) + &if names.is_empty() {
            "; this type has no inputs".to_owned()
        } else {
            format!("; known: {}", names.join(", "))
        };
        return Err(TemplateProblem {
            template: template.to_owned(),
            line: *line,
            column: *column,
            message,
        });
    }
    for (name, line, column) in &uses.partials {
        let Some(partial) = partials.get(name) else {
            let message = crate::error::with_suggestion(
                format!(
                    "partial `{name}` does not exist (define it under `partials:` or in prompts/{name}.hbs)"
                ),
                name,
                partials.keys().map(String::as_str),
            );
            return Err(TemplateProblem {
                template: template.to_owned(),
                line: *line,
                column: *column,
                message,
            });
        };
        if seen.insert(name.clone()) {
            check_one(
                parsed,
                &format!("partial {name}"),
                partial,
                partials,
                known,
                seen,
            )?;
        }
    }
    Ok(())
}

#[derive(Default)]
struct Uses {
    /// (top-level name, line, column)
    variables: Vec<(String, usize, usize)>,
    partials: Vec<(String, usize, usize)>,
}

fn walk(template: &Template, uses: &mut Uses) {
    for (index, element) in template.elements.iter().enumerate() {
        let (line, column) = template.mapping.get(index).map_or((1, 1), |m| (m.0, m.1));
        element_uses(element, line, column, uses);
    }
}

fn element_uses(element: &TemplateElement, line: usize, column: usize, uses: &mut Uses) {
    match element {
        TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
            let is_helper = !h.params.is_empty() || !h.hash.is_empty() || is_known_helper(&h.name);
            if !is_helper {
                parameter_uses(&h.name, line, column, uses);
            }
            for p in h.params.iter().chain(h.hash.values()) {
                parameter_uses(p, line, column, uses);
            }
        }
        TemplateElement::HelperBlock(h) => {
            for p in h.params.iter().chain(h.hash.values()) {
                parameter_uses(p, line, column, uses);
            }
            let changes_context = matches!(h.name.as_name(), Some("each" | "with"));
            if !changes_context && let Some(inner) = &h.template {
                walk(inner, uses);
            }
            if let Some(inverse) = &h.inverse {
                walk(inverse, uses);
            }
        }
        TemplateElement::PartialExpression(d) | TemplateElement::PartialBlock(d) => {
            if let Some(name) = d.name.as_name() {
                uses.partials.push((name.to_owned(), line, column));
            } else if let Parameter::Path(path) = &d.name {
                uses.partials.push((raw(path).to_owned(), line, column));
            }
            for p in d.params.iter().chain(d.hash.values()) {
                parameter_uses(p, line, column, uses);
            }
        }
        _ => {}
    }
}

fn parameter_uses(parameter: &Parameter, line: usize, column: usize, uses: &mut Uses) {
    match parameter {
        Parameter::Path(path) => {
            if let Some(name) = top_level(path) {
                uses.variables.push((name, line, column));
            }
        }
        Parameter::Subexpression(sub) => element_uses(&sub.element, line, column, uses),
        _ => {}
    }
}

fn raw(path: &Path) -> &str {
    match path {
        Path::Relative((_, raw)) => raw,
        Path::Local((_, _, raw)) => raw,
    }
}

/// The first segment of a context path (`a` of `a.b`); `None` for `this`,
/// `@index`, `../x` and the like.
fn top_level(path: &Path) -> Option<String> {
    let Path::Relative((_, raw)) = path else {
        return None;
    };
    if raw.starts_with('@')
        || raw.starts_with("this")
        || raw.starts_with("..")
        || raw.starts_with('.')
    {
        return None;
    }
    raw.split(['.', '/', '['])
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn is_known_helper(name: &Parameter) -> bool {
    const BUILT_IN: [&str; 16] = [
        "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt",
        "lte", "and", "or", "not",
    ];
    let text = match name {
        Parameter::Name(n) => n.as_str(),
        Parameter::Path(p) => raw(p),
        _ => return false,
    };
    BUILT_IN.contains(&text) || taskdaemon_llm::HELPERS.contains(&text) || text == "len"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_unknown_variables_with_their_line() {
        let partials = BTreeMap::new();
        let k = known(&["goal", "spec"]);
        assert!(
            check(
                &mut Parsed::default(),
                "prompt",
                "{{goal}} {{spec}} {{json goal}}",
                &partials,
                &k
            )
            .is_ok()
        );
        let err = check(
            &mut Parsed::default(),
            "prompt",
            "ok {{goal}}\n{{#if (eq gaol 1)}}x{{/if}}",
            &partials,
            &k,
        )
        .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("`gaol`") && err.message.contains("did you mean `goal`"));
        // Inside #each the names belong to the item.
        assert!(
            check(
                &mut Parsed::default(),
                "prompt",
                "{{#each goal}}{{name}}{{@index}}{{/each}}",
                &partials,
                &k
            )
            .is_ok()
        );
    }

    #[test]
    fn checks_partials_and_their_variables() {
        let mut partials = BTreeMap::new();
        partials.insert("head".to_owned(), "\n{{missing}}".to_owned());
        let k = known(&["goal"]);
        let err = check(
            &mut Parsed::default(),
            "prompt",
            "{{> head}}",
            &partials,
            &k,
        )
        .unwrap_err();
        assert_eq!((err.template.as_str(), err.line), ("partial head", 2));
        let err = check(
            &mut Parsed::default(),
            "prompt",
            "{{> nope}}",
            &partials,
            &k,
        )
        .unwrap_err();
        assert!(
            err.message.contains("partial `nope` does not exist"),
            "{err:?}"
        );
    }
}
