//! Coordinator delivery: the store-backed handler of a loop's pipeline
//! tools (structure the model hands over, and messages between loops and
//! the human), and the messages section of a Ralph loop's next prompt.

use std::sync::Mutex;

use async_trait::async_trait;
use taskdaemon_core::pipeline::{
    BROADCAST, Delivery, HUMAN, MessageKind, MessageRecord, NewMessage, NewPhase, NewSpec,
    PipelineStatus, PlanContent, validate_spec_set,
};
use taskdaemon_llm::{CallContext, PipelineCall, PipelineHandler, PipelineLoop};
use taskdaemon_store::StoreError;

use super::midphase::between_iterations;
use super::scheduler::stop_loops;
use crate::blocking::blocking;
use crate::loop_state::lock;
use crate::state::{ACTOR, Shared};

/// The store-backed handler of one loop's pipeline tools.
pub(super) struct Handler {
    daemon: Shared,
    plan: String,
    /// The spec the loop works for (phase and Ralph loops).
    spec: Option<String>,
    /// Specs whose dependencies do not exist yet, created when they do;
    /// `finish` checks what is left as one set (and so names a cycle).
    held: Mutex<Vec<NewSpec>>,
}

impl Handler {
    pub(super) fn new(daemon: &Shared, plan: &str, spec: Option<String>) -> Self {
        Handler {
            daemon: daemon.clone(),
            plan: plan.to_owned(),
            spec,
            held: Mutex::new(Vec::new()),
        }
    }

    fn handle_now(&self, kind: PipelineLoop, call: PipelineCall) -> Result<String, String> {
        let store = &*self.daemon.store;
        let plan = &self.plan;
        let err = |e: StoreError| e.to_string();
        match call {
            PipelineCall::SubmitPlan(p) => {
                let content = PlanContent {
                    title: p.title,
                    summary: p.summary,
                    body: p.body,
                };
                let record = store.submit_plan(plan, &content, ACTOR).map_err(err)?;
                self.daemon.pipeline.saw_plan(&record);
                Ok(match record.status {
                    PipelineStatus::Draft => format!(
                        "plan {plan} submitted; it waits for approval (`taskdaemon plan approve {plan}`)"
                    ),
                    _ => format!("plan {plan} submitted and approved; specs come next"),
                })
            }
            PipelineCall::CreateSpec(c) => {
                let new = NewSpec {
                    name: c.name,
                    title: c.title,
                    body: c.body,
                    depends_on: c.depends_on,
                    priority: c.priority.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
                };
                let existing = self.existing_specs()?;
                let mut held = lock(&self.held);
                held.retain(|h| h.name != new.name);
                if new
                    .depends_on
                    .iter()
                    .all(|d| existing.iter().any(|(n, _)| n == d))
                {
                    let created = store
                        .add_specs(plan, std::slice::from_ref(&new), ACTOR)
                        .map_err(err)?;
                    created
                        .iter()
                        .for_each(|s| self.daemon.pipeline.saw_spec(s));
                    let mut reply = format!("created spec `{}`", new.name);
                    if let Some(c) = created.first() {
                        reply = format!("created spec `{}` ({})", c.name, c.id);
                    }
                    let flushed = self.flush_held(&mut held)?;
                    if !flushed.is_empty() {
                        reply.push_str(&format!(
                            "; now created too (their dependencies exist): {}",
                            flushed.join(", ")
                        ));
                    }
                    Ok(reply)
                } else {
                    let missing: Vec<&str> = new
                        .depends_on
                        .iter()
                        .filter(|d| !existing.iter().any(|(n, _)| n == *d))
                        .map(String::as_str)
                        .collect();
                    let reply = format!(
                        "spec `{}` is held until {} exist(s); create those too. Held specs are created once their dependencies are, and checked as one set when you call finish",
                        new.name,
                        missing.join(", ")
                    );
                    held.push(new);
                    Ok(reply)
                }
            }
            PipelineCall::CreatePhase(c) => {
                let spec = self.spec_id()?;
                let new = NewPhase {
                    name: c.name,
                    title: c.title,
                    body: c.body,
                    validation: c.validation,
                };
                let created = store.add_phases(&spec, &[new], ACTOR).map_err(err)?;
                Ok(match created.first() {
                    Some(p) => format!("created phase {} `{}` ({})", p.number, p.name, p.id),
                    None => "phase created".to_owned(),
                })
            }
            PipelineCall::Finish => {
                match kind {
                    PipelineLoop::Spec => {
                        let held = std::mem::take(&mut *lock(&self.held));
                        if !held.is_empty() {
                            let existing = self.existing_specs()?;
                            let names: Vec<&str> = held.iter().map(|h| h.name.as_str()).collect();
                            if let Err(e) = validate_spec_set(&existing, &held) {
                                return Err(format!(
                                    "{e}; none of {} was created: call create_spec again for them with valid dependencies, then finish",
                                    names.join(", ")
                                ));
                            }
                            let created = store.add_specs(plan, &held, ACTOR).map_err(err)?;
                            created
                                .iter()
                                .for_each(|s| self.daemon.pipeline.saw_spec(s));
                        }
                        let count = self.existing_specs()?.len();
                        if count == 0 {
                            return Err(
                                "no spec created yet: call create_spec at least once, then finish"
                                    .into(),
                            );
                        }
                        Ok(format!("{count} spec(s) recorded; they run now"))
                    }
                    _ => {
                        let spec = self.spec_id()?;
                        let phases = store
                            .plan_tree(plan)
                            .map_err(err)?
                            .specs
                            .into_iter()
                            .find(|s| s.spec.id == spec)
                            .map_or(0, |s| s.phases.len());
                        if phases == 0 {
                            return Err("no phase created yet: call create_phase at least once, then finish".into());
                        }
                        Ok(format!(
                            "{phases} phase(s) recorded; they run now, in order"
                        ))
                    }
                }
            }
            PipelineCall::SendMessage(m) => {
                let kind = m.kind;
                let to = m.to.to_string();
                let record = store
                    .send_message(
                        &NewMessage {
                            plan: plan.clone(),
                            from: self.sender(),
                            to: to.clone(),
                            kind,
                            body: m.body,
                        },
                        ACTOR,
                    )
                    .map_err(err)?;
                if let Some(dead) = self.dead_if_ended(&record)? {
                    return Ok(dead);
                }
                if kind == MessageKind::Stop {
                    return self.stop(&record);
                }
                Ok(format!("{kind} sent to {to} as {}", record.id))
            }
            PipelineCall::Answer(a) => store
                .answer_as(plan, &self.sender(), &a.message, &a.answer, ACTOR)
                .map(|q| format!("answer to {} sent to {}'s loop", q.id, q.from))
                .map_err(err),
            PipelineCall::Ask(a) => {
                let record = store
                    .send_message(
                        &NewMessage {
                            plan: plan.clone(),
                            from: self.sender(),
                            to: a.to.to_string(),
                            kind: MessageKind::Query,
                            body: a.question,
                        },
                        ACTOR,
                    )
                    .map_err(err)?;
                if let Some(dead) = self.dead_if_ended(&record)? {
                    return Ok(dead);
                }
                Ok(format!(
                    "question {} sent to {}; the answer comes in a later iteration's context",
                    record.id, a.to
                ))
            }
        }
    }

