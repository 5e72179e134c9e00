//! The response half of an HTTP invocation: [`HttpResponse`] writes the engine's response
//! channel — control messages first (status, headers), then the body as binary frames — and
//! [`Completion`] ends that channel once the handler is done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use iii_protocol::StreamChannelRef;
use serde_json::{Map, Value, json};

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
}

impl HttpResponse {
    /// The response writing to the `response` channel end `channel_ref`.
    pub(super) fn new(address: &str, channel_ref: &StreamChannelRef) -> Self {
        Self {
            writer: Arc::new(ChannelWriter::new(address, channel_ref)),
            finished: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sets the status code (default 200). Only effective before the first body byte.
    pub async fn status(&self, status_code: u16) -> Result<(), IIIError> {
        self.writer
            .send_message(&set_status_message(status_code))
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
        match set_headers_message(headers) {
            Some(message) => self.writer.send_message(&message).await,
            None => Ok(()),
        }
    }

    /// Writes part of the body (sent in frames of at most 64 KiB; waits while the client is
    /// slower than the handler).
    pub async fn write(&self, data: &[u8]) -> Result<(), IIIError> {
        self.writer.write(data).await
    }

    /// Writes part of the body without copying it.
    pub async fn write_bytes(&self, data: Bytes) -> Result<(), IIIError> {
        self.writer.write_bytes(data).await
    }

    /// Ends the response cleanly; returns once the engine holds the whole body. Closing again
    /// is a no-op.
    pub async fn close(&self) -> Result<(), IIIError> {
        let closed = self.writer.close().await;
        self.finished.store(true, Ordering::Release);
        closed
    }

    /// Ends the response as failed: the client's connection is cut without the body's proper
    /// end, so it sees a truncated response rather than a complete one. `reason` is for logs.
    pub async fn abort(&self, reason: &str) -> Result<(), IIIError> {
        let aborted = self.writer.abort(reason).await;
        self.finished.store(true, Ordering::Release);
        aborted
    }

    /// What ends the response after the handler returns.
    pub(super) fn completion(&self) -> Completion {
        Completion {
            writer: self.writer.clone(),
            finished: self.finished.clone(),
        }
    }
}

/// Ends a response according to how its handler finished.
pub(super) struct Completion {
    writer: Arc<ChannelWriter>,
    finished: Arc<AtomicBool>,
}

impl Completion {
    /// After `Ok`: closes the response unless the handler did. After `Err`: aborts it with the
    /// error's text if anything was sent (so the client sees a truncated response), else leaves
    /// the channel unused so the engine answers with an error status; returns the error.
    pub(super) async fn finish(self, outcome: Result<(), IIIError>) -> Result<(), IIIError> {
        let finished = self.finished.load(Ordering::Acquire);
        match outcome {
            Ok(()) if finished => Ok(()),
            Ok(()) => self.writer.close().await,
            Err(error) => {
                if !finished
                    && !self.writer.is_untouched()
                    && let Err(abort_error) = self.writer.abort(&error.to_string()).await
                {
                    tracing::debug!(%abort_error, "could not abort an HTTP response");
                }
                Err(error)
            }
        }
    }
}

/// `{"type":"set_status","status_code":…}`.
pub(super) fn set_status_message(status_code: u16) -> String {
    json!({"type": "set_status", "status_code": status_code}).to_string()
}

/// `{"type":"set_headers","headers":{…}}` with lower-case names (a repeated name's values as
/// a list), or `None` for no headers.
pub(super) fn set_headers_message<I, K, V>(headers: I) -> Option<String>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut names = Map::new();
    for (name, value) in headers {
        let name = name.as_ref().to_ascii_lowercase();
        let value = Value::String(value.as_ref().to_string());
        match names.get_mut(&name) {
            None => {
                names.insert(name, value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
        }
    }
    if names.is_empty() {
        return None;
    }
    Some(json!({"type": "set_headers", "headers": names}).to_string())
}
