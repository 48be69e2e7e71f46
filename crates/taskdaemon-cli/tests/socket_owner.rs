//! The daemon's socket serves only the user the daemon runs as: its 0600
//! mode keeps others out, and the peer's credentials (SO_PEERCRED) are
//! checked too, so loosening the mode does not let another user in.

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
