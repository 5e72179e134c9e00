//! Workers that stop reading their socket (docs/PROTOCOL.md §2.4): the engine holds a bounded
//! number of bytes for each, refuses calls to one over its bound at once, and drops one that
//! stays over it, while everyone else's traffic goes on.

use std::time::{Duration, Instant};

use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use iii_engine::EngineConfig;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const PAYLOAD: usize = 256 * 1024;

/// 1 MiB per worker (and messages of at most 1 MiB, so the hard cap is 2 MiB); `deadline`
/// before a worker over it is dropped; no pings in the way.
fn bounded(deadline: Duration) -> EngineConfig {
    EngineConfig {
        max_outbound_bytes: 1024 * 1024,
        max_main_message_bytes: 1024 * 1024,
        slow_consumer_timeout: deadline,
        ping_interval: Duration::from_secs(600),
        ..EngineConfig::ephemeral()
    }
}

/// A worker that answers every call with its data, until its socket ends.
async fn echo_worker(engine: &iii_engine::Engine, function_id: &str) {
    let mut owner = worker(engine).await;
    owner.register(function_id).await;
    tokio::spawn(async move {
        while let Some(Ok(message)) = owner.ws.next().await {
            let WsMessage::Text(text) = message else {
                continue;
            };
            let call: Value = serde_json::from_str(&text).expect("JSON");
            if call["type"] == "invokefunction" {
                let answer = json!({"type": "invocationresult",
                                    "invocation_id": call["invocation_id"],
                                    "result": call["data"]["n"]});
                send_json(&mut owner.ws, answer).await;
            }
        }
    });
}

/// Reads `ws` to its end, which must come (within the helpers' wait): the engine dropped it.
/// Its close frame, 4011, arrives only if there was room for it before the close grace ran
/// out, which a peer that does not read may never make.
async fn assert_dropped(ws: &mut Ws) {
    let (_, closed) = read_to_close(ws).await;
    assert!(
        matches!(&closed, None | Some((4011, _))),
        "closed with {closed:?}"
    );
}

