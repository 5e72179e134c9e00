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
        }
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
            invocation: None,
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
