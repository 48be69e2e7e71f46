//! Fuzz target `import_export`: the harness is `fuzz/harness/import_export.rs`, which the
//! crate's corpus replay test shares, so both drive the same entry points.
#![no_main]

#[path = "../harness/import_export.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::run(data);
});
