//! HTTP functions for Python: `iii.utils.http` marks its wrapper, and such a function runs
//! through the core's HTTP adapter ([`iii_sdk::http::serve_returning`]), which parses the
//! request, speaks the response channel's control messages and ends the response after the
//! handler. Python gets the request as a dict plus its body reader, and the response as
//! [`HttpResponse`]; `iii.types` gives them their Python names.

use std::sync::Arc;

use iii_sdk::function::Handler;
use iii_sdk::http::{header_pairs, serve_returning};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::channel::{ChannelReader, ChannelWriter};
use crate::convert::{from_py, to_py};
use crate::dispatch::{failure, result_of, submit};
use crate::errors::IntoPyResult;
use crate::wait::{acknowledged, awaitable};

/// The response of an HTTP invocation (wrapped by `iii.types.HttpResponse`).
#[pyclass(module = "iii._native", frozen)]
pub(crate) struct HttpResponse {
    inner: Arc<iii_sdk::HttpResponse>,
    writer: Py<ChannelWriter>,
}

#[pymethods]
impl HttpResponse {
    /// Queues the status code (effective before the first body byte; a value that is no
    /// status code is ignored, as the engine ignores it); an awaitable.
    fn status<'py>(
        &self,
        py: Python<'py>,
        status_code: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        acknowledged(py, self.inner.queue_status_value(&from_py(status_code)?))
    }

    /// Queues headers `{name: value | [values]}` (effective before the first body byte); an
    /// awaitable.
    fn headers<'py>(
        &self,
        py: Python<'py>,
        headers: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pairs = header_pairs(&from_py(headers)?)
            .ok_or_else(|| PyTypeError::new_err("headers() takes a mapping of names to values"))?;
        acknowledged(py, self.inner.queue_headers(pairs))
    }

    /// The body's writer (its operations in order with status, headers and the end).
    #[getter]
    fn writer(&self, py: Python<'_>) -> Py<ChannelWriter> {
        self.writer.clone_ref(py)
    }

    /// Ends the response after everything written before; an awaitable.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        acknowledged(py, self.inner.queue_close())
    }

    /// Sends the file `name` from `directory` as the whole response and ends it (400 for a
    /// name that is not one plain file name, 404 for no such file inside `directory`; see
    /// [`iii_sdk::HttpResponse::send_file`]); an awaitable.
    fn send_file<'py>(
        &self,
        py: Python<'py>,
        directory: std::path::PathBuf,
        name: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let response = self.inner.clone();
        awaitable(py, async move {
            response.send_file(directory, &name).await.py()
        })
    }
}

/// The core handler of an `http`-wrapped callable: `callable(request_fields, request_body,
/// response)` returns a coroutine, run on iii's asyncio loop.
pub(crate) fn handler(callable: Py<PyAny>, address: &str) -> Handler {
    let callable = Arc::new(callable);
    let address = address.to_string();
    Arc::new(move |input| {
        let (callable, address) = (callable.clone(), address.clone());
        // The call this serves, for `iii.current_invocation()` inside the handler.
        let call = iii_sdk::current_invocation();
        Box::pin(async move {
            let home = address.clone();
            serve_returning(&home, input, |request, response| async move {
                let (fields, body) = request.into_plain();
                let running = crate::gil::attach_or_err(|py| {
                    let writer = ChannelWriter::from_queue(response.queue());
                    let response = HttpResponse {
                        writer: Py::new(py, writer)?,
                        inner: Arc::new(response),
                    };
                    let args = (
                        to_py(py, &fields, &address)?,
                        Py::new(py, ChannelReader::from_core(body))?,
                        Py::new(py, response)?,
                    );
                    let no_trace = iii_sdk::TraceContext::default();
                    let (function_id, invocation_id, trace) = match &call {
                        Some(call) => (
                            call.function_id.as_str(),
                            call.invocation_id.as_deref(),
                            &call.trace,
                        ),
                        None => ("", None, &no_trace),
                    };
                    let coroutine = crate::python_names::invocation_call_with(py)?.call1((
                        callable.bind(py),
                        args,
                        pyo3::types::PyDict::new(py),
                        function_id,
                        invocation_id,
                        crate::dispatch::trace_tuple(trace),
                    ))?;
                    submit(py, &coroutine, None)
                })
                .map_err(failure)?;
                result_of(running).await
            })
            .await
        })
    })
}

/// The `set_status` control message for `status_code`, as the JSON text of its frame (for
/// `iii.types.StreamResponse`, which writes through a plain channel writer).
#[pyfunction]
pub(crate) fn status_message(status_code: u16) -> String {
    iii_sdk::protocol::http::ResponseControl::status(status_code).to_json()
}

/// The `set_headers` control message for `headers` (`{name: value | [values]}`), or `None`
/// when there are none.
#[pyfunction]
pub(crate) fn headers_message(headers: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    let pairs = header_pairs(&from_py(headers)?).ok_or_else(|| {
        PyTypeError::new_err("headers must be a dict of strings or lists of strings")
    })?;
    Ok(iii_sdk::protocol::http::ResponseControl::headers(pairs).map(|control| control.to_json()))
}
