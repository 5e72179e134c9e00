//! Trigger types this worker provides (`registertriggertype`): the engine forwards every
//! trigger of such a type to this worker, which starts firing it (calling its function with
//! `trigger`) when it is registered and stops when it is withdrawn (docs/PROTOCOL.md §2.2).
//!
//! A type's handler is an ordinary [`Handler`] called with
//! `{"op": "register" | "unregister", "trigger": {id, function_id, config, metadata?}}`, so every
//! binding passes its language's handler object through the machinery its functions use.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use iii_protocol::codes::{TRIGGER_REGISTRATION_FAILED, TRIGGER_TYPE_NOT_FOUND};
use iii_protocol::{ErrorBody, Message};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::IIIError;
use crate::function::Handler;
use crate::state::{WorkerState, lock};

/// A trigger type to provide: its id, a description for listings, and the handler that
/// starts and stops its triggers.
#[derive(Clone)]
pub struct RegisterTriggerType {
    /// The type's id, e.g. `cron`.
    pub id: String,
    /// A description for the engine's listings.
    pub description: Option<String>,
    /// Called with `{"op": "register" | "unregister", "trigger": {…}}`; an error from a
    /// registration is reported to the engine as `trigger_registration_failed`.
    pub handler: Handler,
}

impl RegisterTriggerType {
    /// A trigger type `id` served by `handler`.
    pub fn new(id: impl Into<String>, handler: Handler) -> Self {
        Self {
            id: id.into(),
            description: None,
            handler,
        }
    }

    /// This type with a description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The `registertriggertype` message.
    pub(crate) fn message(&self) -> Message {
        Message::RegisterTriggerType {
            id: Some(self.id.clone()),
            description: self.description.clone(),
            trigger_request_format: None,
            call_request_format: None,
        }
    }
}

/// A trigger type this worker provides; [`unregister`](Self::unregister) withdraws it.
pub struct TriggerTypeRef {
    pub(crate) inner: Arc<WorkerState>,
    pub(crate) id: String,
    pub(crate) generation: u64,
}

impl TriggerTypeRef {
    /// The type's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops providing the type (unless it was registered again since).
    pub fn unregister(&self) {
        let provided = lock(&self.inner.trigger_types)
            .get(&self.id)
            .is_some_and(|(generation, _)| *generation == self.generation);
        if provided {
            unregister(&self.inner, &self.id);
        }
    }
}

/// Stops providing `id` and tells the engine, if `inner` provides it.
pub(crate) fn unregister(inner: &WorkerState, id: &str) {
    if lock(&inner.trigger_types).remove(id).is_some() {
        let message = Message::UnregisterTriggerType {
            id: Some(id.to_string()),
        };
        inner.link.announce(message.to_json());
    }
}

/// Records `trigger_type` for `inner` and announces it; refuses an empty id.
pub(crate) fn register(
    inner: &Arc<WorkerState>,
    trigger_type: RegisterTriggerType,
) -> Result<TriggerTypeRef, IIIError> {
    let id = trigger_type.id.clone();
    if id.trim().is_empty() {
        return Err(IIIError::InvalidArgument(
            "a trigger type id is required".into(),
        ));
    }
    let generation = inner.generation.fetch_add(1, Ordering::Relaxed);
    let announcement = trigger_type.message().to_json();
    lock(&inner.trigger_types).insert(id.clone(), (generation, trigger_type));
    inner.link.announce(announcement);
    Ok(TriggerTypeRef {
        inner: inner.clone(),
        id,
        generation,
    })
}

/// What the engine forwarded: a trigger of one of this worker's types, registered or
/// withdrawn.
pub(crate) struct Forwarded {
    pub(crate) register: bool,
    pub(crate) id: String,
    pub(crate) trigger_type: String,
    pub(crate) function_id: String,
    pub(crate) config: Value,
    pub(crate) metadata: Option<Value>,
}

/// Runs the type's handler for `forwarded` (on the SDK runtime) and, for a registration,
/// answers the engine with `triggerregistrationresult` on `urgent`. A type this worker does
/// not provide is answered `trigger_type_not_found` at once.
pub(crate) fn dispatch(
    inner: &WorkerState,
    forwarded: Forwarded,
    urgent: &mpsc::UnboundedSender<String>,
) {
    let handler = lock(&inner.trigger_types)
        .get(&forwarded.trigger_type)
        .map(|(_, provided)| provided.handler.clone());
    let answer = |error: Option<ErrorBody>, forwarded: &Forwarded| {
        Message::TriggerRegistrationResult {
            id: forwarded.id.clone(),
            trigger_type: forwarded.trigger_type.clone(),
            function_id: forwarded.function_id.clone(),
            error,
        }
        .to_json()
    };
    let Some(handler) = handler else {
        if forwarded.register {
            let error = ErrorBody::new(TRIGGER_TYPE_NOT_FOUND, "Trigger type not found");
            let _ = urgent.send(answer(Some(error), &forwarded));
        }
        return;
    };
    let mut trigger = json!({
        "id": forwarded.id,
        "function_id": forwarded.function_id,
        "config": forwarded.config,
    });
    if let (Some(metadata), Value::Object(fields)) = (&forwarded.metadata, &mut trigger) {
        fields.insert("metadata".into(), metadata.clone());
    }
    let op = if forwarded.register {
        "register"
    } else {
        "unregister"
    };
    let input = json!({ "op": op, "trigger": trigger });
    let urgent = urgent.clone();
    crate::runtime::home().spawn(async move {
        let outcome = handler(input).await;
        if !forwarded.register {
            if let Err(error) = outcome {
                tracing::warn!(trigger = %forwarded.id, %error, "a trigger type's unregister handler failed");
            }
            return;
        }
        let error = outcome.err().map(|error| {
            tracing::warn!(trigger = %forwarded.id, %error, "a trigger type's register handler failed");
            ErrorBody::new(TRIGGER_REGISTRATION_FAILED, error.to_string())
        });
        let _ = urgent.send(answer(error, &forwarded));
    });
}
