//! The response half of an HTTP invocation: [`HttpResponse`] writes the engine's response
//! channel — control messages first (status, headers), then the body as binary frames — and
//! [`Completion`] ends that channel once the handler is done.
//!
//! A binding whose writes pass through an ordered [`WriteQueue`] (so un-awaited writes keep
//! their order) takes the response's queue with [`HttpResponse::queue`]; from then on status,
//! headers and the final close or abort go through that queue too, after every write before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use iii_protocol::StreamChannelRef;
use iii_protocol::http::ResponseControl;

use crate::channel::{WriteAck, WriteOp, WriteQueue};
use crate::{ChannelWriter, IIIError};

/// The response to an HTTP request, streamed to the client through the engine.
///
/// Set the status and headers first: they travel as control messages on the response channel
/// and take effect only if they arrive **before the first body byte**. The first byte of the
/// body (or the end of the response) sends the status line and headers to the client (status
/// 200 unless set); after that, [`status`](Self::status) and [`headers`](Self::headers) have
/// no effect. Every write then reaches the client as one chunk, at once (what server-sent
/// events need).
///
/// The response ends when the handler returns: cleanly if it returned `Ok` (a forgotten
/// [`close`](Self::close) is done for it), as an abort if it failed. So keep the handler
/// running until the body is written; do not hand the response to a task that outlives it.
#[derive(Debug)]
pub struct HttpResponse {
    /// The response body stream. Shared with the [`http`](super::http) adapter, which ends it
    /// after the handler returns; writing here directly is the same as [`write`](Self::write).
    pub writer: Arc<ChannelWriter>,
    /// Set once the handler closed or aborted the response through this handle.
    finished: Arc<AtomicBool>,
    /// The ordered queue a binding writes through, once it asked for it.
    queue: Arc<OnceLock<Arc<WriteQueue>>>,
}

impl HttpResponse {
    /// The response writing to the `response` channel end `channel_ref`.
    pub(super) fn new(address: &str, channel_ref: &StreamChannelRef) -> Self {
        Self {
            writer: Arc::new(ChannelWriter::new(address, channel_ref)),
            finished: Arc::new(AtomicBool::new(false)),
            queue: Arc::default(),
        }
    }

    /// The ordered write queue over this response's writer, for a binding whose writes must
    /// keep their call order however they are awaited. Once taken, every operation of this
    /// response (status, headers, close, abort, and the end after the handler) goes through it.
    pub fn queue(&self) -> Arc<WriteQueue> {
        self.queue
            .get_or_init(|| Arc::new(WriteQueue::new(self.writer.clone())))
            .clone()
    }

    /// Queues `set_status` on the response's ordered queue now (see [`queue`](Self::queue)),
    /// so it keeps its place before writes made after this call even if nobody awaits it.
    pub fn queue_status(&self, status_code: u16) -> WriteAck {
        let message = ResponseControl::status(status_code).to_json();
        self.queue().push(WriteOp::Message(message))
    }

    /// Queues a status given by a scripting language's handler: a number that is a valid
    /// `u16` is queued as [`queue_status`](Self::queue_status) does; anything else is left
    /// out, as the engine would ignore it.
    pub fn queue_status_value(&self, status_code: &serde_json::Value) -> WriteAck {
        match status_code
            .as_u64()
            .and_then(|code| u16::try_from(code).ok())
        {
            Some(code) => self.queue_status(code),
            None => {
                tracing::debug!(%status_code, "ignoring an invalid HTTP status");
                WriteAck::Now(Ok(()))
            }
        }
    }

