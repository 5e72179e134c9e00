//! The accept loop, and routing of each upgrade request by path: `/` is a worker's main
//! socket, `/otel` is telemetry (accepted and discarded), `/ws/channels/{id}?key=&dir=` is a
//! channel end. Bad channel requests are refused with 400/404 before the upgrade, decided
//! in the handshake callback from the channel registry. A request without an upgrade is plain
//! HTTP (`/health`, see [`crate::health`]).
//!
//! Before any upgrade, the request head is read for the listener's access rules
//! ([`crate::access`]): browser origins and DNS-rebinding hosts are refused with 403, and a
//! worker socket on a listener with an auth function is admitted (or refused with 401) by it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use iii_protocol::codes::BAD_REQUEST;
use iii_protocol::{ChannelDirection, EndStatus};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::accept_hdr_async_with_config;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

use crate::accept::accept_loop;
use crate::access::auth::{Refusal, UpgradeHead};
use crate::access::{self, ListenerPolicy, Session};
use crate::channels::Channel;
use crate::channels::registry::{ChannelRegistry, Lookup};
use crate::lifecycle::{Lifeline, Shutdown};
use crate::state::EngineState;
use crate::tcp::CountingTcp;
use crate::worker::registry::Peer;
use crate::ws::{SocketKind, WsStream, close_and_drain, going_away, socket_config, status_frame};

/// How long a client may take to send its upgrade request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a request's head is peeked (not consumed) to tell plain HTTP from an upgrade,
/// what kind of socket an upgrade is, and what its access rules see; a longer head is
/// refused with 431.
const PEEK_BYTES: usize = 16 * 1024;

/// Where an upgrade request goes.
enum Route {
    Main,
    Otel,
    Channel(Arc<Channel>, ChannelDirection),
    Tombstone(EndStatus),
}

/// One worker listener's rules, and whether it is bound to a loopback address (then only
/// loopback `Host` names are accepted).
struct Rules {
    /// The listener's local address, as `/status` and the metrics name it.
    name: Arc<str>,
    policy: Arc<ListenerPolicy>,
    loopback: bool,
    /// Set on a `wss://` listener.
    tls: Option<TlsAcceptor>,
}

/// Accepts connections until the engine stops.
pub(crate) async fn run(
    listener: TcpListener,
    policy: Arc<ListenerPolicy>,
    tls: Option<TlsAcceptor>,
    shared: Arc<EngineState>,
    shutdown: Shutdown,
    lifeline: Lifeline,
) {
    let loopback = (listener.local_addr()).is_ok_and(|addr| addr.ip().is_loopback());
    let name: Arc<str> =
        (listener.local_addr()).map_or_else(|_| "unknown".into(), |a| a.to_string().into());
    shared.add_listener(name.clone());
    let rules = Arc::new(Rules {
        name,
        policy,
        loopback,
        tls,
    });
    let stop = shutdown.clone();
    accept_loop(listener, stop, move |stream, peer| {
        handle(
            stream,
            peer,
            rules.clone(),
            shared.clone(),
            shutdown.clone(),
            lifeline.clone(),
        )
    })
    .await;
}

/// The session a worker socket gets (`None` for a channel socket), or why the request is
/// refused before its upgrade.
async fn admit(
    shared: &EngineState,
    rules: &Rules,
    head: &[u8],
    peer: SocketAddr,
) -> Result<Option<Session>, Refusal> {
    let Some(parsed) = UpgradeHead::parse(head) else {
        let (status, why) = if head.len() >= PEEK_BYTES {
            let why = format!("the request head is over {PEEK_BYTES} bytes");
            (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, why)
        } else {
            (
                StatusCode::BAD_REQUEST,
                "not an HTTP request head".to_string(),
            )
        };
        return Err(Refusal::new(status, BAD_REQUEST, why));
    };
    access::origin::check(&rules.policy, rules.loopback, &parsed)?;
    if !parsed.is_worker_socket() {
        return Ok(None);
    }
    access::auth::authenticate(shared, &rules.policy, &parsed, peer)
        .await
        .map(Some)
}

