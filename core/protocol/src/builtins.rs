//! The engine's built-in functions: ids a worker calls like any other function, answered by
//! the engine itself (docs/PROTOCOL.md §3.3).

/// Creates a channel: input `{"buffer_size"?: frames}`, result `{"writer": ref, "reader": ref}`.
pub const FN_CHANNELS_CREATE: &str = "engine::channels::create";

/// Workers call it (void) to describe themselves: name, runtime, version, pid.
pub const FN_WORKERS_REGISTER: &str = "engine::workers::register";

/// Lists the registered functions: input `{"search"?, "prefix"?, "worker"?, "workers"?,
/// "include_internal"?}`, result `{"functions": [summary]}`.
pub const FN_FUNCTIONS_LIST: &str = "engine::functions::list";
/// One function in detail: input `{"function_id"}` (or `{"function_ids": [...]}`).
pub const FN_FUNCTIONS_INFO: &str = "engine::functions::info";
/// Lists the connected workers: input `{"search"?, "runtime"?}`, result `{"workers": [...]}`.
pub const FN_WORKERS_LIST: &str = "engine::workers::list";
/// One worker in detail: input `{"name"}` (or `{"id"}`).
pub const FN_WORKERS_INFO: &str = "engine::workers::info";
/// Lists the trigger types: input `{"search"?, "prefix"?, "include_internal"?}`, result
/// `{"triggers": [...]}`.
pub const FN_TRIGGERS_LIST: &str = "engine::triggers::list";
/// One trigger type in detail: input `{"id"}`.
pub const FN_TRIGGERS_INFO: &str = "engine::triggers::info";
/// Lists the registered triggers: input `{"search"?, "trigger_type"?, "function_id"?,
/// "include_internal"?}`, result `{"registered_triggers": [...]}`.
pub const FN_REGISTERED_TRIGGERS_LIST: &str = "engine::registered-triggers::list";
/// One registered trigger in detail: input `{"id"}`.
pub const FN_REGISTERED_TRIGGERS_INFO: &str = "engine::registered-triggers::info";

/// The listing functions the engine serves (beside [`FN_CHANNELS_CREATE`] and
/// [`FN_WORKERS_REGISTER`]).
pub const LISTING_FUNCTIONS: [&str; 8] = [
    FN_FUNCTIONS_LIST,
    FN_FUNCTIONS_INFO,
    FN_WORKERS_LIST,
    FN_WORKERS_INFO,
    FN_TRIGGERS_LIST,
    FN_TRIGGERS_INFO,
    FN_REGISTERED_TRIGGERS_LIST,
    FN_REGISTERED_TRIGGERS_INFO,
];

/// The engine's own name for `function_id`, if the engine itself serves it.
pub fn engine_function(function_id: &str) -> Option<&'static str> {
    [FN_CHANNELS_CREATE, FN_WORKERS_REGISTER]
        .into_iter()
        .chain(LISTING_FUNCTIONS)
        .find(|id| *id == function_id)
}

/// The trigger type the engine fires when the set of functions changes: the bound function
/// gets `{"event": "functions_changed", "functions": [summary]}`.
pub const TRIGGER_FUNCTIONS_AVAILABLE: &str = "engine::functions-available";
/// The `event` of a [`TRIGGER_FUNCTIONS_AVAILABLE`] invocation.
pub const EVENT_FUNCTIONS_CHANGED: &str = "functions_changed";
/// The namespace every function, worker and trigger is in (this engine has one).
pub const DEFAULT_NAMESPACE: &str = "default";

/// Input key of [`FN_CHANNELS_CREATE`]: the channel buffer in frames.
pub const CHANNELS_CREATE_BUFFER_SIZE: &str = "buffer_size";
/// Result key of [`FN_CHANNELS_CREATE`]: the write ref.
pub const CHANNELS_CREATE_WRITER: &str = "writer";
/// Result key of [`FN_CHANNELS_CREATE`]: the read ref.
pub const CHANNELS_CREATE_READER: &str = "reader";

/// The key the engine adds to an object input of every invocation a worker makes: the id of
/// the calling worker's connection.
pub const CALLER_WORKER_ID: &str = "_caller_worker_id";

/// The engine functions any connection may call whatever its listener's access rules say
/// (unless its auth function forbids one by name): what every worker needs to run at all.
/// The same list as the published engine's, which only grows.
pub const INFRASTRUCTURE_FUNCTIONS: [&str; 10] = [
    FN_CHANNELS_CREATE,
    FN_WORKERS_REGISTER,
    "engine::log::info",
    "engine::log::warn",
    "engine::log::error",
    "engine::log::debug",
    "engine::log::trace",
    "engine::baggage::get",
    "engine::baggage::set",
    "engine::baggage::get_all",
];
