//! The connection to the engine and the calls made on one container.

use std::future::Future;
use std::time::Duration;

use bollard::query_parameters::{StatsOptions, StopContainerOptions};
use bollard::{ClientVersion, Docker};
use futures_util::StreamExt;

/// Podman reports its own version (4.x) as the API version; the Docker API
/// it implements is 1.41, so the client is pinned there instead of
/// negotiating.
const API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// Seconds a single request may take (a wait or a log stream is not one).
const REQUEST_TIMEOUT: u64 = 120;

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "container engine unreachable at {socket}: {reason}\n\
         hint: start Docker, or Podman's service (`podman system service --time=0 {socket}`), \
         or point DOCKER_HOST at a running engine"
    )]
    Unreachable { socket: String, reason: String },
    #[error(
        "image '{image}' is not present at the container engine {socket}\n\
         hint: pull or import it first (`docker pull {image}`, `podman pull {image}`)"
    )]
    NoImage { socket: String, image: String },
    #[error("container engine at {socket}: {message}")]
    Api { socket: String, message: String },
    #[error("cannot start a runtime for the engine client: {0}")]
    Runtime(std::io::Error),
}

/// CPU and memory of one container, from the engine's stats.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Usage {
    /// Between the engine's last two samples, when it has two (Docker);
    /// else see `cpu_total_ns`.
    pub cpu_percent: Option<f64>,
    /// CPU time used since the start (Podman's one-shot stats carry no
    /// previous sample to compare with).
    pub cpu_total_ns: Option<u64>,
    pub memory_bytes: Option<u64>,
}

/// The socket named by `DOCKER_HOST` (as the caller's environment gives
/// it), else Docker's default, else Podman's rootful default when only it
/// exists.
pub fn default_socket(docker_host: Option<&str>) -> String {
    if let Some(host) = docker_host.filter(|h| !h.is_empty()) {
        return host.to_owned();
    }
    let docker = "/var/run/docker.sock";
    let podman = "/run/podman/podman.sock";
    if !std::path::Path::new(docker).exists() && std::path::Path::new(podman).exists() {
        return format!("unix://{podman}");
    }
    format!("unix://{docker}")
}

/// A client of one engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    socket: String,
}

impl Engine {
    /// A client of the engine at `socket` (`unix:///path`, or a bare path).
    /// Nothing is sent yet: [`Engine::ping`] checks it answers.
    pub fn new(socket: &str) -> Result<Self, EngineError> {
        let socket = if socket.is_empty() {
            default_socket(std::env::var("DOCKER_HOST").ok().as_deref())
        } else {
            socket.to_owned()
        };
        let path = socket.trim_start_matches("unix://");
        if socket.contains("://") && !socket.starts_with("unix://") {
            return Err(EngineError::Unreachable {
                socket: socket.clone(),
                reason: "only unix sockets are supported".into(),
            });
        }
        let docker = Docker::connect_with_unix(path, REQUEST_TIMEOUT, &API_VERSION)
            .map_err(|e| unreachable(&socket, e))?;
        Ok(Self { docker, socket })
    }

    /// The socket as given (`unix:///path`).
    pub fn socket(&self) -> &str {
        &self.socket
    }

    pub(crate) fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Checks the engine answers; the error names the socket and a hint.
    pub async fn ping(&self) -> Result<(), EngineError> {
        let path = self.socket.trim_start_matches("unix://");
        if !std::path::Path::new(path).exists() {
            return Err(EngineError::Unreachable {
                socket: self.socket.clone(),
                reason: "no such socket".into(),
            });
        }
        self.docker
            .ping()
            .await
            .map(drop)
            .map_err(|e| unreachable(&self.socket, e))
    }

