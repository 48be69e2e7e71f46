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

/// Unmaps the resident pages of the code and read-only data of this
/// program and of the shared libraries it loaded (the C library, the
/// loader), so that only what runs again comes back (from the page cache,
/// where the pages stay). Start-up runs code (argument parsing, migrations,
/// configuration) that a long-lived process never runs again, and its
/// pages would otherwise count against the process for as long as it
/// lives; the libraries' pages count in its RSS too, shared or not. Only
/// file mappings that are not writable and hold no page of their own
/// (nothing was copied on write, so every page is the file's) are touched:
/// for those, dropping a page and faulting it in again gives the same
/// bytes. A no-op off Linux.
pub fn release_code_pages() {
    #[cfg(target_os = "linux")]
    {
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return;
        };
        for (start, end) in file_only_mappings(&smaps) {
            // SAFETY: [start, end) is a whole read-only file mapping with
            // no anonymous page (see above); MADV_DONTNEED there only drops
            // page-cache pages that fault back unchanged.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

/// The `[start, end)` ranges of the file mappings in `smaps` that are not
/// writable and have no anonymous (copied-on-write) page.
fn file_only_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    // The mapping being read: its range, and whether it qualifies so far.
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if let Some(range) = mapping_header(line) {
            current = range;
        } else if let Some(rest) = line.strip_prefix("Anonymous:")
            && let Some(range) = current.take()
            && rest.trim().trim_end_matches("kB").trim() == "0"
        {
            found.push(range);
        }
    }
    found
}

/// For a mapping's header line, `Some(qualifying range)` (`Some(None)` when
/// it maps no file, or is writable); `None` for the lines inside it.
fn mapping_header(line: &str) -> Option<Option<(usize, usize)>> {
    let mut fields = line.split_whitespace();
    let (range, perms) = (fields.next()?, fields.next()?);
    let (start, end) = range.split_once('-')?;
    let (start, end) = (
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    );
    if perms.len() != 4 {
        return None;
    }
    // A path; not `[stack]`, `[vdso]` or an anonymous mapping's nothing.
    let name = fields.nth(3).unwrap_or("");
    let file = name.starts_with('/') && !perms.contains('w');
    Some(file.then_some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
00400000-00600000 r--p 00000000 fd:01 42 /usr/bin/td
Rss:                 100 kB
Anonymous:             0 kB
00600000-00900000 r-xp 00200000 fd:01 42 /usr/bin/td
Size:               3072 kB
Anonymous:             0 kB
00900000-00a00000 r--p 00500000 fd:01 42 /usr/bin/td
Anonymous:            12 kB
00a00000-00a10000 rw-p 00600000 fd:01 42 /usr/bin/td
Anonymous:             0 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:01 7 /usr/lib/libc.so.6
Anonymous:             0 kB
7f0000200000-7f0000201000 r--p 00000000 00:00 0 [vvar]
Anonymous:             0 kB
7f0000300000-7f0000310000 rw-s 00000000 fd:01 9 /w/state.db-shm
Anonymous:             0 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
Anonymous:           132 kB
";

    #[test]
    fn only_clean_read_only_file_mappings_qualify() {
        let found = file_only_mappings(SMAPS);
        // The relocated (copied-on-write) read-only data, the writable
        // data and anonymous memory are all left alone; the program's code
        // and a library's are dropped.
        assert_eq!(
            found,
            vec![
                (0x400000, 0x600000),
                (0x600000, 0x900000),
                (0x7f0000000000, 0x7f0000100000)
            ]
        );
    }

    #[test]
    fn the_program_runs_on_after_its_code_pages_are_dropped() {
        let before: u64 = (1..=20u64).map(|n| n * n).sum();
        release_code_pages();
        release_free_memory();
        // Code and constants fault back in from the page cache.
        let after: u64 = (1..=20u64).map(|n| n * n).sum();
        assert_eq!(before, after);
        let text = format!("{:?}", Some("still here"));
        assert_eq!(text, "Some(\"still here\")");
    }
}
