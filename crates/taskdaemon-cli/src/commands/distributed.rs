//! `taskdaemon worker` and `taskdaemon submit`: work shared by several hosts
//! through one store (PostgreSQL; SQLite works too, on one host).
//!
//! Both run without a workspace when a database URL is given, so a host
//! that only executes needs nothing but the binary and the URL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use taskdaemon_core::time::now_millis;
use taskdaemon_daemon::worker::{WorkerOptions, run_worker};
use taskdaemon_queue::TaskDocument;
use taskdaemon_queue::executor::{ExecutorSettings, agent_spec};
use taskdaemon_store::Store;
use taskdaemon_workspace::{Config, Workspace};

use super::{find_workspace, open_store};
use crate::args::{SubmitArgs, WorkerArgs};
use crate::error::UsageError;
use crate::output::print_json;

/// The store and (when there is one) the workspace: a workspace when one is
/// found or named, else the database URL alone.
fn open(workspace_arg: Option<&Path>) -> anyhow::Result<(Option<Workspace>, Arc<dyn Store>)> {
    match find_workspace(workspace_arg) {
        Ok(workspace) => {
            let store = open_store(&workspace)?;
            Ok((Some(workspace), store))
        }
        Err(no_workspace) => match taskdaemon_daemon::store::open_url() {
            Some(store) => Ok((None, store?)),
            None => Err(no_workspace.context(
                "no workspace here, and no --database-url (or TASKDAEMON_DATABASE_URL) to use instead",
            )),
        },
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

pub fn worker(workspace_arg: Option<&Path>, args: WorkerArgs) -> anyhow::Result<u8> {
    let (workspace, store) = open(workspace_arg)?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            request_stop as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            request_stop as *const () as libc::sighandler_t,
        );
    }
    let log_dir = match &workspace {
        Some(ws) => ws.procs_dir(),
        None => std::env::temp_dir().join("taskdaemon-worker"),
    };
    let options = WorkerOptions {
        queues: args.queues,
        concurrency: args.concurrency,
        lease: args.lease,
        log_dir,
        ..WorkerOptions::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !STOP.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    eprintln!(
        "worker started: {} runner(s), queues {}",
        options.concurrency,
        if options.queues.is_empty() {
            "all".to_owned()
        } else {
            options.queues.join(", ")
        }
    );
    let report = run_worker(store, options, stop)?;
    STOP.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    println!(
        "worker stopped: {} task attempt(s) recorded, {} fenced off",
        report.completed, report.fenced
    );
    Ok(0)
}

pub fn submit(workspace_arg: Option<&Path>, args: SubmitArgs) -> anyhow::Result<u8> {
    if !taskdaemon_workspace::valid_queue_id(&args.queue) {
        return Err(UsageError(format!(
            "--queue '{}': use letters, digits, '-', '_' or '.'",
            args.queue
        ))
        .into());
    }
    let (workspace, store) = open(workspace_arg)?;
    let config = match &workspace {
        Some(ws) => Config::load(&ws.config_path())?,
        None => Config::default(),
    };
    let (name, text) = match (&args.file, &args.command) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "task.md".to_owned());
            (name, text)
        }
        (None, Some(command)) => {
            let executor = args.executor.as_deref().unwrap_or("command");
            // One path for both: a command is a document whose body is the script.
            (
                format!("job-{}.md", now_millis()),
                format!("---\nexecutor: {executor}\n---\n{command}\n"),
            )
        }
        (None, None) => return Err(UsageError("give a FILE or --command".to_owned()).into()),
    };
    // --executor wins over the document's front matter.
    let doc = TaskDocument::parse_as(&text, args.executor.as_deref())
        .map_err(|e| UsageError(format!("{name}: {e}")))?;
    let root = match &workspace {
        Some(ws) => ws.root().to_owned(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
    };
    let settings = ExecutorSettings {
        claude_path: config
            .executors
            .claude_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("claude")),
        workspace_root: root,
        // Workers run with their own environment plus the document's `env:`.
        base_env: Vec::new(),
        default_max_attempts: config.queues.max_attempts,
        retry_backoff: config.queues.retry_backoff,
    };
    let mut spec = agent_spec(&args.queue, &name, &doc, &settings);
    if let Some(id) = args.id {
        spec.wanted_id = id;
    }
    let task = store.submit(&spec, "cli")?;
    if args.json {
        print_json(&task)?;
    } else {
        println!("{}", task.id);
    }
    Ok(0)
}
