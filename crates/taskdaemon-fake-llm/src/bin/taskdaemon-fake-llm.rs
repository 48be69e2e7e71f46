//! `taskdaemon-fake-llm SCRIPT.json [--port N] [--record FILE] [--model NAME]`
//!
//! Serves the scripted replies in SCRIPT.json on
//! 127.0.0.1 and prints the bound port as the first line of stdout, so a test
//! can point a real client (e.g. the `claude` CLI via `ANTHROPIC_BASE_URL`) at it.
//! SCRIPT.json is a JSON array of replies, or an object
//! `{"routes": [{"when_offers": TOOL, "when_prompt_contains": TEXT, "replies": [...]}], "replies": [...]}`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use taskdaemon_fake_llm::{FakeLlm, FakeLlmOptions, Reply, Script};

const USAGE: &str =
    "usage: taskdaemon-fake-llm SCRIPT.json [--port N] [--record FILE] [--model NAME]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("taskdaemon-fake-llm: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut script_path = None;
    let mut options = FakeLlmOptions::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or(USAGE)?;
                options.port = value
                    .parse()
                    .map_err(|_| format!("--port: not a port number: {value}"))?;
            }
            "--record" => options.record_path = Some(PathBuf::from(args.next().ok_or(USAGE)?)),
            "--model" => options.model = Some(args.next().ok_or(USAGE)?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ if script_path.is_none() => script_path = Some(PathBuf::from(arg)),
            _ => return Err(USAGE.into()),
        }
    }
    let script_path = script_path.ok_or(USAGE)?;
    let text = std::fs::read_to_string(&script_path)
        .map_err(|e| format!("{}: {e}", script_path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", script_path.display()))?;
    let script = if value.is_array() {
        Script {
            routes: Vec::new(),
            replies: serde_json::from_value::<Vec<Reply>>(value)
                .map_err(|e| format!("{}: {e}", script_path.display()))?,
        }
    } else {
        serde_json::from_value::<Script>(value)
            .map_err(|e| format!("{}: {e}", script_path.display()))?
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    runtime.block_on(async {
        let server = FakeLlm::start_script(script, options)
            .await
            .map_err(|e| format!("cannot bind: {e}"))?;
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "{}", server.addr().port());
        let _ = stdout.flush();
        let _ = tokio::signal::ctrl_c().await;
        drop(server);
        Ok(())
    })
}
