//! Making one call of an HTTP-invoked function: connect (TLS for `https://`, trusting the
//! Mozilla roots and the engine's extra CA files), send the payload as JSON with the engine's
//! headers, and read the answer into a result or an error with the published engine's codes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use iii_protocol::ErrorBody;
use iii_protocol::TraceContext;
use iii_protocol::codes::{
    HTTP_ERROR, HTTP_REQUEST_FAILED, HTTP_RESPONSE_FAILED, INVALID_RESPONSE,
};
use iii_protocol::remote::{HEADER_FUNCTION, HEADER_INVOCATION, HEADER_TIMESTAMP, HttpInvocation};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::MAX_CONCURRENT_CALLS;
use super::Prepared;
use super::address::Target;

/// What every call shares: TLS settings, the address policy, the credentials variables the
/// operator allows, the bounds.
pub(crate) struct RemoteClient {
    tls: TlsConnector,
    allow_private: bool,
    /// The environment variables a function's `auth` may name (`--http-functions-secret`).
    pub(crate) allowed_secrets: Vec<String>,
    max_response_bytes: usize,
    /// The longest any call may take (the engine's invocation timeout).
    max_timeout: Duration,
    /// Calls in flight; a call finding none free fails at once.
    pub(crate) permits: Arc<Semaphore>,
}

/// The settings of a [`RemoteClient`], from the engine's configuration.
pub(crate) struct RemoteSettings<'a> {
    pub(crate) allow_private: bool,
    pub(crate) ca_files: &'a [PathBuf],
    pub(crate) allowed_secrets: Vec<String>,
    pub(crate) max_response_bytes: usize,
    pub(crate) max_timeout: Duration,
}

/// Why the client could not be set up (an unreadable CA file).
#[derive(Debug, thiserror::Error)]
#[error("HTTP-invoked functions: {0}")]
pub(crate) struct RemoteSetupError(String);

fn request_failed(message: String) -> ErrorBody {
    ErrorBody::new(HTTP_REQUEST_FAILED, message)
}

impl RemoteClient {
    /// A client trusting the Mozilla roots plus the certificates in `ca_files` (PEM).
    pub(crate) fn new(settings: RemoteSettings<'_>) -> Result<Self, RemoteSetupError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for file in settings.ca_files {
            let unreadable =
                |error: String| RemoteSetupError(format!("CA file {}: {error}", file.display()));
            let certificates = CertificateDer::pem_file_iter(file)
                .map_err(|error| unreadable(error.to_string()))?;
            for certificate in certificates {
                let certificate = certificate.map_err(|error| unreadable(error.to_string()))?;
                roots
                    .add(certificate)
                    .map_err(|error| unreadable(error.to_string()))?;
            }
        }
        let provider = Arc::new(iii_protocol::tls::provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| RemoteSetupError(error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
            allow_private: settings.allow_private,
            allowed_secrets: settings.allowed_secrets,
            max_response_bytes: settings.max_response_bytes,
            max_timeout: settings.max_timeout,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_CALLS)),
        })
    }

    /// Calls `function_id` at `invocation.url` with `data`; its JSON answer, or the error.
    /// The whole call, connecting included, takes at most the config's `timeout_ms`, and never
    /// longer than the engine's invocation timeout.
    pub(crate) async fn call(
        &self,
        prepared: &Prepared,
        function_id: &str,
        (data, trace): (&Value, &TraceContext),
    ) -> Result<Value, ErrorBody> {
        let target = &prepared.target;
        let body = serde_json::to_vec(data).map_err(|error| request_failed(error.to_string()))?;
        let mut request = build_request(prepared, function_id, body)?;
        add_trace(request.headers_mut(), trace);
        let limit = Duration::from_millis(prepared.invocation.timeout_ms()).min(self.max_timeout);
        let exchange = self.exchange(target, request);
        match tokio::time::timeout(limit, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(request_failed(format!(
                "{} did not answer within {} ms",
                target.shown,
                limit.as_millis()
            ))),
        }
    }

    async fn exchange(
        &self,
        target: &Target,
        request: Request<Full<Bytes>>,
    ) -> Result<Value, ErrorBody> {
        let addresses = target.resolve(self.allow_private).await?;
        let tcp = connect(&addresses).await?;
        if !target.https {
            return self.send(tcp, request).await;
        }
        let name = ServerName::try_from(target.host.clone())
            .map_err(|error| request_failed(format!("{}: {error}", target.shown)))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|error| request_failed(format!("TLS with {}: {error}", target.host)))?;
        self.send(tls, request).await
    }

    async fn send<S>(&self, stream: S, request: Request<Full<Bytes>>) -> Result<Value, ErrorBody>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| request_failed(error.to_string()))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection of an HTTP-invoked function ended");
            }
        });
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| request_failed(error.to_string()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), self.max_response_bytes)
            .collect()
            .await
            .map_err(|error| {
                ErrorBody::new(
                    HTTP_RESPONSE_FAILED,
                    format!("reading the response: {error}"),
                )
            })?
            .to_bytes();
        answer(status, &body)
    }
}

