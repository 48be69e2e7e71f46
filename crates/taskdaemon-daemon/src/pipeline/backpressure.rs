//! Backpressure: while the LLM side is saturated (a provider's rate limiter
//! has no token, or its circuit breaker is open) the scheduler starts no new
//! model work, and says so in `.taskdaemon/pipeline.json` for `status`.

use taskdaemon_core::time::now_millis;

use super::view::Work;
use crate::blocking::blocking;
use crate::loop_state::lock;
use crate::scheduler_state::{self, SchedulerState};
use crate::state::Shared;

/// Why no new model work starts now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Held {
    pub(super) reason: String,
}

/// Whether backpressure holds new work back now.
pub(super) fn held_now(daemon: &Shared) -> Option<Held> {
    daemon.loops.backpressure().map(|reason| Held { reason })
}

/// Publishes what the pass found (and the work it left waiting) when that
/// differs from what was published last.
pub(super) async fn publish(daemon: &Shared, held: Option<&Held>, waiting: &Work) {
    let state = {
        let mut published = lock(&daemon.pipeline.published);
        let since = match (held, published.as_ref()) {
            (None, _) => None,
            (Some(_), Some(last)) if last.held.is_some() => last.held_since,
            (Some(_), _) => Some(now_millis()),
        };
        let mut waiting_plans: Vec<String> = waiting.plans.iter().cloned().collect();
        waiting_plans.sort();
        let state = SchedulerState {
            held: held.map(|h| h.reason.clone()),
            held_since: since,
            waiting_plans,
            specs_waiting: waiting.ready,
        };
        if published.as_ref() == Some(&state) {
            return;
        }
        *published = Some(state.clone());
        state
    };
    match &state.held {
        Some(reason) => tracing::info!(
            reason,
            plans = state.waiting_plans.len(),
            "pipeline held back: no new spec or plan step starts"
        ),
        None => tracing::debug!("pipeline not held back"),
    }
    let path = daemon.workspace.pipeline_state_path();
    let written = blocking(move || scheduler_state::write(&path, &state)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the pipeline state"),
        Err(e) => tracing::warn!(error = %e, "writing the pipeline state panicked"),
    }
}
