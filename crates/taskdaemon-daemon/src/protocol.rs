//! Messages between the CLI and the daemon: one JSON object per line.
//!
//! This module owns the wire format both ends speak: the messages, how a
//! line is cut from the socket ([`read_frame`], bounded so a runaway client
//! cannot make the daemon buffer without end) and how a line becomes a
//! request ([`parse_request`]).
//!
//! A connection opens with [`Request::Hello`] carrying the daemon's socket
//! token (read from `.taskdaemon/daemon-token`); the daemon answers nothing
//! to a good one and refuses the connection otherwise. The socket's mode and
//! the peer's uid keep other users out; the token keeps out the owner's own
//! processes that cannot read `.taskdaemon/`, such as a model's commands in
//! the Landlock sandbox, which can still reach a path-named socket on
//! kernels before Landlock ABI 9.

use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};
use taskdaemon_core::{LoopRecord, NewProcess, TaskRecord};
use taskdaemon_llm::LoopSpec;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// The first line of every connection: proves the client can read the
    /// daemon's token file.
    Hello {
        token: SocketToken,
    },
    Ping,
    Spawn(Box<NewProcess>),
    Kill {
        id: String,
        /// Signal number sent first.
        signal: i32,
        grace_ms: u64,
    },
    Restart {
        id: String,
        grace_ms: u64,
    },
    Shutdown,
    /// Re-read the `[[queue]]` list: start workers for new queues, stop removed ones.
    ReloadQueues,
    /// Create and start an LLM loop.
    LoopRun(Box<LoopRun>),
    /// Stop a loop; answered once it has ended (or with its state after a while).
    LoopStop {
        id: String,
    },
    /// Watch a process another tool started.
    Adopt(AdoptRequest),
    /// A person changed a plan (new, approved, resumed, cancelled, a
    /// message or an answer): the pipeline scheduler looks at every plan
    /// now instead of at its next tick.
    WakePipeline,
    /// A call of the layer above (a status report, a summary) run on the
    /// daemon's open store, whose connections have the schema parsed and
    /// their statements prepared: a short-lived client saves opening the
    /// store itself. What `call` holds is the service layer's business.
    Call {
        call: serde_json::Value,
    },
}

/// The daemon socket's token. `Debug` never shows it, so a logged request
/// cannot leak it; comparison takes the same time wherever the inputs differ.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SocketToken(String);

impl SocketToken {
    /// Wraps a token read from the token file.
    pub fn new(token: impl Into<String>) -> Self {
        SocketToken(token.into())
    }

    /// Whether `self` is `expected`, in constant time.
    pub fn matches(&self, expected: &SocketToken) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.as_bytes().ct_eq(expected.0.as_bytes()))
    }

    /// The raw token, for writing the token file only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SocketToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SocketToken([REDACTED])")
    }
}

/// A process to adopt, and how to label it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptRequest {
    pub pid: i32,
    pub name: Option<String>,
    pub tool: Option<String>,
    pub session: Option<String>,
}

/// A loop to create. The spec carries the base URL (not secret, stored);
/// the key travels only in memory, over the owner-only socket, and is never
/// stored: a restarted daemon uses its own environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopRun {
    /// The engine's spec, with the spec text inline and an absolute workdir.
    pub spec: LoopSpec,
    pub name: Option<String>,
    pub session: Option<String>,
    /// The command line that asked, for reading.
    pub argv: Vec<String>,
    /// The API key from the caller's environment, if it has one.
    pub api_key: Option<Secret>,
    /// Start it from a loop type of the daemon's current configuration.
    #[serde(default)]
    pub typed: Option<TypedRun>,
}

/// `loop run --type NAME --input k=v ...`: the daemon resolves the type with
/// the configuration it holds now, and the loop keeps that version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypedRun {
    pub name: String,
    pub inputs: std::collections::BTreeMap<String, String>,
    /// What the caller set explicitly; wins over the type.
    pub overrides: taskdaemon_looptypes::Overrides,
}

/// A secret string: sent as is, but never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for building a client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// What the daemon answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Pong {
        pid: i32,
    },
    Task {
        task: Box<TaskRecord>,
    },
    Loop {
        record: Box<LoopRecord>,
    },
    ShuttingDown,
    /// The queues that now have workers.
    QueuesReloaded {
        queues: Vec<String>,
    },
    /// The pipeline scheduler will look at every plan now.
    PipelineWoken,
    /// What a [`Request::Call`] returned, as the service layer encodes it.
    Answer {
        value: serde_json::Value,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
}

/// Broad classes of failure, so the CLI can pick an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No such task.
    NotFound,
    /// The request does not fit the task's state.
    Conflict,
    /// The request itself is malformed.
    Invalid,
    /// The daemon failed to do it.
    Internal,
}

/// The longest request line the daemon reads. A loop request carries its
/// spec text inline, so this is generous; a longer line ends the connection.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Reads one line (without its `\n` or `\r\n`) of at most `max` bytes;
/// `None` at the end of the stream. A last line without a newline counts. A
/// longer line or one that is not UTF-8 is an [`io::ErrorKind::InvalidData`]
/// error, after which the stream is out of step and must be closed.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut ended = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            break;
        }
        let (take, found) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > max.saturating_add(usize::from(found)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("request longer than {max} bytes"),
            ));
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if found {
            ended = true;
            break;
        }
    }
    if line.is_empty() && !ended {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "request is not UTF-8"))
}

/// A request line, or the error answer for a malformed one.
pub fn parse_request(line: &str) -> Result<Request, Response> {
    serde_json::from_str(line).map_err(|e| Response::Error {
        kind: ErrorKind::Invalid,
        message: format!("malformed request: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame of `bytes`, read `chunk` bytes at a time, up to the first error.
    fn frames(bytes: &[u8], chunk: usize, max: usize) -> (Vec<String>, Option<io::Error>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut reader = tokio::io::BufReader::with_capacity(chunk, bytes);
            let mut out = Vec::new();
            loop {
                match read_frame(&mut reader, max).await {
                    Ok(Some(line)) => out.push(line),
                    Ok(None) => return (out, None),
                    Err(e) => return (out, Some(e)),
                }
            }
        })
    }

    #[test]
    fn lines_split_anywhere_read_the_same() {
        let bytes = b"{\"request\":\"ping\"}\r\n\n{\"request\":\"shutdown\"}";
        for chunk in 1..=bytes.len() {
            let (lines, error) = frames(bytes, chunk, 64);
            assert!(error.is_none(), "chunk {chunk}: {error:?}");
            assert_eq!(
                lines,
                ["{\"request\":\"ping\"}", "", "{\"request\":\"shutdown\"}"],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_line_over_the_limit_or_not_utf8_is_refused() {
        let (lines, error) = frames(b"12345678\n123456789\nnever read\n", 3, 8);
        assert_eq!(lines, ["12345678"]);
        let error = error.expect("the second line is too long");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("longer than 8 bytes"), "{error}");

        let (lines, error) = frames(b"ok\n\xff\xfe\n", 4, 64);
        assert_eq!(lines, ["ok"]);
        assert_eq!(error.map(|e| e.kind()), Some(io::ErrorKind::InvalidData));
    }

    #[test]
    fn a_malformed_request_is_answered_as_invalid() {
        assert_eq!(parse_request(r#"{"request":"ping"}"#), Ok(Request::Ping));
        match parse_request(r#"{"request":"fly"}"#) {
            Err(Response::Error { kind, message }) => {
                assert_eq!(kind, ErrorKind::Invalid);
                assert!(message.contains("malformed request"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