    /// Checks the engine holds `image` (containers are created from local
    /// images only: nothing is pulled behind the caller's back).
    pub async fn has_image(&self, image: &str) -> Result<(), EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(e) if is_gone(&e) => Err(EngineError::NoImage {
                socket: self.socket.clone(),
                image: image.to_owned(),
            }),
            Err(e) => Err(self.api(e)),
        }
    }

    /// Stops container `id`: SIGTERM, then SIGKILL after `grace` (the
    /// engine escalates). A container already gone is not an error.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), EngineError> {
        let seconds = i32::try_from(grace.as_secs().max(u64::from(grace.subsec_nanos() > 0)))
            .unwrap_or(i32::MAX);
        let options = StopContainerOptions {
            t: Some(seconds),
            signal: None,
        };
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_gone(&e) || is_not_modified(&e) => Ok(()),
            Err(e) => Err(self.api(e)),
        }
    }

    /// CPU (percent of one CPU) and memory of container `id`; `None` when
    /// it is gone.
    pub async fn usage(&self, id: &str) -> Result<Option<Usage>, EngineError> {
        let options = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let mut stream = self.docker.stats(id, Some(options));
        let stats = match stream.next().await {
            None => return Ok(None),
            Some(Err(e)) if is_gone(&e) => return Ok(None),
            Some(Err(e)) => return Err(self.api(e)),
            Some(Ok(stats)) => stats,
        };
        let memory_bytes = stats.memory_stats.as_ref().and_then(|m| m.usage);
        let cpu_total_ns = stats
            .cpu_stats
            .as_ref()
            .and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage);
        Ok(Some(Usage {
            cpu_percent: cpu_percent(&stats),
            cpu_total_ns,
            memory_bytes,
        }))
    }

    pub(crate) fn api(&self, e: bollard::errors::Error) -> EngineError {
        match e {
            bollard::errors::Error::DockerResponseServerError { message, .. } => EngineError::Api {
                socket: self.socket.clone(),
                message,
            },
            other if is_connection(&other) => unreachable(&self.socket, other),
            other => EngineError::Api {
                socket: self.socket.clone(),
                message: other.to_string(),
            },
        }
    }
}

/// The usage of each `(socket, container id)`, asked of the engines at
/// once (an engine takes about a second to measure CPU); `None` where a
/// container is gone or its engine did not answer.
pub fn usage_of_all(containers: &[(String, String)]) -> Vec<Option<Usage>> {
    let asks = containers.iter().map(|(socket, id)| async move {
        let engine = Engine::new(socket).ok()?;
        engine.usage(id).await.ok().flatten()
    });
    block_on(futures_util::future::join_all(asks)).unwrap_or_else(|_| vec![None; containers.len()])
}

/// Runs `future` on a small runtime of its own, for callers without one.
pub fn block_on<F: Future>(future: F) -> Result<F::Output, EngineError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(EngineError::Runtime)?;
    Ok(runtime.block_on(future))
}

/// Percent of one CPU between the engine's previous and current sample.
fn cpu_percent(stats: &bollard::models::ContainerStatsResponse) -> Option<f64> {
    let now = stats.cpu_stats.as_ref()?;
    let before = stats.precpu_stats.as_ref()?;
    let used = now.cpu_usage.as_ref()?.total_usage? as f64
        - before.cpu_usage.as_ref()?.total_usage? as f64;
    let system = now.system_cpu_usage? as f64 - before.system_cpu_usage? as f64;
    let cpus = f64::from(now.online_cpus.unwrap_or(1).max(1));
    (system > 0.0 && used >= 0.0).then(|| used / system * cpus * 100.0)
}

pub(crate) fn is_gone(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn is_not_modified(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 304,
            ..
        }
    )
}

fn is_connection(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::HyperLegacyError { .. }
            | bollard::errors::Error::IOError { .. }
            | bollard::errors::Error::SocketNotFoundError(_)
    )
}

fn unreachable(socket: &str, e: bollard::errors::Error) -> EngineError {
    EngineError::Unreachable {
        socket: socket.to_owned(),
        reason: match e {
            bollard::errors::Error::SocketNotFoundError(_) => "no such socket".into(),
            other => other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_wins() {
        assert_eq!(default_socket(Some("unix:///x.sock")), "unix:///x.sock");
        assert!(default_socket(None).starts_with("unix:///"));
    }

    #[test]
    fn a_missing_socket_is_unreachable_and_named() {
        // Refused when connecting or when pinging: either way, named.
        let error = match Engine::new("unix:///nonexistent/td.sock") {
            Err(e) => e.to_string(),
            Ok(engine) => block_on(engine.ping()).unwrap().unwrap_err().to_string(),
        };
        assert!(error.contains("unix:///nonexistent/td.sock"), "{error}");
        assert!(error.contains("hint:"), "{error}");
    }
}