async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    rules: Arc<Rules>,
    shared: Arc<EngineState>,
    mut shutdown: Shutdown,
    lifeline: Lifeline,
) {
    // Every socket counts from its first byte (a slow or idle client too); one over the
    // limit is answered 503 at once, whatever it asks for, and closed.
    let Some(admitted) = crate::quota::take_connection(&shared, stream, peer).await else {
        return;
    };
    let (stream, slot) = (admitted.stream, admitted.slot);
    let opening = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        crate::accept::open(stream, rules.tls.as_ref(), PEEK_BYTES),
    );
    let opened = tokio::select! {
        opened = opening => opened,
        _ = shutdown.wait() => return,
    };
    let (io, head) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "connection lost before its request (or its TLS handshake failed)");
            return;
        }
        Err(_) => return,
    };
    let head = head.as_slice();
    if crate::health::is_plain_request(head) {
        let view = crate::health::View {
            policy: rules.policy.clone(),
            loopback: rules.loopback,
        };
        crate::health::serve(io, shared.clone(), view, shutdown).await;
        return;
    }
    let admitted = tokio::select! {
        admitted = admit(&shared, &rules, head, peer) => admitted,
        _ = shutdown.wait() => return,
    };
    let session = match admitted {
        Ok(session) => session,
        Err(refusal) => {
            tracing::info!(%peer, status = %refusal.status, message = %refusal.error.message, "upgrade refused");
            if let Some(metrics) = &shared.metrics {
                metrics.refused("upgrade", &refusal.error.code);
            }
            crate::health::answer_and_close(io, refusal.status, &refusal.error).await;
            return;
        }
    };
    let kind = socket_kind(head);
    if session.is_none()
        && let Some(end) = foreign_end(&shared, head)
    {
        // A channel a peer owns: relayed there (docs/CLUSTER.md).
        crate::cluster::relay::serve_socket(shared, io, end, kind, shutdown).await;
        drop(slot);
        return;
    }
    let mut route = None;
    let mut streams = false;
    let admitted_as_worker = session.is_some();
    // The callback's signature is tungstenite's; its error is the refusal response.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, mut response: Response| {
        match decide(request, &shared.channels) {
            // A worker socket that the access rules did not see as one (a request target
            // the two parsers read differently) is never served.
            Ok(Route::Main | Route::Otel) if !admitted_as_worker => Err(refuse_because(
                StatusCode::BAD_REQUEST,
                "request target not understood".to_string(),
            )),
            Ok(Route::Main) if shared.is_draining() => Err(refuse_because(
                StatusCode::SERVICE_UNAVAILABLE,
                "the engine is stopping".to_string(),
            )),
            Ok(decided) => {
                if let Route::Main = decided
                    && wants_streams(request)
                {
                    // Channel streams on this main socket (docs/PROTOCOL.md §4.8).
                    response.headers_mut().insert(
                        iii_protocol::streams::HEADER,
                        HeaderValue::from_static(iii_protocol::streams::VERSION),
                    );
                    streams = true;
                }
                route = Some(decided);
                Ok(response)
            }
            Err(status) => Err(refuse(status)),
        }
    };
    let max_main_message_bytes = shared.config.max_main_message_bytes;
    let upgrade = tokio::time::timeout(HANDSHAKE_TIMEOUT, async move {
        let config = socket_config(kind, max_main_message_bytes);
        accept_hdr_async_with_config(CountingTcp::new(io), callback, Some(config)).await
    });
    let upgraded = tokio::select! {
        upgraded = upgrade => upgraded,
        _ = shutdown.wait() => return,
    };
    let mut ws = match upgraded {
        Ok(Ok(ws)) => ws,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "upgrade refused or failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "upgrade timed out");
            return;
        }
    };
    match route {
        Some(Route::Main) => match session {
            Some(session) => {
                let attached = Peer {
                    listener: rules.name.clone(),
                    address: peer,
                };
                crate::worker::serve(shared, ws, streams, session, attached, shutdown, lifeline)
                    .await
            }
            None => close_and_drain(&mut ws, Some(going_away())).await,
        },
        Some(Route::Otel) => discard(ws, shutdown).await,
        Some(Route::Channel(channel, direction)) => {
            crate::channels::relay::serve_end(
                shared.channels.clone(),
                ws,
                channel,
                direction,
                shutdown,
            )
            .await;
        }
        Some(Route::Tombstone(status)) => {
            close_and_drain(&mut ws, Some(status_frame(&status))).await;
        }
        None => close_and_drain(&mut ws, Some(going_away())).await,
    }
    drop(slot);
}

