//! `NativeWriter` and `NativeReader`: the channel ends as napi classes. The JavaScript layer
//! wraps them in `ChannelWriter` / `ChannelReader` with a Node `Writable` / `Readable`.
//!
//! A writer's operations pass through one ordered queue with a byte window
//! ([`iii_sdk::channel::WriteQueue`]): a write's promise resolves once the core has accepted the chunk
//! within the window, so a `Writable` whose callback follows that promise has the channel's
//! backpressure. A reader pulls one chunk per `read()`; nothing is read ahead.

use std::sync::Arc;

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

    fn push<'env>(&self, env: &'env Env, op: WriteOp) -> Result<Object<'env>> {
        let ack = self.queue.push(op);
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

    /// Queues `data`; resolves once the core accepted it (within the writer's window).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn write<'env>(&self, env: &'env Env, data: BufferSlice) -> Result<Object<'env>> {
        self.push(env, WriteOp::Write(Bytes::copy_from_slice(&data)))
    }

    /// Queues a text message, in order with the writes.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn send_message<'env>(&self, env: &'env Env, message: String) -> Result<Object<'env>> {
        self.push(env, WriteOp::Message(message))
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
        }
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

    /// The next chunk (at most 64 KiB), or `null` at a clean end. An aborted or lost
    /// writer rejects with its `code`.
    #[napi(ts_return_type = "Promise<Buffer | null>")]
    pub fn read<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let reader = self.reader.clone();
        settle(
            env,
            async move { reader.next_binary().await },
            |_, chunk: Option<Bytes>| Ok(chunk.map(|chunk| Buffer::from(Vec::from(chunk)))),
        )
    }

    /// The whole rest of the stream.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn read_all<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let reader = self.reader.clone();
        settle(
            env,
            async move { reader.read_all().await },
            |_, all: Vec<u8>| Ok(Buffer::from(all)),
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
        iii_sdk::runtime().spawn(async move {
            reader
                .on_message(move |message| {
                    callback.call(message, ThreadsafeFunctionCallMode::NonBlocking);
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
