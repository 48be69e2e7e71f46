//! Memory (decisions, patterns, notes, facts) and search over tasks, memory
//! and history together.

use taskdaemon_core::tracked::SearchHit;
use taskdaemon_core::{Memory, MemoryKind, NewMemory};
use taskdaemon_store::MemoryFilter;

use crate::{Agent, Result, Service};

impl Service {
    /// Records a memory (a `key` replaces what was remembered under it) and
    /// saves the snapshot.
    pub fn remember(
        &self,
        agent: &Agent,
        kind: MemoryKind,
        text: String,
        task: Option<String>,
        key: Option<String>,
    ) -> Result<Memory> {
        let memory = self.store.remember(
            &NewMemory {
                kind,
                text,
                task_id: task,
                key,
                session: agent.session.clone(),
            },
            &agent.actor(),
        )?;
        self.save_snapshot(agent.session.as_deref());
        Ok(memory)
    }

    /// Memories, newest first.
    pub fn memories(&self, filter: &MemoryFilter) -> Result<Vec<Memory>> {
        Ok(self.store.memories(filter)?)
    }

    /// Ranked hits over tasks, memory and history for plain words.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        Ok(self.store.search(query, limit)?)
    }
}
