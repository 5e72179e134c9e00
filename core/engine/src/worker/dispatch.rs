//! What the engine does with each message a worker sends on its main socket, including the
//! routing of invocations (docs/PROTOCOL.md §2, §3). Bad input is answered, never fatal.

use iii_protocol::builtins::{CALLER_WORKER_ID, FN_CHANNELS_CREATE, FN_WORKERS_REGISTER};
use iii_protocol::codes::{
    ENQUEUE_ERROR, FUNCTION_NOT_FOUND, INVALID_MESSAGE, TRIGGER_REGISTRATION_FAILED,
};
use iii_protocol::{ErrorBody, Message, TriggerAction, http};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Conn;
use crate::builtins;
use crate::functions::Owner;
use crate::http::routes::InvalidRoute;
use crate::invocations::{Caller, stopped_error};
use crate::state::EngineState;
use crate::triggers::Trigger;

/// Handles one text frame from `conn`.
pub(crate) async fn handle(shared: &EngineState, conn: &Conn, text: &str) {
    let message = match serde_json::from_str::<Message>(text) {
        Ok(message) => message,
        Err(error) => return reply_unreadable(conn, text, &error).await,
    };
    match message {
        Message::RegisterFunction { id, .. } => {
            let owner = Owner {
                conn: conn.id,
                outbox: conn.outbox.clone(),
            };
            tracing::info!(function_id = %id, worker_id = %conn.worker_id, "function registered");
            shared.functions.register(id, owner);
        }
        Message::UnregisterFunction { id } => shared.functions.unregister(&id, conn.id),
        Message::RegisterTrigger {
            id,
            trigger_type,
            function_id,
            config,
            ..
        } if trigger_type == http::TRIGGER_TYPE => {
            let registered =
                shared
                    .routes
                    .register(id.clone(), conn.id, function_id.clone(), &config);
            if let Err(InvalidRoute(why)) = registered {
                tracing::warn!(trigger_id = %id, %function_id, %why, "http trigger refused");
                let reply = Message::TriggerRegistrationResult {
                    id,
                    trigger_type,
                    function_id,
                    error: Some(ErrorBody::new(TRIGGER_REGISTRATION_FAILED, why)),
                };
                conn.outbox.send(&reply).await;
            }
        }
        Message::RegisterTrigger {
            id, trigger_type, ..
        } => {
            let trigger = Trigger {
                owner: conn.id,
                trigger_type,
            };
            shared.triggers.register(id, trigger);
        }
        Message::UnregisterTrigger { id, .. } => {
            shared.triggers.unregister(&id, conn.id);
            shared.routes.unregister(&id, conn.id);
        }
        Message::InvokeFunction {
            invocation_id,
            function_id,
            data,
            action,
            metadata,
            traceparent,
            baggage,
            ..
        } => {
            let invoke = Invoke {
                invocation_id,
                function_id,
                data,
                action,
                metadata,
                traceparent,
                baggage,
            };
            route(shared, conn, invoke).await;
        }
        Message::InvocationResult {
            invocation_id,
            result,
            error,
            ..
        } => match shared.invocations.complete(conn.id, &invocation_id) {
            Some((waiter, function_id)) => waiter.answer(function_id, result, error).await,
            None => tracing::debug!(%invocation_id, "dropping a result nobody waits for"),
        },
        Message::Ping => {
            conn.outbox.send(&Message::Pong).await;
        }
        Message::RegisterTriggerType { .. }
        | Message::UnregisterTriggerType { .. }
        | Message::Reattach { .. }
        | Message::Pong => {}
        other => tracing::debug!(?other, "ignoring a message"),
    }
}

