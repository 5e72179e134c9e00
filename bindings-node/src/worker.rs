//! `NativeWorker`: a core worker as a napi class, and function handlers that call into
//! JavaScript.
//!
//! A handler is a JS function `(invocation, done) => void` held as a threadsafe function that
//! keeps the event loop alive (a worker with functions stays up). `invocation` is the input
//! with its refs made live (`{ json, ends }`), or for an `http()` function the core's parsed
//! request and response (`{ http: true, json, body, response }`); `done` is a [`Completion`]
//! the JS layer settles with the result's JSON or a failure. `shutdown` (and `unregister`)
//! release the threadsafe functions, so the process can exit.

use std::sync::{Arc, Mutex, PoisonError};

use iii_sdk::binding::{Reply, reply};
use iii_sdk::function::Handler;
use iii_sdk::http::serve_returning;
use iii_sdk::{
    IIIError, InitOptions, RegisterFunction, RegisterTrigger, RegisterTriggerType, TriggerRequest,
};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;

use crate::channel::NativeReader;
use crate::ends::WithEnds;
use crate::errors::invalid;
use crate::http::{HttpInvocation, NativeHttpResponse};
use crate::promise::settle;

type Outcome<T = Value> = std::result::Result<T, IIIError>;

/// The JS side of one invocation's result: call `resolve` or `reject` once.
#[napi]
pub struct Completion(Reply);

#[napi]
impl Completion {
    /// The handler returned; `json` is its result as JSON text (`undefined` → `null`).
    #[napi]
    pub fn resolve(&self, json: Option<String>) {
        self.0.answer_json(json.as_deref());
    }

    /// The handler failed: the caller receives `code` (`invocation_failed` when the error
    /// has none), `message` and `stacktrace`.
    #[napi]
    pub fn reject(&self, code: Option<String>, message: String, stacktrace: Option<String>) {
        self.0.fail(code, message, stacktrace);
    }
}

/// What a JS handler is called with: a plain function's input with its refs made live, or an
/// `http()` function's request and response.
type Invocation = Either<WithEnds, HttpInvocation>;

/// A JS handler: `(invocation, done)`, keeping the event loop alive while held.
/// (`FnArgs` spreads the tuple into two arguments; a bare tuple arrives as one array.)
type JsHandler = ThreadsafeFunction<
    FnArgs<(Invocation, Completion)>,
    (),
    FnArgs<(Invocation, Completion)>,
    Status,
    false,
>;

/// Where a handler's threadsafe function lives; emptied to release it.
type HandlerSlot = Arc<Mutex<Option<JsHandler>>>;

fn release(slot: &HandlerSlot) {
    let handler = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    drop(handler);
}

/// Calls the JS handler in `slot` with `invocation` and waits for it to settle.
async fn call_js(slot: &HandlerSlot, invocation: Invocation) -> Outcome {
    let (reply, answer) = reply();
    let completion = Completion(reply);
    let status = {
        let handler = slot.lock().unwrap_or_else(PoisonError::into_inner);
        match handler.as_ref() {
            Some(handler) => handler.call(
                FnArgs::from((invocation, completion)),
                ThreadsafeFunctionCallMode::NonBlocking,
            ),
            None => return Err(IIIError::Shutdown),
        }
    };
    if status != Status::Ok {
        return Err(IIIError::Handler(format!(
            "could not call the JavaScript handler: {status}"
        )));
    }
    answer
        .wait("the JavaScript handler never settled its invocation")
        .await
}

/// The core handler calling the JS handler in `slot`: with the input's refs made live on
/// `address`, or, for an `http()` function, through the core's HTTP adapter.
fn core_handler(slot: HandlerSlot, address: String, http: bool) -> Handler {
    Arc::new(move |input: Value| {
        let (slot, address) = (slot.clone(), address.clone());
        Box::pin(async move {
            let call =
                iii_sdk::current_invocation().unwrap_or_else(|| iii_sdk::InvocationContext {
                    address: address.clone(),
                    function_id: String::new(),
                    invocation_id: None,
                    metadata: None,
                    trace: Default::default(),
                });
            if !http {
                let invocation = WithEnds::new(&address, &input)
                    .with_metadata(call.metadata.as_ref())
                    .with_call(call.invocation_id.as_deref(), &call.trace);
                return call_js(&slot, Either::A(invocation)).await;
            }
            let home = address.clone();
            serve_returning(&home, input, |request, response| async move {
                let (request, body) = request.into_plain();
                let invocation = HttpInvocation {
                    request: WithEnds::new(&address, &request)
                        .with_call(call.invocation_id.as_deref(), &call.trace),
                    body: NativeReader::from_core(body),
                    response: NativeHttpResponse::new(response),
                };
                call_js(&slot, Either::B(invocation)).await
            })
            .await
        })
    })
}

