//! Function handlers written in C: registration, and the `iii_reply` a handler answers with.
//!
//! Each invocation runs the C function on a blocking thread of the core's runtime (never on
//! one of its async worker threads), so a handler may call blocking iii functions — read a
//! channel, trigger another function — without stalling the sockets.

use std::ffi::{CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use iii_sdk::binding::{Reply, on_blocking_thread, reply};
use iii_sdk::function::Handler;
use iii_sdk::{IIIError, RegisterFunction};
use serde_json::Value;

use crate::result::{Failure, iii_result, run};
use crate::strings::{handle, input_str, optional_str, parse_json};
use crate::worker::iii_worker;

/// A function handler: called on a blocking thread with the invocation's input as JSON text
/// (channel refs in it stay ref objects: open them with `iii_reader_open` /
/// `iii_writer_open`). It must answer through `reply` once before returning
/// (`iii_reply_ok` or `iii_reply_error`); no answer fails the call with `invocation_failed`
/// "the handler did not reply". `input_json` and `reply` are valid only during the call.
/// Handlers may run concurrently on several threads.
#[allow(non_camel_case_types)]
pub type iii_handler = Option<
    unsafe extern "C" fn(userdata: *mut c_void, input_json: *const c_char, reply: *mut iii_reply),
>;

/// The answer slot of one invocation (opaque), valid only during the handler call.
pub struct iii_reply(Reply);

impl iii_reply {
    fn set(&mut self, outcome: Result<Value, IIIError>) -> Result<(), Failure> {
        match self.0.answer(outcome) {
            true => Ok(()),
            false => Err(Failure::invalid("this invocation was already answered")),
        }
    }
}

/// Answers the invocation with `result_json` (copied; NULL means JSON `null`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_reply_ok(
    reply: *mut iii_reply,
    result_json: *const c_char,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract (`reply` is the handler's, during its call).
        let reply = unsafe { reply.as_mut() }.ok_or_else(|| Failure::null("reply"))?;
        // SAFETY: as above.
        let result = match unsafe { optional_str(result_json, "result_json") }? {
            None => Value::Null,
            Some(text) => parse_json(text, "result_json")?,
        };
        reply.set(Ok(result))
    })
}

/// Fails the invocation: the caller gets `code` (e.g. `"invalid_input"`) and `message`
/// (both copied).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_reply_error(
    reply: *mut iii_reply,
    code: *const c_char,
    message: *const c_char,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let reply = unsafe { reply.as_mut() }.ok_or_else(|| Failure::null("reply"))?;
        // SAFETY: as above.
        let code = unsafe { input_str(code, "code") }?;
        // SAFETY: as above.
        let message = unsafe { input_str(message, "message") }?;
        if code.is_empty() {
            return Err(Failure::invalid("`code` is empty"));
        }
        reply.set(Err(IIIError::Invocation {
            code: code.to_string(),
            message: message.to_string(),
            stacktrace: None,
        }))
    })
}

/// The C function and its userdata, moved to the thread that runs each invocation.
#[derive(Clone, Copy)]
struct Target {
    function: unsafe extern "C" fn(*mut c_void, *const c_char, *mut iii_reply),
    userdata: *mut c_void,
}

// SAFETY: the C contract (README, "threads") says handlers and their userdata may be used from
// any thread; the library never touches `userdata` itself.
unsafe impl Send for Target {}
// SAFETY: as above.
unsafe impl Sync for Target {}

impl Target {
    /// Runs one invocation on this (blocking) thread.
    fn call(self, input: Value) -> Result<Value, IIIError> {
        let input = CString::new(input.to_string())
            .map_err(|_| IIIError::Handler("the input JSON contains a NUL character".into()))?;
        let (reply, answer) = reply();
        let mut reply = iii_reply(reply);
        let called = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the C handler's contract; `input` and `reply` outlive the call.
            unsafe { (self.function)(self.userdata, input.as_ptr(), &mut reply) }
        }));
        if called.is_err() {
            return Err(IIIError::Handler("the handler panicked".into()));
        }
        drop(reply);
        answer.now("the handler did not reply")
    }

    fn handler(self) -> Handler {
        Arc::new(move |input| {
            Box::pin(async move { on_blocking_thread(move || self.call(input)).await? })
        })
    }
}

/// Registers `handler` as `function_id` (replacing an earlier registration of that id), now
/// if connected and again after every reconnect. `userdata` is passed to every call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_register_function(
    worker: *mut iii_worker,
    function_id: *const c_char,
    handler: iii_handler,
    userdata: *mut c_void,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let worker = unsafe { handle(worker, "worker") }?;
        // SAFETY: as above.
        let function_id = unsafe { input_str(function_id, "function_id") }?;
        let function = handler.ok_or_else(|| Failure::null("handler"))?;
        if function_id.is_empty() {
            return Err(Failure::invalid("`function_id` is empty"));
        }
        let target = Target { function, userdata };
        let registration = RegisterFunction::from_handler(function_id, target.handler());
        let registered = {
            let _runtime = iii_sdk::runtime().enter();
            worker.iii.register_function(registration)
        };
        worker
            .functions()
            .insert(function_id.to_string(), registered);
        Ok(())
    })
}

/// Withdraws a function registered with `iii_register_function` (an id that is not
/// registered is `III_INVALID_ARGUMENT`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_unregister_function(
    worker: *mut iii_worker,
    function_id: *const c_char,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let worker = unsafe { handle(worker, "worker") }?;
        // SAFETY: as above.
        let function_id = unsafe { input_str(function_id, "function_id") }?;
        let registered = worker.functions().remove(function_id).ok_or_else(|| {
            Failure::invalid(format!(
                "no function {function_id:?} is registered on this worker"
            ))
        })?;
        let _runtime = iii_sdk::runtime().enter();
        registered.unregister();
        Ok(())
    })
}

/// Binds a trigger of `trigger_type` to `function_id`, configured by `config_json` (a JSON
/// object; NULL means `{}`). For an HTTP route the type is `"http"` and the configuration
/// `{"api_path": "/files/:name", "http_method": "GET"}`: each request then calls the function
/// with the request and a `response` write ref (open it with `iii_writer_open(worker, input,
/// "response", &writer)`). The trigger is registered now if connected and again after every
/// reconnect, for as long as the worker lives; a trigger the engine refuses is logged.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_register_trigger(
    worker: *mut iii_worker,
    trigger_type: *const c_char,
    function_id: *const c_char,
    config_json: *const c_char,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let worker = unsafe { handle(worker, "worker") }?;
        // SAFETY: as above.
        let trigger_type = unsafe { input_str(trigger_type, "trigger_type") }?;
        // SAFETY: as above.
        let function_id = unsafe { input_str(function_id, "function_id") }?;
        // SAFETY: as above.
        let config = match unsafe { optional_str(config_json, "config_json") }? {
            Some(text) => parse_json(text, "config_json")?,
            None => Value::Object(Default::default()),
        };
        if !config.is_object() {
            return Err(Failure::invalid("`config_json` is not a JSON object"));
        }
        let trigger = iii_sdk::RegisterTrigger::new(trigger_type, function_id, config);
        let _runtime = iii_sdk::runtime().enter();
        worker.iii.register_trigger(trigger)?;
        Ok(())
    })
}
