//! The worker handle (`III`) for Python: channels, calls, function and trigger registration.
//! Blocking methods have `_async` twins for async code; both only convert values and errors
//! around the core's `III`.

use iii_sdk::StreamChannelRef;
use iii_sdk::channel::WriteQueue;
use iii_sdk::{CallContext, InitOptions, RegisterFunction, RegisterTrigger, TriggerRequest};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::channel::{ChannelReader, ChannelWriter};
use crate::convert::{from_py, to_py};
use crate::errors::{IntoPyResult, call_failure};
use crate::wait::{awaitable, block_on, check_fork};

/// A channel made by `create_channel`: both live ends here, and both refs to hand out.
#[pyclass(module = "iii", frozen)]
pub(crate) struct Channel {
    /// The writing end.
    #[pyo3(get)]
    writer: Py<ChannelWriter>,
    /// The reading end.
    #[pyo3(get)]
    reader: Py<ChannelReader>,
    /// The writing end's ref (`model_dump()` gives the plain dict).
    #[pyo3(get)]
    writer_ref: Py<PyAny>,
    /// The reading end's ref.
    #[pyo3(get)]
    reader_ref: Py<PyAny>,
}

#[pymethods]
impl Channel {
    fn __repr__(&self) -> String {
        format!(
            "<Channel channel_id={}>",
            self.writer.get().channel_ref().channel_id
        )
    }
}

/// `iii.types.StreamChannelRef` for `channel_ref`.
fn ref_object(py: Python<'_>, channel_ref: &StreamChannelRef) -> PyResult<Py<PyAny>> {
    let class = py.import("iii.types")?.getattr("StreamChannelRef")?;
    Ok(class
        .call1((
            &channel_ref.channel_id,
            &channel_ref.access_key,
            channel_ref.direction.to_string(),
        ))?
        .unbind())
}

fn channel_object(py: Python<'_>, channel: iii_sdk::Channel) -> PyResult<Channel> {
    let iii_sdk::Channel {
        writer,
        reader,
        writer_ref,
        reader_ref,
    } = channel;
    Ok(Channel {
        writer: Py::new(py, ChannelWriter::from_queue(WriteQueue::over(writer)))?,
        reader: Py::new(py, ChannelReader::from_core(reader))?,
        writer_ref: ref_object(py, &writer_ref)?,
        reader_ref: ref_object(py, &reader_ref)?,
    })
}

/// A request given as a dict (or a model with `model_dump()`), read by the core:
/// `function_id`, `payload`, optional `action` (`TriggerAction.Void()`), `timeout_ms` and
/// `metadata` (handed to the called function beside its input).
/// A request without trace fields carries on the trace context of the call the running handler
/// serves (`iii.current_invocation()`), as the published client carries its active span's.
fn trigger_request(request: &Bound<'_, PyAny>) -> PyResult<(TriggerRequest, CallContext)> {
    let py = request.py();
    let (call, mut context) = TriggerRequest::from_value_in_context(from_py(request)?).py()?;
    if context.trace.is_empty() {
        let current = crate::python_names::current_trace(py)?.call0()?;
        if !current.is_none() {
            let (traceparent, tracestate, baggage) = current.extract()?;
            context.trace = iii_sdk::TraceContext {
                traceparent,
                tracestate,
                baggage,
            };
        }
    }
    Ok((call, context))
}

/// A worker connected to an engine. Create it with `iii.register_worker(url)`.
#[pyclass(module = "iii", name = "III", frozen, weakref, subclass)]
pub(crate) struct Worker {
    inner: iii_sdk::III,
}

