//! MCP tool-call round trips, driven by `bench/mcp.sh`: starts `taskdaemon
//! mcp` as an agent does (a child process, JSON-RPC lines on stdio),
//! completes the handshake, then times `--runs` calls of one tool, from
//! writing the request to reading its response, and prints
//! `p50 p99 mean min` in milliseconds on one line.
//!
//! `mcp_round_trip --exe BIN --workspace DIR --runs N --tool NAME --args JSON`

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

mod support;

use support::{Result, number, options, required};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.is_empty() {
        // Plain `cargo bench` runs every bench target: nothing to do without arguments.
        eprintln!("mcp_round_trip: run through bench/mcp.sh");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mcp_round_trip: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let (opts, _) = options(args)?;
    let exe = required(&opts, "exe")?;
    let workspace = required(&opts, "workspace")?;
    let tool = required(&opts, "tool")?;
    let arguments = opts.get("args").map_or("{}", String::as_str);
    let runs = number(&opts, "runs", 500)?;
    let mut child = Command::new(exe)
        .args(["--workspace", workspace, "mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {exe}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut exchange = |id: u64, method: &str, params: &str| -> Result<String> {
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
        )
        .map_err(|e| e.to_string())?;
        stdin.flush().map_err(|e| e.to_string())?;
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("the server closed stdout".to_owned());
            }
            if line.contains(&format!(r#""id":{id}"#)) {
                return Ok(line.clone());
            }
        }
    };
    exchange(
        0,
        "initialize",
        r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}"#,
    )?;
    let call = format!(r#"{{"name":"{tool}","arguments":{arguments}}}"#);
    let mut times = Vec::with_capacity(runs as usize);
    for id in 1..=runs {
        let start = Instant::now();
        let answer = exchange(id, "tools/call", &call)?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if answer.contains(r#""isError":true"#) {
            return Err(format!("{tool} failed: {answer}"));
        }
    }
    // Closing stdin ends the server.
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!("{:.3} {:.3} {:.3} {:.3}", at(0.5), at(0.99), mean, times[0]);
    Ok(())
}
