//! The request types of the public API: calls (`TriggerRequest`) and trigger bindings
//! (`RegisterTrigger`), named as the channel guide names them.

use iii_protocol::{Message, TraceContext, TriggerAction, http};

use crate::IIIError;
use serde_json::Value;

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

/// What travels beside a call's input ([`III::trigger_in_context`](crate::III::trigger_in_context)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallContext {
    /// Free-form metadata, handed to the called function beside its input.
    pub metadata: Option<Value>,
    /// The W3C trace context sent with the call. Left empty, a call made inside a handler
    /// carries on the context of the call the handler serves.
    pub trace: TraceContext,
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

    /// Reads a request given as JSON, the way every binding takes it: `{"function_id",
    /// "payload"?, "action"?, "timeout_ms"? | "timeoutMs"?, "traceparent"?, "tracestate"?,
    /// "baggage"?}`. The action must be a
    /// [`TriggerAction`] object of a known type; a timeout must be a non-negative number of
    /// milliseconds (fractions are dropped; `0`, `null` or absent means the default, as in
    /// every SDK's options; `timeoutMs` wins over `timeout_ms` when both are given).
    pub fn from_value(request: Value) -> Result<Self, IIIError> {
        Self::from_value_with_metadata(request).map(|(request, _)| request)
    }

    /// [`from_value`](Self::from_value), also taking the request's `"metadata"` (handed to the
    /// called function beside its input; see [`III::trigger_with_metadata`](crate::III::trigger_with_metadata)).
    pub fn from_value_with_metadata(request: Value) -> Result<(Self, Option<Value>), IIIError> {
        Self::from_value_in_context(request).map(|(request, context)| (request, context.metadata))
    }

    /// [`from_value`](Self::from_value), also taking what travels beside the input:
    /// `"metadata"` and the trace fields `"traceparent"`, `"tracestate"` and `"baggage"`.
    pub fn from_value_in_context(request: Value) -> Result<(Self, CallContext), IIIError> {
        let invalid = |why: &str| IIIError::InvalidArgument(format!("trigger(): {why}"));
        let Value::Object(mut fields) = request else {
            return Err(invalid("the request must be an object with a function_id"));
        };
        let function_id = match fields.remove("function_id") {
            Some(Value::String(id)) => id,
            _ => return Err(invalid("the request needs a function_id string")),
        };
        let action = match fields.remove("action") {
            None | Some(Value::Null) => None,
            Some(action @ Value::Object(_)) if action.get("type").is_some_and(Value::is_string) => {
                match serde_json::from_value::<TriggerAction>(action.clone()) {
                    Ok(TriggerAction::Unknown) | Err(_) => {
                        return Err(invalid(&format!("unknown trigger action {action}")));
                    }
                    Ok(known) => Some(known),
                }
            }
            Some(_) => {
                return Err(invalid(
                    "action must be TriggerAction.Void() or TriggerAction.Enqueue({ queue })",
                ));
            }
        };
        let timeout = fields
            .remove("timeoutMs")
            .filter(|value| !value.is_null())
            .or_else(|| fields.remove("timeout_ms"));
        let timeout_ms = match timeout {
            None | Some(Value::Null) => None,
            Some(Value::Number(ms)) => match (ms.as_u64(), ms.as_f64()) {
                (Some(ms), _) => Some(ms).filter(|ms| *ms > 0),
                (None, Some(ms)) if ms.is_finite() && ms >= 1.0 => Some(ms as u64),
                (None, Some(ms)) if ms.is_finite() && ms >= 0.0 => None,
                _ => return Err(invalid("timeout_ms must be a non-negative number")),
            },
            Some(_) => return Err(invalid("timeout_ms must be a number")),
        };
        let metadata = fields
            .remove("metadata")
            .filter(|metadata| !metadata.is_null());
        let mut text = |key: &str| match fields.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(invalid(&format!("{key} must be a string"))),
        };
        let trace = TraceContext {
            traceparent: text("traceparent")?,
            tracestate: text("tracestate")?,
            baggage: text("baggage")?,
        };
        let request = Self {
            function_id,
            payload: fields.remove("payload").unwrap_or(Value::Null),
            action,
            timeout_ms,
        };
        Ok((request, CallContext { metadata, trace }))
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
    /// Free-form metadata, handed to the function with each invocation the trigger makes.
    pub metadata: Option<Value>,
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
            metadata: None,
        }
    }

    /// This trigger with `metadata`.
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// An HTTP route: `RegisterTrigger::http("files::download", "/files/:filename", "GET")`.
    pub fn http(function_id: impl Into<String>, api_path: &str, http_method: &str) -> Self {
        let mut config = serde_json::Map::new();
        config.insert(http::CONFIG_API_PATH.into(), api_path.into());
        config.insert(http::CONFIG_HTTP_METHOD.into(), http_method.into());
        Self::new(http::TRIGGER_TYPE, function_id, Value::Object(config))
    }

    /// Reads a trigger given as JSON, the way every binding takes it: `{"type" | "trigger_type",
    /// "function_id", "config"?, "metadata"?}`.
    pub fn from_value(trigger: Value) -> Result<Self, IIIError> {
        let field = |name: &str| {
            trigger
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let (Some(trigger_type), Some(function_id)) = (
            field("type").or_else(|| field("trigger_type")),
            field("function_id"),
        ) else {
            return Err(IIIError::InvalidArgument(
                "register_trigger() needs { type, function_id, config }".into(),
            ));
        };
        let config = trigger.get("config").cloned().unwrap_or(Value::Null);
        let mut registered = Self::new(trigger_type, function_id, config);
        registered.metadata = trigger.get("metadata").filter(|m| !m.is_null()).cloned();
        Ok(registered)
    }

    /// The `registertrigger` message for this binding under `id`.
    pub(crate) fn message(&self, id: &str) -> Message {
        Message::RegisterTrigger {
            id: id.to_string(),
            trigger_type: self.trigger_type.clone(),
            function_id: self.function_id.clone(),
            config: self.config.clone(),
            metadata: self.metadata.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn constructors_fill_the_defaults() {
        let call = TriggerRequest::new("a::b", json!({"x": 1}));
        assert!(!call.is_void() && call.timeout_ms.is_none());
        assert!(TriggerRequest::void("a::b", Value::Null).is_void());
        assert_eq!(call.with_timeout_ms(5).timeout_ms, Some(5));
    }

    #[test]
    fn requests_read_from_json() {
        let request = TriggerRequest::from_value(json!({
            "function_id": "a::b", "payload": {"x": 1}, "action": {"type": "void"}, "timeoutMs": 5.5
        }))
        .expect("a request");
        assert_eq!(request.payload, json!({"x": 1}));
        assert!(request.is_void());
        assert_eq!(request.timeout_ms, Some(5));
        let plain = TriggerRequest::from_value(json!({"function_id": "a::b", "timeout_ms": 7}));
        assert_eq!(plain.expect("a request").timeout_ms, Some(7));
        let default = TriggerRequest::from_value(json!({"function_id": "a::b", "timeoutMs": 0}));
        assert_eq!(default.expect("a request").timeout_ms, None);
        for bad in [
            json!("a::b"),
            json!({"payload": 1}),
            json!({"function_id": 7}),
            json!({"function_id": "a::b", "action": "void"}),
            json!({"function_id": "a::b", "action": {"type": "teleport"}}),
            json!({"function_id": "a::b", "timeout_ms": -1}),
            json!({"function_id": "a::b", "timeout_ms": "1"}),
        ] {
            let error = TriggerRequest::from_value(bad.clone()).expect_err("refused");
            assert_eq!(error.kind(), crate::ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn triggers_read_from_json() {
        let trigger = RegisterTrigger::from_value(json!({"type": "http", "function_id": "f"}));
        assert_eq!(trigger.expect("a trigger").config, Value::Null);
        let trigger = RegisterTrigger::from_value(
            json!({"trigger_type": "cron", "function_id": "f", "config": {"x": 1}}),
        );
        assert_eq!(trigger.expect("a trigger").trigger_type, "cron");
        assert!(RegisterTrigger::from_value(json!({"type": "http"})).is_err());
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
