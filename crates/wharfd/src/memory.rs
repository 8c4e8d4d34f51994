//! Giving memory back after heavy requests (issue 13, item 6; docs/architecture.md,
//! "Connections and memory").
//!
//! Measured with bench/hostile-memory: after 8 MiB JSON bodies, hundreds of concurrent
//! connections and a large import, glibc's malloc kept ~95 MiB over idle once everything was
//! freed, and `malloc_trim(0)` called from outside gave most of it back: retention by the
//! allocator, not a leak. Two causes: glibc raises its mmap threshold each time a large block
//! is freed, so later large buffers (request bodies, layer chunks) come from the heap and stay
//! there; and it trims only the top of the main heap on its own. So, at start, the mmap
//! threshold is fixed (large blocks always go back at `free`), and a background task trims the
//! heaps whenever the allocator holds more than [`TRIM_OVER`] of free memory.

use std::time::Duration;

/// Blocks this large or larger are mmapped and unmapped on free (glibc's initial default,
/// which it would otherwise raise up to 32 MiB).
const MMAP_THRESHOLD: i32 = 128 * 1024;
/// How often the allocator's free-but-held memory is looked at.
const TRIM_EVERY: Duration = Duration::from_secs(10);
/// Free memory the allocator may keep before it is asked to give it back.
const TRIM_OVER: usize = 4 * 1024 * 1024;

/// Fixes the allocator's thresholds, unless the environment already tunes malloc
/// (`GLIBC_TUNABLES=glibc.malloc.*`, e.g. to measure other settings). Called before any
/// thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.")) {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; it is called before other
        // threads exist, and an unknown or refused setting is ignored (returns 0).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

/// Free memory the allocator holds (in all its arenas), or `None` when it cannot say.
fn held_free() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and returns a plain struct by value.
        let mi = unsafe { libc::mallinfo2() };
        Some(mi.fordblks)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resident memory of this process, from /proc/self/statm.
fn resident() -> usize {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .unwrap_or_default();
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * usize::try_from(page).unwrap_or(4096)
}

/// What the last look saw: trimming again is worth it only when more was freed, or more was
/// made resident, since then (trimmed pages stay on the free lists, so the free total alone
/// would trim every time).
struct Seen {
    free: usize,
    resident: usize,
}

fn trim_if_worth_it(seen: &mut Seen) -> Option<usize> {
    let free = held_free()?;
    let resident = resident();
    seen.free = seen.free.min(free);
    seen.resident = seen.resident.min(resident);
    let grew = free > seen.free + TRIM_OVER || resident > seen.resident + TRIM_OVER;
    if free <= TRIM_OVER || !grew {
        return None;
    }
    trim();
    seen.free = held_free().unwrap_or(free);
    seen.resident = self::resident();
    Some(resident.saturating_sub(seen.resident))
}

/// Runs for the daemon's lifetime: every [`TRIM_EVERY`], trims the heaps when they hold more
/// than [`TRIM_OVER`] free and more was freed or made resident since the last trim. The work
/// (walking the free lists, `madvise`) runs on the blocking pool.
pub async fn trim_freed_memory() {
    if held_free().is_none() {
        return;
    }
    let mut seen = Seen {
        free: 0,
        resident: resident(),
    };
    loop {
        tokio::time::sleep(TRIM_EVERY).await;
        let Ok((s, returned)) = tokio::task::spawn_blocking(move || {
            let r = trim_if_worth_it(&mut seen);
            (seen, r)
        })
        .await
        else {
            return;
        };
        seen = s;
        if let Some(bytes) = returned {
            tracing::debug!(
                returned_mib = bytes / (1024 * 1024),
                "returned freed memory to the system"
            );
        }
    }
}
