//! Fuzz target `loop_types`: the harness is `fuzz/harness/loop_types.rs`, which the
//! crate's corpus replay test shares, so both drive the same entry points.
#![no_main]

#[path = "../harness/loop_types.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::run(data);
});
