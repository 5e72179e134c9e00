//! HTTP triggers at the protocol level: a raw WebSocket worker registers routes and answers
//! invocations by hand, and requests are plain HTTP/1.1 written to a TCP socket, so every
//! byte the engine receives and sends is the test's own.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{WAIT, Worker, close_of, connect, end_url, engine, engine_with, worker};
use futures_util::SinkExt;
use iii_engine::{Engine, EngineConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A response as read off the socket.
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body {:?} is not JSON: {e}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// Sends `request` (a complete HTTP/1.1 request with `Connection: close`) and reads the
/// whole response.
async fn send_raw(addr: SocketAddr, request: String) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    raw
}

/// Splits a response into status, head and body; chunked bodies are decoded.
fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Reply { status, head, body }
}

async fn exchange(engine: &Engine, request: String) -> Reply {
    parse(&send_raw(engine.http_addr().expect("http server runs"), request).await)
}

/// A GET of `path` sent in the background, for tests that answer the invocation first.
fn get_later(engine: &Engine, path: &str) -> tokio::task::JoinHandle<Reply> {
    let addr = engine.http_addr().expect("http server runs");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    tokio::spawn(async move { parse(&send_raw(addr, request).await) })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).expect("hex"), 16)
            .expect("chunk size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

async fn get(engine: &Engine, path: &str) -> Reply {
    get_later(engine, path).await.expect("request task")
}

async fn post_json(engine: &Engine, path: &str, body: &str) -> Reply {
    exchange(
        engine,
        format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await
}

/// Registers function `function_id` and an http trigger for it.
async fn route(worker: &mut Worker, function_id: &str, config: Value) {
    worker
        .send(json!({"type": "registerfunction", "id": function_id}))
        .await;
    worker
        .send(
            json!({"type": "registertrigger", "id": format!("t-{function_id}"),
                     "trigger_type": "http", "function_id": function_id, "config": config}),
        )
        .await;
    worker.sync().await;
}

/// Reads the next invocation the engine sends `worker`.
async fn invocation(worker: &mut Worker) -> Value {
    let message = worker.recv().await;
    assert_eq!(message["type"], "invokefunction", "{message}");
    message
}

async fn answer(worker: &mut Worker, invocation: &Value, result: Value) {
    worker
        .send(
            json!({"type": "invocationresult", "invocation_id": invocation["invocation_id"],
                     "function_id": invocation["function_id"], "result": result}),
        )
        .await;
}

#[tokio::test]
async fn a_request_becomes_an_invocation_and_a_plain_result_its_response() {
    let engine = engine().await;
    let mut w = worker(&engine).await;
    route(
        &mut w,
        "files::get",
        json!({"api_path": "files/:name", "http_method": "get"}),
    )
    .await;
    let addr = engine.http_addr().expect("http server runs");
    let request = tokio::spawn(send_raw(
        addr,
        "GET /files/q%203.pdf?tag=a&tag=b&x=1 HTTP/1.1\r\nHost: test\r\nX-Multi: 1\r\nX-Multi: 2\r\nConnection: close\r\n\r\n".to_string(),
    ));
    let call = invocation(&mut w).await;
    let data = &call["data"];
    assert_eq!(data["method"], "GET");
    assert_eq!(data["path"], "/files/:name");
    assert_eq!(data["raw_path"], "/files/q%203.pdf");
    assert_eq!(data["path_params"], json!({"name": "q 3.pdf"}));
    assert_eq!(data["query_params"], json!({"tag": ["a", "b"], "x": "1"}));
    assert_eq!(data["headers"]["x-multi"], json!(["1", "2"]));
    assert_eq!(data["headers"]["host"], "test");
    assert_eq!(data["body"], Value::Null);
    assert_eq!(data["request_body"]["direction"], "read");
    assert_eq!(data["response"]["direction"], "write");
    assert_ne!(
        data["request_body"]["channel_id"],
        data["response"]["channel_id"]
    );
    assert_eq!(
        data["trigger"],
        json!({"type": "http", "path": "/files/:name", "method": "GET"})
    );
    answer(
        &mut w,
        &call,
        json!({"statusCode": 201, "headers": ["X-Id: 7"], "body": {"ok": true}}),
    )
    .await;
    let reply = parse(&request.await.expect("request task"));
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header("x-id").as_deref(), Some("7"));
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(reply.json(), json!({"ok": true}));

    // The request body nobody read and the response writer that never connected are
    // tombstoned: a late writer is accepted, then closed, never refused with 404.
    let mut late = connect(&end_url(&engine, &data["response"])).await;
    assert_eq!(
        close_of(&mut late).await,
        Some((4003, "reader_closed".to_string()))
    );
    let mut late_reader = connect(&end_url(&engine, &data["request_body"])).await;
    assert_eq!(close_of(&mut late_reader).await.map(|c| c.0), Some(4008));
}

#[tokio::test]
async fn no_route_is_404_and_a_route_without_its_function_is_503() {
    let engine = engine().await;
    let reply = get(&engine, "/nothing/here").await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "NOT_FOUND", "message": "Not Found"}})
    );
    let mut w = worker(&engine).await;
    w.send(
        json!({"type": "registertrigger", "id": "t", "trigger_type": "http",
                  "function_id": "nobody::serves", "config": {"api_path": "/orphan"}}),
    )
    .await;
    w.sync().await;
    let reply = get(&engine, "/orphan").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"]["code"], "function_not_found");
    assert_eq!(engine.stats().channels, 0, "its channels were released");
}

