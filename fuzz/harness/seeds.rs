//! The committed corpus (`fuzz/seeds/<target>/`), replayed by each crate's
//! ordinary tests so `cargo test` covers every seed and every crash the
//! fuzzer found, without the fuzzer. A seed named `ok-*` must be accepted
//! and one named `err-*` refused (cleanly); any other (`crash-*`, `seed-*`)
//! only must not panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

/// Runs `harness` on every seed of `target`, failing with the seed's name
/// when it panics or contradicts its name.
pub fn replay(target: &str, harness: impl Fn(&[u8]) -> Result<(), String>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    entries.sort();
    assert!(!entries.is_empty(), "{}: no seeds", dir.display());
    for path in entries {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = catch_unwind(AssertUnwindSafe(|| harness(&data)))
            .unwrap_or_else(|_| panic!("{target}/{name}: the parser panicked"));
        if name.starts_with("ok-") {
            assert!(outcome.is_ok(), "{target}/{name}: refused: {outcome:?}");
        } else if name.starts_with("err-") {
            assert!(
                outcome.is_err(),
                "{target}/{name}: accepted, expected an error"
            );
        }
    }
}
