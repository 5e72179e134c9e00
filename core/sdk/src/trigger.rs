//! The request types of the public API: calls (`TriggerRequest`) and trigger bindings
//! (`RegisterTrigger`), named as the seed docs name them.

use iii_protocol::{Message, TriggerAction};
use serde_json::{Value, json};

/// A call of a function through the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerRequest {
    /// The function to call.
    pub function_id: String,
    /// Its input.
    pub payload: Value,
    /// `None` for a call with a result; `Some(TriggerAction::Void)` for fire-and-forget.
    pub action: Option<TriggerAction>,
    /// Client-side timeout of a call with a result (default 30 000 ms).
    pub timeout_ms: Option<u64>,
}

impl TriggerRequest {
    /// A call with a result and the default timeout.
    pub fn new(function_id: impl Into<String>, payload: Value) -> Self {
        Self {
            function_id: function_id.into(),
            payload,
            action: None,
            timeout_ms: None,
        }
    }

    /// A fire-and-forget call: `trigger` returns `Value::Null` once it is sent.
    pub fn void(function_id: impl Into<String>, payload: Value) -> Self {
        Self {
            action: Some(TriggerAction::Void),
            ..Self::new(function_id, payload)
        }
    }

    /// Sets the client-side timeout.
    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }

    /// True when no result is expected.
    pub(crate) fn is_void(&self) -> bool {
        matches!(self.action, Some(TriggerAction::Void))
    }
}

/// A trigger binding: makes the engine invoke `function_id` on events of `trigger_type`
/// (e.g. an HTTP route).
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterTrigger {
    /// The trigger type, e.g. `http`.
    pub trigger_type: String,
    /// The function to invoke.
    pub function_id: String,
    /// Type-specific configuration, e.g. `{"api_path": "/files/:name", "http_method": "GET"}`.
    pub config: Value,
}

impl RegisterTrigger {
    /// A trigger of any type.
    pub fn new(
        trigger_type: impl Into<String>,
        function_id: impl Into<String>,
        config: Value,
    ) -> Self {
        Self {
            trigger_type: trigger_type.into(),
            function_id: function_id.into(),
            config,
        }
    }

    /// An HTTP route: `RegisterTrigger::http("files::download", "/files/:filename", "GET")`.
    pub fn http(function_id: impl Into<String>, api_path: &str, http_method: &str) -> Self {
        Self::new(
            "http",
            function_id,
            json!({"api_path": api_path, "http_method": http_method}),
        )
    }

    /// The `registertrigger` message for this binding under `id`.
    pub(crate) fn message(&self, id: &str) -> Message {
        Message::RegisterTrigger {
            id: id.to_string(),
            trigger_type: self.trigger_type.clone(),
            function_id: self.function_id.clone(),
            config: self.config.clone(),
            metadata: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_fill_the_defaults() {
        let call = TriggerRequest::new("a::b", json!({"x": 1}));
        assert!(!call.is_void() && call.timeout_ms.is_none());
        assert!(TriggerRequest::void("a::b", Value::Null).is_void());
        assert_eq!(call.with_timeout_ms(5).timeout_ms, Some(5));
    }

    #[test]
    fn http_trigger_message_has_the_wire_shape() {
        let text = RegisterTrigger::http("files::download", "/files/:filename", "GET")
            .message("t1")
            .to_json();
        let value: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            value,
            json!({"type": "registertrigger", "id": "t1", "trigger_type": "http",
                   "function_id": "files::download",
                   "config": {"api_path": "/files/:filename", "http_method": "GET"}})
        );
    }
}
