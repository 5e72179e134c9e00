//! The reading end of a channel.
//!
//! One ordered pull API underlies every way of reading: [`ChannelReader::next_event`] gives the
//! next frame in wire order, bytes or a text message, and [`ChannelReader::try_next_event`]
//! gives it only if it is already at hand. [`next_binary`](ChannelReader::next_binary),
//! [`read_all`](ChannelReader::read_all) and the `on_message` callbacks are built on it, and so
//! is every binding's reader: a message is always seen before the bytes written after it.
//!
//! The socket is opened on the home runtime (see [`crate::runtime`]) and read directly by the
//! consumer's future (no task hop per frame; a consumer that stops reading stops the socket,
//! and TCP carries the backpressure to the engine). While nobody reads yet, a pump task on the
//! runtime delivers text messages to the callbacks (see [`pump`](super::pump)). Only the
//! engine's `1000` is a clean end; every other close, or a socket that just drops, is an error.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use iii_protocol::StreamChannelRef;
use iii_protocol::close::COMPLETE;
use tokio::sync::{Mutex, Notify, oneshot, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::stats::{ChannelStats, StatsCounter};
use super::{ChannelSocket, Connecting, Target, close_frame, end_status, pump, socket_lost};
use crate::IIIError;

/// Text messages a reader keeps for a consumer that has not taken them yet, at most: those
/// waiting for the first `on_message` callback here, and those a binding's pull API holds.
pub const MAX_KEPT_MESSAGES: usize = 1024;
/// Bytes of text a reader keeps for a consumer that has not taken them yet, at most.
pub const MAX_KEPT_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// How long a closing reader waits for the engine to acknowledge its Close.
const CLOSE_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// One frame of a channel, in the order the writer sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// Bytes of the stream (at most 64 KiB).
    Data(Bytes),
    /// A text message sent alongside the bytes.
    Message(String),
}

/// Binary chunks taken together by [`ChannelReader::next_chunks`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkBatch {
    /// The chunks, in wire order.
    pub chunks: Vec<Bytes>,
    /// The stream ended cleanly after them.
    pub end: bool,
}

/// What a read does with a text message it meets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Texts {
    /// Returns it, as an event.
    Return,
    /// Hands it to the `on_message` callbacks and reads on.
    Deliver,
}

/// A text-message callback.
type MessageCallback = Arc<dyn Fn(String) + Send + Sync + 'static>;

#[derive(Default)]
struct Messages {
    callbacks: Vec<MessageCallback>,
    pending: VecDeque<String>,
    pending_bytes: usize,
}

/// The socket of a reader, shared by the consumer and the pump.
#[allow(clippy::large_enum_variant)] // one per reader, behind its `Arc`: boxing buys nothing
pub(super) enum Socket {
    /// Not connected yet (lazy).
    Idle,
    /// Connecting.
    Connecting(Connecting),
    /// Connected.
    Open(ChannelSocket),
    /// Ended (see [`Shared::end`]).
    Ended,
}

/// State shared by a reader's handle and its pump.
pub(super) struct Shared {
    pub(super) target: Target,
    /// How the stream ended: `Ok(())` for a clean end.
    end: OnceLock<Result<(), IIIError>>,
    messages: StdMutex<Messages>,
    /// Binary frames the pump read before a consumer took over (bounded by the pump).
    pub(super) stash: StdMutex<VecDeque<Bytes>>,
    /// Flipped by [`ChannelReader::close`].
    pub(super) closing: watch::Sender<bool>,
    /// Set once anything read (`next_event`, `next_binary`, …): the consumer drives the socket
    /// from then on.
    pub(super) consumer: AtomicBool,
    /// Tells the pump to hand the socket over.
    pub(super) consumer_arrived: Notify,
    pub(super) socket: Mutex<Socket>,
    /// What this end has received.
    stats: StatsCounter,
}

impl Shared {
    fn messages(&self) -> MutexGuard<'_, Messages> {
        self.messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn stash(&self) -> MutexGuard<'_, VecDeque<Bytes>> {
        self.stash
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands a text message to every callback, or keeps it (bounded) until the first one.
    pub(super) fn deliver(&self, message: String) {
        let mut messages = self.messages();
        if messages.callbacks.is_empty() {
            if messages.pending.len() < MAX_KEPT_MESSAGES
                && messages.pending_bytes + message.len() <= MAX_KEPT_MESSAGE_BYTES
            {
                self.stats.message();
                messages.pending_bytes += message.len();
                messages.pending.push_back(message);
            } else {
                tracing::warn!("channel reader: no on_message callback; dropping a text message");
            }
            return;
        }
        self.stats.message();
        // Called under the lock so that callbacks see messages in order, also while a new
        // callback is being given the kept ones.
        for callback in &messages.callbacks {
            call(callback, message.clone());
        }
    }

