//! The main socket task: connect, greet, serve, reconnect.
//!
//! One task per worker owns the WebSocket to the engine. On every connection it sends the
//! stored registrations and `engine::workers::register` at once (it does not wait for
//! `workerregistered`), then serves: a reading half dispatches invocations, results and pongs;
//! a writing half sends registration changes, calls, results and pings in flushed batches.
//! When the socket drops, calls in flight fail and it reconnects with backoff.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use iii_protocol::limits::FN_WORKERS_REGISTER;
use iii_protocol::{Message, TriggerAction};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::IIIError;
use crate::channel::close_frame;
use crate::invocation::{Invocation, dispatch};
use crate::options::jitter_sample;
use crate::worker::{Inner, lock};

/// Something to send on the main socket, in order.
pub(crate) enum Outbound {
    /// A message that needs no answer (void calls, invocation results).
    Send(String),
    /// A call whose result completes `reply`.
    Call {
        id: String,
        text: String,
        reply: oneshot::Sender<Result<Value, IIIError>>,
    },
    /// A JSON ping; `reply` completes when its pong arrives.
    Ping(oneshot::Sender<()>),
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Reply = oneshot::Sender<Result<Value, IIIError>>;
type Sink = futures_util::stream::SplitSink<Socket, WsMessage>;
type Stream = futures_util::stream::SplitStream<Socket>;

/// Most messages written before one flush.
const BATCH_MESSAGES: usize = 64;
/// How long a shutting-down worker tries to send what is queued and close politely.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the engine told us about our previous connection, for `reattach`.
#[derive(Default)]
struct Session {
    worker_id: Option<String>,
    reattach_token: Option<String>,
}

/// The calls and pings waiting for an answer on one connection.
#[derive(Default)]
struct Waiting {
    calls: Mutex<HashMap<String, Reply>>,
    pings: Mutex<VecDeque<oneshot::Sender<()>>>,
}

/// The worker's main socket task; runs until shutdown (or until reconnecting gives up).
pub(crate) async fn run(
    inner: Arc<Inner>,
    mut control: mpsc::UnboundedReceiver<String>,
    mut outbound: mpsc::Receiver<Outbound>,
) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut session = Session::default();
    let mut failures: u32 = 0;
    let terminal = loop {
        let connected = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break IIIError::Shutdown,
            connected = tokio_tungstenite::connect_async_with_config(
                inner.address.as_str(), None, true) => connected,
        };
        match connected {
            Ok((socket, _response)) => {
                failures = 0;
                tracing::debug!(address = %inner.address, "connected to the engine");
                let io = (&mut control, &mut outbound, &mut shutdown);
                if serve(&inner, socket, io, &mut session).await {
                    break IIIError::Shutdown;
                }
            }
            Err(error) => {
                tracing::warn!(address = %inner.address, %error, "cannot reach the engine")
            }
        }
        let reconnection = &inner.options.reconnection;
        if reconnection.max_retries.is_some_and(|max| failures >= max) {
            tracing::error!(address = %inner.address, "giving up reconnecting to the engine");
            break IIIError::NotConnected;
        }
        let delay = reconnection.delay(failures, jitter_sample());
        failures = failures.saturating_add(1);
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break IIIError::Shutdown,
            _ = tokio::time::sleep(delay) => {}
        }
    };
    let _ = inner.terminal.set(terminal.clone());
    // Handlers often hold a clone of the worker; dropping them breaks that cycle.
    lock(&inner.functions).clear();
    outbound.close();
    while let Some(item) = outbound.recv().await {
        if let Outbound::Call { reply, .. } = item {
            let _ = reply.send(Err(terminal.clone()));
        }
    }
}

type Io<'a> = (
    &'a mut mpsc::UnboundedReceiver<String>,
    &'a mut mpsc::Receiver<Outbound>,
    &'a mut watch::Receiver<bool>,
);