/// The channel end a request names, when a peer owns its channel (cluster mode only).
fn foreign_end(shared: &EngineState, head: &[u8]) -> Option<crate::cluster::relay::ForeignEnd> {
    shared.cluster.get()?;
    let parsed = UpgradeHead::parse(head)?;
    crate::cluster::relay::foreign_end(shared, &parsed.path, &parsed.query)
}

/// True when a worker's upgrade request asks for channel streams in the version we serve.
fn wants_streams(request: &Request) -> bool {
    request
        .headers()
        .get(iii_protocol::streams::HEADER)
        .is_some_and(|value| iii_protocol::streams::accepts(value.as_bytes()))
}

/// What the connecting socket is, from a peek at its request (see [`SocketKind`]).
fn socket_kind(head: &[u8]) -> SocketKind {
    let line = head.split(|byte| *byte == b'\r').next().unwrap_or_default();
    if line.starts_with(b"GET /otel") {
        SocketKind::Otel
    } else if !line.starts_with(b"GET /ws/channels/") {
        let streams = iii_protocol::streams::HEADER.as_bytes();
        let asks_for_streams = head
            .windows(streams.len())
            .any(|window| window.eq_ignore_ascii_case(streams));
        if asks_for_streams {
            SocketKind::MainWithStreams
        } else {
            SocketKind::Main
        }
    } else if line.windows(9).any(|window| window == b"dir=write") {
        SocketKind::ChannelWriter
    } else {
        SocketKind::ChannelReader
    }
}

/// Reads and drops everything a telemetry socket sends.
async fn discard(mut ws: WsStream, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => {
                close_and_drain(&mut ws, Some(going_away())).await;
                return;
            }
            message = ws.next() => match message {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}

fn decide(request: &Request, channels: &ChannelRegistry) -> Result<Route, StatusCode> {
    let path = request.uri().path();
    if path == "/" || path.is_empty() {
        return Ok(Route::Main);
    }
    if path == "/otel" || path.starts_with("/otel/") {
        return Ok(Route::Otel);
    }
    let Some(channel_id) = path.strip_prefix("/ws/channels/") else {
        return Err(StatusCode::NOT_FOUND);
    };
    let (key, direction) = channel_query(request.uri().query().unwrap_or_default())?;
    let Some(id) = channels.local_id(channel_id) else {
        return Err(StatusCode::NOT_FOUND);
    };
    match channels.lookup(&id, direction, &key) {
        Lookup::Live(channel) => Ok(Route::Channel(channel, direction)),
        Lookup::Tombstone(status) => Ok(Route::Tombstone(status)),
        Lookup::Unknown => Err(StatusCode::NOT_FOUND),
    }
}

/// Reads `key` and `dir` from a channel URL's query; 400 when either is missing or invalid.
pub(crate) fn channel_query(query: &str) -> Result<(String, ChannelDirection), StatusCode> {
    let mut key = None;
    let mut direction = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "key" => key = Some(value.into_owned()),
            "dir" => direction = Some(ChannelDirection::parse(&value)),
            _ => {}
        }
    }
    match (key, direction) {
        (Some(key), Some(Some(direction))) if !key.is_empty() => Ok((key, direction)),
        _ => Err(StatusCode::BAD_REQUEST),
    }
}

