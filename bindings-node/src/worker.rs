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

use iii_sdk::function::Handler;
use iii_sdk::http::serve_returning;
use iii_sdk::{IIIError, InitOptions, RegisterFunction, RegisterTrigger, TriggerRequest};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::channel::{NativeReader, NativeWriter};
use crate::ends::WithEnds;
use crate::errors::invalid;
use crate::http::{HttpInvocation, NativeHttpResponse};
use crate::promise::settle;

type Outcome = std::result::Result<Value, IIIError>;

/// The JS side of one invocation's result: call `resolve` or `reject` once.
#[napi]
pub struct Completion {
    settled: Mutex<Option<oneshot::Sender<Outcome>>>,
}

impl Completion {
    fn finish(&self, outcome: Outcome) {
        let sender = self
            .settled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(outcome);
        }
    }
}

#[napi]
impl Completion {
    /// The handler returned; `json` is its result as JSON text (`undefined` → `null`).
    #[napi]
    pub fn resolve(&self, json: Option<String>) {
        let value = match json.as_deref().map(serde_json::from_str) {
            None => Ok(Value::Null),
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(IIIError::Handler(format!(
                "the handler's result is not JSON: {error}"
            ))),
        };
        self.finish(value);
    }

    /// The handler failed: the caller receives `code`, `message` and `stacktrace`.
    #[napi]
    pub fn reject(&self, code: String, message: String, stacktrace: Option<String>) {
        self.finish(Err(IIIError::Invocation {
            code,
            message,
            stacktrace,
        }));
    }
}

/// What a JS handler is called with.
pub enum Invocation {
    /// A plain function's input, refs made live.
    Plain(WithEnds),
    /// An `http()` function's request and response.
    Http(HttpInvocation),
}

impl ToNapiValue for Invocation {
    unsafe fn to_napi_value(raw_env: sys::napi_env, value: Self) -> Result<sys::napi_value> {
        let env = Env::from_raw(raw_env);
        let mut object = Object::new(&env)?;
        match value {
            Invocation::Plain(input) => input.fill(&env, &mut object)?,
            Invocation::Http(http) => http.fill(&mut object)?,
        }
        // SAFETY: `object` was created in `raw_env`, on this (the JavaScript) thread.
        unsafe { Object::to_napi_value(raw_env, object) }
    }
}

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
    let (sender, receiver) = oneshot::channel();
    let completion = Completion {
        settled: Mutex::new(Some(sender)),
    };
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
    receiver.await.unwrap_or_else(|_| {
        Err(IIIError::Handler(
            "the JavaScript handler never settled its invocation".into(),
        ))
    })
}

/// The core handler calling the JS handler in `slot`: with the input's refs made live on
/// `address`, or, for an `http()` function, through the core's HTTP adapter.
fn core_handler(slot: HandlerSlot, address: String, http: bool) -> Handler {
    Arc::new(move |input: Value| {
        let (slot, address) = (slot.clone(), address.clone());
        Box::pin(async move {
            if !http {
                return call_js(&slot, Invocation::Plain(WithEnds::new(&address, &input))).await;
            }
            serve_returning(&address, input, |request, response| async move {
                let (request_json, body, body_ref) = request.into_plain();
                let invocation = HttpInvocation {
                    request_json: request_json.to_string(),
                    body: NativeReader::from_core(body, &body_ref),
                    response: NativeHttpResponse::new(response),
                };
                call_js(&slot, Invocation::Http(invocation)).await
            })
            .await
        })
    })
}

/// A registered function: `unregister()` removes it and releases its handler.
#[napi]
pub struct NativeFunctionRef {
    inner: iii_sdk::FunctionRef,
    slot: HandlerSlot,
}

#[napi]
impl NativeFunctionRef {
    /// The function id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.inner.id().to_string()
    }

    /// Unregisters the function.
    #[napi]
    pub fn unregister(&self) {
        self.inner.unregister();
        release(&self.slot);
    }
}

/// A registered trigger.
#[napi]
pub struct NativeTriggerRef {
    inner: iii_sdk::TriggerRef,
}

#[napi]
impl NativeTriggerRef {
    /// The trigger id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.inner.id().to_string()
    }

    /// Unregisters the trigger.
    #[napi]
    pub fn unregister(&self) {
        self.inner.unregister();
    }
}

/// A new channel as the JS object `{ writer, reader, writerRef, readerRef }`.
struct ChannelParts(iii_sdk::Channel);

