//! Channel ends owned by a peer. Workers build a channel's URL from their own engine, so an
//! end of a channel another node owns arrives here; this node opens the same end on the
//! owner (`{advertise}/ws/channels/{id}?key=…&dir=…`, the per-end key checked there exactly
//! as for a local socket) and relays frames both ways, one frame (or one batch) at a time, so
//! the owner's bounded buffer and its backpressure hold end to end. Close frames pass through
//! unchanged and in order; an owner that vanishes is `going away` (1001) to the worker, never
//! a clean end; a worker that vanishes is dropped on the owner without a close, which the
//! owner reports as a lost end.

use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use iii_protocol::ChannelDirection;
use iii_protocol::close::GOING_AWAY;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::{ChannelHome, Cluster};
use crate::lifecycle::Shutdown;
use crate::state::EngineState;
use crate::ws::{EndSocket, SocketKind, close_and_drain, close_frame, going_away, socket_config};

/// A channel end opened on its owner.
pub(crate) type Upstream = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl EndSocket for Upstream {
    /// Nothing to discard: the relay never closes the owner on an oversized frame.
    async fn linger(&mut self) {}
}

/// How long opening an end on its owner may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most frames, and bytes (beyond the first frame), passed on between two flushes.
const MAX_BATCH: usize = 64;
const MAX_BATCH_BYTES: u64 = 1 << 20;

/// The close reason a worker reads when the node owning its channel is lost.
const REASON_OWNER_LOST: &str = "the node owning the channel was lost";

/// TLS for peers' `wss://` URLs: the Mozilla roots and `ca_files`.
pub(crate) fn peer_connector(ca_files: &[PathBuf]) -> Result<Option<Connector>, String> {
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in ca_files {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut reader = std::io::BufReader::new(pem.as_slice());
        for certificate in rustls_pemfile_certs(&mut reader) {
            let certificate = certificate.map_err(|e| format!("{}: {e}", path.display()))?;
            roots
                .add(certificate)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(iii_protocol::tls::provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Connector::Rustls(Arc::new(config))))
}

/// The certificates in a PEM file.
fn rustls_pemfile_certs(
    reader: &mut dyn std::io::BufRead,
) -> impl Iterator<
    Item = Result<tokio_rustls::rustls::pki_types::CertificateDer<'static>, std::io::Error>,
> + '_ {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    CertificateDer::pem_reader_iter(reader).map(|found| found.map_err(std::io::Error::other))
}

/// A channel end this node relays: the owner, and the end as the worker named it.
pub(crate) struct ForeignEnd {
    node: Arc<str>,
    advertise: String,
    channel_id: String,
    key: String,
    direction: ChannelDirection,
}

/// The end a channel socket's request names, when a live peer owns its channel.
pub(crate) fn foreign_end(shared: &EngineState, path: &str, query: &str) -> Option<ForeignEnd> {
    shared.cluster.get()?;
    let channel_id = path.strip_prefix("/ws/channels/")?;
    // A bad query is not relayed: the local route refuses it (400).
    let (key, direction) = crate::listener::channel_query(query).ok()?;
    foreign_ref(shared, channel_id, key, direction)
}

/// The end a channel ref names, when a live peer owns its channel.
pub(crate) fn foreign_ref(
    shared: &EngineState,
    channel_id: &str,
    key: String,
    direction: ChannelDirection,
) -> Option<ForeignEnd> {
    match super::channel_home(shared, channel_id) {
        ChannelHome::Peer { node, advertise } => Some(ForeignEnd {
            node,
            advertise,
            channel_id: channel_id.to_string(),
            key,
            direction,
        }),
        ChannelHome::Local | ChannelHome::Unknown => None,
    }
}

/// How opening an end on its owner went.
pub(crate) enum Opened {
    /// The owner took the end.
    Open(Box<Upstream>),
    /// The owner refused it (unknown channel or key: 404; a bad request: 400).
    Refused(StatusCode),
    /// The owner could not be reached.
    Unreachable(String),
}

