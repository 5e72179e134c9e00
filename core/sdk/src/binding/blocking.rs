//! Blocking from a binding: a binding's sync API blocks the caller's thread on the core's
//! runtime, which must never happen on one of that runtime's async worker threads (every
//! socket of the process would stall, and tokio panics). Sync handlers therefore run on the
//! runtime's blocking pool, where blocking is allowed again.

use std::cell::Cell;

use crate::IIIError;

thread_local! {
    /// Set on blocking-pool threads while they run a binding's sync handler.
    static MAY_BLOCK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with blocking calls allowed on this thread (a blocking-pool thread running a
/// handler), restoring what was allowed before.
pub fn allow_blocking<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            MAY_BLOCK.with(|flag| flag.set(self.0));
        }
    }
    let _restore = Restore(MAY_BLOCK.with(|flag| flag.replace(true)));
    f()
}

/// True when this thread may block on the core: it belongs to no tokio runtime, or it runs
/// a handler inside [`allow_blocking`]. A binding refuses a blocking call otherwise, with an
/// error in its own words.
pub fn blocking_allowed() -> bool {
    tokio::runtime::Handle::try_current().is_err() || MAY_BLOCK.with(Cell::get)
}

/// Runs `f` on the runtime's blocking pool with blocking allowed, and returns its result: how
/// a binding runs a sync handler, which may then call the blocking API freely.
pub async fn on_blocking_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, IIIError> {
    crate::runtime()
        .spawn_blocking(move || allow_blocking(f))
        .await
        .map_err(|error| IIIError::Handler(format!("the handler's thread failed: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_is_refused_on_runtime_threads_unless_allowed() {
        assert!(blocking_allowed());
        let (tx, rx) = std::sync::mpsc::channel();
        crate::runtime().spawn(async move {
            let inside = blocking_allowed();
            let allowed = allow_blocking(blocking_allowed);
            let _ = tx.send((inside, allowed, blocking_allowed()));
        });
        assert_eq!(rx.recv().ok(), Some((false, true, false)));
    }

    #[test]
    fn sync_work_runs_where_it_may_block() {
        let outcome = crate::runtime().block_on(on_blocking_thread(blocking_allowed));
        assert_eq!(outcome.ok(), Some(true));
    }
}
