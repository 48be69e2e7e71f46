//! Command-line arguments.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};
use taskdaemon_core::duration::parse_duration;
use taskdaemon_core::limits::parse_size;
use taskdaemon_core::process::RestartMode;

/// A supervisor and durable memory for the processes and work of AI coding agents.
#[derive(Debug, Parser)]
#[command(name = "taskdaemon", version, propagate_version = true)]
pub struct Cli {
    /// Use this workspace instead of searching upward from the current directory.
    #[arg(long, global = true, value_name = "DIR", env = "TASKDAEMON_WORKSPACE")]
    pub workspace: Option<PathBuf>,

    /// Keep the state in this PostgreSQL database (postgres://...) instead of
    /// .taskdaemon/state.db; overrides `[store] database_url`.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "TASKDAEMON_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// A subcommand's arguments, or a command group's subcommands, added to its
/// `clap::Command` only when the parser enters that subcommand.
///
/// Building every subcommand up front cost each call of the binary more
/// than a million instructions (a third of a `status`) for the one
/// subcommand it runs; `Command::defer` builds it on entry. Help pages are
/// rendered after the entry, so they see all of it. Completions and man
/// pages walk the whole tree from [`full_command`], which gives groups their
/// subcommands at once: clap mirrors every group's subcommands into the
/// `help` subcommand's tree before it builds the groups, and a deferred
/// group would be mirrored empty (completions would lose `help <group> <sub>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred<T>(pub T);

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Self)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Self)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

impl<T: Args> Args for Deferred<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }

    fn augment_args(cmd: clap::Command) -> clap::Command {
        defer_args(cmd, T::augment_args)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        defer_args(cmd, T::augment_args_for_update)
    }
}

impl<T: Subcommand> Subcommand for Deferred<T> {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        defer_group(cmd, T::augment_subcommands)
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        defer_group(cmd, T::augment_subcommands_for_update)
    }

    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

/// Set while [`full_command`] builds the tree: a [`Deferred`] group is then
/// built at once, with everything beneath it, as groups were before they
/// were deferred; top-level arguments stay deferred, as they already were.
/// Keeping each as it was keeps the completion scripts byte for byte: clap
/// lists a command's own options before the global ones when they are
/// built with the tree, after them when they are deferred.
static FULL_TREE: AtomicBool = AtomicBool::new(false);

/// Set while a group is built for [`full_command`].
static IN_GROUP: AtomicBool = AtomicBool::new(false);

fn defer_group(cmd: clap::Command, build: fn(clap::Command) -> clap::Command) -> clap::Command {
    if !FULL_TREE.load(Ordering::Relaxed) {
        return cmd.defer(build);
    }
    let outer = IN_GROUP.swap(true, Ordering::Relaxed);
    let cmd = build(cmd);
    IN_GROUP.store(outer, Ordering::Relaxed);
    cmd
}

fn defer_args(cmd: clap::Command, build: fn(clap::Command) -> clap::Command) -> clap::Command {
    if IN_GROUP.load(Ordering::Relaxed) {
        build(cmd)
    } else {
        cmd.defer(build)
    }
}

