//! The API key is read from the environment and never reaches disk, error
//! text, Debug output or child processes. Its own test binary, because it
//! sets a process environment variable before any thread exists.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::json;
use taskdaemon_fake_llm::{FakeLlm, Reply, Turn};
use taskdaemon_llm::*;

fn grep_tree(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(grep_tree(&path, needle));
        } else if fs::read(&path)
            .map(|b| String::from_utf8_lossy(&b).contains(needle))
            .unwrap_or(false)
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

#[test]
fn api_key_never_leaks() {
    // SAFETY: this binary's only test sets the variable before starting any thread.
    unsafe { std::env::set_var("ANTHROPIC_API_KEY", KEY) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        let server = FakeLlm::start([
            Turn::tool(
                "run_command",
                json!({"argv": ["sh", "-c", "env > env.txt; echo \"key=$ANTHROPIC_API_KEY\" > key.txt"]}),
            )
            .into(),
            Turn::text("done").into(),
            Reply::ServerError { status: Some(401) },
        ])
        .await
        .unwrap();
        let llm = Llm::from_env(Provider::Anthropic, Some(&server.base_url()))
            .unwrap()
            .with_retry(fast_retry(1));
        assert!(!format!("{llm:?}").contains(KEY));

        let progress = dir.path().join("progress.jsonl");
        let config = spec(&work, argv(&["sh", "-c", "env > validate-env.txt"]))
            .into_config()
            .unwrap();
        let outcome = LoopRunner::new(config.clone(), llm.clone(), &progress)
            .unwrap()
            .run()
            .await
            .unwrap();
        assert_eq!(outcome.status, LoopStatus::Succeeded { iteration: 1 });
        // The key really was in use (so the checks below mean something) ...
        assert_eq!(server.requests()[0].header("x-api-key"), Some(KEY));
        assert!(fs::read_to_string(work.join("env.txt")).unwrap().contains("PATH="));
        assert_eq!(fs::read_to_string(work.join("key.txt")).unwrap(), "key=\n");
        // ... and is nowhere on disk: not in the workdir, not in the progress log.
        assert_eq!(grep_tree(dir.path(), KEY), Vec::<String>::new());

        // Errors carry no key either.
        let err = llm
            .complete(
                &LlmRequest {
                    model: "m".into(),
                    system: None,
                    messages: vec![Message::user_text("x")],
                    tools: vec![],
                    max_tokens: 10,
                },
                &Default::default(),
                &mut |_| {},
            )
            .await
            .unwrap_err();
        assert!(matches!(err, LlmError::Http { status: 401, .. }));
        assert!(!err.to_string().contains(KEY));
        assert!(!format!("{err:?}").contains(KEY));
        let cfg = ProviderConfig::from_env(Provider::Anthropic, None).unwrap();
        assert!(!format!("{cfg:?}").contains(KEY));
        assert_eq!(cfg.api_key.expose(), KEY);
    });
}
