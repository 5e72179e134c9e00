//! What the engine does with a worker's trigger and trigger-type registrations: `http`
//! triggers become routes, `engine::functions-available` triggers are fired by the engine, a
//! trigger of a type a worker provides is forwarded to that worker, and any other type is
//! refused (docs/PROTOCOL.md §3.3).

use iii_protocol::builtins::{FN_FUNCTIONS_LIST, TRIGGER_FUNCTIONS_AVAILABLE};
use iii_protocol::codes::{TRIGGER_REGISTRATION_FAILED, TRIGGER_TYPE_NOT_FOUND};
use iii_protocol::{ErrorBody, Message, http};
use serde_json::Value;

use super::Conn;
use crate::access::hooks;
use crate::http::routes::InvalidRoute;
use crate::quota;
use crate::state::EngineState;
use crate::triggers::{Provider, Trigger, TriggerType, TypeRefused};

/// A `registertrigger` from `conn`.
pub(crate) async fn register_trigger(
    shared: &EngineState,
    conn: &Conn,
    id: String,
    trigger: Trigger,
) {
    let refuse = |id: String, trigger: Trigger, error: ErrorBody| {
        tracing::warn!(trigger_id = %id.chars().take(128).collect::<String>(), code = %error.code, message = %error.message, "trigger refused");
        conn.outbox.send(&Message::TriggerRegistrationResult {
            id,
            trigger_type: trigger.trigger_type,
            function_id: trigger.function_id,
            error: Some(error),
        });
    };
    // The cheap checks first, then the hook, then the checks of what the hook let through.
    if let Err(error) = check_trigger(shared, conn, &id, &trigger) {
        return refuse(id, trigger, error);
    }
    let session = &conn.session;
    let hooked = hooks::trigger_registration(shared, session, id.clone(), trigger.clone()).await;
    let (id, trigger) = match hooked {
        Ok(allowed) => allowed,
        Err(error) => return refuse(id, trigger, error),
    };
    let checked = check_trigger(shared, conn, &id, &trigger)
        .and_then(|()| check_target(shared, conn, &id, &trigger));
    if let Err(error) = checked {
        return refuse(id, trigger, error);
    }
    let refusal = |code: &str, why: String| Message::TriggerRegistrationResult {
        id: id.clone(),
        trigger_type: trigger.trigger_type.clone(),
        function_id: trigger.function_id.clone(),
        error: Some(ErrorBody::new(code, why)),
    };
    let provider = shared.trigger_types.provider(&trigger.trigger_type);
    match provider {
        None => {
            let why = format!(
                "no worker provides the trigger type {:?} (a worker declares one with registertriggertype)",
                trigger.trigger_type
            );
            tracing::warn!(trigger_id = %id, trigger_type = %trigger.trigger_type, "trigger of an unknown type refused");
            conn.outbox.send(&refusal(TRIGGER_TYPE_NOT_FOUND, why));
        }
        Some(Provider::Engine) if trigger.trigger_type == http::TRIGGER_TYPE => {
            let routed = shared.routes.register(
                id.clone(),
                conn.id,
                session.domain(),
                trigger.function_id.clone(),
                &trigger.config,
            );
            match routed {
                Ok(()) => {
                    shared.triggers.register(id.clone(), trigger.clone());
                }
                Err(InvalidRoute(why)) => {
                    tracing::warn!(trigger_id = %id, function_id = %trigger.function_id, %why, "http trigger refused");
                    conn.outbox.send(&refusal(TRIGGER_REGISTRATION_FAILED, why));
                }
            }
        }
        Some(Provider::Engine) => {
            shared.triggers.register(id, trigger);
        }
        Some(Provider::Worker(provider)) => {
            // A registration repeated as it was is not forwarded again.
            if shared.triggers.register(id.clone(), trigger.clone()) {
                forward_registration(&provider, &id, &trigger);
            }
        }
    }
}

/// The quotas a trigger registration must fit: the lengths of its ids and HTTP path, and
/// the number of triggers its connection registered.
fn check_trigger(
    shared: &EngineState,
    conn: &Conn,
    id: &str,
    trigger: &Trigger,
) -> Result<(), ErrorBody> {
    let quotas = &shared.config.quotas;
    let max_id = quotas.max_id_bytes;
    quota::check_id("trigger id", id, max_id)?;
    quota::check_id("trigger type", &trigger.trigger_type, max_id)?;
    quota::check_id("function id", &trigger.function_id, max_id)?;
    if let Some(Value::String(path)) = trigger.config.get(http::CONFIG_API_PATH) {
        quota::check_id("api_path", path, max_id)?;
    }
    let max = quotas.max_triggers_per_connection;
    if !shared.triggers.may_register(id, conn.id, max) {
        return Err(quota::exceeded(
            "triggers registered by one connection",
            max,
            "max-triggers-per-connection",
        ));
    }
    Ok(())
}

