//! The JSON messages of the main socket, one per text frame, discriminated by `type`.
//!
//! Optional fields treat `null` and absent alike, unknown fields are ignored and unknown
//! message types parse as [`Message::Unknown`], so newer clients never break the engine.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An error body: `{"code", "message", "stacktrace"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `function_not_found`.
    pub code: String,
    /// A human-readable description.
    #[serde(default)]
    pub message: String,
    /// A stack trace, when the failing side has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<String>,
}

impl ErrorBody {
    /// An error body without a stack trace.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            stacktrace: None,
        }
    }
}

/// How the caller wants an invocation handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TriggerAction {
    /// Fire and forget: no result goes back to the caller.
    Void,
    /// Put the call on a named queue.
    Enqueue {
        /// The queue's name.
        #[serde(default)]
        queue: Option<String>,
    },
    /// An action this engine does not know.
    #[serde(other)]
    Unknown,
}

impl TriggerAction {
    /// The void action, named as the published SDKs name it.
    #[allow(non_snake_case)]
    pub fn Void() -> Self {
        Self::Void
    }
}

/// One main-socket message, in either direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Message {
    /// Engine → worker, right after the upgrade.
    WorkerRegistered {
        /// The id the engine gave this connection.
        worker_id: String,
        /// A token the worker may present when it reconnects.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reattach_token: Option<String>,
    },
    /// Worker → engine: route calls of `id` to this connection.
    RegisterFunction {
        /// The function id, e.g. `files::process`.
        id: String,
        /// A description for listings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// Free-form metadata.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Value>,
        /// A schema of the input, if the worker gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_format: Option<Value>,
        /// A schema of the output, if the worker gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_format: Option<Value>,
        /// How the function is invoked (HTTP-invoked functions), if not over this socket.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invocation: Option<Value>,
    },
    /// Worker → engine: stop routing calls of `id` here.
    UnregisterFunction {
        /// The function id.
        id: String,
    },
    /// Worker → engine: bind a trigger (e.g. an HTTP route) to a function.
    RegisterTrigger {
        /// The trigger's id, chosen by the worker.
        id: String,
        /// The trigger type, e.g. `http`.
        trigger_type: String,
        /// The function the trigger invokes.
        function_id: String,
        /// Type-specific configuration.
        #[serde(default)]
        config: Value,
        /// Free-form metadata.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Value>,
    },
    /// Worker → engine: remove a trigger.
    UnregisterTrigger {
        /// The trigger's id.
        id: String,
        /// The trigger type, when the worker sends it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trigger_type: Option<String>,
    },
    /// Worker → engine: this worker provides a trigger type; the engine forwards the triggers
    /// of that type (`registertrigger` / `unregistertrigger`) to it.
    RegisterTriggerType {
        /// The trigger type's id.
        #[serde(default)]
        id: Option<String>,
        /// A description for listings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// A schema of a trigger's configuration, if the worker gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trigger_request_format: Option<Value>,
        /// A schema of what the bound function is called with, if the worker gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_request_format: Option<Value>,
    },
    /// Worker → engine: withdraw a trigger type.
    UnregisterTriggerType {
        /// The trigger type's id.
        #[serde(default)]
        id: Option<String>,
    },
    /// Engine → worker: the outcome of a trigger registration that failed.
    TriggerRegistrationResult {
        /// The trigger's id.
        id: String,
        /// The trigger type.
        trigger_type: String,
        /// The function the trigger would invoke.
        function_id: String,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorBody>,
    },
    /// Either way: call a function.
    InvokeFunction {
        /// The call's id; absent for fire-and-forget calls.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invocation_id: Option<String>,
        /// The function to call.
        function_id: String,
        /// The input.
        #[serde(default)]
        data: Value,
        /// Void or enqueue; absent for a call with a result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<TriggerAction>,
        /// Free-form metadata.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Value>,
        /// W3C trace context.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traceparent: Option<String>,
        /// W3C trace state (vendor entries beside `traceparent`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracestate: Option<String>,
        /// W3C baggage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        baggage: Option<String>,
        /// A namespace, when the caller gives one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// Either way: the result or error of a call.
    InvocationResult {
        /// The call's id.
        invocation_id: String,
        /// The function that was called.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        function_id: Option<String>,
        /// The result; absent and `null` mean the same.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
        /// The error, when the call failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorBody>,
    },
    /// Worker → engine, first on a reconnect.
    Reattach {
        /// The worker id of the previous connection.
        #[serde(default)]
        previous_worker_id: Option<String>,
        /// The token the engine gave that connection.
        #[serde(default)]
        reattach_token: Option<String>,
    },
    /// A JSON-level keepalive.
    Ping,
    /// The answer to [`Message::Ping`].
    Pong,
    /// A message type this side does not know; ignored.
    #[serde(other)]
    Unknown,
}

impl Message {
    /// Serializes to the JSON text of one frame.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// A result message carrying `result`.
    pub fn result(invocation_id: String, function_id: Option<String>, result: Value) -> Self {
        Self::InvocationResult {
            invocation_id,
            function_id,
            result: Some(result),
            error: None,
        }
    }

    /// A result message carrying `error`.
    pub fn error(invocation_id: String, function_id: Option<String>, error: ErrorBody) -> Self {
        Self::InvocationResult {
            invocation_id,
            function_id,
            result: None,
            error: Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_invoke_with_nulls_and_unknown_fields() {
        let text = r#"{"type":"invokefunction","invocation_id":null,"function_id":"a::b",
            "data":{"x":1},"action":{"type":"void"},"traceparent":null,"extra":true}"#;
        let message: Message = serde_json::from_str(text).expect("parses");
        assert_eq!(
            message,
            Message::InvokeFunction {
                invocation_id: None,
                function_id: "a::b".into(),
                data: json!({"x": 1}),
                action: Some(TriggerAction::Void),
                metadata: None,
                traceparent: None,
                tracestate: None,
                baggage: None,
                namespace: None,
            }
        );
    }

    #[test]
    fn unknown_types_and_actions_parse() {
        let message: Message =
            serde_json::from_str(r#"{"type":"somethingnew","a":1}"#).expect("parses");
        assert_eq!(message, Message::Unknown);
        let action: TriggerAction =
            serde_json::from_str(r#"{"type":"later","when":5}"#).expect("parses");
        assert_eq!(action, TriggerAction::Unknown);
    }

    #[test]
    fn serializes_wire_names() {
        let text = Message::WorkerRegistered {
            worker_id: "w".into(),
            reattach_token: Some("t".into()),
        }
        .to_json();
        assert_eq!(
            serde_json::from_str::<Value>(&text).expect("json"),
            json!({"type": "workerregistered", "worker_id": "w", "reattach_token": "t"})
        );
        let error = Message::error("i".into(), None, ErrorBody::new("timeout", "late")).to_json();
        assert_eq!(
            serde_json::from_str::<Value>(&error).expect("json"),
            json!({"type": "invocationresult", "invocation_id": "i",
                   "error": {"code": "timeout", "message": "late"}})
        );
    }

    #[test]
    fn register_trigger_accepts_stray_fields() {
        let text = r#"{"type":"registertrigger","id":"t1","trigger_type":"http",
            "function_id":"f","config":{"api_path":"x"},"message_type":"registertrigger"}"#;
        let message: Message = serde_json::from_str(text).expect("parses");
        assert!(matches!(message, Message::RegisterTrigger { .. }));
    }
}
