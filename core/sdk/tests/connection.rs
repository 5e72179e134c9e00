//! The main socket's life: calls in flight when the connection drops, a worker that gives up
//! reconnecting, an address that is no engine URL, trigger registrations, and shutdown.

mod common;

use common::*;
use iii_sdk::{
    ErrorKind, IIIError, InitOptions, ReconnectionConfig, RegisterFunction, RegisterTrigger,
    TriggerRequest,
};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn calls_in_flight_fail_when_the_connection_drops() {
    let engine = engine().await;
    let (owner, caller, call) = slow_call_in_flight(&engine, "conn::slow").await;
    engine.shutdown().await;
    // Either the engine answered before going away, or its going away (1001; a connection
    // error when the socket failed under the writer before the close was read) failed the
    // call: never a wait for the 30 s client timeout.
    let error = within(5, call).await.expect("join").expect_err("failed");
    assert!(
        matches!(error.kind(), ErrorKind::GoingAway | ErrorKind::Connection)
            || error.code() == "invocation_stopped",
        "{error:?}"
    );
    owner.shutdown();
    caller.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_gives_up_reports_not_connected() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let options = InitOptions {
        reconnection: ReconnectionConfig {
            initial_delay_ms: 20,
            max_delay_ms: 40,
            max_retries: Some(2),
            ..ReconnectionConfig::default()
        },
        ..InitOptions::default()
    };
    let iii = iii_sdk::register_worker_with(&format!("ws://127.0.0.1:{port}"), options);
    let error = within(10, iii.ready()).await.expect_err("never connects");
    assert!(matches!(error, IIIError::NotConnected), "{error:?}");
    let error = within(10, iii.trigger(TriggerRequest::new("x", Value::Null)))
        .await
        .expect_err("refused");
    assert!(matches!(error, IIIError::NotConnected), "{error:?}");
    assert_eq!(iii.connection_state(), iii_sdk::ConnectionState::Failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn triggers_register_and_unregister() {
    let engine = engine().await;
    let iii = worker(&engine);
    iii.register_function(RegisterFunction::new_async(
        "files::download",
        |_: Value| async move { Ok(json!({"status_code": 200, "body": "ok"})) },
    ));
    let route = iii
        .register_trigger(RegisterTrigger::http(
            "files::download",
            "/files/:name",
            "GET",
        ))
        .expect("registered");
    let other = iii
        .register_trigger(RegisterTrigger::new(
            "cron",
            "files::download",
            json!({"every": "1m"}),
        ))
        .expect("registered");
    assert_ne!(route.id(), other.id());
    ready(&iii).await;
    route.unregister();
    other.unregister();
    ready(&iii).await;
    let invalid = iii.register_trigger(RegisterTrigger::new("", "files::download", json!({})));
    assert!(matches!(invalid, Err(IIIError::Protocol(_))));
    iii.shutdown();
    assert!(matches!(
        iii.register_trigger(RegisterTrigger::http("files::download", "/x", "GET")),
        Err(IIIError::Shutdown)
    ));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_sends_what_is_queued_and_refuses_more() {
    let engine = engine().await;
    let owner = worker(&engine);
    let (seen, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    owner.register_function(RegisterFunction::new_async(
        "conn::record",
        move |input: Value| {
            let seen = seen.clone();
            async move {
                let _ = seen.send(input["n"].as_u64().unwrap_or(0));
                Ok(Value::Null)
            }
        },
    ));
    ready(&owner).await;
    let caller = worker(&engine);
    ready(&caller).await;
    for n in 0..100 {
        let request = TriggerRequest::void("conn::record", json!({ "n": n }));
        within(5, caller.trigger(request)).await.expect("queued");
    }
    caller.shutdown();
    let mut received = Vec::new();
    while received.len() < 100 {
        received.push(within(10, arrivals.recv()).await.expect("arrival"));
    }
    received.sort_unstable();
    assert_eq!(received, (0..100).collect::<Vec<_>>());
    let refused = caller
        .trigger(TriggerRequest::void("conn::record", json!({})))
        .await;
    assert!(matches!(refused, Err(IIIError::Shutdown)));
    assert!(matches!(caller.ready().await, Err(IIIError::Shutdown)));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_that_is_no_engine_url_is_refused_or_fails_calls_at_once() {
    for address in ["", "localhost:49134", "http://127.0.0.1:49134", "ws://"] {
        let refused = iii_sdk::try_register_worker_with(address, InitOptions::default());
        let error = refused.expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{address:?}");
        assert!(error.to_string().contains("not an engine URL"), "{error}");
        // The infallible constructor starts a worker whose every call fails at once.
        let iii = iii_sdk::register_worker(address);
        let error = within(5, iii.trigger(TriggerRequest::new("any::fn", json!({}))))
            .await
            .expect_err("no engine");
        assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{address:?}");
        let error = within(5, iii.ready()).await.expect_err("no engine");
        assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    }
}

/// A local port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

fn with_connect_timeout(ms: u64) -> InitOptions {
    InitOptions {
        connect_timeout_ms: ms,
        ..InitOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_engine_fails_calls_within_the_connect_timeout_naming_the_url() {
    let url = format!("ws://127.0.0.1:{}", free_port());
    let iii = iii_sdk::register_worker_with(&url, with_connect_timeout(500));
    let started = std::time::Instant::now();
    let error = within(5, iii.trigger(TriggerRequest::new("any::fn", json!({}))))
        .await
        .expect_err("refused");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(error.kind(), ErrorKind::Connection, "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains(&url) && text.to_lowercase().contains("refused"),
        "{text}"
    );
    let error = within(5, iii.create_channel(None))
        .await
        .expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Connection, "{error:?}");
    let void = TriggerRequest::void("any::fn", json!({}));
    let error = within(5, iii.trigger(void)).await.expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Connection, "{error:?}");
    iii.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_engine_fails_calls_within_the_connect_timeout() {
    // A documentation address (TEST-NET-1, RFC 5737): nothing answers, the attempt hangs.
    let url = "ws://192.0.2.1:49134";
    let iii = iii_sdk::register_worker_with(url, with_connect_timeout(500));
    let started = std::time::Instant::now();
    let error = within(5, iii.trigger(TriggerRequest::new("any::fn", json!({}))))
        .await
        .expect_err("unreachable");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(error.kind(), ErrorKind::Connection, "{error:?}");
    assert!(error.to_string().contains(url), "{error}");
    iii.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_keeps_reconnecting_and_serves_once_the_engine_is_up() {
    let port = free_port();
    let iii =
        iii_sdk::register_worker_with(&format!("ws://127.0.0.1:{port}"), with_connect_timeout(300));
    iii.register_function(RegisterFunction::new_async(
        "conn::echo",
        |input: Value| async move { Ok::<Value, IIIError>(input) },
    ));
    let call = || iii.trigger(TriggerRequest::new("conn::echo", json!({"n": 1})));
    let error = within(5, call()).await.expect_err("no engine yet");
    assert_eq!(error.kind(), ErrorKind::Connection, "{error:?}");
    let config = iii_engine::EngineConfig {
        port,
        http_port: None,
        ..iii_engine::EngineConfig::default()
    };
    let engine = iii_engine::start(config)
        .await
        .expect("engine on the freed port");
    let echoed = within(20, async {
        loop {
            match call().await {
                Ok(value) => return value,
                Err(error) => assert_eq!(error.kind(), ErrorKind::Connection, "{error:?}"),
            }
        }
    })
    .await;
    assert_eq!(echoed["n"], 1);
    iii.shutdown();
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_goes_silent_is_noticed_and_calls_fail_instead_of_hanging() {
    use futures_util::StreamExt;
    // A stand-in engine: it greets the worker, then answers nothing and reads nothing ever
    // again (a frozen process, or a route the network dropped without a reset).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("address"));
    let held = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
        let hello = json!({"type": "workerregistered", "worker_id": "w"}).to_string();
        futures_util::SinkExt::send(
            &mut ws,
            tokio_tungstenite::tungstenite::Message::text(hello),
        )
        .await
        .expect("greet");
        // Read for a moment (the greeting's registrations), then never again.
        let _ = tokio::time::timeout(Duration::from_millis(100), async {
            while ws.next().await.is_some() {}
        })
        .await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(ws);
    });
    let options = InitOptions {
        ping_interval_ms: 200,
        ping_timeout_ms: 400,
        invocation_timeout_ms: 30_000,
        ..fast_reconnect()
    };
    let iii = iii_sdk::register_worker_with(&url, options);
    let started = std::time::Instant::now();
    let error = within(
        10,
        iii.trigger(TriggerRequest::new("any::thing", json!({}))),
    )
    .await
    .expect_err("no answer can come");
    assert!(
        matches!(error.kind(), ErrorKind::Connection),
        "{error:?} after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "noticed after {:?}, not at the call's 30 s timeout",
        started.elapsed()
    );
    iii.shutdown();
    held.abort();
}
