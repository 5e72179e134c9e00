//! The worker handle [`III`]: what user code (and every binding) calls.
//!
//! `III` is a handle on the worker's shared state ([`crate::state`]), which the main socket task
//! in [`connection`](crate::connection) serves. Its async methods write on the socket or queue
//! for the task, and wait on oneshot replies and SDK-runtime timers, so they work when awaited
//! from any executor.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use iii_protocol::builtins::{
    CHANNELS_CREATE_BUFFER_SIZE, CHANNELS_CREATE_READER, CHANNELS_CREATE_WRITER, FN_CHANNELS_CREATE,
};
use iii_protocol::{Message, StreamChannelRef};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::CallContext;
use crate::connection;
use crate::link::Outbound;
use crate::state::{ConnectionState, WorkerState, lock};
use crate::{Channel, IIIError, InitOptions, RegisterFunction, RegisterTrigger, TriggerRequest};

/// Connects a worker to the engine at `url` (e.g. `ws://127.0.0.1:49134`) with default
/// options. Returns at once; the connection is made, and kept, in the background.
pub fn register_worker(url: &str) -> III {
    register_worker_with(url, InitOptions::default())
}

/// Like [`register_worker`], with options.
///
/// A `url` that is not a `ws://` or `wss://` URL with a host gives a worker whose every call
/// fails with [`IIIError::InvalidArgument`]; [`try_register_worker_with`] refuses it instead.
pub fn register_worker_with(url: &str, options: InitOptions) -> III {
    start(url, options)
}

/// Like [`register_worker_with`], but refuses what can never work — a `url` that is not
/// `ws://` or `wss://` with a host, or handshake headers that are not valid HTTP — with
/// [`IIIError::InvalidArgument`] instead of starting the worker.
pub fn try_register_worker_with(url: &str, options: InitOptions) -> Result<III, IIIError> {
    check_engine_url(url)?;
    connection::handshake_request(url, &options)?;
    if let Some(path) = &options.ca_file {
        crate::tls::trust_ca_file(path)?;
    }
    Ok(start(url, options))
}

/// `Ok` if `url` is a `ws://` or `wss://` URL with a host, which is what an engine URL is.
pub fn check_engine_url(url: &str) -> Result<(), IIIError> {
    let parsed = url.parse::<tokio_tungstenite::tungstenite::http::Uri>();
    match parsed {
        Ok(uri) if matches!(uri.scheme_str(), Some("ws" | "wss")) && uri.host().is_some() => Ok(()),
        _ => Err(IIIError::InvalidArgument(format!(
            "{url:?} is not an engine URL: expected ws://host:port or wss://host:port"
        ))),
    }
}

fn start(url: &str, options: InitOptions) -> III {
    if let Some(path) = &options.ca_file
        && let Err(error) = crate::tls::trust_ca_file(path)
    {
        tracing::error!(%error, "the worker's CA file is not trusted");
    }
    let (outbound, outbound_queue) = mpsc::channel(options.max_queued_messages.max(1));
    let inner = Arc::new(WorkerState::new(url, options, outbound));
    crate::runtime::home().spawn(connection::run(inner.clone(), outbound_queue));
    III { inner }
}

/// A worker connected to the engine. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct III {
    inner: Arc<WorkerState>,
}

impl III {
    /// The engine URL this worker was given; channel ends connect to the same host and port.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// Waits until the worker is connected, has sent its registrations, and the engine has
    /// answered a ping sent after them (so the engine has processed them). Wrap it in a timeout:
    /// it waits for as long as the engine is unreachable.
    pub async fn ready(&self) -> Result<(), IIIError> {
        loop {
            self.inner.check_open()?;
            let (pong, answered) = oneshot::channel();
            if self
                .inner
                .outbound
                .send(Outbound::Ping(pong))
                .await
                .is_err()
            {
                return Err(self.inner.stopped());
            }
            if answered.await.is_ok() {
                return Ok(());
            }
            // The connection dropped before the answer: wait for the next one.
        }
    }

    /// Creates a channel on the engine (`engine::channels::create`). `buffer_size` is the
    /// engine-side buffer in frames of up to 64 KiB (default 64, clamped to 1..=1024). Nothing
    /// connects until an end is used.
    pub async fn create_channel(&self, buffer_size: Option<u32>) -> Result<Channel, IIIError> {
        let refs = self
            .trigger(TriggerRequest::new(
                FN_CHANNELS_CREATE,
                json!({ CHANNELS_CREATE_BUFFER_SIZE: buffer_size }),
            ))
            .await?;
        let parse = |key: &str| {
            StreamChannelRef::from_value(&refs[key]).ok_or_else(|| {
                IIIError::Protocol(format!(
                    "{FN_CHANNELS_CREATE} returned no {key} ref: {refs}"
                ))
            })
        };
        let writer_ref = parse(CHANNELS_CREATE_WRITER)?;
        let reader_ref = parse(CHANNELS_CREATE_READER)?;
        Ok(Channel::from_refs(self.address(), writer_ref, reader_ref))
    }

