//! The Python functions the binding calls on hot paths (every invocation, message and awaited
//! result), each looked up once per process instead of imported on every call.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

macro_rules! python_function {
    ($(#[$doc:meta] $name:ident => $module:literal . $attr:literal;)*) => {
        $(
            #[$doc]
            pub(crate) fn $name(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
                static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
                CELL.import(py, $module, $attr)
            }
        )*
    };
}

python_function! {
    /// `iii._invocation.call`: a handler called as one invocation.
    invocation_call => "iii._invocation"."call";
    /// `iii._invocation.call_with`: a callable called with given arguments as one invocation.
    invocation_call_with => "iii._invocation"."call_with";
    /// `iii._invocation.current_trace`: the trace context of the call being served.
    current_trace => "iii._invocation"."current_trace";
    /// `iii._invocation.takes_metadata`.
    takes_metadata => "iii._invocation"."takes_metadata";
    /// `iii._runtime.submit`: runs an awaitable on a loop.
    runtime_submit => "iii._runtime"."submit";
    /// `iii._runtime.deliver`: a message callback scheduled on its loop.
    runtime_deliver => "iii._runtime"."deliver";
    /// `iii._runtime.settle`: completes an asyncio future.
    runtime_settle => "iii._runtime"."settle";
    /// `inspect.isawaitable`.
    is_awaitable => "inspect"."isawaitable";
    /// `inspect.iscoroutinefunction`.
    is_coroutine_function => "inspect"."iscoroutinefunction";
    /// `asyncio._get_running_loop`: the running loop or `None`.
    running_loop => "asyncio"."_get_running_loop";
    /// `asyncio.get_running_loop`.
    get_running_loop => "asyncio"."get_running_loop";
}