    /// Records how the stream ended (first record wins) and returns it.
    pub(super) fn finish(&self, end: Result<(), IIIError>) -> Result<(), IIIError> {
        let _ = self.end.set(end);
        self.end.get().cloned().unwrap_or(Ok(()))
    }

    pub(super) fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Reads the next frame of `socket` that matters to a reader: binary data or text (a text
    /// is returned or delivered, as `texts` says), or the end (recorded, socket state set to
    /// ended). Cancelling it loses nothing: a frame is either returned or still in the socket.
    pub(super) async fn read_event(
        &self,
        state: &mut Socket,
        texts: Texts,
    ) -> Result<Option<ChannelEvent>, IIIError> {
        let Socket::Open(socket) = state else {
            return self.finish(Err(socket_lost(None))).map(|()| None);
        };
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Binary(chunk))) => return Ok(Some(ChannelEvent::Data(chunk))),
                Some(Ok(WsMessage::Text(text))) => {
                    let text = text.as_str().to_owned();
                    match texts {
                        Texts::Return => return Ok(Some(ChannelEvent::Message(text))),
                        Texts::Deliver => self.deliver(text),
                    }
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    let end = match IIIError::from_end_status(end_status(frame.as_ref())) {
                        None => Ok(()),
                        Some(error) => Err(error),
                    };
                    // Recorded first: this future may be cancelled while the echo flushes.
                    let end = self.finish(end);
                    let _ = socket.flush().await;
                    *state = Socket::Ended;
                    return end.map(|()| None);
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    *state = Socket::Ended;
                    return self.finish(Err(socket_lost(Some(error)))).map(|()| None);
                }
                None => {
                    *state = Socket::Ended;
                    return self.finish(Err(socket_lost(None))).map(|()| None);
                }
            }
        }
    }

    /// Connects the socket (on the home runtime) if nobody has yet.
    pub(super) async fn open(&self, state: &mut Socket) -> Result<(), IIIError> {
        if let Socket::Idle = state {
            *state = Socket::Connecting(Connecting::start(&self.target));
        }
        if let Socket::Connecting(connecting) = state {
            match connecting.await {
                Ok(socket) => *state = Socket::Open(socket),
                Err(error) => {
                    *state = Socket::Ended;
                    return self.finish(Err(error));
                }
            }
        }
        match state {
            Socket::Open(_) => Ok(()),
            _ => self.finish(Err(socket_lost(None))),
        }
    }
}

/// Polls `read` once, inside the home runtime: its outcome if ready, `None` if it would wait.
fn poll_once<T>(read: impl std::future::Future<Output = T>) -> Option<T> {
    let _home = crate::runtime::enter_home();
    let read = std::pin::pin!(read);
    match read.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(outcome) => Some(outcome),
        Poll::Pending => None,
    }
}

fn call(callback: &MessageCallback, message: String) {
    if catch_unwind(AssertUnwindSafe(|| callback(message))).is_err() {
        tracing::error!("channel reader: an on_message callback panicked");
    }
}

/// The reading end of a channel: bytes and text messages in wire order with
/// [`next_event`](Self::next_event); or binary data with [`next_binary`](Self::next_binary) or
/// [`read_all`](Self::read_all) and text messages with [`on_message`](Self::on_message).
///
/// The socket opens on the first read or callback registration.
pub struct ChannelReader {
    channel_ref: StreamChannelRef,
    shared: Arc<Shared>,
    pump_started: AtomicBool,
    /// Dropping the reader stops its pump (which then drops the socket).
    _stop: oneshot::Sender<()>,
    stopped: StdMutex<Option<oneshot::Receiver<()>>>,
}

impl ChannelReader {
    /// A reader for `channel_ref` on the engine at `address` (the worker's engine URL).
    pub fn new(address: &str, channel_ref: &StreamChannelRef) -> Self {
        let (stop, stopped) = oneshot::channel();
        Self {
            channel_ref: channel_ref.clone(),
            shared: Arc::new(Shared {
                target: Target::new(address, channel_ref),
                end: OnceLock::new(),
                messages: StdMutex::new(Messages::default()),
                stash: StdMutex::new(VecDeque::new()),
                closing: watch::Sender::new(false),
                consumer: AtomicBool::new(false),
                consumer_arrived: Notify::new(),
                socket: Mutex::new(Socket::Idle),
                stats: StatsCounter::default(),
            }),
            pump_started: AtomicBool::new(false),
            _stop: stop,
            stopped: StdMutex::new(Some(stopped)),
        }
    }

