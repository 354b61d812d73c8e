//! Giving freed memory back to the system. glibc's allocator keeps the pages a burst freed (an
//! 18 MB import body, thousands of connections' buffers) in its arenas for reuse, so the resident
//! size stays at its peak for as long as the process lives. [`spawn_trimmer`] asks it to return
//! them (`malloc_trim(0)`) every [`TRIM_EVERY`], off the async workers. Chosen over a different
//! allocator by measurement (README, "Memory"): the same effect with no C build and no new crate.

use std::time::Duration;

/// How often freed memory is handed back.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Hands the allocator's free pages back to the system; answers whether any were.
pub fn give_back() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` only walks glibc's own arenas under their locks; it takes no
        // pointer and may be called from any thread at any time.
        #[allow(unsafe_code)]
        let trimmed = unsafe { libc::malloc_trim(0) };
        trimmed == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Trims every [`TRIM_EVERY`] on a thread of its own, for as long as the process lives. Once per
/// process (later calls do nothing): each trim walks every arena under its lock, so one trimmer
/// per in-process daemon (the e2e binary runs dozens) would stall every allocation in turn.
pub fn spawn_trimmer() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("memory-trim".into())
            .spawn(|| loop {
                std::thread::sleep(TRIM_EVERY);
                give_back();
            });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "could not start the memory trimmer: freed memory stays with the process");
        }
    });
}
