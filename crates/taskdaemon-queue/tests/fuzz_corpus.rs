//! The committed fuzz corpus (`fuzz/seeds/`), replayed through the same harness
//! the fuzz targets run: every seed and every crash found so far parses or
//! fails cleanly, never panics; seeds named `ok-*` are accepted, `err-*` refused.

#[path = "../../../fuzz/harness/claude_stream.rs"]
mod claude_stream;
#[path = "../../../fuzz/harness/seeds.rs"]
mod seeds;
#[path = "../../../fuzz/harness/task_document.rs"]
mod task_document;

#[test]
fn the_task_document_corpus_replays() {
    seeds::replay("task_document", task_document::run);
}

#[test]
fn the_claude_stream_corpus_replays() {
    seeds::replay("claude_stream", claude_stream::run);
}
