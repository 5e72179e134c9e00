//! Liveness of workers' main sockets (docs/PROTOCOL.md §5): the engine pings a quiet socket
//! and drops a worker that answers nothing, so the calls it owed fail at once instead of
//! waiting for the invocation timeout.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use iii_engine::EngineConfig;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Pings after 100 ms of quiet, gives up 300 ms later; calls would wait 60 s.
fn quick_pings() -> EngineConfig {
    EngineConfig {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(300),
        invocation_timeout: Duration::from_secs(60),
        ..EngineConfig::ephemeral()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_worker_is_dropped_and_its_calls_stopped() {
    // Slower pings than the other tests: the call must reach the owner before it is dropped,
    // even on a loaded machine.
    let engine = engine_with(EngineConfig {
        ping_interval: Duration::from_millis(500),
        ping_timeout: Duration::from_secs(1),
        ..quick_pings()
    })
    .await;
    let mut caller = worker(&engine).await;
    let mut owner = worker(&engine).await;
    owner.register("frozen::work").await;
    // From here the owner reads nothing: like a stopped process, it answers no ping.
    let started = Instant::now();
    let id = caller.call("frozen::work", json!({})).await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    assert_eq!(answer["error"]["code"], "invocation_stopped");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped after {:?}",
        started.elapsed()
    );
    // The function went with its worker, and the worker learns why once it reads again.
    let id = caller.call("frozen::work", json!({})).await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    assert_eq!(answer["error"]["code"], "function_not_found");
    let (_, closed) = read_to_close(&mut owner.ws).await;
    assert_eq!(closed, Some((4010, "unresponsive".into())));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_worker_that_answers_pings_stays() {
    let engine = engine_with(quick_pings()).await;
    let mut owner = worker(&engine).await;
    owner.register("quiet::echo").await;
    // The owner only reads (its WebSocket library answers pings) and echoes calls.
    let serving = tokio::spawn(async move {
        let mut pings = 0;
        while let Some(Ok(message)) = owner.ws.next().await {
            match message {
                WsMessage::Ping(_) => pings += 1,
                WsMessage::Text(text) => {
                    let call: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                    if call["type"] == "invokefunction" {
                        send_json(
                            &mut owner.ws,
                            json!({"type": "invocationresult",
                                   "invocation_id": call["invocation_id"],
                                   "result": call["data"]}),
                        )
                        .await;
                    }
                }
                _ => {}
            }
        }
        pings
    });
    // Ten ping intervals, three timeouts, of silence on the owner's side.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut caller = worker(&engine).await;
    let id = caller.call("quiet::echo", json!({"n": 1})).await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    assert_eq!(answer["result"]["n"], 1);
    engine.shutdown().await;
    let pings = serving.await.expect("owner task");
    assert!(pings >= 3, "the quiet owner was pinged {pings} times");
}
