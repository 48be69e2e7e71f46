//! Container execution mode: what a task run in a container asks of the
//! engine (image, mounts, environment, working directory, name), and how
//! the `SRC:DST` and `K=V` arguments that describe it are read.
//!
//! A container task is a process task with a [`ContainerSpec`]: ids,
//! statuses, events and restart policies are the same; only what the shim
//! starts differs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Label naming the workspace a container belongs to.
pub const LABEL_WORKSPACE: &str = "taskdaemon.workspace";
/// Label naming the task a container runs.
pub const LABEL_TASK: &str = "taskdaemon.task";

/// The hidden subcommand the shim starts, instead of the command, for a
/// container task (the runner: it drives the engine and exits with the
/// container's exit code).
pub const RUNNER_SUBCOMMAND: &str = "__container";

/// How a task's command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ExecMode {
    /// A native process under the shim.
    Process,
    /// A container started through the Docker Engine API.
    Container,
}

impl ExecMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecMode::Process => "process",
            ExecMode::Container => "container",
        }
    }
}

impl fmt::Display for ExecMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host path bound into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mount {
    pub source: String,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

impl Mount {
    /// The engine's bind notation: `SRC:DST` or `SRC:DST:ro`.
    pub fn bind(&self) -> String {
        let ro = if self.read_only { ":ro" } else { "" };
        format!("{}:{}{ro}", self.source, self.target)
    }
}

impl FromStr for Mount {
    type Err = String;

    /// `SRC:DST` or `SRC:DST:ro`; both paths absolute.
    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [s, t] => (*s, *t, false),
            [s, t, "ro"] => (*s, *t, true),
            [s, t, "rw"] => (*s, *t, false),
            _ => {
                return Err(format!("mount '{text}': expected SRC:DST or SRC:DST:ro"));
            }
        };
        for (what, path) in [("source", source), ("target", target)] {
            if !path.starts_with('/') {
                return Err(format!(
                    "mount '{text}': the {what} '{path}' must be an absolute path"
                ));
            }
        }
        Ok(Mount {
            source: source.to_owned(),
            target: target.to_owned(),
            read_only,
        })
    }
}

/// Reads one `K=V` environment assignment.
pub fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("env '{text}': expected KEY=VALUE")),
    }
}

/// What the engine needs to run a task's command in a container. The
/// command itself is the task's `argv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerSpec {
    pub image: String,
    /// The engine's socket (`unix:///path`), resolved when the task was
    /// created so that every later call (run, kill, stats) reaches the same
    /// engine; empty means the default.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub engine: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// Only these variables: the caller's environment stays on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// The container's name at the engine (else the engine picks one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Keep the container after it ended (default: removed).
    #[serde(default)]
    pub keep: bool,
}

impl ContainerSpec {
    /// A spec for `image` with nothing else set.
    pub fn image(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            engine: String::new(),
            mounts: Vec::new(),
            env: Vec::new(),
            workdir: None,
            name: None,
            keep: false,
        }
    }

    /// Checks what the engine would otherwise reject late.
    pub fn validate(&self) -> Result<(), String> {
        if self.image.trim().is_empty() {
            return Err("image: must not be empty".into());
        }
        if let Some(dir) = &self.workdir
            && !dir.starts_with('/')
        {
            return Err(format!("workdir '{dir}': must be an absolute path"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_and_reject() {
        let m: Mount = "/src:/dst:ro".parse().unwrap();
        assert_eq!(m.bind(), "/src:/dst:ro");
        assert!(!"/src:/dst".parse::<Mount>().unwrap().read_only);
        assert!("src:/dst".parse::<Mount>().unwrap_err().contains("source"));
        assert!("/src".parse::<Mount>().unwrap_err().contains("SRC:DST"));
    }

    #[test]
    fn env_needs_a_key() {
        assert_eq!(parse_env("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("NOEQ").is_err());
    }

    #[test]
    fn spec_validation() {
        assert!(ContainerSpec::image(" ").validate().is_err());
        let mut spec = ContainerSpec::image("img");
        spec.workdir = Some("rel".into());
        assert!(spec.validate().unwrap_err().contains("workdir"));
    }
}
