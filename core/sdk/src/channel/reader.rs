//! The reading end of a channel.
//!
//! A pump task owns the socket: binary frames go into a small bounded queue (a slow consumer
//! stops the pump, and TCP carries the backpressure to the engine), text frames go to the
//! `on_message` callbacks in arrival order. The end of the stream keeps its status: only the
//! engine's `1000` is a clean end; every other close, or a socket that just drops, is an error.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use iii_protocol::StreamChannelRef;
use iii_protocol::close::COMPLETE;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::{ChannelSocket, close_frame, connect, end_status, socket_lost};
use crate::{IIIError, runtime};

/// Binary frames queued between the pump and the consumer (each at most 64 KiB).
const QUEUE_FRAMES: usize = 8;
/// Text messages kept for the first `on_message` callback, at most.
const PENDING_MESSAGES: usize = 1024;
/// Bytes of text kept for the first `on_message` callback, at most.
const PENDING_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// How long a closing reader waits for the engine to acknowledge its Close.
const CLOSE_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// A text-message callback.
type MessageCallback = Arc<dyn Fn(String) + Send + Sync + 'static>;

#[derive(Default)]
struct Messages {
    callbacks: Vec<MessageCallback>,
    pending: VecDeque<String>,
    pending_bytes: usize,
}

struct Shared {
    /// How the stream ended: `Ok(())` for a clean end. Set before the data queue closes.
    end: OnceLock<Result<(), IIIError>>,
    messages: Mutex<Messages>,
    /// Flipped by [`ChannelReader::close`].
    closing: watch::Sender<bool>,
    /// Flipped by the pump when it has finished with the socket.
    finished: watch::Sender<bool>,
}

impl Shared {
    fn messages(&self) -> MutexGuard<'_, Messages> {
        self.messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands a text message to every callback, or keeps it (bounded) until the first one.
    fn deliver(&self, message: String) {
        let mut messages = self.messages();
        if messages.callbacks.is_empty() {
            if messages.pending.len() < PENDING_MESSAGES
                && messages.pending_bytes + message.len() <= PENDING_MESSAGE_BYTES
            {
                messages.pending_bytes += message.len();
                messages.pending.push_back(message);
            } else {
                tracing::warn!("channel reader: no on_message callback; dropping a text message");
            }
            return;
        }
        // Called under the lock so that callbacks see messages in order, also while a new
        // callback is being given the kept ones.
        for callback in &messages.callbacks {
            call(callback, message.clone());
        }
    }
}

fn call(callback: &MessageCallback, message: String) {
    if catch_unwind(AssertUnwindSafe(|| callback(message))).is_err() {
        tracing::error!("channel reader: an on_message callback panicked");
    }
}

/// The reading end of a channel: binary data with [`next_binary`](Self::next_binary) or
/// [`read_all`](Self::read_all), text messages with [`on_message`](Self::on_message).
///
/// The socket opens on the first read or callback registration.
pub struct ChannelReader {
    url: String,
    shared: Arc<Shared>,
    /// The pump's end of the data queue, until the pump starts.
    start: Mutex<Option<mpsc::Sender<Bytes>>>,
    data: tokio::sync::Mutex<mpsc::Receiver<Bytes>>,
}

