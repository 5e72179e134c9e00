//! Plain HTTP on the worker port, as a health check, a load balancer or `curl` sends it: a raw
//! TCP client writes the request bytes itself and reads the whole answer.

use crate::common::*;
use serde_json::Value;

/// Sends `request` to the engine's worker port and returns the status code, the head and the
/// body of the answer (the connection is closed by `Connection: close`).
async fn plain(engine: &iii_engine::Engine, request: &str) -> (u16, String, String) {
    let answer = crate::raw_http(engine.local_addr(), request).await;
    let answer = String::from_utf8(answer).expect("utf-8 answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a full HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_answers_with_live_counts() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine().await;
    let request = "GET /health HTTP/1.1\r\nHost: engine\r\nConnection: close\r\n\r\n";
    let (status, head, body) = plain(&engine, request).await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let health: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["workers"], 0);
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_secs"].is_u64(), "{health}");

    // A worker on the same port is counted; the port still upgrades as before.
    let mut caller = worker(&engine).await;
    caller.create_channel(serde_json::json!(8)).await;
    let (status, _, body) = plain(&engine, request).await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(health["workers"], 1);
    assert_eq!(
        health["connections"], 2,
        "the main socket and this request's own"
    );
    assert_eq!(health["channels"], 1);
    let id = caller.call("no::such", Value::Null).await;
    assert_eq!(caller.recv().await["invocation_id"], id.as_str());

    let head_only = "HEAD /health HTTP/1.1\r\nHost: engine\r\nConnection: close\r\n\r\n";
    let (status, _, body) = plain(&engine, head_only).await;
    assert_eq!((status, body.as_str()), (200, ""));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_plain_requests_are_told_to_upgrade() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine().await;
    let (status, head, body) = plain(
        &engine,
        "GET / HTTP/1.1\r\nHost: engine\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 426, "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    let error: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(error["error"]["code"], "upgrade_required");

    let (status, head, body) = plain(
        &engine,
        "POST /health HTTP/1.1\r\nHost: engine\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405, "{head}");
    assert!(head.contains("allow: get, head"), "{head}");
    let error: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(error["error"]["code"], "method_not_allowed");
    engine.shutdown().await;
}
