//! Unit tests of the HTTP helper: payload parsing, control messages, and how the adapter ends
//! a response, against a stand-in for the engine's end of the response channel.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::*;
use crate::ErrorKind;
use iii_protocol::http::ResponseControl;

const ADDRESS: &str = "ws://127.0.0.1:1";

fn channel_ref(id: &str, direction: &str) -> Value {
    json!({"channel_id": id, "access_key": "k", "direction": direction})
}

fn payload() -> Value {
    json!({
        "method": "get",
        "path": "/files/:filename",
        "raw_path": "/files/report.pdf",
        "path_params": {"filename": "report.pdf", "n": 7},
        "query_params": {"a": "1", "tags": ["x", "y"], "empty": [], "page": 2},
        "headers": {"accept": "*/*", "X-Multi": ["a", "b"], "x-multi": "c"},
        "body": {"name": "q3"},
        "request_body": channel_ref("in", "read"),
        "response": channel_ref("out", "write"),
        "trigger": {"type": "http", "path": "/files/:filename", "method": "GET"},
        "_caller_worker_id": "w1",
    })
}

fn without(mut data: Value, key: &str) -> Value {
    if let Some(fields) = data.as_object_mut() {
        fields.remove(key);
    }
    data
}

fn split_error(data: Value) -> IIIError {
    match split(ADDRESS, data) {
        Ok(_) => panic!("expected the payload to be rejected"),
        Err(error) => error,
    }
}

#[test]
fn a_full_payload_is_parsed() {
    let (request, _response) = split(ADDRESS, payload()).expect("valid payload");
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/files/:filename");
    assert_eq!(request.raw_path.as_deref(), Some("/files/report.pdf"));
    assert_eq!(request.path_param("filename"), Some("report.pdf"));
    assert_eq!(request.path_param("n"), Some("7"));
    assert_eq!(request.query("a"), Some("1"));
    assert_eq!(request.query("tags"), Some("x"));
    assert_eq!(request.query_all("tags"), ["x", "y"]);
    assert_eq!(request.query("page"), Some("2"));
    assert!(!request.query_params.contains_key("empty"));
    assert_eq!(request.query("missing"), None);
    assert!(request.query_all("missing").is_empty());
    assert_eq!(request.header("Accept"), Some("*/*"));
    let mut multi = request.header_all("x-multi").to_vec();
    multi.sort();
    assert_eq!(multi, ["a", "b", "c"]);
    assert_eq!(request.body, json!({"name": "q3"}));
    let body: HashMap<String, String> = request.json().expect("json body");
    assert_eq!(body["name"], "q3");
}

#[test]
fn missing_optional_fields_default() {
    let data = json!({
        "request_body": channel_ref("in", "read"),
        "response": channel_ref("out", "write"),
        "trigger": {"type": "http", "path": "/events/stream", "method": "post"},
    });
    let (request, _response) = split(ADDRESS, data).expect("minimal payload");
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/events/stream");
    assert_eq!(request.raw_path, None);
    assert!(request.path_params.is_empty() && request.query_params.is_empty());
    assert!(request.headers.is_empty());
    assert_eq!(request.body, Value::Null);

    let bare = json!({
        "request_body": channel_ref("in", "read"),
        "response": channel_ref("out", "write"),
    });
    let (request, _response) = split(ADDRESS, bare).expect("bare payload");
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "")
    );
}

#[test]
fn malformed_optional_fields_are_ignored() {
    let mut data = payload();
    data["headers"] = json!("accept: */*");
    data["query_params"] = json!({"a": {"nested": true}, "b": [1, null, "x"]});
    data["path_params"] = json!(null);
    let (request, _response) = split(ADDRESS, data).expect("tolerated");
    assert!(request.headers.is_empty());
    assert_eq!(request.query("a"), None);
    assert_eq!(request.query_all("b"), ["1", "x"]);
    assert!(request.path_params.is_empty());
}

#[test]
fn missing_or_bad_refs_are_errors() {
    let cases = [
        without(payload(), "response"),
        without(payload(), "request_body"),
        {
            let mut data = payload();
            data["response"] = json!(null);
            data
        },
        {
            let mut data = payload();
            data["response"] = json!({"channel_id": "out", "direction": "write"});
            data
        },
        {
            let mut data = payload();
            data["response"] = channel_ref("out", "read");
            data
        },
        {
            let mut data = payload();
            data["request_body"] = channel_ref("in", "write");
            data
        },
        json!("not an object"),
        Value::Null,
    ];
    for data in cases {
        let error = split_error(data.clone());
        assert_eq!(error.kind(), ErrorKind::Protocol, "{data}: {error}");
    }
    let message = split_error(without(payload(), "response")).to_string();
    assert!(message.contains("`response`"), "{message}");
}

