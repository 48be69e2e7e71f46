//! The terminal UI end to end: the real binary in a real terminal (tmux,
//! 120x40), driven with send-keys and read with capture-pane. A process
//! spawned from the CLI shows up live, is killed from the TUI after a
//! confirmation, and the records are searched; SIGTERM restores the
//! terminal. Needs tmux (skipped with a notice when it is missing).

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{TAG_VAR, Ws, bin, eventually};

static SESSIONS: AtomicU64 = AtomicU64::new(0);

/// A tmux server of its own (its own socket, no user config), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `taskdaemon tui` for `ws` in a 120x40 session, or `None`
    /// without tmux.
    fn open(ws: &Ws) -> Option<Self> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("SKIPPED: tmux is not installed; the TUI end-to-end test needs it");
            return None;
        }
        let tmux = Tmux {
            socket: format!(
                "td-tui-{}-{}",
                std::process::id(),
                SESSIONS.fetch_add(1, Ordering::SeqCst)
            ),
        };
        let shell = format!(
            // The shell waits for the TUI, prints how it ended and stays
            // (tmux may drop the last output of a pane that dies at once).
            "env {TAG_VAR}={} NO_COLOR=1 {} --workspace {} tui; echo tui-exit=$?; exec sleep 600",
            quote(ws.tag()),
            quote(&bin().display().to_string()),
            quote(&ws.root().display().to_string()),
        );
        tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            "tui",
            &shell,
        ]);
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "tui"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "tui"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn text(&self, text: &str) {
        self.run(&["send-keys", "-t", "tui", "-l", text]);
    }

    fn pane(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", "tui", format])
            .trim()
            .to_owned()
    }

    /// Waits until the TUI has exited; returns its exit status as the
    /// shell around it printed it.
    fn wait_exit(&self) -> String {
        let screen = self.wait_for("the TUI exited", &["tui-exit="]);
        let status = screen.split("tui-exit=").nth(1).unwrap_or_default();
        status
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// The TUI's pid: the child of the pane's shell.
    fn tui_pid(&self) -> i32 {
        let shell = self.pane("#{pane_pid}");
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("the shell's children");
        children
            .split_whitespace()
            .next()
            .and_then(|pid| pid.parse().ok())
            .expect("the TUI runs under the shell")
    }

    /// Waits until the screen holds every one of `needles`.
    fn wait_for(&self, what: &str, needles: &[&str]) -> String {
        let mut screen = String::new();
        eventually(what, || {
            screen = self.screen();
            needles.iter().all(|n| screen.contains(n))
        });
        screen
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The row of `id` on the screen.
fn row_of<'a>(screen: &'a str, id: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("{id} not on screen:\n{screen}"))
}

#[test]
fn spawn_shows_up_live_kill_from_the_tui_and_search_the_records() {
    let ws = Ws::new();
    let Some(tmux) = Tmux::open(&ws) else {
        return;
    };
    tmux.wait_for(
        "the TUI on screen",
        &["1 Processes", "7 Records", "daemon down"],
    );

    // Spawned from the CLI: the change feed brings it in, no key pressed.
    let id = ws.spawn_sh("echo hello-from-the-log; exec sleep 300");
    let screen = tmux.wait_for("the spawned process", &[&id, "running"]);
    assert!(row_of(&screen, &id).contains("sleep 300"));
    tmux.wait_for("its log in the pane", &["hello-from-the-log"]);

    // Kill it from the TUI: x asks first, y confirms.
    tmux.keys(&["x"]);
    tmux.wait_for("the confirmation", &[&format!("Kill {id}"), "y: yes"]);
    assert_eq!(ws.task_status(&id), "running", "nothing happens before y");
    tmux.keys(&["y"]);
    eventually("the process cancelled", || {
        ws.task_status(&id) == "cancelled"
    });
    let screen = tmux.wait_for("the cancelled row", &["cancelled"]);
    assert!(row_of(&screen, &id).contains("cancelled"), "{screen}");

    // Search the records for the task: its events and nothing else.
    tmux.keys(&["7"]);
    tmux.wait_for("the records", &["Records (", "created"]);
    tmux.keys(&["/"]);
    tmux.text(&id);
    tmux.keys(&["Enter"]);
    // The prompt shows the typed text before Enter is handled, so wait
    // for the filtered list itself: the task's events, and only those (the
    // daemon's own `config_loaded` event has no task).
    let record_rows = |screen: &str| -> Vec<String> {
        screen
            .lines()
            .filter(|l| l.starts_with('│') && l.contains(" 20"))
            .map(str::to_owned)
            .collect()
    };
    let mut screen = String::new();
    eventually(&format!("only {id}'s events are listed"), || {
        screen = tmux.screen();
        let rows = record_rows(&screen);
        screen.contains("stop_requested")
            && screen.contains("exited")
            && !rows.is_empty()
            && rows.iter().all(|r| r.contains(&id))
    });
    assert!(
        screen.contains(&format!("/{id}")),
        "the search is shown: {screen}"
    );

    // q quits and gives the terminal back (alternate screen left).
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
    assert_eq!(tmux.pane("#{alternate_on}"), "0");
}

#[test]
fn survives_a_resize_and_sigterm_restores_the_terminal() {
    let ws = Ws::new();
    let Some(tmux) = Tmux::open(&ws) else {
        return;
    };
    tmux.wait_for("the TUI on screen", &["1 Processes"]);

    // Smaller, then larger: each time the frame is drawn to the new size.
    for (width, height) in [(70usize, 20usize), (150, 45)] {
        tmux.run(&[
            "resize-window",
            "-t",
            "tui",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
        eventually("a frame at the new size", || {
            let screen = tmux.screen();
            let lines: Vec<&str> = screen.lines().collect();
            let status = lines.iter().rposition(|l| l.contains("daemon down"));
            // The box closes at the new right edge, the status line sits on the last row.
            lines
                .iter()
                .any(|l| l.starts_with("┌ Processes") && l.chars().count() == width)
                && status == Some(height - 1)
        });
    }

    assert_eq!(
        tmux.pane("#{alternate_on}"),
        "1",
        "the TUI uses the alternate screen"
    );
    common::signal(tmux.tui_pid(), rustix::process::Signal::TERM);
    assert_eq!(tmux.wait_exit(), "0", "a clean exit");
    assert_eq!(
        tmux.pane("#{alternate_on}"),
        "0",
        "the alternate screen was left"
    );
}

#[test]
fn without_a_terminal_it_says_so_and_fails() {
    let ws = Ws::new();
    let run = ws.run(&["tui"]);
    assert!(!run.success(), "{run:?}");
    assert!(run.stderr.contains("needs a terminal"), "{run:?}");
}
