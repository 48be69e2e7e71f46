//! Fuzz target `socket_protocol`: the harness is `fuzz/harness/socket_protocol.rs`, which the
//! crate's corpus replay test shares, so both drive the same entry points.
#![no_main]

#[path = "../harness/socket_protocol.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::run(data);
});
