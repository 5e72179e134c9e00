//! Waiting for the core from Python: blocking calls release the GIL and wake every 100 ms to
//! let Ctrl-C through, refuse to run where they would freeze an asyncio loop or deadlock a
//! runtime thread, and refuse to run in a forked child (the runtime's threads did not
//! survive the fork). Awaitable calls become asyncio futures on the core's runtime.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// How often a blocked call checks for signals.
const SIGNAL_SLICE: Duration = Duration::from_millis(100);

static LOADED_IN: OnceLock<u32> = OnceLock::new();

/// Records the process the module was loaded in.
pub(crate) fn remember_pid() {
    LOADED_IN.get_or_init(std::process::id);
}

/// Fails in a forked child.
pub(crate) fn check_fork() -> PyResult<()> {
    match LOADED_IN.get() {
        Some(pid) if *pid != std::process::id() => Err(PyRuntimeError::new_err(
            "iii was loaded before this process forked; its runtime threads do not survive \
             fork(): create workers in the child (or use the 'spawn' start method)",
        )),
        _ => Ok(()),
    }
}

/// True when an asyncio event loop runs in this thread.
pub(crate) fn in_running_loop(py: Python<'_>) -> PyResult<bool> {
    Ok(!crate::python_names::running_loop(py)?.call0()?.is_none())
}

/// Runs `future` to its end, blocking this thread with the GIL released. `name` is the
/// blocking call, `async_name` its awaitable form, named in the error raised when this
/// thread runs an asyncio loop.
pub(crate) fn block_on<F, T>(py: Python<'_>, name: &str, async_name: &str, future: F) -> PyResult<T>
where
    F: Future<Output = T> + Send,
    T: Send,
{
    check_fork()?;
    if in_running_loop(py)? {
        return Err(PyRuntimeError::new_err(format!(
            "{name}() blocks, and this thread runs an asyncio event loop: use `await {async_name}()`"
        )));
    }
    if !iii_sdk::binding::blocking_allowed() {
        return Err(PyRuntimeError::new_err(format!(
            "{name}() blocks, and this is one of iii's runtime threads (a message callback?): \
             use `{async_name}()` from async code, or call it from another thread"
        )));
    }
    let runtime = iii_sdk::runtime();
    let mut future = std::pin::pin!(future);
    loop {
        let step = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(SIGNAL_SLICE, future.as_mut()).await })
        });
        match step {
            Ok(output) => return Ok(output),
            Err(_slice_over) => py.check_signals()?,
        }
    }
}

/// An asyncio future of the running loop, already settled with `outcome`.
pub(crate) fn settled<'py, T>(py: Python<'py>, outcome: PyResult<T>) -> PyResult<Bound<'py, PyAny>>
where
    T: IntoPyObject<'py>,
{
    let future = crate::python_names::get_running_loop(py)?
        .call0()?
        .call_method0("create_future")?;
    match outcome {
        Ok(value) => future.call_method1("set_result", (value.into_bound_py_any(py)?,))?,
        Err(error) => future.call_method1("set_exception", (error.into_value(py),))?,
    };
    Ok(future)
}

/// The asyncio future of a queued write's acknowledgement: settled at once when it is known
/// already, else settled from the core's runtime.
pub(crate) fn acknowledged<'py>(
    py: Python<'py>,
    ack: iii_sdk::channel::WriteAck,
) -> PyResult<Bound<'py, PyAny>> {
    use crate::errors::IntoPyResult;
    match ack {
        iii_sdk::channel::WriteAck::Now(outcome) => settled(py, outcome.py()),
        later => awaitable(py, async move { later.wait().await.py() }),
    }
}

/// Cancels the core's side of an awaitable when its asyncio future is cancelled.
#[pyclass(module = "iii._native", frozen)]
pub(crate) struct CancelOnDone {
    task: tokio::task::AbortHandle,
}

#[pymethods]
impl CancelOnDone {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            self.task.abort();
        }
        Ok(())
    }
}

/// `future` as an asyncio future of the running loop, driven by the core's runtime.
///
/// The work starts at once (so an operation is queued even if the awaitable is never
/// awaited); cancelling the asyncio future cancels the work; a result that arrives after the
/// loop has closed is dropped quietly.
pub(crate) fn awaitable<'py, F, T>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    check_fork()?;
    let event_loop = crate::python_names::get_running_loop(py)?.call0()?;
    let py_future = event_loop.call_method0("create_future")?;
    let (target_loop, target) = (event_loop.unbind(), py_future.clone().unbind());
    let task = iii_sdk::runtime().spawn(async move {
        let outcome = future.await;
        crate::gil::attach(|py| {
            let settled = (|| -> PyResult<()> {
                let (error, value) = match outcome {
                    Ok(value) => (py.None(), value.into_py_any(py)?),
                    Err(error) => (error.into_value(py).into_any(), py.None()),
                };
                let settle = crate::python_names::runtime_settle(py)?;
                target_loop.call_method1(
                    py,
                    "call_soon_threadsafe",
                    (settle, target, error, value),
                )?;
                Ok(())
            })();
            if let Err(error) = settled {
                // The loop closed before the result came: nobody can await it any more.
                tracing::debug!(%error, "dropping the result of an abandoned awaitable");
            }
        });
    });
    py_future.call_method1(
        "add_done_callback",
        (CancelOnDone {
            task: task.abort_handle(),
        },),
    )?;
    Ok(py_future)
}
