//! Calls through the engine: results, remote errors with their codes, panics that must not
//! kill a worker, owners that disconnect mid-call, timeouts, many calls at once, and a worker
//! that survives an engine restart.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use iii_engine::EngineConfig;
use iii_sdk::{ErrorKind, IIIError, RegisterFunction, TriggerRequest};
use serde_json::{Value, json};

fn echo() -> RegisterFunction {
    RegisterFunction::new_async("test::echo", |input: Value| async move { Ok(input) })
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_return_results_across_workers() {
    let engine = engine().await;
    let owner = worker(&engine);
    owner.register_function(echo());
    ready(&owner).await;
    let caller = worker(&engine);
    let result = within(
        10,
        caller.trigger(TriggerRequest::new("test::echo", json!({"a": [1, 2]}))),
    )
    .await
    .expect("result");
    // The engine may add `_caller_worker_id` to object payloads (docs/PROTOCOL.md §3).
    assert_eq!(result["a"], json!([1, 2]));
    engine.shutdown().await;
}

/// The engine drops a worker that answers no ping (docs/PROTOCOL.md §5). The SDK answers pings
/// from its own connection task, so a worker whose handler is busy for several ping timeouts
/// stays connected and its answer arrives.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_busy_in_a_handler_still_answers_the_engines_pings() {
    let engine = engine_with(EngineConfig {
        ping_interval: Duration::from_millis(200),
        ping_timeout: Duration::from_millis(600),
        ..EngineConfig::ephemeral()
    })
    .await;
    // The handler outlasts a ping interval and timeout together: a worker that stopped
    // reading its socket while a handler runs would be dropped and the call stopped.
    let owner = worker(&engine);
    owner.register_function(RegisterFunction::new_async(
        "test::slow",
        |input: Value| async move {
            tokio::time::sleep(Duration::from_millis(2000)).await;
            Ok(input)
        },
    ));
    ready(&owner).await;
    let caller = worker(&engine);
    let result = within(
        10,
        caller.trigger(TriggerRequest::new("test::slow", json!(7))),
    )
    .await
    .expect("the slow call's result");
    assert_eq!(result, json!(7));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_functions_are_function_not_found() {
    let engine = engine().await;
    let caller = worker(&engine);
    let error = within(
        10,
        caller.trigger(TriggerRequest::new("test::nobody", json!({}))),
    )
    .await
    .expect_err("no such function");
    assert!(
        matches!(&error, IIIError::Invocation { code, .. } if code == "function_not_found"),
        "{error:?}"
    );
    assert_eq!(error.code(), "function_not_found");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn handler_errors_and_panics_are_invocation_failed() {
    let engine = engine().await;
    let owner = worker(&engine);
    owner.register_function(RegisterFunction::new_async(
        "test::fails",
        |_: Value| async move { Err(IIIError::Handler("bad input".into())) },
    ));
    owner.register_function(RegisterFunction::new_async(
        "test::panics",
        |_: Value| async move {
            if true {
                panic!("handler blew up");
            }
            Ok(Value::Null)
        },
    ));
    owner.register_function(echo());
    ready(&owner).await;
    let caller = worker(&engine);

    let error = within(
        10,
        caller.trigger(TriggerRequest::new("test::fails", Value::Null)),
    )
    .await
    .expect_err("fails");
    match error {
        IIIError::Invocation { code, message, .. } => {
            assert_eq!(code, "invocation_failed");
            assert_eq!(message, "bad input");
        }
        other => panic!("{other:?}"),
    }
    for _ in 0..3 {
        let error = within(
            10,
            caller.trigger(TriggerRequest::new("test::panics", Value::Null)),
        )
        .await
        .expect_err("panics");
        assert_eq!(error.code(), "invocation_failed");
        assert!(error.to_string().contains("handler blew up"), "{error}");
    }
    // The owner survived its handler's panics.
    let result = within(
        10,
        caller.trigger(TriggerRequest::new("test::echo", json!(7))),
    )
    .await
    .expect("still serving");
    assert_eq!(result, json!(7));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn owner_shutting_down_mid_call_is_invocation_stopped() {
    let engine = engine().await;
    let (owner, _caller, call) = slow_call_in_flight(&engine, "test::slow").await;
    owner.shutdown();
    let error = within(10, call).await.expect("join").expect_err("stopped");
    assert_eq!(error.code(), "invocation_stopped", "{error:?}");
    // A shut-down worker refuses further work.
    let refused = owner
        .trigger(TriggerRequest::new("test::slow", Value::Null))
        .await;
    assert!(matches!(refused, Err(IIIError::Shutdown)));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_time_out_on_the_client() {
    let engine = engine().await;
    let owner = worker(&engine);
    owner.register_function(RegisterFunction::new_async(
        "test::never",
        |_: Value| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Value::Null)
        },
    ));
    ready(&owner).await;
    let request = TriggerRequest::new("test::never", Value::Null).with_timeout_ms(200);
    let started = std::time::Instant::now();
    let error = within(10, owner.trigger(request))
        .await
        .expect_err("timeout");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_mixed_calls_lose_nothing() {
    let engine = engine().await;
    let owner = worker(&engine);
    let voids = Arc::new(AtomicUsize::new(0));
    let counter = voids.clone();
    owner.register_function(RegisterFunction::new_async(
        "count::void",
        move |_: Value| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(Value::Null)
            }
        },
    ));
    owner.register_function(RegisterFunction::new_async(
        "count::call",
        |input: Value| async move { Ok(json!(input["n"].as_u64().unwrap_or(0) + 1)) },
    ));
    ready(&owner).await;
    let caller = worker(&engine);
    ready(&caller).await;

    const CALLS: u64 = 10_000;
    let outcomes: Vec<Result<(), String>> = within(
        120,
        futures_util::stream::iter(0..CALLS)
            .map(|n| {
                let caller = caller.clone();
                async move {
                    if n % 2 == 0 {
                        let request = TriggerRequest::void("count::void", json!({"n": n}));
                        let result = caller.trigger(request).await.map_err(|e| e.to_string())?;
                        (result == Value::Null)
                            .then_some(())
                            .ok_or("void result".to_string())
                    } else {
                        let request = TriggerRequest::new("count::call", json!({"n": n}));
                        let result = caller.trigger(request).await.map_err(|e| e.to_string())?;
                        (result == json!(n + 1))
                            .then_some(())
                            .ok_or(format!("{n}: {result}"))
                    }
                }
            })
            .buffer_unordered(32)
            .collect(),
    )
    .await;
    let failures: Vec<_> = outcomes.into_iter().filter_map(Result::err).collect();
    assert!(
        failures.is_empty(),
        "{} failed, e.g. {:?}",
        failures.len(),
        &failures[..1]
    );
    within(30, async {
        while voids.load(Ordering::SeqCst) < (CALLS / 2) as usize {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(voids.load(Ordering::SeqCst), (CALLS / 2) as usize);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_reconnect_and_replay_registrations() {
    let first = engine().await;
    let port = first.local_addr().port();
    let owner = worker(&first);
    owner.register_function(echo());
    ready(&owner).await;
    let url = first.ws_url();
    let caller = iii_sdk::register_worker_with(&url, fast_reconnect());
    let result = within(
        10,
        caller.trigger(TriggerRequest::new("test::echo", json!(1))),
    )
    .await;
    assert_eq!(result.expect("before restart"), json!(1));

    first.shutdown().await;
    // Another test's socket may hold the freed port for a moment: retry the bind briefly.
    let mut attempts = 0;
    let second = loop {
        let config = EngineConfig {
            port,
            ..EngineConfig::ephemeral()
        };
        match iii_engine::start(config).await {
            Ok(engine) => break engine,
            Err(error) if attempts < 50 => {
                attempts += 1;
                tracing::debug!(%error, "port {port} still busy");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("cannot restart the engine on port {port}: {error}"),
        }
    };
    // Both workers reconnect on their own; the owner's function is registered again.
    within(20, owner.ready()).await.expect("owner back");
    within(20, caller.ready()).await.expect("caller back");
    let result = within(
        10,
        caller.trigger(TriggerRequest::new("test::echo", json!(2))),
    )
    .await;
    assert_eq!(result.expect("after restart"), json!(2));
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unregistered_functions_are_gone() {
    let engine = engine().await;
    let owner = worker(&engine);
    let function = owner.register_function(echo());
    assert_eq!(function.id(), "test::echo");
    ready(&owner).await;
    function.unregister();
    ready(&owner).await;
    let error = within(
        10,
        owner.trigger(TriggerRequest::new("test::echo", json!(1))),
    )
    .await
    .expect_err("unregistered");
    assert_eq!(error.code(), "function_not_found");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn payloads_over_16_mib_go_both_ways() {
    let engine = engine().await;
    let owner = worker(&engine);
    owner.register_function(RegisterFunction::new_async(
        "test::grow",
        |input: Value| async move {
            let blob = input["blob"].as_str().unwrap_or_default();
            Ok(json!({ "received": blob.len(), "echo": blob.repeat(2) }))
        },
    ));
    ready(&owner).await;
    let caller = worker(&engine);
    let blob = "q".repeat(17 * 1024 * 1024);
    let result = within(
        60,
        caller.trigger(TriggerRequest::new("test::grow", json!({ "blob": blob }))),
    )
    .await
    .expect("large call answered");
    assert_eq!(result["received"], 17 * 1024 * 1024);
    assert_eq!(
        result["echo"].as_str().map(str::len),
        Some(34 * 1024 * 1024)
    );
}
