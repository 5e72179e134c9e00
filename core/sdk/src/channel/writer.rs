//! The writing end of a channel.
//!
//! Writes go through a small bounded queue to a task that owns the socket, so a writer waits
//! (rather than buffers) when the engine stops reading because the reader is slow. The task also
//! watches the socket, so the engine's `4003 reader_closed` fails every later write at once.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use iii_protocol::close::{ABORTED, COMPLETE};
use iii_protocol::limits::CHANNEL_FRAME_BYTES;
use iii_protocol::{EndStatus, StreamChannelRef};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::{ChannelSocket, close_frame, connect, end_status, socket_lost};
use crate::{IIIError, runtime};

/// Frames queued between the API and the socket task (each at most 64 KiB).
const QUEUE_FRAMES: usize = 4;
/// Most frames written before one flush.
const BATCH_FRAMES: usize = 16;

type SplitStream = futures_util::stream::SplitStream<ChannelSocket>;
type SplitSink = futures_util::stream::SplitSink<ChannelSocket, WsMessage>;

enum Command {
    Frame(WsMessage),
    Close {
        code: u16,
        reason: String,
        done: oneshot::Sender<Result<(), IIIError>>,
    },
}

struct Shared {
    /// Set once the socket task stops; every later operation reports it.
    failure: OnceLock<IIIError>,
    /// Set when a close or abort completed: a second close is a no-op.
    closed: AtomicBool,
}

/// The writing end of a channel: binary data with [`write`](Self::write), text messages with
/// [`send_message`](Self::send_message), then [`close`](Self::close).
///
/// The socket opens on the first write, message, close or abort. Connection errors surface on
/// the next operation (at the latest on `close`). Dropping a writer without closing it drops the
/// socket, and its reader gets [`IIIError::WriterLost`].
pub struct ChannelWriter {
    url: String,
    shared: Arc<Shared>,
    queue: OnceLock<mpsc::Sender<Command>>,
}

impl ChannelWriter {
    /// A writer for `channel_ref` on the engine at `address` (the worker's engine URL).
    pub fn new(address: &str, channel_ref: &StreamChannelRef) -> Self {
        Self {
            url: channel_ref.url(address),
            shared: Arc::new(Shared {
                failure: OnceLock::new(),
                closed: AtomicBool::new(false),
            }),
            queue: OnceLock::new(),
        }
    }

    /// Writes `data` as binary frames of at most 64 KiB (one copy per frame). Waits while the
    /// channel's buffer is full.
    pub async fn write(&self, data: &[u8]) -> Result<(), IIIError> {
        self.check()?;
        if data.is_empty() {
            self.queue();
            return Ok(());
        }
        for chunk in data.chunks(CHANNEL_FRAME_BYTES) {
            let frame = WsMessage::Binary(Bytes::copy_from_slice(chunk));
            self.send(Command::Frame(frame)).await?;
        }
        Ok(())
    }

    /// Writes `data` without copying it (larger buffers are split with `Bytes::slice`).
    pub async fn write_bytes(&self, data: Bytes) -> Result<(), IIIError> {
        self.check()?;
        if data.is_empty() {
            self.queue();
            return Ok(());
        }
        let mut offset = 0;
        while offset < data.len() {
            let end = (offset + CHANNEL_FRAME_BYTES).min(data.len());
            let frame = WsMessage::Binary(data.slice(offset..end));
            self.send(Command::Frame(frame)).await?;
            offset = end;
        }
        Ok(())
    }

    /// Sends a text message (delivered to the reader's `on_message` callbacks, never mixed
    /// into the byte stream).
    pub async fn send_message(&self, message: &str) -> Result<(), IIIError> {
        self.check()?;
        let frame = WsMessage::Text(message.to_string().into());
        self.send(Command::Frame(frame)).await
    }

    /// Ends the stream cleanly. Returns once the engine has acknowledged the end, so every
    /// byte written before is safely with the engine. Closing twice is a no-op.
    pub async fn close(&self) -> Result<(), IIIError> {
        self.finish(COMPLETE, String::new()).await
    }

    /// Ends the stream as failed: the reader gets [`IIIError::ChannelAborted`] with `reason`.
    pub async fn abort(&self, reason: &str) -> Result<(), IIIError> {
        self.finish(ABORTED, reason.to_string()).await
    }

    async fn finish(&self, code: u16, reason: String) -> Result<(), IIIError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.check()?;
        let (done, result) = oneshot::channel();
        self.send(Command::Close { code, reason, done }).await?;
        match result.await {
            Ok(outcome) => outcome,
            Err(_) => Err(self.failure()),
        }
    }

    fn check(&self) -> Result<(), IIIError> {
        match self.shared.failure.get() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    fn failure(&self) -> IIIError {
        self.shared
            .failure
            .get()
            .cloned()
            .unwrap_or_else(|| IIIError::Connection("the channel writer task stopped".into()))
    }

    /// The queue to the socket task, starting the task (and its connect) on first use.
    fn queue(&self) -> &mpsc::Sender<Command> {
        self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE_FRAMES);
            runtime().spawn(run(self.url.clone(), receiver, self.shared.clone()));
            sender
        })
    }

    async fn send(&self, command: Command) -> Result<(), IIIError> {
        self.queue().send(command).await.map_err(|_| self.failure())
    }
}

