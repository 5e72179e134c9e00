//! Turning the core's `IIIError` into the Python exception tree of `iii.errors`, one class
//! per error kind (every kind mapped explicitly), with the Rust error kept as `__cause__`.

use iii_sdk::{ErrorKind, IIIError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// The `iii.errors` class raised for each kind.
fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Handler => "HandlerError",
        ErrorKind::Invocation => "InvocationError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::NotConnected => "NotConnected",
        ErrorKind::Connection => "ConnectionError",
        ErrorKind::ChannelAborted => "ChannelAborted",
        ErrorKind::WriterLost => "WriterLost",
        ErrorKind::ReaderClosed => "ReaderClosed",
        ErrorKind::ChannelExpired => "ChannelExpired",
        ErrorKind::ChannelClosed => "ChannelClosed",
        ErrorKind::ChannelConnect => "ChannelNotFound",
        ErrorKind::Protocol => "ProtocolError",
        ErrorKind::Serde => "SerializationError",
        ErrorKind::Shutdown => "ShutdownError",
        ErrorKind::GoingAway => "GoingAway",
        ErrorKind::InvalidArgument => "InvalidArgument",
    }
}

/// The Python exception for `error`: an instance of its `iii.errors` class, with `code`
/// (and `stacktrace`) attributes where the error has them and a `NativeError` holding the
/// Rust error as its `__cause__`.
pub(crate) fn to_py_err(error: IIIError) -> PyErr {
    crate::gil::attach(|py| build(py, &error).unwrap_or_else(|fallback| fallback))
        .unwrap_or_else(crate::gil::exiting)
}

fn build(py: Python<'_>, error: &IIIError) -> Result<PyErr, PyErr> {
    let errors = py.import("iii.errors")?;
    // A call the listener's access rules refuse: the published client's own class.
    let name = match error.code() {
        iii_sdk::protocol::codes::FORBIDDEN => "IIIForbiddenError",
        _ => class_name(error.kind()),
    };
    let class = errors.getattr(name)?;
    let instance = class.call1(PyTuple::new(py, [error.to_string()])?)?;
    instance.setattr("code", error.code())?;
    if let IIIError::Invocation {
        stacktrace,
        message,
        ..
    } = error
    {
        instance.setattr("stacktrace", stacktrace.clone())?;
        instance.setattr("message", message)?;
    }
    // The cause: the remote traceback, printed as one (multi-line) section of the traceback,
    // or the core's description of the error.
    let cause = match error {
        IIIError::Invocation {
            stacktrace: Some(stacktrace),
            ..
        } => errors.getattr("RemoteTraceback")?.call1((stacktrace,))?,
        _ => (errors.getattr("NativeError")?).call1((native_description(error),))?,
    };
    instance.setattr("__cause__", cause)?;
    Ok(PyErr::from_value(instance))
}

/// The core's description of `error`: its code and message (the message of the exception
/// itself may be shorter).
fn native_description(error: &IIIError) -> String {
    format!("{} ({}): {error}", error.code(), error.kind().as_str())
}

/// The Python exception for a failed call of `function_id`: as [`to_py_err`], and an
/// `InvocationError` also carries `function_id` (as the published client's does).
pub(crate) fn call_failure(error: IIIError, function_id: &str) -> PyErr {
    let invocation = matches!(error, IIIError::Invocation { .. } | IIIError::Timeout);
    let raised = to_py_err(error);
    if invocation {
        crate::gil::attach(|py| {
            let _ = raised.value(py).setattr("function_id", function_id);
        });
    }
    raised
}

/// `Result<T, IIIError>` into a Python result.
pub(crate) trait IntoPyResult<T> {
    /// Maps the error with [`to_py_err`].
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, IIIError> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