/// Reads answers until one for `id`; returns it.
async fn answer_for(caller: &mut Worker, id: &str) -> Value {
    loop {
        let answer = caller.recv().await;
        if answer["invocation_id"] == id {
            return answer;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_to_a_worker_that_stops_reading_are_refused_at_once() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine_with(bounded(Duration::from_secs(600))).await;
    let mut stuck = worker(&engine).await;
    stuck.register("stuck::work").await;
    echo_worker(&engine, "ok::echo").await;
    let mut caller = worker(&engine).await;
    let blob = "x".repeat(PAYLOAD);
    let started = Instant::now();
    let mut busy = None;
    for n in 0..256 {
        let id = caller
            .call("stuck::work", json!({"blob": blob, "n": n}))
            .await;
        // A call to a healthy worker on the same socket is answered meanwhile.
        let check = caller.call("ok::echo", json!({"n": n})).await;
        let mut answered = false;
        while !answered {
            let answer = caller.recv().await;
            if answer["invocation_id"] == id.as_str() {
                assert_eq!(answer["error"]["code"], "worker_busy", "{answer}");
                busy = Some(n);
            } else if answer["invocation_id"] == check.as_str() {
                assert_eq!(answer["result"], n, "{answer}");
                answered = true;
            }
        }
        if busy.is_some() {
            break;
        }
    }
    let busy = busy.expect("calls to the stuck worker were refused");
    assert!(busy > 0, "the first calls were queued");
    assert!(started.elapsed() < Duration::from_secs(10));

    // Its HTTP route answers 503 `worker_busy` at once too. Small calls fill what is left of
    // its bound first, so that a request larger than them cannot fit.
    let small = "y".repeat(1000);
    let mut filled = false;
    for _ in 0..40 {
        for _ in 0..32 {
            caller.call("stuck::work", json!({"pad": small})).await;
        }
        // A refusal is answered as its call is read, so every one comes before the pong.
        caller.send(json!({"type": "ping"})).await;
        loop {
            let answer = caller.recv().await;
            if answer["type"] == "pong" {
                break;
            }
            assert_eq!(answer["error"]["code"], "worker_busy", "{answer}");
            filled = true;
        }
        if filled {
            break;
        }
    }
    assert!(filled, "small calls to the stuck worker were never refused");
    caller
        .send(
            json!({"type": "registertrigger", "id": "stuck-route", "trigger_type": "http",
                     "function_id": "stuck::work",
                     "config": {"api_path": "/stuck", "http_method": "GET"}}),
        )
        .await;
    caller.sync().await;
    let pad = format!("x-pad: {}\r\n", "z".repeat(4096));
    let http = engine.http_addr().expect("the http server runs");
    let answer = crate::raw_http_get(http, "/stuck", &pad).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("worker_busy"), "{answer}");
    drop(stuck);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_over_its_bound_past_the_deadline_is_dropped() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine_with(bounded(Duration::from_millis(300))).await;
    let mut stuck = worker(&engine).await;
    stuck.register("stuck::work").await;
    let mut caller = worker(&engine).await;
    let blob = "x".repeat(PAYLOAD);
    let mut queued = Vec::new();
    loop {
        let id = caller.call("stuck::work", json!({"blob": blob})).await;
        queued.push(id.clone());
        // The refusal may come a little later than its call: it is matched by its id.
        if let Ok(answer) = tokio::time::timeout(Duration::from_millis(20), caller.recv()).await {
            assert_eq!(answer["error"]["code"], "worker_busy", "{answer}");
            queued.retain(|queued| answer["invocation_id"] != queued.as_str());
            break;
        }
        assert!(
            queued.len() < 256,
            "the stuck worker was never over its bound"
        );
    }
    // Still over the bound after the deadline: a call then drops the worker, and the calls
    // it owed fail at once. (Calls go on being refused until then; on a loaded machine the
    // engine may still be pushing queued calls into the socket's buffers, which is progress
    // and restarts the clock, so one call after the deadline is not always the one.)
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut waiting: std::collections::HashSet<String> = queued.into_iter().collect();
    let mut refused = std::collections::HashSet::new();
    let mut stopped = 0;
    let give_up = Instant::now() + WAIT;
    while !waiting.is_empty() {
        assert!(Instant::now() < give_up, "the stuck worker was not dropped");
        refused.insert(caller.call("stuck::work", json!({"blob": blob})).await);
        while let Ok(answer) = tokio::time::timeout(Duration::from_millis(100), caller.recv()).await
        {
            let id = answer["invocation_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if refused.remove(&id) {
                // Refused while it stays (or queued, if the clock had restarted, and then
                // stopped with the rest), unknown once it is gone.
                let code = answer["error"]["code"].as_str().unwrap_or_default();
                assert!(
                    ["worker_busy", "invocation_stopped", "function_not_found"].contains(&code),
                    "{answer}"
                );
                continue;
            }
            assert!(
                waiting.remove(&id),
                "an answer for no queued call: {answer}"
            );
            // A call of the first loop may have been refused after the loop moved on.
            let code = answer["error"]["code"].as_str().unwrap_or_default();
            assert!(
                code == "invocation_stopped" || code == "worker_busy",
                "{answer}"
            );
            stopped += usize::from(code == "invocation_stopped");
        }
    }
    assert!(stopped > 0, "no queued call was stopped");
    assert_dropped(&mut stuck.ws).await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_that_never_reads_its_answers_is_dropped_and_the_callee_goes_on() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine_with(bounded(Duration::from_secs(600))).await;
    echo_worker(&engine, "ok::echo").await;
    let mut greedy = worker(&engine).await;
    let blob = "x".repeat(PAYLOAD);
    for n in 0..64 {
        // Each answer echoes the blob back; the answers pile up for the greedy caller, which
        // may be dropped before it has sent them all.
        let call = json!({"type": "invokefunction", "invocation_id": uuid(),
                          "function_id": "ok::echo", "data": {"n": blob, "i": n}});
        if greedy
            .ws
            .send(WsMessage::text(call.to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    // The echo worker's answers to the greedy caller never stall it: others get answers.
    let mut other = worker(&engine).await;
    let id = other.call("ok::echo", json!({"n": 7})).await;
    assert_eq!(answer_for(&mut other, &id).await["result"], 7);
    assert_dropped(&mut greedy.ws).await;
    engine.shutdown().await;
}