    /// Registers a function (replacing one with the same id) and announces it to the engine,
    /// now if connected and again after every reconnect.
    pub fn register_function(&self, function: RegisterFunction) -> FunctionRef {
        let id = function.id.clone();
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let announcement = function.message().to_json();
        lock(&self.inner.functions).insert(id.clone(), (generation, function));
        // After the insert: a greeting that clears this announcement reads the insert.
        self.inner.link.announce(announcement);
        self.function_ref(id, generation)
    }

    /// Like [`register_function`](Self::register_function), but refuses what the published
    /// clients refuse, with [`IIIError::InvalidArgument`]: an empty id, and an id this worker
    /// has registered already (and not unregistered). Bindings register through this.
    pub fn try_register_function(
        &self,
        function: RegisterFunction,
    ) -> Result<FunctionRef, IIIError> {
        let id = function.id.clone();
        if id.trim().is_empty() {
            return Err(IIIError::InvalidArgument(
                "a function id is required".into(),
            ));
        }
        let mut functions = lock(&self.inner.functions);
        if functions.contains_key(&id) {
            return Err(IIIError::InvalidArgument(format!(
                "function id '{id}' already registered"
            )));
        }
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let announcement = function.message().to_json();
        functions.insert(id.clone(), (generation, function));
        drop(functions);
        self.inner.link.announce(announcement);
        Ok(self.function_ref(id, generation))
    }

    fn function_ref(&self, id: String, generation: u64) -> FunctionRef {
        FunctionRef {
            inner: self.inner.clone(),
            id,
            generation,
        }
    }

    /// Provides a trigger type: the engine forwards the triggers of that type to this worker,
    /// whose handler starts and stops them ([`crate::trigger_type`]). Replayed after every
    /// reconnect, before the functions. An empty id is [`IIIError::InvalidArgument`].
    pub fn register_trigger_type(
        &self,
        trigger_type: crate::RegisterTriggerType,
    ) -> Result<crate::TriggerTypeRef, IIIError> {
        self.inner.check_open()?;
        crate::trigger_type::register(&self.inner, trigger_type)
    }

    /// Stops providing trigger type `id` (a no-op if this worker does not provide it).
    pub fn unregister_trigger_type(&self, id: &str) {
        crate::trigger_type::unregister(&self.inner, id);
    }

