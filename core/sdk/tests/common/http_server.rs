//! A small HTTP server standing in for functions the engine calls over HTTP: every request
//! it gets is recorded (method, path, headers, body), and the path picks the answer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// One request as the server saw it.
#[derive(Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body's bytes as received.
    pub raw: Bytes,
}

/// The server's address and what it has seen.
pub struct FunctionServer {
    pub addr: SocketAddr,
    pub seen: mpsc::UnboundedReceiver<Seen>,
}

/// Answers by path: `/double` doubles `n`, `/empty` is 204, `/fail` a bare 500, `/coded` a
/// 400 carrying an error body, `/html` a 200 that is not JSON, `/slow` waits 3 s, `/route` a
/// plain HTTP result for an HTTP trigger.
async fn answer(path: &str, body: &Value) -> Response<Full<Bytes>> {
    let respond = |status: StatusCode, text: String| {
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        response
    };
    match path {
        "/double" => respond(
            StatusCode::OK,
            json!({"n": body["n"].as_i64().unwrap_or(0) * 2}).to_string(),
        ),
        "/empty" => respond(StatusCode::NO_CONTENT, String::new()),
        "/fail" => respond(StatusCode::INTERNAL_SERVER_ERROR, "oops".into()),
        "/coded" => respond(
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": "bad_input", "message": "n is missing"}}).to_string(),
        ),
        "/html" => respond(StatusCode::OK, "<html></html>".into()),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            respond(StatusCode::OK, "null".into())
        }
        "/route" => respond(
            StatusCode::OK,
            json!({"status_code": 201, "headers": {"x-remote": "yes"}, "body": "made remotely"})
                .to_string(),
        ),
        _ => respond(StatusCode::NOT_FOUND, String::new()),
    }
}

impl FunctionServer {
    /// Serves plain HTTP on 127.0.0.1, or HTTPS with `tls`.
    pub async fn start(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (record, seen) = mpsc::unbounded_channel();
        let record = Arc::new(record);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (record, tls) = (record.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let record = record.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let bytes = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                            let path = parts.uri.path().to_string();
                            let response = answer(&path, &body).await;
                            let _ = record.send(Seen {
                                method: parts.method.to_string(),
                                path,
                                headers: parts.headers,
                                body,
                                raw: bytes,
                            });
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Self { addr, seen }
    }

    /// The next request the server got, within 10 s.
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(10), self.seen.recv())
            .await
            .expect("a request within 10 s")
            .expect("server running")
    }
}