/// Answers a frame that is not a message we understand: with an `invocationresult` when it
/// carries an invocation id (so the caller does not wait for its timeout), else with an
/// `error` frame.
async fn reply_unreadable(conn: &Conn, text: &str, error: &serde_json::Error) {
    tracing::debug!(%error, "unreadable message");
    let value = serde_json::from_str::<Value>(text).ok();
    let field = |name: &str| {
        value
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let body = ErrorBody::new(INVALID_MESSAGE, format!("invalid message: {error}"));
    let is_result = field("type").as_deref() == Some("invocationresult");
    match field("invocation_id") {
        Some(invocation_id) if !is_result => {
            let reply = Message::error(invocation_id, field("function_id"), body);
            conn.outbox.send(&reply).await;
        }
        _ => {
            let frame = json!({"type": "error", "error": body});
            conn.outbox.send_text(frame.to_string()).await;
        }
    }
}

/// One `invokefunction` as a worker sent it.
struct Invoke {
    invocation_id: Option<String>,
    function_id: String,
    data: Value,
    action: Option<TriggerAction>,
    metadata: Option<Value>,
    traceparent: Option<String>,
    baggage: Option<String>,
}

/// Routes a call: built-ins here, others to their owner (docs/PROTOCOL.md §3).
async fn route(shared: &EngineState, conn: &Conn, invoke: Invoke) {
    let Invoke {
        invocation_id,
        function_id,
        mut data,
        action,
        metadata,
        traceparent,
        baggage,
    } = invoke;
    let void = matches!(action, Some(TriggerAction::Void)) || invocation_id.is_none();
    // The caller's id when it waits for an answer.
    let reply_to = match invocation_id {
        Some(id) if !void => Some(id),
        _ => None,
    };
    let caller = reply_to.map(|invocation_id| Caller {
        conn: conn.id,
        outbox: conn.outbox.clone(),
        invocation_id,
    });
    match action {
        Some(TriggerAction::Enqueue { .. }) => {
            let error = ErrorBody::new(ENQUEUE_ERROR, "No queue provider is installed");
            return answer_error(caller, function_id, error).await;
        }
        Some(TriggerAction::Unknown) => {
            let error = ErrorBody::new(INVALID_MESSAGE, "unsupported invocation action");
            return answer_error(caller, function_id, error).await;
        }
        Some(TriggerAction::Void) | None => {}
    }
    if caller
        .as_ref()
        .is_some_and(|caller| Uuid::parse_str(&caller.invocation_id).is_err())
    {
        let error = ErrorBody::new(INVALID_MESSAGE, "invocation_id must be a UUID");
        return answer_error(caller, function_id, error).await;
    }
    match function_id.as_str() {
        FN_CHANNELS_CREATE => {
            if let Some(caller) = caller {
                match builtins::create_channel(shared, &data) {
                    Ok(result) => caller.answer(function_id, Some(result), None).await,
                    Err(error) => caller.fail(function_id, error).await,
                }
            }
            return;
        }
        FN_WORKERS_REGISTER => {
            builtins::register_worker(shared, conn, &data);
            if let Some(caller) = caller {
                caller.answer(function_id, Some(Value::Null), None).await;
            }
            return;
        }
        _ => {}
    }
    let Some(owner) = shared.functions.lookup(&function_id) else {
        let error = ErrorBody::new(
            FUNCTION_NOT_FOUND,
            format!("Function {function_id} not found"),
        );
        return answer_error(caller, function_id, error).await;
    };
    if let Value::Object(map) = &mut data
        && !map.contains_key(CALLER_WORKER_ID)
    {
        map.insert(
            CALLER_WORKER_ID.to_string(),
            Value::String(conn.worker_id.to_string()),
        );
    }
    // Recorded before forwarding, so an answer can never arrive before the call is known.
    let engine_id = match caller {
        Some(caller) => Some(
            shared
                .invocations
                .begin(caller, owner.conn, function_id.clone()),
        ),
        None => None,
    };
    let forward = Message::InvokeFunction {
        invocation_id: Some(engine_id.unwrap_or_else(Uuid::new_v4).to_string()),
        function_id,
        data,
        action: None,
        metadata,
        traceparent,
        baggage,
        namespace: None,
    };
    if !owner.outbox.send(&forward).await {
        // The owner is disconnecting and its cleanup may already have run.
        if let Some((caller, function_id)) = engine_id.and_then(|id| shared.invocations.cancel(id))
        {
            let error = stopped_error(&function_id);
            caller.fail(function_id, error).await;
        }
    }
}

async fn answer_error(caller: Option<Caller>, function_id: String, error: ErrorBody) {
    match caller {
        Some(caller) => caller.fail(function_id, error).await,
        None => {
            tracing::debug!(%function_id, code = %error.code, "dropping an error for a void call")
        }
    }
}
