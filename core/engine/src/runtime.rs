//! The tokio runtime the `iii` binary runs the engine on.
//!
//! The engine mostly moves bytes between sockets. On one thread, a frame read from a writer
//! wakes its reader's task without a cross-thread wake-up, and every allocation comes from one
//! allocator arena; with several threads, glibc's per-thread arenas let a channel's buffered
//! frames occupy about twice their size (measured: a 16 MiB channel buffer behind a slow reader
//! grew RSS by 32 MiB on two threads, 16 MiB on one). So one thread is the default, and more
//! are for machines where one core cannot keep up with the traffic.

use tokio::runtime::{Builder, Runtime};

/// Worker threads of the engine's runtime unless told otherwise.
pub const DEFAULT_WORKER_THREADS: usize = 1;

/// A runtime with `worker_threads` threads: 0 or 1 gives a current-thread runtime (everything
/// on the calling thread), more a multi-threaded one.
pub fn build_runtime(worker_threads: usize) -> std::io::Result<Runtime> {
    if worker_threads <= 1 {
        Builder::new_current_thread().enable_all().build()
    } else {
        Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .thread_name("iii-engine")
            .enable_all()
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_single_and_multi_threaded_runtimes_that_serve_an_engine() {
        for threads in [0, 1, 2] {
            let runtime = build_runtime(threads).expect("runtime");
            let stats = runtime.block_on(async {
                let engine = crate::start(crate::EngineConfig::ephemeral())
                    .await
                    .expect("engine starts");
                let stats = engine.stats();
                engine.shutdown().await;
                stats
            });
            assert_eq!(stats.connections, 0, "{threads} threads");
        }
    }
}