#[pymethods]
impl Worker {
    /// Connects to the engine at `url` (in the background; calls wait for the connection, up
    /// to `connect_timeout_ms`). A `url` that is not `ws://` or `wss://` is refused.
    #[new]
    #[pyo3(signature = (url, worker_name = None, invocation_timeout_ms = None, connect_timeout_ms = None,
                        worker_description = None, settings = None))]
    fn new(
        url: &str,
        worker_name: Option<String>,
        invocation_timeout_ms: Option<u64>,
        connect_timeout_ms: Option<u64>,
        worker_description: Option<String>,
        settings: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        check_fork()?;
        iii_sdk::binding::logs::init();
        let mut options = InitOptions::for_binding("python", worker_name, invocation_timeout_ms)
            .with_connect_timeout(connect_timeout_ms)
            .with_description(worker_description);
        // `{"headers", "reconnection_config"}`, read by the core as every binding's are.
        if let Some(settings) = settings.filter(|settings| !settings.is_none()) {
            options = options.with_settings(&from_py(settings)?).py()?;
        }
        let _runtime = iii_sdk::runtime().enter();
        let inner = iii_sdk::try_register_worker_with(url, options).py()?;
        Ok(Self { inner })
    }

    /// The engine URL.
    #[getter(address)]
    fn engine_url(&self) -> String {
        self.inner.address().to_string()
    }

    /// The engine URL (the published client's name).
    fn get_address(&self) -> String {
        self.inner.address().to_string()
    }

    /// Waits until connected and the engine has everything registered so far.
    fn ready(&self, py: Python<'_>) -> PyResult<()> {
        let iii = self.inner.clone();
        block_on(py, "ready", "ready_async", async move { iii.ready().await })?.py()
    }

    /// Awaitable `ready`.
    fn ready_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let iii = self.inner.clone();
        awaitable(py, async move { iii.ready().await.py() })
    }

    /// Creates a channel (`buffer_size` in 64 KiB frames, default 64).
    #[pyo3(signature = (buffer_size = None))]
    fn create_channel(&self, py: Python<'_>, buffer_size: Option<u32>) -> PyResult<Channel> {
        let iii = self.inner.clone();
        let channel = block_on(py, "create_channel", "create_channel_async", async move {
            iii.create_channel(buffer_size).await
        })?
        .py()?;
        channel_object(py, channel)
    }

    /// Awaitable `create_channel`.
    #[pyo3(signature = (buffer_size = None))]
    fn create_channel_async<'py>(
        &self,
        py: Python<'py>,
        buffer_size: Option<u32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let iii = self.inner.clone();
        awaitable(py, async move {
            let channel = iii.create_channel(buffer_size).await.py()?;
            crate::gil::attach_or_err(|py| channel_object(py, channel))
        })
    }

    /// Calls a function: `trigger({"function_id": …, "payload": …, "timeout_ms": …})`
    /// returns its result; with `"action": TriggerAction.Void()` it returns `None` at once.
    fn trigger(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let (request, context) = trigger_request(request)?;
        let function_id = request.function_id.clone();
        let iii = self.inner.clone();
        let result = block_on(py, "trigger", "trigger_async", async move {
            iii.trigger_in_context(request, context).await
        })?
        .map_err(|error| call_failure(error, &function_id))?;
        Ok(to_py(py, &result, self.inner.address())?.unbind())
    }

    /// Awaitable `trigger`.
    fn trigger_async<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (request, context) = trigger_request(request)?;
        let function_id = request.function_id.clone();
        let iii = self.inner.clone();
        awaitable(py, async move {
            let result = (iii.trigger_in_context(request, context).await)
                .map_err(|error| call_failure(error, &function_id))?;
            crate::gil::attach_or_err(|py| to_py(py, &result, iii.address()).map(Bound::unbind))
        })
    }

    /// Registers `handler` (a function or an `async def`) as `function_id`. Its input arrives
    /// as plain Python values with channel refs made live; its return value is sent as JSON.
    /// Given an `HttpInvocationConfig` (or its dict: `url`, `method`, `timeout_ms`, `headers`,
    /// `auth`) instead, the engine calls the function over HTTP.
    /// Returns the registration (`id`, `unregister()`). An empty id, or one this worker has
    /// registered already, is a `ValueError`; keywords of the published client this package
    /// has no use for (`observe`, `local_dispatch`, …) are accepted and ignored.
    #[pyo3(signature = (function_id, handler, description = None, metadata = None,
                        request_format = None, response_format = None, **_ignored))]
    #[allow(clippy::too_many_arguments)] // the published client's keywords, one each
    fn register_function(
        &self,
        py: Python<'_>,
        function_id: &Bound<'_, PyAny>,
        handler: Py<PyAny>,
        description: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        request_format: Option<&Bound<'_, PyAny>>,
        response_format: Option<&Bound<'_, PyAny>>,
        _ignored: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<FunctionRef> {
        let function_id: String = function_id
            .extract()
            .map_err(|_| PyTypeError::new_err("register_function() needs a string id"))?;
        let given = handler.bind(py);
        let mut function = if given.is_callable() {
            let handler = if given.hasattr("__iii_http__")? {
                crate::http::handler(handler, self.inner.address())
            } else {
                crate::dispatch::handler(py, handler, self.inner.address())?
            };
            RegisterFunction::from_handler(function_id, handler)
        } else if given.hasattr("model_dump")? || given.is_instance_of::<PyDict>() {
            // An HttpInvocationConfig (or its dict): the engine calls the function over HTTP.
            RegisterFunction::http(function_id, from_py(&plain(given)?)?).py()?
        } else {
            return Err(PyTypeError::new_err(
                "the handler must be callable, or an HttpInvocationConfig for a function the engine calls over HTTP",
            ));
        };
        function.description = description;
        function.metadata = metadata.map(from_py).transpose()?;
        function.request_format = request_format.map(format_value).transpose()?;
        function.response_format = response_format.map(format_value).transpose()?;
        let _runtime = iii_sdk::runtime().enter();
        let registered = self.inner.try_register_function(function).py()?;
        Ok(FunctionRef { inner: registered })
    }

    /// Registers a trigger: `{"type": "http", "function_id": …, "config": {…}, "metadata"?}`.
    /// Returns the registration (`id`, `unregister()`).
    fn register_trigger(&self, trigger: &Bound<'_, PyAny>) -> PyResult<TriggerRef> {
        let trigger = RegisterTrigger::from_value(from_py(&plain(trigger)?)?).py()?;
        let _runtime = iii_sdk::runtime().enter();
        let registered = self.inner.register_trigger(trigger).py()?;
        Ok(TriggerRef { inner: registered })
    }

    /// Provides a trigger type (`{"id", "description"?}` or a model of it): the engine hands
    /// this worker every trigger of the type, and `handler.register_trigger(config)` /
    /// `unregister_trigger(config)` (sync or async) start and stop firing it.
    fn register_trigger_type(
        slf: &Bound<'_, Self>,
        trigger_type: &Bound<'_, PyAny>,
        handler: &Bound<'_, PyAny>,
    ) -> PyResult<TriggerTypeRef> {
        let py = slf.py();
        let this = slf.get();
        let declared = from_py(&plain(trigger_type)?)?;
        let text = |key: &str| {
            declared
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let id = text("id").ok_or_else(|| {
            PyTypeError::new_err("register_trigger_type() needs {\"id\", \"description\"}")
        })?;
        let adapter = py
            .import("iii._trigger_types")?
            .call_method1("adapter", (handler,))?
            .unbind();
        let core = crate::dispatch::handler(py, adapter, this.inner.address())?;
        let mut provided = iii_sdk::RegisterTriggerType::new(id, core);
        provided.description = text("description");
        let _runtime = iii_sdk::runtime().enter();
        let inner = this.inner.register_trigger_type(provided).py()?;
        Ok(TriggerTypeRef {
            inner,
            worker: slf.clone().unbind(),
        })
    }

    /// Stops providing a trigger type (`{"id"}`, a model of it, or its id).
    fn unregister_trigger_type(&self, trigger_type: &Bound<'_, PyAny>) -> PyResult<()> {
        let id: String = match trigger_type.extract::<String>() {
            Ok(id) => id,
            Err(_) => from_py(&plain(trigger_type)?)?
                .get("id")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| PyTypeError::new_err("unregister_trigger_type() needs an id"))?,
        };
        let _runtime = iii_sdk::runtime().enter();
        self.inner.unregister_trigger_type(&id);
        Ok(())
    }

    /// Where the connection stands: `connecting`, `connected`, `reconnecting`,
    /// `disconnected` (after `shutdown()`) or `failed`.
    fn get_connection_state(&self) -> &'static str {
        self.inner.connection_state().as_str()
    }

    /// Calls `handler(state)` now, then on every change of the connection state (on the
    /// asyncio loop running here, if any); returns a function that stops it (idempotent).
    fn add_connection_state_listener(
        &self,
        py: Python<'_>,
        handler: Py<PyAny>,
    ) -> PyResult<crate::connection_state::Unsubscribe> {
        crate::connection_state::listen(py, &self.inner, handler)
    }

    /// Blocks (GIL released) until the worker stopped: what keeps the process alive while
    /// a worker runs, as with the published client.
    fn wait_stopped(&self, py: Python<'_>) -> PyResult<()> {
        let iii = self.inner.clone();
        block_on(py, "wait_stopped", "wait_stopped", async move {
            iii.stopped().await
        })
    }

    /// Disconnects from the engine; pending calls fail with `ShutdownError`.
    fn shutdown(&self) {
        let _runtime = iii_sdk::runtime().enter();
        self.inner.shutdown();
    }

    fn __repr__(&self) -> String {
        format!("<III {}>", self.inner.address())
    }
}

