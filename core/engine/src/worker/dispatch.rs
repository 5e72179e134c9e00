//! What the engine does with each message a worker sends on its main socket, including the
//! routing of invocations (docs/PROTOCOL.md §2, §3). Bad input is answered, never fatal.

use iii_protocol::builtins::{CALLER_WORKER_ID, FN_CHANNELS_CREATE, FN_WORKERS_REGISTER};
use iii_protocol::codes::{ENQUEUE_ERROR, FORBIDDEN, FUNCTION_NOT_FOUND, INVALID_MESSAGE};
use iii_protocol::{ErrorBody, Message, TraceContext, TriggerAction};
use serde_json::{Value, json};
use std::sync::Arc;

use uuid::Uuid;

use super::Conn;
use super::registrations;
use crate::access;
use crate::forward::{Call, Pace};
use crate::functions::{FunctionDetails, Owner, RegisterRefused};
use crate::invocations::Caller;
use crate::metrics::CallTimer;
use crate::quota;
use crate::remote::RemoteFunction;
use crate::state::EngineState;
use crate::triggers::Trigger;
use crate::{builtins, discovery};

/// Handles one text frame from `conn`.
pub(crate) async fn handle(shared: &EngineState, conn: &Conn, text: &str) {
    let message = match serde_json::from_str::<Message>(text) {
        Ok(message) => message,
        Err(error) => return reply_unreadable(conn, text, &error).await,
    };
    match message {
        Message::RegisterFunction {
            id,
            description,
            metadata,
            request_format,
            response_format,
            invocation,
        } => {
            let details = FunctionDetails {
                description,
                metadata,
                request_format,
                response_format,
            };
            register_function(shared, conn, id, invocation, details).await;
        }
        Message::UnregisterFunction { id } => {
            let renamed = crate::util::lock(&conn.renamed).remove(&id);
            let known = renamed.unwrap_or_else(|| conn.session.registered_id(&id));
            shared.functions.unregister(&known, conn.id)
        }
        Message::RegisterTrigger {
            id,
            trigger_type,
            function_id,
            config,
            metadata,
        } => {
            let trigger = Trigger {
                owner: conn.id,
                trigger_type,
                function_id,
                config,
                metadata,
            };
            registrations::register_trigger(shared, conn, id, trigger).await;
        }
        Message::UnregisterTrigger { id, .. } => {
            registrations::unregister_trigger(shared, conn, &id).await;
        }
        Message::RegisterTriggerType {
            id: Some(id),
            description,
            trigger_request_format,
            call_request_format,
        } => {
            let formats = (trigger_request_format, call_request_format);
            registrations::register_trigger_type(shared, conn, id, description, formats).await;
        }
        Message::UnregisterTriggerType { id: Some(id) } => {
            shared.trigger_types.unregister(&id, conn.id);
        }
        Message::InvokeFunction {
            invocation_id,
            function_id,
            data,
            action,
            metadata,
            traceparent,
            tracestate,
            baggage,
            ..
        } => {
            let invoke = Invoke {
                invocation_id,
                function_id,
                data,
                action,
                metadata,
                trace: TraceContext {
                    traceparent,
                    tracestate,
                    baggage,
                },
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
            conn.outbox.send(&Message::Pong);
        }
        Message::RegisterTriggerType { .. }
        | Message::UnregisterTriggerType { .. }
        | Message::Reattach { .. }
        | Message::Pong => {}
        other => tracing::debug!(?other, "ignoring a message"),
    }
}

/// Registers a function, unless its connection's access rules deny it, workers of another
/// listener serve the id, or the connection owns its quota of them already.
async fn register_function(
    shared: &EngineState,
    conn: &Conn,
    id: String,
    invocation: Option<Value>,
    details: FunctionDetails,
) {
    let max_id = shared.config.quotas.max_id_bytes;
    if let Err(error) = quota::check_id("function id", &id, max_id) {
        return refuse_function(conn, &id, error);
    }
    let session = &conn.session;
    if session.is_restricted() && invocation.is_some() {
        // The engine would call its URL, perhaps with the engine's own secrets.
        let why = "functions the engine calls over HTTP are registered on listeners without rbac";
        return refuse_function(conn, &id, ErrorBody::new(FORBIDDEN, why));
    }
    let registered_as = id.clone();
    let registered = access::hooks::function_registration(shared, session, id, details).await;
    let (id, details) = match registered {
        Ok(registered) => registered,
        Err(error) => return refuse_function(conn, &registered_as, error),
    };
    if let Err(error) = quota::check_id("function id", &id, max_id) {
        return refuse_function(conn, &id, error);
    }
    if session.is_restricted() && shared.engine_called.contains(&id) {
        let why = format!("{id} is called by the engine itself (auth, middleware or a hook)");
        return refuse_function(conn, &id, ErrorBody::new(FORBIDDEN, why));
    }
    let owner = Owner {
        conn: conn.id,
        outbox: conn.outbox.clone(),
        remote: invocation.map(|invocation| {
            RemoteFunction::new(&id, &invocation, &shared.remote.allowed_secrets)
        }),
        domain: session.domain(),
        sent_as: (registered_as != id).then(|| Arc::from(registered_as.as_str())),
    };
    let max = shared.config.quotas.max_functions_per_connection;
    let renamed = id != session.registered_id(&registered_as);
    match shared.functions.register(id.clone(), owner, details, max) {
        Ok(()) => {
            // One entry per engine id at most, so the map stays within the quota.
            let mut names = crate::util::lock(&conn.renamed);
            // Re-registered under another engine id: the old one is withdrawn.
            if let Some(old) = names.get(&registered_as).filter(|old| **old != id) {
                shared.functions.unregister(old, conn.id);
            }
            names.retain(|sent, known| *known != id && *sent != registered_as);
            if renamed {
                names.insert(registered_as, id.clone());
            }
            drop(names);
            tracing::info!(function_id = %id, worker_id = %conn.worker_id, "function registered");
        }
        Err(RegisterRefused::Taken) => {
            let why = format!("{id} is served by workers of another listener or tenant");
            refuse_function(conn, &id, ErrorBody::new(FORBIDDEN, why));
        }
        Err(RegisterRefused::TooMany) => {
            let error = quota::exceeded(
                "functions registered by one connection",
                max,
                "max-functions-per-connection",
            );
            refuse_function(conn, &id, error);
        }
    }
}

/// Tells a worker its function was not registered. `registerfunction` has no reply in the
/// protocol, so the refusal is an `error` frame naming the function (logged too): calls of
/// it then get `function_not_found`, never a silent hang.
fn refuse_function(conn: &Conn, id: &str, error: ErrorBody) {
    let shown: String = id.chars().take(128).collect();
    tracing::warn!(function_id = %shown, worker_id = %conn.worker_id, code = %error.code, message = %error.message, "function registration refused");
    let frame = json!({"type": "error", "function_id": shown, "error": error});
    conn.outbox.send_text(frame.to_string());
}

/// Answers a frame that is not a message we understand: with an `invocationresult` when it
/// carries an invocation id (so the caller does not wait for its timeout), else with an
/// `error` frame. The id is found even when the frame is not JSON past it (see [`salvage`]).
async fn reply_unreadable(conn: &Conn, text: &str, error: &serde_json::Error) {
    tracing::debug!(%error, "unreadable message");
    let found = salvage(text);
    let body = ErrorBody::new(INVALID_MESSAGE, format!("invalid message: {error}"));
    let is_result = found.kind.as_deref() == Some("invocationresult");
    match found.invocation_id {
        Some(invocation_id) if !is_result => {
            let reply = Message::error(invocation_id, found.function_id, body);
            conn.outbox.send(&reply);
        }
        _ => {
            let frame = json!({"type": "error", "error": body});
            conn.outbox.send_text(frame.to_string());
        }
    }
}

/// The string fields of an unreadable frame that let the engine answer it.
#[derive(Debug, Default, PartialEq)]
struct Salvaged {
    kind: Option<String>,
    invocation_id: Option<String>,
    function_id: Option<String>,
}

/// Reads `type`, `invocation_id` and `function_id` from the top-level object of `text` as far
/// as it can be read: a frame that breaks off later (a `NaN`, nesting past the parser's depth
/// limit, a cut) still gives the fields that came before the break.
fn salvage(text: &str) -> Salvaged {
    let mut found = Salvaged::default();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let _ = serde::Deserializer::deserialize_map(&mut deserializer, SalvageFields(&mut found));
    found
}

/// Fills a [`Salvaged`] field by field, so what was read stays when a later field fails.
struct SalvageFields<'a>(&'a mut Salvaged);

