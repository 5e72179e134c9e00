//! Turning the core's `IIIError` into a JavaScript `Error` with a stable `code` (every kind
//! mapped explicitly to an error `name`).

use iii_sdk::{ErrorKind, IIIError};
use napi::bindgen_prelude::*;

/// The JavaScript `name` of each kind's errors.
fn error_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Handler => "HandlerError",
        ErrorKind::Invocation => "InvocationError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::NotConnected => "NotConnectedError",
        ErrorKind::Connection => "ConnectionError",
        ErrorKind::ChannelAborted => "ChannelAbortedError",
        ErrorKind::WriterLost => "WriterLostError",
        ErrorKind::ReaderClosed => "ReaderClosedError",
        ErrorKind::ChannelExpired => "ChannelExpiredError",
        ErrorKind::ChannelClosed => "ChannelClosedError",
        ErrorKind::ChannelConnect => "ChannelNotFoundError",
        ErrorKind::Protocol => "ProtocolError",
        ErrorKind::Serde => "SerializationError",
        ErrorKind::Shutdown => "ShutdownError",
        ErrorKind::GoingAway => "GoingAwayError",
        ErrorKind::InvalidArgument => "TypeError",
    }
}

/// `error` as a napi error carrying a JS `Error` with `name`, `code`, `kind` (and
/// `stacktrace` for remote failures). Must run on the JavaScript thread.
pub(crate) fn to_js_error(env: &Env, error: &IIIError) -> napi::Error {
    error_object(env, error).map_or_else(|fallback| fallback, |object| object.to_unknown().into())
}

/// `error` as a JS `Error` object with `name`, `code`, `kind` (and `stacktrace`).
pub(crate) fn error_object<'env>(env: &'env Env, error: &IIIError) -> Result<Object<'env>> {
    let mut object = env.create_error(napi::Error::from_reason(error.to_string()))?;
    object.set_named_property("name", error_name(error.kind()))?;
    object.set_named_property("code", error.code())?;
    object.set_named_property("kind", error.kind().as_str())?;
    if let IIIError::Invocation {
        stacktrace: Some(stacktrace),
        ..
    } = error
    {
        object.set_named_property("stacktrace", stacktrace.as_str())?;
    }
    Ok(object)
}

/// A `TypeError`-like failure for bad arguments from JavaScript.
pub(crate) fn invalid(message: impl Into<String>) -> napi::Error {
    napi::Error::new(Status::InvalidArg, message.into())
}
