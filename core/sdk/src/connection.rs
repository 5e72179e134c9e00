//! The main socket task: connect, greet, serve, reconnect.
//!
//! One task per worker owns the connection to the engine. On every connection it sends
//! `reattach`, the stored registrations and `engine::workers::register` at once (it does not
//! wait for `workerregistered`), then hands the writing half to the [`Link`] so callers can
//! write directly, and serves: the reading half dispatches invocations, results and pongs, the
//! [`Link`]'s write loop sends whatever was queued. When the socket drops, calls in flight fail
//! and it reconnects with backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use iii_protocol::{Message, TraceContext};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::IIIError;
use crate::channel::close_frame;
use crate::channel::end_socket;
use crate::invocation::{Invocation, dispatch};
use crate::link::{Outbound, Pings, Sink, Socket};
use crate::options::{InitOptions, jitter_sample};
use crate::state::{WorkerState, lock};
use crate::trigger_type;
use iii_streams::StreamTable;

type Stream = futures_util::stream::SplitStream<Socket>;

/// How long a shutting-down worker tries to send what is queued and close politely.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the engine told us about our previous connection, for `reattach`.
#[derive(Default)]
struct Session {
    worker_id: Option<String>,
    reattach_token: Option<String>,
}

/// The worker's main socket task; runs until shutdown (or until reconnecting gives up).
/// Main-socket limits: messages (and single frames) up to the engine's 64 MiB, so a large
/// trigger payload reaches its handler instead of failing the connection. The read buffer is
/// 16 KiB (the engine's too): tungstenite zero-fills its free part on every read attempt, so
/// its 128 KiB default cost every message received a 128 KiB `memset`.
fn main_socket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    let limit = Some(iii_protocol::limits::MAX_MAIN_MESSAGE_BYTES);
    // With channel streams, bulk data may arrive here: one frame per read system call.
    let read_buffer = if crate::channel::end_socket::streams_wanted() {
        MAIN_READ_BUFFER_WITH_STREAMS
    } else {
        MAIN_READ_BUFFER
    };
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .max_message_size(limit)
        .max_frame_size(limit)
}

/// Read buffer of the main socket: JSON messages, most of them small.
const MAIN_READ_BUFFER: usize = 16 * 1024;
/// Read buffer of a main socket that may carry channel streams: one full frame.
const MAIN_READ_BUFFER_WITH_STREAMS: usize = iii_protocol::limits::CHANNEL_FRAME_WIRE_BYTES;

/// How long a shutdown waits for channel streams on the connection to finish.
const STREAM_DRAIN_GRACE: Duration = Duration::from_secs(10);
/// How often it looks.
const STREAM_DRAIN_POLL: Duration = Duration::from_millis(20);

/// Stream frames (at most 64 KiB of payload each) queued for the main socket before a
/// stream waits; each stream is also bounded by its credit.
const STREAM_FRAMES_QUEUED: usize = 64;

