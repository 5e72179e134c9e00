//! HTTP triggers end to end: functions written with the `http` helper behind a real engine,
//! requests from a real HTTP client (hyper's), bodies streamed in both directions.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http_client::{get, header, next_chunk, send};
use common::{engine, expected_hash, ready, within, worker};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::Request;
use hyper::body::Frame;
use iii_engine::Engine;
use iii_sdk::{HttpRequest, HttpResponse, III, IIIError, RegisterFunction, RegisterTrigger, http};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, mpsc, oneshot};

const MIB: u64 = 1024 * 1024;

/// A worker serving `function_id` on `method path` with `handler`, ready for requests.
async fn serve<F, Fut>(
    engine: &Engine,
    function_id: &str,
    method: &str,
    path: &str,
    handler: F,
) -> III
where
    F: Fn(HttpRequest, HttpResponse) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), IIIError>> + Send + 'static,
{
    let iii = worker(engine);
    iii.register_function(RegisterFunction::new_async(function_id, http(handler)));
    iii.register_trigger(RegisterTrigger::http(function_id, path, method))
        .expect("trigger registered");
    ready(&iii).await;
    iii
}

fn http_addr(engine: &Engine) -> SocketAddr {
    engine.http_addr().expect("the http server runs")
}

fn hex(hash: [u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_50_mib_download_is_byte_exact_with_its_content_type() {
    let engine = engine().await;
    let len = 50 * MIB;
    let _iii = serve(
        &engine,
        "files::download",
        "GET",
        "/files/:filename",
        move |req, res| async move {
            let name = req.path_param("filename").unwrap_or_default().to_string();
            res.status(200).await?;
            res.headers([
                ("content-type", "application/octet-stream".to_string()),
                (
                    "content-disposition",
                    format!("attachment; filename=\"{name}\""),
                ),
            ])
            .await?;
            common::write_stream(&res.writer, 7, len, 64 * 1024).await?;
            Ok(())
        },
    )
    .await;
    let mut response = within(30, get(http_addr(&engine), "/files/report%201.bin")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(
        header(&response, "content-disposition").as_deref(),
        Some("attachment; filename=\"report 1.bin\"")
    );
    assert_eq!(
        header(&response, "transfer-encoding").as_deref(),
        Some("chunked")
    );
    let mut hash = Sha256::new();
    let mut received = 0u64;
    within(60, async {
        while let Some(chunk) = next_chunk(response.body_mut())
            .await
            .expect("complete body")
        {
            received += chunk.len() as u64;
            hash.update(&chunk);
        }
    })
    .await;
    assert_eq!(received, len);
    assert_eq!(<[u8; 32]>::from(hash.finalize()), expected_hash(7, len));
}

/// Collects an SSE body until `count` events (blocks ending in a blank line) have arrived.
async fn read_events(
    body: &mut hyper::body::Incoming,
    pending: &mut String,
    count: usize,
) -> Vec<String> {
    let mut events = Vec::new();
    while events.len() < count {
        if let Some(end) = pending.find("\n\n") {
            events.push(pending[..end].to_string());
            pending.drain(..end + 2);
            continue;
        }
        let chunk = next_chunk(body)
            .await
            .expect("stream intact")
            .expect("more events");
        pending.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_events_each_arrive_before_the_handler_writes_the_next() {
    let engine = engine().await;
    // The handler writes event i, then waits until the client says it has event i: if the
    // engine held frames back, this would never finish.
    let (ack_tx, ack_rx) = mpsc::channel::<u32>(1);
    let acks = Arc::new(Mutex::new(ack_rx));
    let _iii = serve(
        &engine,
        "events::stream",
        "GET",
        "/events/stream",
        move |_req, res| {
            let acks = acks.clone();
            async move {
                res.status(200).await?;
                res.headers([
                    ("content-type", "text/event-stream"),
                    ("cache-control", "no-cache"),
                ])
                .await?;
                let mut acks = acks.lock().await;
                for step in 1..=5u32 {
                    let event = format!(
                        "id: {step}\nevent: progress\ndata: {{\"step\":{step},\"total\":5}}\n\n"
                    );
                    res.write(event.as_bytes()).await?;
                    let acked = acks.recv().await;
                    assert_eq!(
                        acked,
                        Some(step),
                        "the client acknowledges each event in turn"
                    );
                }
                res.write(b"id: 6\nevent: done\ndata: {\"message\":\"complete\"}\n\n")
                    .await?;
                Ok(())
            }
        },
    )
    .await;
    let mut response = within(10, get(http_addr(&engine), "/events/stream")).await;
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/event-stream")
    );
    let mut pending = String::new();
    for step in 1..=5u32 {
        let events = within(10, read_events(response.body_mut(), &mut pending, 1)).await;
        assert_eq!(
            events,
            vec![format!(
                "id: {step}\nevent: progress\ndata: {{\"step\":{step},\"total\":5}}"
            )]
        );
        ack_tx.send(step).await.expect("handler waits");
    }
    let done = within(10, read_events(response.body_mut(), &mut pending, 1)).await;
    assert_eq!(
        done,
        vec!["id: 6\nevent: done\ndata: {\"message\":\"complete\"}".to_string()]
    );
    assert_eq!(
        within(10, next_chunk(response.body_mut()))
            .await
            .expect("clean end"),
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_body_is_parsed_into_body_and_readable_raw() {
    let engine = engine().await;
    let _iii = serve(&engine, "echo", "POST", "/echo", |req, res| async move {
        let raw = req.request_body.read_all().await?;
        let reply = json!({"parsed": req.body, "raw": String::from_utf8_lossy(&raw)});
        res.status(201).await?;
        res.headers([("content-type", "application/json")]).await?;
        res.write(reply.to_string().as_bytes()).await
    })
    .await;
    let body = r#"{"user": "ada", "tags": ["x", "y"]}"#;
    let request = Request::post("/echo")
        .header("host", "test")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request");
    let response = within(10, send(http_addr(&engine), request)).await;
    assert_eq!(response.status(), 201);
    let bytes = within(10, response.into_body().collect())
        .await
        .expect("body")
        .to_bytes();
    let reply: Value = serde_json::from_slice(&bytes).expect("json reply");
    assert_eq!(reply["parsed"], json!({"user": "ada", "tags": ["x", "y"]}));
    assert_eq!(reply["raw"], body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_failing_mid_download_leaves_the_client_an_incomplete_response() {
    let engine = engine().await;
    let _iii = serve(
        &engine,
        "files::broken",
        "GET",
        "/broken",
        |_req, res| async move {
            res.status(200).await?;
            res.write(&vec![1u8; 1024 * 1024]).await?;
            Err(IIIError::Handler("disk read failed".into()))
        },
    )
    .await;
    let mut response = within(10, get(http_addr(&engine), "/broken")).await;
    assert_eq!(response.status(), 200);
    let mut received = 0;
    let end = within(10, async {
        loop {
            match next_chunk(response.body_mut()).await {
                Ok(Some(chunk)) => received += chunk.len(),
                other => return other,
            }
        }
    })
    .await;
    assert!(
        end.is_err(),
        "the response must not end cleanly, got {end:?}"
    );
    assert_eq!(
        received,
        1024 * 1024,
        "what was written before the failure arrived"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_leaving_mid_sse_makes_the_handlers_next_write_fail_within_a_second() {
    let engine = engine().await;
    let (failed_tx, failed_rx) = oneshot::channel::<(Instant, IIIError)>();
    let failed_tx = Arc::new(std::sync::Mutex::new(Some(failed_tx)));
    let _iii = serve(
        &engine,
        "events::forever",
        "GET",
        "/forever",
        move |_req, res| {
            let failed_tx = failed_tx.clone();
            async move {
                res.headers([("content-type", "text/event-stream")]).await?;
                loop {
                    if let Err(error) = res.write(b"data: tick\n\n").await {
                        if let Some(tx) = failed_tx.lock().ok().and_then(|mut slot| slot.take()) {
                            let _ = tx.send((Instant::now(), error.clone()));
                        }
                        return Err(error);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        },
    )
    .await;
    let mut response = within(10, get(http_addr(&engine), "/forever")).await;
    let first = within(10, next_chunk(response.body_mut()))
        .await
        .expect("intact");
    assert_eq!(first.as_deref(), Some(&b"data: tick\n\n"[..]));
    drop(response);
    let left = Instant::now();
    let (failed_at, error) = within(10, failed_rx)
        .await
        .expect("the handler's write failed");
    let after = failed_at.saturating_duration_since(left);
    assert!(
        after < Duration::from_secs(1),
        "the write failed only after {after:?}"
    );
    assert_eq!(error.kind(), iii_sdk::ErrorKind::ReaderClosed, "{error}");
}

/// A request body of `len` bytes cycling through `pattern`, produced lazily in 64 KiB
/// pieces, and its sha256.
fn upload_body(
    pattern: Bytes,
    len: u64,
) -> (
    StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>>,
    [u8; 32],
) {
    let pieces = move || {
        let pattern = pattern.clone();
        let mut offset = 0u64;
        std::iter::from_fn(move || {
            if offset >= len {
                return None;
            }
            let at = (offset % pattern.len() as u64) as usize;
            let n = (64 * 1024)
                .min(pattern.len() - at)
                .min((len - offset) as usize);
            offset += n as u64;
            Some(pattern.slice(at..at + n))
        })
    };
    let mut hash = Sha256::new();
    for piece in pieces() {
        hash.update(&piece);
    }
    let stream = futures_util::stream::iter(pieces().map(|piece| Ok(Frame::data(piece))));
    (StreamBody::new(stream), hash.finalize().into())
}

/// Uploads `len` bytes to `/upload` on `addr`; returns the handler's `{"len", "sha256"}`.
async fn upload(addr: SocketAddr, len: u64) -> (Value, [u8; 32]) {
    let pattern = Bytes::from(common::data(3, 1_048_583));
    let (body, hash) = upload_body(pattern, len);
    let request = Request::post("/upload")
        .header("host", "test")
        .header("content-type", "application/octet-stream")
        .body(body)
        .expect("request");
    let response = send(addr, request).await;
    assert_eq!(response.status(), 200);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (serde_json::from_slice(&bytes).expect("json reply"), hash)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_200_mib_upload_streams_to_the_handler_with_engine_memory_bounded() {
    let engine = common::engine_process::EngineProcess::start();
    let iii = iii_sdk::register_worker_with(&engine.ws_url, common::fast_reconnect());
    iii.register_function(RegisterFunction::new_async(
        "files::upload",
        http(|req: HttpRequest, res: HttpResponse| async move {
            let (len, hash) = common::read_stream(&req.request_body).await?;
            res.headers([("content-type", "application/json")]).await?;
            res.write(
                json!({"len": len, "sha256": hex(hash)})
                    .to_string()
                    .as_bytes(),
            )
            .await
        }),
    ));
    iii.register_trigger(RegisterTrigger::http("files::upload", "/upload", "POST"))
        .expect("trigger registered");
    ready(&iii).await;

    // Warm up the same code paths, so the baseline includes what any upload faults in.
    let (reply, hash) = within(60, upload(engine.http_addr, 8 * MIB)).await;
    assert_eq!(reply["sha256"], hex(hash));
    let baseline = engine.rss_kib();
    let sampler = engine.sample_peak_rss();
    let len = 200 * MIB;
    let (reply, hash) = within(240, upload(engine.http_addr, len)).await;
    let peak = sampler.stop().await;
    assert_eq!(reply["len"], len);
    assert_eq!(
        reply["sha256"],
        hex(hash),
        "the handler got the upload byte-exact"
    );
    let growth_kib = peak.saturating_sub(baseline);
    // 2 × the channel buffer: 64 frames × 64 KiB.
    let bound_kib = 2 * 64 * 64;
    println!(
        "engine RSS during a 200 MiB upload: {baseline} KiB → peak {peak} KiB (+{growth_kib} KiB, bound {bound_kib} KiB)"
    );
    assert!(
        growth_kib <= bound_kib,
        "engine RSS grew {growth_kib} KiB (bound {bound_kib} KiB)"
    );
    iii.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopping_engine_lets_a_download_run_through_the_drain_then_cuts_it_going_away() {
    let engine = engine().await;
    let (written_tx, written_rx) = oneshot::channel::<()>();
    let (failed_tx, failed_rx) = oneshot::channel::<IIIError>();
    let slots = Arc::new(std::sync::Mutex::new((Some(written_tx), Some(failed_tx))));
    let _iii = serve(
        &engine,
        "files::endless",
        "GET",
        "/endless",
        move |_req, res| {
            let slots = slots.clone();
            async move {
                res.status(200).await?;
                res.writer.write(&vec![1; 100_000]).await?;
                if let Some(tx) = slots.lock().ok().and_then(|mut s| s.0.take()) {
                    let _ = tx.send(());
                }
                // A download that outlives any grace period: it writes until the engine cuts it.
                loop {
                    if let Err(error) = res.writer.write(&[2; 1000]).await {
                        if let Some(tx) = slots.lock().ok().and_then(|mut s| s.1.take()) {
                            let _ = tx.send(error);
                        }
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        },
    )
    .await;
    let mut response = within(30, get(http_addr(&engine), "/endless")).await;
    assert_eq!(response.status(), 200);
    within(10, written_rx).await.expect("the handler wrote");
    let mut received = 0usize;
    while received < 100_000 {
        let chunk = within(10, next_chunk(response.body_mut())).await;
        received += chunk.expect("intact so far").expect("more").len();
    }

    // While the engine drains, the download goes on; once it is stopped, the client sees a
    // cut response (never a clean end) and the handler's next write fails with GoingAway.
    let grace = Duration::from_millis(800);
    let started = Instant::now();
    let reading = async {
        let mut during_drain = 0usize;
        loop {
            match next_chunk(response.body_mut()).await {
                Ok(Some(chunk)) => {
                    if started.elapsed() < grace {
                        during_drain += chunk.len();
                    }
                }
                Ok(None) => return (during_drain, Ok(())),
                Err(error) => return (during_drain, Err(error)),
            }
        }
    };
    let stopping = async {
        engine.drain(grace).await;
        assert!(
            started.elapsed() >= grace - Duration::from_millis(100),
            "a download in flight holds the drain"
        );
        engine.shutdown().await;
    };
    let ((during_drain, end), ()) = within(20, async { tokio::join!(reading, stopping) }).await;
    assert!(
        end.is_err(),
        "the cut download ended as if it were complete"
    );
    assert!(
        during_drain >= 10_000,
        "the download went on while the engine drained ({during_drain} bytes)"
    );
    let failed = within(10, failed_rx)
        .await
        .expect("the handler's write failed");
    assert!(matches!(failed, IIIError::GoingAway), "{failed:?}");
}
