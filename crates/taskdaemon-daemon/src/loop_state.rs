//! What the daemon keeps of its LLM loops between requests: the slots that
//! bound how many run at once, the cancel token of each running loop, the
//! model clients and the per-provider rate limiter and circuit breaker they
//! share, and the queue of store writes loops ask for. The loop manager
//! (`loops.rs`) drives loops with it; the daemon's state owns one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use taskdaemon_core::{EventKind, LoopEnd, LoopIteration};
use taskdaemon_llm::{
    BreakerState, CircuitBreaker, Llm, LlmError, LoopConfig, Provider, ProviderConfig, RateLimiter,
    build_client,
};
use taskdaemon_workspace::LoopsConfig;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::protocol::Secret;

/// One store change a loop asks for, applied in order by the writer.
pub(crate) enum Op {
    /// Mark the loop running (or resumed) and replay iterations the store missed.
    Running {
        id: String,
        next_iteration: u32,
        missed: Vec<LoopIteration>,
    },
    Event {
        id: String,
        kind: EventKind,
        message: String,
    },
    Iteration {
        id: String,
        iteration: LoopIteration,
    },
    Finish {
        id: String,
        end: LoopEnd,
        /// Told the end once the store has it (the pipeline driver waits on this).
        done: Option<tokio::sync::oneshot::Sender<LoopEnd>>,
    },
}

/// Which client a loop talks through. Loops with the same provider, base URL
/// and key share one client (and its connection pool).
#[derive(PartialEq, Eq, Hash)]
struct ClientKey {
    provider: Provider,
    base_url: Option<String>,
    /// The key a request carried; `None` means the daemon's environment.
    /// Held in memory only.
    key: Option<String>,
}

/// The daemon's loops.
pub(crate) struct Loops {
    pub(crate) slots: Arc<Semaphore>,
    config: LoopsConfig,
    /// Loops with a task in this daemon, by id, with their cancel token.
    pub(crate) active: Mutex<HashMap<String, CancellationToken>>,
    clients: Mutex<HashMap<ClientKey, Llm>>,
    /// One rate limiter and breaker per provider, shared by every loop of it.
    limits: Mutex<HashMap<Provider, (RateLimiter, CircuitBreaker)>>,
    /// Per loop type and limit, the slots of its `concurrency`.
    type_slots: Mutex<HashMap<(String, u32), Arc<Semaphore>>>,
    writer: mpsc::UnboundedSender<Op>,
    pub(crate) writes: Mutex<Option<mpsc::UnboundedReceiver<Op>>>,
}

impl Loops {
    pub(crate) fn new(config: LoopsConfig) -> Self {
        let (writer, writes) = mpsc::unbounded_channel();
        Loops {
            slots: Arc::new(Semaphore::new(config.max_concurrent)),
            config,
            active: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            limits: Mutex::new(HashMap::new()),
            type_slots: Mutex::new(HashMap::new()),
            writer,
            writes: Mutex::new(Some(writes)),
        }
    }

    /// The slots a loop of a type with a `concurrency` limit takes one of.
    /// Loops that started under another limit (an earlier configuration)
    /// count against that one.
    pub(crate) fn type_slots(&self, config: &LoopConfig) -> Option<Arc<Semaphore>> {
        let name = config.loop_type.clone()?;
        let limit = config.type_concurrency?;
        Some(
            lock(&self.type_slots)
                .entry((name, limit))
                .or_insert_with(|| Arc::new(Semaphore::new(limit as usize)))
                .clone(),
        )
    }

    pub(crate) fn send(&self, op: Op) {
        // The writer lives as long as the daemon; a failed send means it is stopping.
        let _ = self.writer.send(op);
    }

    /// Why no new model work should start now, if it should not: a
    /// provider's circuit breaker is open or its rate limiter has no token
    /// left. Providers no loop has used yet are not limited. A half-open
    /// breaker does not hold work back: with nothing running, new work is
    /// what makes its probe call.
    pub(crate) fn backpressure(&self) -> Option<String> {
        let limits = lock(&self.limits);
        let mut reasons: Vec<String> = limits
            .iter()
            .filter_map(|(provider, (limiter, breaker))| match breaker.state() {
                BreakerState::Open => Some(format!(
                    "the {provider} circuit breaker is open (after {} failures in a row; it retries after {:?})",
                    self.config.breaker_failures,
                    self.config.breaker_cooldown
                )),
                _ if limiter.saturated() => Some(format!(
                    "the {provider} rate limit ({} requests a minute) is used up for now",
                    self.config.requests_per_minute
                )),
                _ => None,
            })
            .collect();
        reasons.sort();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// The model client for a loop: the request's key, else the daemon's environment.
    pub(crate) fn llm_for(
        &self,
        provider: Provider,
        base_url: Option<&str>,
        key: Option<&Secret>,
    ) -> Result<Llm, LlmError> {
        let cache_key = ClientKey {
            provider,
            base_url: base_url.map(str::to_owned),
            key: key.map(|k| k.expose().to_owned()),
        };
        let mut clients = lock(&self.clients);
        if let Some(llm) = clients.get(&cache_key) {
            return Ok(llm.clone());
        }
        let config = ProviderConfig::resolve(provider, base_url, |name| match key {
            Some(key) if name == provider.key_var() => Some(key.expose().to_owned()),
            _ => std::env::var(name).ok(),
        })?;
        let client = build_client(config)?;
        let (limiter, breaker) = lock(&self.limits)
            .entry(provider)
            .or_insert_with(|| {
                let per_minute = self.config.requests_per_minute;
                (
                    RateLimiter::per_minute(per_minute, (per_minute / 60).max(1)),
                    CircuitBreaker::new(self.config.breaker_failures, self.config.breaker_cooldown),
                )
            })
            .clone();
        let llm = Llm::new(client)
            .with_rate_limiter(limiter)
            .with_circuit_breaker(breaker);
        clients.insert(cache_key, llm.clone());
        Ok(llm)
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
