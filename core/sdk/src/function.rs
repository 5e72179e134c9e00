//! Function registrations: the handler type and the `registerfunction` message it becomes.
//!
//! Rust handlers receive the invocation's raw JSON (refs stay refs; build a
//! [`ChannelReader`](crate::ChannelReader) / [`ChannelWriter`](crate::ChannelWriter) from them
//! with [`extract_channel_refs`](crate::extract_channel_refs)), as the channel guide shows (docs/ARCHITECTURE.md, Examples).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use iii_protocol::Message;
use serde_json::Value;

use crate::IIIError;

/// The boxed future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, IIIError>> + Send + 'static>>;

/// A registered handler: takes the invocation's `data`, returns its result.
pub type Handler = Arc<dyn Fn(Value) -> HandlerFuture + Send + Sync + 'static>;

/// A function to register on the engine: its id, its handler and optional descriptions.
#[derive(Clone)]
pub struct RegisterFunction {
    /// The function id, e.g. `files::process`.
    pub id: String,
    /// A description for listings.
    pub description: Option<String>,
    /// Free-form metadata.
    pub metadata: Option<Value>,
    /// A schema of the input.
    pub request_format: Option<Value>,
    /// A schema of the output.
    pub response_format: Option<Value>,
    pub(crate) handler: Handler,
    /// Set for a function the engine calls over HTTP (see [`http`](Self::http)).
    pub(crate) invocation: Option<Value>,
}

impl RegisterFunction {
    /// A function whose handler is an async closure:
    /// `RegisterFunction::new_async("a::b", |input: Value| async move { Ok(input) })`.
    ///
    /// The handler runs in its own task on the worker's home runtime; a panic in it is reported to the
    /// caller as `invocation_failed` and does not stop the worker.
    pub fn new_async<F, Fut>(id: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, IIIError>> + Send + 'static,
    {
        Self::from_handler(id, Arc::new(move |input| Box::pin(handler(input))))
    }

    /// A function from an already boxed handler (what bindings build).
    pub fn from_handler(id: impl Into<String>, handler: Handler) -> Self {
        Self {
            id: id.into(),
            description: None,
            metadata: None,
            request_format: None,
            response_format: None,
            handler,
            invocation: None,
        }
    }

    /// A function the engine calls over HTTP instead of over this worker's socket:
    /// `invocation` is `{url, method?, timeout_ms?, headers?, auth?}` as the published clients
    /// take it ([`HttpInvocation`](iii_protocol::remote::HttpInvocation)). The function stays
    /// registered while this worker is connected. A malformed config is
    /// [`IIIError::InvalidArgument`].
    pub fn http(id: impl Into<String>, invocation: Value) -> Result<Self, IIIError> {
        let checked = iii_protocol::remote::HttpInvocation::from_value(&invocation)
            .map_err(IIIError::InvalidArgument)?;
        let id = id.into();
        let not_here = id.clone();
        let handler: Handler = Arc::new(move |_| {
            let message =
                format!("{not_here} is called over HTTP by the engine, not by this worker");
            Box::pin(async move {
                Err(IIIError::Invocation {
                    code: iii_protocol::codes::FUNCTION_NOT_INVOKABLE.into(),
                    message,
                    stacktrace: None,
                })
            })
        });
        let mut function = Self::from_handler(id, handler);
        function.invocation = serde_json::to_value(checked).ok();
        Ok(function)
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// The `registerfunction` message announcing this function.
    pub(crate) fn message(&self) -> Message {
        Message::RegisterFunction {
            id: self.id.clone(),
            description: self.description.clone(),
            metadata: self.metadata.clone(),
            request_format: self.request_format.clone(),
            response_format: self.response_format.clone(),
            invocation: self.invocation.clone(),
        }
    }
}

impl std::fmt::Debug for RegisterFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterFunction")
            .field("id", &self.id)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}