pub(crate) async fn run(inner: Arc<WorkerState>, mut outbound: mpsc::Receiver<Outbound>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut session = Session::default();
    let mut failures: u32 = 0;
    let terminal = loop {
        // An address that can never work (not a ws:// or wss:// URL) ends the worker at once:
        // retrying would only make every call wait for its timeout.
        if let Err(error) = crate::worker::check_engine_url(&inner.address) {
            tracing::error!(address = %inner.address, "not an engine URL");
            break error;
        }
        let limit = inner.options.connect_timeout();
        let request = match handshake_request(&inner.address, &inner.options) {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(%error, "cannot build the handshake");
                break error;
            }
        };
        let tls = match crate::tls::connector_for(&inner.address) {
            Ok(tls) => tls,
            Err(error) => {
                tracing::error!(%error, "cannot set up TLS");
                break error;
            }
        };
        let config = Some(main_socket_config());
        let connecting =
            tokio_tungstenite::connect_async_tls_with_config(request, config, true, tls);
        let connected = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break IIIError::Shutdown,
            connected = tokio::time::timeout(limit, connecting) => connected,
        };
        let connected = connected
            .map_err(|_| format!("no answer within {} ms", limit.as_millis()))
            .and_then(|attempt| attempt.map_err(|error| error.to_string()));
        match connected {
            Ok((socket, response)) => {
                failures = 0;
                *lock(&inner.last_failure) = None;
                tracing::info!(address = %inner.address, "connected to the engine");
                let streams = response
                    .headers()
                    .get(iii_protocol::streams::HEADER)
                    .is_some_and(|value| iii_protocol::streams::accepts(value.as_bytes()));
                let io = (&mut outbound, &mut shutdown);
                if serve(&inner, socket, io, &mut session, streams).await {
                    break IIIError::Shutdown;
                }
            }
            Err(error) => {
                tracing::warn!(address = %inner.address, %error, "cannot reach the engine");
                *lock(&inner.last_failure) = Some(error);
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
    // Calls waiting for a connection stop waiting now (they report `terminal`).
    inner.shutdown.send_replace(true);
    // Handlers often hold a clone of the worker; dropping them breaks that cycle.
    lock(&inner.functions).clear();
    lock(&inner.trigger_types).clear();
    outbound.close();
    while let Some(item) = outbound.recv().await {
        if let Outbound::Call { reply, .. } = item {
            let _ = reply.send(Err(terminal.clone()));
        }
    }
}

type Io<'a> = (
    &'a mut mpsc::Receiver<Outbound>,
    &'a mut watch::Receiver<bool>,
);

/// Serves one connection. Returns true when it ended because the worker shuts down.
async fn serve(
    inner: &Arc<WorkerState>,
    socket: Socket,
    io: Io<'_>,
    session: &mut Session,
    streams: bool,
) -> bool {
    let (outbound, shutdown) = io;
    let link = &inner.link;
    let (frames, mut frames_queue) = mpsc::channel(STREAM_FRAMES_QUEUED);
    let pinger = frames.clone();
    let table = streams.then(|| StreamTable::for_worker(frames, crate::runtime::home()));
    let (mut sink, mut stream) = socket.split();
    if let Err(error) = greet(&mut sink, greeting(inner, session)).await {
        tracing::warn!(%error, "connection to the engine lost while greeting");
        return false;
    }
    link.attach(sink).await;
    inner
        .was_connected
        .store(true, std::sync::atomic::Ordering::Release);
    inner.connected.send_replace(true);
    if let Some(table) = &table {
        end_socket::offer(&inner.address, table);
    }
    let pings = Pings::default();
    let (urgent, mut urgent_queue) = mpsc::unbounded_channel();
    let mut lost = IIIError::Connection("the connection to the engine was lost".into());
    let heard = Heard::default();
    let stopping = {
        let reading = read_loop(
            inner,
            &mut stream,
            &heard,
            &pings,
            &urgent,
            session,
            table.as_ref(),
        );
        let writing = link.write_loop(&mut urgent_queue, outbound, &pings, &mut frames_queue);
        let watching = watch_engine(&heard, &pinger, &inner.options);
        tokio::pin!(reading, writing, watching);
        let stopping = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => true,
            () = &mut watching => {
                tracing::warn!("the engine answered nothing, not even a ping: reconnecting");
                false
            }
            reason = &mut reading => {
                tracing::warn!(%reason, "connection to the engine lost");
                if let Lost::GoingAway(_) = reason {
                    lost = IIIError::GoingAway;
                }
                false
            }
            reason = &mut writing => {
                tracing::warn!(%reason, "connection to the engine lost");
                false
            }
        };
        if let (true, Some(table)) = (stopping, &table) {
            // Channel ends on this connection's streams finish first (bounded), as ends with
            // sockets of their own would outlive it: a handler still writing a response is
            // not cut off by the shutdown.
            let drained = async {
                while !table.is_empty() {
                    tokio::time::sleep(STREAM_DRAIN_POLL).await;
                }
            };
            tokio::select! {
                _ = drained => {}
                _ = &mut reading => {}
                _ = &mut writing => {}
                _ = tokio::time::sleep(STREAM_DRAIN_GRACE) => {
                    tracing::warn!(streams = table.len(), "shutting down with channel streams still open");
                }
            }
        }
        stopping
    };
    let error = if stopping { IIIError::Shutdown } else { lost };
    inner.connected.send_replace(false);
    if let Some(table) = &table {
        // Its streams end as their sockets would if they dropped.
        end_socket::withdraw(table);
        if matches!(error, IIIError::GoingAway) {
            let (code, reason) = iii_protocol::EndStatus::GoingAway.to_close();
            table.shut_with(Some((code, reason)));
        } else {
            table.shut();
        }
    }
    let sink = link.detach(&error).await;
    if let (true, Some(mut sink)) = (stopping, sink) {
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, goodbye(&mut sink, outbound)).await;
    }
    stopping
}

