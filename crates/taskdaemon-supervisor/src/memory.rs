//! Keeping the long-lived processes (shims, the daemon) small.
//!
//! Both run for as long as what they supervise, so what the allocator keeps
//! after set-up is paid for once per supervised process. glibc's allocator
//! gives each thread that allocates its own arena (up to eight per core),
//! and keeps freed memory mapped until asked to give it back; these two
//! knobs are the ones that matter here. Elsewhere (musl, macOS) they are
//! no-ops.

/// Caps the allocator at `arenas` arenas. Call before threads start: a
/// thread that already allocated keeps the arena it has.
pub fn limit_arenas(arenas: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; an out-of-range
    // value is refused with a zero return, which changes nothing.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Hands the pages of freed heap memory back to the kernel, so a process
/// that allocated during set-up and then waits keeps only what it uses.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks and only unmaps
    // free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Space kept below the caller's frame: what the calls it goes on to make
/// (a blocking wait, a signal handler) may use without faulting pages back.
const STACK_KEPT: usize = 64 * 1024;

/// Hands back the pages of the main thread's stack below the caller's
/// frame. Set-up (argument parsing, opening the store, starting the
/// command) runs deep; the wait that follows runs shallow, and the pages
/// set-up touched would otherwise stay resident for as long as it waits.
/// Pages below the stack pointer hold nothing live, and the kernel gives a
/// zeroed page to whatever touches one of them again. A no-op off the main
/// thread and off Linux.
pub fn release_unused_stack() {
    #[cfg(target_os = "linux")]
    if let Some((low, _)) = main_stack() {
        let marker = 0u8;
        let here = std::hint::black_box(&marker) as *const u8 as usize;
        let page = crate::procfs::page_size() as usize;
        let end = here.saturating_sub(STACK_KEPT) & !(page - 1);
        if end > low && here >= low {
            // SAFETY: [low, end) lies in this thread's own stack mapping
            // (checked just above), entirely below the live frames;
            // MADV_DONTNEED there only drops pages nothing refers to.
            unsafe {
                libc::madvise(low as *mut libc::c_void, end - low, libc::MADV_DONTNEED);
            }
        }
    }
}

/// The `[low, high)` range of the main thread's stack mapping, when the
/// caller runs on it.
#[cfg(target_os = "linux")]
fn main_stack() -> Option<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let (low, high) = line.split_whitespace().next()?.split_once('-')?;
    let low = usize::from_str_radix(low, 16).ok()?;
    let high = usize::from_str_radix(high, 16).ok()?;
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    (low..high).contains(&here).then_some((low, high))
}
