//! The writing end of a channel.
//!
//! The socket is opened on the home runtime (see [`crate::runtime`]) and then written directly by the caller's future
//! (frames fed into the socket, one flush per call): no task hop per frame, and a full socket
//! simply makes `write` wait, which is how backpressure from a slow reader reaches the writer.
//! A small watcher task on the runtime reads the socket, so the engine's `4003 reader_closed`
//! (or a lost connection) fails the writer's next operation at once, even a blocked one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use iii_protocol::close::{ABORTED, COMPLETE};
use iii_protocol::limits::CHANNEL_FRAME_BYTES;
use iii_protocol::{EndStatus, StreamChannelRef};
use tokio::sync::{Mutex, oneshot, watch};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use super::stats::{ChannelStats, StatsCounter};
use super::{ChannelSocket, Connecting, Target, close_frame, end_status, socket_lost};
use crate::IIIError;

type Sink = futures_util::stream::SplitSink<ChannelSocket, WsMessage>;
type Stream = futures_util::stream::SplitStream<ChannelSocket>;

/// What the watcher learned from the engine: the close status it sent, or how the socket
/// failed. Set once.
struct Shared {
    peer_end: OnceLock<Result<EndStatus, IIIError>>,
    /// Flipped when `peer_end` is set, to wake a blocked write.
    ended: watch::Sender<bool>,
    /// Set when our close or abort completed: closing again is a no-op.
    closed: AtomicBool,
    /// Set once a stalled write was reported, so a stuck writer warns once.
    warned: AtomicBool,
    /// What this end has written.
    stats: StatsCounter,
}

/// How long a write may wait for the reader before the writer warns (once).
const STALLED_WRITE: Duration = Duration::from_secs(5);

impl Shared {
    fn record(&self, end: Result<EndStatus, IIIError>) {
        if self.peer_end.set(end).is_ok() {
            self.ended.send_replace(true);
        }
    }

    /// The error every operation reports once the engine ended the channel or the socket failed.
    fn failure(&self) -> Option<IIIError> {
        let end = self.peer_end.get()?;
        Some(match end {
            Ok(status) => {
                IIIError::from_end_status(status.clone()).unwrap_or(IIIError::ChannelClosed {
                    code: COMPLETE,
                    reason: "the engine ended the channel".into(),
                })
            }
            Err(error) => error.clone(),
        })
    }
}

enum Conn {
    /// Not connected yet (lazy).
    Idle,
    /// Connecting.
    Connecting(Connecting),
    /// Connected; dropping `_stop` stops the watcher, which drops the socket.
    Open {
        sink: Sink,
        _stop: oneshot::Sender<()>,
    },
    /// Closed or aborted by us, with the outcome.
    Finished(Result<(), IIIError>),
}

/// The writing end of a channel: binary data with [`write`](Self::write), text messages with
/// [`send_message`](Self::send_message), then [`close`](Self::close).
///
/// The socket opens on the first write, message, close or abort (which waits for the connect;
/// a refused connect is [`IIIError::ChannelConnect`]). Dropping a writer without
/// closing it drops the socket, and its reader gets [`IIIError::WriterLost`]. Cancelling a
/// `write` part-way may leave part of its data written.
pub struct ChannelWriter {
    target: Target,
    channel_ref: StreamChannelRef,
    shared: Arc<Shared>,
    conn: Mutex<Conn>,
}

impl ChannelWriter {
    /// A writer for `channel_ref` on the engine at `address` (the worker's engine URL).
    pub fn new(address: &str, channel_ref: &StreamChannelRef) -> Self {
        Self {
            target: Target::new(address, channel_ref),
            channel_ref: channel_ref.clone(),
            shared: Arc::new(Shared {
                peer_end: OnceLock::new(),
                ended: watch::Sender::new(false),
                closed: AtomicBool::new(false),
                warned: AtomicBool::new(false),
                stats: StatsCounter::default(),
            }),
            conn: Mutex::new(Conn::Idle),
        }
    }

    /// The ref this end was opened from (what to send to another function).
    pub fn channel_ref(&self) -> &StreamChannelRef {
        &self.channel_ref
    }

    /// What this writer has written so far: bytes, frames and messages handed to its socket,
    /// and the time writes waited for room (a slow reader's backpressure).
    pub fn stats(&self) -> ChannelStats {
        self.shared.stats.snapshot()
    }

