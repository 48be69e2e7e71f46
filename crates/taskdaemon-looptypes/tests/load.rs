//! Loading real files: built-ins, overrides, prompt files, the prompts/
//! folder, substitution and provenance.

use std::collections::BTreeMap;

use taskdaemon_looptypes::{BUILTIN_FILE, LoopTypes, Network, STARTER};

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn builtins_exist_and_resolve() {
    let types = LoopTypes::builtin();
    let names: Vec<&str> = types.types.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "phase",
            "pipeline-phase",
            "pipeline-plan",
            "pipeline-spec",
            "plan",
            "ralph",
            "spec"
        ]
    );
    let plan = types.get("plan").unwrap();
    assert_eq!(plan.chain, ["ralph", "plan"]);
    assert_eq!(plan.max_iterations, 3);
    assert_eq!(plan.provenance["max_iterations"].type_name, "plan");
    assert_eq!(plan.provenance["model"].type_name, "ralph");
    assert_eq!(plan.provenance["model"].file, BUILTIN_FILE);
    assert!(plan.outputs.contains_key("plan") && plan.outputs.contains_key("summary"));
    assert!(plan.validation.is_some());
    assert!(types.get("ralph").unwrap().validation.is_none());
    let err = types.get("plam").unwrap_err();
    assert!(err.contains("did you mean `plan`"), "{err}");
}

#[test]
fn the_starter_file_is_valid() {
    let env = |name: &str| (name == "TASKDAEMON_MODEL").then(|| "opus-x".to_owned());
    let types = LoopTypes::load_text(STARTER, "taskdaemon.yml", None, &env).unwrap();
    let fix = types.get("fix-tests").unwrap();
    assert_eq!(fix.chain, ["ralph", "fix-tests"]);
    assert_eq!(fix.model, "opus-x", "the ralph override reaches children");
    assert_eq!(fix.provenance["model"].file, "taskdaemon.yml");
    assert_eq!(fix.provenance["model"].type_name, "ralph");
    assert_eq!(fix.network, Network::None);
    assert_eq!(
        fix.tools["run_command"].commands.as_deref(),
        Some(&["cargo".to_owned(), "git".to_owned()][..])
    );
    assert!(
        fix.tools.contains_key("read_file"),
        "maps merge: inherited tools stay"
    );
    assert_eq!(fix.timeout_secs, Some(3600));
    assert_eq!(fix.validation.as_ref().unwrap().timeout_secs, 1200);
    // The file's ralph override also reaches the built-in plan.
    assert_eq!(types.get("plan").unwrap().model, "opus-x");
    let plain = LoopTypes::load_text(STARTER, "taskdaemon.yml", None, &no_env).unwrap();
    assert_eq!(plain.get("ralph").unwrap().model, "claude-sonnet-4-5");
    assert_ne!(plain.digest, types.digest);
}

#[test]
fn prompt_files_and_partials_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("prompts")).unwrap();
    std::fs::write(dir.path().join("prompts/rules.hbs"), "Rules for {{goal}}.").unwrap();
    std::fs::write(
        dir.path().join("prompts/progress.hbs"),
        "Folder progress: {{progress}}",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("review.md"),
        "Review {{goal}}\n{{> rules}}\n{{> progress}}",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("taskdaemon.yml"),
        "types:\n  review:\n    extends: ralph\n    prompt_file: review.md\n    inputs:\n      goal: {type: string}\n",
    )
    .unwrap();
    let types = LoopTypes::load(dir.path()).unwrap();
    let review = types.get("review").unwrap();
    assert!(review.prompt.starts_with("Review {{goal}}"));
    assert!(review.provenance["prompt"].file.ends_with("review.md"));
    assert_eq!(
        review.partials["progress"], "Folder progress: {{progress}}",
        "the folder overrides the built-in partial"
    );
    assert_eq!(
        types.file.as_deref(),
        Some(dir.path().join("taskdaemon.yml").as_path())
    );
    let none = tempfile::tempdir().unwrap();
    assert_eq!(LoopTypes::load(none.path()).unwrap(), LoopTypes::builtin());
}

#[test]
fn null_removes_an_inherited_tool_and_lists_replace() {
    let text = "types:\n  ro:\n    extends: ralph\n    tools:\n      write_file: null\n      edit_file: null\n      run_command: {commands: [ls]}\n  ro2:\n    extends: ro\n    tools:\n      run_command: {commands: [cat]}\n";
    let types = LoopTypes::load_text(text, "t.yml", None, &no_env).unwrap();
    let ro2 = types.get("ro2").unwrap();
    let tools: Vec<&str> = ro2.tools.keys().map(String::as_str).collect();
    assert_eq!(
        tools,
        ["list_dir", "read_file", "run_command", "search_files"]
    );
    assert_eq!(
        ro2.tools["run_command"].commands.as_deref(),
        Some(&["cat".to_owned()][..])
    );
    assert_eq!(ro2.chain, ["ralph", "ro", "ro2"]);
    let by: BTreeMap<&str, &str> = ro2
        .provenance
        .iter()
        .filter(|(k, _)| k.starts_with("tools"))
        .map(|(k, v)| (k.as_str(), v.type_name.as_str()))
        .collect();
    assert_eq!(by.get("tools.run_command.commands"), Some(&"ro2"));
    assert_eq!(by.get("tools.read_file"), Some(&"ralph"));
}
