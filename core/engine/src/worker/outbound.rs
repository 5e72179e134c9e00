//! The outbound half of a main socket: a queue of JSON messages bounded in bytes that anyone
//! may send to without waiting ([`Backlog`] decides what happens past the bound), a queue of
//! channel stream frames, and one writer task that writes every ready message and then flushes
//! once.

use std::sync::Arc;
use std::time::Instant;

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use iii_protocol::Message;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;

use super::backlog::Backlog;
use crate::lifecycle::Lifeline;
use crate::ws::{CLOSE_GRACE, WsStream};

/// Messages a connection's queue holds at most: far more than its bytes allow (each counts
/// [`MESSAGE_OVERHEAD`] besides its text), so what bounds it is its bytes ([`Backlog`]). The
/// queue allocates as it fills, so the number costs nothing.
pub(crate) const OUTBOX_MESSAGES: usize = 1 << 20;

/// Bytes a queued message counts for besides its text: the queue slot and the allocation
/// header, so a flood of tiny messages is bounded by the same byte bound as large ones.
const MESSAGE_OVERHEAD: usize = 64;

/// Channel stream frames queued for a connection before their senders wait (each stream is
/// also held to its credit window, docs/PROTOCOL.md §4.8).
pub(crate) const STREAM_FRAMES_QUEUED: usize = 1024;

/// Most messages written between two flushes.
const MAX_BATCH: usize = 256;

/// The write half of a main socket.
pub(crate) type Sink = SplitSink<WsStream, WsMessage>;

/// Why a call was not put on a connection's queue.
pub(crate) enum Refused {
    /// The queue is over its bound: the worker is not keeping up (bytes waiting).
    Busy(usize),
    /// The connection is gone.
    Gone,
}

/// A handle to one connection's outbound queue. Nothing sent here ever waits: calls are
/// refused when the queue is over its bound, and a connection that cannot take its answers
/// is dropped as a slow consumer ([`Backlog`]).
#[derive(Clone)]
pub(crate) struct Outbox {
    queue: mpsc::Sender<WsMessage>,
    backlog: Arc<Backlog>,
}

impl Outbox {
    /// Wraps a queue's sender and the backlog its writer counts down.
    pub(crate) fn new(queue: mpsc::Sender<WsMessage>, backlog: Arc<Backlog>) -> Self {
        Self { queue, backlog }
    }

    /// An outbox on `queue` without a bound, for unit tests.
    #[cfg(test)]
    pub(crate) fn unbounded(queue: mpsc::Sender<WsMessage>) -> Self {
        let deadline = std::time::Duration::from_secs(30);
        Self::new(queue, Arc::new(Backlog::new(usize::MAX, 0, deadline)))
    }

    /// The connection's backlog.
    pub(crate) fn backlog(&self) -> &Backlog {
        &self.backlog
    }

    /// Counts a call sent to this connection until the returned guard is dropped.
    pub(crate) fn start_call(&self) -> super::backlog::InFlight {
        super::backlog::InFlight::start(&self.backlog)
    }

    /// Calls sent to this connection that wait for its answer.
    pub(crate) fn calls_in_flight(&self) -> usize {
        self.backlog.in_flight()
    }

    /// True when calls to this connection would be refused now (its queue is at its bound).
    pub(crate) fn is_over(&self) -> bool {
        self.backlog.is_full()
    }

    /// Queues a call, or refuses it at once when the worker's queue is over its bound (a
    /// worker over it past the deadline is dropped as a slow consumer).
    pub(crate) fn call(&self, message: &Message) -> Result<(), Refused> {
        let text = message.to_json();
        if self.backlog.refuses_call(text.len() + MESSAGE_OVERHEAD) {
            if self.backlog.overdue(Instant::now()) {
                tracing::warn!(
                    "a worker stayed over its queue bound: dropping it as a slow consumer"
                );
                self.backlog.drop_as_slow();
            }
            return Err(Refused::Busy(self.backlog.queued()));
        }
        self.push(text).map_err(|error| match error {
            TrySendError::Full(_) => Refused::Busy(self.backlog.queued()),
            TrySendError::Closed(_) => Refused::Gone,
        })
    }

    /// Queues an answer or the engine's own message (a reply the connection asked for is never
    /// refused for its size). A connection whose queue cannot take it any more is dropped as a
    /// slow consumer. False if it was not queued.
    pub(crate) fn send(&self, message: &Message) -> bool {
        self.send_text(message.to_json())
    }

