//! Links the `taskdaemon` binary as a position-dependent executable on Linux.
//!
//! Every shim is this binary, waiting as long as the command it supervises.
//! A position-independent executable is relocated by the loader at each
//! start, which writes to all of its read-only-after-relocation data
//! (vtables, string tables, the GOT: megabytes here) and so makes those
//! pages private to each process. Linked at a fixed address, those pages
//! need no relocation and stay shared with every other shim, the daemon and
//! the page cache, and each start skips the relocation work. The cost is
//! that the executable itself (not its libraries, heap or stack) loads at
//! the same address every time.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bin=taskdaemon=-no-pie");
    }
}
