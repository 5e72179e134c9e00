//! A worker's main socket: the read loop that handles each JSON message, the writer task
//! that owns the socket's write half, and what happens when the worker goes away (its
//! functions and triggers die, calls it owed are answered `invocation_stopped`).

pub(crate) mod backlog;
pub(crate) mod dispatch;
pub(crate) mod outbound;
pub(crate) mod registrations;
pub(crate) mod registry;
pub(crate) mod streams;

use crate::access::Session;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use iii_protocol::Message;
use iii_protocol::close::{
    MESSAGE_TOO_BIG, REASON_MESSAGE_TOO_BIG, REASON_SLOW_CONSUMER, REASON_UNRESPONSIVE,
    SLOW_CONSUMER, UNRESPONSIVE,
};
use iii_streams::{Routed, StreamTable};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use uuid::Uuid;

use crate::invocations::stopped_error;
use crate::lifecycle::{Lifeline, Shutdown};
use crate::quota::Slots;
use crate::state::EngineState;
use crate::ws::{WsStream, close_frame, going_away, invalid_utf8, linger};
use backlog::Backlog;
use outbound::{OUTBOX_MESSAGES, Outbox, Queues, STREAM_FRAMES_QUEUED, run_writer};
use registry::{Attachment, ConnId, Peer};

/// One worker connection as the rest of the engine sees it.
pub(crate) struct Conn {
    /// The engine-wide connection id.
    pub(crate) id: ConnId,
    /// The worker id sent in `workerregistered`.
    pub(crate) worker_id: Uuid,
    /// The connection's outbound queue.
    pub(crate) outbox: Outbox,
    /// Channel ends opened as streams on this socket, when the worker asked for them.
    pub(crate) streams: Option<Arc<StreamTable>>,
    /// Channels this connection created that have not finished yet (its channel quota).
    pub(crate) channels: Slots,
    /// What this connection may do (its listener's rules and its auth function's grant).
    pub(crate) session: Session,
    /// Functions a registration hook renamed: the id the worker sent, and the one the engine
    /// knows (so the worker can unregister by its own id). At most one entry per engine id
    /// it holds, so bounded by its function quota.
    pub(crate) renamed: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Why a main socket's read loop ended.
enum End {
    /// The worker closed or dropped the socket.
    PeerGone,
    /// The worker sent a message over the limit.
    TooBig,
    /// The worker sent a text frame that is not UTF-8.
    InvalidText,
    /// The worker answered nothing, not even a ping, within the ping timeout.
    Unresponsive,
    /// The worker does not read what is sent to it (its queue stayed over its bound).
    SlowConsumer,
    /// The engine is shutting down.
    Shutdown,
}

impl End {
    /// Why the connection ended, in the engine's log.
    fn reason(&self) -> &'static str {
        match self {
            Self::PeerGone => "closed by the worker",
            Self::TooBig => "message too big",
            Self::InvalidText => "invalid text",
            Self::Unresponsive => "unresponsive",
            Self::SlowConsumer => "slow consumer",
            Self::Shutdown => "engine stopping",
        }
    }
}