    /// Queues one JSON text frame, like [`send`](Self::send).
    pub(crate) fn send_text(&self, text: String) -> bool {
        match self.push(text) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::warn!("a worker's queue is full: dropping it as a slow consumer");
                self.backlog.drop_as_slow();
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a WebSocket Ping if there is room now (a worker whose queue is full is not
    /// reading, and its silence is judged all the same). False if it was not queued.
    pub(crate) fn ping(&self) -> bool {
        self.queue
            .try_send(WsMessage::Ping(Default::default()))
            .is_ok()
    }

    /// Queues `message` only if the queue is under its bound, exactly as a call (a worker
    /// over it past the deadline is dropped as a slow consumer): for what the engine tells a
    /// worker on its own account (announcements, forwarded trigger registrations), so that one
    /// worker that stops reading cannot hold up anyone else. False (logged) if not queued.
    pub(crate) fn offer(&self, message: &Message) -> bool {
        let queued = self.call(message).is_ok();
        if !queued {
            tracing::warn!("a worker's queue is full (or it is gone): a message to it was dropped");
        }
        queued
    }

    /// Counts `text` into the backlog and queues it; counted out again if it is not queued.
    fn push(&self, text: String) -> Result<(), TrySendError<WsMessage>> {
        let len = text.len() + MESSAGE_OVERHEAD;
        self.backlog.add(len);
        self.queue.try_send(WsMessage::text(text)).inspect_err(|_| {
            self.backlog.remove(len);
        })
    }
}

/// The bytes a queued message counts for in its connection's backlog.
fn counted_len(message: &WsMessage) -> usize {
    match message {
        WsMessage::Text(text) => text.len() + MESSAGE_OVERHEAD,
        _ => 0,
    }
}

/// Both queues of one connection, drained by its writer task.
pub(crate) struct Queues {
    /// JSON messages (and pings), counted in `backlog`.
    pub(crate) messages: mpsc::Receiver<WsMessage>,
    /// Channel stream frames.
    pub(crate) frames: mpsc::Receiver<WsMessage>,
    /// The bytes the messages hold.
    pub(crate) backlog: Arc<Backlog>,
}

/// Drains the queues into `sink` (taking from the two in turn, so neither calls nor channel
/// streams can starve the other) until told to stop (with the close frame to send, `None` to complete
/// a close the peer started) or the socket fails. Returns the sink so the caller can linger.
pub(crate) async fn run_writer(
    mut sink: Sink,
    mut queues: Queues,
    mut stop: oneshot::Receiver<Option<CloseFrame>>,
    _lifeline: Lifeline,
) -> Sink {
    loop {
        let first = tokio::select! {
            biased;
            close = &mut stop => {
                close_sink(&mut sink, close.ok().flatten()).await;
                return sink;
            }
            first = queues.messages.recv() => first,
            Some(frame) = queues.frames.recv() => Some(frame),
        };
        let Some(first) = first else {
            close_sink(&mut sink, None).await;
            return sink;
        };
        let written = tokio::select! {
            biased;
            close = &mut stop => {
                close_sink(&mut sink, close.ok().flatten()).await;
                return sink;
            }
            written = write_batch(&mut sink, &mut queues, first) => written,
        };
        if let Err(error) = written {
            tracing::debug!(%error, "main socket write failed");
            return sink;
        }
    }
}

async fn write_batch(
    sink: &mut Sink,
    queues: &mut Queues,
    first: WsMessage,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut message = first;
    for written in 1..=MAX_BATCH {
        let len = counted_len(&message);
        let ping = matches!(message, WsMessage::Ping(_));
        sink.feed(message).await?;
        queues.backlog.remove(len);
        if ping {
            queues.backlog.ping_written();
        }
        if written == MAX_BATCH {
            break;
        }
        // In turn: a message, then a frame, then a message…, each falling back on the other
        // queue when its own is empty.
        let next = if written % 2 == 1 {
            (queues.frames.try_recv()).or_else(|_| queues.messages.try_recv())
        } else {
            (queues.messages.try_recv()).or_else(|_| queues.frames.try_recv())
        };
        match next {
            Ok(next) => message = next,
            Err(_) => break,
        }
    }
    sink.flush().await
}

async fn close_sink(sink: &mut Sink, frame: Option<CloseFrame>) {
    let closing = async {
        match frame {
            Some(frame) => sink.send(WsMessage::Close(Some(frame))).await,
            None => sink.close().await,
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, closing).await;
}
