//! `NativeWriter` and `NativeReader`: the channel ends as napi classes. The JavaScript layer
//! wraps them in `ChannelWriter` / `ChannelReader` with a Node `Writable` / `Readable`.
//!
//! A writer's operations pass through one ordered queue with a byte window
//! ([`iii_sdk::channel::WriteQueue`]): a write's promise resolves once the core has accepted the chunk
//! within the window, so a `Writable` whose callback follows that promise has the channel's
//! backpressure. A reader pulls a batch of events (bytes and text messages, in wire order)
//! per `readEvents()`, made of what the socket already holds; nothing more is read ahead.

use std::sync::Arc;

use bytes::Bytes;
use iii_sdk::StreamChannelRef;
use iii_sdk::{ChannelEvent, IIIError};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use tokio::sync::Notify;

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

/// The reading end of a channel.
#[napi]
pub struct NativeReader {
    reader: Arc<iii_sdk::ChannelReader>,
    /// Stops a running `listen`.
    stop_listening: Arc<Notify>,
}

impl NativeReader {
    /// Wraps a core reader.
    pub(crate) fn from_core(reader: iii_sdk::ChannelReader) -> Self {
        Self {
            reader: Arc::new(reader),
            stop_listening: Arc::default(),
        }
    }
}

/// Bytes a `readEvents` batch takes at most, beyond its first event, from what the socket
/// already holds.
const BATCH_BYTES: usize = 1 << 20;
/// Events a `readEvents` batch holds at most.
const BATCH_EVENTS: usize = 1024;
/// Frames of bytes `listen` hands over before it stops until something reads (as the core's
/// own listening keeps a few for the reader).
const LISTEN_AHEAD_FRAMES: usize = 8;

/// Events read from the socket, in wire order, as a JS array of Buffers (bytes, copied once
/// into memory V8 allocates and frees itself) and strings (text messages), with `end: true`
/// once the stream ended cleanly (the array then holds what came before the end).
pub struct Events {
    events: Vec<ChannelEvent>,
    end: bool,
    /// Set on the last call of `listen`.
    stopped: bool,
}

impl Events {
    /// Frames of bytes in the batch.
    fn frames(&self) -> usize {
        let data = |event: &&ChannelEvent| matches!(event, ChannelEvent::Data(_));
        self.events.iter().filter(data).count()
    }
}

impl ToNapiValue for Events {
    unsafe fn to_napi_value(raw_env: sys::napi_env, batch: Self) -> Result<sys::napi_value> {
        let env = Env::from_raw(raw_env);
        let mut array = std::ptr::null_mut();
        check_status!(
            unsafe { sys::napi_create_array_with_length(raw_env, batch.events.len(), &mut array) },
            "cannot create the array of events"
        )?;
        let mut object = Object::from_raw(raw_env, array);
        object.set_named_property("end", batch.end)?;
        object.set_named_property("stopped", batch.stopped)?;
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

    /// The next events in wire order: waits for one, then takes the ones already at hand (up
    /// to 1 MiB of bytes in all), so that a busy reader crosses to the runtime and back once
    /// per batch instead of once per frame. `end` is set at the clean end; an aborted or lost
    /// writer rejects with its `code` (after the events before it were handed over).
    #[napi(ts_return_type = "Promise<Array<Buffer | string> & { end: boolean }>")]
    pub fn read_events<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        settle(env, next_batch(self.reader.clone()), |_, events: Events| {
            Ok(events)
        })
    }

    /// Receives while nothing reads yet, as the core's own listening does: hands each batch
    /// to `callback(error, events)` until the stream ends, `LISTEN_AHEAD_FRAMES` frames of
    /// bytes wait for a reader, or `stopListening()` is called; then one last call with
    /// `stopped` set. It never keeps the process alive.
    #[napi(
        ts_args_type = "callback: (error: Error | null, events: Array<Buffer | string> & { end: boolean, stopped: boolean }) => void"
    )]
    pub fn listen(&self, callback: Function<Events, ()>) -> Result<()> {
        let callback: ThreadsafeFunction<Events, (), Events, Status, true, true> = callback
            .build_threadsafe_function()
            .callee_handled::<true>()
            .weak::<true>()
            .build()?;
        let (reader, stop) = (self.reader.clone(), self.stop_listening.clone());
        iii_sdk::runtime().spawn(async move {
            let mut frames = 0;
            loop {
                let batch = tokio::select! {
                    biased;
                    () = stop.notified() => break,
                    batch = next_batch(reader.clone()) => batch,
                };
                let more = match &batch {
                    Ok(events) => {
                        frames += events.frames();
                        !events.end && frames < LISTEN_AHEAD_FRAMES
                    }
                    Err(_) => false,
                };
                // An error reaches JavaScript again through the next read.
                let batch =
                    batch.map_err(|e| napi::Error::new(Status::GenericFailure, e.to_string()));
                callback.call(batch, ThreadsafeFunctionCallMode::NonBlocking);
                if !more {
                    break;
                }
            }
            let stopped = Events {
                events: Vec::new(),
                end: false,
                stopped: true,
            };
            callback.call(Ok(stopped), ThreadsafeFunctionCallMode::NonBlocking);
        });
        Ok(())
    }

    /// Stops `listen` (its last call, with `stopped`, follows every batch it handed over).
    #[napi]
    pub fn stop_listening(&self) {
        self.stop_listening.notify_one();
    }

    /// Closes this end; a pending read rejects with `reader_closed`.
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

/// The next events of `reader`: one waited for, then those at hand (see `read_events`).
async fn next_batch(reader: Arc<iii_sdk::ChannelReader>) -> std::result::Result<Events, IIIError> {
    let Some(first) = reader.next_event().await? else {
        return Ok(Events {
            events: Vec::new(),
            end: true,
            stopped: false,
        });
    };
    let mut size = event_size(&first);
    let mut events = vec![first];
    let mut end = false;
    while size < BATCH_BYTES && events.len() < BATCH_EVENTS {
        // An error stops the batch; the next call reports it.
        match reader.try_next_event() {
            Some(Ok(Some(event))) => {
                size += event_size(&event);
                events.push(event);
            }
            Some(Ok(None)) => {
                end = true;
                break;
            }
            Some(Err(_)) | None => break,
        }
    }
    Ok(Events {
        events,
        end,
        stopped: false,
    })
}

/// What an event counts against a batch's bytes (at least 1, so empty ones are bounded too).
fn event_size(event: &ChannelEvent) -> usize {
    match event {
        ChannelEvent::Data(chunk) => chunk.len().max(1),
        ChannelEvent::Message(text) => text.len().max(1),
    }
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