    /// The ref this end was opened from (what to send to another function).
    pub fn channel_ref(&self) -> &StreamChannelRef {
        &self.channel_ref
    }

    /// What this reader has received so far: bytes and frames read, messages returned or
    /// delivered to callbacks, and the time reads waited for data.
    pub fn stats(&self) -> ChannelStats {
        self.shared.stats.snapshot()
    }

    /// The next frame in wire order — bytes or a text message — or `Ok(None)` once the writer
    /// has closed the stream cleanly and everything was read. An aborted, lost or expired
    /// stream is an error, never a clean end. Closing the reader makes a pending call fail
    /// with [`IIIError::ReaderClosed`].
    ///
    /// Messages returned here do not go to `on_message` callbacks (a message the pump already
    /// delivered to them, before the first read, is not returned again).
    pub async fn next_event(&self) -> Result<Option<ChannelEvent>, IIIError> {
        self.read(Texts::Return).await
    }

    /// The next event if it is at hand without waiting: `None` when the read would wait,
    /// else its outcome as [`next_event`](Self::next_event) gives it. Nothing is lost when
    /// it would wait (the socket keeps what it has not handed over), so a binding can take
    /// what is ready in one go and wait only when nothing is.
    pub fn try_next_event(&self) -> Option<Result<Option<ChannelEvent>, IIIError>> {
        poll_once(self.read(Texts::Return))
    }

    /// The next binary chunk (at most 64 KiB), or `Ok(None)` once the writer has closed the
    /// stream cleanly and every chunk was read. Text messages met on the way go to the
    /// `on_message` callbacks first. Errors as [`next_event`](Self::next_event).
    pub async fn next_binary(&self) -> Result<Option<Bytes>, IIIError> {
        loop {
            match self.read(Texts::Deliver).await? {
                Some(ChannelEvent::Data(chunk)) => return Ok(Some(chunk)),
                // A delivering read returns no text; should one come, it is delivered too.
                Some(ChannelEvent::Message(text)) => self.shared.deliver(text),
                None => return Ok(None),
            }
        }
    }

    /// The next binary chunk if it is at hand without waiting (see
    /// [`try_next_event`](Self::try_next_event)); messages met on the way are delivered.
    pub fn try_next_binary(&self) -> Option<Result<Option<Bytes>, IIIError>> {
        poll_once(self.next_binary())
    }

    /// The next binary chunks: one waited for, then those already at hand, up to `max_bytes`
    /// (beyond the first) and `max_chunks` — how a binding feeding another event loop crosses
    /// to it once per batch instead of once per frame. Text messages met on the way go to the
    /// `on_message` callbacks first, as [`next_binary`](Self::next_binary) gives them. An error
    /// after the first chunk ends the batch early; the next call reports it. Errors and the end
    /// as [`next_event`](Self::next_event) gives them.
    pub async fn next_chunks(
        &self,
        max_bytes: usize,
        max_chunks: usize,
    ) -> Result<ChunkBatch, IIIError> {
        let Some(first) = self.next_binary().await? else {
            return Ok(ChunkBatch {
                chunks: Vec::new(),
                end: true,
            });
        };
        let mut bytes = first.len();
        let mut batch = ChunkBatch {
            chunks: vec![first],
            end: false,
        };
        while bytes < max_bytes && batch.chunks.len() < max_chunks {
            match self.try_next_binary() {
                Some(Ok(Some(chunk))) => {
                    bytes += chunk.len();
                    batch.chunks.push(chunk);
                }
                Some(Ok(None)) => {
                    batch.end = true;
                    break;
                }
                Some(Err(_)) | None => break,
            }
        }
        Ok(batch)
    }

