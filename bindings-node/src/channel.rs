//! `NativeWriter` and `NativeReader`: the channel ends as napi classes. The JavaScript layer
//! wraps them in `ChannelWriter` / `ChannelReader` with a Node `Writable` / `Readable`.
//!
//! A writer's operations pass through one ordered queue with a byte window
//! ([`iii_sdk::channel::WriteQueue`]): a write's promise resolves once the core has accepted the chunk
//! within the window, so a `Writable` whose callback follows that promise has the channel's
//! backpressure. A reader pulls one chunk per `read()`; nothing is read ahead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use iii_protocol::StreamChannelRef;
use iii_sdk::IIIError;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::errors::invalid;
use crate::promise::settle;
use iii_sdk::channel::{WriteAck, WriteOp, WriteQueue};

/// Parses a ref given as JSON text.
pub(crate) fn parse_ref(json: &str) -> Result<StreamChannelRef> {
    serde_json::from_str(json).map_err(|error| invalid(format!("not a channel ref: {error}")))
}

fn ref_json(channel_ref: &StreamChannelRef) -> String {
    serde_json::to_string(channel_ref).unwrap_or_default()
}

/// The writing end of a channel.
#[napi]
pub struct NativeWriter {
    channel_ref: StreamChannelRef,
    queue: Arc<WriteQueue>,
}

impl NativeWriter {
    /// Wraps a core writer.
    pub(crate) fn from_core(
        writer: iii_sdk::ChannelWriter,
        channel_ref: &StreamChannelRef,
    ) -> Self {
        Self {
            channel_ref: channel_ref.clone(),
            queue: Arc::new(WriteQueue::new(Arc::new(writer))),
        }
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
    settle(
        env,
        async move {
            match ack {
                WriteAck::Now(outcome) => outcome,
                WriteAck::Later(receiver) => receiver.await.unwrap_or(Err(IIIError::Shutdown)),
            }
        },
        |_, ()| Ok(()),
    )
}

#[napi]
impl NativeWriter {
    /// A writer for the ref (JSON text) on the engine at `address` (connects on first use).
    #[napi(factory)]
    pub fn from_ref(address: String, ref_json: String) -> Result<Self> {
        let channel_ref = parse_ref(&ref_json)?;
        Ok(Self::from_core(
            iii_sdk::ChannelWriter::new(&address, &channel_ref),
            &channel_ref,
        ))
    }

