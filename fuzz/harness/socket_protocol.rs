//! The daemon socket: lines cut from a byte stream by the daemon's frame
//! reader, each parsed as a request. The first byte picks how many bytes a
//! read returns (1 to 16) and the line limit (64 bytes or 1 MiB), so frames
//! split everywhere and the too-long path runs. A request that parses must
//! come through the CLI's round trip (serialize, parse) unchanged.

use std::sync::OnceLock;

use taskdaemon_daemon::protocol::{Request, parse_request, read_frame};
use tokio::io::BufReader;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

/// Whether every line of the stream is a request.
pub fn run(data: &[u8]) -> Result<(), String> {
    let Some((&shape, bytes)) = data.split_first() else {
        return Ok(());
    };
    let capacity = usize::from(shape & 0x0f) + 1;
    let max = if shape & 0x10 == 0 { 64 } else { 1 << 20 };
    runtime().block_on(async {
        let mut reader = BufReader::with_capacity(capacity, bytes);
        let mut outcome = Ok(());
        loop {
            let line = match read_frame(&mut reader, max).await {
                Ok(Some(line)) => line,
                Ok(None) => return outcome,
                Err(e) => return Err(e.to_string()),
            };
            assert!(line.len() <= max + 1, "a frame longer than the limit");
            match parse_request(&line) {
                Ok(request) => {
                    let text = serde_json::to_string(&request).expect("a request serializes");
                    let again: Request =
                        serde_json::from_str(&text).expect("a serialized request parses");
                    assert_eq!(again, request, "the wire round trip changed a request");
                }
                Err(refusal) => outcome = Err(format!("{refusal:?}")),
            }
        }
    })
}