async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, ErrorBody> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(error) => last = Some(format!("connecting to {address}: {error}")),
        }
    }
    Err(request_failed(
        last.unwrap_or_else(|| "no address to connect to".into()),
    ))
}

/// The config's headers as HTTP headers (valid and not framing ones:
/// `HttpInvocation::from_value` checked them).
pub(crate) fn config_headers(invocation: &HttpInvocation) -> Result<HeaderMap, ErrorBody> {
    let mut headers = HeaderMap::new();
    for (name, value) in invocation.headers.iter().flatten() {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|error| request_failed(error.to_string()))?;
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|error| request_failed(error.to_string()))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// The call's W3C trace context as `traceparent`, `tracestate` and `baggage` headers (those
/// it has, and only values a header can carry), so the trace goes on into the function.
fn add_trace(headers: &mut HeaderMap, trace: &TraceContext) {
    let fields = [
        ("traceparent", &trace.traceparent),
        ("tracestate", &trace.tracestate),
        ("baggage", &trace.baggage),
    ];
    for (name, value) in fields {
        if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

fn build_request(
    prepared: &Prepared,
    function_id: &str,
    body: Vec<u8>,
) -> Result<Request<Full<Bytes>>, ErrorBody> {
    let (invocation, target) = (&prepared.invocation, &prepared.target);
    let mut headers = prepared.headers.clone();
    // The engine's own headers come last: a config cannot forge them.
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let engine_headers = [
        (HOST, target.authority.clone()),
        (CONTENT_TYPE, "application/json".to_string()),
        (
            HeaderName::from_static(HEADER_FUNCTION),
            function_id.to_string(),
        ),
        (
            HeaderName::from_static(HEADER_INVOCATION),
            uuid::Uuid::new_v4().to_string(),
        ),
        (
            HeaderName::from_static(HEADER_TIMESTAMP),
            timestamp.to_string(),
        ),
    ];
    for (name, value) in engine_headers {
        let value =
            HeaderValue::try_from(value).map_err(|error| request_failed(error.to_string()))?;
        headers.insert(name, value);
    }
    prepared.credentials.apply(&mut headers, timestamp, &body);
    let mut request = Request::builder()
        .method(invocation.method.as_str())
        .uri(target.path.as_str())
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| request_failed(error.to_string()))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// A response as the call's outcome: 2xx with an empty body is `null`, else its JSON; other
/// statuses are `http_error` (or the `{"error": {"code", "message"}}` the body carries).
fn answer(status: StatusCode, body: &[u8]) -> Result<Value, ErrorBody> {
    if status.is_success() {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        return serde_json::from_slice(body).map_err(|error| {
            ErrorBody::new(
                INVALID_RESPONSE,
                format!("the response is not JSON: {error}"),
            )
        });
    }
    let carried = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| {
            let error = value.get("error")?;
            let code = error
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or(HTTP_ERROR);
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("HTTP request failed");
            Some(ErrorBody::new(code, message))
        });
    Err(carried.unwrap_or_else(|| ErrorBody::new(HTTP_ERROR, format!("HTTP {status}"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_follow_the_status() {
        assert_eq!(answer(StatusCode::OK, b"").expect("ok"), Value::Null);
        assert_eq!(
            answer(StatusCode::OK, br#"{"n":2}"#).expect("ok"),
            json!({"n": 2})
        );
        assert_eq!(
            answer(StatusCode::OK, b"<html>").expect_err("bad").code,
            INVALID_RESPONSE
        );
        let plain = answer(StatusCode::INTERNAL_SERVER_ERROR, b"oops").expect_err("error");
        assert_eq!(
            (plain.code.as_str(), plain.message.as_str()),
            (HTTP_ERROR, "HTTP 500 Internal Server Error")
        );
        let carried = answer(
            StatusCode::BAD_REQUEST,
            br#"{"error":{"code":"bad_input","message":"n?"}}"#,
        );
        let carried = carried.expect_err("error");
        assert_eq!(
            (carried.code.as_str(), carried.message.as_str()),
            ("bad_input", "n?")
        );
        let redirect = answer(StatusCode::FOUND, b"").expect_err("not followed");
        assert_eq!(redirect.code, HTTP_ERROR);
    }
}
