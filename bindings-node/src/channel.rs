//! `NativeWriter` and `NativeReader`: the channel ends as napi classes. The JavaScript layer
//! wraps them in `ChannelWriter` / `ChannelReader` with a Node `Writable` / `Readable`.
//!
//! A writer's operations pass through one ordered queue with a byte window
//! ([`iii_sdk::channel::WriteQueue`]): a write's promise resolves once the core has accepted the chunk
//! within the window, so a `Writable` whose callback follows that promise has the channel's
//! backpressure. A reader pulls a batch of events (bytes and text messages, in wire order)
//! per `pull()`, made of what the socket already holds; nothing more is read ahead. Batches
//! reach JavaScript through one persistent callback, so nothing is created per batch.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use iii_sdk::StreamChannelRef;
use iii_sdk::channel::EventBatch;
use iii_sdk::{ChannelEvent, IIIError};
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

#[napi]
impl NativeWriter {
    /// This end's ref as JSON text.
    #[napi(getter)]
    pub fn ref_json(&self) -> String {
        ref_json(self.queue.writer().channel_ref())
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

/// Where a reader's batches go: the JavaScript callback given to `subscribe`.
type Delivery = ThreadsafeFunction<Batch, (), Batch, Status, false, true>;

/// The reading end of a channel.
#[napi]
pub struct NativeReader {
    reader: Arc<iii_sdk::ChannelReader>,
    delivery: Arc<Mutex<Option<Delivery>>>,
}

impl NativeReader {
    /// Wraps a core reader.
    pub(crate) fn from_core(reader: iii_sdk::ChannelReader) -> Self {
        Self {
            reader: Arc::new(reader),
            delivery: Arc::default(),
        }
    }
}

/// Bytes a batch takes at most, beyond its first event, from what the socket already holds.
const BATCH_BYTES: usize = 1 << 20;
/// Events a batch holds at most.
const BATCH_EVENTS: usize = 1024;

/// Events read from the socket, in wire order, as a JS array of Buffers (bytes, copied once
/// into memory V8 allocates and frees itself) and strings (text messages), with `end: true`
/// once the stream ended cleanly (the array then holds what came before the end); or the
/// stream's error, as a JS `Error` with its `code`.
pub struct Batch(std::result::Result<EventBatch, IIIError>);

impl ToNapiValue for Batch {
    unsafe fn to_napi_value(raw_env: sys::napi_env, batch: Self) -> Result<sys::napi_value> {
        let env = Env::from_raw(raw_env);
        let batch = match batch.0 {
            Ok(batch) => batch,
            Err(error) => {
                let object = errors::error_object(&env, &error)?;
                // SAFETY: `object` was created in `raw_env`, on this (the JavaScript) thread.
                return unsafe { Object::to_napi_value(raw_env, object) };
            }
        };
        let mut array = std::ptr::null_mut();
        check_status!(
            unsafe { sys::napi_create_array_with_length(raw_env, batch.events.len(), &mut array) },
            "cannot create the array of events"
        )?;
        let mut object = Object::from_raw(raw_env, array);
        object.set_named_property("end", batch.end)?;
        object.set_named_property("more", batch.is_messages_only())?;
        for (index, event) in batch.events.into_iter().enumerate() {
            let value = match event {
                ChannelEvent::Data(chunk) => {
                    let buffer = BufferSlice::copy_from(&env, &chunk)?;
                    unsafe { <&BufferSlice as ToNapiValue>::to_napi_value(raw_env, &buffer)? }
                }
                ChannelEvent::Message(text) => unsafe { String::to_napi_value(raw_env, text)? },
            };
            check_status!(
                unsafe { sys::napi_set_element(raw_env, array, index as u32, value) },
                "cannot fill the array of events"
            )?;
        }
        Ok(array)
    }
}

#[napi]
impl NativeReader {
    /// This end's ref as JSON text.
    #[napi(getter)]
    pub fn ref_json(&self) -> String {
        ref_json(self.reader.channel_ref())
    }

    /// Sets the callback every batch is handed to, in order, through one queue:
    /// `callback(batch)`, an array of events or the stream's `Error`.
    #[napi(
        ts_args_type = "callback: (batch: Error | (Array<Buffer | string> & { end: boolean, more: boolean })) => void"
    )]
    pub fn subscribe(&self, callback: Function<Batch, ()>) -> Result<()> {
        let delivery: Delivery = callback
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        *lock(&self.delivery) = Some(delivery);
        Ok(())
    }

    /// Reads the next batch for the subscribed callback (call again once it came): one event
    /// waited for, then those already at hand (up to 1 MiB, 1024 events), so a busy reader
    /// crosses to the runtime and back once per batch. Text messages that come while it waits
    /// for bytes are handed over at once (with `more: true`), and the pull goes on. With `keepAlive` the process stays
    /// alive while it waits (a reader waiting for bytes); without (a reader only listening
    /// for messages), it does not. `start: false` only changes that for the pending read.
    #[napi]
    pub fn pull(&self, env: &Env, keep_alive: bool, start: bool) -> Result<()> {
        let mut delivery = lock(&self.delivery);
        let Some(callback) = delivery.as_mut() else {
            return Err(errors::invalid("iii-sdk: pull() before subscribe()"));
        };
        // Toggling one function's reference is what napi offers for this (clones are not).
        #[allow(deprecated)]
        match keep_alive {
            true => callback.refer(env)?,
            false => callback.unref(env)?,
        }
        if start {
            let (reader, delivery) = (self.reader.clone(), self.delivery.clone());
            iii_sdk::runtime().spawn(async move {
                loop {
                    let batch = reader.next_batch(BATCH_BYTES, BATCH_EVENTS).await;
                    let more = batch.as_ref().is_ok_and(EventBatch::is_messages_only);
                    if let Some(callback) = lock(&delivery).as_ref() {
                        callback.call(Batch(batch), ThreadsafeFunctionCallMode::NonBlocking);
                    }
                    if !more {
                        return;
                    }
                }
            });
        }
        Ok(())
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

/// Text messages a reader keeps for its first `onMessage` callback, at most (the core's bound).
#[napi]
pub const MAX_KEPT_MESSAGES: u32 = iii_sdk::channel::MAX_KEPT_MESSAGES as u32;

/// Bytes of text a reader keeps for its first `onMessage` callback, at most (the core's bound).
#[napi]
pub const MAX_KEPT_MESSAGE_BYTES: u32 = iii_sdk::channel::MAX_KEPT_MESSAGE_BYTES as u32;

/// The error code of a closed reader, for the JavaScript layer.
#[napi]
pub const READER_CLOSED: &str = iii_sdk::protocol::codes::READER_CLOSED;
