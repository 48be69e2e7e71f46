//! The committed fuzz corpus (`fuzz/seeds/`), replayed through the same harness
//! the fuzz targets run: every seed and every crash found so far parses or
//! fails cleanly, never panics; seeds named `ok-*` are accepted, `err-*` refused.

#[path = "../../../fuzz/harness/seeds.rs"]
mod seeds;
#[path = "../../../fuzz/harness/sse_stream.rs"]
mod sse_stream;

#[test]
fn the_sse_stream_corpus_replays() {
    seeds::replay("sse_stream", sse_stream::run);
}