/// Serves one worker's main socket until it closes.
pub(crate) async fn serve(
    shared: Arc<EngineState>,
    ws: WsStream,
    streams: bool,
    session: Session,
    peer: Peer,
    mut shutdown: Shutdown,
    lifeline: Lifeline,
) {
    let bytes_read = ws.get_ref().bytes_read();
    let (sink, mut stream) = ws.split();
    let (queue_tx, messages) = mpsc::channel(OUTBOX_MESSAGES);
    let (frames_tx, frames) = mpsc::channel(STREAM_FRAMES_QUEUED);
    let config = &shared.config;
    let backlog = Arc::new(Backlog::new(
        config.max_outbound_bytes,
        // One largest message, with room for its envelope and its count's overhead.
        config.max_main_message_bytes.saturating_add(4096),
        config.slow_consumer_timeout,
    ));
    let queues = Queues {
        messages,
        frames,
        backlog: backlog.clone(),
    };
    let (stop_writer, stop_rx) = oneshot::channel();
    let mut writer = tokio::spawn(run_writer(sink, queues, stop_rx, lifeline));
    let conn = Conn {
        id: shared.connections.next_id(),
        worker_id: Uuid::new_v4(),
        streams: streams
            .then(|| StreamTable::for_engine(frames_tx, tokio::runtime::Handle::current())),
        outbox: Outbox::new(queue_tx, backlog.clone()),
        channels: Slots::default(),
        session,
        renamed: Default::default(),
    };
    let attachment = Attachment {
        listener: peer.listener.clone(),
        address: peer.address,
        backlog,
    };
    (shared.connections).insert(conn.id, conn.worker_id.to_string(), attachment);
    tracing::info!(worker_id = %conn.worker_id, peer = %peer.address, listener = %peer.listener, "worker connected");
    let registered = Message::WorkerRegistered {
        worker_id: conn.worker_id.to_string(),
        reattach_token: Some(Uuid::new_v4().to_string()),
    };
    let for_streams = shutdown.clone();
    // A writer that stops on its own has lost the socket: the connection ends with it.
    let mut written_out = None;
    let end = tokio::select! {
        biased;
        _ = shutdown.wait() => End::Shutdown,
        sink = &mut writer => {
            written_out = Some(sink);
            End::PeerGone
        }
        end = async {
            conn.outbox.send(&registered);
            read_loop(&shared, &conn, &mut stream, &bytes_read, &for_streams).await
        } => end,
    };
    let close = match end {
        End::PeerGone => None,
        End::TooBig => Some(close_frame(MESSAGE_TOO_BIG, REASON_MESSAGE_TOO_BIG)),
        End::InvalidText => Some(invalid_utf8()),
        End::SlowConsumer => {
            let queued = conn.outbox.backlog().queued();
            tracing::warn!(worker_id = %conn.worker_id, queued, "dropping a worker that does not read its socket (slow consumer)");
            Some(close_frame(SLOW_CONSUMER, REASON_SLOW_CONSUMER))
        }
        End::Unresponsive => {
            tracing::warn!(worker_id = %conn.worker_id, "dropping an unresponsive worker");
            Some(close_frame(UNRESPONSIVE, REASON_UNRESPONSIVE))
        }
        End::Shutdown => Some(going_away()),
    };
    // Streams end as their sockets would if the connection dropped.
    if let Some(streams) = &conn.streams {
        streams.shut();
    }
    let _ = stop_writer.send(close);
    // Once the writer is done its queue is gone, so a call forwarded from now on fails at
    // once and is answered by its sender; calls forwarded before are answered below.
    let sink = match written_out {
        Some(sink) => sink.ok(),
        None => writer.await.ok(),
    };
    forget(&shared, &conn, matches!(end, End::Shutdown)).await;
    // A worker cut off while it still sends: read what it sends for a moment, so the socket
    // is not reset under the close frame.
    if let (End::TooBig | End::SlowConsumer, Some(sink)) = (&end, sink)
        && let Ok(mut ws) = stream.reunite(sink)
    {
        linger(ws.get_mut().tcp_mut()).await;
    }
    tracing::info!(
        worker_id = %conn.worker_id,
        peer = %peer.address,
        reason = end.reason(),
        "worker disconnected"
    );
}

async fn read_loop(
    shared: &Arc<EngineState>,
    conn: &Conn,
    stream: &mut SplitStream<WsStream>,
    bytes_read: &AtomicU64,
    shutdown: &Shutdown,
) -> End {
    let limit = shared.config.max_main_message_bytes;
    let mut liveness = Liveness::new(shared.config.ping_interval, shared.config.ping_timeout);
    let deadline = tokio::time::sleep(liveness.interval);
    tokio::pin!(deadline);
    loop {
        let message = tokio::select! {
            biased;
            () = conn.outbox.backlog().dropped() => return End::SlowConsumer,
            message = stream.next() => message,
            () = &mut deadline => {
                let now = Instant::now();
                let backlog = conn.outbox.backlog();
                if backlog.overdue(now) {
                    return End::SlowConsumer;
                }
                let seen = Seen {
                    bytes_read: bytes_read.load(Ordering::Relaxed),
                    ping_written_at: backlog.ping_written_at(),
                };
                let Some(next) = liveness.tick(now, &conn.outbox, seen) else {
                    return End::Unresponsive;
                };
                let next = match backlog.overdue_at() {
                    Some(at) => next.min(at),
                    None => next,
                };
                deadline.as_mut().reset(next.into());
                continue;
            }
        };
        let Some(message) = message else {
            return End::PeerGone;
        };
        liveness.heard(Instant::now());
        match message {
            Ok(WsMessage::Text(text)) if text.len() > limit => return End::TooBig,
            Ok(WsMessage::Text(text)) => dispatch::handle(shared, conn, text.as_str()).await,
            Ok(WsMessage::Binary(bytes)) => match &conn.streams {
                Some(table) => {
                    if let Routed::Open(socket, payload) = table.route(bytes) {
                        let serving =
                            streams::serve_open(shared.clone(), socket, payload, shutdown.clone());
                        tokio::spawn(serving);
                    }
                }
                None => tracing::debug!(
                    len = bytes.len(),
                    "ignoring a binary frame on a main socket"
                ),
            },
            Ok(WsMessage::Close(_)) => return End::PeerGone,
            Ok(_) => {}
            Err(WsError::Capacity(error)) => {
                tracing::debug!(%error, "main socket message too big");
                return End::TooBig;
            }
            Err(WsError::Utf8(error)) => {
                tracing::debug!(%error, "main socket text frame is not UTF-8");
                return End::InvalidText;
            }
            Err(error) => {
                tracing::debug!(%error, "main socket failed");
                return End::PeerGone;
            }
        }
    }
}

