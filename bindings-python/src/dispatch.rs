//! Running Python code for the core: function handlers and message callbacks.
//!
//! A plain (sync) handler runs on a blocking thread of the core's runtime, so it may call
//! the blocking API freely; an `async def` handler (or one returning an awaitable) runs on
//! iii's own asyncio loop (`iii._runtime`), one for the process. Their exceptions become
//! `invocation_failed` with the message and the Python traceback.

use std::sync::{Arc, Mutex};

use iii_sdk::binding::{MessageBudget, MessageTicket, on_blocking_thread};
use iii_sdk::function::Handler;
use iii_sdk::{IIIError, InvocationContext};
use pyo3::prelude::*;
use pyo3::types::PyString;
use serde_json::Value;
use tokio::sync::oneshot;

use iii_sdk::protocol::codes::INVOCATION_FAILED;

use crate::convert::{from_py, to_py};

type Settled = oneshot::Sender<PyResult<Py<PyAny>>>;

/// Called by asyncio when a submitted coroutine finishes: hands its result to the core.
#[pyclass(module = "iii._native", frozen)]
pub(crate) struct Completion {
    settled: Mutex<Option<Settled>>,
}

#[pymethods]
impl Completion {
    /// `future` is the finished `concurrent.futures.Future`.
    fn __call__(&self, future: &Bound<'_, PyAny>) {
        let outcome = future.call_method0("result").map(Bound::unbind);
        if let Some(settled) = self.settled.lock().ok().and_then(|mut slot| slot.take()) {
            let _ = settled.send(outcome);
        }
    }
}

/// Runs `awaitable` on `target_loop` (or iii's loop); the receiver gets its result.
pub(crate) fn submit(
    py: Python<'_>,
    awaitable: &Bound<'_, PyAny>,
    target_loop: Option<&Py<PyAny>>,
) -> PyResult<oneshot::Receiver<PyResult<Py<PyAny>>>> {
    let (settled, outcome) = oneshot::channel();
    let completion = Completion {
        settled: Mutex::new(Some(settled)),
    };
    let target = target_loop.map(|l| l.bind(py).clone());
    crate::python_names::runtime_submit(py)?.call1((awaitable, completion, target))?;
    Ok(outcome)
}

fn is_awaitable(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    crate::python_names::is_awaitable(py)?
        .call1((value,))?
        .is_truthy()
}

/// An exception as the error a caller receives: `invocation_failed`, its message, and the
/// formatted traceback.
pub(crate) fn failure(error: PyErr) -> IIIError {
    let described = crate::gil::attach(|py| {
        let (kind, value) = (error.get_type(py), error.value(py));
        let stacktrace = py
            .import("traceback")
            .and_then(|traceback| {
                traceback.call_method1("format_exception", (&kind, value, error.traceback(py)))
            })
            .and_then(|lines| PyString::new(py, "").call_method1("join", (lines,)))
            .and_then(|text| text.extract::<String>())
            .ok();
        let name = kind
            .name()
            .map_or_else(|_| "Exception".into(), |n| n.to_string());
        // The message alone, as the published clients send it (the type is in the
        // traceback); an exception without one is named by its type.
        let message = value.to_string();
        let message = if message.is_empty() { name } else { message };
        (message, stacktrace)
    });
    let (message, stacktrace) =
        described.unwrap_or_else(|| ("the Python interpreter is exiting".into(), None));
    IIIError::Invocation {
        code: INVOCATION_FAILED.into(),
        message,
        stacktrace,
    }
}

/// How a handler call went on its first step.
enum Started {
    /// It returned a value.
    Done(Value),
    /// It returned an awaitable, now running on the loop.
    Running(oneshot::Receiver<PyResult<Py<PyAny>>>),
}

/// A call's trace context as Python gets it: `(traceparent, tracestate, baggage)`.
pub(crate) fn trace_tuple(
    trace: &iii_sdk::TraceContext,
) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        trace.traceparent.as_deref(),
        trace.tracestate.as_deref(),
        trace.baggage.as_deref(),
    )
}

struct PyHandler {
    callable: Py<PyAny>,
    is_async: bool,
    /// Whether the handler declares a `metadata` parameter (it is then passed by keyword).
    takes_metadata: bool,
    address: String,
}

impl PyHandler {
    /// Calls the handler through `iii._invocation.call`, which makes `context` the answer of
    /// `iii.current_invocation()` while it runs (also inside a coroutine it returns).
    fn start(
        &self,
        py: Python<'_>,
        input: &Value,
        context: &InvocationContext,
    ) -> PyResult<Started> {
        let data = to_py(py, input, &self.address)?;
        let metadata = match &context.metadata {
            Some(metadata) => to_py(py, metadata, &self.address)?.unbind(),
            None => py.None(),
        };
        let result = crate::python_names::invocation_call(py)?.call1((
            self.callable.bind(py),
            data,
            context.function_id.as_str(),
            context.invocation_id.as_deref(),
            metadata,
            self.takes_metadata,
            trace_tuple(&context.trace),
        ))?;
        if is_awaitable(py, &result)? {
            return Ok(Started::Running(submit(py, &result, None)?));
        }
        Ok(Started::Done(from_py(&result)?))
    }

