//! Fuzz target `seed_config`: the harness is `fuzz/harness/seed_config.rs`, which the
//! crate's corpus replay test shares, so both drive the same entry points.
#![no_main]

#[path = "../harness/seed_config.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::run(data);
});
