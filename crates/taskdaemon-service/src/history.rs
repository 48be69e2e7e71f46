//! The audit trail: history in pages (never loaded whole), and archiving.

use taskdaemon_core::Event;
use taskdaemon_core::time::{Millis, now_millis};
use taskdaemon_store::{ArchiveReport, HistoryFilter};

use crate::{Result, Service};

/// Which events a history listing holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only events at or after this time.
    pub since: Option<Millis>,
    /// Only events of this task (any id form; an unknown id is an error).
    pub task: Option<String>,
}

impl Service {
    /// The store's filter for `query`: the task id made canonical, so an
    /// unknown id is an error rather than an empty history.
    pub fn history_filter(&self, query: &HistoryQuery) -> Result<HistoryFilter> {
        let task_id = match &query.task {
            Some(id) => Some(self.store.task(id)?.id),
            None => None,
        };
        Ok(HistoryFilter {
            since: query.since,
            task_id,
        })
    }

    /// Up to `limit` events after `after_seq`, oldest first, archived ones
    /// included. Page on with the last event's `seq`.
    pub fn history_page(
        &self,
        filter: &HistoryFilter,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        Ok(self.store.history_page(filter, after_seq, limit)?)
    }

    /// Compresses events older than `older_than` into the archive; returns
    /// what moved and the cut-off time.
    pub fn archive(&self, older_than: std::time::Duration) -> Result<(ArchiveReport, Millis)> {
        let before = now_millis() - older_than.as_millis() as i64;
        Ok((self.store.archive_events(before)?, before))
    }
}