impl ChannelReader {
    /// A reader for `channel_ref` on the engine at `address` (the worker's engine URL).
    pub fn new(address: &str, channel_ref: &StreamChannelRef) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_FRAMES);
        Self {
            url: channel_ref.url(address),
            shared: Arc::new(Shared {
                end: OnceLock::new(),
                messages: Mutex::new(Messages::default()),
                closing: watch::Sender::new(false),
                finished: watch::Sender::new(false),
            }),
            start: Mutex::new(Some(sender)),
            data: tokio::sync::Mutex::new(receiver),
        }
    }

    /// The next binary chunk (at most 64 KiB), or `Ok(None)` once the writer has closed the
    /// stream cleanly and every chunk was read. An aborted, lost or expired stream is an error,
    /// never a clean end.
    pub async fn next_binary(&self) -> Result<Option<Bytes>, IIIError> {
        self.ensure_started();
        let mut closing = self.shared.closing.subscribe();
        if *closing.borrow_and_update() {
            return Err(IIIError::ReaderClosed);
        }
        let mut data = self.data.lock().await;
        tokio::select! {
            biased;
            _ = closing.wait_for(|closing| *closing) => Err(IIIError::ReaderClosed),
            chunk = data.recv() => match chunk {
                Some(chunk) => Ok(Some(chunk)),
                None => match self.shared.end.get() {
                    Some(Ok(())) => Ok(None),
                    Some(Err(error)) => Err(error.clone()),
                    None => Err(IIIError::Connection("the channel reader task stopped".into())),
                },
            },
        }
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
    /// Callbacks run on the SDK runtime's threads and must not block.
    pub async fn on_message<F>(&self, callback: F)
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
        self.ensure_started();
    }

    /// Closes this end: the socket closes (the engine then fails the writer's later writes
    /// with [`IIIError::ReaderClosed`]) and a pending or later read fails with
    /// [`IIIError::ReaderClosed`].
    pub async fn close(&self) {
        self.shared.closing.send_replace(true);
        let never_started = self.lock_start().take().is_some();
        if never_started {
            let _ = self.shared.end.set(Err(IIIError::ReaderClosed));
            return;
        }
        let mut finished = self.shared.finished.subscribe();
        let _ = finished.wait_for(|finished| *finished).await;
    }

    fn lock_start(&self) -> MutexGuard<'_, Option<mpsc::Sender<Bytes>>> {
        self.start
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ensure_started(&self) {
        if let Some(sender) = self.lock_start().take() {
            runtime().spawn(pump(self.url.clone(), sender, self.shared.clone()));
        }
    }
}

impl std::fmt::Debug for ChannelReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelReader")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// What ended the pump's loop.
enum Stop {
    /// The stream ended (clean or not) as the engine or the socket said.
    Ended(Result<(), IIIError>),
    /// This end was closed locally, or the reader was dropped: close the socket.
    Local,
}

/// The pump task: connect, then move frames from the socket to the queue and the callbacks.
async fn pump(url: String, data: mpsc::Sender<Bytes>, shared: Arc<Shared>) {
    let mut closing = shared.closing.subscribe();
    let connected = tokio::select! {
        biased;
        _ = closing.wait_for(|closing| *closing) => None,
        socket = connect(&url) => Some(socket),
    };
    let stop = match connected {
        None => Stop::Local,
        Some(Err(error)) => Stop::Ended(Err(error)),
        Some(Ok(mut socket)) => {
            let stop = forward(&mut socket, &data, &shared, &mut closing).await;
            if let Stop::Local = stop {
                let frame = WsMessage::Close(Some(close_frame(COMPLETE, "")));
                let acknowledged = async {
                    socket.send(frame).await?;
                    while socket.next().await.transpose()?.is_some() {}
                    Ok::<_, tokio_tungstenite::tungstenite::Error>(())
                };
                let _ = tokio::time::timeout(CLOSE_ACK_TIMEOUT, acknowledged).await;
            }
            stop
        }
    };
    let end = match stop {
        Stop::Ended(end) => end,
        Stop::Local => Err(IIIError::ReaderClosed),
    };
    if let Err(error) = &end {
        tracing::debug!(%error, "channel reader ended");
    }
    let _ = shared.end.set(end);
    drop(data);
    shared.finished.send_replace(true);
}

async fn forward(
    socket: &mut ChannelSocket,
    data: &mpsc::Sender<Bytes>,
    shared: &Shared,
    closing: &mut watch::Receiver<bool>,
) -> Stop {
    loop {
        let incoming = tokio::select! {
            biased;
            _ = closing.wait_for(|closing| *closing) => return Stop::Local,
            _ = data.closed() => return Stop::Local,
            incoming = socket.next() => incoming,
        };
        match incoming {
            Some(Ok(WsMessage::Binary(chunk))) => match data.try_send(chunk) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(chunk)) => {
                    tokio::select! {
                        biased;
                        _ = closing.wait_for(|closing| *closing) => return Stop::Local,
                        sent = data.send(chunk) => if sent.is_err() { return Stop::Local },
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Stop::Local,
            },
            Some(Ok(WsMessage::Text(text))) => shared.deliver(text.as_str().to_owned()),
            Some(Ok(WsMessage::Close(frame))) => {
                // Let tungstenite send the close echo before the socket is dropped.
                let _ = tokio::time::timeout(CLOSE_ACK_TIMEOUT, socket.flush()).await;
                let status = end_status(frame.as_ref());
                return Stop::Ended(match IIIError::from_end_status(status) {
                    None => Ok(()),
                    Some(error) => Err(error),
                });
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Stop::Ended(Err(socket_lost(Some(error)))),
            None => return Stop::Ended(Err(socket_lost(None))),
        }
    }
}