    /// Moves a message for a spec that has ended to the dead letters; the
    /// text tells the model so.
    fn dead_if_ended(&self, message: &MessageRecord) -> Result<Option<String>, String> {
        if message.to == HUMAN || message.to == BROADCAST {
            return Ok(None);
        }
        let store = &*self.daemon.store;
        let spec = store
            .spec(&format!("{}/{}", self.plan, message.to))
            .map_err(|e| e.to_string())?;
        if spec.status.is_open() {
            return Ok(None);
        }
        let reason = format!(
            "spec {} has ended ({}): no loop of it will read this",
            spec.name, spec.status
        );
        // The scheduler's sweep may have moved it already: that is the same end.
        if let Err(e) = store.dead_letter(&message.id, &reason, ACTOR) {
            let now = store.message(&message.id).map_err(|e| e.to_string())?;
            if now.delivery != Delivery::Dead {
                return Err(e.to_string());
            }
        }
        Ok(Some(format!(
            "{} could not be delivered: {reason}; it is in the plan's dead letters",
            message.id
        )))
    }

    /// A Stop: cancels the plan or the spec it names, and stops their loops.
    fn stop(&self, message: &MessageRecord) -> Result<String, String> {
        let store = &*self.daemon.store;
        let reason = format!(
            "stopped by {} ({}): {}",
            message.from, message.id, message.body
        );
        let target = if message.to == BROADCAST {
            let tree = store
                .cancel_plan(&self.plan, &reason, ACTOR)
                .map_err(|e| e.to_string())?;
            self.daemon.pipeline.saw_plan(&tree.plan);
            self.plan.clone()
        } else {
            let id = format!("{}/{}", self.plan, message.to);
            let spec = store
                .set_spec_status(&id, PipelineStatus::Cancelled, Some(&reason), ACTOR)
                .map_err(|e| e.to_string())?;
            self.daemon.pipeline.saw_spec(&spec);
            id
        };
        store
            .mark_message_delivered(&message.id, ACTOR)
            .map_err(|e| e.to_string())?;
        stop_loops(&self.daemon, &target);
        Ok(format!("{} stopped ({})", target, message.id))
    }

