//! `Ping`: the daemon answers with its pid (clients use it to tell a live
//! daemon from a stale socket).

use crate::protocol::Response;

pub(super) fn handle() -> Response {
    Response::Pong {
        pid: std::process::id() as i32,
    }
}
