//! The main socket (docs/PROTOCOL.md §2, §3) against a real engine over real sockets.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use iii_engine::EngineConfig;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test(flavor = "multi_thread")]
async fn call_is_routed_and_answered_under_the_callers_id() {
    let engine = engine().await;
    let mut owner = worker(&engine).await;
    let mut caller = worker(&engine).await;
    owner.register("math::add").await;
    assert_eq!(engine.stats().functions, 1);

    let caller_id = caller.call("math::add", json!({"a": 1, "b": 2})).await;
    let invoke = owner.recv().await;
    assert_eq!(invoke["type"], "invokefunction");
    assert_eq!(invoke["function_id"], "math::add");
    assert_eq!(invoke["data"]["a"], 1);
    assert_eq!(
        invoke["data"]["_caller_worker_id"],
        caller.worker_id.as_str()
    );
    let forwarded_id = invoke["invocation_id"].as_str().expect("id").to_string();
    assert_ne!(
        forwarded_id, caller_id,
        "the engine forwards under its own id"
    );
    assert_eq!(engine.stats().pending_invocations, 1);

    owner
        .send(
            json!({"type": "invocationresult", "invocation_id": forwarded_id,
                     "function_id": "math::add", "result": {"sum": 3}}),
        )
        .await;
    let answer = caller.recv().await;
    assert_eq!(answer["type"], "invocationresult");
    assert_eq!(answer["invocation_id"], caller_id.as_str());
    assert_eq!(answer["function_id"], "math::add");
    assert_eq!(answer["result"], json!({"sum": 3}));
    assert_eq!(engine.stats().pending_invocations, 0);

    // An existing `_caller_worker_id` is kept; a null result arrives as null.
    let second = caller
        .call("math::add", json!({"_caller_worker_id": "mine"}))
        .await;
    let invoke = owner.recv().await;
    assert_eq!(invoke["data"]["_caller_worker_id"], "mine");
    owner
        .send(json!({"type": "invocationresult",
                     "invocation_id": invoke["invocation_id"], "function_id": "math::add"}))
        .await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], second.as_str());
    assert_eq!(answer["result"], serde_json::Value::Null);
    assert!(answer.get("error").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_from_the_owner_reach_the_caller() {
    let engine = engine().await;
    let mut owner = worker(&engine).await;
    let mut caller = worker(&engine).await;
    owner.register("files::fail").await;
    let caller_id = caller.call("files::fail", json!(null)).await;
    let invoke = owner.recv().await;
    owner
        .send(json!({"type": "invocationresult", "invocation_id": invoke["invocation_id"],
                     "function_id": "files::fail",
                     "error": {"code": "invocation_failed", "message": "boom", "stacktrace": "at x"}}))
        .await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], caller_id.as_str());
    assert_eq!(
        answer["error"],
        json!({"code": "invocation_failed", "message": "boom", "stacktrace": "at x"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn void_calls_are_forwarded_and_their_answer_dropped() {
    let engine = engine().await;
    let mut owner = worker(&engine).await;
    let mut caller = worker(&engine).await;
    owner.register("log::write").await;

    let caller_id = uuid();
    caller
        .send(json!({"type": "invokefunction", "invocation_id": caller_id,
                     "function_id": "log::write", "data": {"line": 1},
                     "action": {"type": "void"}}))
        .await;
    caller
        .send(json!({"type": "invokefunction", "function_id": "log::write", "data": {"line": 2}}))
        .await;
    for line in [1, 2] {
        let invoke = owner.recv().await;
        assert_eq!(invoke["data"]["line"], line);
        let id = invoke["invocation_id"].as_str().expect("always an id");
        assert_ne!(id, caller_id);
        owner
            .send(json!({"type": "invocationresult", "invocation_id": id,
                         "function_id": "log::write", "result": "ignored"}))
            .await;
    }
    owner.sync().await;
    // Nothing but the pong comes back to the caller.
    caller.sync().await;
    assert_eq!(engine.stats().pending_invocations, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_function_is_function_not_found() {
    let engine = engine().await;
    let mut caller = worker(&engine).await;
    let id = caller.call("no::such", json!({})).await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    assert_eq!(answer["error"]["code"], "function_not_found");
    assert_eq!(answer["error"]["message"], "Function no::such not found");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_uuid_invocation_id_is_invalid_message() {
    let engine = engine().await;
    let mut caller = worker(&engine).await;
    caller
        .send(json!({"type": "invokefunction", "invocation_id": "call-1",
                     "function_id": "engine::channels::create", "data": {}}))
        .await;
    let answer = caller.recv().await;
    assert_eq!(answer["type"], "invocationresult");
    assert_eq!(answer["invocation_id"], "call-1");
    assert_eq!(answer["error"]["code"], "invalid_message");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_input_is_answered_and_the_connection_survives() {
    let engine = engine().await;
    let mut caller = worker(&engine).await;
    caller
        .ws
        .send(WsMessage::text("{not json"))
        .await
        .expect("send");
    let answer = caller.recv().await;
    assert_eq!(answer["type"], "error");
    assert_eq!(answer["error"]["code"], "invalid_message");

    // An invoke that cannot be read but carries an id is answered under that id.
    caller
        .send(json!({"type": "invokefunction", "invocation_id": "abc", "function_id": 5}))
        .await;
    let answer = caller.recv().await;
    assert_eq!(answer["type"], "invocationresult");
    assert_eq!(answer["invocation_id"], "abc");
    assert_eq!(answer["error"]["code"], "invalid_message");

    // So is one that stops being JSON after its id: a NaN, or nesting past the parser's limit.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for (id, data) in [("nan", "NaN"), ("deep", deep.as_str())] {
        let text = format!(
            r#"{{"type":"invokefunction","invocation_id":"{id}","function_id":"x","data":{data}}}"#
        );
        caller.ws.send(WsMessage::text(text)).await.expect("send");
        let answer = caller.recv().await;
        assert_eq!(answer["type"], "invocationresult", "{id}");
        assert_eq!(answer["invocation_id"], id);
        assert_eq!(answer["error"]["code"], "invalid_message");
    }

    // Binary frames and unknown types are ignored; the socket still works.
    caller
        .ws
        .send(WsMessage::binary(vec![1u8, 2, 3]))
        .await
        .expect("send");
    caller.send(json!({"type": "somethingnew", "x": 1})).await;
    caller.sync().await;
    let id = caller.call("no::such", json!(null)).await;
    assert_eq!(caller.recv().await["invocation_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_utf8_text_closes_the_main_socket_with_1007() {
    let engine = engine().await;
    let mut caller = worker(&engine).await;
    caller.ws.send(invalid_text_frame()).await.expect("send");
    assert_eq!(close_of(&mut caller.ws).await.map(|c| c.0), Some(1007));
}

#[tokio::test(flavor = "multi_thread")]
async fn enqueue_is_enqueue_error() {
    let engine = engine().await;
    let mut owner = worker(&engine).await;
    let mut caller = worker(&engine).await;
    owner.register("jobs::run").await;
    let id = uuid();
    caller
        .send(
            json!({"type": "invokefunction", "invocation_id": id, "function_id": "jobs::run",
                     "data": {}, "action": {"type": "enqueue", "queue": "default"}}),
        )
        .await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    assert_eq!(answer["error"]["code"], "enqueue_error");
    assert_eq!(answer["error"]["message"], "No queue provider is installed");
    assert!(silent_for(&mut owner.ws, Duration::from_millis(100)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn owner_disconnect_stops_pending_calls_and_its_functions() {
    let engine = engine().await;
    let mut owner = worker(&engine).await;
    let mut caller = worker(&engine).await;
    owner.register("slow::op").await;
    let id = caller.call("slow::op", json!({})).await;
    let _ = owner.recv().await;
    drop(owner);
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    assert_eq!(answer["error"]["code"], "invocation_stopped");
    eventually("the owner's functions to go", || {
        let stats = engine.stats();
        stats.functions == 0 && stats.pending_invocations == 0 && stats.connections == 1
    })
    .await;
    let id = caller.call("slow::op", json!({})).await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    assert_eq!(answer["error"]["code"], "function_not_found");
}

/// Answers one call `replica` received with `result`; returns the call.
async fn answer_one(replica: &mut Worker, result: serde_json::Value) -> serde_json::Value {
    let invoke = replica.recv().await;
    assert_eq!(invoke["type"], "invokefunction");
    replica
        .send(
            json!({"type": "invocationresult", "invocation_id": invoke["invocation_id"],
                     "function_id": invoke["function_id"], "result": result}),
        )
        .await;
    invoke
}

/// The hijack of issue 16 turned into what it should be: a second connection registering the
/// same id becomes a replica sharing the calls, and its leaving takes only its own
/// registration (the first still serves; calls pending on the one that left are stopped).
#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_calls_and_one_leaving_keeps_the_function() {
    let engine = engine().await;
    let mut first = worker(&engine).await;
    let mut second = worker(&engine).await;
    let mut caller = worker(&engine).await;
    first.register("shared::fn").await;
    second.register("shared::fn").await;
    assert_eq!(engine.stats().functions, 1, "replicas are one function");
    for round in 0..3 {
        let a = caller.call("shared::fn", json!({"round": round})).await;
        answer_one(&mut first, json!("first")).await;
        let b = caller.call("shared::fn", json!({"round": round})).await;
        answer_one(&mut second, json!("second")).await;
        // The two answers come from two connections: in either order.
        let mut answers = [caller.recv().await, caller.recv().await];
        answers.sort_by_key(|answer| answer["invocation_id"] != a.as_str());
        assert_eq!(answers[0]["invocation_id"], a.as_str());
        assert_eq!(answers[0]["result"], "first");
        assert_eq!(answers[1]["invocation_id"], b.as_str());
        assert_eq!(answers[1]["result"], "second");
    }
    // A call pending on the second when it leaves is stopped; the first keeps serving.
    let _ = caller.call("shared::fn", json!({})).await;
    let _ = first.recv().await;
    let pending = caller.call("shared::fn", json!({})).await;
    let _ = second.recv().await;
    drop(second);
    let stopped = caller.recv().await;
    assert_eq!(stopped["invocation_id"], pending.as_str());
    assert_eq!(stopped["error"]["code"], "invocation_stopped");
    eventually("the second replica to go", || {
        engine.stats().connections == 2
    })
    .await;
    assert_eq!(engine.stats().functions, 1);
    for _ in 0..2 {
        let id = caller.call("shared::fn", json!({})).await;
        answer_one(&mut first, json!("still here")).await;
        let answer = caller.recv().await;
        assert_eq!(answer["invocation_id"], id.as_str());
        assert_eq!(answer["result"], "still here");
    }
    // Unregistering is per replica too: the last one's takes the function away.
    first
        .send(json!({"type": "unregisterfunction", "id": "shared::fn"}))
        .await;
    first.sync().await;
    let id = caller.call("shared::fn", json!({})).await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    assert_eq!(answer["error"]["code"], "function_not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn results_from_another_connection_are_ignored() {
    let engine = engine().await;
    let mut owner = worker(&engine).await;
    let mut caller = worker(&engine).await;
    let mut intruder = worker(&engine).await;
    owner.register("math::add").await;
    let caller_id = caller.call("math::add", json!({})).await;
    let invoke = owner.recv().await;
    let forwarded_id = invoke["invocation_id"].clone();
    intruder
        .send(
            json!({"type": "invocationresult", "invocation_id": forwarded_id,
                     "function_id": "math::add", "result": "forged"}),
        )
        .await;
    intruder.sync().await;
    owner
        .send(
            json!({"type": "invocationresult", "invocation_id": forwarded_id,
                     "function_id": "math::add", "result": "real"}),
        )
        .await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], caller_id.as_str());
    assert_eq!(answer["result"], "real");
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_deadline_answers_timeout() {
    let engine = engine_with(EngineConfig {
        invocation_timeout: Duration::from_millis(200),
        ..EngineConfig::ephemeral()
    })
    .await;
    let mut owner = worker(&engine).await;
    let mut caller = worker(&engine).await;
    owner.register("never::answers").await;
    let id = caller.call("never::answers", json!({})).await;
    let invoke = owner.recv().await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    assert_eq!(answer["error"]["code"], "timeout");
    assert_eq!(engine.stats().pending_invocations, 0);
    // A late answer is dropped.
    owner
        .send(
            json!({"type": "invocationresult", "invocation_id": invoke["invocation_id"],
                     "function_id": "never::answers", "result": 1}),
        )
        .await;
    owner.sync().await;
    caller.sync().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_ping_gets_pong() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    worker.send(json!({"type": "ping"})).await;
    assert_eq!(worker.recv().await, json!({"type": "pong"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_register_is_recorded_and_never_fails() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    worker
        .send(
            json!({"type": "invokefunction", "function_id": "engine::workers::register",
                     "data": {"runtime": "node", "version": "0.22.1", "name": "w1", "os": "linux",
                              "pid": 1234},
                     "action": {"type": "void"}}),
        )
        .await;
    worker.sync().await;
    let workers = engine.workers();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].worker_id, worker.worker_id);
    assert_eq!(workers[0].runtime.as_deref(), Some("node"));
    assert_eq!(workers[0].pid, Some(1234));
    let id = worker
        .call("engine::workers::register", json!("not an object"))
        .await;
    let answer = worker.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    assert_eq!(answer["result"], serde_json::Value::Null);
    assert!(answer.get("error").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn registrations_of_triggers_and_types_are_accepted_silently() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    worker
        .send(json!({"type": "registertriggertype", "id": "cron", "description": "x"}))
        .await;
    worker
        .send(
            json!({"type": "registertrigger", "id": "t1", "trigger_type": "http",
                     "function_id": "f", "config": {"api_path": "/x", "http_method": "GET"},
                     "message_type": "registertrigger"}),
        )
        .await;
    worker
        .send(json!({"type": "unregistertrigger", "id": "t1", "trigger_type": "http"}))
        .await;
    worker
        .send(json!({"type": "reattach", "previous_worker_id": uuid(), "reattach_token": uuid()}))
        .await;
    worker.sync().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_calls_can_be_pending_at_once() {
    const CALLS: usize = 10_000;
    let engine = engine().await;
    let mut owner = worker(&engine).await;
    let caller = worker(&engine).await;
    owner.register("echo::it").await;
    let (mut caller_tx, mut caller_rx) = caller.ws.split();
    let sending = tokio::spawn(async move {
        let mut ids = Vec::with_capacity(CALLS);
        for i in 0..CALLS {
            let id = uuid();
            let invoke = json!({"type": "invokefunction", "invocation_id": id,
                                "function_id": "echo::it", "data": {"i": i}});
            caller_tx
                .feed(WsMessage::text(invoke.to_string()))
                .await
                .expect("send");
            ids.push(id);
        }
        caller_tx.flush().await.expect("flush");
        (ids, caller_tx)
    });
    let mut forwarded = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let invoke = owner.recv().await;
        forwarded.push((invoke["invocation_id"].clone(), invoke["data"]["i"].clone()));
    }
    let (ids, _caller_tx) = sending.await.expect("sender");
    assert_eq!(engine.stats().pending_invocations, CALLS);
    for (id, i) in forwarded {
        let answer = json!({"type": "invocationresult", "invocation_id": id,
                            "function_id": "echo::it", "result": i});
        owner
            .ws
            .feed(WsMessage::text(answer.to_string()))
            .await
            .expect("send");
    }
    owner.ws.flush().await.expect("flush");
    let mut answered = std::collections::HashMap::new();
    while answered.len() < CALLS {
        let message = tokio::time::timeout(WAIT, caller_rx.next())
            .await
            .expect("answers in time")
            .expect("open")
            .expect("readable");
        if let WsMessage::Text(text) = message {
            let answer: serde_json::Value = serde_json::from_str(&text).expect("json");
            answered.insert(
                answer["invocation_id"].as_str().unwrap_or("").to_string(),
                answer["result"].clone(),
            );
        }
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(answered.get(id), Some(&json!(i)), "call {i}");
    }
    assert_eq!(engine.stats().pending_invocations, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn payloads_over_16_mib_reach_the_owner() {
    // The published Python client sends trigger payloads of up to 64 MiB; the engine takes
    // them (it used to close such a worker's socket at 16 MiB).
    let engine = engine().await;
    let mut owner = worker(&engine).await;
    let mut caller = worker(&engine).await;
    owner.register("big::payload").await;
    let blob = "z".repeat(20 * 1024 * 1024);
    caller.call("big::payload", json!({ "blob": blob })).await;
    let invoke = owner.recv().await;
    assert_eq!(invoke["function_id"], "big::payload");
    assert_eq!(
        invoke["data"]["blob"].as_str().map(str::len),
        Some(20 * 1024 * 1024)
    );
}
