//! The standby shim of requested launches (`spawn`, `restart`): one process
//! started with the first such launch that forks each next shim ahead of
//! time (see [`taskdaemon_supervisor::standby`]), so a client waiting for
//! its process to start does not wait for the exec and start-up of a fresh
//! shim. It is let go after [`IDLE`] without a launch, so an idle daemon
//! holds no extra process for long.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use taskdaemon_supervisor::standby::Standby;
use tokio::sync::Notify;

use crate::blocking::blocking;
use crate::state::{Daemon, Shared};

/// How long the standby is kept with no launch to hand it: as long as a
/// queue worker keeps its own (`queues::STANDBY_IDLE`), for the same reasons.
pub(crate) const IDLE: Duration = crate::queues::STANDBY_IDLE;

/// The standby, when there is one, and when it was last handed a launch.
#[derive(Default)]
pub(crate) struct RequestStandby {
    kept: Mutex<Kept>,
    /// Wakes [`keep`] when a standby is put in.
    put_in: Notify,
}

#[derive(Default)]
struct Kept {
    standby: Option<Standby>,
    /// Whether a launch holds the standby now (taken, not given back).
    lent: bool,
    last_used: Option<Instant>,
}

impl RequestStandby {
    /// Takes the standby for one launch, if there is one and no other launch
    /// holds it (that one then starts a fresh shim instead of waiting).
    pub(crate) fn take(&self) -> Option<Standby> {
        let mut kept = self.lock();
        kept.last_used = Some(Instant::now());
        let taken = kept.standby.take();
        kept.lent |= taken.is_some();
        taken
    }

    /// Gives back what [`take`](Self::take) lent: `standby` is what is left
    /// of it (none when it was let go as unusable), `took_one` whether there
    /// was one to lend. Starts a standby for the next launch when there is
    /// none and no launch holds one.
    pub(crate) fn give_back(&self, daemon: &Daemon, took_one: bool, standby: Option<Standby>) {
        let mut kept = self.lock();
        if took_one {
            kept.lent = false;
        }
        if kept.standby.is_some() || kept.lent {
            return;
        }
        kept.standby = match standby {
            Some(standby) => Some(standby),
            None => Standby::start(&daemon.exe, &daemon.workspace)
                .inspect_err(|e| {
                    tracing::warn!(error = %e, "cannot start a standby shim for requests");
                })
                .ok(),
        };
        if kept.standby.is_some() {
            self.put_in.notify_one();
        }
    }

    /// The standby, taken out, when it has had no launch for [`IDLE`];
    /// otherwise how long until it may have.
    fn take_if_idle(&self) -> Result<Option<Standby>, Duration> {
        let mut kept = self.lock();
        let idle_for = kept.last_used.map_or(IDLE, |at| at.elapsed());
        if idle_for < IDLE && kept.standby.is_some() {
            return Err(IDLE - idle_for);
        }
        Ok(kept.standby.take())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Lets the request standby go once it has been idle for [`IDLE`]; sleeps
/// while there is none.
pub(crate) async fn keep(daemon: Shared) {
    loop {
        daemon.request_standby.put_in.notified().await;
        loop {
            match daemon.request_standby.take_if_idle() {
                Err(left) => tokio::time::sleep(left).await,
                Ok(standby) => {
                    if let Some(standby) = standby {
                        let _ = blocking(move || standby.dismiss()).await;
                    }
                    break;
                }
            }
        }
    }
}