#[tokio::test]
async fn a_trigger_without_api_path_is_refused_with_a_registration_result() {
    let engine = engine().await;
    let mut w = worker(&engine).await;
    w.send(
        json!({"type": "registertrigger", "id": "bad", "trigger_type": "http",
                  "function_id": "f", "config": {"http_method": "GET"}}),
    )
    .await;
    let reply = w.recv().await;
    assert_eq!(reply["type"], "triggerregistrationresult");
    assert_eq!(reply["id"], "bad");
    assert_eq!(reply["function_id"], "f");
    assert_eq!(reply["error"]["code"], "trigger_registration_failed");
    assert_eq!(engine.stats().http_routes, 0);
}

#[tokio::test]
async fn routes_go_with_unregistration_and_with_their_connection() {
    let engine = engine().await;
    let mut w = worker(&engine).await;
    route(&mut w, "a", json!({"api_path": "/a"})).await;
    route(
        &mut w,
        "b",
        json!({"api_path": "/b", "http_method": "POST"}),
    )
    .await;
    assert_eq!(engine.stats().http_routes, 2);
    w.send(json!({"type": "unregistertrigger", "id": "t-a"}))
        .await;
    w.sync().await;
    assert_eq!(get(&engine, "/a").await.status, 404);
    drop(w);
    common::eventually("routes removed", || engine.stats().http_routes == 0).await;
    assert_eq!(post_json(&engine, "/b", "{}").await.status, 404);
}

/// Two replicas register the same function and route (same trigger id, as two copies of one
/// program do): requests reach both, and the route outlives the replica that leaves.
#[tokio::test]
async fn a_route_served_by_replicas_outlives_the_one_that_leaves() {
    let engine = engine().await;
    let mut first = worker(&engine).await;
    let mut second = worker(&engine).await;
    for replica in [&mut first, &mut second] {
        route(replica, "files::get", json!({"api_path": "/files"})).await;
    }
    for (replica, name) in [(&mut first, "first"), (&mut second, "second")] {
        let request = get_later(&engine, "/files");
        let call = invocation(replica).await;
        answer(replica, &call, json!({"status_code": 200, "body": name})).await;
        let reply = request.await.expect("request task");
        assert_eq!(reply.status, 200);
        assert!(String::from_utf8_lossy(&reply.body).contains(name));
    }
    drop(second);
    common::eventually("the second replica's route to go", || {
        engine.stats().http_routes == 1
    })
    .await;
    let request = get_later(&engine, "/files");
    let call = invocation(&mut first).await;
    answer(
        &mut first,
        &call,
        json!({"status_code": 200, "body": "first"}),
    )
    .await;
    assert_eq!(request.await.expect("request task").status, 200);
}

#[tokio::test]
async fn handler_errors_are_500_and_a_silent_handler_is_504() {
    let engine = engine_with(EngineConfig {
        http_timeout: Duration::from_millis(300),
        ..EngineConfig::ephemeral()
    })
    .await;
    let mut w = worker(&engine).await;
    route(&mut w, "fails", json!({"api_path": "/fails"})).await;
    route(&mut w, "silent", json!({"api_path": "/silent"})).await;
    let failing = get_later(&engine, "/fails");
    let call = invocation(&mut w).await;
    w.send(
        json!({"type": "invocationresult", "invocation_id": call["invocation_id"],
                  "function_id": "fails",
                  "error": {"code": "disk_full", "message": "no space left on /srv/data",
                            "stacktrace": "Traceback: /srv/app/handler.py line 3"}}),
    )
    .await;
    let reply = failing.await.expect("request task");
    assert_eq!(reply.status, 500);
    // The code reaches the client; the function's message and traceback (server paths) do not.
    assert_eq!(reply.json()["error"]["code"], "disk_full");
    let body = reply.json().to_string();
    assert!(
        !body.contains("/srv") && !body.contains("no space"),
        "{body}"
    );

    let reply = get(&engine, "/silent").await;
    assert_eq!(reply.status, 504);
    assert_eq!(reply.json()["error"]["code"], "timeout");
}