async fn greet(
    sink: &mut Sink,
    greeting: Vec<String>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    for text in greeting {
        sink.feed(WsMessage::Text(text.into())).await?;
    }
    sink.flush().await
}

/// The first messages of a connection: `reattach`, every registration, then the worker's
/// description. Registration changes queued so far are covered by the replay.
fn greeting(inner: &WorkerState, session: &Session) -> Vec<String> {
    inner.link.clear_registrations();
    let mut texts = Vec::new();
    if let (Some(id), Some(token)) = (&session.worker_id, &session.reattach_token) {
        let reattach = Message::Reattach {
            previous_worker_id: Some(id.clone()),
            reattach_token: Some(token.clone()),
        };
        texts.push(reattach.to_json());
    }
    texts.extend(
        lock(&inner.trigger_types)
            .values()
            .map(|(_, provided)| provided.message().to_json()),
    );
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
    texts.push(inner.options.description_message());
    texts
}

/// Frames received from the engine so far (a count, not a clock: nothing is lost to rounding).
#[derive(Default)]
struct Heard(AtomicU64);

impl Heard {
    /// Something arrived from the engine.
    fn now(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Frames received so far.
    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Resolves when the engine has sent nothing, not even the answer to a ping, for the ping
/// interval and then the ping timeout (a vanished machine, a dropped route, a frozen
/// engine); never when the check is off.
async fn watch_engine(heard: &Heard, pinger: &mpsc::Sender<WsMessage>, options: &InitOptions) {
    if options.ping_interval_ms == 0 {
        return std::future::pending().await;
    }
    let interval = Duration::from_millis(options.ping_interval_ms);
    let timeout = Duration::from_millis(options.ping_timeout_ms.max(1));
    loop {
        // Quiet for a whole interval? Anything heard meanwhile starts it again.
        let before = heard.count();
        tokio::time::sleep(interval).await;
        if heard.count() != before {
            continue;
        }
        // Ping (behind what is queued; a full queue still counts) and wait for anything.
        let pinged = heard.count();
        let _ = pinger.try_send(WsMessage::Ping(Default::default()));
        tokio::time::sleep(timeout).await;
        if heard.count() == pinged {
            return;
        }
    }
}

/// Why the engine's socket ended, as read.
enum Lost {
    /// The engine closed it with 1001: it is shutting down.
    GoingAway(String),
    /// It closed otherwise, or failed.
    Other(String),
}

impl std::fmt::Display for Lost {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::GoingAway(reason) | Self::Other(reason) => formatter.write_str(reason),
        }
    }
}

