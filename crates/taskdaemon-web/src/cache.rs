//! Answers to the hottest reads (the task list and one task), kept as the
//! JSON bytes sent and served again while nothing has been committed.
//!
//! An answer is kept with the store's commit version read *before* the read
//! that made it began ([`taskdaemon_service::Service::commit_version`]), and
//! served only to a request that reads the same version: any commit, by any
//! process (the daemon, a CLI, a shim recording an exit), moves the version,
//! so a request made after a write returns never sees an answer from before
//! it. Where the store cannot tell (PostgreSQL), nothing is kept. Errors are
//! never kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;

/// Answers kept at most; past this, stale ones go (and all, if none is).
const MAX_ENTRIES: usize = 512;

/// Kept answers by request key (route, caller's scope and arguments).
#[derive(Default)]
pub struct ResponseCache {
    entries: Mutex<HashMap<String, Kept>>,
    /// One turn per key for making its answer (see [`ResponseCache::flight`]).
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

struct Kept {
    version: u64,
    body: Bytes,
}

impl ResponseCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Kept>> {
        // Every update replaces a whole entry: a panic leaves nothing torn.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock whose holder makes `key`'s answer, so that requests missing
    /// together read the store once. Forgetting the locks when there are
    /// many only costs a repeated read.
    pub fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights.len() >= MAX_ENTRIES && !flights.contains_key(key) {
            flights.clear();
        }
        flights.entry(key.to_owned()).or_default().clone()
    }

    /// The answer kept for `key` at commit version `version`, if any.
    pub fn get(&self, key: &str, version: u64) -> Option<Bytes> {
        self.lock()
            .get(key)
            .filter(|kept| kept.version == version)
            .map(|kept| kept.body.clone())
    }

    /// Keeps `body` as the answer to `key` at `version`.
    pub fn put(&self, key: String, version: u64, body: Bytes) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, kept| kept.version == version);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, Kept { version, body });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_served_only_at_its_version() {
        let cache = ResponseCache::default();
        assert_eq!(cache.get("list", 1), None);
        cache.put("list".into(), 1, Bytes::from_static(b"[1]"));
        assert_eq!(cache.get("list", 1).as_deref(), Some(&b"[1]"[..]));
        assert_eq!(cache.get("list", 2), None, "a commit since makes it stale");
        assert_eq!(cache.get("show", 1), None);
        cache.put("list".into(), 2, Bytes::from_static(b"[1,2]"));
        assert_eq!(cache.get("list", 1), None);
        assert_eq!(cache.get("list", 2).as_deref(), Some(&b"[1,2]"[..]));
    }

    #[test]
    fn a_full_cache_drops_stale_answers_first() {
        let cache = ResponseCache::default();
        for n in 0..MAX_ENTRIES {
            cache.put(format!("old {n}"), 1, Bytes::from_static(b"x"));
        }
        cache.put("fresh".into(), 2, Bytes::from_static(b"y"));
        assert_eq!(
            cache.lock().len(),
            1,
            "only the answer at the new version is left"
        );
        assert!(cache.get("fresh", 2).is_some());
    }

    #[test]
    fn one_flight_per_key() {
        let cache = ResponseCache::default();
        let a = cache.flight("list");
        assert!(Arc::ptr_eq(&a, &cache.flight("list")));
        assert!(!Arc::ptr_eq(&a, &cache.flight("show")));
    }
}
