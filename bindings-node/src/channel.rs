//! `NativeWriter` and `NativeReader`: the channel ends as napi classes. The JavaScript layer
//! wraps them in `ChannelWriter` / `ChannelReader` with a Node `Writable` / `Readable`.
//!
//! A writer's operations pass through one ordered queue with a byte window
//! ([`iii_sdk::channel::WriteQueue`]): a write's promise resolves once the core has accepted the chunk
//! within the window, so a `Writable` whose callback follows that promise has the channel's
//! backpressure. A reader pulls a batch of chunks per `pull()`, made of what the socket already
//! holds; nothing more is read ahead. Batches and text messages (the core's `on_message`, in
//! wire order with the chunks) reach JavaScript through one persistent callback.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use iii_sdk::IIIError;
use iii_sdk::StreamChannelRef;
use iii_sdk::binding::{MessageBudget, MessageTicket};
use iii_sdk::channel::ChunkBatch;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::errors;
use crate::promise::settle;
use iii_sdk::channel::{WriteAck, WriteOp, WriteQueue};

fn ref_json(channel_ref: &StreamChannelRef) -> String {
    serde_json::to_string(channel_ref).unwrap_or_default()
}

/// The writing end of a channel.
#[napi]
pub struct NativeWriter {
    queue: Arc<WriteQueue>,
}

impl NativeWriter {
    /// Wraps the ordered queue of a core writer (an HTTP response's, say).
    pub(crate) fn from_queue(queue: Arc<WriteQueue>) -> Self {
        Self { queue }
    }

    /// Queues `op` and returns a promise of its acknowledgement.
    fn push<'env>(&self, env: &'env Env, op: WriteOp) -> Result<Object<'env>> {
        promise_of(env, self.queue.push(op))
    }

    /// Queues a write or message: `null` when the core accepted it at once (it lies within
    /// the window: no promise, no trip through the runtime), else a promise of its
    /// acknowledgement.
    fn push_windowed<'env>(&self, env: &'env Env, op: WriteOp) -> Result<Option<Object<'env>>> {
        match self.queue.push(op) {
            WriteAck::Now(Ok(())) => Ok(None),
            ack => promise_of(env, ack).map(Some),
        }
    }
}

/// A promise settled with `ack`'s outcome.
fn promise_of<'env>(env: &'env Env, ack: WriteAck) -> Result<Object<'env>> {
    settle(env, ack.wait(), |_, ()| Ok(()))
}

/// What a channel end has moved (`reader.stats()`, `writer.stats()`).
#[napi(object)]
pub struct EndStats {
    /// Payload bytes written, or read.
    pub bytes: f64,
    /// Binary frames (of at most 64 KiB).
    pub frames: f64,
    /// Text messages.
    pub messages: f64,
    /// Milliseconds spent waiting: a writer for a slow reader, a reader for data.
    pub blocked_ms: f64,
}

impl From<iii_sdk::ChannelStats> for EndStats {
    fn from(stats: iii_sdk::ChannelStats) -> Self {
        Self {
            bytes: stats.bytes as f64,
            frames: stats.frames as f64,
            messages: stats.messages as f64,
            blocked_ms: stats.blocked.as_secs_f64() * 1000.0,
        }
    }
}

#[napi]
impl NativeWriter {
    /// This end's ref as JSON text.
    #[napi(getter)]
    pub fn ref_json(&self) -> String {
        ref_json(self.queue.writer().channel_ref())
    }

    /// What this writer has written so far.
    #[napi]
    pub fn stats(&self) -> EndStats {
        self.queue.writer().stats().into()
    }

    /// Queues `data`: `null` if the core accepted it at once (within the writer's window),
    /// else a promise resolved once it did.
    #[napi(ts_return_type = "Promise<void> | null")]
    pub fn write<'env>(&self, env: &'env Env, data: BufferSlice) -> Result<Option<Object<'env>>> {
        self.push_windowed(env, WriteOp::Write(Bytes::copy_from_slice(&data)))
    }

    /// Queues a text message, in order with the writes: `null` or a promise, as `write`.
    #[napi(ts_return_type = "Promise<void> | null")]
    pub fn send_message<'env>(
        &self,
        env: &'env Env,
        message: String,
    ) -> Result<Option<Object<'env>>> {
        self.push_windowed(env, WriteOp::Message(message))
    }

    /// Ends the stream cleanly once everything queued before is sent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        self.push(env, WriteOp::Close)
    }

    /// Ends the stream as aborted: the reader fails with `channel_aborted` and `reason`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn abort<'env>(&self, env: &'env Env, reason: String) -> Result<Object<'env>> {
        self.push(env, WriteOp::Abort(reason))
    }
}