    /// Takes over the socket from the pump, then reads the next event.
    async fn read(&self, texts: Texts) -> Result<Option<ChannelEvent>, IIIError> {
        if !self.shared.consumer.swap(true, Ordering::AcqRel) {
            self.shared.consumer_arrived.notify_one();
        }
        let mut closing = self.shared.closing.subscribe();
        let waiting = self.shared.stats.waiting();
        // A message a delivering read meets is counted where it is delivered.
        let returns_texts = matches!(texts, Texts::Return);
        let reading = async {
            let mut state = self.shared.socket.lock().await;
            if let Some(chunk) = self.shared.stash().pop_front() {
                return Ok(Some(ChannelEvent::Data(chunk)));
            }
            if let Some(end) = self.shared.end.get() {
                return end.clone().map(|()| None);
            }
            self.shared.open(&mut state).await?;
            self.shared.read_event(&mut state, texts).await
        };
        let read = tokio::select! {
            biased;
            _ = closing.wait_for(|closing| *closing) => Err(IIIError::ReaderClosed),
            read = reading => read,
        };
        drop(waiting);
        let stats = &self.shared.stats;
        match &read {
            Ok(Some(ChannelEvent::Data(chunk))) => stats.frame(chunk.len()),
            Ok(Some(ChannelEvent::Message(_))) if returns_texts => stats.message(),
            _ => {}
        }
        read
    }

    /// Reads the whole stream into memory.
    pub async fn read_all(&self) -> Result<Vec<u8>, IIIError> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_binary().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all)
    }

    /// Registers a callback for text messages. Messages that arrived before the first callback
    /// are given to it first (up to 1024 of them). A message is always delivered before any
    /// data that followed it is returned by [`next_binary`](Self::next_binary).
    ///
    /// Until the first read, a task delivers messages as they arrive; from then on they are
    /// delivered by [`next_binary`](Self::next_binary) as it meets them
    /// ([`next_event`](Self::next_event) returns them instead). Callbacks must not block: they
    /// run on the SDK runtime's threads or inside `next_binary`.
    pub async fn on_message<F>(&self, callback: F)
    where
        F: Fn(String) + Send + Sync + 'static,
    {
        self.add_message_callback(callback);
    }

    /// [`on_message`](Self::on_message) without a future, for a caller that must have the
    /// callback in place before its next call (a binding registering from its own thread).
    pub fn add_message_callback<F>(&self, callback: F)
    where
        F: Fn(String) + Send + Sync + 'static,
    {
        let callback: MessageCallback = Arc::new(callback);
        {
            let mut messages = self.shared.messages();
            let kept = std::mem::take(&mut messages.pending);
            messages.pending_bytes = 0;
            for message in kept {
                call(&callback, message);
            }
            messages.callbacks.push(callback);
        }
        if !self.shared.consumer.load(Ordering::Acquire)
            && !self.pump_started.swap(true, Ordering::AcqRel)
        {
            let stopped = self
                .stopped
                .lock()
                .ok()
                .and_then(|mut stopped| stopped.take());
            if let Some(stopped) = stopped {
                crate::runtime::home().spawn(pump::run(self.shared.clone(), stopped));
            }
        }
    }

    /// Closes this end: the socket closes (the engine then fails the writer's later writes
    /// with [`IIIError::ReaderClosed`]) and a pending or later read fails with
    /// [`IIIError::ReaderClosed`]. A reader that never connected connects to close, so the
    /// writer learns at once instead of when the channel expires.
    pub async fn close(&self) {
        self.shared.closing.send_replace(true);
        let mut state = self.shared.socket.lock().await;
        let previous = std::mem::replace(&mut *state, Socket::Ended);
        let _ = self.shared.finish(Err(IIIError::ReaderClosed));
        drop(state);
        if let Socket::Idle | Socket::Open(_) | Socket::Connecting(_) = previous {
            let target = self.shared.target.clone();
            // The close handshake runs on the home runtime (it needs its timer).
            let closing = crate::runtime::home().spawn(async move {
                let connected = match previous {
                    Socket::Open(socket) => Ok(socket),
                    Socket::Connecting(connecting) => connecting.await,
                    Socket::Idle => {
                        tokio::time::timeout(CLOSE_ACK_TIMEOUT, Connecting::start(&target))
                            .await
                            .unwrap_or(Err(IIIError::ReaderClosed))
                    }
                    Socket::Ended => return,
                };
                let Ok(mut socket) = connected else { return };
                let frame = WsMessage::Close(Some(close_frame(COMPLETE, "")));
                let acknowledged = async {
                    socket.send(frame).await?;
                    while socket.next().await.transpose()?.is_some() {}
                    Ok::<_, tokio_tungstenite::tungstenite::Error>(())
                };
                let _ = tokio::time::timeout(CLOSE_ACK_TIMEOUT, acknowledged).await;
            });
            let _ = closing.await;
        }
    }
}

impl std::fmt::Debug for ChannelReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelReader")
            .field("url", &self.shared.target.url)
            .finish_non_exhaustive()
    }
}
