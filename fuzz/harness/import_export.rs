//! Import files: an export (JSON array or JSON lines) fed into a real
//! SQLite store's importer and into the `import --merge` importer, neither
//! finished (dropping one rolls back, so the store stays empty), and the
//! same text through the merge driver's reader.

use std::sync::OnceLock;

use taskdaemon_core::sync;
use taskdaemon_store::{SqliteStore, Store, begin_merge_import, feed_export};

/// One store for the whole run: opening one runs every migration.
fn store() -> &'static SqliteStore {
    static STORE: OnceLock<(tempfile::TempDir, SqliteStore)> = OnceLock::new();
    let (_, store) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir for the store");
        let store = SqliteStore::open(&dir.path().join("state.db")).expect("a fresh store opens");
        (dir, store)
    });
    store
}

/// Whether every record of the file imports (into the empty store).
pub fn run(data: &[u8]) -> Result<(), String> {
    let store = store();
    let mut merge = begin_merge_import(store, "fuzz");
    let _ = feed_export(data, &mut *merge);
    drop(merge);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(records) = sync::parse_export(text, "fuzz.jsonl")
    {
        let _ = sync::render_export(records);
    }
    let mut importer = store.begin_import().map_err(|e| e.to_string())?;
    feed_export(data, &mut *importer)
}