/// Serves one connection. Returns true when it ended because the worker shuts down.
async fn serve(inner: &Inner, socket: Socket, io: Io<'_>, session: &mut Session) -> bool {
    let (control, outbound, shutdown) = io;
    let (mut sink, mut stream) = socket.split();
    let waiting = Waiting::default();
    let (urgent, mut urgent_queue) = mpsc::unbounded_channel();
    let greeting = greeting(inner, session, control);
    let stopping = {
        let reading = read_loop(inner, &mut stream, &waiting, &urgent, session);
        let queues = (&mut urgent_queue, &mut *control, &mut *outbound);
        let writing = write_loop(&mut sink, greeting, queues, &waiting);
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => true,
            reason = reading => {
                tracing::warn!(%reason, "connection to the engine lost");
                false
            }
            reason = writing => {
                tracing::warn!(%reason, "connection to the engine lost");
                false
            }
        }
    };
    let error = if stopping {
        IIIError::Shutdown
    } else {
        IIIError::Connection("the connection to the engine was lost".into())
    };
    for (_, reply) in lock(&waiting.calls).drain() {
        let _ = reply.send(Err(error.clone()));
    }
    if stopping {
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, goodbye(&mut sink, outbound)).await;
    }
    stopping
}

/// The first messages of a connection: `reattach`, every registration, then the worker's
/// description. Registration changes queued so far are covered by the replay.
fn greeting(
    inner: &Inner,
    session: &Session,
    control: &mut mpsc::UnboundedReceiver<String>,
) -> Vec<String> {
    while control.try_recv().is_ok() {}
    let mut texts = Vec::new();
    if let (Some(id), Some(token)) = (&session.worker_id, &session.reattach_token) {
        let reattach = Message::Reattach {
            previous_worker_id: Some(id.clone()),
            reattach_token: Some(token.clone()),
        };
        texts.push(reattach.to_json());
    }
    texts.extend(
        lock(&inner.functions)
            .values()
            .map(|(_, f)| f.message().to_json()),
    );
    texts.extend(
        lock(&inner.triggers)
            .iter()
            .map(|(id, t)| t.message(id).to_json()),
    );
    texts.push(worker_description(inner));
    texts
}

/// The void `engine::workers::register` call describing this worker.
fn worker_description(inner: &Inner) -> String {
    let options = &inner.options;
    let name = options.worker_name.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "iii-worker".into())
    });
    Message::InvokeFunction {
        invocation_id: None,
        function_id: FN_WORKERS_REGISTER.into(),
        data: json!({
            "runtime": options.runtime,
            "version": options.version,
            "name": name,
            "os": std::env::consts::OS,
            "pid": std::process::id(),
        }),
        action: Some(TriggerAction::Void),
        metadata: None,
        traceparent: None,
        baggage: None,
        namespace: None,
    }
    .to_json()
}

type Queues<'a> = (
    &'a mut mpsc::UnboundedReceiver<String>,
    &'a mut mpsc::UnboundedReceiver<String>,
    &'a mut mpsc::Receiver<Outbound>,
);

/// Sends the greeting, then everything queued, in batches with one flush each. Returns why
/// it stopped.
async fn write_loop(
    sink: &mut Sink,
    greeting: Vec<String>,
    queues: Queues<'_>,
    waiting: &Waiting,
) -> String {
    let (urgent, control, outbound) = queues;
    for text in greeting {
        if let Err(error) = sink.feed(WsMessage::Text(text.into())).await {
            return error.to_string();
        }
    }
    if let Err(error) = sink.flush().await {
        return error.to_string();
    }
    let mut prune_at = 64;
    loop {
        let first = tokio::select! {
            biased;
            Some(text) = urgent.recv() => Outbound::Send(text),
            Some(text) = control.recv() => Outbound::Send(text),
            item = outbound.recv() => match item {
                Some(item) => item,
                None => return "the worker stopped".into(),
            },
            else => return "the worker stopped".into(),
        };
        let mut next = Some(first);
        let mut written = 0;
        while let Some(item) = next.take() {
            let text = match item {
                Outbound::Send(text) => text,
                Outbound::Call { id, text, reply } => {
                    if reply.is_closed() {
                        String::new() // the caller gave up while the call was queued
                    } else {
                        let mut calls = lock(&waiting.calls);
                        if calls.len() >= prune_at {
                            calls.retain(|_, reply| !reply.is_closed());
                            prune_at = (calls.len() * 2).max(64);
                        }
                        calls.insert(id, reply);
                        text
                    }
                }
                Outbound::Ping(reply) => {
                    lock(&waiting.pings).push_back(reply);
                    Message::Ping.to_json()
                }
            };
            if !text.is_empty() {
                if let Err(error) = sink.feed(WsMessage::Text(text.into())).await {
                    return error.to_string();
                }
                written += 1;
            }
            if written < BATCH_MESSAGES {
                next = urgent
                    .try_recv()
                    .or_else(|_| control.try_recv())
                    .map(Outbound::Send)
                    .or_else(|_| outbound.try_recv())
                    .ok();
            }
        }
        if let Err(error) = sink.flush().await {
            return error.to_string();
        }
    }
}

