//! What a connection's registrations go through on a listener with access rules: the grant's
//! permissions (`allow_function_registration`, `allowed_trigger_types`,
//! `allow_trigger_type_registration`), then the listener's registration hook, which may change
//! the registration (any field it returns replaces the one sent) or deny it (an error, or no
//! object), then the grant's registration prefix. A denial is an error the worker is told,
//! never a silent drop.

use std::time::Duration;

use iii_protocol::ErrorBody;
use iii_protocol::codes::FORBIDDEN;
use serde_json::{Map, Value, json};

use super::Session;
use crate::functions::FunctionDetails;
use crate::state::EngineState;
use crate::triggers::Trigger;

/// How long a registration hook may take to answer.
const HOOK_WAIT: Duration = Duration::from_secs(10);

fn denied(what: &str, why: impl std::fmt::Display) -> ErrorBody {
    ErrorBody::new(FORBIDDEN, format!("{what} denied: {why}"))
}

/// Calls `hook` with `input`; the object it answers, or why the registration is denied.
async fn ask(
    shared: &EngineState,
    hook: &str,
    what: &str,
    input: Value,
) -> Result<Map<String, Value>, ErrorBody> {
    match crate::forward::call_for_engine(shared, hook, input, HOOK_WAIT).await {
        Ok(Value::Object(changes)) => Ok(changes),
        Ok(other) => Err(denied(
            what,
            format!("{hook} answered {other} (an object allows)"),
        )),
        Err(error) => Err(denied(
            what,
            format!("{hook}: {}: {}", error.code, error.message),
        )),
    }
}

/// A string field the hook returned, else `current`.
fn text(changes: &Map<String, Value>, key: &str, current: String) -> String {
    match changes.get(key) {
        Some(Value::String(changed)) => changed.clone(),
        _ => current,
    }
}

/// Passes a function registration through the rules; the id (prefixed) and details to
/// register it under.
pub(crate) async fn function_registration(
    shared: &EngineState,
    session: &Session,
    id: String,
    mut details: FunctionDetails,
) -> Result<(String, FunctionDetails), ErrorBody> {
    let Some(rbac) = &session.policy.rbac else {
        return Ok((id, details));
    };
    let what = format!("registration of function {id}");
    if !session.grant.allow_function_registration {
        return Err(denied(&what, "this connection may not register functions"));
    }
    let mut id = id;
    if let Some(hook) = &rbac.on_function_registration_function_id {
        let input = json!({
            "function_id": id,
            "description": details.description,
            "metadata": details.metadata,
            "context": session.grant.context,
        });
        let changes = ask(shared, hook, &what, input).await?;
        id = text(&changes, "function_id", id);
        if let Some(Value::String(description)) = changes.get("description") {
            details.description = Some(description.clone());
        }
        if let Some(metadata) = changes.get("metadata") {
            details.metadata = Some(metadata.clone());
        }
    }
    Ok((session.registered_id(&id), details))
}

/// Passes a trigger registration through the rules; the id and trigger to register.
pub(crate) async fn trigger_registration(
    shared: &EngineState,
    session: &Session,
    id: String,
    mut trigger: Trigger,
) -> Result<(String, Trigger), ErrorBody> {
    let Some(rbac) = &session.policy.rbac else {
        return Ok((id, trigger));
    };
    let what = format!("registration of trigger {id}");
    if let Some(types) = &session.grant.allowed_trigger_types
        && !types.contains(&trigger.trigger_type)
    {
        let why = format!(
            "this connection may not register triggers of type {}",
            trigger.trigger_type
        );
        return Err(denied(&what, why));
    }
    let mut id = id;
    if let Some(hook) = &rbac.on_trigger_registration_function_id {
        let input = json!({
            "trigger_id": id,
            "trigger_type": trigger.trigger_type,
            "function_id": trigger.function_id,
            "config": trigger.config,
            "metadata": trigger.metadata,
            "context": session.grant.context,
        });
        let changes = ask(shared, hook, &what, input).await?;
        id = text(&changes, "trigger_id", id);
        trigger.trigger_type = text(&changes, "trigger_type", trigger.trigger_type);
        trigger.function_id = text(&changes, "function_id", trigger.function_id);
        if let Some(config) = changes.get("config") {
            trigger.config = config.clone();
        }
    }
    trigger.function_id = session.registered_id(&trigger.function_id);
    Ok((id, trigger))
}

/// Passes a trigger-type registration through the rules; the type id and description.
pub(crate) async fn trigger_type_registration(
    shared: &EngineState,
    session: &Session,
    id: String,
    description: Option<String>,
) -> Result<(String, Option<String>), ErrorBody> {
    let Some(rbac) = &session.policy.rbac else {
        return Ok((id, description));
    };
    let what = format!("registration of trigger type {id}");
    if !session.grant.allow_trigger_type_registration {
        return Err(denied(
            &what,
            "this connection may not provide trigger types",
        ));
    }
    let Some(hook) = &rbac.on_trigger_type_registration_function_id else {
        return Ok((id, description));
    };
    let input = json!({
        "trigger_type_id": id,
        "description": description,
        "context": session.grant.context,
    });
    let changes = ask(shared, hook, &what, input).await?;
    let description = match changes.get("description") {
        Some(Value::String(changed)) => Some(changed.clone()),
        _ => description,
    };
    Ok((text(&changes, "trigger_type_id", id), description))
}