impl ToNapiValue for ChannelParts {
    unsafe fn to_napi_value(
        raw_env: napi::sys::napi_env,
        parts: Self,
    ) -> Result<napi::sys::napi_value> {
        let env = Env::from_raw(raw_env);
        let iii_sdk::Channel {
            writer,
            reader,
            writer_ref,
            reader_ref,
        } = parts.0;
        let mut object = Object::new(&env)?;
        object.set_named_property(
            "writerRef",
            serde_json::to_string(&writer_ref).unwrap_or_default(),
        )?;
        object.set_named_property(
            "readerRef",
            serde_json::to_string(&reader_ref).unwrap_or_default(),
        )?;
        object.set_named_property("writer", NativeWriter::from_core(writer, &writer_ref))?;
        object.set_named_property("reader", NativeReader::from_core(reader, &reader_ref))?;
        // SAFETY: `object` was created in `raw_env`, on this (the JavaScript) thread.
        unsafe { Object::to_napi_value(raw_env, object) }
    }
}

/// A worker connected (in the background) to an engine.
#[napi]
pub struct NativeWorker {
    iii: iii_sdk::III,
    handlers: Mutex<Vec<HandlerSlot>>,
}

fn parse_json(what: &str, json: &str) -> Result<Value> {
    serde_json::from_str(json).map_err(|error| invalid(format!("{what} is not JSON: {error}")))
}

#[napi]
impl NativeWorker {
    /// Starts a worker for the engine at `url`; returns at once.
    #[napi(factory)]
    pub fn connect(
        url: String,
        worker_name: Option<String>,
        invocation_timeout_ms: Option<f64>,
    ) -> Self {
        let mut options = InitOptions {
            worker_name,
            runtime: "node".into(),
            ..InitOptions::default()
        };
        if let Some(timeout) = invocation_timeout_ms.filter(|t| t.is_finite() && *t > 0.0) {
            options.invocation_timeout_ms = timeout as u64;
        }
        Self {
            iii: iii_sdk::register_worker_with(&url, options),
            handlers: Mutex::new(Vec::new()),
        }
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

    /// A new channel: `{ writer, reader, writerRef, readerRef }` (refs as JSON text).
    #[napi(
        ts_return_type = "Promise<{ writer: NativeWriter, reader: NativeReader, writerRef: string, readerRef: string }>"
    )]
    pub fn create_channel<'env>(
        &self,
        env: &'env Env,
        buffer_size: Option<u32>,
    ) -> Result<Object<'env>> {
        let iii = self.iii.clone();
        settle(
            env,
            async move { iii.create_channel(buffer_size).await },
            |_, channel: iii_sdk::Channel| Ok(ChannelParts(channel)),
        )
    }

    /// Calls a function: `requestJson` is `{ function_id, payload, action?, timeoutMs? }`.
    /// Resolves with the result as `{ json, ends }` (refs in it made live).
    #[napi(
        ts_return_type = "Promise<{ json: string, ends: Array<{ path: Array<string | number>, end: NativeReader | NativeWriter }> }>"
    )]
    pub fn trigger<'env>(&self, env: &'env Env, request_json: String) -> Result<Object<'env>> {
        let request = serde_json::from_str(&request_json)
            .map_err(IIIError::from)
            .and_then(TriggerRequest::from_value)
            .map_err(|error| invalid(error.to_string()))?;
        let iii = self.iii.clone();
        let address = iii.address().to_string();
        settle(
            env,
            async move { iii.trigger(request).await },
            move |_, value: Value| Ok(WithEnds::new(&address, &value)),
        )
    }

    /// Registers `handler` as function `id`; `handler(inputJson, done)` must settle `done`.
    /// With `http`, the handler gets the core's parsed request and response instead of the
    /// input, and the core ends the response after it.
    #[napi(
        ts_args_type = "id: string, handler: (invocation: any, done: Completion) => void, \
                          description?: string | undefined | null, http?: boolean | undefined | null"
    )]
    pub fn register_function(
        &self,
        id: String,
        handler: Function<FnArgs<(Invocation, Completion)>, ()>,
        description: Option<String>,
        http: Option<bool>,
    ) -> Result<NativeFunctionRef> {
        let handler: JsHandler = handler
            .build_threadsafe_function()
            .callee_handled::<false>()
            .build()?;
        let slot: HandlerSlot = Arc::new(Mutex::new(Some(handler)));
        let address = self.iii.address().to_string();
        let handler = core_handler(slot.clone(), address, http.unwrap_or(false));
        let mut function = RegisterFunction::from_handler(id, handler);
        if let Some(description) = description {
            function = function.with_description(description);
        }
        let inner = self.iii.register_function(function);
        self.handlers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(slot.clone());
        Ok(NativeFunctionRef { inner, slot })
    }

    /// Binds a trigger of `triggerType` (e.g. `http`) to `functionId`.
    #[napi]
    pub fn register_trigger(
        &self,
        trigger_type: String,
        function_id: String,
        config_json: String,
    ) -> Result<NativeTriggerRef> {
        let config = parse_json("the trigger config", &config_json)?;
        let inner = self
            .iii
            .register_trigger(RegisterTrigger::new(trigger_type, function_id, config))
            .map_err(|error| napi::Error::from_reason(error.to_string()))?;
        Ok(NativeTriggerRef { inner })
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
