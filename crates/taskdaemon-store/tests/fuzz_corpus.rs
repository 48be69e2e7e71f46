//! The committed fuzz corpus (`fuzz/seeds/`), replayed through the same harness
//! the fuzz targets run: every seed and every crash found so far parses or
//! fails cleanly, never panics; seeds named `ok-*` are accepted, `err-*` refused.

#[path = "../../../fuzz/harness/import_export.rs"]
mod import_export;
#[path = "../../../fuzz/harness/seeds.rs"]
mod seeds;

#[test]
fn the_import_export_corpus_replays() {
    seeds::replay("import_export", import_export::run);
}
