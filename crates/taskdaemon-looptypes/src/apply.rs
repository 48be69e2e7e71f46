//! Starting a loop from a type: the type's settings, the caller's inputs
//! and explicit overrides written into the engine's [`LoopSpec`].

use std::collections::BTreeMap;

use serde_json::Value;
use taskdaemon_llm::{CommandSpec, LoopSpec, PromptTemplate};

use crate::inputs::resolve_inputs;
use crate::raw::{Command, Network};
use crate::resolve::LoopType;

/// What the caller set explicitly; these win over the type.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Overrides {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub max_iterations: Option<u32>,
    /// A validation command line (`sh -c`).
    pub validate: Option<String>,
}

impl LoopType {
    /// Writes this type into `spec` (whose spec text, workdir and base URL
    /// the caller set). The error is for the person who ran the loop.
    pub fn apply(
        &self,
        spec: &mut LoopSpec,
        inputs: &BTreeMap<String, String>,
        overrides: &Overrides,
    ) -> Result<(), String> {
        let values = resolve_inputs(&self.name, &self.inputs, inputs)?;
        spec.provider = overrides
            .provider
            .clone()
            .unwrap_or_else(|| self.provider.clone());
        spec.model = overrides
            .model
            .clone()
            .unwrap_or_else(|| self.model.clone());
        spec.max_iterations = overrides.max_iterations.unwrap_or(self.max_iterations);
        spec.validate = match (&overrides.validate, &self.validation) {
            (Some(line), _) => CommandSpec::Shell(line.clone()),
            (None, Some(validation)) => {
                spec.validation_timeout_secs = validation.timeout_secs;
                render_command(&validation.command, &Value::Object(values.clone()))?
            }
            (None, None) => {
                return Err(format!(
                    "type {} has no validation command: give --validate CMD, or set `validation` for it in taskdaemon.yml",
                    self.name
                ));
            }
        };
        spec.prompt_template = Some(self.prompt.clone());
        spec.prompt_partials = self.partials.clone();
        spec.prompt_vars = values;
        spec.allowed_tools = Some(self.tools.keys().cloned().collect());
        let run = self.tools.get("run_command");
        spec.allowed_commands = run.and_then(|o| o.commands.clone());
        spec.shell = run.and_then(|o| o.shell).unwrap_or(false);
        (spec.isolate_network, spec.network_allow) = match &self.network {
            Network::Open => (false, Vec::new()),
            Network::None => (true, Vec::new()),
            Network::Allow(hosts) => (false, hosts.clone()),
        };
        spec.sandbox = self.sandbox;
        spec.timeout_secs = self.timeout_secs;
        spec.type_concurrency = self.concurrency;
        spec.loop_type = Some(self.name.clone());
        Ok(())
    }
}

fn render_command(command: &Command, values: &Value) -> Result<CommandSpec, String> {
    let render = |text: &str| {
        PromptTemplate::render_once(text, values).map_err(|e| format!("validation command: {e}"))
    };
    Ok(match command {
        Command::Shell(line) => CommandSpec::Shell(render(line)?),
        Command::Argv(argv) => {
            CommandSpec::Argv(argv.iter().map(|a| render(a)).collect::<Result<_, _>>()?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoopTypes;

    #[test]
    fn a_type_fills_the_spec_and_overrides_win() {
        let types = LoopTypes::builtin();
        let plan = types.get("plan").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut spec = LoopSpec::new(
            "",
            CommandSpec::Shell(String::new()),
            "anthropic",
            "x",
            dir.path(),
        );
        let inputs = crate::parse_pairs(&["goal=ship".into()]).unwrap();
        plan.apply(&mut spec, &inputs, &Overrides::default())
            .unwrap();
        assert_eq!(
            spec.validate,
            CommandSpec::Shell("test -s 'PLAN.md'".into())
        );
        assert_eq!(spec.max_iterations, 3);
        assert_eq!(spec.loop_type.as_deref(), Some("plan"));
        assert_eq!(spec.prompt_vars["goal"], "ship");
        let config = spec.clone().into_config().unwrap();
        let prompt = config.template.render("", "", 1, 3).unwrap();
        assert!(
            prompt.contains("Goal: ship") && prompt.contains("`PLAN.md`"),
            "{prompt}"
        );

        let overrides = Overrides {
            model: Some("m2".into()),
            max_iterations: Some(7),
            validate: Some("true".into()),
            provider: None,
        };
        plan.apply(&mut spec, &inputs, &overrides).unwrap();
        assert_eq!((spec.model.as_str(), spec.max_iterations), ("m2", 7));
        assert_eq!(spec.validate, CommandSpec::Shell("true".into()));

        let err = types
            .get("ralph")
            .unwrap()
            .apply(&mut spec, &BTreeMap::new(), &Overrides::default())
            .unwrap_err();
        assert!(err.contains("no validation command"), "{err}");
        let err = plan
            .apply(&mut spec, &BTreeMap::new(), &Overrides::default())
            .unwrap_err();
        assert!(err.contains("needs input `goal`"), "{err}");
    }
}
