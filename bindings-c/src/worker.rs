//! The worker handle: connecting, waiting until ready, creating channels, and calling
//! functions.

use std::collections::HashMap;
use std::ffi::c_char;
use std::sync::Mutex;

use iii_sdk::{FunctionRef, III, InitOptions, TriggerRequest};

use crate::blocking::block_on;
use crate::result::{Failure, iii_result, run, run_void};
use crate::strings::{check_out, handle, input_str, output_json, output_string, parse_json};

/// A worker connected to the engine (opaque). Made by `iii_worker_connect`, freed with
/// `iii_worker_free`.
pub struct iii_worker {
    pub(crate) iii: III,
    /// Registered functions by id, for `iii_unregister_function`.
    pub(crate) functions: Mutex<HashMap<String, FunctionRef>>,
}

impl iii_worker {
    pub(crate) fn functions(&self) -> std::sync::MutexGuard<'_, HashMap<String, FunctionRef>> {
        self.functions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Connects a worker to the engine at `url` (e.g. `"ws://127.0.0.1:49134"`). Returns at once:
/// the connection is made, and kept, in the background; use `iii_worker_ready` to wait for
/// it. A call made while the worker is not connected waits for the connection up to 5 s (see
/// `iii_worker_connect_with`), then fails with `III_CONNECTION` and a message naming the URL
/// and the cause. A URL that is not `ws://` or `wss://` is `III_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_worker_connect(
    url: *const c_char,
    worker_out: *mut *mut iii_worker,
) -> iii_result {
    // SAFETY: the crate-level contract, passed on.
    unsafe { iii_worker_connect_with(url, 0, worker_out) }
}

/// `iii_worker_connect` with how long a call waits for the connection, in milliseconds,
/// before it fails with `III_CONNECTION` (0: the default, 5000).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_worker_connect_with(
    url: *const c_char,
    connect_timeout_ms: u32,
    worker_out: *mut *mut iii_worker,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let url = unsafe { input_str(url, "url") }?;
        let options = InitOptions::for_binding("c", None, None)
            .with_connect_timeout(Some(u64::from(connect_timeout_ms)));
        start_worker(url, options, worker_out)
    })
}

/// Starts a worker on `url` with `options` and hands it out through `worker_out`.
fn start_worker(
    url: &str,
    options: InitOptions,
    worker_out: *mut *mut iii_worker,
) -> Result<(), Failure> {
    check_out(worker_out, "worker_out")?;
    iii_sdk::binding::logs::init();
    let iii = {
        let _runtime = iii_sdk::runtime().enter();
        iii_sdk::try_register_worker_with(url, options)?
    };
    let worker = Box::new(iii_worker {
        iii,
        functions: Mutex::new(HashMap::new()),
    });
    // SAFETY: checked non-NULL (`check_out`); the caller's contract makes it writable.
    unsafe { *worker_out = Box::into_raw(worker) };
    Ok(())
}

/// `iii_worker_connect` with settings as a JSON object (NULL or `"{}"`: the defaults):
/// `headers` (an object of strings sent with the handshake, e.g.
/// `{"Authorization": "Bearer t"}`), `ca_file` (a PEM file of CA certificates trusted for
/// `wss://` besides the system roots and `III_CA_FILE`), `connect_timeout_ms`, and
/// `reconnection_config` (`max_retries`, `initial_delay_ms`, `max_delay_ms`, ...). Settings
/// that are not valid (a header value that is not a string, a CA file that cannot be read)
/// are `III_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_worker_connect_settings(
    url: *const c_char,
    settings_json: *const c_char,
    worker_out: *mut *mut iii_worker,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let url = unsafe { input_str(url, "url") }?;
        let settings = if settings_json.is_null() {
            serde_json::Value::Null
        } else {
            // SAFETY: the crate-level contract.
            let text = unsafe { input_str(settings_json, "settings_json") }?;
            parse_json(text, "settings_json")?
        };
        let options = InitOptions::for_binding("c", None, None).with_settings(&settings)?;
        start_worker(url, options, worker_out)
    })
}

/// Waits until the worker is connected and the engine has processed every registration made
/// before this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_worker_ready(worker: *mut iii_worker, timeout_ms: u32) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let worker = unsafe { handle(worker, "worker") }?;
        block_on(timeout_ms, worker.iii.ready())??;
        Ok(())
    })
}

/// Shuts the worker down (calls in flight fail with `III_SHUTDOWN`; its functions go away)
/// and frees it. Readers and writers opened through it stay usable. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_worker_free(worker: *mut iii_worker) {
    if worker.is_null() {
        return;
    }
    run_void(|| {
        // SAFETY: made by `iii_worker_connect`, freed once by the contract.
        let worker = unsafe { Box::from_raw(worker) };
        let _runtime = iii_sdk::runtime().enter();
        worker.iii.shutdown();
        drop(worker);
    });
}

/// Creates a channel on the engine and gives both of its refs as JSON objects
/// (`{"channel_id":…,"access_key":…,"direction":"write"|"read"}`), to open here with
/// `iii_writer_open` / `iii_reader_open` or to pass to another function in a payload.
/// Free both strings with `iii_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_channel_create(
    worker: *mut iii_worker,
    timeout_ms: u32,
    writer_ref_json_out: *mut *mut c_char,
    reader_ref_json_out: *mut *mut c_char,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let worker = unsafe { handle(worker, "worker") }?;
        check_out(writer_ref_json_out, "writer_ref_json_out")?;
        check_out(reader_ref_json_out, "reader_ref_json_out")?;
        let channel = block_on(timeout_ms, worker.iii.create_channel(None))??;
        let writer = output_json(&channel.writer_ref.clone().into())?;
        let reader = match output_json(&channel.reader_ref.clone().into()) {
            Ok(reader) => reader,
            Err(failure) => {
                // SAFETY: made just above, not handed out.
                unsafe { crate::strings::iii_string_free(writer) };
                return Err(failure);
            }
        };
        // SAFETY: checked non-NULL above.
        unsafe {
            *writer_ref_json_out = writer;
            *reader_ref_json_out = reader;
        }
        Ok(())
    })
}

/// Calls `function_id` with `payload_json` and gives its result as JSON text (free it with
/// `iii_string_free`). `timeout_ms` 0 means the worker's default (30 s). A remote failure is
/// `III_INVOCATION_FAILED` with `"<code>: <message>"` as the last error message.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_trigger(
    worker: *mut iii_worker,
    function_id: *const c_char,
    payload_json: *const c_char,
    timeout_ms: u32,
    result_json_out: *mut *mut c_char,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let worker = unsafe { handle(worker, "worker") }?;
        // SAFETY: as above.
        let function_id = unsafe { input_str(function_id, "function_id") }?;
        // SAFETY: as above.
        let payload = unsafe { input_str(payload_json, "payload_json") }?;
        check_out(result_json_out, "result_json_out")?;
        if function_id.is_empty() {
            return Err(Failure::invalid("`function_id` is empty"));
        }
        let payload = parse_json(payload, "payload_json")?;
        let mut request = TriggerRequest::new(function_id, payload);
        if timeout_ms > 0 {
            request = request.with_timeout_ms(u64::from(timeout_ms));
        }
        // The request carries its own deadline.
        let result = block_on(0, worker.iii.trigger(request))??;
        let text = output_string(result.to_string(), "the result")?;
        // SAFETY: checked non-NULL above.
        unsafe { *result_json_out = text };
        Ok(())
    })
}
