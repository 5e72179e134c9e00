//! The listing built-ins (docs/PROTOCOL.md §3.3): what functions, workers, trigger types and
//! triggers the engine knows, in the shapes the published clients' discovery calls expect. Each
//! answer is built from a snapshot of the registries; filters are optional input fields.

use std::collections::HashMap;

use iii_protocol::ErrorBody;
use iii_protocol::builtins::{
    DEFAULT_NAMESPACE, FN_CHANNELS_CREATE, FN_FUNCTIONS_INFO, FN_FUNCTIONS_LIST,
    FN_REGISTERED_TRIGGERS_INFO, FN_REGISTERED_TRIGGERS_LIST, FN_TRIGGERS_INFO, FN_TRIGGERS_LIST,
    FN_WORKERS_INFO, FN_WORKERS_LIST, FN_WORKERS_REGISTER, LISTING_FUNCTIONS,
};
use iii_protocol::codes::{INVALID_ARGUMENT, NOT_FOUND};
use serde_json::{Value, json};

use crate::access::Session;
use crate::functions::Registered;
use crate::state::EngineState;
use crate::triggers::{ENGINE_TRIGGER_TYPES, Trigger};
use crate::worker::registry::{ConnId, WorkerInfo};

/// The name listings give the engine, as the provider of its own functions and trigger types.
const ENGINE_NAME: &str = "engine";
/// Most ids one `engine::functions::info` call may ask about.
const MAX_INFO_IDS: usize = 32;
/// Longest `config_summary` of a registered trigger, in characters.
const SUMMARY_CHARS: usize = 80;

/// The engine's functions besides the listings, listed (with them) only with
/// `include_internal`.
const OTHER_ENGINE_FUNCTIONS: [&str; 2] = [FN_CHANNELS_CREATE, FN_WORKERS_REGISTER];

/// The listing built-ins this module answers.
const LISTINGS: [&str; 8] = LISTING_FUNCTIONS;

/// Whether `function_id` is one of the listings this module answers.
pub(crate) fn serves(function_id: &str) -> bool {
    function_id.starts_with("engine::") && LISTINGS.contains(&function_id)
}

/// Answers the listing built-in `function_id` for a caller with `session`, or `None` if it is
/// not one (checked before anything is read, so an ordinary call costs nothing here). A
/// caller under access rules sees only the functions it may call, and the triggers of those
/// (as the published engine lists them).
pub(crate) fn answer(
    shared: &EngineState,
    session: &Session,
    function_id: &str,
    input: &Value,
) -> Option<Result<Value, ErrorBody>> {
    if !serves(function_id) {
        return None;
    }
    let mut view = View::of(shared);
    if session.is_restricted() {
        let callable = |id: &str, registered: Option<&Registered>| {
            let metadata = || registered.and_then(|r| r.details.metadata.clone());
            session.may_call(id, metadata).is_ok()
        };
        view.functions
            .retain(|(id, registered)| callable(id, Some(registered)));
        let known = |id: &str| view.functions.iter().find(|(known, _)| known == id);
        let visible: Vec<bool> = (view.triggers.iter())
            .map(|(_, trigger)| {
                callable(
                    &trigger.function_id,
                    known(&trigger.function_id).map(|(_, r)| r),
                )
            })
            .collect();
        let mut keep = visible.into_iter();
        view.triggers.retain(|_| keep.next().unwrap_or(false));
    }
    Some(match function_id {
        FN_FUNCTIONS_LIST => Ok(view.functions_list(input)),
        FN_FUNCTIONS_INFO => view.functions_info(input),
        FN_WORKERS_LIST => Ok(view.workers_list(input)),
        FN_WORKERS_INFO => view.workers_info(input),
        FN_TRIGGERS_LIST => Ok(view.trigger_types_list(input)),
        FN_TRIGGERS_INFO => view.trigger_type_info(input),
        FN_REGISTERED_TRIGGERS_LIST => Ok(view.triggers_list(input)),
        FN_REGISTERED_TRIGGERS_INFO => view.trigger_info(input),
        _ => return None,
    })
}

/// The function summaries `engine::functions-available` sends (no engine functions).
pub(crate) fn function_summaries(shared: &EngineState) -> Vec<Value> {
    let view = View::of(shared);
    once_per_id(view.functions.iter())
        .map(|(id, f)| view.function_summary(id, f))
        .collect()
}

