//! The outbound half of a main socket: a bounded queue that anyone may send to (awaiting
//! when it is full, so memory stays bounded), drained by one writer task that writes every
//! ready message and then flushes once.

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use iii_protocol::Message;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;

use crate::lifecycle::Lifeline;
use crate::ws::{CLOSE_GRACE, WsStream};

/// Messages a connection's queue holds before senders wait.
pub(crate) const OUTBOX_CAPACITY: usize = 1024;

/// Most messages written between two flushes.
const MAX_BATCH: usize = 256;

/// The write half of a main socket.
pub(crate) type Sink = SplitSink<WsStream, WsMessage>;

/// A handle to one connection's outbound queue.
#[derive(Clone)]
pub(crate) struct Outbox(mpsc::Sender<WsMessage>);

impl Outbox {
    /// Wraps a queue's sender.
    pub(crate) fn new(sender: mpsc::Sender<WsMessage>) -> Self {
        Self(sender)
    }

    /// Queues `message`, waiting while the queue is full. False once the connection is gone.
    pub(crate) async fn send(&self, message: &Message) -> bool {
        self.send_text(message.to_json()).await
    }

    /// Queues one JSON text frame.
    pub(crate) async fn send_text(&self, text: String) -> bool {
        self.0.send(WsMessage::text(text)).await.is_ok()
    }

    /// Queues a WebSocket Ping if there is room now (a worker whose queue is full is not
    /// reading, and its silence is judged all the same). False if it was not queued.
    pub(crate) fn ping(&self) -> bool {
        self.0.try_send(WsMessage::Ping(Default::default())).is_ok()
    }

    /// Queues `message` only if there is room now: for what the engine tells a worker on
    /// its own account (announcements, forwarded trigger registrations), so that one worker
    /// that stops reading cannot hold up anyone else. False (logged) if it was not queued.
    pub(crate) fn offer(&self, message: &Message) -> bool {
        let queued = self.0.try_send(WsMessage::text(message.to_json())).is_ok();
        if !queued {
            tracing::warn!("a worker's queue is full (or it is gone): a message to it was dropped");
        }
        queued
    }
}

/// Drains `queue` into `sink` until told to stop (with the close frame to send, `None` to
/// complete a close the peer started) or the socket fails. Returns the sink so the caller can
/// linger on the socket.
pub(crate) async fn run_writer(
    mut sink: Sink,
    mut queue: mpsc::Receiver<WsMessage>,
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
            first = queue.recv() => first,
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
            written = write_batch(&mut sink, &mut queue, first) => written,
        };
        if let Err(error) = written {
            tracing::debug!(%error, "main socket write failed");
            return sink;
        }
    }
}

async fn write_batch(
    sink: &mut Sink,
    queue: &mut mpsc::Receiver<WsMessage>,
    first: WsMessage,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    sink.feed(first).await?;
    for _ in 1..MAX_BATCH {
        match queue.try_recv() {
            Ok(next) => sink.feed(next).await?,
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