    /// Writes `data` as binary frames of at most 64 KiB (one copy per frame), flushed once.
    /// Waits while the channel's buffer is full.
    pub async fn write(&self, data: &[u8]) -> Result<(), IIIError> {
        let frames = data
            .chunks(CHANNEL_FRAME_BYTES)
            .map(|chunk| WsMessage::Binary(Bytes::copy_from_slice(chunk)));
        self.send_frames(frames).await
    }

    /// Writes `data` without copying it (larger buffers are split with `Bytes::slice`).
    pub async fn write_bytes(&self, data: Bytes) -> Result<(), IIIError> {
        let frames = (0..data.len()).step_by(CHANNEL_FRAME_BYTES).map(|start| {
            WsMessage::Binary(data.slice(start..(start + CHANNEL_FRAME_BYTES).min(data.len())))
        });
        self.send_frames(frames).await
    }

    /// Sends a text message (delivered to the reader's `on_message` callbacks, never mixed
    /// into the byte stream).
    pub async fn send_message(&self, message: &str) -> Result<(), IIIError> {
        let frame = WsMessage::Text(message.to_string().into());
        self.send_frames(std::iter::once(frame)).await
    }

    /// Ends the stream cleanly. Returns once the engine has acknowledged the end, so every
    /// byte written before is safely with the engine. Closing twice is a no-op.
    pub async fn close(&self) -> Result<(), IIIError> {
        self.finish(COMPLETE, "").await
    }

    /// Ends the stream as failed: the reader gets [`IIIError::ChannelAborted`] with `reason`.
    pub async fn abort(&self, reason: &str) -> Result<(), IIIError> {
        self.finish(ABORTED, reason).await
    }

    /// True while this writer has never been used: no socket was opened and nothing reached
    /// the engine. (False while another call holds the writer.)
    pub(crate) fn is_untouched(&self) -> bool {
        self.conn
            .try_lock()
            .is_ok_and(|conn| matches!(*conn, Conn::Idle))
    }

    async fn send_frames(&self, frames: impl Iterator<Item = WsMessage>) -> Result<(), IIIError> {
        self.check()?;
        let mut conn = self.conn.lock().await;
        let sink = self.open(&mut conn).await?;
        let mut ended = self.shared.ended.subscribe();
        // Each frame is timed on its own: a slow reader still makes progress; one that takes
        // nothing for a while is reported (`warn_if_stalled`).
        let stats = &self.shared.stats;
        let sending = async {
            for frame in frames {
                let binary = match &frame {
                    WsMessage::Binary(bytes) => Some(bytes.len()),
                    _ => None,
                };
                self.warn_if_stalled(sink.feed(frame)).await?;
                // Counted once the socket took it.
                match binary {
                    Some(len) => stats.frame(len),
                    None => stats.message(),
                }
            }
            self.warn_if_stalled(sink.flush()).await
        };
        tokio::select! {
            biased;
            _ = ended.wait_for(|ended| *ended) => Err(self.error()),
            sent = sending => sent.map_err(|error| self.lost(error)),
        }
    }

    /// Runs `step` (one frame handed to the socket, or the flush); if it makes no progress
    /// for [`STALLED_WRITE`], logs one warning for this writer naming the channel: the usual
    /// cause is a reader that was never started, which no amount of waiting fixes. A step
    /// that completes at once costs no timer.
    async fn warn_if_stalled<F: Future>(&self, step: F) -> F::Output {
        let mut sending = std::pin::pin!(step);
        let first = std::future::poll_fn(|cx| Poll::Ready(sending.as_mut().poll(cx))).await;
        if let Poll::Ready(sent) = first {
            return sent;
        }
        // It waits: for room in the socket, so for the reader (counted as blocked time, also
        // when the write is cancelled while it waits).
        let _waiting = self.shared.stats.waiting();
        self.wait_warning(sending).await
    }