/// Where a reader's batches and text messages go: the JavaScript callback given to `subscribe`.
type Delivery = ThreadsafeFunction<Delivered, (), Delivered, Status, false, true>;

/// The reading end of a channel.
#[napi]
pub struct NativeReader {
    reader: Arc<iii_sdk::ChannelReader>,
    delivery: Arc<Mutex<Option<Delivery>>>,
    in_flight: Arc<MessageBudget>,
}

impl NativeReader {
    /// Wraps a core reader.
    pub(crate) fn from_core(reader: iii_sdk::ChannelReader) -> Self {
        Self {
            reader: Arc::new(reader),
            delivery: Arc::default(),
            in_flight: MessageBudget::new(),
        }
    }

    /// Hands a text message to JavaScript, unless as many as the core keeps for a reader are
    /// already on their way there (the JavaScript thread is behind): then it is dropped with a
    /// warning, as the core drops messages nobody takes, so a flood cannot grow memory.
    fn deliver_message(
        delivery: &Mutex<Option<Delivery>>,
        in_flight: &Arc<MessageBudget>,
        text: String,
    ) {
        let Some(ticket) = in_flight.take(text.len()) else {
            tracing::warn!(
                "a channel reader's onMessage callbacks are behind; a text message was dropped"
            );
            return;
        };
        let message = InFlightMessage {
            text,
            _ticket: ticket,
        };
        Self::deliver(delivery, Delivered::Message(message));
    }