    /// The messages section of a spec loop's next prompt: messages for its
    /// spec, the plan's broadcasts, and answers to the questions it asked,
    /// each marked delivered to it as it is added: it reaches the loop once.
    fn messages_for(&self) -> Result<Option<String>, StoreError> {
        let Some(spec) = &self.spec else {
            return Ok(None);
        };
        let store = &*self.daemon.store;
        let mut lines = Vec::new();
        for message in store.pending_messages(&self.plan, spec)? {
            lines.push(message_line(&message, spec));
            store.deliver_message(&message.id, spec, ACTOR)?;
        }
        if lines.is_empty() {
            return Ok(None);
        }
        Ok(Some(format!(
            "## Messages from the plan\n\n{}\n",
            lines.join("\n")
        )))
    }

    fn sender(&self) -> String {
        self.spec
            .clone()
            .unwrap_or_else(|| taskdaemon_core::pipeline::BROADCAST.to_owned())
    }

    fn spec_id(&self) -> Result<String, String> {
        match &self.spec {
            Some(name) => Ok(format!("{}/{name}", self.plan)),
            None => Err("this loop works for no spec".into()),
        }
    }

    fn existing_specs(&self) -> Result<Vec<(String, Vec<String>)>, String> {
        let tree = self
            .daemon
            .store
            .plan_tree(&self.plan)
            .map_err(|e| e.to_string())?;
        Ok(tree
            .specs
            .into_iter()
            .map(|s| (s.spec.name, s.spec.depends_on))
            .collect())
    }

    /// Creates held specs whose dependencies now exist, until none does.
    fn flush_held(&self, held: &mut Vec<NewSpec>) -> Result<Vec<String>, String> {
        let mut created = Vec::new();
        loop {
            let existing = self.existing_specs()?;
            let Some(at) = held.iter().position(|h| {
                h.depends_on
                    .iter()
                    .all(|d| existing.iter().any(|(n, _)| n == d))
            }) else {
                return Ok(created);
            };
            let spec = held.remove(at);
            let records = self
                .daemon
                .store
                .add_specs(&self.plan, std::slice::from_ref(&spec), ACTOR)
                .map_err(|e| format!("held spec `{}`: {e}", spec.name))?;
            records
                .iter()
                .for_each(|s| self.daemon.pipeline.saw_spec(s));
            created.push(spec.name);
        }
    }
}

/// One line of the messages section: a message for `spec`, or the answer
/// to a question `spec` asked.
fn message_line(message: &MessageRecord, spec: &str) -> String {
    if message.kind == MessageKind::Query && message.from == spec {
        return format!(
            "- answer from {} to your question {} (\"{}\"): {}",
            message.to,
            message.id,
            message.body,
            message.answer.as_deref().unwrap_or_default()
        );
    }
    format!(
        "- {} from {} ({}): {}",
        message.kind, message.from, message.id, message.body
    )
}

#[async_trait]
impl PipelineHandler for Handler {
    async fn handle(&self, ctx: &CallContext, call: PipelineCall) -> Result<String, String> {
        // Specs created (or stopped) may start now; other calls change
        // nothing the scheduler decides on.
        let wakes = match &call {
            PipelineCall::CreateSpec(_) | PipelineCall::Finish => true,
            PipelineCall::SendMessage(m) => m.kind == MessageKind::Stop,
            _ => false,
        };
        // The store is synchronous; keep its work off the loop's runtime thread.
        let kind = ctx.kind;
        let this = Handler {
            daemon: self.daemon.clone(),
            plan: self.plan.clone(),
            spec: self.spec.clone(),
            held: Mutex::new(std::mem::take(&mut *lock(&self.held))),
        };
        let (result, held) = blocking(move || {
            let result = this.handle_now(kind, call);
            let held = std::mem::take(&mut *lock(&this.held));
            (result, held)
        })
        .await
        .map_err(|e| format!("the handler panicked: {e}"))?;
        *lock(&self.held) = held;
        if wakes {
            self.daemon.pipeline.wake_plan(&self.plan, true);
        }
        result
    }

    async fn context(&self, kind: PipelineLoop, _iteration: u32) -> Option<String> {
        if kind != PipelineLoop::Ralph {
            return None;
        }
        let mut parts = Vec::new();
        if let Some(spec) = &self.spec
            && let Some(text) = between_iterations(&self.daemon, &self.plan, spec).await
        {
            parts.push(text);
        }
        let this = Handler::new(&self.daemon, &self.plan, self.spec.clone());
        match blocking(move || this.messages_for()).await {
            Ok(Ok(text)) => parts.extend(text),
            Ok(Err(e)) => {
                tracing::warn!(plan = self.plan, error = %e, "cannot read a loop's messages");
            }
            Err(e) => {
                tracing::warn!(plan = self.plan, error = %e, "reading a loop's messages panicked");
            }
        }
        (!parts.is_empty()).then(|| parts.join("\n"))
    }
}
