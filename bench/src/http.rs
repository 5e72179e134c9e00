//! HTTP trigger figures: a large download streamed by a Rust handler through the engine, and
//! requests per second on a small plain-result route under 64 connections (wrk), each next
//! to the same request answered by a plain hyper server in one hop, and by a plain hyper server
//! asking a plain WebSocket peer: the same two hops as the engine's, with no protocol.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::procs::{ChildProc, EngineProc};

/// How long one download may take.
const LIMIT: Duration = Duration::from_secs(300);

/// The figures of one run.
pub struct HttpFigures {
    /// MB/s of the plain hyper server (the ceiling).
    pub download_ceiling: f64,
    /// MB/s of a plain hyper server relaying a plain WebSocket peer's frames (the same two
    /// hops as the engine's, with no protocol).
    pub download_two_hops: f64,
    /// MB/s through the engine.
    pub download: f64,
    /// Engine CPU seconds per GiB downloaded.
    pub engine_cpu_per_gib: f64,
    /// Requests/s, when wrk is installed.
    pub requests: Option<Requests>,
}

/// Requests/s of a small plain-result route under 64 connections.
pub struct Requests {
    /// A plain hyper server answering in-process (one hop).
    pub plain: f64,
    /// A plain hyper server asking a plain WebSocket peer (two hops, no protocol).
    pub two_hops: f64,
    /// Through the engine, answered by an SDK worker.
    pub engine: f64,
}

/// Downloads `path` from `addr`, checks its length, returns MB/s (request to last byte).
async fn download(addr: SocketAddr, path: &str, expected: u64) -> Result<f64, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    let request = Request::get(path)
        .header("host", "bench")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut body = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?
        .into_body();
    let mut received = 0u64;
    let reading = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(|e| format!("body: {e}"))?.into_data() {
                received += data.len() as u64;
            }
        }
        Ok::<_, String>(())
    };
    tokio::time::timeout(LIMIT, reading)
        .await
        .map_err(|_| "download timed out".to_string())??;
    if received != expected {
        return Err(format!("downloaded {received} of {expected} bytes"));
    }
    Ok(received as f64 / 1e6 / started.elapsed().as_secs_f64())
}

/// Runs wrk (2 threads, 64 connections, `seconds`) against `url`; `None` without wrk.
async fn wrk(url: &str, seconds: u64) -> Result<Option<f64>, String> {
    let output = tokio::process::Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{seconds}s"), url])
        .output()
        .await;
    let output = match output {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("wrk: {error}")),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        return Err(format!("wrk saw failed requests:\n{text}"));
    }
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| format!("unexpected wrk output:\n{text}"))
}

fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|e| format!("address {text:?}: {e}"))
}

/// Measures everything: `total` bytes downloaded, and `seconds` of wrk per server.
pub async fn http_figures(total: u64, seconds: u64) -> Result<HttpFigures, String> {
    let path = format!("/bytes/{total}");
    let mut plain = ChildProc::spawn(&["plain-http-server".into()])?;
    let line = plain.line(Duration::from_secs(30)).await?;
    let plain_addr = parse_addr(
        line.strip_prefix("READY ")
            .ok_or("plain server did not start")?,
    )?;
    download(plain_addr, "/bytes/1048576", 1 << 20).await?;
    let download_ceiling = download(plain_addr, &path, total).await?;

    let mut relay = ChildProc::spawn(&["relay-http-server".into()])?;
    let line = relay.line(Duration::from_secs(30)).await?;
    let mut fields = line
        .strip_prefix("READY ")
        .ok_or("relay server did not start")?
        .split_whitespace();
    let (ws_port, relay_addr) = (fields.next().unwrap_or_default(), fields.next());
    let relay_addr = parse_addr(relay_addr.ok_or("relay server printed no address")?)?;
    let mut answerer = ChildProc::spawn(&[
        "relay-http-answerer".into(),
        "--url".into(),
        format!("ws://127.0.0.1:{ws_port}"),
    ])?;
    answerer.line(Duration::from_secs(30)).await?;
    download(relay_addr, "/bytes/1048576", 1 << 20).await?;
    let download_two_hops = download(relay_addr, &path, total).await?;

    let engine = EngineProc::start(60).await?;
    let engine_addr = parse_addr(&engine.http_addr)?;
    let mut worker = ChildProc::spawn(&["http-worker".into(), "--url".into(), engine.url.clone()])?;
    worker.line(Duration::from_secs(30)).await?;
    download(engine_addr, "/bytes/1048576", 1 << 20).await?;
    let cpu_before = engine.cpu_seconds();
    let through = download(engine_addr, &path, total).await?;
    let engine_cpu_per_gib =
        (engine.cpu_seconds() - cpu_before) / (total as f64 / (1u64 << 30) as f64);

    let requests = match wrk(&format!("http://{plain_addr}/hello"), seconds).await? {
        Some(plain) => {
            let rate = |addr: SocketAddr| async move {
                wrk(&format!("http://{addr}/hello"), seconds)
                    .await?
                    .ok_or_else(|| "wrk vanished".to_string())
            };
            Some(Requests {
                plain,
                two_hops: rate(relay_addr).await?,
                engine: rate(engine_addr).await?,
            })
        }
        None => None,
    };
    Ok(HttpFigures {
        download_ceiling,
        download_two_hops,
        download: through,
        engine_cpu_per_gib,
        requests,
    })
}
