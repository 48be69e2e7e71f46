//! The fake LLM server on a runtime of its own, so that blocking test code
//! can drive the CLI while the server answers.

use taskdaemon_fake_llm::{FakeLlm, RecordedRequest, Reply, Route};

pub struct Fake {
    server: Option<FakeLlm>,
    _runtime: tokio::runtime::Runtime,
}

impl Fake {
    /// Starts a server that gives `replies` in order.
    pub fn start(replies: Vec<Reply>) -> Self {
        Self::on_own_runtime(FakeLlm::start(replies))
    }

    /// Starts a server that answers each request by the first route it matches.
    pub fn start_routed(routes: Vec<Route>) -> Self {
        Self::on_own_runtime(FakeLlm::start_routed(routes))
    }

    fn on_own_runtime(start: impl std::future::Future<Output = std::io::Result<FakeLlm>>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime.block_on(start).expect("fake server");
        Fake {
            server: Some(server),
            _runtime: runtime,
        }
    }

    pub fn server(&self) -> &FakeLlm {
        self.server.as_ref().expect("server")
    }

    pub fn url(&self) -> String {
        self.server().base_url()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server().requests()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        // The server's tasks belong to the runtime: stop them first.
        drop(self.server.take());
    }
}