/// Opens `end` on its owner.
pub(crate) async fn open(cluster: &Cluster, end: &ForeignEnd) -> Opened {
    let key: String = form_urlencoded::byte_serialize(end.key.as_bytes()).collect();
    let url = format!(
        "{}/ws/channels/{}?key={key}&dir={}",
        end.advertise.trim_end_matches('/'),
        end.channel_id,
        end.direction
    );
    let kind = match end.direction {
        ChannelDirection::Write => SocketKind::ChannelReader,
        ChannelDirection::Read => SocketKind::ChannelWriter,
    };
    // The owner's side of the socket is the opposite kind: this node writes what a writer
    // sends and reads what a reader gets.
    let config = socket_config(kind, iii_protocol::limits::MAX_MAIN_MESSAGE_BYTES);
    let tls = cluster.peer_tls.clone();
    let connecting = tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, tls);
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok((socket, _))) => Opened::Open(Box::new(socket)),
        Ok(Err(WsError::Http(response))) => Opened::Refused(response.status()),
        Ok(Err(error)) => Opened::Unreachable(error.to_string()),
        Err(_) => Opened::Unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// Counts a relay as open while it lives.
struct OpenRelay<'a>(&'a Cluster);

impl<'a> OpenRelay<'a> {
    fn new(cluster: &'a Cluster) -> Self {
        cluster
            .counters
            .relays_opened
            .fetch_add(1, Ordering::Relaxed);
        cluster.counters.relays_open.fetch_add(1, Ordering::Relaxed);
        Self(cluster)
    }
}

