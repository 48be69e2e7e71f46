//! The daemon's socket serves only the user the daemon runs as: its 0600
//! mode keeps others out, and the peer's credentials (SO_PEERCRED) are
//! checked too, so loosening the mode does not let another user in. The
//! owner's own processes get in only with the token in
//! `.taskdaemon/daemon-token`, which a sandboxed model command cannot read.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::Ws;

/// What the daemon says to user `nobody` connecting to its socket. (The
/// refusal comes before any request, so the client sends none: a request
/// written after the daemon hung up would fail with a broken pipe.)
fn connect_as_nobody(socket: &std::path::Path) -> std::process::Output {
    let script = "import socket, sys\n\
        s = socket.socket(socket.AF_UNIX)\n\
        s.connect(sys.argv[1])\n\
        print(s.makefile().readline(), end='')\n";
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["/usr/bin/python3", "-c", script])
        .arg(socket)
        .output()
        .expect("setpriv and /usr/bin/python3 run")
}

#[test]
fn another_user_is_refused_even_through_a_loosened_socket() {
    if !running_as_root() {
        eprintln!("NOTICE: not root, so this test cannot act as another user; skipped");
        return;
    }
    let ws = Ws::new();
    ws.run(&["start"]).ok();
    let socket = ws.state_dir().join("daemon.sock");
    assert!(socket.exists(), "{} exists", socket.display());
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is the owner's only");

    // Let user nobody reach and open the socket.
    for dir in [ws.root(), ws.state_dir().as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let refused = connect_as_nobody(&socket);
    let answer = String::from_utf8_lossy(&refused.stdout);
    assert!(
        answer.contains("\"response\":\"error\"")
            && answer.contains("uid 65534 is not the daemon's owner"),
        "stdout {answer:?}, stderr {:?}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // The owner still gets through: a spawn goes through the daemon.
    let id = ws.spawn_sh("exit 0");
    ws.wait_status(&id, "succeeded");
    let log = std::fs::read_to_string(ws.state_dir().join("daemon.log")).unwrap_or_default();
    assert!(log.contains("refused a connection"), "{log}");
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// What the daemon answers a raw client that opens with `hello` (a token),
/// or with nothing, and then asks for a ping.
fn raw_exchange(socket: &std::path::Path, hello: Option<&str>) -> String {
    raw_request(socket, hello, r#"{"request":"ping"}"#)
}

/// What the daemon answers a raw client that opens with `hello` (a token),
/// or with nothing, and then sends the request line `request`.
fn raw_request(socket: &std::path::Path, hello: Option<&str>, request: &str) -> String {
    // The pause lets a refusal of the hello come before the ping is sent:
    // the refusal must still reach a client that goes on writing.
    let script = "import socket, sys, time\n\
        s = socket.socket(socket.AF_UNIX)\n\
        s.connect(sys.argv[1])\n\
        if sys.argv[2]:\n    s.sendall(('{\"request\":\"hello\",\"token\":\"%s\"}\\n' % sys.argv[2]).encode())\n    time.sleep(0.2)\n\
        s.sendall((sys.argv[3] + '\\n').encode())\n\
        print(s.makefile().readline(), end='')\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(socket)
        .arg(hello.unwrap_or(""))
        .arg(request)
        .output()
        .expect("/usr/bin/python3 runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_client_without_the_socket_token_is_refused() {
    let ws = Ws::new();
    ws.run(&["start"]).ok();
    let socket = ws.state_dir().join("daemon.sock");
    let token_file = ws.state_dir().join("daemon-token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token is the owner's only");
    let token = std::fs::read_to_string(&token_file).unwrap();

    let answer = raw_exchange(&socket, None);
    assert!(
        answer.contains("\"response\":\"error\"")
            && answer.contains("did not open with the daemon's socket token"),
        "{answer:?}"
    );
    let answer = raw_exchange(&socket, Some(&"0".repeat(64)));
    assert!(answer.contains("stale or wrong socket token"), "{answer:?}");
    let answer = raw_exchange(&socket, Some(token.trim()));
    assert!(answer.contains("\"response\":\"pong\""), "{answer:?}");

    // A new daemon makes a new token: the old one stops working.
    ws.run(&["stop"]).ok();
    ws.run(&["start"]).ok();
    let renewed = std::fs::read_to_string(&token_file).unwrap();
    assert_ne!(renewed, token);
    let answer = raw_exchange(&socket, Some(token.trim()));
    assert!(answer.contains("stale or wrong socket token"), "{answer:?}");
    assert!(ws.run(&["status", "--json"]).code == Some(0));
    let log = std::fs::read_to_string(ws.state_dir().join("daemon.log")).unwrap_or_default();
    assert!(!log.contains(token.trim()), "the token reached the log");
}

/// `status` and `rehydrate` ask a running daemon, which runs the service
/// call on its open store: the report is the one the store gives this
/// process (the detailed report, always made here, has the same fields
/// besides its queue rows). A client that asks the daemon does not read
/// the config file itself, which shows which path a call took.
#[test]
fn the_daemon_answers_status_and_rehydrate_as_the_store_would() {
    let ws = Ws::new();
    ws.run(&["start"]).ok();
    let running = ws.spawn(&["--", "sleep", "30"]);
    let failed = ws.spawn_sh("exit 3");
    ws.wait_status(&failed, "failed");
    ws.run(&["task", "add", "Write the release notes"]).ok();
    let token = std::fs::read_to_string(ws.state_dir().join("daemon-token")).unwrap();
    let call = |call: &str| -> serde_json::Value {
        let request = format!(r#"{{"request":"call","call":{call}}}"#);
        let socket = ws.state_dir().join("daemon.sock");
        let answer = raw_request(&socket, Some(token.trim()), &request);
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{answer:?} is not JSON: {e}"))
    };

    let answer = call(r#"{"call":"status"}"#);
    assert_eq!(answer["response"], "answer", "{answer}");
    let served = &answer["value"];
    assert_eq!(served["pid"].as_i64().map(|p| p as i32), ws.daemon_pid());
    assert_eq!(served["tasks"]["running"], 1, "{served}");
    assert_eq!(served["tasks"]["failed"], 1, "{served}");
    assert_eq!(served["tasks"]["pending"], 1, "the tracked task: {served}");
    assert_eq!(
        &ws.status(),
        served,
        "status --json prints the daemon's report"
    );
    let mut made_here = ws.run(&["status", "--detailed", "--json"]).ok().json();
    assert!(made_here["workers"].is_array(), "{made_here}");
    made_here.as_object_mut().unwrap().remove("workers");
    assert_eq!(&made_here, served, "the daemon's report is the store's");

    let summary = call(r#"{"call":"rehydrate","budget":2000,"session":null,"peek":true}"#);
    let markdown = summary["value"]
        .as_str()
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(markdown.contains(&running), "{markdown}");
    assert_eq!(ws.run(&["rehydrate", "--peek"]).ok().stdout, markdown);
    let unknown = call(r#"{"call":"fly"}"#);
    assert_eq!(unknown["kind"], "invalid", "{unknown}");

    // A broken config file stops what opens the store here, not what the
    // daemon answers with the config it loaded.
    let config = ws.state_dir().join("config.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, "[queues\n").unwrap();
    let detailed = ws.run(&["status", "--detailed"]);
    assert!(!detailed.success(), "made here, it reads the config");
    assert!(
        detailed.stderr.contains("config.toml"),
        "{}",
        detailed.stderr
    );
    let human = ws.run(&["status"]).ok().stdout;
    assert!(
        human.contains("1 running") && human.contains("1 failed"),
        "{human}"
    );
    assert!(
        ws.run(&["rehydrate", "--peek"])
            .ok()
            .stdout
            .contains(&running)
    );
    std::fs::write(&config, good).unwrap();
    ws.run(&["kill", &running]).ok();
}

/// A daemon that dies after taking a call (a killed daemon's socket takes
/// connections until its last holder exits) leaves the caller to answer a
/// call that changes nothing itself; a call that may have acted, a
/// rehydrate that moves the session's cursor, fails and says so.
#[test]
fn a_daemon_that_hangs_up_before_answering_leaves_read_only_calls_to_the_client() {
    let ws = Ws::new();
    let socket = ws.state_dir().join("daemon.sock");
    std::fs::write(ws.state_dir().join("daemon-token"), "0".repeat(64)).unwrap();
    let dying = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&taken);
    std::thread::spawn(move || {
        for connection in dying.incoming() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(connection);
        }
    });

    let status = ws.status();
    assert_eq!(status["running"], false, "made here: {status}");
    assert!(status["tasks"].is_object(), "{status}");
    let peek = ws.run(&["rehydrate", "--peek"]).ok();
    assert!(!peek.stdout.is_empty());
    let moving = ws.run(&["rehydrate"]);
    assert!(!moving.success(), "{moving:?}");
    assert!(
        moving.stderr.contains("lost the connection to the daemon"),
        "{}",
        moving.stderr
    );
    assert_eq!(
        taken.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "every call went to the socket first"
    );
}