    /// Binds a trigger (e.g. an HTTP route) to a function.
    pub fn register_trigger(&self, trigger: RegisterTrigger) -> Result<TriggerRef, IIIError> {
        self.inner.check_open()?;
        if trigger.trigger_type.is_empty() || trigger.function_id.is_empty() {
            return Err(IIIError::Protocol(
                "a trigger needs a trigger_type and a function_id".into(),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let announcement = trigger.message(&id).to_json();
        let trigger_type = trigger.trigger_type.clone();
        lock(&self.inner.triggers).insert(id.clone(), trigger);
        self.inner.link.announce(announcement);
        Ok(TriggerRef {
            inner: self.inner.clone(),
            id,
            trigger_type,
        })
    }

    /// Calls a function through the engine and returns its result. A void request
    /// ([`TriggerRequest::void`]) returns `Value::Null` once it is written to the main socket.
    ///
    /// While the worker is not connected, a call (void or not) waits for the connection at
    /// most [`InitOptions::connect_timeout_ms`], then fails with [`IIIError::Connection`]
    /// naming the URL and the cause.
    ///
    /// Remote failures arrive as [`IIIError::Invocation`] with the remote code; no answer
    /// within `timeout_ms` (default 30 s) is [`IIIError::Timeout`]; a connection that drops
    /// while the call is out is [`IIIError::Connection`].
    pub async fn trigger(&self, request: TriggerRequest) -> Result<Value, IIIError> {
        self.trigger_with_metadata(request, None).await
    }

    /// [`trigger`](Self::trigger) with free-form `metadata`, which the called function's
    /// handler finds beside its input ([`current_invocation`](crate::current_invocation)).
    pub async fn trigger_with_metadata(
        &self,
        request: TriggerRequest,
        metadata: Option<Value>,
    ) -> Result<Value, IIIError> {
        let context = CallContext {
            metadata,
            ..CallContext::default()
        };
        self.trigger_in_context(request, context).await
    }

    /// [`trigger`](Self::trigger) with what travels beside the input: metadata, and a W3C
    /// trace context (left empty inside a handler, the served call's is carried on, so one
    /// trace spans every worker a request passes through).
    pub async fn trigger_in_context(
        &self,
        request: TriggerRequest,
        context: CallContext,
    ) -> Result<Value, IIIError> {
        let CallContext { metadata, trace } = context;
        self.inner.check_open()?;
        let void = request.is_void();
        let timeout = request
            .timeout_ms
            .unwrap_or(self.inner.options.invocation_timeout_ms);
        let id = (!void).then(|| uuid::Uuid::new_v4().to_string());
        let trace = if trace.is_empty() {
            crate::invocation::current_trace()
        } else {
            trace
        };
        let text = Message::InvokeFunction {
            invocation_id: id.clone(),
            function_id: request.function_id,
            data: request.payload,
            action: request.action,
            metadata,
            traceparent: trace.traceparent,
            tracestate: trace.tracestate,
            baggage: trace.baggage,
            namespace: None,
        }
        .to_json();
        let Some(id) = id else {
            self.inner.connection().await?;
            return self
                .inner
                .send(Outbound::Send(text))
                .await
                .map(|()| Value::Null);
        };
        let (reply, result) = oneshot::channel();
        let call = Outbound::Call { id, text, reply };
        // The deadline is a timer of the home runtime, so this works on any executor.
        let deadline = {
            let _home = crate::runtime::enter_home();
            tokio::time::sleep(Duration::from_millis(timeout))
        };
        let waiting = async {
            self.inner.connection().await?;
            self.inner.send(call).await?;
            result.await.unwrap_or_else(|_| {
                Err(IIIError::Connection(
                    "the connection to the engine was lost".into(),
                ))
            })
        };
        tokio::select! {
            biased;
            outcome = waiting => outcome,
            _ = deadline => Err(IIIError::Timeout),
        }
    }

    /// Where the connection to the engine stands now.
    pub fn connection_state(&self) -> ConnectionState {
        self.inner.connection_state()
    }

    /// Waits until the connection state differs from `seen` and returns the new state (at
    /// once if it already differs); a stopped worker's state never changes again.
    pub async fn connection_state_change(&self, seen: ConnectionState) -> ConnectionState {
        self.inner.connection_state_change(seen).await
    }

    /// Waits until the worker has stopped (by [`shutdown`](Self::shutdown), or because
    /// reconnecting gave up).
    pub async fn stopped(&self) {
        let mut stopping = self.inner.shutdown.subscribe();
        let _ = stopping.wait_for(|stop| *stop).await;
    }

    /// Stops the worker: the main socket closes after sending what is already queued, calls in
    /// flight fail with [`IIIError::Shutdown`], and every later call fails the same way.
    /// Channel ends already open are not affected.
    pub fn shutdown(&self) {
        let _ = self.inner.terminal.set(IIIError::Shutdown);
        self.inner.shutdown.send_replace(true);
    }
}

impl std::fmt::Debug for III {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("III")
            .field("address", &self.inner.address)
            .finish_non_exhaustive()
    }
}

/// A registered function; [`unregister`](Self::unregister) withdraws it.
pub struct FunctionRef {
    inner: Arc<WorkerState>,
    id: String,
    generation: u64,
}

impl FunctionRef {
    /// The function's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Withdraws the function from the engine (unless it was registered again since).
    pub fn unregister(&self) {
        let mut functions = lock(&self.inner.functions);
        if functions
            .get(&self.id)
            .is_some_and(|(g, _)| *g == self.generation)
        {
            functions.remove(&self.id);
            drop(functions);
            let message = Message::UnregisterFunction {
                id: self.id.clone(),
            };
            self.inner.link.announce(message.to_json());
        }
    }
}

impl std::fmt::Debug for FunctionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionRef")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A registered trigger; [`unregister`](Self::unregister) withdraws it.
pub struct TriggerRef {
    inner: Arc<WorkerState>,
    id: String,
    trigger_type: String,
}

impl TriggerRef {
    /// The trigger's id (chosen by the SDK).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Withdraws the trigger from the engine.
    pub fn unregister(&self) {
        if lock(&self.inner.triggers).remove(&self.id).is_some() {
            let message = Message::UnregisterTrigger {
                id: self.id.clone(),
                trigger_type: Some(self.trigger_type.clone()),
            };
            self.inner.link.announce(message.to_json());
        }
    }
}

impl std::fmt::Debug for TriggerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerRef")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
