//! The committed fuzz corpus (`fuzz/seeds/`), replayed through the same harness
//! the fuzz targets run: every seed and every crash found so far parses or
//! fails cleanly, never panics; seeds named `ok-*` are accepted, `err-*` refused.

#[path = "../../../fuzz/harness/seeds.rs"]
mod seeds;
#[path = "../../../fuzz/harness/socket_protocol.rs"]
mod socket_protocol;

#[test]
fn the_socket_protocol_corpus_replays() {
    seeds::replay("socket_protocol", socket_protocol::run);
}
