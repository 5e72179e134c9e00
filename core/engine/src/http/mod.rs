//! HTTP triggers (docs/PROTOCOL.md §6): an HTTP/1.1 server (hyper) whose routes come from
//! workers' `http` triggers. Each request becomes an invocation of the route's function with
//! two channels: the request body streams into one as it arrives, and the function's
//! response streams out of the other, so downloads, uploads and server-sent events never sit
//! whole in the engine.

pub(crate) mod body;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use iii_protocol::limits::DEFAULT_BUFFER_FRAMES;
use iii_protocol::{ChannelDirection, EndStatus, codes};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::accept::accept_loop;
use crate::channels::Claim;
use crate::lifecycle::{Lifeline, Shutdown};
use crate::state::EngineState;
use body::HttpBody;
use request::{BodyRefs, BodySource, BodyWriter, JsonBodyError};
use response::{Exchange, error_response};

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an open HTTP connection may take to finish once the engine stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Accepts HTTP connections until the engine stops.
pub(crate) async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<EngineState>,
    shutdown: Shutdown,
    lifeline: Lifeline,
) {
    let stop = shutdown.clone();
    accept_loop(listener, stop, move |stream, peer| {
        serve_connection(
            stream,
            peer,
            tls.clone(),
            shared.clone(),
            shutdown.clone(),
            lifeline.clone(),
        )
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: Arc<EngineState>,
    mut shutdown: Shutdown,
    _lifeline: Lifeline,
) {
    // HTTP connections count against --max-connections as worker sockets do.
    let Some(admitted) = crate::quota::take_connection(&shared, stream, peer).await else {
        return;
    };
    let (stream, _slot) = (admitted.stream, admitted.slot);
    let Some(acceptor) = tls else {
        return serve_http(stream, shared, shutdown).await;
    };
    let handshake = tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream));
    let stream = tokio::select! {
        accepted = handshake => match accepted {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
        },
        _ = shutdown.wait() => return,
    };
    serve_http(stream, shared, shutdown).await;
}

/// Serves HTTP/1.1 on one connection (plain or TLS) until it closes or the engine stops.
async fn serve_http<S>(stream: S, shared: Arc<EngineState>, mut shutdown: Shutdown)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, request).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let finished = tokio::select! {
        finished = connection.as_mut() => finished,
        _ = shutdown.wait() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, connection.as_mut()).await {
                Ok(finished) => finished,
                Err(_) => return,
            }
        }
    };
    if let Err(error) = finished {
        tracing::debug!(%error, "http connection ended");
    }
}

/// Serves one request, counted in the metrics by route, method and status.
async fn handle(shared: Arc<EngineState>, request: Request<Incoming>) -> Response<HttpBody> {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let mut pattern = None;
    let response = serve_request(&shared, request, &mut pattern).await;
    if let Some(metrics) = &shared.metrics {
        let status = response.status().as_u16();
        metrics.http_request(pattern.as_deref(), method.as_str(), status, started);
    }
    response
}

/// The W3C trace context of an HTTP request (its `traceparent`, `tracestate` and `baggage`
/// headers), passed on to the function it calls.
fn trace_of(headers: &hyper::HeaderMap) -> iii_protocol::TraceContext {
    // A field may come as several header lines: one value, joined with commas (RFC 9110).
    let header = |name: &str| {
        let lines: Vec<&str> = (headers.get_all(name).iter())
            .filter_map(|value| value.to_str().ok())
            .collect();
        (!lines.is_empty()).then(|| lines.join(","))
    };
    iii_protocol::TraceContext {
        traceparent: header("traceparent"),
        tracestate: header("tracestate"),
        baggage: header("baggage"),
    }
}

/// Serves one request; `pattern` learns the route it matched.
async fn serve_request(
    shared: &Arc<EngineState>,
    request: Request<Incoming>,
    pattern: &mut Option<String>,
) -> Response<HttpBody> {
    // Counted until the response head is out, so a drain waits for a request still reading
    // its body or waiting for its function (taken before the check: a drain that starts in
    // between sees it).
    let _in_flight = shared.http_requests.try_take(usize::MAX);
    if shared.is_draining() {
        let mut response = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::GOING_AWAY,
            "the engine is stopping",
        );
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return response;
    }
    let (parts, incoming) = request.into_parts();
    let Some(route) = shared.routes.find(&parts.method, parts.uri.path()) else {
        return error_response(StatusCode::NOT_FOUND, codes::NOT_FOUND, "Not Found");
    };
    if shared.metrics.is_some() {
        *pattern = Some(route.pattern.clone());
    }
    if let Some(name) = route.unsafe_param() {
        let message = format!("path parameter {name} may not be . or .. or hold a slash");
        return error_response(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, &message);
    }
    let (source, body) = if request::is_json(&parts.headers) {
        let cap = shared.config.max_json_body_bytes;
        match request::read_json(&parts.headers, incoming, cap).await {
            Ok((raw, value)) => (BodySource::Read(raw), value),
            Err(JsonBodyError::TooLarge(cap)) => {
                let message = format!("JSON bodies are limited to {cap} bytes");
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    codes::PAYLOAD_TOO_LARGE,
                    &message,
                );
            }
            Err(JsonBodyError::Invalid(error)) => {
                let message = format!("invalid JSON body: {error}");
                return error_response(StatusCode::BAD_REQUEST, codes::INVALID_JSON, &message);
            }
            Err(JsonBodyError::Failed(error)) => {
                let message = format!("request body failed: {error}");
                return error_response(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, &message);
            }
        }
    } else {
        (BodySource::Streaming(incoming), Value::Null)
    };
    let frames = usize::try_from(DEFAULT_BUFFER_FRAMES).unwrap_or(64);
    let request_channel = shared.channels.create_channel(frames);
    let response_channel = shared.channels.create_channel(frames);
    let (Claim::Writer { buffer, stop }, Claim::Reader(rx)) = (
        request_channel.channel.claim(ChannelDirection::Write),
        response_channel.channel.claim(ChannelDirection::Read),
    ) else {
        // Fresh channels: both ends are free. Unreachable, but never a panic.
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            "could not open channels",
        );
    };
    let mut exchange = Exchange {
        channels: shared.channels.clone(),
        response: response_channel.channel.clone(),
        request: request_channel.channel.clone(),
        outcome: None,
    };
    let writer = BodyWriter {
        channel: request_channel.channel.clone(),
        buffer,
        stop,
    };
    if source.is_empty() {
        // Nothing to stream (most GETs): end the channel here instead of spawning a pump.
        request::finish_body(&shared.channels, writer, EndStatus::Complete);
    } else {
        tokio::spawn(request::pump_body(shared.channels.clone(), source, writer));
    }
    let refs = BodyRefs {
        request_body: request_channel.reader,
        response: response_channel.writer,
    };
    let data = request::payload(&route, &parts, body, refs);
    let metadata = shared.triggers.metadata(&route.trigger_id, route.owner);
    let beside = (metadata, trace_of(&parts.headers));
    match crate::forward::invoke_for_engine(shared, &route.function_id, data, beside).await {
        Ok(outcome) => exchange.outcome = Some(outcome),
        Err(error) => {
            let message = format!("Function {} not found", route.function_id);
            tracing::debug!(function_id = %route.function_id, code = %error.code, "http route without its function");
            return error_response(StatusCode::SERVICE_UNAVAILABLE, &error.code, &message);
        }
    }
    response::respond(rx, exchange, shared.config.http_timeout).await
}