impl Drop for OpenRelay<'_> {
    fn drop(&mut self) {
        self.0.counters.relays_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a relay ended.
enum Ended {
    /// The worker closed its end (this frame goes on to the owner).
    WorkerClosed(Option<CloseFrame>),
    /// The worker's socket dropped without a close.
    WorkerLost,
    /// The owner closed the end (this frame goes on to the worker).
    OwnerClosed(Option<CloseFrame>),
    /// The owner's socket dropped, or the owner was lost from the cluster.
    OwnerLost,
    /// This engine is stopping.
    Shutdown,
}

/// What a frame read from one side means for the relay.
enum Read {
    Data(WsMessage),
    Control,
    Close(Option<CloseFrame>),
    Lost,
}

fn classify(message: Option<Result<WsMessage, WsError>>) -> Read {
    match message {
        Some(Ok(message @ (WsMessage::Binary(_) | WsMessage::Text(_)))) => Read::Data(message),
        Some(Ok(WsMessage::Close(frame))) => Read::Close(frame),
        Some(Ok(_)) => Read::Control,
        Some(Err(_)) | None => Read::Lost,
    }
}

fn data_len(message: &WsMessage) -> u64 {
    message.len() as u64
}

/// Relays `worker` (a socket or a stream on this node) and `owner` (the same end on the
/// owning node) until either ends, then passes the end on as the module describes.
pub(crate) async fn relay<S: EndSocket>(
    cluster: Arc<Cluster>,
    node: Arc<str>,
    mut worker: S,
    mut owner: Upstream,
    mut shutdown: Shutdown,
) {
    let _open = OpenRelay::new(&cluster);
    let counters = &cluster.counters;
    let mut lost = pin!(owner_lost(&cluster, &node));
    // Made once, not per step: each `wait` registers with the stop signal.
    let mut stopping = pin!(shutdown.wait());
    // Not biased: under a steady stream one direction is always ready, and the other (a
    // reader's close, pings) must still be read. Loss and shutdown also cut a step stuck on
    // a peer that stopped reading.
    let ended = loop {
        tokio::select! {
            _ = &mut stopping => break Ended::Shutdown,
            _ = &mut lost => break Ended::OwnerLost,
            ended = step(&mut owner, &mut worker, counters) => {
                if let Some(ended) = ended {
                    break ended;
                }
            }
        }
    };
    match ended {
        Ended::WorkerClosed(frame) => {
            // The owner's echo says every frame before the close is in its buffer: only
            // then does the worker get its own echo (queued by tungstenite, sent on flush).
            let confirmed = async {
                owner.send(WsMessage::Close(frame)).await.ok()?;
                loop {
                    match classify(owner.next().await) {
                        Read::Close(_) => return Some(()),
                        Read::Lost => return None,
                        Read::Data(_) | Read::Control => {}
                    }
                }
            };
            let confirmed = tokio::select! {
                confirmed = confirmed => confirmed.is_some(),
                _ = &mut lost => false,
                _ = &mut stopping => false,
            };
            if confirmed {
                close_and_drain(&mut worker, None).await;
            } else {
                // The worker's end goes without its echo: its stream did not land.
                worker.abandon();
            }
        }
        Ended::OwnerClosed(frame) => {
            close_and_drain(&mut worker, frame).await;
            close_and_drain(&mut owner, None).await;
        }
        Ended::OwnerLost => close_and_drain(&mut worker, Some(owner_lost_frame())).await,
        // Dropping the owner's socket without a close: the owner reports a lost end.
        Ended::WorkerLost => {}
        Ended::Shutdown => close_and_drain(&mut worker, Some(going_away())).await,
    }
}

/// Moves what one side has ready (a batch of frames) to the other and flushes it; the end of
/// the relay when a side closed or was lost.
async fn step<S: EndSocket>(
    owner: &mut Upstream,
    worker: &mut S,
    counters: &super::ClusterCounters,
) -> Option<Ended> {
    tokio::select! {
        message = owner.next() => match classify(message) {
            Read::Data(first) => {
                let (sent, batch) = pass_batch(owner, worker, first).await;
                counters.relayed_from_owner.fetch_add(sent, Ordering::Relaxed);
                match batch {
                    Batch::Passed => worker.flush().await.err().map(|_| Ended::WorkerLost),
                    Batch::SourceClosed(frame) => Some(Ended::OwnerClosed(frame)),
                    Batch::SourceLost => Some(Ended::OwnerLost),
                    Batch::DestinationLost => Some(Ended::WorkerLost),
                }
            }
            Read::Control => None,
            Read::Close(frame) => Some(Ended::OwnerClosed(frame)),
            Read::Lost => Some(Ended::OwnerLost),
        },
        message = worker.next() => match classify(message) {
            Read::Data(first) => {
                let (sent, batch) = pass_batch(worker, owner, first).await;
                counters.relayed_to_owner.fetch_add(sent, Ordering::Relaxed);
                match batch {
                    Batch::Passed => owner.flush().await.err().map(|_| Ended::OwnerLost),
                    Batch::SourceClosed(frame) => Some(Ended::WorkerClosed(frame)),
                    Batch::SourceLost => Some(Ended::WorkerLost),
                    Batch::DestinationLost => Some(Ended::OwnerLost),
                }
            }
            Read::Control => None,
            Read::Close(frame) => Some(Ended::WorkerClosed(frame)),
            Read::Lost => Some(Ended::WorkerLost),
        },
    }
}

/// Returns once the membership says the owner is lost while this node is in touch with
/// NATS. Cut off from NATS, this node cannot tell (every peer ages out of its view alike):
/// the relay then trusts its own connection to the owner, which breaks when the owner dies.
async fn owner_lost(cluster: &Cluster, node: &str) {
    match cluster.members.incarnation(node) {
        Some(incarnation) => cluster.members.until_truly_lost(node, &incarnation).await,
        None => std::future::pending().await,
    }
}

/// How passing a batch went.
enum Batch {
    /// Passed (not flushed yet).
    Passed,
    /// The source closed after what was passed.
    SourceClosed(Option<CloseFrame>),
    /// The source's socket dropped.
    SourceLost,
    /// The destination no longer takes frames.
    DestinationLost,
}

/// Passes `first` and whatever else `from` has ready (up to a batch) to `to` without
/// flushing. Returns the bytes passed, and what stopped the batch.
async fn pass_batch<F, T>(from: &mut F, to: &mut T, first: WsMessage) -> (u64, Batch)
where
    F: futures_util::Stream<Item = Result<WsMessage, WsError>> + Unpin,
    T: futures_util::Sink<WsMessage, Error = WsError> + Unpin,
{
    let mut sent = data_len(&first);
    if to.feed(first).await.is_err() {
        return (sent, Batch::DestinationLost);
    }
    for _ in 1..MAX_BATCH {
        if sent >= MAX_BATCH_BYTES {
            break;
        }
        let Some(message) = from.next().now_or_never() else {
            break;
        };
        match classify(message) {
            Read::Data(message) => {
                sent += data_len(&message);
                if to.feed(message).await.is_err() {
                    return (sent, Batch::DestinationLost);
                }
            }
            Read::Control => {}
            Read::Close(frame) => return (sent, Batch::SourceClosed(frame)),
            Read::Lost => return (sent, Batch::SourceLost),
        }
    }
    (sent, Batch::Passed)
}

/// The close frame a worker gets when the owner of its channel is lost.
fn owner_lost_frame() -> CloseFrame {
    close_frame(GOING_AWAY, REASON_OWNER_LOST)
}

/// Serves a channel socket whose channel a peer owns: opens the end there first, so a
/// refusal reaches the worker as the owner's HTTP status, then relays.
pub(crate) async fn serve_socket(
    shared: Arc<EngineState>,
    io: crate::tcp::Io,
    end: ForeignEnd,
    kind: SocketKind,
    shutdown: Shutdown,
) {
    let Some(cluster) = shared.cluster.get().cloned() else {
        return;
    };
    let owner = match open(&cluster, &end).await {
        Opened::Open(owner) => owner,
        Opened::Refused(status) => {
            let error = iii_protocol::ErrorBody::new(
                iii_protocol::codes::NOT_FOUND,
                format!("node {} refused the channel end ({status})", end.node),
            );
            crate::health::answer_and_close(io, status, &error).await;
            return;
        }
        Opened::Unreachable(why) => {
            tracing::warn!(node = %end.node, %why, "cannot reach the node owning a channel");
            let error = iii_protocol::ErrorBody::new(
                iii_protocol::codes::INVOCATION_STOPPED,
                format!("node {} owning the channel cannot be reached", end.node),
            );
            crate::health::answer_and_close(io, StatusCode::BAD_GATEWAY, &error).await;
            return;
        }
    };
    let config = socket_config(kind, shared.config.max_main_message_bytes);
    let accepting =
        tokio_tungstenite::accept_async_with_config(crate::tcp::CountingTcp::new(io), Some(config));
    let worker = match tokio::time::timeout(CONNECT_TIMEOUT, accepting).await {
        Ok(Ok(worker)) => worker,
        _ => return,
    };
    relay(cluster, end.node, worker, *owner, shutdown).await;
}

/// Serves a channel stream (inside a worker's main socket) whose channel a peer owns.
pub(crate) async fn serve_stream(
    shared: Arc<EngineState>,
    mut socket: iii_streams::StreamSocket,
    end: ForeignEnd,
    shutdown: Shutdown,
) {
    let Some(cluster) = shared.cluster.get().cloned() else {
        return;
    };
    match open(&cluster, &end).await {
        Opened::Open(owner) => {
            socket.opened().await;
            relay(cluster, end.node, socket, *owner, shutdown).await;
        }
        Opened::Refused(_) => {
            use iii_protocol::streams::{NOT_FOUND, REASON_NOT_FOUND};
            close_and_drain(&mut socket, Some(close_frame(NOT_FOUND, REASON_NOT_FOUND))).await;
        }
        Opened::Unreachable(why) => {
            tracing::warn!(node = %end.node, %why, "cannot reach the node owning a channel");
            socket.opened().await;
            close_and_drain(&mut socket, Some(owner_lost_frame())).await;
        }
    }
}
