//! Plain HTTP on the worker port. Health checks, load balancers and people with `curl` speak
//! HTTP without asking for a WebSocket; they get `GET /health` and, for anything else, a
//! clear `426 Upgrade Required` instead of an empty reply. Served by hyper, on the same
//! listener, for requests whose head (peeked, not consumed) carries no `Upgrade` header.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{ALLOW, CONNECTION, CONTENT_TYPE, HeaderValue, UPGRADE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use iii_protocol::codes;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::access::ListenerPolicy;
use crate::access::auth::Refusal;
use crate::access::origin::{check_headers, check_observer_host};
use crate::http::body::HttpBody;
use crate::http::response::{error_response, json_response};
use crate::lifecycle::Shutdown;
use crate::state::EngineState;

/// The health endpoint's path.
pub(crate) const HEALTH_PATH: &str = "/health";

/// The Prometheus metrics' path.
pub(crate) const METRICS_PATH: &str = "/metrics";

/// The live view's path (workers and open channels, as JSON).
pub(crate) const STATUS_PATH: &str = "/status";

/// The listener rules a plain request is answered under.
#[derive(Clone)]
pub(crate) struct View {
    /// The listener's access rules: under `rbac`, `/metrics` and `/status` are refused (they
    /// list every worker and function, which a tenant may not see).
    pub(crate) policy: Arc<ListenerPolicy>,
    /// Whether the listener is bound to a loopback address (then only loopback `Host` names).
    pub(crate) loopback: bool,
}

/// How long a plain HTTP client may take to send a request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the request head at the start of `bytes` ends (the offset of its blank line's
/// `\r\n\r\n`), if it is complete.
pub(crate) fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|window| window == b"\r\n\r\n")
}

/// True when `head` (the start of what a client sent) is a complete HTTP request head that
/// does not ask for an upgrade: it is served as plain HTTP, not handed to the WebSocket
/// handshake. A head that does not fit in `head` goes to the handshake, as before.
pub(crate) fn is_plain_request(head: &[u8]) -> bool {
    let Some(end) = head_end(head) else {
        return false;
    };
    let upgrade = b"upgrade:";
    let mut lines = head
        .get(..end)
        .unwrap_or_default()
        .split(|byte| *byte == b'\n');
    let is_http = lines
        .next()
        .is_some_and(|line| line.windows(5).any(|window| window == b"HTTP/"));
    is_http
        && !lines.any(|line| {
            line.get(..upgrade.len())
                .is_some_and(|name| name.eq_ignore_ascii_case(upgrade))
        })
}

/// How long a refused connection may take to send its request head, and to take its answer.
const REFUSAL_WAIT: Duration = Duration::from_secs(1);

/// Most of a refused connection's request head that is read (and discarded).
const REFUSAL_HEAD_BYTES: usize = 16 * 1024;

/// Answers a connection refused before any upgrade (over a quota, a browser origin, failed
/// auth) with `status` and `error` as its JSON body, after reading its request head (so
/// closing does not reset the answer away), then closes it.
pub(crate) async fn answer_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    status: StatusCode,
    error: &iii_protocol::ErrorBody,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = vec![0u8; REFUSAL_HEAD_BYTES];
    let mut seen = 0;
    let reading = async {
        while seen < head.len() {
            let Some(free) = head.get_mut(seen..) else {
                break;
            };
            match stream.read(free).await {
                Ok(0) | Err(_) => break,
                Ok(read) => seen += read,
            }
            if head
                .get(..seen)
                .is_some_and(|bytes| head_end(bytes).is_some())
            {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_WAIT, reading).await;
    let body = crate::http::response::error_json(&error.code, &error.message);
    let answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Refused"),
        body.len()
    );
    let writing = async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    };
    let _ = tokio::time::timeout(REFUSAL_WAIT, writing).await;
}

