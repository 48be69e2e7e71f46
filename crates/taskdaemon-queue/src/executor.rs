//! Turning a document into the store's spec of the task that runs it.
//!
//! Every executor runs under the supervisor like any process task, so the
//! daemon may die and come back while it runs. What it launches is the
//! executor's business (`executors/`); the working directory, the
//! environment, attempts and the time limit are decided here, the same for
//! every executor.

use std::path::{Path, PathBuf};
use std::time::Duration;

use taskdaemon_core::NewAgent;
use taskdaemon_core::process::{RestartMode, RestartPolicy};

use crate::document::TaskDocument;

/// What every document of a workspace shares.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// The `claude` binary: a name looked up on the task's PATH, or a path.
    pub claude_path: PathBuf,
    /// Where documents run unless they say `workdir:`.
    pub workspace_root: PathBuf,
    /// The environment executors start from (the document's `env` goes on top).
    pub base_env: Vec<(String, String)>,
    /// `max_attempts` when the document does not say.
    pub default_max_attempts: u32,
    /// Wait before the second attempt; it doubles for each further one.
    pub retry_backoff: Duration,
}

impl ExecutorSettings {
    /// The settings `config` gives (`[executors] claude_path`, `[queues]
    /// max_attempts` and `retry_backoff`), for documents run from
    /// `workspace_root` with `base_env` under them.
    pub fn from_config(
        config: &taskdaemon_workspace::Config,
        workspace_root: PathBuf,
        base_env: Vec<(String, String)>,
    ) -> Self {
        ExecutorSettings {
            claude_path: config
                .executors
                .claude_path
                .clone()
                .unwrap_or_else(|| PathBuf::from("claude")),
            workspace_root,
            base_env,
            default_max_attempts: config.queues.max_attempts,
            retry_backoff: config.queues.retry_backoff,
        }
    }
}

/// The store spec of a parsed document `name` of `queue`.
pub fn agent_spec(
    queue: &str,
    name: &str,
    doc: &TaskDocument,
    settings: &ExecutorSettings,
) -> NewAgent {
    let max_attempts = doc
        .max_attempts
        .unwrap_or(settings.default_max_attempts)
        .max(1);
    let launch = doc.executor.executor().launch(doc, settings);
    let mut env = settings.base_env.clone();
    // The document's `env:` wins over the executor's, which wins over the base.
    for (key, value) in launch.env.iter().map(|(k, v)| (k, v)).chain(&doc.env) {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    let cwd = match &doc.workdir {
        Some(dir) => resolve(&settings.workspace_root, dir),
        None => settings.workspace_root.clone(),
    };
    NewAgent {
        wanted_id: stem(name),
        queue: queue.to_owned(),
        document: name.to_owned(),
        executor: doc.executor.as_str().to_owned(),
        argv: launch.argv,
        cwd: cwd.to_string_lossy().into_owned(),
        env,
        restart: RestartPolicy {
            mode: RestartMode::OnFailure,
            max_restarts: max_attempts - 1,
            initial_backoff: settings.retry_backoff,
        },
        max_attempts,
        timeout_ms: doc.timeout.map(|t| t.as_millis() as u64),
        limits: doc.limits,
        container: launch.container.map(|c| with_env(c, &doc.env)),
    }
}

/// A container gets the document's `env:` and nothing of the host's.
fn with_env(
    mut container: taskdaemon_core::ContainerSpec,
    env: &std::collections::BTreeMap<String, String>,
) -> taskdaemon_core::ContainerSpec {
    container
        .env
        .extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    container
}

/// The spec that records a document that could not be parsed: nothing to run.
pub fn malformed_spec(queue: &str, name: &str, settings: &ExecutorSettings) -> NewAgent {
    NewAgent {
        wanted_id: stem(name),
        queue: queue.to_owned(),
        document: name.to_owned(),
        executor: "none".to_owned(),
        argv: Vec::new(),
        cwd: settings.workspace_root.to_string_lossy().into_owned(),
        env: Vec::new(),
        restart: RestartPolicy::default(),
        max_attempts: 1,
        timeout_ms: None,
        limits: Default::default(),
        container: None,
    }
}

/// A document's task id: its file name without the extension.
pub fn stem(name: &str) -> String {
    Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| name.to_owned())
}

fn resolve(root: &Path, dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        dir.to_owned()
    } else {
        root.join(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ExecutorSettings {
        ExecutorSettings {
            claude_path: PathBuf::from("claude"),
            workspace_root: PathBuf::from("/ws"),
            base_env: vec![("PATH".into(), "/bin".into()), ("A".into(), "old".into())],
            default_max_attempts: 3,
            retry_backoff: Duration::from_secs(1),
        }
    }

    #[test]
    fn spec_merges_env_and_attempts() {
        let doc = TaskDocument::parse(
            "---\nexecutor: command\ncommand: 'true'\nworkdir: sub\nenv: {A: new}\n---\n",
        )
        .unwrap();
        let spec = agent_spec("q", "task-9.md", &doc, &settings());
        assert_eq!(spec.wanted_id, "task-9");
        assert_eq!(spec.argv, ["true"]);
        assert_eq!(spec.cwd, "/ws/sub");
        assert_eq!(spec.max_attempts, 3);
        assert_eq!(spec.restart.max_restarts, 2);
        assert!(spec.env.contains(&("A".into(), "new".into())));
        assert!(!spec.env.contains(&("A".into(), "old".into())));
    }
}
