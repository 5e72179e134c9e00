//! Channel ends carried as numbered streams inside a main WebSocket (docs/PROTOCOL.md §4.8),
//! for the engine and the SDK alike.
//!
//! A [`StreamSocket`] behaves like the WebSocket of a channel end — a `Stream` of messages
//! and a `Sink` for them, binary, text and close — so the code that drives a channel socket
//! drives a stream unchanged. Underneath, its frames travel in the connection's outbound queue
//! and arrive through [`StreamTable::route`], called by the connection's read loop.
//!
//! Flow control is per stream and in bytes, so one slow stream never holds up another or the
//! connection: each side may send [`INITIAL_WINDOW`] payload bytes, and the receiver grants
//! more (`credit`) as its consumer takes them. Bytes held for a stream are bounded by that
//! window; a peer that sends past it breaks the stream, never the process.
#![deny(missing_docs)]

mod shared;
mod socket;

pub use socket::StreamSocket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use iii_protocol::limits::MAX_CHANNEL_FRAME_BYTES;
use iii_protocol::streams::{self, INITIAL_WINDOW, Op};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};

use shared::Shared;

/// What a routed frame asks of the connection.
#[derive(Debug)]
pub enum Routed {
    /// Nothing more: the frame went to its stream (or was dropped, see the log).
    Done,
    /// The peer opens stream `socket` with this payload (its channel ref as JSON). Only the
    /// engine gets these; it answers with [`StreamSocket::opened`] or a close.
    Open(StreamSocket, Bytes),
}

/// The streams of one connection.
pub struct StreamTable {
    streams: Mutex<HashMap<u32, Arc<Shared>>>,
    out: mpsc::Sender<WsMessage>,
    /// Answer a peer's close at once (the worker's side, as a WebSocket client library does)
    /// instead of when the stream is flushed (the engine's side, which must first hand on
    /// everything that came before the close).
    pub(crate) echo_at_once: bool,
    /// The connection has ended.
    gone: AtomicBool,
    next_id: AtomicU32,
    /// The runtime that sends control frames when the queue is full.
    runtime: tokio::runtime::Handle,
    /// Control frames waiting in tasks for room in the queue.
    parked: Arc<AtomicUsize>,
}