    /// Hands `delivered` to the subscribed callback, if any.
    fn deliver(delivery: &Mutex<Option<Delivery>>, delivered: Delivered) {
        if let Some(callback) = lock(delivery).as_ref() {
            callback.call(delivered, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// Bytes a batch takes at most, beyond its first chunk, from what the socket already holds.
const BATCH_BYTES: usize = 1 << 20;
/// Chunks a batch holds at most.
const BATCH_CHUNKS: usize = 1024;

/// A text message on its way to JavaScript; it gives its share of the reader's
/// [`MessageBudget`] back when it has been converted (or dropped undelivered).
pub struct InFlightMessage {
    text: String,
    _ticket: MessageTicket,
}

/// What a reader hands to JavaScript: a text message (a string); or a batch of chunks as an
/// array of Buffers (copied once into memory V8 allocates and frees itself) with `end: true`
/// once the stream ended cleanly after them; or the stream's error, a JS `Error` with its `code`.
pub enum Delivered {
    /// A text message, before the bytes sent after it.
    Message(InFlightMessage),
    /// The outcome of a `pull()`.
    Batch(std::result::Result<ChunkBatch, IIIError>),
}

impl ToNapiValue for Delivered {
    unsafe fn to_napi_value(raw_env: sys::napi_env, delivered: Self) -> Result<sys::napi_value> {
        let env = Env::from_raw(raw_env);
        let batch = match delivered {
            Delivered::Message(mut message) => {
                let text = std::mem::take(&mut message.text);
                return unsafe { String::to_napi_value(raw_env, text) };
            }
            Delivered::Batch(Ok(batch)) => batch,
            Delivered::Batch(Err(error)) => {
                let object = errors::error_object(&env, &error)?;
                // SAFETY: `object` was created in `raw_env`, on this (the JavaScript) thread.
                return unsafe { Object::to_napi_value(raw_env, object) };
            }
        };
        let mut array = env.create_array(batch.chunks.len() as u32)?;
        for (index, chunk) in batch.chunks.iter().enumerate() {
            array.set(index as u32, BufferSlice::copy_from(&env, chunk)?)?;
        }
        let mut object = array.coerce_to_object()?;
        object.set_named_property("end", batch.end)?;
        unsafe { Object::to_napi_value(raw_env, object) }
    }
}

#[napi]
impl NativeReader {
    /// This end's ref as JSON text.
    #[napi(getter)]
    pub fn ref_json(&self) -> String {
        ref_json(self.reader.channel_ref())
    }

    /// What this reader has received so far.
    #[napi]
    pub fn stats(&self) -> EndStats {
        self.reader.stats().into()
    }

    /// Sets the callback every batch and text message is handed to, in wire order, through one
    /// queue that does not keep the process alive unless a `pull()` waits.
    #[napi(
        ts_args_type = "callback: (delivered: string | Error | (Array<Buffer> & { end: boolean })) => void"
    )]
    pub fn subscribe(&self, callback: Function<Delivered, ()>) -> Result<()> {
        let delivery: Delivery = callback
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        *lock(&self.delivery) = Some(delivery);
        Ok(())
    }

    /// Hands text messages to the subscribed callback from now on, those that came before
    /// first (as the core keeps them), each before the bytes sent after it.
    #[napi]
    pub fn listen(&self) {
        let (delivery, in_flight) = (self.delivery.clone(), self.in_flight.clone());
        (self.reader).add_message_callback(move |text| {
            Self::deliver_message(&delivery, &in_flight, text);
        });
    }

    /// Reads the next batch of chunks for the subscribed callback (call again once it came):
    /// one waited for, then those already at hand (up to 1 MiB, 1024 chunks), so a busy reader
    /// crosses to the runtime and back once per batch. The process stays alive while it
    /// waits, until `idle()`.
    #[napi]
    pub fn pull(&self, env: &Env) -> Result<()> {
        self.keep_alive(env, true)?;
        let (reader, delivery) = (self.reader.clone(), self.delivery.clone());
        iii_sdk::runtime().spawn(async move {
            let batch = reader.next_chunks(BATCH_BYTES, BATCH_CHUNKS).await;
            Self::deliver(&delivery, Delivered::Batch(batch));
        });
        Ok(())
    }

    /// Lets the process exit while nothing is pulled (text messages still come).
    #[napi]
    pub fn idle(&self, env: &Env) -> Result<()> {
        self.keep_alive(env, false)
    }

    fn keep_alive(&self, env: &Env, keep: bool) -> Result<()> {
        let mut delivery = lock(&self.delivery);
        let Some(callback) = delivery.as_mut() else {
            return Err(errors::invalid("iii-sdk: pull() before subscribe()"));
        };
        // Toggling one function's reference is what napi offers for this (clones are not).
        #[allow(deprecated)]
        match keep {
            true => callback.refer(env),
            false => callback.unref(env),
        }
    }

    /// Closes this end; a pending read fails with `reader_closed`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let reader = self.reader.clone();
        settle(
            env,
            async move {
                reader.close().await;
                Ok(())
            },
            |_, ()| Ok(()),
        )
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The error code of a closed reader, for the JavaScript layer.
#[napi]
pub const READER_CLOSED: &str = iii_sdk::protocol::codes::READER_CLOSED;

/// The ids of the engine's built-ins, for `iii-sdk/engine` (its `EngineFunctions` and
/// `EngineTriggers` give them the published client's names).
#[napi(object)]
pub struct EngineIds {
    pub list_functions: String,
    pub info_functions: String,
    pub list_workers: String,
    pub info_workers: String,
    pub list_triggers: String,
    pub info_triggers: String,
    pub list_registered_triggers: String,
    pub info_registered_triggers: String,
    pub register_worker: String,
    pub functions_available: String,
}

/// The engine's built-in ids (from the protocol crate, where wire names live).
#[napi]
pub fn engine_ids() -> EngineIds {
    use iii_sdk::protocol::builtins as ids;
    EngineIds {
        list_functions: ids::FN_FUNCTIONS_LIST.into(),
        info_functions: ids::FN_FUNCTIONS_INFO.into(),
        list_workers: ids::FN_WORKERS_LIST.into(),
        info_workers: ids::FN_WORKERS_INFO.into(),
        list_triggers: ids::FN_TRIGGERS_LIST.into(),
        info_triggers: ids::FN_TRIGGERS_INFO.into(),
        list_registered_triggers: ids::FN_REGISTERED_TRIGGERS_LIST.into(),
        info_registered_triggers: ids::FN_REGISTERED_TRIGGERS_INFO.into(),
        register_worker: ids::FN_WORKERS_REGISTER.into(),
        functions_available: ids::TRIGGER_FUNCTIONS_AVAILABLE.into(),
    }
}