#[tokio::test]
async fn an_owner_that_disconnects_mid_request_gives_500_invocation_stopped() {
    let engine = engine().await;
    let mut w = worker(&engine).await;
    route(&mut w, "vanishes", json!({"api_path": "/vanishes"})).await;
    let request = get_later(&engine, "/vanishes");
    invocation(&mut w).await;
    drop(w);
    let reply = request.await.expect("request task");
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["error"]["code"], "invocation_stopped");
}

#[tokio::test]
async fn json_bodies_are_parsed_capped_and_validated() {
    let engine = engine_with(EngineConfig {
        max_json_body_bytes: 32,
        ..EngineConfig::ephemeral()
    })
    .await;
    let mut w = worker(&engine).await;
    route(
        &mut w,
        "echo",
        json!({"api_path": "/echo", "http_method": "POST"}),
    )
    .await;
    let body = r#"{"n": [1, 2]}"#;
    let request = tokio::spawn(send_raw(
        engine.http_addr().expect("http server runs"),
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    ));
    let call = invocation(&mut w).await;
    assert_eq!(call["data"]["body"], json!({"n": [1, 2]}));
    answer(&mut w, &call, json!({"status_code": 200, "body": "done"})).await;
    let reply = parse(&request.await.expect("request task"));
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.body, b"done");

    let too_big = post_json(&engine, "/echo", &format!("[{}]", "1,".repeat(40) + "1")).await;
    assert_eq!(too_big.status, 413);
    assert_eq!(too_big.json()["error"]["code"], "payload_too_large");
    let invalid = post_json(&engine, "/echo", "{nope").await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.json()["error"]["code"], "invalid_json");
    assert!(common::silent_for(&mut w.ws, Duration::from_millis(100)).await);
}

#[tokio::test]
async fn status_and_headers_go_out_when_the_response_ends_without_a_body() {
    let engine = engine().await;
    let mut w = worker(&engine).await;
    route(
        &mut w,
        "empty",
        json!({"api_path": "/empty", "http_method": "DELETE"}),
    )
    .await;
    let addr = engine.http_addr().expect("http server runs");
    let request = tokio::spawn(send_raw(
        addr,
        "DELETE /empty HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_string(),
    ));
    let call = invocation(&mut w).await;
    let mut writer = connect(&end_url(&engine, &call["data"]["response"])).await;
    for text in [
        r#"{"type":"set_status","status_code":204}"#,
        r#"{"type":"set_headers","headers":{"x-deleted":"yes"}}"#,
    ] {
        writer
            .send(WsMessage::text(text))
            .await
            .expect("control message");
    }
    writer
        .close(Some(common::close(1000, "done")))
        .await
        .expect("close");
    answer(&mut w, &call, Value::Null).await;
    let reply = parse(&request.await.expect("request task"));
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("x-deleted").as_deref(), Some("yes"));
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn a_response_writer_lost_mid_body_cuts_the_response_off() {
    let engine = engine().await;
    let mut w = worker(&engine).await;
    route(&mut w, "lost", json!({"api_path": "/lost"})).await;
    let addr = engine.http_addr().expect("http server runs");
    let request = tokio::spawn(send_raw(
        addr,
        "GET /lost HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_string(),
    ));
    let call = invocation(&mut w).await;
    let mut writer = connect(&end_url(&engine, &call["data"]["response"])).await;
    writer
        .send(WsMessage::binary(&b"partial"[..]))
        .await
        .expect("body bytes");
    // The worker process dies: its socket goes without a close frame.
    drop(writer);
    let raw = request.await.expect("request task");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("\r\n7\r\npartial\r\n"),
        "the bytes before the loss arrive: {text}"
    );
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "no terminating chunk, so the client knows the body is incomplete: {text}"
    );
}

#[tokio::test]
async fn a_path_parameter_that_could_leave_its_segment_is_refused() {
    let engine = engine().await;
    let mut w = worker(&engine).await;
    route(&mut w, "files::get", json!({"api_path": "/files/:name"})).await;
    for path in [
        "/files/..%2F..%2F..%2Fetc%2Fhostname",
        "/files/%2E%2E",
        "/files/.",
        "/files/a%2Fb",
        "/files/a%5Cb",
    ] {
        let reply = get(&engine, path).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.json()["error"]["code"], "bad_request", "{path}");
    }
    // None of them reached the function: the next message it gets is this request's.
    let allowed = get_later(&engine, "/files/report.pdf");
    let call = invocation(&mut w).await;
    assert_eq!(call["data"]["path_params"], json!({"name": "report.pdf"}));
    answer(&mut w, &call, json!({"status_code": 200, "body": "ok"})).await;
    assert_eq!(allowed.await.expect("request task").status, 200);
}