/// What a trigger may point at: under access rules, only a function the connection may call
/// or serves itself (and `engine::functions-available` only where the function listing is
/// callable), so a trigger never makes the engine call for it what it may not call; and a
/// trigger id another worker holds with another function or configuration is not taken over
/// at the type's provider.
fn check_target(
    shared: &EngineState,
    conn: &Conn,
    id: &str,
    trigger: &Trigger,
) -> Result<(), ErrorBody> {
    let session = &conn.session;
    if session.is_restricted() {
        let function_id = &trigger.function_id;
        if !shared.functions.held_by(function_id, conn.id) {
            session.may_call(function_id, || shared.functions.metadata(function_id))?;
        }
        if trigger.trigger_type == TRIGGER_FUNCTIONS_AVAILABLE {
            session.may_call(FN_FUNCTIONS_LIST, || None)?;
        }
    }
    if shared.triggers.held_differently(id, trigger) {
        let why = format!(
            "trigger id {id} is registered by another worker with another function or configuration"
        );
        return Err(ErrorBody::new(TRIGGER_REGISTRATION_FAILED, why));
    }
    Ok(())
}

/// An `unregistertrigger` from `conn`.
pub(crate) async fn unregister_trigger(shared: &EngineState, conn: &Conn, id: &str) {
    shared.routes.unregister(id, conn.id);
    if let Some(trigger) = shared.triggers.unregister(id, conn.id) {
        forward_withdrawal(shared, id, &trigger);
    }
}

/// A `registertriggertype` from `conn`: the triggers of that type already registered (by
/// workers whose earlier provider went away) are forwarded to the new provider.
pub(crate) async fn register_trigger_type(
    shared: &EngineState,
    conn: &Conn,
    id: String,
    description: Option<String>,
    formats: (Option<Value>, Option<Value>),
) {
    let allowed =
        hooks::trigger_type_registration(shared, &conn.session, id.clone(), description).await;
    let (id, description) = match allowed {
        Ok(allowed) => allowed,
        Err(error) => {
            tracing::warn!(trigger_type = %id.chars().take(128).collect::<String>(), message = %error.message, "trigger type registration denied");
            let frame = serde_json::json!({"type": "error", "trigger_type": id, "error": error});
            conn.outbox.send_text(frame.to_string());
            return;
        }
    };
    let provider = TriggerType {
        owner: conn.id,
        outbox: conn.outbox.clone(),
        description,
        trigger_request_format: formats.0,
        call_request_format: formats.1,
    };
    if let Err(error) = quota::check_id("trigger type", &id, shared.config.quotas.max_id_bytes) {
        tracing::warn!(message = %error.message, "trigger type refused");
        return;
    }
    let max = shared.config.quotas.max_triggers_per_connection;
    match shared
        .trigger_types
        .register(id.clone(), provider.clone(), max)
    {
        Ok(()) => {}
        Err(TypeRefused::Taken) => {
            tracing::warn!(trigger_type = %id, "a worker tried to provide a trigger type the engine or another worker provides; ignored");
            return;
        }
        Err(TypeRefused::OverQuota) => {
            tracing::warn!(trigger_type = %id, max, "a worker provides its quota of trigger types (--max-triggers-per-connection); ignored");
            return;
        }
    }
    for (trigger_id, trigger) in shared.triggers.of_type(&id) {
        forward_registration(&provider, &trigger_id, &trigger);
    }
}

/// Removes a connection's triggers; their providers learn that they are withdrawn.
pub(crate) fn withdraw_connection_triggers(shared: &EngineState, conn: &Conn) {
    for (id, trigger) in shared.triggers.remove_connection(conn.id) {
        forward_withdrawal(shared, &id, &trigger);
    }
}

// Forwards are offered, not awaited: a provider that stops reading holds up nobody else.
fn forward_registration(provider: &TriggerType, id: &str, trigger: &Trigger) {
    let message = Message::RegisterTrigger {
        id: id.to_string(),
        trigger_type: trigger.trigger_type.clone(),
        function_id: trigger.function_id.clone(),
        config: trigger.config.clone(),
        metadata: trigger.metadata.clone(),
    };
    provider.outbox.offer(&message);
}

/// Tells the provider a trigger is withdrawn, unless a replica still holds the same id.
fn forward_withdrawal(shared: &EngineState, id: &str, trigger: &Trigger) {
    if shared.triggers.has_id(id) {
        return;
    }
    if let Some(Provider::Worker(provider)) = shared.trigger_types.provider(&trigger.trigger_type) {
        let message = Message::UnregisterTrigger {
            id: id.to_string(),
            trigger_type: Some(trigger.trigger_type.clone()),
        };
        provider.outbox.offer(&message);
    }
}
