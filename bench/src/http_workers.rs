//! The HTTP programs the benchmark runs in child processes: a worker serving HTTP triggers
//! through the engine (with the SDK's `http` helper), and a plain hyper server answering the
//! same routes directly — the one-hop ceiling of the HTTP figures.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use iii_sdk::{HttpRequest, HttpResponse, RegisterFunction, RegisterTrigger, http};
use serde_json::json;
use tokio::net::TcpListener;

use crate::workers::{FRAME, frame};

/// The small JSON body of the requests-per-second route.
const HELLO: &str = r#"{"hello":"world"}"#;

/// `n` bytes as 64 KiB frames of one shared buffer (no copies).
fn pieces(n: u64) -> impl Iterator<Item = Bytes> {
    let frame = frame();
    let mut left = n;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let len = (FRAME as u64).min(left) as usize;
        left -= len as u64;
        Some(frame.slice(..len))
    })
}

/// A worker serving `GET /bytes/:n` (n bytes, streamed) and `GET /hello` (a plain result)
/// through the engine at `url`. Prints `READY` once the routes are registered.
pub async fn http_worker(url: &str) -> Result<(), String> {
    let iii = iii_sdk::register_worker(url);
    iii.register_function(RegisterFunction::new_async(
        "bench::bytes",
        http(|req: HttpRequest, res: HttpResponse| async move {
            let n = req
                .path_param("n")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            res.headers([("content-type", "application/octet-stream")])
                .await?;
            for piece in pieces(n) {
                res.write_bytes(piece).await?;
            }
            res.close().await
        }),
    ));
    iii.register_function(RegisterFunction::new_async(
        "bench::hello",
        |_: serde_json::Value| async move {
            Ok(json!({"status_code": 200, "headers": {"content-type": "application/json"}, "body": {"hello": "world"}}))
        },
    ));
    for (function, path) in [("bench::bytes", "/bytes/:n"), ("bench::hello", "/hello")] {
        iii.register_trigger(RegisterTrigger::http(function, path, "GET"))
            .map_err(|e| format!("trigger: {e}"))?;
    }
    iii.ready().await.map_err(|e| format!("worker: {e}"))?;
    println!("READY");
    std::future::pending::<()>().await;
    Ok(())
}

type PlainBody = http_body_util::Either<
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>,
    http_body_util::Full<Bytes>,
>;

fn plain_response(request: &Request<hyper::body::Incoming>) -> Response<PlainBody> {
    let path = request.uri().path();
    if let Some(n) = path.strip_prefix("/bytes/").and_then(|n| n.parse().ok()) {
        let frames: Vec<_> = pieces(n).map(|piece| Ok(Frame::data(piece))).collect();
        let body = StreamBody::new(futures_util::stream::iter(frames));
        return Response::new(http_body_util::Either::Left(body));
    }
    let mut response = Response::new(http_body_util::Either::Right(http_body_util::Full::new(
        Bytes::from_static(HELLO.as_bytes()),
    )));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A plain hyper server with the same routes, answered in-process. Prints `READY <addr>`.
pub async fn plain_http_server() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("READY {addr}");
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service =
                service_fn(|request| async move { Ok::<_, Infallible>(plain_response(&request)) });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
