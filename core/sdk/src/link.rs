//! The sending side of the main socket, shared by the connection task and every caller.
//!
//! While connected, a call, a void trigger or a handler's result is written by the future that
//! produced it (after any registration changes still pending, so a call never overtakes the
//! registration before it) — no task hop on the way out. While disconnected, items wait in the
//! bounded outbound queue, which the connection task sends after its greeting; it also sends
//! pongs, pings and registration changes nobody else flushed, in batches with one flush each.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use futures_util::SinkExt;
use iii_protocol::Message;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::IIIError;
use crate::state::lock;

/// The main socket.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// Its writing half.
pub(crate) type Sink = futures_util::stream::SplitSink<Socket, WsMessage>;
/// Where a call's result goes.
pub(crate) type Reply = oneshot::Sender<Result<Value, IIIError>>;
/// The JSON pings of one connection waiting for their pong, oldest first.
pub(crate) type Pings = Mutex<VecDeque<oneshot::Sender<()>>>;

/// Most messages written before one flush.
const BATCH_MESSAGES: usize = 64;

/// Something to send on the main socket.
pub(crate) enum Outbound {
    /// A message that needs no answer (void calls, invocation results, pongs).
    Send(String),
    /// A call whose result completes `reply`.
    Call {
        /// The invocation id the result will carry.
        id: String,
        /// The `invokefunction` message.
        text: String,
        /// Completed by the result.
        reply: Reply,
    },
    /// A JSON ping; `reply` completes when its pong arrives.
    Ping(oneshot::Sender<()>),
    /// A channel stream frame (binary), from the connection's stream table.
    Frame(WsMessage),
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Link {
    /// The socket's writing half while connected and greeted.
    sink: tokio::sync::Mutex<Option<Sink>>,
    /// Registration changes not yet written (the greeting replays everything anyway).
    registrations: Mutex<VecDeque<String>>,
    registrations_changed: Notify,
    /// Calls written on the current connection and waiting for their result.
    calls: Mutex<Calls>,
}

#[derive(Default)]
struct Calls {
    waiting: HashMap<String, Reply>,
    prune_at: usize,
}

impl Link {
    /// Queues a registration change for the current connection.
    pub(crate) fn announce(&self, text: String) {
        lock(&self.registrations).push_back(text);
        self.registrations_changed.notify_one();
    }

    /// Forgets queued registration changes: a new connection replays every registration.
    pub(crate) fn clear_registrations(&self) {
        lock(&self.registrations).clear();
    }

    /// Makes `sink` (already greeted) the connection's writing half.
    pub(crate) async fn attach(&self, sink: Sink) {
        *self.sink.lock().await = Some(sink);
    }

    /// Takes the writing half away (the connection ended) and fails the calls waiting on it.
    pub(crate) async fn detach(&self, error: &IIIError) -> Option<Sink> {
        let sink = self.sink.lock().await.take();
        for (_, reply) in lock(&self.calls).waiting.drain() {
            let _ = reply.send(Err(error.clone()));
        }
        sink
    }

    /// Delivers the result of call `id`, if it is still waited for.
    pub(crate) fn complete(&self, id: &str, result: Result<Value, IIIError>) {
        if let Some(reply) = lock(&self.calls).waiting.remove(id) {
            let _ = reply.send(result);
        }
    }

    /// Sends `item` from the caller's own future when connected; gives it back otherwise.
    /// A failed write is reported as a connection error (the connection task reconnects).
    pub(crate) async fn send_now(&self, item: Outbound) -> Result<Result<(), IIIError>, Outbound> {
        if let Outbound::Ping(_) = item {
            return Err(item); // pongs are matched by the connection task
        }
        let mut sink = self.sink.lock().await;
        let Some(sink) = sink.as_mut() else {
            return Err(item);
        };
        let mut next = Some(item);
        let written = self.write(sink, || next.take(), None).await;
        Ok(written.map_err(|error| IIIError::Connection(format!("main socket: {error}"))))
    }

    /// The connection task's side: sends queued items, pongs and registration changes until
    /// the socket fails or the queue closes. Returns why it stopped.
    pub(crate) async fn write_loop(
        &self,
        urgent: &mut mpsc::UnboundedReceiver<String>,
        outbound: &mut mpsc::Receiver<Outbound>,
        pings: &Pings,
        frames: &mut mpsc::Receiver<WsMessage>,
    ) -> String {
        loop {
            let first = tokio::select! {
                biased;
                Some(text) = urgent.recv() => Some(Outbound::Send(text)),
                _ = self.registrations_changed.notified() => None,
                item = outbound.recv() => match item {
                    Some(item) => Some(item),
                    None => return "the worker stopped".into(),
                },
                // Stream frames last: steady channel traffic never holds up calls.
                Some(frame) = frames.recv() => Some(Outbound::Frame(frame)),
            };
            let mut sink = self.sink.lock().await;
            let Some(sink) = sink.as_mut() else {
                return "the connection ended".into();
            };
            let mut first = first;
            let more = || {
                first
                    .take()
                    .or_else(|| urgent.try_recv().ok().map(Outbound::Send))
                    .or_else(|| outbound.try_recv().ok())
                    .or_else(|| frames.try_recv().ok().map(Outbound::Frame))
            };
            if let Err(error) = self.write(sink, more, Some(pings)).await {
                return error.to_string();
            }
        }
    }

    /// Writes pending registration changes, then the items `next` yields (up to a batch), and
    /// flushes once.
    async fn write(
        &self,
        sink: &mut Sink,
        mut next: impl FnMut() -> Option<Outbound>,
        pings: Option<&Pings>,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let registrations: Vec<String> = lock(&self.registrations).drain(..).collect();
        for text in registrations {
            sink.feed(WsMessage::Text(text.into())).await?;
        }
        for _ in 0..BATCH_MESSAGES {
            let Some(item) = next() else { break };
            let text = match item {
                Outbound::Send(text) => text,
                Outbound::Frame(frame) => {
                    sink.feed(frame).await?;
                    continue;
                }
                // The caller gave up while the call was queued.
                Outbound::Call { reply, .. } if reply.is_closed() => continue,
                Outbound::Call { id, text, reply } => {
                    self.wait_for(id, reply);
                    text
                }
                Outbound::Ping(reply) => match pings {
                    Some(pings) => {
                        lock(pings).push_back(reply);
                        Message::Ping.to_json()
                    }
                    None => continue,
                },
            };
            sink.feed(WsMessage::Text(text.into())).await?;
        }
        sink.flush().await
    }

    fn wait_for(&self, id: String, reply: Reply) {
        let mut calls = lock(&self.calls);
        if calls.waiting.len() >= calls.prune_at {
            calls.waiting.retain(|_, reply| !reply.is_closed());
            calls.prune_at = (calls.waiting.len() * 2).max(64);
        }
        calls.waiting.insert(id, reply);
    }
}
