//! Bad loop input fails with a clear error before anything is called.

mod common;

use common::*;
use taskdaemon_llm::*;

#[test]
fn missing_spec_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), argv(&["true"]));
    s.spec = None;
    s.spec_file = Some("SPEC.md".into());
    let err = s.into_config().unwrap_err();
    assert!(matches!(err, SpecError::SpecFile { .. }));
    let text = err.to_string();
    assert!(
        text.contains("cannot read spec file") && text.contains("SPEC.md"),
        "{text}"
    );
}

#[test]
fn spec_file_is_read_relative_to_the_workdir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("SPEC.md"), "build it").unwrap();
    let mut s = spec(dir.path(), argv(&["true"]));
    s.spec = None;
    s.spec_file = Some("SPEC.md".into());
    assert_eq!(s.into_config().unwrap().spec_text, "build it");
}

#[test]
fn empty_validate_command_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for validate in [argv(&[]), argv(&[""]), CommandSpec::Shell("  ".into())] {
        let err = spec(dir.path(), validate).into_config().unwrap_err();
        assert!(matches!(err, SpecError::EmptyValidate), "{err:?}");
        assert!(err.to_string().contains("validate command is empty"));
    }
}

#[test]
fn unknown_provider_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), argv(&["true"]));
    s.provider = "gemini".into();
    let err = s.into_config().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown provider 'gemini' (expected 'anthropic' or 'openai')"
    );
}

#[test]
fn other_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), argv(&["true"]));
    s.max_iterations = 0;
    assert!(
        s.into_config()
            .unwrap_err()
            .to_string()
            .contains("max_iterations")
    );
    let s = spec(&dir.path().join("missing"), argv(&["true"]));
    assert!(matches!(
        s.into_config().unwrap_err(),
        SpecError::Workdir { .. }
    ));
    let mut s = spec(dir.path(), argv(&["true"]));
    s.prompt_template = Some("{{#each}}".into());
    assert!(matches!(
        s.into_config().unwrap_err(),
        SpecError::Template(_)
    ));
}

#[test]
fn loop_spec_deserializes_from_json() {
    let s: LoopSpec = serde_json::from_value(serde_json::json!({
        "spec": "do it", "validate": ["cargo", "test"], "model": "m",
        "provider": "anthropic", "workdir": "/tmp", "shell": true
    }))
    .unwrap();
    assert_eq!(s.validate, argv(&["cargo", "test"]));
    assert_eq!(s.max_iterations, 10);
    let s: LoopSpec = serde_json::from_value(serde_json::json!({
        "spec": "do it", "validate": "cargo test && cargo clippy", "model": "m",
        "provider": "openai", "workdir": "/tmp"
    }))
    .unwrap();
    assert_eq!(
        s.validate,
        CommandSpec::Shell("cargo test && cargo clippy".into())
    );
}

#[test]
fn missing_key_is_a_config_error() {
    let err = ProviderConfig::resolve(Provider::Anthropic, None, |_| None).unwrap_err();
    assert!(err.to_string().contains("ANTHROPIC_API_KEY is not set"));
}
