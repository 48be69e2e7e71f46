//! The committed fuzz corpus (`fuzz/seeds/`), replayed through the same harness
//! the fuzz targets run: every seed and every crash found so far parses or
//! fails cleanly, never panics; seeds named `ok-*` are accepted, `err-*` refused.

#[path = "../../../fuzz/harness/loop_types.rs"]
mod loop_types;
#[path = "../../../fuzz/harness/seeds.rs"]
mod seeds;

#[test]
fn the_loop_types_corpus_replays() {
    seeds::replay("loop_types", loop_types::run);
}
