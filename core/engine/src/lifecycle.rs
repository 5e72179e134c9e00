//! Stopping: the engine-wide stop signal every task watches, and the lifeline every task
//! holds so that [`Engine::shutdown`](crate::Engine::shutdown) can wait for them all.

use tokio::sync::{mpsc, watch};

/// A receiver of the engine-wide stop signal.
#[derive(Clone)]
pub(crate) struct Shutdown(pub(crate) watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once the engine is stopping (or its handle was dropped).
    pub(crate) async fn wait(&mut self) {
        // An error means the sender is gone: the engine was dropped, which also stops it.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    /// True once the engine is stopping.
    pub(crate) fn is_stopping(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }
}

/// Held by every task the engine spawns for a socket; [`Engine::shutdown`] waits until all
/// of them are dropped.
#[derive(Clone)]
pub(crate) struct Lifeline(#[allow(dead_code)] pub(crate) mpsc::Sender<()>);
