//! A minimal HTTP/1.1 client for the HTTP trigger tests (hyper's own client connection), so
//! requests and responses stream exactly as a real client's would.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Sends `request` on a new connection to `addr` and returns the response as soon as its
/// head arrives; the body streams from there.
pub async fn send<B>(addr: SocketAddr, request: Request<B>) -> Response<Incoming>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to the http server");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("http handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender.send_request(request).await.expect("response head")
}

/// A GET of `path`.
pub async fn get(addr: SocketAddr, path: &str) -> Response<Incoming> {
    let request = Request::get(path)
        .header("host", "test")
        .body(Empty::<Bytes>::new())
        .expect("request");
    send(addr, request).await
}

/// The next data chunk of `body`: `Ok(None)` at a clean end, `Err` when the response was cut.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>, hyper::Error> {
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// A response header as text.
pub fn header(response: &Response<Incoming>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}