/// When a main socket last spoke and whether the engine is waiting for it to answer a ping.
/// Checked by one timer that fires at most once per interval, not per message.
struct Liveness {
    interval: Duration,
    timeout: Duration,
    last_heard: Instant,
    pinged_at: Option<Instant>,
    /// What the connection had seen when it was pinged (see [`Liveness::tick`]).
    at_ping: Seen,
    /// The timeout was extended once for a ping still queued behind other messages.
    extended: bool,
}

/// What liveness compares between ticks.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Seen {
    /// Bytes read from the worker's socket: a sign of life even before a whole message (a
    /// large one on its way, which its Pong cannot interrupt).
    bytes_read: u64,
    /// When the engine last wrote a ping to the socket.
    ping_written_at: Option<Instant>,
}

impl Liveness {
    fn new(interval: Duration, timeout: Duration) -> Self {
        Self {
            interval,
            timeout,
            last_heard: Instant::now(),
            pinged_at: None,
            at_ping: Seen::default(),
            extended: false,
        }
    }

    /// Anything arrived from the worker: it is alive.
    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.pinged_at = None;
    }

    /// The timer fired at `now`: pings a socket quiet for an interval. Returns when to check
    /// next, or `None` when a ping went unanswered for the timeout and no byte arrived since.
    /// Bytes arriving (a large message on its way) give another timeout. The timeout runs from
    /// when the ping was written, not queued; a ping still queued behind other messages when
    /// the timeout ends gets one more timeout, once. Messages the engine writes never count: a
    /// frozen process's kernel buffers take them too.
    fn tick(&mut self, now: Instant, outbox: &outbound::Outbox, seen: Seen) -> Option<Instant> {
        match self.pinged_at {
            Some(at) if now >= at + self.timeout => {
                let written = seen.ping_written_at.filter(|written| *written >= at);
                if seen.bytes_read != self.at_ping.bytes_read {
                    self.at_ping.bytes_read = seen.bytes_read;
                } else if let Some(written) = written
                    && now < written + self.timeout
                {
                    // Written late: the worker gets its whole timeout from then.
                    return Some(written + self.timeout);
                } else if written.is_none() && !self.extended {
                    self.extended = true;
                } else {
                    return None;
                }
                self.pinged_at = Some(now);
                Some(now + self.timeout)
            }
            Some(at) => Some(at + self.timeout),
            None if now >= self.last_heard + self.interval => {
                // A ping that finds the queue full is not sent, but the silence still counts.
                outbox.ping();
                self.pinged_at = Some(now);
                self.at_ping = seen;
                self.extended = false;
                Some(now + self.timeout)
            }
            None => Some(self.last_heard + self.interval),
        }
    }
}

/// Removes everything the connection registered and answers the calls it owed.
async fn forget(shared: &EngineState, conn: &Conn, stopping: bool) {
    shared.connections.remove(conn.id);
    shared.functions.remove_connection(conn.id);
    shared.trigger_types.remove_connection(conn.id);
    registrations::withdraw_connection_triggers(shared, conn);
    shared.routes.remove_connection(conn.id);
    let stopped = shared.invocations.connection_gone(conn.id);
    if stopping {
        return;
    }
    for (caller, function_id) in stopped {
        let error = stopped_error(&function_id);
        caller.fail(function_id, error).await;
    }
}