    /// This end's ref as JSON text.
    #[napi(getter)]
    pub fn ref_json(&self) -> String {
        ref_json(&self.channel_ref)
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
    channel_ref: StreamChannelRef,
    reader: Arc<iii_sdk::ChannelReader>,
    /// Text messages handed to the JS callback so far. Each batch of chunks carries the count
    /// reached when it was read, so the JS side can deliver those messages first (callbacks
    /// and promises reach JS through different queues).
    messages_sent_to_js: Arc<AtomicU64>,
}

impl NativeReader {
    /// Wraps a core reader.
    pub(crate) fn from_core(
        reader: iii_sdk::ChannelReader,
        channel_ref: &StreamChannelRef,
    ) -> Self {
        Self {
            channel_ref: channel_ref.clone(),
            reader: Arc::new(reader),
            messages_sent_to_js: Arc::default(),
        }
    }
}

/// Bytes a `readChunks` batch takes at most, beyond its first chunk, from what the socket
/// already holds.
const BATCH_BYTES: usize = 1 << 20;

/// The next chunk if it is at hand without waiting: `None` when the read would wait, else its
/// outcome. A read dropped while waiting loses nothing (the socket keeps what it has not
/// handed over; an end or error met is recorded and reported again by the next read).
fn chunk_at_hand(
    reader: &iii_sdk::ChannelReader,
) -> Option<std::result::Result<Option<Bytes>, IIIError>> {
    use std::task::{Context, Poll, Waker};
    let read = std::pin::pin!(reader.next_binary());
    match read.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(outcome) => Some(outcome),
        Poll::Pending => None,
    }
}

/// Chunks read from the socket, copied into an array of JS Buffers on the JavaScript thread
/// (one copy, into memory V8 allocates and frees itself). The array also carries `messages`:
/// how many text messages had been handed to JS when the batch was read (an empty array with
/// `end: true` is the clean end).
struct Chunks {
    chunks: Vec<Bytes>,
    end: bool,
    messages: u64,
}

impl ToNapiValue for Chunks {
    unsafe fn to_napi_value(raw_env: sys::napi_env, batch: Self) -> Result<sys::napi_value> {
        let env = Env::from_raw(raw_env);
        let mut array = std::ptr::null_mut();
        check_status!(
            unsafe { sys::napi_create_array_with_length(raw_env, batch.chunks.len(), &mut array) },
            "cannot create the array of chunks"
        )?;
        let mut object = Object::from_raw(raw_env, array);
        object.set_named_property("messages", batch.messages as f64)?;
        object.set_named_property("end", batch.end)?;
        for (index, chunk) in batch.chunks.iter().enumerate() {
            let buffer = BufferSlice::copy_from(&env, chunk)?;
            let value = unsafe { <&BufferSlice as ToNapiValue>::to_napi_value(raw_env, &buffer)? };
            check_status!(
                unsafe { sys::napi_set_element(raw_env, array, index as u32, value) },
                "cannot fill the array of chunks"
            )?;
        }
        Ok(array)
    }
}

/// A message callback: called with each text message, never keeping the process alive.
type MessageCallback = ThreadsafeFunction<String, (), String, Status, false, true>;

#[napi]
impl NativeReader {
    /// A reader for the ref (JSON text) on the engine at `address` (connects on first use).
    #[napi(factory)]
    pub fn from_ref(address: String, ref_json: String) -> Result<Self> {
        let channel_ref = parse_ref(&ref_json)?;
        Ok(Self::from_core(
            iii_sdk::ChannelReader::new(&address, &channel_ref),
            &channel_ref,
        ))
    }

    /// This end's ref as JSON text.
    #[napi(getter)]
    pub fn ref_json(&self) -> String {
        ref_json(&self.channel_ref)
    }

    /// The next chunks: waits for one, then takes the ones already at hand (up to 1 MiB in all),
    /// so that a busy reader crosses to the runtime and back once per batch instead of once
    /// per chunk. An empty array with `end` set at a clean end; `messages` counts the text
    /// messages handed to JS before these bytes. An aborted or lost writer rejects with its `code`.
    #[napi(ts_return_type = "Promise<Buffer[] & { messages: number, end: boolean }>")]
    pub fn read_chunks<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let reader = self.reader.clone();
        let messages = self.messages_sent_to_js.clone();
        settle(
            env,
            async move {
                // Messages met while reading are handed to JS before `next_binary` returns,
                // so the count read after it covers every message sent before these bytes.
                let Some(first) = reader.next_binary().await? else {
                    let messages = messages.load(Ordering::Acquire);
                    return Ok(Chunks {
                        chunks: Vec::new(),
                        end: true,
                        messages,
                    });
                };
                let mut size = first.len();
                let mut chunks = vec![first];
                while size < BATCH_BYTES {
                    // An end or an error stops the batch; the next call reports it.
                    let Some(Ok(Some(chunk))) = chunk_at_hand(&reader) else {
                        break;
                    };
                    size += chunk.len();
                    chunks.push(chunk);
                }
                let messages = messages.load(Ordering::Acquire);
                Ok(Chunks {
                    chunks,
                    end: false,
                    messages,
                })
            },
            |_, chunks: Chunks| Ok(chunks),
        )
    }

    /// Calls `callback` with each text message; starts receiving if nothing reads yet.
    #[napi(ts_args_type = "callback: (message: string) => void")]
    pub fn on_message(&self, callback: Function<String, ()>) -> Result<()> {
        let callback: MessageCallback = callback
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        let reader = self.reader.clone();
        let sent = self.messages_sent_to_js.clone();
        iii_sdk::runtime().spawn(async move {
            reader
                .on_message(move |message| {
                    if callback.call(message, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
                    {
                        sent.fetch_add(1, Ordering::Release);
                    }
                })
                .await;
        });
        Ok(())
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
