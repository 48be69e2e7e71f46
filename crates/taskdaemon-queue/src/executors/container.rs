//! The `container` executor: the document runs in a container of `image:`
//! through the Docker Engine API (Docker, or Podman's compatible service),
//! supervised like a process. The command is `cmd:` (a list: program and
//! arguments), else `sh -c <body>`; `mounts:` binds host paths
//! (`SRC:DST[:ro]`), `keep: true` keeps the ended container, and the
//! document's `env:` is the container's environment.

use taskdaemon_core::{ContainerSpec, Mount};

use super::{Executor, Launch};
use crate::document::{DocumentError, TaskDocument};
use crate::executor::ExecutorSettings;

/// The `container` executor.
pub(super) struct Container;

impl Container {
    fn argv(doc: &TaskDocument) -> Vec<String> {
        match doc.option::<Vec<String>>("cmd").ok().flatten() {
            Some(cmd) if !cmd.is_empty() => cmd,
            _ => vec!["sh".into(), "-c".into(), doc.body.trim().to_owned()],
        }
    }

    fn mounts(doc: &TaskDocument) -> Result<Vec<Mount>, DocumentError> {
        doc.option::<Vec<String>>("mounts")?
            .unwrap_or_default()
            .iter()
            .map(|m| {
                m.parse()
                    .map_err(|e: String| doc.error_at_field("mounts", &e))
            })
            .collect()
    }
}

impl Executor for Container {
    fn name(&self) -> &'static str {
        "container"
    }

    fn fields(&self) -> &'static [&'static str] {
        &["image", "cmd", "mounts", "keep"]
    }

    fn check(&self, doc: &TaskDocument) -> Result<(), DocumentError> {
        let image = doc.option::<String>("image")?.unwrap_or_default();
        if image.trim().is_empty() {
            return Err(doc.error_at_field("image", "the container executor needs `image:`"));
        }
        let cmd = doc.option::<Vec<String>>("cmd")?.unwrap_or_default();
        if cmd.is_empty() && doc.body.trim().is_empty() {
            return Err(doc.error_at_body(
                Some("cmd"),
                "the container executor needs `cmd:` (or a script as the body)",
            ));
        }
        Self::mounts(doc)?;
        doc.option::<bool>("keep")?;
        Ok(())
    }

    fn launch(&self, doc: &TaskDocument, _settings: &ExecutorSettings) -> Launch {
        // Checked when parsed, so these reads succeed.
        let image = doc
            .option::<String>("image")
            .ok()
            .flatten()
            .unwrap_or_default();
        let container = ContainerSpec {
            mounts: Self::mounts(doc).unwrap_or_default(),
            keep: doc.option::<bool>("keep").ok().flatten().unwrap_or(false),
            ..ContainerSpec::image(image)
        };
        Launch {
            argv: Self::argv(doc),
            env: Vec::new(),
            container: Some(container),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn launch(text: &str) -> Launch {
        let settings = ExecutorSettings {
            claude_path: PathBuf::from("claude"),
            workspace_root: PathBuf::from("/ws"),
            base_env: Vec::new(),
            default_max_attempts: 1,
            retry_backoff: Duration::from_secs(1),
        };
        Container.launch(&TaskDocument::parse(text).unwrap(), &settings)
    }

    #[test]
    fn image_cmd_and_mounts() {
        let l = launch(
            "---\nexecutor: container\nimage: img:1\ncmd: [echo, hi]\nmounts: ['/a:/b:ro']\n---\n",
        );
        assert_eq!(l.argv, ["echo", "hi"]);
        let c = l.container.unwrap();
        assert_eq!(
            (c.image.as_str(), c.mounts[0].bind()),
            ("img:1", "/a:/b:ro".into())
        );
        let l = launch("---\nexecutor: container\nimage: img\n---\necho hi\n");
        assert_eq!(l.argv, ["sh", "-c", "echo hi"]);
    }

    #[test]
    fn errors_name_the_field_and_line() {
        let err = TaskDocument::parse("---\nexecutor: container\n---\necho\n").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("image"), "{err}");
        let err =
            TaskDocument::parse("---\nexecutor: container\nimage: i\nmounts: ['rel:/b']\n---\nx\n")
                .unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (4, Some("mounts")),
            "{err}"
        );
    }
}