    async fn invoke(self: Arc<Self>, input: Value) -> Result<Value, IIIError> {
        let context = iii_sdk::current_invocation().unwrap_or_else(|| InvocationContext {
            address: self.address.clone(),
            function_id: String::new(),
            invocation_id: None,
            metadata: None,
            trace: Default::default(),
        });
        let started = if self.is_async {
            crate::gil::attach_or_err(|py| self.start(py, &input, &context))
        } else {
            let this = self.clone();
            on_blocking_thread(move || {
                crate::gil::attach_or_err(|py| this.start(py, &input, &context))
            })
            .await?
        };
        match started.map_err(failure)? {
            Started::Done(value) => Ok(value),
            Started::Running(outcome) => result_of(outcome).await,
        }
    }
}

/// The result of a coroutine [`submit`]ted to a loop, as JSON (its exception as [`failure`]).
pub(crate) async fn result_of(
    outcome: oneshot::Receiver<PyResult<Py<PyAny>>>,
) -> Result<Value, IIIError> {
    match outcome.await {
        Ok(Ok(result)) => crate::gil::attach_or_err(|py| from_py(result.bind(py))).map_err(failure),
        Ok(Err(error)) => Err(failure(error)),
        Err(_) => Err(IIIError::Handler(
            "the handler's coroutine was dropped".into(),
        )),
    }
}

/// The core handler that calls `callable` with each invocation's input, refs made live
/// against `address`.
pub(crate) fn handler(py: Python<'_>, callable: Py<PyAny>, address: &str) -> PyResult<Handler> {
    let is_async = crate::python_names::is_coroutine_function(py)?
        .call1((callable.bind(py),))?
        .is_truthy()?;
    let takes_metadata = crate::python_names::takes_metadata(py)?
        .call1((callable.bind(py),))?
        .is_truthy()?;
    let handler = Arc::new(PyHandler {
        callable,
        is_async,
        takes_metadata,
        address: address.to_string(),
    });
    Ok(Arc::new(move |input| {
        Box::pin(handler.clone().invoke(input))
    }))
}

/// A message callback and the loop it runs on.
pub(crate) struct CallbackTarget {
    callback: Py<PyAny>,
    event_loop: Option<Py<PyAny>>,
    /// Messages scheduled on `event_loop` and not yet run.
    budget: Arc<MessageBudget>,
}

/// Gives a scheduled message's share of the budget back once the loop ran its callback.
#[pyclass(module = "iii._native", frozen)]
pub(crate) struct MessageDone {
    ticket: Mutex<Option<MessageTicket>>,
}

#[pymethods]
impl MessageDone {
    fn __call__(&self) {
        if let Ok(mut ticket) = self.ticket.lock() {
            ticket.take();
        }
    }
}

impl CallbackTarget {
    /// Captures `callback` and the asyncio loop running in this thread, if any.
    pub(crate) fn capture(py: Python<'_>, callback: Py<PyAny>) -> PyResult<Self> {
        let running = crate::python_names::running_loop(py)?.call0()?;
        Ok(Self {
            callback,
            event_loop: (!running.is_none()).then(|| running.unbind()),
            budget: MessageBudget::new(),
        })
    }

    /// Calls the callback with `text`: on the loop that registered it, in order, when there
    /// was one (so it may complete that loop's futures), else right here; a returned
    /// coroutine runs on that loop (or iii's own). Exceptions are reported (printed with
    /// their traceback), never raised into the core. While the loop is behind by as many
    /// messages as a reader keeps, further ones are dropped with a warning.
    pub(crate) fn call_with_text(&self, text: String) {
        crate::gil::attach(|py| {
            let called = match &self.event_loop {
                Some(event_loop) => self.schedule(py, event_loop, text),
                None => self.call_here(py, text),
            };
            if let Err(error) = called {
                tracing::warn!("a message callback raised");
                error.print(py);
            }
        });
    }

    fn schedule(&self, py: Python<'_>, event_loop: &Py<PyAny>, text: String) -> PyResult<()> {
        let Some(ticket) = self.budget.take(text.len()) else {
            tracing::warn!(
                "a callback's asyncio loop is behind by as many messages as a reader keeps; one was dropped"
            );
            return Ok(());
        };
        let done = MessageDone {
            ticket: Mutex::new(Some(ticket)),
        };
        let scheduled = crate::python_names::runtime_deliver(py)?.call1((
            event_loop.bind(py),
            self.callback.bind(py),
            text.as_str(),
            done,
        ))?;
        if scheduled.is_truthy()? {
            Ok(())
        } else {
            self.call_here(py, text)
        }
    }

    fn call_here(&self, py: Python<'_>, text: String) -> PyResult<()> {
        let result = self.callback.bind(py).call1((text,))?;
        if is_awaitable(py, &result)? {
            submit(py, &result, self.event_loop.as_ref()).map(drop)
        } else {
            Ok(())
        }
    }
}