/// Reads the engine's messages until the socket ends. Returns why it ended.
async fn read_loop(
    inner: &Inner,
    stream: &mut Stream,
    waiting: &Waiting,
    urgent: &mpsc::UnboundedSender<String>,
    session: &mut Session,
) -> String {
    while let Some(frame) = stream.next().await {
        let text = match frame {
            Ok(WsMessage::Text(text)) => text,
            Ok(WsMessage::Close(frame)) => {
                return format!("the engine closed the socket: {frame:?}");
            }
            Ok(_) => continue,
            Err(error) => return error.to_string(),
        };
        let message = match serde_json::from_str::<Message>(text.as_str()) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, "ignoring an unreadable message from the engine");
                continue;
            }
        };
        match message {
            Message::InvokeFunction {
                invocation_id,
                function_id,
                data,
                action,
                ..
            } => {
                let handler = lock(&inner.functions)
                    .get(&function_id)
                    .map(|(_, function)| function.handler.clone());
                let invocation = Invocation {
                    invocation_id,
                    function_id,
                    data,
                    action,
                };
                dispatch(invocation, handler, inner.outbound.clone(), urgent);
            }
            Message::InvocationResult {
                invocation_id,
                result,
                error,
                ..
            } => {
                if let Some(reply) = lock(&waiting.calls).remove(&invocation_id) {
                    let _ = reply.send(match error {
                        Some(body) => Err(body.into()),
                        None => Ok(result.unwrap_or(Value::Null)),
                    });
                }
            }
            Message::Pong => {
                if let Some(reply) = lock(&waiting.pings).pop_front() {
                    let _ = reply.send(());
                }
            }
            Message::Ping => {
                let _ = urgent.send(Message::Pong.to_json());
            }
            Message::WorkerRegistered {
                worker_id,
                reattach_token,
            } => {
                tracing::debug!(%worker_id, "registered with the engine");
                session.worker_id = Some(worker_id);
                session.reattach_token = reattach_token;
            }
            Message::TriggerRegistrationResult {
                id,
                error: Some(error),
                ..
            } => tracing::warn!(trigger = %id, code = %error.code, message = %error.message,
                "the engine rejected a trigger"),
            other => tracing::debug!(?other, "ignoring a message from the engine"),
        }
    }
    "the socket ended".into()
}

/// On shutdown: sends what is already queued (void calls, results), fails queued calls, and
/// closes the socket politely.
async fn goodbye(sink: &mut Sink, outbound: &mut mpsc::Receiver<Outbound>) {
    while let Ok(item) = outbound.try_recv() {
        match item {
            Outbound::Send(text) => {
                if sink.feed(WsMessage::Text(text.into())).await.is_err() {
                    return;
                }
            }
            Outbound::Call { reply, .. } => {
                let _ = reply.send(Err(IIIError::Shutdown));
            }
            Outbound::Ping(_) => {}
        }
    }
    let _ = sink
        .send(WsMessage::Close(Some(close_frame(1000, "shutdown"))))
        .await;
}