/// `function` with a description and the published client's options as JSON:
/// `{ metadata?, request_format?, response_format? }`.
fn with_options(
    mut function: RegisterFunction,
    description: Option<String>,
    formats_json: Option<String>,
) -> Result<RegisterFunction> {
    if let Some(description) = description {
        function = function.with_description(description);
    }
    if let Some(json) = formats_json {
        let formats: Value = serde_json::from_str(&json)
            .map_err(|error| invalid(format!("registerFunction options are not JSON: {error}")))?;
        let field = |key: &str| formats.get(key).filter(|value| !value.is_null()).cloned();
        function.metadata = field("metadata");
        function.request_format = field("request_format");
        function.response_format = field("response_format");
    }
    Ok(function)
}

/// A registered function or trigger: `unregister()` withdraws it (and releases a function's
/// handler).
#[napi]
pub struct NativeRegistration {
    id: String,
    withdraw: Box<dyn Fn() + Send + Sync>,
}

#[napi]
impl NativeRegistration {
    /// The function's or trigger's id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// Withdraws the registration.
    #[napi]
    pub fn unregister(&self) {
        (self.withdraw)();
    }
}

/// A JS handler held as a threadsafe function that keeps the event loop alive, in its slot.
fn handler_slot(handler: Function<FnArgs<(Invocation, Completion)>, ()>) -> Result<HandlerSlot> {
    let handler: JsHandler = handler
        .build_threadsafe_function()
        .callee_handled::<false>()
        .build()?;
    Ok(Arc::new(Mutex::new(Some(handler))))
}

/// A registration the core refused, as a JS `Error` (as the published client throws).
fn registration_error(error: IIIError) -> napi::Error {
    napi::Error::from_reason(format!("iii-sdk: {error}"))
}

/// A worker connected (in the background) to an engine.
#[napi]
pub struct NativeWorker {
    iii: iii_sdk::III,
    handlers: Mutex<Vec<HandlerSlot>>,
}

impl NativeWorker {
    /// Keeps `slot` until shutdown and returns the registration `id`, whose `unregister()`
    /// runs `withdraw` and releases the handler.
    fn keep(
        &self,
        slot: HandlerSlot,
        id: String,
        withdraw: impl Fn() + Send + Sync + 'static,
    ) -> NativeRegistration {
        (self.handlers.lock().unwrap_or_else(PoisonError::into_inner)).push(slot.clone());
        let withdraw = Box::new(move || {
            withdraw();
            release(&slot);
        });
        NativeRegistration { id, withdraw }
    }
}

/// `json` read by `read` from the core (its errors as argument errors).
fn parse_json<T>(json: &str, read: impl FnOnce(Value) -> Outcome<T>) -> Result<T> {
    serde_json::from_str(json)
        .map_err(IIIError::from)
        .and_then(read)
        .map_err(|error| invalid(error.to_string()))
}

#[napi]
impl NativeWorker {
    /// Starts a worker for the engine at `url`; returns at once. A `url` that is not
    /// `ws://` or `wss://` is refused.
    /// `settings_json`: `{ headers?, reconnectionConfig? }` (handshake headers; the
    /// reconnect backoff in the published client's names).
    #[napi(factory)]
    pub fn connect(
        url: String,
        worker_name: Option<String>,
        invocation_timeout_ms: Option<f64>,
        connect_timeout_ms: Option<f64>,
        worker_description: Option<String>,
        settings_json: Option<String>,
    ) -> Result<Self> {
        iii_sdk::binding::logs::init();
        let millis = |ms: Option<f64>| ms.filter(|t| t.is_finite() && *t > 0.0).map(|t| t as u64);
        let mut options =
            InitOptions::for_binding("node", worker_name, millis(invocation_timeout_ms))
                .with_connect_timeout(millis(connect_timeout_ms))
                .with_description(worker_description);
        if let Some(json) = settings_json {
            let settings: Value = serde_json::from_str(&json).map_err(|error| {
                invalid(format!("registerWorker options are not JSON: {error}"))
            })?;
            options = options
                .with_settings(&settings)
                .map_err(|error| invalid(error.to_string()))?;
        }
        let iii = iii_sdk::try_register_worker_with(&url, options)
            .map_err(|error| invalid(error.to_string()))?;
        Ok(Self {
            iii,
            handlers: Mutex::new(Vec::new()),
        })
    }

    /// The engine URL.
    #[napi(getter)]
    pub fn address(&self) -> String {
        self.iii.address().to_string()
    }

