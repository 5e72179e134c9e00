//! The one error type of the SDK, with a stable kind per variant.
//!
//! Python, Node and C bindings map every [`ErrorKind`] to their own error shape explicitly, so
//! the kind enum is exhaustive (a new kind is a compile error in every binding) while
//! [`IIIError`] itself stays `#[non_exhaustive]` for Rust users.

use std::sync::Arc;

use iii_protocol::{EndStatus, ErrorBody, codes};

/// Everything that can go wrong in the SDK.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IIIError {
    /// A handler failed; sent to the caller as `invocation_failed` with this message.
    #[error("{0}")]
    Handler(String),
    /// A remote call failed: the engine or the function's worker answered with an error body
    /// (`function_not_found`, `invocation_failed`, `invocation_stopped`, `timeout`, …).
    #[error("{code}: {message}")]
    Invocation {
        /// The remote error code.
        code: String,
        /// The remote error message.
        message: String,
        /// The remote stack trace, when there is one.
        stacktrace: Option<String>,
    },
    /// No result arrived within the call's timeout (client side).
    #[error("the call timed out")]
    Timeout,
    /// The worker is not connected to the engine and gave up reconnecting.
    #[error("not connected to the engine")]
    NotConnected,
    /// The connection to the engine failed or was lost.
    #[error("connection error: {0}")]
    Connection(String),
    /// The writer aborted the stream, with its reason.
    #[error("channel aborted: {0}")]
    ChannelAborted(String),
    /// The writer disappeared without closing: the stream is truncated.
    #[error("channel writer lost")]
    WriterLost,
    /// The reader went away (or this reader was closed): no more data can flow.
    #[error("channel reader closed")]
    ReaderClosed,
    /// The channel expired before both ends connected.
    #[error("channel expired")]
    ChannelExpired,
    /// The channel socket closed with another code (e.g. 4009 when the end is already taken).
    #[error("channel closed with code {code}: {reason}")]
    ChannelClosed {
        /// The WebSocket close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The channel socket could not be opened (wrong key → HTTP 404, bad request → 400, …).
    #[error("channel connect failed: {0}")]
    ChannelConnect(String),
    /// A peer sent something that does not follow the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// JSON (de)serialization failed.
    #[error("serialization error: {0}")]
    Serde(#[source] Arc<serde_json::Error>),
    /// The worker was shut down.
    #[error("the worker was shut down")]
    Shutdown,
    /// The engine is going away (it is shutting down): a channel end, or the calls in flight
    /// on the main socket, were cut by the engine's stop, not by their peer. The data is
    /// incomplete; the worker reconnects on its own.
    #[error("the engine is going away (shutting down)")]
    GoingAway,
    /// A caller passed an argument the SDK cannot use (a malformed call request, say).
    #[error("{0}")]
    InvalidArgument(String),
}

/// The kind of an [`IIIError`], without its data: what bindings switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// [`IIIError::Handler`]
    Handler,
    /// [`IIIError::Invocation`]
    Invocation,
    /// [`IIIError::Timeout`]
    Timeout,
    /// [`IIIError::NotConnected`]
    NotConnected,
    /// [`IIIError::Connection`]
    Connection,
    /// [`IIIError::ChannelAborted`]
    ChannelAborted,
    /// [`IIIError::WriterLost`]
    WriterLost,
    /// [`IIIError::ReaderClosed`]
    ReaderClosed,
    /// [`IIIError::ChannelExpired`]
    ChannelExpired,
    /// [`IIIError::ChannelClosed`]
    ChannelClosed,
    /// [`IIIError::ChannelConnect`]
    ChannelConnect,
    /// [`IIIError::Protocol`]
    Protocol,
    /// [`IIIError::Serde`]
    Serde,
    /// [`IIIError::Shutdown`]
    Shutdown,
    /// [`IIIError::GoingAway`]
    GoingAway,
    /// [`IIIError::InvalidArgument`]
    InvalidArgument,
}

impl ErrorKind {
    /// A stable snake_case name, e.g. `channel_aborted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handler => codes::HANDLER,
            Self::Invocation => codes::INVOCATION,
            Self::Timeout => codes::TIMEOUT,
            Self::NotConnected => codes::NOT_CONNECTED,
            Self::Connection => codes::CONNECTION,
            Self::ChannelAborted => codes::CHANNEL_ABORTED,
            Self::WriterLost => codes::WRITER_LOST,
            Self::ReaderClosed => codes::READER_CLOSED,
            Self::ChannelExpired => codes::CHANNEL_EXPIRED,
            Self::ChannelClosed => codes::CHANNEL_CLOSED,
            Self::ChannelConnect => codes::CHANNEL_CONNECT,
            Self::Protocol => codes::PROTOCOL,
            Self::Serde => codes::SERDE,
            Self::Shutdown => codes::SHUTDOWN,
            Self::GoingAway => codes::GOING_AWAY,
            Self::InvalidArgument => codes::INVALID_ARGUMENT,
        }
    }
}

