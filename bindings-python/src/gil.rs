//! Entering Python from iii's own threads, safely at interpreter exit.
//!
//! Tokio threads call into Python (to settle awaitables, run handlers and callbacks). If one
//! is inside Python while the interpreter finalizes, it touches freed objects and the
//! process crashes. So every such entry is counted, and an `atexit` hook ([`quiesce`]) stops
//! new entries and waits for the ones under way before finalization begins.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

static INSIDE: AtomicUsize = AtomicUsize::new(0);
static CLOSING: AtomicBool = AtomicBool::new(false);

/// Runs `f` with the GIL from any thread, unless the interpreter is exiting (then `None`).
pub(crate) fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    INSIDE.fetch_add(1, Ordering::SeqCst);
    if CLOSING.load(Ordering::SeqCst) {
        INSIDE.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
    let output = Python::attach(f);
    INSIDE.fetch_sub(1, Ordering::SeqCst);
    Some(output)
}

/// [`attach`] for fallible work; exiting becomes an error.
pub(crate) fn attach_or_err<R>(f: impl for<'py> FnOnce(Python<'py>) -> PyResult<R>) -> PyResult<R> {
    attach(f).unwrap_or_else(|| Err(exiting()))
}

/// The error of work refused because the interpreter is exiting.
pub(crate) fn exiting() -> PyErr {
    PyRuntimeError::new_err("the Python interpreter is exiting")
}

/// Stops iii's threads from entering Python and waits (GIL released) up to
/// `timeout_seconds` for those inside to leave. Called once, at interpreter exit.
#[pyfunction]
pub(crate) fn quiesce(py: Python<'_>, timeout_seconds: f64) {
    CLOSING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_seconds.clamp(0.0, 60.0));
    py.detach(|| {
        while INSIDE.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}
