//! Giving memory back to the system after a burst. glibc's allocator keeps what the engine
//! frees in its arenas: after a burst of 8 MiB calls and full channel buffers the engine stayed
//! at 94 MiB (86 MiB once its workers left) from a 7.4 MiB baseline, for good. Asking glibc to
//! trim once a second (on the sweep's tick) brings it back to its baseline once the burst's
//! connections are gone, and costs about 32 µs a tick (up to a few ms once, when there is
//! much to give back). jemalloc with a background thread and a 1 s decay was measured too and
//! returned less, from a higher baseline (BENCHMARKS.md, "Memory after a burst").

/// How often the sweep trims (the sweep itself may run more often, with short TTLs).
pub(crate) const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Returns the allocator's free memory to the system (glibc on Linux; elsewhere the allocator
/// is left to its own policy).
pub(crate) fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointers and is thread-safe (it locks each arena as it
    // trims it); it only releases free pages the allocator holds.
    unsafe {
        libc::malloc_trim(0);
    }
}