fn refuse(status: StatusCode) -> ErrorResponse {
    refuse_because(
        status,
        status.canonical_reason().unwrap_or("refused").to_string(),
    )
}

fn refuse_because(status: StatusCode, why: String) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(why));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_queries_need_a_key_and_a_direction() {
        let (key, direction) = channel_query("key=a%2Fb&dir=write").expect("valid");
        assert_eq!(key, "a/b");
        assert_eq!(direction, ChannelDirection::Write);
        for bad in ["", "key=a", "dir=read", "key=&dir=read", "key=a&dir=both"] {
            assert_eq!(
                channel_query(bad).err(),
                Some(StatusCode::BAD_REQUEST),
                "{bad}"
            );
        }
    }

    mod fuzz {
        //! Property tests of what the listener reads from the network before any upgrade:
        //! nothing a client sends may panic it, and every URL our SDKs build parses back to
        //! the same end.

        use super::*;
        use iii_protocol::StreamChannelRef;
        use proptest::prelude::*;

        fn request(uri: &str) -> Option<Request> {
            Request::builder().uri(uri).body(()).ok()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_query_is_answered_without_a_panic(query in ".{0,300}") {
                let _ = channel_query(&query);
            }

            #[test]
            fn any_request_head_is_classified_without_a_panic(
                head in proptest::collection::vec(any::<u8>(), 0..2048),
            ) {
                let _ = socket_kind(&head);
                let _ = crate::health::is_plain_request(&head);
            }

            #[test]
            fn any_path_is_routed_or_refused_without_a_panic(path in "/[ -~]{0,200}") {
                let channels = ChannelRegistry::new(
                    &crate::config::EngineConfig::ephemeral(),
                    std::sync::Arc::default(),
                );
                if let Some(request) = request(&path) {
                    let _ = decide(&request, &channels);
                }
            }

            #[test]
            fn every_url_an_sdk_builds_parses_back_to_its_end(
                channel_id in ".{0,80}",
                access_key in ".{1,120}",
                write in any::<bool>(),
                base in "ws://(127\\.0\\.0\\.1|localhost|\\[::1\\]):[0-9]{1,5}(/[a-z]{0,8})?/?",
            ) {
                let direction = if write { ChannelDirection::Write } else { ChannelDirection::Read };
                let end = StreamChannelRef { channel_id, access_key, direction };
                let url = end.url(&base);
                let request = request(&url);
                prop_assert!(request.is_some(), "{} is no valid URI", url);
                let request = request.unwrap_or_default();
                let query = request.uri().query().unwrap_or_default();
                prop_assert_eq!(channel_query(query), Ok((end.access_key.clone(), direction)));
                let path = request.uri().path();
                prop_assert!(path.starts_with("/ws/channels/"), "{}", path);
            }
        }

        #[test]
        fn a_live_channel_is_found_only_with_its_own_key_and_direction() {
            let channels = ChannelRegistry::new(
                &crate::config::EngineConfig::ephemeral(),
                std::sync::Arc::default(),
            );
            let (writer, reader) = channels.create(4, Vec::new());
            let base = "ws://127.0.0.1:1";
            let route = |url: &str| request(url).map(|request| decide(&request, &channels));
            assert!(matches!(
                route(&writer.url(base)),
                Some(Ok(Route::Channel(_, ChannelDirection::Write)))
            ));
            assert!(matches!(
                route(&reader.url(base)),
                Some(Ok(Route::Channel(_, ChannelDirection::Read)))
            ));
            let swapped = StreamChannelRef {
                direction: ChannelDirection::Write,
                ..reader
            };
            assert!(matches!(
                route(&swapped.url(base)),
                Some(Err(StatusCode::NOT_FOUND))
            ));
        }
    }
}