    /// Finishes a step that did not complete at once, warning (once per writer) if it makes
    /// no progress for [`STALLED_WRITE`].
    async fn wait_warning<F: Future>(&self, mut sending: std::pin::Pin<&mut F>) -> F::Output {
        if self.shared.warned.load(Ordering::Acquire) {
            return sending.await; // reported once already: no timer any more
        }
        let stalled = {
            let _home = crate::runtime::enter_home();
            tokio::time::sleep(STALLED_WRITE)
        };
        tokio::select! {
            biased;
            sent = sending.as_mut() => return sent,
            _ = stalled => {}
        }
        if !self.shared.warned.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                channel_id = %self.channel_ref.channel_id,
                "a channel write has waited {} s for its reader, which has taken nothing \
                 meanwhile. If the reader was never started, it never will be while this \
                 write waits: the engine holds only the channel's buffer ({} frames by \
                 default) until a reader connects. Start the call that reads before writing \
                 more than that, or write from another task.",
                STALLED_WRITE.as_secs(),
                iii_protocol::limits::DEFAULT_BUFFER_FRAMES
            );
        }
        sending.await
    }

    async fn finish(&self, code: u16, reason: &str) -> Result<(), IIIError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut conn = self.conn.lock().await;
        if let Conn::Finished(outcome) = &*conn {
            return outcome.clone();
        }
        self.check()?;
        let sink = self.open(&mut conn).await?;
        let mut ended = self.shared.ended.subscribe();
        let frame = WsMessage::Close(Some(close_frame(code, reason)));
        let outcome = match sink.send(frame).await {
            Err(error) => Err(self.lost(error)),
            // The watcher reads the engine's echo, sent once it holds everything written.
            Ok(()) => match ended.wait_for(|ended| *ended).await {
                Err(_) => Err(socket_lost(None)),
                Ok(_) => match self.shared.peer_end.get() {
                    Some(Ok(EndStatus::Complete)) => Ok(()),
                    Some(Ok(EndStatus::Aborted(_))) if code == ABORTED => Ok(()),
                    _ => Err(self.error()),
                },
            },
        };
        self.shared.closed.store(outcome.is_ok(), Ordering::Release);
        *conn = Conn::Finished(outcome.clone());
        outcome
    }

    fn check(&self) -> Result<(), IIIError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(IIIError::ChannelClosed {
                code: COMPLETE,
                reason: "the writer is closed".into(),
            });
        }
        match self.shared.failure() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn error(&self) -> IIIError {
        self.shared.failure().unwrap_or_else(|| socket_lost(None))
    }

    /// A failed socket write: the engine's own reason if the watcher saw one, else the error.
    fn lost(&self, error: WsError) -> IIIError {
        self.shared.record(Err(socket_lost(Some(error))));
        self.error()
    }

    /// The socket, connecting it (on the home runtime) on first use.
    async fn open<'c>(&self, conn: &'c mut Conn) -> Result<&'c mut Sink, IIIError> {
        if let Conn::Idle = conn {
            *conn = Conn::Connecting(Connecting::start(&self.target));
        }
        if let Conn::Connecting(connecting) = conn {
            let socket = match connecting.await {
                Ok(socket) => socket,
                Err(error) => {
                    self.shared.record(Err(error.clone()));
                    *conn = Conn::Finished(Err(error.clone()));
                    return Err(error);
                }
            };
            let (sink, stream) = socket.split();
            let (stop, stopped) = oneshot::channel();
            crate::runtime::home().spawn(watch(stream, self.shared.clone(), stopped));
            *conn = Conn::Open { sink, _stop: stop };
        }
        match conn {
            Conn::Open { sink, .. } => Ok(sink),
            Conn::Finished(Err(error)) => Err(error.clone()),
            _ => Err(IIIError::ChannelClosed {
                code: COMPLETE,
                reason: "the writer is closed".into(),
            }),
        }
    }
}

impl std::fmt::Debug for ChannelWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelWriter")
            .field("url", &self.target.url)
            .finish_non_exhaustive()
    }
}

/// Reads the writer's socket: records the engine's close (or the socket's failure) and keeps
/// reading so tungstenite answers pings and echoes the close. Stops when the writer is dropped.
async fn watch(mut stream: Stream, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    loop {
        let incoming = tokio::select! {
            biased;
            _ = &mut stop => return,
            incoming = stream.next() => incoming,
        };
        match incoming {
            Some(Ok(WsMessage::Close(frame))) => {
                let status = end_status(frame.as_ref());
                if !status.is_complete() {
                    tracing::debug!(?status, "the engine ended a channel writer");
                }
                shared.record(Ok(status));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return shared.record(Err(socket_lost(Some(error)))),
            None => return shared.record(Err(socket_lost(None))),
        }
    }
}
