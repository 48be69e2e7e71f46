//! taskdaemon for AI coding agents: the MCP server (`taskdaemon mcp`), the
//! Claude Code hooks that re-inject context after compaction (`taskdaemon
//! hook ...`), and registering both in each agent's own settings files.
//!
//! Like every interface, this crate only parses, formats and calls
//! [`taskdaemon_service::Service`]; the rules live in the service.

pub mod hooks;
pub mod install;
mod params;
pub mod profile;
mod server;
pub mod session;

pub use profile::ToolProfile;
pub use server::{CURRENT_URI, REHYDRATE_URI, ServerOptions, TaskdaemonMcp};

use rmcp::ServiceExt;
use taskdaemon_service::Service;

/// Errors of serving MCP.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error(transparent)]
    Service(#[from] taskdaemon_service::ServiceError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("MCP session failed: {0}")]
    Protocol(String),
}

/// Serves MCP over stdin/stdout until the client disconnects. stdout carries
/// only the protocol; the caller sends logs to stderr.
pub fn serve_stdio(service: Service, options: ServerOptions) -> Result<(), McpError> {
    let server = TaskdaemonMcp::new(service, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(McpError::Runtime)?;
    runtime.block_on(async move {
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| McpError::Protocol(e.to_string()))?;
        running
            .waiting()
            .await
            .map_err(|e| McpError::Protocol(e.to_string()))?;
        Ok(())
    })
}