impl std::fmt::Debug for StreamTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTable")
            .field("streams", &lock(&self.streams).len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StreamTable {
    /// The engine's table for a connection whose outbound queue is `out`; control frames
    /// that find the queue full are sent from a task on `runtime`.
    pub fn for_engine(out: mpsc::Sender<WsMessage>, runtime: tokio::runtime::Handle) -> Arc<Self> {
        Self::new(out, false, runtime)
    }

    /// A worker's table for a connection whose outbound queue is `out` (see
    /// [`for_engine`](Self::for_engine) for `runtime`).
    pub fn for_worker(out: mpsc::Sender<WsMessage>, runtime: tokio::runtime::Handle) -> Arc<Self> {
        Self::new(out, true, runtime)
    }

    fn new(
        out: mpsc::Sender<WsMessage>,
        echo_at_once: bool,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Self> {
        Arc::new(Self {
            streams: Mutex::default(),
            out,
            echo_at_once,
            gone: AtomicBool::new(false),
            next_id: AtomicU32::new(1),
            runtime,
            parked: Arc::default(),
        })
    }

    /// True once the connection has ended.
    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// Streams open now.
    pub fn len(&self) -> usize {
        lock(&self.streams).len()
    }

    /// True when no stream is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The worker's side: opens a new stream for the channel end whose ref (JSON) is
    /// `channel_ref`. Wait for [`StreamSocket::opened`] before using it. `None` once the
    /// connection has ended.
    pub async fn open(self: &Arc<Self>, channel_ref: &[u8]) -> Option<StreamSocket> {
        let socket = {
            let mut streams = lock(&self.streams);
            if self.is_gone() || streams.len() >= MAX_STREAMS {
                return None;
            }
            let id = loop {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                if id != 0 && !streams.contains_key(&id) {
                    break id;
                }
            };
            let shared = Shared::new(id);
            streams.insert(id, shared.clone());
            StreamSocket::new(shared, self.clone())
        };
        socket.send_ordered(Op::Open, channel_ref).await;
        Some(socket)
    }

    /// Handles one binary frame of the main socket. Frames for streams that are gone are
    /// dropped; frames that break the rules end their stream (logged), never the connection.
    pub fn route(self: &Arc<Self>, frame: Bytes) -> Routed {
        let (op, id) = match streams::decode(&frame) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::debug!(
                    reason = error.0,
                    "ignoring a binary frame that is not a stream frame"
                );
                return Routed::Done;
            }
        };
        let payload = frame.slice(streams::HEADER_BYTES..);
        if op == Op::Open {
            return self.accept(id, payload);
        }
        let Some(shared) = lock(&self.streams).get(&id).cloned() else {
            tracing::trace!(stream = id, ?op, "a frame for a stream that is gone");
            return Routed::Done;
        };
        let too_big = payload.len() > MAX_CHANNEL_FRAME_BYTES;
        let echo = match op {
            Op::Data | Op::Text if too_big => shared.violate("a frame over 16 MiB"),
            Op::Open => None,
            Op::Opened => {
                shared.opened();
                None
            }
            Op::Data => shared.receive(WsMessage::Binary(payload)),
            // Checked once and kept without a copy.
            Op::Text => match Utf8Bytes::try_from(payload) {
                Ok(text) => shared.receive(WsMessage::Text(text)),
                Err(_) => shared.violate("a text frame that is not UTF-8"),
            },
            Op::Close => match streams::parse_close(&payload) {
                Some((code, reason)) => shared.peer_closed(code, reason),
                None => shared.violate("a malformed close"),
            },
            Op::Credit => match streams::parse_credit(&payload) {
                Some(bytes) => {
                    shared.credit(bytes);
                    None
                }
                None => shared.violate("a malformed credit"),
            },
        };
        if let Some((code, reason)) = echo {
            self.send(streams::encode(
                Op::Close,
                id,
                &streams::close_payload(code, &reason),
            ));
        }
        Routed::Done
    }

    /// The engine's side of an `open`: a new stream, unless the id is taken.
    fn accept(self: &Arc<Self>, id: u32, payload: Bytes) -> Routed {
        let mut streams = lock(&self.streams);
        if id == 0 || streams.contains_key(&id) || self.is_gone() {
            tracing::debug!(stream = id, "ignoring an open of a stream id in use");
            return Routed::Done;
        }
        if streams.len() >= MAX_STREAMS {
            drop(streams);
            tracing::debug!(stream = id, "refusing a stream past the connection's limit");
            let close = streams::close_payload(TOO_MANY_STREAMS, "too_many_streams");
            self.send(streams::encode(Op::Close, id, &close));
            return Routed::Done;
        }
        let shared = Shared::new(id);
        streams.insert(id, shared.clone());
        drop(streams);
        Routed::Open(StreamSocket::new(shared, self.clone()), payload)
    }

    /// The connection ended: every stream ends as if its socket had dropped.
    pub fn shut(&self) {
        self.shut_with(None);
    }

    /// Like [`shut`](Self::shut), but the connection closed with `close` (code, reason), a
    /// status that holds for every stream on it (1001, the engine going away): each stream
    /// that has not been closed by its peer reads that close after what it had received.
    pub fn shut_with(&self, close: Option<(u16, String)>) {
        self.gone.store(true, Ordering::Release);
        let streams: Vec<_> = lock(&self.streams).drain().map(|(_, s)| s).collect();
        for shared in streams {
            shared.connection_gone(close.as_ref());
        }
    }

    /// Forgets stream `id` (its socket was dropped).
    fn forget(&self, id: u32) {
        lock(&self.streams).remove(&id);
    }

    /// Queues a control frame (credit, close) now if there is room, else from a task: they
    /// are tiny and must not be lost while the peer reads (a stream waiting for credit would
    /// wait forever). A peer that reads nothing cannot make them pile up: past
    /// [`MAX_PARKED_CONTROL`] waiting frames they are dropped, and the peer, which reads
    /// nothing, misses nothing it would have read.
    fn send(&self, frame: Vec<u8>) {
        let message = WsMessage::Binary(frame.into());
        match self.out.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(message)) => {
                if self.parked.fetch_add(1, Ordering::AcqRel) >= MAX_PARKED_CONTROL {
                    self.parked.fetch_sub(1, Ordering::AcqRel);
                    tracing::warn!(
                        "a connection reads nothing: a stream control frame was dropped"
                    );
                    return;
                }
                let out = self.out.clone();
                let parked = self.parked.clone();
                self.runtime.spawn(async move {
                    let _ = out.send(message).await;
                    parked.fetch_sub(1, Ordering::AcqRel);
                });
            }
        }
    }
}

/// Streams one connection may have open; an `open` past it is refused with
/// [`TOO_MANY_STREAMS`] (the worker's side then opens a socket instead).
pub const MAX_STREAMS: usize = 4096;

/// Close code of an `open` past [`MAX_STREAMS`].
pub const TOO_MANY_STREAMS: u16 = 1008;

/// Control frames of one connection that may wait for room in its queue at once.
const MAX_PARKED_CONTROL: usize = 4096;

/// Payload bytes a stream's consumer takes before its side grants them back (granted earlier
/// when the consumer has taken everything and the sender is down to half its window).
const GRANT_AFTER: u64 = INITIAL_WINDOW as u64 / 4;