#[test]
fn control_messages_have_the_wire_shape() {
    let status: Value =
        serde_json::from_str(&ResponseControl::status(404).to_json()).expect("json");
    assert_eq!(status, json!({"type": "set_status", "status_code": 404}));

    let headers = ResponseControl::headers([
        ("Content-Type", "text/plain"),
        ("set-cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("set-cookie", "c=3"),
    ])
    .expect("a message")
    .to_json();
    let headers: Value = serde_json::from_str(&headers).expect("json");
    assert_eq!(
        headers,
        json!({"type": "set_headers", "headers": {
            "content-type": "text/plain", "set-cookie": ["a=1", "b=2", "c=3"]}})
    );

    let owned: HashMap<String, String> = [("x-a".to_string(), "1".to_string())].into();
    let from_map: Value = serde_json::from_str(
        &ResponseControl::headers(&owned)
            .expect("a message")
            .to_json(),
    )
    .expect("json");
    assert_eq!(from_map["headers"], json!({"x-a": "1"}));
    assert_eq!(ResponseControl::headers(Vec::<(&str, &str)>::new()), None);
}

#[tokio::test]
async fn the_adapter_needs_a_worker_invocation() {
    let handler = http(|_req, _res| async { Ok(()) });
    let error = handler(payload())
        .await
        .expect_err("no worker address here");
    assert_eq!(error.kind(), ErrorKind::Handler);
}

/// What the stand-in engine saw on the response channel.
#[derive(Debug)]
struct Seen {
    texts: Vec<Value>,
    body: Vec<u8>,
    close: Option<(u16, String)>,
}

/// A stand-in for the engine's end of one response channel: accepts one channel socket,
/// records its frames, and answers its Close as the engine does once it holds everything.
async fn fake_engine() -> (String, tokio::task::JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("ws://{}", listener.local_addr().expect("addr"));
    let seen = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut socket = tokio_tungstenite::accept_async(stream)
            .await
            .expect("upgrade");
        let mut seen = Seen {
            texts: Vec::new(),
            body: Vec::new(),
            close: None,
        };
        while let Some(Ok(frame)) = socket.next().await {
            match frame {
                WsMessage::Text(text) => {
                    seen.texts
                        .push(serde_json::from_str(text.as_str()).expect("json control"));
                }
                WsMessage::Binary(data) => seen.body.extend_from_slice(&data),
                WsMessage::Close(frame) => {
                    seen.close = frame
                        .as_ref()
                        .map(|f| (u16::from(f.code), f.reason.to_string()));
                    // tungstenite answers the Close itself; reading on flushes the answer.
                    while let Some(Ok(_)) = socket.next().await {}
                    break;
                }
                _ => {}
            }
        }
        seen
    });
    (address, seen)
}

async fn seen(engine: tokio::task::JoinHandle<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), engine)
        .await
        .expect("the response channel ended")
        .expect("fake engine")
}

#[tokio::test]
async fn a_forgotten_close_is_done_after_ok() {
    let (address, engine) = fake_engine().await;
    let result = serve(&address, payload(), |req, res| async move {
        assert_eq!(req.path_param("filename"), Some("report.pdf"));
        res.status(201).await?;
        res.headers([("Content-Type", "text/plain")]).await?;
        res.write(b"hello ").await?;
        res.writer.write(b"world").await
    })
    .await;
    assert_eq!(result.expect("success"), Value::Null);
    let seen = seen(engine).await;
    assert_eq!(
        seen.texts,
        [
            json!({"type": "set_status", "status_code": 201}),
            json!({"type": "set_headers", "headers": {"content-type": "text/plain"}}),
        ]
    );
    assert_eq!(seen.body, b"hello world");
    assert_eq!(seen.close.map(|(code, _)| code), Some(1000));
}

#[tokio::test]
async fn an_explicit_close_is_not_repeated() {
    let (address, engine) = fake_engine().await;
    let result = serve(&address, payload(), |_req, res| async move {
        res.write(b"done").await?;
        res.close().await?;
        res.close().await
    })
    .await;
    assert_eq!(result.expect("success"), Value::Null);
    let seen = seen(engine).await;
    assert_eq!(
        (seen.body.as_slice(), seen.close.map(|c| c.0)),
        (&b"done"[..], Some(1000))
    );
}

#[tokio::test]
async fn a_failure_mid_body_aborts_the_response() {
    let (address, engine) = fake_engine().await;
    let result = serve(&address, payload(), |_req, res| async move {
        res.write(b"partial").await?;
        Err(IIIError::Handler("disk read failed".into()))
    })
    .await;
    let error = result.expect_err("the handler's error");
    assert_eq!(error.to_string(), "disk read failed");
    let seen = seen(engine).await;
    assert_eq!(seen.body, b"partial");
    assert_eq!(seen.close, Some((4001, "disk read failed".to_string())));
}

#[tokio::test]
async fn a_panic_mid_body_aborts_the_response() {
    let (address, engine) = fake_engine().await;
    let result = serve(&address, payload(), |_req, res| async move {
        res.write(b"partial").await?;
        panic!("boom");
    })
    .await;
    let error = result.expect_err("the panic as an error");
    assert!(error.to_string().contains("boom"), "{error}");
    let (code, reason) = seen(engine).await.close.expect("a close");
    assert_eq!(code, 4001);
    assert!(reason.contains("boom"), "{reason}");
}

#[tokio::test]
async fn a_failure_before_any_output_leaves_the_channel_unused() {
    let (address, engine) = fake_engine().await;
    let result = serve(&address, payload(), |_req, _res| async move {
        Err(IIIError::Handler("no such file".into()))
    })
    .await;
    assert_eq!(result.expect_err("error").to_string(), "no such file");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!engine.is_finished(), "the response channel was opened");
    engine.abort();
}

#[tokio::test]
async fn a_bad_payload_never_runs_the_handler() {
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    let result = serve(
        ADDRESS,
        without(payload(), "response"),
        |_req, _res| async move {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        },
    )
    .await;
    assert_eq!(result.expect_err("rejected").kind(), ErrorKind::Protocol);
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
}