/// The first of each run of registrations with the same function id (the snapshot is in id
/// order, replicas together): a function with replicas is listed once.
fn once_per_id<'a>(
    functions: impl Iterator<Item = &'a (String, Registered)>,
) -> impl Iterator<Item = &'a (String, Registered)> {
    let mut last: Option<&str> = None;
    functions.filter(move |(id, _)| {
        let repeat = last == Some(id.as_str());
        last = Some(id.as_str());
        !repeat
    })
}

fn text<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input.get(key).and_then(Value::as_str)
}

fn flag(input: &Value, key: &str) -> bool {
    input.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn is_internal(id: &str) -> bool {
    id.starts_with("engine::")
}

fn not_found(what: &str, id: &str) -> ErrorBody {
    ErrorBody::new(NOT_FOUND, format!("{what} {id} not found"))
}

fn required<'a>(input: &'a Value, key: &str) -> Result<&'a str, ErrorBody> {
    text(input, key).ok_or_else(|| ErrorBody::new(INVALID_ARGUMENT, format!("{key} is required")))
}

/// Inserts `value` under `key` when there is one.
fn put(object: &mut Value, key: &str, value: Option<Value>) {
    if let (Value::Object(map), Some(value)) = (object, value) {
        map.insert(key.to_string(), value);
    }
}

/// One consistent snapshot of the registries.
struct View {
    functions: Vec<(String, Registered)>,
    workers: HashMap<ConnId, WorkerInfo>,
    triggers: Vec<(String, Trigger)>,
    shared_types: Vec<(String, crate::triggers::TriggerType)>,
}

impl View {
    fn of(shared: &EngineState) -> Self {
        Self {
            functions: shared.functions.snapshot(),
            workers: shared.connections.by_connection(),
            triggers: shared.triggers.snapshot(),
            shared_types: shared.trigger_types.snapshot(),
        }
    }

    /// A worker's name in listings: its own name, else its id.
    fn worker_name(&self, conn: ConnId) -> Value {
        match self.workers.get(&conn) {
            Some(info) => Value::from(info.name.clone().unwrap_or(info.worker_id.clone())),
            None => Value::Null,
        }
    }

    fn function_summary(&self, id: &str, function: &Registered) -> Value {
        let mut summary = json!({
            "function_id": id,
            "namespace": DEFAULT_NAMESPACE,
            "worker_name": self.worker_name(function.owner.conn),
        });
        let details = &function.details;
        put(
            &mut summary,
            "description",
            details.description.clone().map(Value::from),
        );
        put(&mut summary, "metadata", details.metadata.clone());
        summary
    }

    fn function_detail(&self, id: &str, function: &Registered) -> Value {
        let mut detail = self.function_summary(id, function);
        put(
            &mut detail,
            "request_schema",
            function.details.request_format.clone(),
        );
        put(
            &mut detail,
            "response_schema",
            function.details.response_format.clone(),
        );
        let triggers: Vec<Value> = (self.triggers.iter())
            .filter(|(_, trigger)| trigger.function_id == id)
            .map(|(trigger_id, trigger)| {
                json!({"id": trigger_id, "trigger_type": trigger.trigger_type, "config": trigger.config})
            })
            .collect();
        put(
            &mut detail,
            "registered_triggers",
            Some(Value::from(triggers)),
        );
        detail
    }

