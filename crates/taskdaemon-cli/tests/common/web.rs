//! The web API's test harness: a server of the real binary on a free
//! loopback port, its login token, and requests that present a secret (the
//! token, a share link's, or a wrong one) as a bearer token.

use std::fs;
use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::{Client, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use super::{Ws, bin, eventually_some};

pub struct Web {
    pub ws: Ws,
    /// `http://127.0.0.1:PORT`, as the server recorded it.
    pub base: String,
    pub token: String,
    pub http: Client,
}

impl Web {
    /// A daemon serving the web (`start --web 127.0.0.1:0`).
    pub fn with_daemon() -> Self {
        let ws = Ws::new();
        ws.run(&["start", "--web", "127.0.0.1:0"]).ok();
        let base = fs::read_to_string(ws.state_dir().join("web.url"))
            .expect("web.url written by the daemon")
            .trim()
            .to_owned();
        Self::serving(ws, base)
    }

    /// `taskdaemon web` in the foreground over `ws`, with no daemon.
    pub fn foreground(mut ws: Ws) -> Self {
        let root = ws.root().to_string_lossy().into_owned();
        let program = bin().to_string_lossy().into_owned();
        ws.start_own(
            &program,
            &["--workspace", &root, "web", "--listen", "127.0.0.1:0"],
        );
        let url_file = ws.state_dir().join("web.url");
        let base = eventually_some("the server records its URL", || {
            fs::read_to_string(&url_file)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        });
        Self::serving(ws, base)
    }

    fn serving(ws: Ws, base: String) -> Self {
        let token = ws.run(&["web", "token"]).ok().last_line();
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A server answering 413 before reading the body closes that
            // connection; a pooled one would fail the next request.
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        Self {
            ws,
            base,
            token,
            http,
        }
    }

    /// `method path` presenting `secret`, with a JSON `body` if any.
    pub fn send(&self, secret: &str, method: Method, path: &str, body: Option<String>) -> Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Bearer {secret}"));
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        request.send().expect("the server answers")
    }

    pub fn get_as(&self, secret: &str, path: &str) -> Response {
        self.send(secret, Method::GET, path, None)
    }

    /// A new share link's secret (`share --scope SCOPE... --expires 1h`).
    pub fn share(&self, scope: &[&str]) -> String {
        let mut args = vec!["share", "--scope"];
        args.extend_from_slice(scope);
        args.extend_from_slice(&["--expires", "1h"]);
        let url = self.ws.run(&args).ok().last_line();
        url.split("token=").nth(1).expect("a share URL").to_owned()
    }
}
