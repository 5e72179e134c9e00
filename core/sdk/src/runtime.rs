//! The SDK's own process-wide tokio runtime.
//!
//! Every socket of the SDK is opened in a task on this runtime, so its reactor (and its timers)
//! drive them. The public async methods exchange messages with the SDK's tasks (mpsc / oneshot /
//! watch) or poll those sockets and timers directly — both work on any executor. So the SDK
//! behaves the same whether it is awaited from a user's tokio runtime, from Python's asyncio
//! through pyo3, from Node through napi, or blocked on from a C thread — and a binding that exits
//! its own event loop cannot take the SDK's sockets down with it.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Number of worker threads of the SDK runtime.
pub const RUNTIME_WORKER_THREADS: usize = 2;

/// The handle of the SDK's runtime, built on first use (multi-threaded, 2 worker threads
/// named `iii-sdk`). It lives until the process exits.
///
/// Bindings may spawn their own glue tasks on it; they must never `block_on` from one of its
/// threads (handlers run there, and `on_message` callbacks until the first read).
///
/// # Panics
/// Panics only if the operating system refuses to create the runtime's threads.
pub fn runtime() -> &'static Handle {
    tokio_runtime().handle()
}

/// The SDK's runtime itself, for glue that must borrow a `&'static Runtime` (e.g.
/// `pyo3_async_runtimes::tokio::init_with_runtime`). Same runtime as [`runtime`].
///
/// # Panics
/// Panics only if the operating system refuses to create the runtime's threads.
pub fn tokio_runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(RUNTIME_WORKER_THREADS)
            .thread_name("iii-sdk")
            .enable_all()
            .build()
            .unwrap_or_else(|error| panic!("iii-sdk: cannot start its tokio runtime: {error}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_tasks_without_a_caller_runtime() {
        let (tx, rx) = std::sync::mpsc::channel();
        runtime().spawn(async move {
            let name = std::thread::current().name().map(str::to_owned);
            let _ = tx.send(name);
        });
        let name = rx.recv().expect("task ran");
        assert_eq!(name.as_deref(), Some("iii-sdk"));
    }
}
