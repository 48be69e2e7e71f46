//! Gates on tracked work, as every interface offers them: add, remove,
//! approve, and listings that say which gates keep a task waiting.
//!
//! The rules (when a gate opens, what blocks) are the store's and core's;
//! the daemon evaluates waiting gates (`taskdaemon_daemon::gates`).

use std::collections::HashMap;

use taskdaemon_core::gate::{Gate, GateRequest, NewGate};
use taskdaemon_core::time::now_millis;
use taskdaemon_core::{TaskRecord, TrackedView};

use crate::{Agent, Result, Service, ServiceError};

impl Service {
    /// Adds gates to a tracked task that has not started, all or none.
    pub fn gate(&self, agent: &Agent, id: &str, gates: &[NewGate]) -> Result<Vec<Gate>> {
        let added = self.store.add_gates(id, gates, &agent.actor())?;
        // The daemon wakes on the events these wrote and re-plans its timer.
        self.save_snapshot(agent.session.as_deref());
        Ok(added)
    }

    /// Adds the gates a request names (flags, tool arguments, a request
    /// body); a request naming none, or a bad time, is refused.
    pub fn gate_request(&self, agent: &Agent, id: &str, request: GateRequest) -> Result<Vec<Gate>> {
        let gates = request
            .gates(now_millis())
            .map_err(ServiceError::BadInput)?;
        self.gate(agent, id, &gates)
    }

    /// Removes gate `seq` of a task, or all its gates.
    pub fn ungate(&self, agent: &Agent, id: &str, seq: Option<i64>) -> Result<Vec<Gate>> {
        let removed = self.store.remove_gates(id, seq, &agent.actor())?;
        self.save_snapshot(agent.session.as_deref());
        Ok(removed)
    }

    /// Opens a task's approval gates.
    pub fn approve_task(&self, agent: &Agent, id: &str) -> Result<Vec<Gate>> {
        let opened = self.store.approve_gates(id, &agent.actor())?;
        self.save_snapshot(agent.session.as_deref());
        Ok(opened)
    }

    /// Every gate of one task.
    pub fn gates_of(&self, id: &str) -> Result<Vec<Gate>> {
        Ok(self.store.gates(id)?)
    }

    /// Every gate that has not opened, on every task.
    pub fn shut_gates(&self) -> Result<Vec<Gate>> {
        Ok(self.store.shut_gates()?)
    }

    /// Tasks as listings print them: each with its gates that have not
    /// opened and why it is blocked for good (one read for all gates).
    pub fn gated_views(&self, tasks: &[TaskRecord]) -> Result<Vec<TrackedView>> {
        let mut by_task: HashMap<String, Vec<Gate>> = HashMap::new();
        for gate in self.store.shut_gates()? {
            by_task.entry(gate.task_id.clone()).or_default().push(gate);
        }
        Ok(tasks
            .iter()
            .map(|t| TrackedView::from(t).with_gates(by_task.remove(&t.id).unwrap_or_default()))
            .collect())
    }
}