/// The command tree with every group's subcommands in place, for what
/// walks all of it (completion scripts, man pages).
pub fn full_command() -> clap::Command {
    FULL_TREE.store(true, Ordering::Relaxed);
    let cmd = <Cli as clap::CommandFactory>::command();
    FULL_TREE.store(false, Ordering::Relaxed);
    cmd
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create .taskdaemon/ (store, config, logs) and the ad-hoc and planned queues here. Safe to repeat.
    Init,
    /// Start the daemon in the background (other commands start it when needed);
    /// `--web` also serves the dashboard and HTTP API from it.
    Start(Deferred<DaemonWebArgs>),
    /// Stop the daemon; supervised processes keep running.
    Stop,
    /// Show the daemon and a count of tasks by status (--detailed adds queues and workers).
    Status(Deferred<StatusArgs>),
    /// Run a command under supervision; prints the new id as the last line.
    Spawn(Deferred<SpawnArgs>),
    /// List supervised processes.
    Ps(Deferred<PsArgs>),
    /// Print a process's output (or the daemon log without an id).
    Logs(Deferred<LogsArgs>),
    /// Stop a process group: signal, grace period, then SIGKILL.
    Kill(Deferred<KillArgs>),
    /// Wait for a process to end and exit with its exit code.
    Wait(Deferred<WaitArgs>),
    /// Stop a process if it runs and start it again.
    Restart(Deferred<RestartArgs>),
    /// Watch a process another tool started (checked by start time, watched
    /// by pidfd); its exit code is recorded when it can still be read.
    Adopt(Deferred<AdoptArgs>),
    /// Summarise what runs, what ended and what needs attention, within a token budget.
    Rehydrate(Deferred<RehydrateArgs>),
    /// Track work: tasks with dependencies, started and finished by agents.
    #[command(subcommand)]
    Task(Deferred<TaskCommand>),
    /// Ask for a plan: the daemon's loops plan GOAL into specs and phases and
    /// build it in git worktrees; prints the plan's id (PLAN-N) as the last line.
    NewPlan(Deferred<NewPlanArgs>),
    /// Plans: list, show (with costs), approve, cancel, resume, and talk to their loops.
    #[command(subcommand)]
    Plan(Deferred<PlanCommand>),
    /// Record a decision, pattern, note or fact for later sessions.
    Remember(Deferred<RememberArgs>),
    /// List recorded memory.
    #[command(subcommand)]
    Memory(Deferred<MemoryCommand>),
    /// Search tasks, memory and history together, best matches first.
    Search(Deferred<SearchArgs>),
    /// Print the audit trail of every change, oldest first.
    History(Deferred<HistoryArgs>),
    /// Compress old history into the archive; it stays searchable and in `history`.
    Archive(Deferred<ArchiveArgs>),
    /// Agent sessions (one per conversation).
    #[command(subcommand)]
    Session(Deferred<SessionCommand>),
    /// Write everything (tasks, dependencies, memory, events) as JSON or JSON lines.
    Export(Deferred<ExportArgs>),
    /// Load an export into this workspace: an empty one, or with --merge one that holds work.
    Import(Deferred<ImportArgs>),
    /// Merge two branches' JSON-lines exports by id: a git merge driver
    /// (`git config merge.taskdaemon.driver 'taskdaemon merge-driver %O %A %B'`).
    MergeDriver(Deferred<MergeDriverArgs>),
    /// Write a consistent copy of the store.
    Backup(Deferred<BackupArgs>),
    /// Check the store, rebuild the search index and the projection files.
    Repair(Deferred<JsonFlag>),
    /// Rewrite seed 003's task files ([autodev] dir, default .auto-dev/tasks/:
    /// current.json, memory.json, history/) from the store now.
    Autodev(Deferred<JsonFlag>),
    /// Folder queues: add, list and remove them.
    #[command(subcommand)]
    Queues(Deferred<QueuesCommand>),
    /// Queue tasks (task documents run by an executor): list, show, logs, cancel, retry.
    #[command(subcommand)]
    Tasks(Deferred<TasksCommand>),
    /// Queue workers: one per queue, with its current task and counts.
    #[command(subcommand)]
    Workers(Deferred<WorkersCommand>),
    /// Install or remove a systemd user unit that runs the daemon.
    #[command(subcommand)]
    Service(Deferred<ServiceCommand>),
    /// LLM loops: work a spec against a model until a validation command passes.
    #[command(subcommand)]
    Loop(Deferred<LoopCommand>),
    /// Loop types in taskdaemon.yml: write a starter, check it, list the versions the daemon loaded.
    #[command(subcommand)]
    Config(Deferred<ConfigCommand>),
    /// Loop analytics: runs, success rate, iterations, tokens, cost, durations, by type, model or day.
    Analytics(Deferred<AnalyticsArgs>),
    /// Run a worker that claims submitted tasks (no folder watching), for
    /// hosts that only execute; stops on SIGTERM or Ctrl-C after its tasks end.
    Worker(Deferred<WorkerArgs>),
    /// Queue a task document or a command for workers on any host; prints its id.
    Submit(Deferred<SubmitArgs>),
    /// Open the terminal UI: processes, queues, tracked work, loops, plan,
    /// chat and records, live from the change feed (works while the daemon is down).
    Tui(Deferred<TuiArgs>),
    /// Copy this workspace's SQLite store into PostgreSQL, verified by counts and checksum.
    Migrate(Deferred<MigrateArgs>),
    /// Serve taskdaemon's tools to an agent over MCP on stdio, or register
    /// the server in Claude Code, Codex, Gemini CLI or Cursor.
    Mcp(McpArgs),
    /// Install, remove or show the Claude Code hooks that re-inject where work
    /// stands at every session start and after compaction.
    #[command(subcommand)]
    Hooks(Deferred<HooksCommand>),
    /// Answer a Claude Code hook (reads the hook's JSON on stdin; always exits 0).
    #[command(subcommand)]
    Hook(Deferred<HookCommand>),
    /// Internal: run one container task's container (started by its shim).
    #[command(name = "__container", hide = true)]
    Container { id: String },
    /// Internal: supervise one command (started by the daemon).
    #[command(name = "__shim", hide = true)]
    Shim { id: String },
    /// Internal: start a shim for each task id read on stdin, each a fork
    /// of this process (started by the daemon; see `taskdaemon_supervisor::standby`).
    #[command(name = "__shim-standby", hide = true)]
    ShimStandby,
    /// Internal: run the daemon in this process.
    #[command(name = "__daemon", hide = true)]
    Daemon(Deferred<DaemonWebArgs>),
    /// Print a shell completion script (e.g. `taskdaemon completions bash > ~/.local/share/bash-completion/completions/taskdaemon`).
    Completions(Deferred<CompletionsArgs>),
    /// Print the man page, or write one page per command into a directory.
    Man(Deferred<ManArgs>),
    /// Run the daemon in the foreground (for systemd and containers): logs go
    /// to stderr and the log file; SIGTERM or Ctrl-C stops it cleanly, and
    /// supervised processes keep running.
    Run(Deferred<DaemonWebArgs>),
    /// Serve the dashboard and HTTP API in the foreground (`web token` prints the login token).
    Web(WebArgs),
    /// Print the dashboard's login URL (and open a browser when one is available).
    Dashboard(Deferred<DashboardArgs>),
    /// Make a read-only link to the dashboard; `share list` and `share revoke` manage them.
    Share(ShareArgs),
    /// Completions, failures with reasons, durations and cost by queue, kind and day.
    Report(Deferred<ReportArgs>),
    /// Make `task-watchdog` and `task-queue` symlinks to this binary, so the
    /// seed tools' commands keep working (default DIR: this binary's folder).
    InstallAliases(Deferred<InstallAliasesArgs>),
}

