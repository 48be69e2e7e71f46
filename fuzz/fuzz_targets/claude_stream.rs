//! Fuzz target `claude_stream`: the harness is `fuzz/harness/claude_stream.rs`, which the
//! crate's corpus replay test shares, so both drive the same entry points.
#![no_main]

#[path = "../harness/claude_stream.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::run(data);
});