impl std::fmt::Debug for ChannelWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelWriter")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The socket task: connect, then forward queued frames in flushed batches while watching
/// the socket for the engine's close.
async fn run(url: String, mut queue: mpsc::Receiver<Command>, shared: Arc<Shared>) {
    let socket = match connect(&url).await {
        Ok(socket) => socket,
        Err(error) => return fail(&shared, &mut queue, error).await,
    };
    let (mut sink, mut stream) = socket.split();
    loop {
        let command = match watching(&mut stream, queue.recv()).await {
            Ok(Some(command)) => command,
            // The writer was dropped without closing: drop the socket, the reader learns
            // `writer_lost` from the engine.
            Ok(None) => return,
            Err(error) => return fail(&shared, &mut queue, error).await,
        };
        let close = match command {
            Command::Frame(frame) => {
                match watching(&mut stream, write_batch(&mut sink, &mut queue, frame)).await {
                    Ok(Ok(close)) => close,
                    Ok(Err(error)) | Err(error) => return fail(&shared, &mut queue, error).await,
                }
            }
            close_command => Some(close_command),
        };
        if let Some(Command::Close { code, reason, done }) = close {
            let outcome = close_socket(&mut sink, &mut stream, code, &reason).await;
            let error = match &outcome {
                Ok(()) => IIIError::ChannelClosed {
                    code: COMPLETE,
                    reason: "the writer is closed".into(),
                },
                Err(error) => error.clone(),
            };
            let _ = shared.failure.set(error.clone());
            shared.closed.store(outcome.is_ok(), Ordering::Release);
            let _ = done.send(outcome);
            return fail(&shared, &mut queue, error).await;
        }
    }
}

/// Feeds `first` and the frames already queued behind it (up to a batch), then flushes once.
/// Returns a close command found in the queue, to run after the batch.
async fn write_batch(
    sink: &mut SplitSink,
    queue: &mut mpsc::Receiver<Command>,
    first: WsMessage,
) -> Result<Option<Command>, IIIError> {
    let lost = |error| socket_lost(Some(error));
    sink.feed(first).await.map_err(lost)?;
    let mut close = None;
    for _ in 1..BATCH_FRAMES {
        match queue.try_recv() {
            Ok(Command::Frame(frame)) => sink.feed(frame).await.map_err(lost)?,
            Ok(close_command) => {
                close = Some(close_command);
                break;
            }
            Err(_) => break,
        }
    }
    sink.flush().await.map_err(lost)?;
    Ok(close)
}

/// Sends our Close and waits for the engine's echo, which it sends only after it has taken
/// everything written before.
async fn close_socket(
    sink: &mut SplitSink,
    stream: &mut SplitStream,
    code: u16,
    reason: &str,
) -> Result<(), IIIError> {
    let frame = WsMessage::Close(Some(close_frame(code, reason)));
    watching(stream, sink.send(frame))
        .await?
        .map_err(|e| socket_lost(Some(e)))?;
    loop {
        match stream.next().await {
            Some(Ok(WsMessage::Close(echo))) => {
                return match end_status(echo.as_ref()) {
                    EndStatus::Complete => Ok(()),
                    EndStatus::Aborted(_) if code == ABORTED => Ok(()),
                    status => match IIIError::from_end_status(status) {
                        Some(error) => Err(error),
                        None => Ok(()),
                    },
                };
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err(socket_lost(Some(error))),
            None => return Err(socket_lost(None)),
        }
    }
}

/// Runs `work` while reading the socket; the engine closing the socket (e.g. `4003` when the
/// reader went away) or the socket failing ends the wait with the matching error.
async fn watching<F: Future>(stream: &mut SplitStream, work: F) -> Result<F::Output, IIIError> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            output = &mut work => return Ok(output),
            incoming = stream.next() => match incoming {
                Some(Ok(WsMessage::Close(frame))) => {
                    let status = end_status(frame.as_ref());
                    return Err(IIIError::from_end_status(status).unwrap_or(IIIError::ChannelClosed {
                        code: COMPLETE,
                        reason: "the engine ended the channel".into(),
                    }));
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(socket_lost(Some(error))),
                None => return Err(socket_lost(None)),
            },
        }
    }
}

/// Records the task's terminal error, refuses further commands and answers pending closes.
async fn fail(shared: &Shared, queue: &mut mpsc::Receiver<Command>, error: IIIError) {
    if shared.failure.set(error.clone()).is_ok() {
        tracing::debug!(%error, "channel writer stopped");
    }
    queue.close();
    while let Some(command) = queue.recv().await {
        if let Command::Close { done, .. } = command {
            let _ = done.send(Err(shared.failure.get().cloned().unwrap_or(error.clone())));
        }
    }
}