/// Serves plain HTTP requests on `stream` until the client leaves or the engine stops.
pub(crate) async fn serve<S>(
    stream: S,
    shared: Arc<EngineState>,
    view: View,
    mut shutdown: Shutdown,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stopping = shutdown.clone();
    let service = service_fn(move |request| {
        let answer = answer(&shared, &view, &stopping, &request);
        async move { Ok::<_, Infallible>(answer) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        finished = connection.as_mut() => {
            if let Err(error) = finished {
                tracing::debug!(%error, "plain http on the worker port ended");
            }
        }
        _ = shutdown.wait() => connection.as_mut().graceful_shutdown(),
    }
}

/// The answer to one plain request.
fn answer<B>(
    shared: &EngineState,
    view: &View,
    shutdown: &Shutdown,
    request: &Request<B>,
) -> Response<HttpBody> {
    let path = request.uri().path();
    let known = [HEALTH_PATH, METRICS_PATH, STATUS_PATH];
    if !known.contains(&path) {
        let message = "this is the iii worker port: connect with a WebSocket, or GET /health, /metrics or /status";
        let mut response = error_response(
            StatusCode::UPGRADE_REQUIRED,
            codes::UPGRADE_REQUIRED,
            message,
        );
        let headers = response.headers_mut();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        return response;
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let message = "this endpoint answers GET and HEAD";
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            message,
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if path != HEALTH_PATH {
        return observe(shared, view, request);
    }
    let (status, state) = if shutdown.is_stopping() || shared.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping")
    } else {
        (StatusCode::OK, "ok")
    };
    let body = json!({
        "status": state,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": shared.started.elapsed().as_secs(),
        "workers": shared.connections.len(),
        "connections": shared.sockets.taken(),
        "functions": shared.functions.len(),
        "channels": shared.channels.len(),
        "pending_invocations": shared.invocations.len(),
        "buffered_bytes": shared.bytes.buffered(),
    });
    json_response(status, Bytes::from(body.to_string()))
}

/// Channels `/status` lists unless `?limit=` says otherwise (the oldest first).
const STATUS_CHANNELS: usize = 1000;

/// Most channels `/status` lists whatever `?limit=` says.
const MAX_STATUS_CHANNELS: usize = 100_000;

/// How many channels `/status?limit=N` lists.
fn status_limit(query: Option<&str>) -> usize {
    let asked = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "limit")
        .and_then(|(_, value)| value.parse::<usize>().ok());
    asked.unwrap_or(STATUS_CHANNELS).min(MAX_STATUS_CHANNELS)
}

/// `/metrics` or `/status`, unless the listener's rules refuse it.
fn observe<B>(shared: &EngineState, view: &View, request: &Request<B>) -> Response<HttpBody> {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let refusal = if view.policy.rbac.is_some() {
        let why = "this listener has access rules (rbac): read /metrics and /status on a listener without them";
        Some(Refusal::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, why))
    } else {
        check_headers(&view.policy, view.loopback, header)
            .and_then(|()| check_observer_host(&view.policy, header("host")))
            .err()
    };
    if let Some(refusal) = refusal {
        let path = request.uri().path();
        tracing::info!(%path, message = %refusal.error.message, "observer request refused");
        if let Some(metrics) = &shared.metrics {
            metrics.refused("observe", &refusal.error.code);
        }
        return error_response(refusal.status, &refusal.error.code, &refusal.error.message);
    }
    if request.uri().path() == STATUS_PATH {
        let limit = status_limit(request.uri().query());
        let body = crate::metrics::status(shared, limit).to_string();
        return json_response(StatusCode::OK, Bytes::from(body));
    }
    let Some(metrics) = &shared.metrics else {
        let message = "metrics are off (the engine runs with --no-metrics)";
        return error_response(StatusCode::NOT_FOUND, codes::NOT_FOUND, message);
    };
    let Some(text) = crate::metrics::render(metrics, shared) else {
        let message = "the metrics could not be encoded";
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            message,
        );
    };
    let mut response = Response::new(HttpBody::full(Bytes::from(text)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_requests_are_complete_heads_without_upgrade() {
        assert!(is_plain_request(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(is_plain_request(b"HEAD / HTTP/1.0\r\n\r\n"));
        let upgrade =
            b"GET / HTTP/1.1\r\nHost: x\r\nupgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        assert!(!is_plain_request(upgrade));
        assert!(!is_plain_request(
            b"GET / HTTP/1.1\r\nUPGRADE: WebSocket\r\n\r\n"
        ));
        // Not complete yet, or not HTTP: the handshake decides, as before.
        assert!(!is_plain_request(b"GET /health HTTP/1.1\r\nHost: x\r\n"));
        assert!(!is_plain_request(b"\x16\x03\x01 TLS hello\r\n\r\n"));
        assert!(!is_plain_request(b""));
    }
}