/// Reads the engine's messages until the socket ends. Returns why it ended.
async fn read_loop(
    inner: &Arc<WorkerState>,
    stream: &mut Stream,
    heard: &Heard,
    pings: &Pings,
    urgent: &mpsc::UnboundedSender<String>,
    session: &mut Session,
    streams: Option<&Arc<StreamTable>>,
) -> Lost {
    while let Some(frame) = stream.next().await {
        heard.now();
        let text = match frame {
            Ok(WsMessage::Text(text)) => text,
            Ok(WsMessage::Binary(bytes)) => {
                if let Some(table) = streams {
                    // The engine never opens streams; an `open` from it is dropped (closed).
                    drop(table.route(bytes));
                }
                continue;
            }
            Ok(WsMessage::Close(frame)) => {
                let reason = format!("the engine closed the socket: {frame:?}");
                let going_away = frame
                    .is_some_and(|frame| u16::from(frame.code) == iii_protocol::close::GOING_AWAY);
                return if going_away {
                    Lost::GoingAway(reason)
                } else {
                    Lost::Other(reason)
                };
            }
            Ok(_) => continue,
            Err(error) => return Lost::Other(error.to_string()),
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
                metadata,
                traceparent,
                tracestate,
                baggage,
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
                    metadata,
                    trace: TraceContext {
                        traceparent,
                        tracestate,
                        baggage,
                    },
                    address: inner.address.clone(),
                };
                let replier = inner.clone();
                let reply = move |text| async move {
                    if let Err(error) = replier.send(Outbound::Send(text)).await {
                        tracing::debug!(%error, "an invocation result could not be sent");
                    }
                };
                dispatch(invocation, handler, reply, urgent);
            }
            Message::InvocationResult {
                invocation_id,
                result,
                error,
                ..
            } => {
                let result = match error {
                    Some(body) => Err(body.into()),
                    None => Ok(result.unwrap_or(Value::Null)),
                };
                inner.link.complete(&invocation_id, result);
            }
            Message::Pong => {
                if let Some(reply) = lock(pings).pop_front() {
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
            Message::RegisterTrigger {
                id,
                trigger_type,
                function_id,
                config,
                metadata,
            } => {
                let forwarded = trigger_type::Forwarded {
                    register: true,
                    id,
                    trigger_type,
                    function_id,
                    config,
                    metadata,
                };
                trigger_type::dispatch(inner, forwarded, urgent);
            }
            Message::UnregisterTrigger {
                id,
                trigger_type: Some(trigger_type),
            } => {
                let forwarded = trigger_type::Forwarded {
                    register: false,
                    id,
                    trigger_type,
                    function_id: String::new(),
                    config: Value::Null,
                    metadata: None,
                };
                trigger_type::dispatch(inner, forwarded, urgent);
            }
            Message::TriggerRegistrationResult {
                id,
                error: Some(error),
                ..
            } => tracing::warn!(trigger = %id, code = %error.code, reason = %error.message,
                "the engine rejected a trigger"),
            other => tracing::debug!(?other, "ignoring a message from the engine"),
        }
    }
    Lost::Other("the socket ended".into())
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
            // Streams ended with the connection.
            Outbound::Ping(_) | Outbound::Frame(_) => {}
        }
    }
    let _ = sink
        .send(WsMessage::Close(Some(close_frame(1000, "shutdown"))))
        .await;
}

/// The handshake request for `address`, with the options' extra headers; a header that is
/// not valid HTTP is [`IIIError::InvalidArgument`] (retrying could not fix it).
pub(crate) fn handshake_request(
    address: &str,
    options: &crate::InitOptions,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, IIIError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
    let mut request = address
        .into_client_request()
        .map_err(|error| IIIError::InvalidArgument(format!("engine URL {address}: {error}")))?;
    for (name, value) in options.handshake_headers() {
        let invalid = |what: &str| IIIError::InvalidArgument(format!("header {name:?}: {what}"));
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("bad name"))?;
        let value = HeaderValue::from_str(&value).map_err(|_| invalid("bad value"))?;
        request.headers_mut().append(header, value);
    }
    if crate::channel::end_socket::streams_wanted() {
        // Channel ends as streams on this socket, if the engine serves them (PROTOCOL.md §4.8).
        request.headers_mut().insert(
            iii_protocol::streams::HEADER,
            HeaderValue::from_static(iii_protocol::streams::VERSION),
        );
    }
    Ok(request)
}
