//! The engine as a whole: listener routes, socket limits, start, shutdown and drop.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use iii_engine::EngineConfig;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test(flavor = "multi_thread")]
async fn workerregistered_right_after_connect() {
    let engine = engine().await;
    let mut ws = connect(&engine.ws_url()).await;
    let hello = recv_json(&mut ws).await;
    assert_eq!(hello["type"], "workerregistered");
    assert!(uuid::Uuid::parse_str(hello["worker_id"].as_str().unwrap_or("")).is_ok());
    assert!(hello["reattach_token"].is_string());
    assert!(hello.get("features").is_none());
    eventually("the connection to count", || {
        engine.stats().connections == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn otel_is_accepted_and_discarded() {
    let engine = engine().await;
    let mut otel = connect(&format!("{}/otel", engine.ws_url())).await;
    otel.send(WsMessage::binary(vec![0u8; 1000]))
        .await
        .expect("send");
    otel.send(WsMessage::text("{}")).await.expect("send");
    assert!(silent_for(&mut otel, Duration::from_millis(100)).await);
    otel.close(None).await.expect("close");
    assert_eq!(engine.stats().connections, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_are_404() {
    let engine = engine().await;
    assert_eq!(
        refused_status(&format!("{}/nope", engine.ws_url())).await,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_main_message_closes_with_1009() {
    let engine = engine_with(EngineConfig {
        max_main_message_bytes: 64 * 1024,
        ..EngineConfig::ephemeral()
    })
    .await;
    let mut worker = worker(&engine).await;
    let padding = "x".repeat(100 * 1024);
    worker
        .send(json!({"type": "ping", "padding": padding}))
        .await;
    assert_eq!(close_of(&mut worker.ws).await.map(|c| c.0), Some(1009));
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_closes_sockets_and_returns() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    tokio::time::timeout(WAIT, engine.shutdown())
        .await
        .expect("shutdown in time");
    assert_eq!(close_of(&mut worker.ws).await.map(|c| c.0), Some(1001));
}

#[tokio::test]
async fn runs_on_a_current_thread_runtime_and_stops_when_dropped() {
    let engine = engine().await;
    let url = engine.ws_url();
    let mut worker = worker(&engine).await;
    worker.sync().await;
    drop(engine);
    assert_eq!(close_of(&mut worker.ws).await.map(|c| c.0), Some(1001));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let attempt = tokio_tungstenite::connect_async(url.as_str()).await;
        if attempt.is_err() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn many_engines_run_side_by_side() {
    let engines = futures_util::future::join_all((0..8).map(|_| engine())).await;
    for engine in &engines {
        let mut worker = worker(engine).await;
        worker.sync().await;
    }
    let ports: std::collections::HashSet<u16> =
        engines.iter().map(|e| e.local_addr().port()).collect();
    assert_eq!(ports.len(), 8);
    for engine in engines {
        tokio::time::timeout(WAIT, engine.shutdown())
            .await
            .expect("shutdown in time");
    }
}