impl<'de> serde::de::Visitor<'de> for SalvageFields<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.as_str() {
                "type" => &mut self.0.kind,
                "invocation_id" => &mut self.0.invocation_id,
                "function_id" => &mut self.0.function_id,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            if let Value::String(value) = map.next_value::<Value>()? {
                *slot = Some(value);
            }
        }
        Ok(())
    }
}

/// One `invokefunction` as a worker sent it.
struct Invoke {
    invocation_id: Option<String>,
    function_id: String,
    data: Value,
    action: Option<TriggerAction>,
    metadata: Option<Value>,
    trace: TraceContext,
}

/// Routes a call: built-ins here, others to their owner (docs/PROTOCOL.md §3).
async fn route(shared: &EngineState, conn: &Conn, invoke: Invoke) {
    let Invoke {
        invocation_id,
        mut function_id,
        mut data,
        action,
        metadata,
        trace,
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
        trace_id: trace.trace_id().map(str::to_string),
        timer: CallTimer::start(shared.metrics.as_ref()),
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
    let session = &conn.session;
    let metadata_of = || {
        (shared.functions.metadata(&function_id)).or_else(|| {
            let cluster = shared.cluster.get()?;
            cluster.directory.metadata(&function_id)
        })
    };
    if let Err(error) = session.may_call(&function_id, metadata_of) {
        let trace_id = trace.trace_id().unwrap_or("-");
        tracing::info!(worker_id = %conn.worker_id, %function_id, trace_id, "call refused by the listener's access rules");
        if let Some(metrics) = &shared.metrics {
            metrics.refused("call", &error.code);
        }
        return refuse_call(conn, caller, function_id, error).await;
    }
    // A built-in answers from here on (or the call goes to its function): it is named.
    let mut caller = caller;
    if let Some(caller) = &mut caller
        && iii_protocol::builtins::engine_function(&function_id).is_some()
    {
        caller.resolve();
    }
    match function_id.as_str() {
        FN_CHANNELS_CREATE => {
            if let Some(caller) = caller {
                match builtins::create_channel(shared, conn, &data) {
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
    if let Some(answer) = discovery::answer(shared, session, &function_id, &data) {
        match (answer, caller) {
            (Ok(result), Some(caller)) => caller.answer(function_id, Some(result), None).await,
            (Err(error), caller) => answer_error(caller, function_id, error).await,
            (Ok(_), None) => {}
        }
        return;
    }
    if let Value::Object(map) = &mut data
        && !map.contains_key(CALLER_WORKER_ID)
    {
        map.insert(
            CALLER_WORKER_ID.to_string(),
            Value::String(conn.worker_id.to_string()),
        );
    }
    if let Some(middleware) = &session.policy.middleware_function_id {
        let action = void.then(|| json!({"type": "void"}));
        data = json!({
            "function_id": function_id,
            "payload": data,
            "action": action,
            "context": session.grant.context,
        });
        function_id = middleware.clone();
    }
    let Some(target) = crate::forward::find(shared, &function_id) else {
        let error = ErrorBody::new(
            FUNCTION_NOT_FOUND,
            format!("Function {function_id} not found"),
        );
        return answer_error(caller, function_id, error).await;
    };
    let call = Call {
        function_id,
        data,
        metadata,
        trace,
    };
    crate::forward::send(shared, target, call, caller.map(Into::into), Pace::Call).await;
}

/// Tells the caller its call is refused: in its answer, or, for a call nobody waits for, in
/// an `error` frame naming the function (a denial is never silent).
async fn refuse_call(conn: &Conn, caller: Option<Caller>, function_id: String, error: ErrorBody) {
    match caller {
        Some(caller) => caller.fail(function_id, error).await,
        None => {
            let frame = json!({"type": "error", "function_id": function_id, "error": error});
            conn.outbox.send_text(frame.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salvage_keeps_the_fields_before_the_break() {
        let nan = r#"{"type":"invokefunction","invocation_id":"a-1","function_id":"f","data":NaN}"#;
        assert_eq!(
            salvage(nan),
            Salvaged {
                kind: Some("invokefunction".into()),
                invocation_id: Some("a-1".into()),
                function_id: Some("f".into()),
            }
        );
        let deep = format!(
            r#"{{"invocation_id":"a-2","data":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(salvage(&deep).invocation_id.as_deref(), Some("a-2"));
        let cut = r#"{"invocation_id":"a-3","function_id":5,"data":{"x":"#;
        let found = salvage(cut);
        assert_eq!(found.invocation_id.as_deref(), Some("a-3"));
        assert_eq!(found.function_id, None);
        assert_eq!(salvage("[1, 2]"), Salvaged::default());
        assert_eq!(salvage("{not json"), Salvaged::default());
    }

    mod fuzz {
        //! Property tests of the main socket's message parsing: nothing a worker sends may
        //! panic it, and an id written before the point where a frame breaks is found.

        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_text_is_parsed_or_salvaged_without_a_panic(text in ".{0,400}") {
                let _ = serde_json::from_str::<Message>(&text);
                let _ = salvage(&text);
            }

            #[test]
            fn an_id_before_the_break_is_salvaged(
                id in "[a-zA-Z0-9-]{1,40}",
                tail in "[\\[\\]{}:,\"0-9a-zA-Z ]{0,200}",
            ) {
                let text = format!(r#"{{"type":"invokefunction","invocation_id":"{id}","data":{tail}"#);
                let found = salvage(&text);
                prop_assert_eq!(found.invocation_id, Some(id));
                prop_assert_eq!(found.kind.as_deref(), Some("invokefunction"));
            }
        }
    }
}
