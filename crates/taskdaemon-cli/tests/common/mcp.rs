//! A minimal MCP client for tests: `taskdaemon mcp` as a child process,
//! JSON-RPC lines over its stdin and stdout, as any MCP client speaks it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::thread;

use serde_json::{Value, json};

use super::{COMMAND_TIMEOUT, Ws};

pub struct McpChild {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    next_id: u64,
}

/// What a `tools/call` answered: its text and whether it is an error.
#[derive(Debug)]
pub struct ToolAnswer {
    pub text: String,
    pub is_error: bool,
}

impl ToolAnswer {
    pub fn json(&self) -> Value {
        assert!(!self.is_error, "the call failed: {}", self.text);
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

impl McpChild {
    /// Starts `taskdaemon mcp ARGS` in `ws` and completes the handshake as
    /// the client `client_name`. Returns the child and `initialize`'s result.
    pub fn start(ws: &Ws, args: &[&str], client_name: &str) -> (Self, Value) {
        let mut command = ws.command(&[&["mcp"], args].concat());
        let stderr = std::fs::File::create(ws.root().join("mcp-stderr.log")).unwrap();
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command.spawn().expect("start taskdaemon mcp");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut mcp = Self {
            child,
            stdin,
            lines,
            next_id: 1,
        };
        let init = mcp.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": client_name, "version": "1.0"}
            }),
        );
        mcp.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        (mcp, init)
    }

    fn send(&mut self, message: &Value) {
        writeln!(self.stdin, "{message}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a request and returns its response (`result` or `error`).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = self
                .lines
                .recv_timeout(COMMAND_TIMEOUT)
                .unwrap_or_else(|e| panic!("no answer to {method}: {e}"));
            // Every line on stdout must be a JSON-RPC message.
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout is not the protocol ({e}): {line}"));
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    /// Calls a tool; a protocol-level error fails the test.
    pub fn call(&mut self, tool: &str, arguments: Value) -> ToolAnswer {
        let response = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        let result = &response["result"];
        assert!(result.is_object(), "{tool}: {response}");
        ToolAnswer {
            text: result["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["text"].as_str())
                .collect(),
            is_error: result["isError"] == json!(true),
        }
    }

    /// Closes stdin: the server ends; returns its exit code.
    pub fn close(mut self) -> Option<i32> {
        drop(self.stdin);
        self.child.wait().ok()?.code()
    }
}
