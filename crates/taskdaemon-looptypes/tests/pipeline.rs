//! The plan pipeline's built-in structural types agree with the tool
//! contract in taskdaemon-llm, and their prompts tell the model to call it.

use std::collections::BTreeSet;

use taskdaemon_llm::{CommandSpec, LoopSpec, PipelineLoop};
use taskdaemon_looptypes::{LoopTypes, Overrides, parse_pairs};

#[test]
fn structural_types_allow_exactly_their_kinds_tools() {
    let types = LoopTypes::builtin();
    for kind in [PipelineLoop::Plan, PipelineLoop::Spec, PipelineLoop::Phase] {
        let t = types.get(kind.loop_type()).unwrap();
        let allowed: BTreeSet<String> = t.tools.keys().cloned().collect();
        let expected: BTreeSet<String> = kind.allowed_tools().into_iter().collect();
        assert_eq!(allowed, expected, "{}", kind.loop_type());
    }
    // A plan's Ralph loops run the plain `ralph` type; the coordinator tools
    // come from the handler the daemon attaches, not from the type.
    let ralph: BTreeSet<String> = types.get("ralph").unwrap().tools.keys().cloned().collect();
    let toolbox: BTreeSet<String> = PipelineLoop::Ralph
        .toolbox_tools()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(ralph, toolbox);
    // The file-writing types of `loop run --type` are still there, unchanged.
    assert!(types.get("plan").unwrap().tools.contains_key("write_file"));
    assert!(!types.get("plan").unwrap().tools.contains_key("submit_plan"));
}

#[test]
fn structural_prompts_name_the_tools_and_render_the_inputs() {
    let types = LoopTypes::builtin();
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "pipeline-plan",
            &["request=Add OAuth login"],
            &["Add OAuth login", "`submit_plan`"],
        ),
        (
            "pipeline-spec",
            &["plan_title=OAuth", "plan=Two specs.", "created=db"],
            &[
                "## Plan: OAuth",
                "Two specs.",
                "`create_spec`",
                "`depends_on`",
                "call `finish`",
                "do not create them again):\ndb",
            ],
        ),
        (
            "pipeline-phase",
            &[
                "plan_title=OAuth",
                "spec_name=db",
                "spec_title=Schema",
                "spec_body=Tables.",
            ],
            &[
                "spec `db`",
                "## Spec: Schema",
                "`create_phase`",
                "`validation`",
                "call `finish`",
            ],
        ),
    ];
    for (name, inputs, expected) in cases {
        let mut spec = LoopSpec::new(
            "",
            CommandSpec::Shell(String::new()),
            "anthropic",
            "x",
            dir.path(),
        );
        let inputs =
            parse_pairs(&inputs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        types
            .get(name)
            .unwrap()
            .apply(&mut spec, &inputs, &Overrides::default())
            .unwrap();
        let prompt = spec
            .into_config()
            .unwrap()
            .template
            .render("", "", 1, 3)
            .unwrap();
        for text in expected {
            assert!(
                prompt.contains(text),
                "{name}: `{text}` missing from\n{prompt}"
            );
        }
        if name != "pipeline-spec" {
            assert!(!prompt.contains("Already created"), "{name}:\n{prompt}");
        }
    }
}

#[test]
fn pipeline_tool_names_are_known_to_taskdaemon_yml_and_take_no_options() {
    let env = |_: &str| None;
    let ok = "version: 1\ntypes:\n  t:\n    extends: ralph\n    tools:\n      send_message: {}\n      ask: {}\n";
    let types = LoopTypes::load_text(ok, "taskdaemon.yml", None, &env).unwrap();
    assert!(types.get("t").unwrap().tools.contains_key("ask"));
    let typo = "version: 1\ntypes:\n  t:\n    extends: ralph\n    tools:\n      create_specs: {}\n";
    let err = LoopTypes::load_text(typo, "taskdaemon.yml", None, &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `create_spec`?"), "{err}");
    let options = "version: 1\ntypes:\n  t:\n    extends: ralph\n    tools:\n      finish: {commands: [ls]}\n";
    let err = LoopTypes::load_text(options, "taskdaemon.yml", None, &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("options of run_command, not finish"), "{err}");
}