    fn functions_list(&self, input: &Value) -> Value {
        let search = text(input, "search");
        let prefix = text(input, "prefix");
        let worker = text(input, "worker");
        let workers: Option<Vec<&str>> = input
            .get("workers")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect());
        let matching = (self.functions.iter()).filter(|(id, function)| {
            let name = self.worker_name(function.owner.conn);
            let name = name.as_str().unwrap_or_default();
            let description = function.details.description.as_deref().unwrap_or("");
            search.is_none_or(|s| contains(id, s) || contains(description, s))
                && prefix.is_none_or(|p| id.starts_with(p))
                && worker.is_none_or(|w| w == name)
                && workers.as_ref().is_none_or(|ws| ws.contains(&name))
        });
        let mut listed: Vec<Value> = once_per_id(matching)
            .map(|(id, function)| self.function_summary(id, function))
            .collect();
        if flag(input, "include_internal") && worker.is_none_or(|w| w == ENGINE_NAME) {
            let engine = OTHER_ENGINE_FUNCTIONS.iter().chain(&LISTINGS).filter(|id| {
                search.is_none_or(|s| contains(id, s)) && prefix.is_none_or(|p| id.starts_with(p))
            });
            listed.extend(engine.map(|id| {
                json!({"function_id": id, "namespace": DEFAULT_NAMESPACE, "worker_name": ENGINE_NAME})
            }));
        }
        json!({ "functions": listed })
    }

    fn functions_info(&self, input: &Value) -> Result<Value, ErrorBody> {
        let find = |id: &str| self.functions.iter().find(|(known, _)| known == id);
        if let Some(ids) = input.get("function_ids").and_then(Value::as_array) {
            if ids.len() > MAX_INFO_IDS {
                let why = format!("at most {MAX_INFO_IDS} function_ids");
                return Err(ErrorBody::new(INVALID_ARGUMENT, why));
            }
            let details = ids
                .iter()
                .filter_map(Value::as_str)
                .map(|id| match find(id) {
                    Some((id, function)) => self.function_detail(id, function),
                    None => json!({"function_id": id, "error": "not_found"}),
                });
            return Ok(json!({ "functions": details.collect::<Vec<_>>() }));
        }
        let id = required(input, "function_id")?;
        let (id, function) = find(id).ok_or_else(|| not_found("function", id))?;
        Ok(self.function_detail(id, function))
    }

    fn worker_summary(&self, conn: ConnId, info: &WorkerInfo) -> Value {
        let function_count = (self.functions.iter())
            .filter(|(_, function)| function.owner.conn == conn)
            .count();
        let mut summary = json!({
            "id": info.worker_id,
            "namespace": DEFAULT_NAMESPACE,
            "status": "connected",
            "function_count": function_count,
            "connected_at_ms": info.connected_at_ms,
        });
        put(&mut summary, "name", info.name.clone().map(Value::from));
        put(
            &mut summary,
            "description",
            info.description.clone().map(Value::from),
        );
        put(
            &mut summary,
            "version",
            info.version.clone().map(Value::from),
        );
        put(
            &mut summary,
            "runtime",
            info.runtime.clone().map(Value::from),
        );
        put(&mut summary, "os", info.os.clone().map(Value::from));
        put(&mut summary, "pid", info.pid.map(Value::from));
        summary
    }

    fn sorted_workers(&self) -> Vec<(ConnId, &WorkerInfo)> {
        let mut workers: Vec<_> = self
            .workers
            .iter()
            .map(|(conn, info)| (*conn, info))
            .collect();
        workers.sort_by_key(|(conn, _)| conn.0);
        workers
    }

    fn workers_list(&self, input: &Value) -> Value {
        let search = text(input, "search");
        let runtime = text(input, "runtime");
        let listed: Vec<Value> = (self.sorted_workers().into_iter())
            .filter(|(_, info)| {
                let name = info.name.as_deref().unwrap_or(&info.worker_id);
                search.is_none_or(|s| contains(name, s))
                    && runtime.is_none_or(|r| info.runtime.as_deref() == Some(r))
                    && text(input, "status").is_none_or(|s| s == "connected")
            })
            .map(|(conn, info)| self.worker_summary(conn, info))
            .collect();
        json!({ "workers": listed })
    }

    fn workers_info(&self, input: &Value) -> Result<Value, ErrorBody> {
        let wanted = text(input, "name").or_else(|| text(input, "id"));
        let wanted = wanted.ok_or_else(|| ErrorBody::new(INVALID_ARGUMENT, "name is required"))?;
        let (conn, info) = (self.sorted_workers().into_iter())
            .find(|(_, info)| info.name.as_deref() == Some(wanted) || info.worker_id == wanted)
            .ok_or_else(|| not_found("worker", wanted))?;
        let functions: Vec<Value> = (self.functions.iter())
            .filter(|(_, function)| function.owner.conn == conn)
            .map(|(id, function)| self.function_summary(id, function))
            .collect();
        let types: Vec<Value> = (self.shared_types.iter())
            .filter(|(_, provided)| provided.owner == conn)
            .map(|(id, provided)| self.type_summary(id, provided.description.as_deref(), conn))
            .collect();
        let triggers: Vec<Value> = (self.triggers.iter())
            .filter(|(_, trigger)| trigger.owner == conn)
            .map(|(id, trigger)| self.trigger_summary(id, trigger))
            .collect();
        Ok(json!({
            "worker": self.worker_summary(conn, info),
            "functions": functions,
            "trigger_types": types,
            "registered_triggers": triggers,
        }))
    }

    fn type_summary(&self, id: &str, description: Option<&str>, conn: ConnId) -> Value {
        json!({"id": id, "namespace": DEFAULT_NAMESPACE, "worker_name": self.worker_name(conn),
               "description": description})
    }

    /// Every trigger type: the engine's, then those workers provide.
    fn all_types(&self) -> Vec<Value> {
        let engine = ENGINE_TRIGGER_TYPES.iter().map(|(id, description)| {
            json!({"id": id, "namespace": DEFAULT_NAMESPACE, "worker_name": ENGINE_NAME,
                   "description": description})
        });
        let provided = (self.shared_types.iter()).map(|(id, provided)| {
            self.type_summary(id, provided.description.as_deref(), provided.owner)
        });
        engine.chain(provided).collect()
    }

    fn trigger_types_list(&self, input: &Value) -> Value {
        let search = text(input, "search");
        let prefix = text(input, "prefix");
        let worker = text(input, "worker");
        let internal = flag(input, "include_internal");
        let listed: Vec<Value> = (self.all_types().into_iter())
            .filter(|summary| {
                let id = summary["id"].as_str().unwrap_or_default();
                (internal || !is_internal(id))
                    && search.is_none_or(|s| contains(id, s))
                    && prefix.is_none_or(|p| id.starts_with(p))
                    && worker.is_none_or(|w| id.split("::").next() == Some(w))
            })
            .collect();
        json!({ "triggers": listed })
    }

    fn trigger_type_info(&self, input: &Value) -> Result<Value, ErrorBody> {
        let id = required(input, "id")?;
        let mut detail = (self.all_types().into_iter())
            .find(|summary| summary["id"] == id)
            .ok_or_else(|| not_found("trigger type", id))?;
        if let Some((_, provided)) = self.shared_types.iter().find(|(known, _)| known == id) {
            put(
                &mut detail,
                "configuration_schema",
                provided.trigger_request_format.clone(),
            );
            put(
                &mut detail,
                "request_schema",
                provided.call_request_format.clone(),
            );
        }
        let instances = self
            .triggers
            .iter()
            .filter(|(_, t)| t.trigger_type == id)
            .count();
        put(&mut detail, "instance_count", Some(Value::from(instances)));
        Ok(detail)
    }

    fn trigger_summary(&self, id: &str, trigger: &Trigger) -> Value {
        let config = trigger.config.to_string();
        let mut summary: String = config.chars().take(SUMMARY_CHARS).collect();
        if summary.len() < config.len() {
            summary.push('…');
        }
        json!({
            "id": id,
            "trigger_type": trigger.trigger_type,
            "function_id": trigger.function_id,
            "worker_name": self.worker_name(trigger.owner),
            "status": "active",
            "config": trigger.config,
            "config_summary": summary,
        })
    }

    fn triggers_list(&self, input: &Value) -> Value {
        let search = text(input, "search");
        let internal = flag(input, "include_internal");
        let listed: Vec<Value> = (self.triggers.iter())
            .filter(|(id, trigger)| {
                let name = self.worker_name(trigger.owner);
                (internal || !is_internal(&trigger.trigger_type))
                    && search.is_none_or(|s| {
                        contains(id, s)
                            || contains(&trigger.function_id, s)
                            || contains(&trigger.trigger_type, s)
                    })
                    && text(input, "trigger_type").is_none_or(|t| t == trigger.trigger_type)
                    && text(input, "function_id").is_none_or(|f| f == trigger.function_id)
                    && text(input, "worker").is_none_or(|w| name.as_str() == Some(w))
            })
            .map(|(id, trigger)| self.trigger_summary(id, trigger))
            .collect();
        json!({ "registered_triggers": listed })
    }

    fn trigger_info(&self, input: &Value) -> Result<Value, ErrorBody> {
        let id = required(input, "id")?;
        let (id, trigger) = (self.triggers.iter())
            .find(|(known, _)| known == id)
            .ok_or_else(|| not_found("trigger", id))?;
        let mut detail = self.trigger_summary(id, trigger);
        put(&mut detail, "metadata", trigger.metadata.clone());
        let kind = self
            .trigger_type_info(&json!({"id": trigger.trigger_type}))
            .ok();
        put(&mut detail, "trigger", Some(kind.unwrap_or(Value::Null)));
        let function = (self.functions.iter())
            .find(|(known, _)| *known == trigger.function_id)
            .map(|(id, function)| self.function_detail(id, function));
        put(
            &mut detail,
            "function",
            Some(function.unwrap_or(Value::Null)),
        );
        Ok(detail)
    }
}