    /// Resolves once connected (or rejects when the worker stopped for good).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn ready<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let iii = self.iii.clone();
        settle(env, async move { iii.ready().await }, |_, ()| Ok(()))
    }

    /// A new channel as `{ json, ends }`: `json` holds `{ writer, reader }`, its two refs, and
    /// `ends` their live ends.
    #[napi(
        ts_return_type = "Promise<{ json: string, ends: Array<{ path: Array<string | number>, end: NativeReader | NativeWriter }> }>"
    )]
    pub fn create_channel<'env>(
        &self,
        env: &'env Env,
        buffer_size: Option<u32>,
    ) -> Result<Object<'env>> {
        let iii = self.iii.clone();
        let address = iii.address().to_string();
        settle(
            env,
            async move { iii.create_channel(buffer_size).await },
            move |_, channel: iii_sdk::Channel| {
                let refs =
                    serde_json::json!({"writer": channel.writer_ref, "reader": channel.reader_ref});
                Ok(WithEnds::new(&address, &refs))
            },
        )
    }

    /// Calls a function: `requestJson` is `{ function_id, payload, action?, timeoutMs?, metadata?,
    /// traceparent?, tracestate?, baggage? }`.
    /// Resolves with the result as `{ json, ends }` (refs in it made live).
    #[napi(
        ts_return_type = "Promise<{ json: string, ends: Array<{ path: Array<string | number>, end: NativeReader | NativeWriter }> }>"
    )]
    pub fn trigger<'env>(&self, env: &'env Env, request_json: String) -> Result<Object<'env>> {
        let (request, context) = parse_json(&request_json, TriggerRequest::from_value_in_context)?;
        let iii = self.iii.clone();
        let address = iii.address().to_string();
        settle(
            env,
            async move { iii.trigger_in_context(request, context).await },
            move |_, value: Value| Ok(WithEnds::new(&address, &value)),
        )
    }

    /// Registers `handler` as function `id`; `handler(invocation, done)` must settle `done`.
    /// With `http`, the handler gets the core's parsed request and response instead of the
    /// input, and the core ends the response after it.
    #[napi(
        ts_args_type = "id: string, handler: (invocation: any, done: Completion) => void, \
                          description?: string | undefined | null, http?: boolean | undefined | null, \
                          formatsJson?: string | undefined | null"
    )]
    pub fn register_function(
        &self,
        id: String,
        handler: Function<FnArgs<(Invocation, Completion)>, ()>,
        description: Option<String>,
        http: Option<bool>,
        formats_json: Option<String>,
    ) -> Result<NativeRegistration> {
        let slot = handler_slot(handler)?;
        let address = self.iii.address().to_string();
        let handler = core_handler(slot.clone(), address, http.unwrap_or(false));
        let function = RegisterFunction::from_handler(id, handler);
        let function = with_options(function, description, formats_json)?;
        // A duplicate id is an Error here, as in the published client.
        let inner = (self.iii.try_register_function(function)).map_err(registration_error)?;
        let id = inner.id().to_string();
        Ok(self.keep(slot, id, move || inner.unregister()))
    }

    /// Registers function `id` as one the engine calls over HTTP: `invocationJson` is the
    /// published `HttpInvocationConfig` (`{ url, method?, timeout_ms?, headers?, auth? }`).
    #[napi]
    pub fn register_http_function(
        &self,
        id: String,
        invocation_json: String,
        description: Option<String>,
        formats_json: Option<String>,
    ) -> Result<NativeRegistration> {
        let invocation: Value = serde_json::from_str(&invocation_json)
            .map_err(|error| invalid(format!("the HttpInvocationConfig is not JSON: {error}")))?;
        let function = RegisterFunction::http(id, invocation).map_err(registration_error)?;
        let function = with_options(function, description, formats_json)?;
        let inner = (self.iii.try_register_function(function)).map_err(registration_error)?;
        let id = inner.id().to_string();
        Ok(NativeRegistration {
            id,
            withdraw: Box::new(move || inner.unregister()),
        })
    }

    /// Provides trigger type `id`: `handler(invocation, done)` is called with
    /// `{ op: 'register' | 'unregister', trigger: { id, function_id, config, metadata? } }` for
    /// each trigger of the type the engine forwards, and must settle `done`.
    #[napi(
        ts_args_type = "id: string, handler: (invocation: any, done: Completion) => void, \
                          description?: string | undefined | null"
    )]
    pub fn register_trigger_type(
        &self,
        id: String,
        handler: Function<FnArgs<(Invocation, Completion)>, ()>,
        description: Option<String>,
    ) -> Result<NativeRegistration> {
        let slot = handler_slot(handler)?;
        let address = self.iii.address().to_string();
        let mut provided = RegisterTriggerType::new(id, core_handler(slot.clone(), address, false));
        provided.description = description;
        let inner = (self.iii.register_trigger_type(provided)).map_err(registration_error)?;
        let id = inner.id().to_string();
        Ok(self.keep(slot, id, move || inner.unregister()))
    }

    /// Binds a trigger given as JSON `{ type, function_id, config }`.
    #[napi]
    pub fn register_trigger(&self, trigger_json: String) -> Result<NativeRegistration> {
        let trigger = parse_json(&trigger_json, RegisterTrigger::from_value)?;
        let inner = self
            .iii
            .register_trigger(trigger)
            .map_err(|error| napi::Error::from_reason(error.to_string()))?;
        let id = inner.id().to_string();
        Ok(NativeRegistration {
            id,
            withdraw: Box::new(move || inner.unregister()),
        })
    }

    /// Stops the worker and releases every handler, so nothing keeps the process alive.
    #[napi]
    pub fn shutdown(&self) {
        self.iii.shutdown();
        let slots =
            std::mem::take(&mut *self.handlers.lock().unwrap_or_else(PoisonError::into_inner));
        for slot in &slots {
            release(slot);
        }
    }
}
