//! Error messages for broken files, with line and column, as snapshots:
//! each names the file, where, the field, and what to do.

use taskdaemon_looptypes::LoopTypes;

fn env(name: &str) -> Option<String> {
    (name == "SET").then(|| "value".to_owned())
}

fn error_of(text: &str) -> String {
    match LoopTypes::load_text(text, "taskdaemon.yml", None, &env) {
        Ok(_) => panic!("this file loaded but should not have:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const BROKEN: &[(&str, &str)] = &[
    (
        "yaml_syntax",
        "types:\n  a:\n    model: \"unclosed\n  b: {}\n",
    ),
    ("yaml_tab", "types:\n\ta: {}\n"),
    ("yaml_wrong_shape", "types:\n  a:\n    model: [a, b]\n"),
    ("unknown_top_key", "version: 1\ntypez:\n  a: {}\n"),
    (
        "unknown_type_key",
        "types:\n  a:\n    extends: ralph\n    modle: opus\n",
    ),
    (
        "unknown_tool_option",
        "types:\n  a:\n    extends: ralph\n    tools:\n      run_command:\n        comands: [ls]\n",
    ),
    (
        "wrong_value_type",
        "types:\n  a:\n    extends: ralph\n    max_iterations: many\n",
    ),
    (
        "missing_env_var",
        "types:\n  a:\n    extends: ralph\n    model: ${SET}\n    provider: ${UNSET_VAR}\n",
    ),
    ("unknown_parent", "types:\n  a:\n    extends: ralp\n"),
    (
        "extends_cycle",
        "types:\n  a:\n    extends: b\n  b:\n    extends: c\n  c:\n    extends: a\n",
    ),
    (
        "unknown_provider",
        "types:\n  a:\n    extends: ralph\n    provider: antropic\n",
    ),
    (
        "zero_iterations",
        "types:\n  a:\n    extends: ralph\n    max_iterations: 0\n",
    ),
    (
        "bad_timeout",
        "types:\n  a:\n    extends: ralph\n    timeout: soon\n",
    ),
    (
        "unknown_tool",
        "types:\n  a:\n    extends: ralph\n    tools:\n      run_comand: {}\n",
    ),
    (
        "option_on_wrong_tool",
        "types:\n  a:\n    extends: ralph\n    tools:\n      read_file: {commands: [ls]}\n",
    ),
    (
        "bad_network",
        "types:\n  a:\n    extends: ralph\n    network: offline\n",
    ),
    (
        "prompt_unknown_variable",
        "types:\n  a:\n    extends: ralph\n    inputs:\n      goal: {type: string}\n    prompt: |\n      Goal: {{goal}}\n      Also {{gaol}}\n",
    ),
    (
        "prompt_unknown_partial",
        "types:\n  a:\n    extends: ralph\n    prompt: \"{{> header}} {{spec}}\"\n",
    ),
    (
        "prompt_syntax",
        "types:\n  a:\n    extends: ralph\n    prompt: \"{{#if spec}} open\"\n",
    ),
    (
        "validation_unknown_variable",
        "types:\n  a:\n    extends: ralph\n    validation: \"test -f {{file_name}}\"\n",
    ),
    (
        "input_bad_default",
        "types:\n  a:\n    extends: ralph\n    inputs:\n      n: {type: integer, default: seven}\n",
    ),
    (
        "input_reserved_name",
        "types:\n  a:\n    extends: ralph\n    inputs:\n      spec: {type: string}\n",
    ),
    (
        "input_unknown_type",
        "types:\n  a:\n    extends: ralph\n    inputs:\n      n: {type: int}\n",
    ),
    (
        "output_without_path",
        "types:\n  a:\n    extends: ralph\n    outputs:\n      doc: {kind: file}\n",
    ),
    (
        "output_escapes",
        "types:\n  a:\n    extends: ralph\n    outputs:\n      doc: {kind: file, path: ../x.md}\n",
    ),
    (
        "no_prompt",
        "types:\n  a:\n    provider: anthropic\n    model: m\n",
    ),
    (
        "prompt_and_prompt_file",
        "types:\n  a:\n    extends: ralph\n    prompt: hi\n    prompt_file: p.md\n",
    ),
    ("bad_version", "version: 2\n"),
    (
        "partial_syntax",
        "partials:\n  unused: \"{{#if x}} open\"\n",
    ),
];

#[test]
fn broken_files_have_precise_messages() {
    let mut all = String::new();
    for (name, text) in BROKEN {
        all.push_str(&format!("{name}:\n  {}\n", error_of(text)));
    }
    insta::assert_snapshot!(all);
}
