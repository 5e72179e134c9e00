//! Which tokio runtime drives the SDK's sockets, timers and tasks: its *home*.
//!
//! Called from inside a tokio runtime (a Rust program's `#[tokio::main]`, or a binding's glue
//! running on the SDK runtime), the SDK lives on that runtime: a socket's readiness then wakes the
//! task that waits for it on the same scheduler, with no hop between two runtimes' threads
//! (measured: about a third more channel setups per second than polling sockets registered
//! with a second runtime). Called from anywhere else — Python's asyncio, Node's event loop, a C
//! thread — it lives on the SDK's own process-wide runtime, so it behaves the same on any
//! executor and a binding that exits its own event loop cannot take the SDK's sockets down with
//! it. The public async methods work on any executor either way.

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

/// The runtime new SDK work belongs to: the caller's, when called from inside a tokio runtime,
/// else the SDK's own (see the module documentation).
pub(crate) fn home() -> Handle {
    Handle::try_current().unwrap_or_else(|_| runtime().clone())
}

/// Makes the SDK's runtime current while alive, unless the caller already runs inside one, so
/// sockets and timers created meanwhile register with the [`home`] runtime.
pub(crate) fn enter_home() -> Option<tokio::runtime::EnterGuard<'static>> {
    match Handle::try_current() {
        Ok(_) => None,
        Err(_) => Some(runtime().enter()),
    }
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