impl IIIError {
    /// This error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Handler(_) => ErrorKind::Handler,
            Self::Invocation { .. } => ErrorKind::Invocation,
            Self::Timeout => ErrorKind::Timeout,
            Self::NotConnected => ErrorKind::NotConnected,
            Self::Connection(_) => ErrorKind::Connection,
            Self::ChannelAborted(_) => ErrorKind::ChannelAborted,
            Self::WriterLost => ErrorKind::WriterLost,
            Self::ReaderClosed => ErrorKind::ReaderClosed,
            Self::ChannelExpired => ErrorKind::ChannelExpired,
            Self::ChannelClosed { .. } => ErrorKind::ChannelClosed,
            Self::ChannelConnect(_) => ErrorKind::ChannelConnect,
            Self::Protocol(_) => ErrorKind::Protocol,
            Self::Serde(_) => ErrorKind::Serde,
            Self::Shutdown => ErrorKind::Shutdown,
            Self::GoingAway => ErrorKind::GoingAway,
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
        }
    }

    /// A stable code: the remote code for [`IIIError::Invocation`] (e.g. `function_not_found`),
    /// otherwise the kind's name.
    pub fn code(&self) -> &str {
        match self {
            Self::Invocation { code, .. } => code,
            // The published clients' code for a call that timed out.
            Self::Timeout => codes::CALL_TIMED_OUT,
            other => other.kind().as_str(),
        }
    }

    /// The error body a handler failing with this error sends back to its caller.
    pub fn to_error_body(&self) -> ErrorBody {
        match self {
            Self::Invocation {
                code,
                message,
                stacktrace,
            } => ErrorBody {
                code: code.clone(),
                message: message.clone(),
                stacktrace: stacktrace.clone(),
            },
            Self::Handler(message) => ErrorBody::new(codes::INVOCATION_FAILED, message.clone()),
            other => ErrorBody::new(codes::INVOCATION_FAILED, other.to_string()),
        }
    }

    /// The error of a channel end that ended with `status`, or `None` for a clean end.
    pub fn from_end_status(status: EndStatus) -> Option<Self> {
        Some(match status {
            EndStatus::Complete => return None,
            EndStatus::Aborted(reason) => Self::ChannelAborted(reason),
            EndStatus::WriterLost => Self::WriterLost,
            EndStatus::ReaderClosed => Self::ReaderClosed,
            EndStatus::Expired => Self::ChannelExpired,
            EndStatus::GoingAway => Self::GoingAway,
            other => {
                let (code, reason) = other.to_close();
                Self::ChannelClosed { code, reason }
            }
        })
    }
}

impl From<ErrorBody> for IIIError {
    fn from(body: ErrorBody) -> Self {
        Self::Invocation {
            code: body.code,
            message: body.message,
            stacktrace: body.stacktrace,
        }
    }
}

impl From<serde_json::Error> for IIIError {
    fn from(error: serde_json::Error) -> Self {
        Self::Serde(Arc::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_errors_become_invocation_failed() {
        let body = IIIError::Handler("bad input".into()).to_error_body();
        assert_eq!(body, ErrorBody::new("invocation_failed", "bad input"));
        let body = IIIError::Timeout.to_error_body();
        assert_eq!(body.code, "invocation_failed");
    }

    #[test]
    fn remote_codes_propagate() {
        let error = IIIError::from(ErrorBody::new("function_not_found", "Function x not found"));
        assert_eq!(error.code(), "function_not_found");
        assert_eq!(error.kind(), ErrorKind::Invocation);
        assert_eq!(error.to_error_body().code, "function_not_found");
    }

    #[test]
    fn end_statuses_map_to_typed_errors() {
        assert!(IIIError::from_end_status(EndStatus::Complete).is_none());
        let aborted = IIIError::from_end_status(EndStatus::from_close(4001, "aborted: why"));
        assert!(matches!(aborted, Some(IIIError::ChannelAborted(r)) if r == "why"));
        let taken = IIIError::from_end_status(EndStatus::from_close(4009, "end_already_connected"));
        assert!(matches!(
            taken,
            Some(IIIError::ChannelClosed { code: 4009, .. })
        ));
        assert_eq!(
            IIIError::from_end_status(EndStatus::WriterLost).map(|e| e.kind()),
            Some(ErrorKind::WriterLost)
        );
    }

    #[test]
    fn kinds_have_distinct_names() {
        let kinds = [
            ErrorKind::Handler,
            ErrorKind::Invocation,
            ErrorKind::Timeout,
            ErrorKind::NotConnected,
            ErrorKind::Connection,
            ErrorKind::ChannelAborted,
            ErrorKind::WriterLost,
            ErrorKind::ReaderClosed,
            ErrorKind::ChannelExpired,
            ErrorKind::ChannelClosed,
            ErrorKind::ChannelConnect,
            ErrorKind::Protocol,
            ErrorKind::Serde,
            ErrorKind::Shutdown,
            ErrorKind::GoingAway,
            ErrorKind::InvalidArgument,
        ];
        let names: std::collections::HashSet<_> = kinds.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), kinds.len());
    }
}
