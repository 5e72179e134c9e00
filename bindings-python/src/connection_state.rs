//! The published client's connection-state API over the core's
//! [`ConnectionState`](iii_sdk::ConnectionState): listeners called on every change (on the
//! asyncio loop that added them, when there was one), each with an idempotent unsubscribe, and
//! the wait that keeps the process alive while a worker runs.

use std::sync::Mutex;

use pyo3::prelude::*;
use tokio::task::AbortHandle;

use crate::dispatch::CallbackTarget;

/// Stops one connection-state listener; calling it again does nothing.
#[pyclass(module = "iii._native", frozen)]
pub(crate) struct Unsubscribe {
    task: Mutex<Option<AbortHandle>>,
}

#[pymethods]
impl Unsubscribe {
    fn __call__(&self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut task| task.take()) {
            task.abort();
        }
    }
}

/// Calls `handler(state)` now with the current state, then on every change until unsubscribed.
pub(crate) fn listen(
    py: Python<'_>,
    iii: &iii_sdk::III,
    handler: Py<PyAny>,
) -> PyResult<Unsubscribe> {
    let current = iii.connection_state();
    handler.bind(py).call1((current.as_str(),))?;
    let target = CallbackTarget::capture(py, handler)?;
    let iii = iii.clone();
    let task = iii_sdk::runtime().spawn(async move {
        let mut seen = current;
        loop {
            seen = iii.connection_state_change(seen).await;
            target.call_with_text(seen.as_str().to_string());
        }
    });
    Ok(Unsubscribe {
        task: Mutex::new(Some(task.abort_handle())),
    })
}