    /// Queues `set_headers` on the response's ordered queue now, as
    /// [`queue_status`](Self::queue_status) does.
    pub fn queue_headers<I, K, V>(&self, headers: I) -> WriteAck
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        match ResponseControl::headers(headers) {
            Some(message) => self.queue().push(WriteOp::Message(message.to_json())),
            None => WriteAck::Now(Ok(())),
        }
    }

    /// Queues the clean end of the response now, after everything queued before.
    pub fn queue_close(&self) -> WriteAck {
        self.finished.store(true, Ordering::Release);
        self.queue().push(WriteOp::Close)
    }

    /// Sends `op` through the queue if a binding took it, else straight to the writer.
    async fn send(&self, op: WriteOp) -> Result<(), IIIError> {
        send_op(&self.writer, self.queue.get(), op).await
    }

    /// Sets the status code (default 200). Only effective before the first body byte.
    pub async fn status(&self, status_code: u16) -> Result<(), IIIError> {
        self.send(WriteOp::Message(
            ResponseControl::status(status_code).to_json(),
        ))
        .await
    }

    /// Sets response headers, e.g. `res.headers([("content-type", "text/plain")])` or from a
    /// `HashMap`. Names are sent in lower case; a name given more than once in one call keeps
    /// every value (e.g. several `set-cookie`). Later calls add to earlier ones, replacing
    /// values of the same name. Only effective before the first body byte.
    pub async fn headers<I, K, V>(&self, headers: I) -> Result<(), IIIError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        match ResponseControl::headers(headers) {
            Some(message) => self.send(WriteOp::Message(message.to_json())).await,
            None => Ok(()),
        }
    }

    /// Writes part of the body (sent in frames of at most 64 KiB; waits while the client is
    /// slower than the handler — through a binding's [`queue`](Self::queue), until the write is
    /// within the queue's window).
    pub async fn write(&self, data: &[u8]) -> Result<(), IIIError> {
        match self.queue.get() {
            Some(_) => {
                self.send(WriteOp::Write(Bytes::copy_from_slice(data)))
                    .await
            }
            None => self.writer.write(data).await,
        }
    }

    /// Writes part of the body without copying it.
    pub async fn write_bytes(&self, data: Bytes) -> Result<(), IIIError> {
        self.send(WriteOp::Write(data)).await
    }

    /// Ends the response cleanly; returns once the engine holds the whole body. Closing again
    /// is a no-op.
    pub async fn close(&self) -> Result<(), IIIError> {
        let closed = self.send(WriteOp::Close).await;
        self.finished.store(true, Ordering::Release);
        closed
    }

    /// Ends the response as failed: the client's connection is cut without the body's proper
    /// end, so it sees a truncated response rather than a complete one. `reason` is for logs.
    pub async fn abort(&self, reason: &str) -> Result<(), IIIError> {
        let aborted = self.send(WriteOp::Abort(reason.to_string())).await;
        self.finished.store(true, Ordering::Release);
        aborted
    }

    /// What ends the response after the handler returns.
    pub(super) fn completion(&self) -> Completion {
        Completion {
            writer: self.writer.clone(),
            finished: self.finished.clone(),
            queue: self.queue.clone(),
        }
    }
}

/// Sends `op` through `queue` when there is one (after everything queued before), else
/// straight to `writer`.
async fn send_op(
    writer: &ChannelWriter,
    queue: Option<&Arc<WriteQueue>>,
    op: WriteOp,
) -> Result<(), IIIError> {
    if let Some(queue) = queue {
        return queue.push(op).wait().await;
    }
    match op {
        WriteOp::Write(data) => writer.write_bytes(data).await,
        WriteOp::Message(text) => writer.send_message(&text).await,
        WriteOp::Close => writer.close().await,
        WriteOp::Abort(reason) => writer.abort(&reason).await,
    }
}

/// Ends a response according to how its handler finished.
pub(super) struct Completion {
    writer: Arc<ChannelWriter>,
    finished: Arc<AtomicBool>,
    queue: Arc<OnceLock<Arc<WriteQueue>>>,
}

impl Completion {
    /// After `Ok`: closes the response unless the handler did — except for a non-null result
    /// when nothing was sent, which is a plain result the engine answers with (the channel is
    /// left unused for it). A client that left (`reader_closed`) is no failure here. After
    /// `Err`: aborts the response with the error's text if anything was sent (so the client
    /// sees a truncated response), else leaves the channel unused so the engine answers with
    /// an error status; returns the error.
    pub(super) async fn finish(
        self,
        outcome: Result<serde_json::Value, IIIError>,
    ) -> Result<serde_json::Value, IIIError> {
        let finished = self.finished.load(Ordering::Acquire);
        let queue = self.queue.get();
        let untouched = match queue {
            Some(queue) => queue.is_untouched(),
            None => self.writer.is_untouched(),
        };
        match outcome {
            Ok(result) if finished || (untouched && !result.is_null()) => Ok(result),
            Ok(result) => match send_op(&self.writer, queue, WriteOp::Close).await {
                Ok(()) | Err(IIIError::ReaderClosed) => Ok(result),
                Err(error) => Err(error),
            },
            Err(error) => {
                if !finished
                    && !untouched
                    && let Err(abort_error) =
                        send_op(&self.writer, queue, WriteOp::Abort(error.to_string())).await
                {
                    tracing::debug!(%abort_error, "could not abort an HTTP response");
                }
                Err(error)
            }
        }
    }
}

/// Header pairs from a JSON object `{"name": value | [values]}` as a scripting language's
/// handler gives them (numbers and booleans as text; `null`, objects and nested lists left
/// out, as the engine leaves them out); `None` when `headers` is not an object.
pub fn header_pairs(headers: &serde_json::Value) -> Option<Vec<(String, String)>> {
    use serde_json::Value;
    let Value::Object(headers) = headers else {
        return None;
    };
    let text = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    };
    let mut pairs = Vec::new();
    for (name, value) in headers {
        match value {
            Value::Array(values) => {
                pairs.extend(values.iter().filter_map(text).map(|v| (name.clone(), v)));
            }
            single => pairs.extend(text(single).map(|v| (name.clone(), v))),
        }
    }
    Some(pairs)
}