/// A schema given as a dict or as a pydantic model (`model_dump()`), as JSON.
fn format_value(format: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    from_py(&plain(format)?)
}

/// `value`, or its `model_dump()` when it is a pydantic model.
fn plain<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if value.hasattr("model_dump")? {
        return value.call_method0("model_dump");
    }
    Ok(value.clone())
}

/// A registration handle for Python, as the published client has them: `id`, and
/// `unregister()` to withdraw the registration.
macro_rules! registration_handle {
    ($(#[$doc:meta])* $name:ident, $python_name:literal, $inner:ty) => {
        $(#[$doc])*
        #[pyclass(module = "iii", name = $python_name, frozen)]
        pub(crate) struct $name {
            inner: $inner,
        }

        #[pymethods]
        impl $name {
            /// The registration's id.
            #[getter]
            fn id(&self) -> String {
                self.inner.id().to_string()
            }

            /// Withdraws the registration from the engine.
            fn unregister(&self) {
                let _runtime = iii_sdk::runtime().enter();
                self.inner.unregister();
            }

            fn __repr__(&self) -> String {
                format!("<{} {}>", $python_name, self.inner.id())
            }
        }
    };
}

registration_handle!(
    /// A registered function.
    FunctionRef,
    "FunctionRef",
    iii_sdk::FunctionRef
);
registration_handle!(
    /// A registered trigger.
    TriggerRef,
    "Trigger",
    iii_sdk::TriggerRef
);

/// A trigger type this worker provides (what `register_trigger_type` returns).
#[pyclass(module = "iii", name = "TriggerTypeRef", frozen)]
pub(crate) struct TriggerTypeRef {
    inner: iii_sdk::TriggerTypeRef,
    worker: Py<Worker>,
}

#[pymethods]
impl TriggerTypeRef {
    /// The type's id.
    #[getter]
    fn id(&self) -> String {
        self.inner.id().to_string()
    }

    /// Registers a trigger of this type for `function_id`.
    #[pyo3(signature = (function_id, config, metadata = None))]
    fn register_trigger(
        &self,
        py: Python<'_>,
        function_id: String,
        config: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<TriggerRef> {
        let trigger = PyDict::new(py);
        trigger.set_item("type", self.inner.id())?;
        trigger.set_item("function_id", function_id)?;
        trigger.set_item("config", config)?;
        if let Some(metadata) = metadata {
            trigger.set_item("metadata", metadata)?;
        }
        self.worker.get().register_trigger(trigger.as_any())
    }

    /// Registers `handler` as `function_id` (it does not bind a trigger, as the published
    /// client's does not).
    #[pyo3(signature = (function_id, handler, description = None))]
    fn register_function(
        &self,
        py: Python<'_>,
        function_id: String,
        handler: Py<PyAny>,
        description: Option<String>,
    ) -> PyResult<FunctionRef> {
        let id = pyo3::types::PyString::new(py, &function_id);
        (self.worker.get()).register_function(
            py,
            id.as_any(),
            handler,
            description,
            None,
            None,
            None,
            None,
        )
    }

    /// Stops providing the type.
    fn unregister(&self) {
        let _runtime = iii_sdk::runtime().enter();
        self.inner.unregister();
    }

    fn __repr__(&self) -> String {
        format!("<TriggerTypeRef {}>", self.inner.id())
    }
}