#[derive(Debug, Args)]
pub struct InstallAliasesArgs {
    /// Where to put the links.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// How far back.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    pub since: Duration,
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Json,
}

#[derive(Debug, Args)]
pub struct DaemonWebArgs {
    /// Serve the dashboard and HTTP API from the daemon, on ADDR (default
    /// `[web] listen`, else 127.0.0.1:7777).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "")]
    pub web: Option<String>,
    /// Allow a web address other hosts can reach (give TLS files too, or the token travels in clear).
    #[arg(long)]
    pub allow_remote: bool,
    /// Serve HTTPS with this PEM certificate chain (default `[web] tls_cert`).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (default `[web] tls_key`).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WebArgs {
    #[command(subcommand)]
    pub command: Option<WebCommand>,
    /// Listen here (default `[web] listen`, else 127.0.0.1:7777; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Allow an address other hosts can reach (give TLS files too, or the token travels in clear).
    #[arg(long)]
    pub allow_remote: bool,
    /// Serve HTTPS with this PEM certificate chain (default `[web] tls_cert`).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (default `[web] tls_key`).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum WebCommand {
    /// Print the login token (made when missing).
    Token(WebTokenArgs),
}

#[derive(Debug, Args)]
pub struct WebTokenArgs {
    /// Replace the token; browsers logged in with the old one must log in again.
    #[arg(long)]
    pub rotate: bool,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Only print the URL; do not open a browser.
    #[arg(long)]
    pub no_open: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ShareArgs {
    #[command(subcommand)]
    pub command: Option<ShareCommand>,
    /// How long the link works.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub expires: Duration,
    /// What the link sees: `all`, `task ID` or `queue QUEUE`.
    #[arg(long, num_args = 1..=2, value_names = ["SCOPE", "TARGET"], default_value = "all")]
    pub scope: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// List share links (secrets are not shown).
    List(JsonFlag),
    /// Revoke a share link by id; it stops working at once.
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub struct TuiArgs {
    /// The provider the Chat view talks to (key and base URL from its
    /// *_API_KEY and *_BASE_URL, as for `loop run`).
    #[arg(long, default_value = "anthropic", value_parser = ["anthropic", "openai"])]
    pub provider: String,
    /// The model the Chat view talks to (default: the provider's loop default).
    #[arg(long)]
    pub model: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write taskdaemon.1 and a page per subcommand (taskdaemon-spawn.1, ...)
    /// into this directory instead of printing taskdaemon.1.
    #[arg(long, short, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Claim from this queue (repeat for several); none: every queue.
    #[arg(long = "queue", value_name = "QUEUE")]
    pub queues: Vec<String>,
    /// Tasks run at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// A claim is lost when not renewed for this long (renewed every third of it).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub lease: Duration,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["file", "command"])))]
pub struct SubmitArgs {
    /// A task document (Markdown with optional front matter).
    pub file: Option<PathBuf>,
    /// A shell command to run instead of a document.
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,
    /// The queue to put it in.
    #[arg(long, value_name = "QUEUE")]
    pub queue: String,
    /// `command` or `claude-code` (default: the document's, else `command` for --command).
    #[arg(long, value_name = "EXECUTOR")]
    pub executor: Option<String>,
    /// The task id wanted (default: the file stem, or job-TIMESTAMP).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Print the task as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database to copy into; it must hold no tasks yet.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Add each queue's worker: current task, since when, done and failed counts.
    #[arg(long)]
    pub detailed: bool,
}

#[derive(Debug, Subcommand)]
pub enum QueuesCommand {
    /// Register a folder as a queue and create its subfolders.
    Add(QueuesAddArgs),
    /// List the queues with their folders and counts.
    List(JsonFlag),
    /// Unregister a queue (its folder and files stay).
    Rm(QueuesRmArgs),
    /// Take over seed 002's task-monitor config.json (settings and queues),
    /// e.g. ~/.config/task-monitor/config.json; a bad file changes nothing.
    ImportConfig(QueuesImportArgs),
}

#[derive(Debug, Args)]
pub struct QueuesImportArgs {
    /// The task monitor's config.json.
    pub path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct QueuesAddArgs {
    /// The queue folder (created when missing); relative to the current directory.
    pub path: PathBuf,
    /// The queue's id: letters, digits, '-', '_' or '.'.
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// What the queue is for.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// How many of its documents run at once (default 1: one at a time).
    /// They start in queue order either way.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
}

#[derive(Debug, Args)]
pub struct QueuesRmArgs {
    /// The queue to remove.
    #[arg(long, value_name = "ID")]
    pub queue_id: String,
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// A queue task: its document, status, attempts and result.
    Show(TaskShowArgs),
    /// A queue task's result JSON (as in results/ID.json); --output for the
    /// executor's output (Claude Code's stream-json for claude-code).
    Logs(TaskLogsArgs),
    /// Stop a queue task: its process group gets SIGTERM, then SIGKILL after the grace period.
    Cancel(TaskCancelArgs),
    /// List queue tasks, from folders and `submit` alike, oldest first.
    List(TasksListArgs),
    /// Run an ended folder task again: its document goes back to pending/.
    Retry(TaskRetryArgs),
}

#[derive(Debug, Args)]
pub struct TaskRetryArgs {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct TaskShowArgs {
    pub id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TaskLogsArgs {
    #[command(flatten)]
    pub logs: LogsArgs,
    /// Print the executor's output instead of the result JSON (--tail,
    /// --follow and --stderr imply it).
    #[arg(long, conflicts_with = "result")]
    pub output: bool,
    /// The result JSON: what `tasks logs ID` prints anyway.
    #[arg(long, conflicts_with_all = ["follow", "tail", "stderr", "daemon"])]
    pub result: bool,
}

#[derive(Debug, Args)]
pub struct TaskCancelArgs {
    pub id: String,
    /// Time to exit after SIGTERM before SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
}

#[derive(Debug, Subcommand)]
pub enum WorkersCommand {
    /// Whether the workers run, and what each is doing.
    Status(JsonFlag),
    /// One line per worker: queue, current task, since, done and failed counts.
    List(JsonFlag),
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write a systemd user unit that runs the daemon of this workspace.
    Install(ServiceArgs),
    /// Remove the unit written by `service install`.
    Uninstall(ServiceArgs),
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Print what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the unit goes (default: $XDG_CONFIG_HOME/systemd/user or ~/.config/systemd/user).
    #[arg(long, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SpawnArgs {
    /// The agent or tool starting it; gives the id prefix (claude -> CLAUDE-N).
    #[arg(long, value_name = "NAME")]
    pub tool: Option<String>,
    /// A short name for people.
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// Working directory (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable for the command (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env_pair)]
    pub env: Vec<(String, String)>,
    /// When to start the command again after it exits.
    #[arg(long, value_name = "WHEN", default_value = "never", value_parser = parse_restart)]
    pub restart: RestartMode,
    /// Most restarts in all (default 3 when --restart is given).
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<u32>,
    /// Wait before the first restart; doubles each time, up to 60s.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub restart_delay: Duration,
    /// Alert when the process shows no output and no CPU for this long (default from config).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub hang_timeout: Option<Duration>,
    /// Kill the command when it and its children hold more resident memory than this (512M, 2G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,
    /// Kill a process of the command when it has used this much CPU time (10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_cpu_time: Option<Duration>,
    /// Most open files per process.
    #[arg(long, value_name = "N")]
    pub max_files: Option<u64>,
    /// Run at this niceness (-20 first to 19 last).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub nice: Option<i32>,
    /// The agent session this belongs to.
    #[arg(long, value_name = "ID", env = "TASKDAEMON_SESSION")]
    pub session: Option<String>,
    /// Print the new process as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run the command in a container of this image (Docker Engine API at
    /// DOCKER_HOST or the default socket); --env and --name then apply to
    /// the container.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Bind a host path into the container (SRC:DST or SRC:DST:ro; repeatable).
    #[arg(long, value_name = "SRC:DST", requires = "image", value_parser = parse_mount)]
    pub mount: Vec<taskdaemon_core::Mount>,
    /// Working directory inside the container.
    #[arg(long, value_name = "DIR", requires = "image")]
    pub workdir: Option<String>,
    /// Keep the container after it ends (default: removed).
    #[arg(long, requires = "image")]
    pub keep: bool,
    /// The command and its arguments, after `--`.
    #[arg(required = true, num_args = 1.., last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

fn parse_mount(text: &str) -> Result<taskdaemon_core::Mount, String> {
    text.parse()
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Include processes that have ended.
    #[arg(long)]
    pub all: bool,
    /// Only processes started by this tool.
    #[arg(long, value_name = "NAME")]
    pub tool: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The process; without it, the daemon's own log.
    pub id: Option<String>,
    /// The daemon's own log (the same as giving no id).
    #[arg(long, conflicts_with = "id")]
    pub daemon: bool,
    /// Keep printing new output until the process ends.
    #[arg(long, short)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long, short = 'n', value_name = "N")]
    pub tail: Option<usize>,
    /// Standard error instead of standard output.
    #[arg(long)]
    pub stderr: bool,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    pub id: String,
    /// Time to exit after the first signal before SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// The first signal (name or number).
    #[arg(long, value_name = "SIG", default_value = "TERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    pub id: String,
    /// Give up after this long (exit 124).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// The process to watch.
    pub pid: i32,
    /// A short name for people.
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// The agent or tool that started it; gives the id prefix (claude -> CLAUDE-N).
    #[arg(long, value_name = "NAME")]
    pub tool: Option<String>,
    /// The agent session this belongs to.
    #[arg(long, value_name = "ID", env = "TASKDAEMON_SESSION")]
    pub session: Option<String>,
    /// Print the process as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    pub id: String,
    /// Time to exit after SIGTERM before SIGKILL, when it runs.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
}

#[derive(Debug, Args)]
pub struct RehydrateArgs {
    /// Most tokens to print (4 characters count as one).
    #[arg(long, value_name = "TOKENS", default_value_t = 1500)]
    pub budget: usize,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
    /// Do not mark what was shown as seen: the next rehydrate shows it again.
    #[arg(long)]
    pub peek: bool,
    /// The agent session asking: its own task in progress is shown first.
    #[arg(long, value_name = "ID", env = "TASKDAEMON_SESSION")]
    pub session: Option<String>,
}

// Who is acting: the agent's tool and conversation. A plain comment: as a
// doc comment, clap would make it the about text of a deferred command that
// flattens these (see `Deferred`), over the command's own.
#[derive(Debug, Args, Clone, Default)]
pub struct AgentArgs {
    /// The agent or tool acting; gives new ids their prefix (claude -> CLAUDE-N).
    #[arg(long, value_name = "NAME", env = "TASKDAEMON_TOOL")]
    pub tool: Option<String>,
    /// The agent conversation this belongs to.
    #[arg(long, value_name = "ID", env = "TASKDAEMON_SESSION")]
    pub session: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Add a task; prints its id as the last line.
    #[command(visible_alias = "create")]
    Add(Deferred<TaskAddArgs>),
    /// Add or remove a dependency.
    #[command(subcommand)]
    Dep(DepCommand),
    /// List tracked tasks.
    List(Deferred<TaskListArgs>),
    /// Show one task.
    Show(Deferred<TaskShowArgs>),
    /// List unblocked tasks that have not started, most urgent first.
    Ready(Deferred<TaskReadyArgs>),
    /// Start working on a task.
    Start(Deferred<TaskActArgs>),
    /// Mark a started task done.
    Done(Deferred<TaskDoneArgs>),
    /// Mark a task failed, with the reason.
    Fail(Deferred<TaskFailArgs>),
    /// Cancel a task that has not ended.
    Cancel(Deferred<TaskActArgs>),
    /// Change a task's title, description, priority or labels.
    Edit(Deferred<TaskEditArgs>),
    /// Record files the work on a task touched.
    Context(Deferred<TaskContextArgs>),
    /// Print where work stands: the task in progress, its context, ready work, last events.
    Resume(Deferred<TaskResumeArgs>),
    /// Decay: list closed work to summarise (--analyze, JSON for an agent), or store the
    /// summaries an agent wrote (--apply FILE); originals stay searchable and restorable.
    Compact(Deferred<TaskCompactArgs>),
    /// Give a compacted task its original description and note back.
    Restore(Deferred<TaskActArgs>),
    /// Make a task wait until events happen (several gates allowed; all must open):
    /// a task succeeds, a command exits 0, a time passes, a person approves.
    /// A gate that can never open (its process failed) blocks the task, with the reason.
    Gate(Deferred<TaskGateArgs>),
    /// Remove a task's gate number GATE (as `task show` numbers them), or all its gates.
    Ungate(Deferred<TaskUngateArgs>),
    /// Open a task's approval gates (`task gate ID --approval`).
    Approve(Deferred<TaskActArgs>),
    /// Link two tasks: `task link A TYPE B` (blocks, parent-child, waits-for,
    /// related, discovered-from, supersedes, caused-by).
    Link(Deferred<TaskLinkArgs>),
    /// Remove links: `task unlink A [TYPE] B` (every type when none is given).
    Unlink(Deferred<TaskUnlinkArgs>),
    /// The one task to do now (subtasks of work in progress, then priority,
    /// then what unblocks the most, then age).
    Next(Deferred<TaskNextArgs>),
    /// Take a task for this agent (`--session`), atomically, with a lease its
    /// activity renews; `--next` takes the task `next` picks. Exits 3 when
    /// nothing is ready.
    Claim(Deferred<TaskClaimArgs>),
    /// Claimed tasks whose lease ran out: anyone may claim them again.
    Stale(Deferred<TaskStaleArgs>),
    /// A task with its subtasks and links.
    Tree(Deferred<TaskTreeArgs>),
}

/// How a listing prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ListFormat {
    #[default]
    Table,
    Json,
    /// One short line per task, for agents: `ID status pPRI title [+links]`.
    Compact,
}

#[derive(Debug, Args)]
pub struct TaskLinkArgs {
    pub from: String,
    #[arg(value_name = "TYPE", value_parser = parse_link_kind)]
    pub kind: taskdaemon_core::LinkKind,
    pub to: String,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct TaskUnlinkArgs {
    /// `A B` or `A TYPE B`.
    #[arg(value_name = "A [TYPE] B", num_args = 2..=3, required = true)]
    pub words: Vec<String>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct TaskNextArgs {
    /// Say which rule decided, against which runner-up.
    #[arg(long)]
    pub explain: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Same as --format json.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TaskClaimArgs {
    /// The task to claim (a ready one, or one whose claim went stale).
    #[arg(required_unless_present = "next", conflicts_with = "next")]
    pub id: Option<String>,
    /// Claim the task `task next` picks.
    #[arg(long)]
    pub next: bool,
    /// How long the claim lasts without activity by this agent (default 30m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lease: Option<Duration>,
    #[command(flatten)]
    pub agent: AgentArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TaskStaleArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TaskTreeArgs {
    pub id: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("gates").required(true).multiple(true)))]
pub struct TaskGateArgs {
    /// The tracked task to hold back (it must not have started).
    pub id: String,
    /// Wait until this supervised process, queue task or loop succeeds (repeatable).
    #[arg(long = "until-succeeds", value_name = "ID", group = "gates")]
    pub until_succeeds: Vec<String>,
    /// Wait until this shell command exits 0; the daemon runs it in the workspace
    /// root, retrying with backoff (1s doubling, at most every 60s) (repeatable).
    #[arg(long = "until-command", value_name = "CMD", group = "gates")]
    pub until_command: Vec<String>,
    /// Wait until this time (RFC 3339, e.g. 2026-12-01T10:00:00Z).
    #[arg(long, value_name = "TIME", group = "gates", conflicts_with = "after")]
    pub until: Option<String>,
    /// Wait this long from now (e.g. 90s, 2h, 1d).
    #[arg(long, value_name = "DURATION", group = "gates")]
    pub after: Option<String>,
    /// Wait until a person runs `task approve ID`.
    #[arg(long, group = "gates")]
    pub approval: bool,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Print the added gates as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TaskUngateArgs {
    /// The gated task.
    pub id: String,
    /// The gate's number (`task show` lists them); all gates when left out.
    pub gate: Option<i64>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct TaskAddArgs {
    pub title: String,
    /// A task that must succeed first (repeatable).
    #[arg(long = "after", value_name = "ID")]
    pub after: Vec<String>,
    /// An integer (higher first) or low, normal, high, urgent.
    #[arg(long, value_name = "P", default_value = "normal", value_parser = parse_priority)]
    pub priority: i32,
    /// A label (repeatable).
    #[arg(long = "label", value_name = "L")]
    pub labels: Vec<String>,
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Make it a subtask of this task: its id becomes `PARENT.N`.
    #[arg(long, value_name = "ID")]
    pub parent: Option<String>,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Print the new task as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DepCommand {
    /// TASK must wait for DEPENDS_ON to succeed.
    Add(DepArgs),
    /// TASK no longer waits for DEPENDS_ON.
    Rm(DepArgs),
}

#[derive(Debug, Args)]
pub struct DepArgs {
    pub task: String,
    pub depends_on: String,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct TaskListArgs {
    /// Only tasks in this status.
    #[arg(long, value_name = "S")]
    pub status: Option<taskdaemon_core::Status>,
    /// Only tasks with this label.
    #[arg(long, value_name = "L")]
    pub label: Option<String>,
    /// At most this many, the newest.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Page on from here (the cursor the previous page printed); pages
    /// list the newest first.
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

#[derive(Debug, Args)]
pub struct TaskReadyArgs {
    /// At most this many.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    /// Show every waiting task in layers that can run in parallel.
    #[arg(long)]
    pub graph: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["analyze", "apply"])))]
pub struct TaskCompactArgs {
    /// Only work that ended longer ago than this (e.g. 30d, 12h).
    #[arg(long, value_name = "AGE", default_value = "30d", value_parser = parse_age)]
    pub older_than: std::time::Duration,
    /// Print the closed work to summarise, with instructions, as JSON.
    #[arg(long)]
    pub analyze: bool,
    /// Store the summaries in FILE: a JSON array of {"id", "summary"}.
    #[arg(long, value_name = "FILE")]
    pub apply: Option<PathBuf>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    taskdaemon_core::duration::parse_duration(text).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct TaskActArgs {
    pub id: String,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct TaskDoneArgs {
    pub id: String,
    /// What was done, for whoever reads the history.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct TaskFailArgs {
    pub id: String,
    /// Why it failed.
    #[arg(long, value_name = "TEXT", required = true)]
    pub reason: String,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct TaskEditArgs {
    pub id: String,
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// An integer (higher first) or low, normal, high, urgent.
    #[arg(long, value_name = "P", value_parser = parse_priority)]
    pub priority: Option<i32>,
    /// Add a label (repeatable).
    #[arg(long = "label", value_name = "L")]
    pub add_labels: Vec<String>,
    /// Remove a label (repeatable).
    #[arg(long = "unlabel", value_name = "L")]
    pub remove_labels: Vec<String>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct TaskContextArgs {
    pub id: String,
    /// A file the work touched (repeatable).
    #[arg(long = "file", value_name = "PATH", required = true)]
    pub files: Vec<String>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

#[derive(Debug, Args)]
pub struct TaskResumeArgs {
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RememberArgs {
    /// What to remember.
    pub text: String,
    /// decision, pattern, note or fact.
    #[arg(long, value_name = "KIND")]
    pub kind: taskdaemon_core::MemoryKind,
    /// The task it belongs to.
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// Name it: remembering the same key again replaces the text.
    #[arg(long, value_name = "K")]
    pub key: Option<String>,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Print the memory as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// List memory, newest first.
    List(MemoryListArgs),
}

#[derive(Debug, Args)]
pub struct MemoryListArgs {
    /// Only this kind.
    #[arg(long, value_name = "KIND")]
    pub kind: Option<taskdaemon_core::MemoryKind>,
    /// Only memory of this task.
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// At most this many.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to look for; every word must match unless nothing has them all.
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    /// At most this many results.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only events since this long ago (`2h`, `3d`) or this time (RFC 3339).
    #[arg(long, value_name = "WHEN", value_parser = taskdaemon_core::time::parse_since)]
    pub since: Option<i64>,
    /// Only events of this task.
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// At most this many events (the oldest that match).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print JSON lines, one event each.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Archive events older than this.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_duration)]
    pub older_than: Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Mark a session ended (default: $TASKDAEMON_SESSION) and save the snapshot.
    End(SessionEndArgs),
    /// Show the latest session, or one by id.
    Show(SessionShowArgs),
}

#[derive(Debug, Args)]
pub struct SessionEndArgs {
    #[arg(value_name = "ID", env = "TASKDAEMON_SESSION")]
    pub session: String,
}

#[derive(Debug, Args)]
pub struct SessionShowArgs {
    pub session: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Export file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON array of records.
    Json,
    /// One record per line.
    Jsonl,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Write to this file (atomically) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only what syncs between clones through git: tracked tasks and the
    /// counters (no history, memory, sessions or processes).
    #[arg(long)]
    pub tracked: bool,
    /// Keep the secrets in: processes' environments (API keys, passwords)
    /// and the web's share links. Left out by default, so an export can be
    /// shared or committed; a process imported without its environment
    /// restarts with an empty one.
    #[arg(long)]
    pub with_secrets: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// An export, JSON or JSON lines (told apart by its first character).
    pub file: PathBuf,
    /// Apply the file's tracked work to a store that holds some already:
    /// new tasks are added, known ones take the file's version when it is
    /// at least as new (e.g. a file `merge-driver` merged).
    #[arg(long)]
    pub merge: bool,
}

#[derive(Debug, Args)]
pub struct MergeDriverArgs {
    /// The common ancestor's export (git's %O).
    pub base: PathBuf,
    /// Our export (git's %A); the merge is written here.
    pub ours: PathBuf,
    /// Their export (git's %B).
    pub theirs: PathBuf,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy (default: .taskdaemon/backups/state-TIME.db).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum LoopCommand {
    /// Start a loop; streams its progress and prints its id (LOOP-N) as the last line.
    Run(LoopRunArgs),
    /// List loops (unfinished ones unless --all).
    List(LoopListArgs),
    /// Show a loop: status, counters, and every recorded iteration.
    Show(LoopShowArgs),
    /// Print a loop's log: one line per iteration, tool call, retry and verdict.
    Logs(LoopLogsArgs),
    /// Stop a loop; the iteration in progress is dropped.
    Stop(LoopIdArg),
    /// The loop types (taskdaemon.yml over the built-ins), resolved, with where each value came from.
    Types(LoopTypesArgs),
}

#[derive(Debug, Args)]
pub struct LoopTypesArgs {
    /// Only this type, with every value's source.
    pub name: Option<String>,
    /// Print JSON (every type, fully resolved, with provenance).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a documented starter taskdaemon.yml at the workspace root.
    Init(ConfigInitArgs),
    /// Check taskdaemon.yml; exit code 0 when it loads, 2 (with file:line:column: field: message) when not.
    Check(ConfigCheckArgs),
    /// The loop-type configuration versions the daemon has loaded, newest first.
    History(ConfigHistoryArgs),
}

#[derive(Debug, Args)]
pub struct ConfigInitArgs {
    /// Replace an existing taskdaemon.yml.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// The file to check (default: the workspace's taskdaemon.yml).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigHistoryArgs {
    /// Versions shown.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AnalyticsArgs {
    /// Only loops created since then: a duration such as 7d, or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", value_parser = taskdaemon_core::time::parse_since)]
    pub since: Option<i64>,
    /// Group by loop type, model or day.
    #[arg(long, value_enum, default_value_t = AnalyticsBy::Type)]
    pub by: AnalyticsBy,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AnalyticsBy {
    Type,
    Model,
    Day,
}

#[derive(Debug, Args)]
pub struct LoopRunArgs {
    /// Start from this loop type (see `loop types`); the flags below override it.
    #[arg(long = "type", value_name = "NAME")]
    pub loop_type: Option<String>,
    /// An input of the loop type (repeat for several).
    #[arg(long = "input", value_name = "NAME=VALUE", requires = "loop_type")]
    pub inputs: Vec<String>,
    /// The spec the model works to (any text file, e.g. Markdown); required without --type.
    #[arg(long, value_name = "FILE", required_unless_present = "loop_type")]
    pub spec: Option<PathBuf>,
    /// Validation command, run with `sh -c` in the workdir after each iteration; exit 0 ends
    /// the loop. Required without --type (or when the type has none).
    #[arg(long, value_name = "CMD", required_unless_present = "loop_type")]
    pub validate: Option<String>,
    /// Iterations before the loop gives up (default: the type's, else 10).
    #[arg(long, value_name = "N")]
    pub max_iterations: Option<u32>,
    /// anthropic or openai (any OpenAI-compatible server); default: the type's, else anthropic.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// Model name (default: the type's, else claude-sonnet-4-5 for anthropic, gpt-4.1 for openai).
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// The directory the loop works in; its tools cannot leave it (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Print the id and return at once; the loop runs on in the daemon.
    #[arg(long)]
    pub detach: bool,
    /// A short name for people (default: the spec file's name).
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// The agent session this belongs to.
    #[arg(long, value_name = "ID", env = "TASKDAEMON_SESSION")]
    pub session: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoopListArgs {
    /// Include loops that have ended.
    #[arg(long)]
    pub all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LoopShowArgs {
    pub id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LoopLogsArgs {
    pub id: String,
    /// Keep printing until the loop ends.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct LoopIdArg {
    pub id: String,
}

fn parse_link_kind(text: &str) -> Result<taskdaemon_core::LinkKind, String> {
    text.parse()
}

fn parse_priority(text: &str) -> Result<i32, String> {
    taskdaemon_core::tracked::parse_priority(text)
}

fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected K=V, got '{text}'")),
    }
}

fn parse_restart(text: &str) -> Result<RestartMode, String> {
    text.parse()
}

#[derive(Debug, Args)]
pub struct TasksListArgs {
    /// Only tasks of this queue.
    #[arg(long, value_name = "Q")]
    pub queue: Option<String>,
    /// Only tasks in this status.
    #[arg(long, value_name = "S")]
    pub status: Option<taskdaemon_core::Status>,
    /// At most this many, the newest.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(subcommand)]
    pub command: Option<McpCommand>,
    /// The tool the calls act as (id prefix); default: the client's name (claude-code -> claude).
    #[arg(long, value_name = "NAME", env = "TASKDAEMON_TOOL")]
    pub tool: Option<String>,
    /// The session the calls belong to; default: the client's own session, else a new one.
    #[arg(long, value_name = "ID", env = "TASKDAEMON_SESSION")]
    pub session: Option<String>,
    /// Which tools to offer: core (tracked work and process basics),
    /// standard (plus links, control, search, history) or all.
    #[arg(
        long,
        value_name = "PROFILE",
        env = "TASKDAEMON_MCP_PROFILE",
        default_value = "all"
    )]
    pub profile: taskdaemon_mcp::ToolProfile,
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Register the server in an agent's MCP configuration (merged; safe to repeat).
    Install(McpInstallArgs),
    /// Remove the server from an agent's MCP configuration.
    Uninstall(McpClientArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum McpClientName {
    /// Claude Code: .mcp.json in the workspace.
    Claude,
    /// Codex: $CODEX_HOME/config.toml (default ~/.codex/config.toml).
    Codex,
    /// Gemini CLI: .gemini/settings.json in the workspace.
    Gemini,
    /// Cursor: .cursor/mcp.json in the workspace.
    Cursor,
}

#[derive(Debug, Args)]
pub struct McpInstallArgs {
    pub client: McpClientName,
    /// The command the agent runs (default: this binary's absolute path; pass
    /// `taskdaemon` for a file shared with people who have it on PATH).
    #[arg(long, value_name = "PROGRAM")]
    pub command: Option<String>,
}

#[derive(Debug, Args)]
pub struct McpClientArgs {
    pub client: McpClientName,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HookAgent {
    Claude,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HookScopeArg {
    /// .claude/settings.json: shared with the project.
    Project,
    /// .claude/settings.local.json: this checkout only.
    Local,
    /// ~/.claude/settings.json: every project of yours.
    User,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Merge the SessionStart and PreCompact hooks into Claude Code's settings (safe to repeat).
    Install(HooksInstallArgs),
    /// Remove our hooks (only ours) from Claude Code's settings.
    Uninstall(HooksUninstallArgs),
    /// Show which settings files hold our hooks.
    Status(JsonFlag),
}

#[derive(Debug, Args)]
pub struct HooksInstallArgs {
    pub agent: HookAgent,
    /// Which settings file.
    #[arg(long, value_enum, default_value = "project")]
    pub scope: HookScopeArg,
    /// The command the hooks run (default: this binary's absolute path).
    #[arg(long, value_name = "PROGRAM")]
    pub command: Option<String>,
}

#[derive(Debug, Args)]
pub struct HooksUninstallArgs {
    pub agent: HookAgent,
    /// Only this settings file (default: all three).
    #[arg(long, value_enum)]
    pub scope: Option<HookScopeArg>,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// SessionStart: print the rehydrate summary as context for the session.
    SessionStart,
    /// PreCompact: mark the point the context is compacted at.
    PreCompact,
}

#[derive(Debug, Args)]
pub struct NewPlanArgs {
    /// What to build (or --file).
    #[arg(
        value_name = "GOAL",
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    pub goal: Option<String>,
    /// Read the request from a file (e.g. request.md).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Start without waiting for `plan approve`.
    #[arg(long)]
    pub auto_approve: bool,
    /// The branch specs are merged into (default: the checked-out branch).
    #[arg(long, value_name = "BRANCH")]
    pub target: Option<String>,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Print the new plan as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// List plans, oldest first (unfinished ones unless --all).
    List(PlanListArgs),
    /// Show a plan: its specs and their phases, with statuses and costs.
    Show(PlanShowArgs),
    /// Approve a draft plan so the daemon starts it.
    Approve(PlanIdArgs),
    /// Cancel a plan and every unfinished spec and phase of it.
    Cancel(PlanCancelArgs),
    /// Continue a paused or failed plan; succeeded phases do not run again.
    Resume(PlanIdArgs),
    /// Send a message to a plan's loops (all of them unless --to).
    Message(PlanMessageArgs),
    /// Answer a question (a query) a loop asked; MSG-ID is shown by rehydrate and `task resume`.
    Answer(PlanAnswerArgs),
    /// Messages that could not be delivered, with the reason (all plans unless ID).
    DeadLetters(PlanDeadLettersArgs),
}

#[derive(Debug, Args)]
pub struct PlanListArgs {
    /// Include ended plans (succeeded, failed, cancelled).
    #[arg(long)]
    pub all: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanShowArgs {
    /// The plan (PLAN-N).
    pub id: String,
    /// Print the tree plan -> specs -> phases as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanIdArgs {
    /// The plan (PLAN-N).
    pub id: String,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanCancelArgs {
    /// The plan (PLAN-N).
    pub id: String,
    /// Why, kept as the note of everything cancelled.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Print the plan's tree as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MessageKindArg {
    Alert,
    Share,
    Query,
    Stop,
}

#[derive(Debug, Args)]
pub struct PlanMessageArgs {
    /// The plan (PLAN-N).
    pub id: String,
    /// The message.
    pub text: String,
    /// A spec name (default: every loop of the plan).
    #[arg(long, value_name = "SPEC")]
    pub to: Option<String>,
    /// What the message is for.
    #[arg(long, value_enum, default_value_t = MessageKindArg::Share)]
    pub kind: MessageKindArg,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Print the message as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanAnswerArgs {
    /// The question's id (MSG-N).
    pub message: String,
    /// The answer.
    pub text: String,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Print the answered message as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanDeadLettersArgs {
    /// Only this plan (PLAN-N).
    pub id: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
