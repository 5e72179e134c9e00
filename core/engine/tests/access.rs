//! Listener access rules (docs/ACCESS.md) against a real engine over real sockets: an auth
//! function admitting or refusing upgrades, calls resolved in the documented order, the
//! registration prefix and hooks, the middleware, and the browser checks.

mod common;

use common::*;
use iii_engine::access::{ListenerPolicy, Rbac};
use iii_engine::{Engine, EngineConfig, WorkerListener};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// An engine whose main listener is open (trusted workers) and whose one extra listener has
/// `rbac` (and `middleware`).
async fn engine_with_rules(rbac: Value, middleware: Option<&str>) -> (Engine, String) {
    let rbac: Rbac = serde_json::from_value(rbac).expect("valid rbac");
    let engine = engine_with(EngineConfig {
        extra_listeners: vec![WorkerListener {
            host: "127.0.0.1".into(),
            port: 0,
            access: ListenerPolicy {
                middleware_function_id: middleware.map(str::to_string),
                rbac: Some(rbac),
                ..ListenerPolicy::default()
            },
            tls: None,
        }],
        ..EngineConfig::ephemeral()
    })
    .await;
    let guarded = engine.extra_ws_urls().remove(0);
    (engine, guarded)
}

/// Connects to `url` with extra request headers: the socket, or the refusal's status and body.
async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Ws, (u16, String)> {
    let mut request = url.into_client_request().expect("a request");
    for (name, value) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName =
            name.parse().expect("a header name");
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(value).expect("a value"));
    }
    let connecting = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(WAIT, connecting)
        .await
        .expect("in time")
    {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            Err((
                response.status().as_u16(),
                String::from_utf8_lossy(&body).into(),
            ))
        }
        Err(other) => panic!("expected an HTTP answer, got {other}"),
    }
}

/// A worker on `url` with `headers`, past its `workerregistered`.
async fn worker_with(url: &str, headers: &[(&str, &str)]) -> Worker {
    let mut ws = connect_with(url, headers).await.expect("admitted");
    let hello = recv_json(&mut ws).await;
    assert_eq!(hello["type"], "workerregistered");
    let worker_id = hello["worker_id"].as_str().expect("id").to_string();
    Worker { ws, worker_id }
}

/// A trusted worker that registers `functions` (id, metadata) and answers every call with
/// `answer(function_id, data)` (an `Err` answers with that error); every call it gets is sent
/// on the returned receiver.
async fn serve(
    engine: &Engine,
    functions: &[(&str, Value)],
    answer: fn(&str, &Value) -> Result<Value, &'static str>,
) -> mpsc::UnboundedReceiver<Value> {
    let mut trusted = worker(engine).await;
    for (id, metadata) in functions {
        trusted
            .send(json!({"type": "registerfunction", "id": id, "metadata": metadata}))
            .await;
    }
    trusted.sync().await;
    let (seen, calls) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let call = trusted.recv().await;
            if call["type"] != "invokefunction" {
                continue;
            }
            let function_id = call["function_id"].as_str().unwrap_or_default().to_string();
            let reply = match answer(&function_id, &call["data"]) {
                Ok(result) => json!({"type": "invocationresult",
                    "invocation_id": call["invocation_id"], "function_id": function_id, "result": result}),
                Err(message) => json!({"type": "invocationresult",
                    "invocation_id": call["invocation_id"], "function_id": function_id,
                    "error": {"code": "denied", "message": message}}),
            };
            trusted.send(reply).await;
            if seen.send(call).is_err() {
                return;
            }
        }
    });
    calls
}

/// The auth function of these tests: token `good` is granted, anything else refused.
fn auth(function_id: &str, data: &Value) -> Result<Value, &'static str> {
    match function_id {
        "auth::check" if data["headers"]["authorization"] == "Bearer good" => Ok(json!({
            "allowed_functions": ["secret::granted"],
            "forbidden_functions": ["api::admin"],
            "function_registration_prefix": "tenant",
            "context": {"user": "u1"},
        })),
        "auth::check" => Err("bad token"),
        "hooks::function" if data["function_id"] == "evil" => Err("no evil here"),
        "hooks::function" if data["function_id"] == "old" => Ok(json!({"function_id": "new"})),
        "hooks::function" => Ok(json!({})),
        _ => Ok(json!({"served": function_id, "data": data})),
    }
}

/// Calls `function_id` from `worker` and returns the answer.
async fn call(worker: &mut Worker, function_id: &str) -> Value {
    let id = worker.call(function_id, json!({"x": 1})).await;
    let answer = worker.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str(), "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auth_function_admits_before_the_upgrade_and_calls_resolve_in_order() {
    let rules = json!({
        "auth_function_id": "auth::check",
        "expose_functions": ["match(\"api::*\")", {"metadata": {"public": true}}],
    });
    let (engine, guarded) = engine_with_rules(rules, None).await;
    let functions = [
        ("auth::check", Value::Null),
        ("api::users", Value::Null),
        ("api::admin", Value::Null),
        ("secret::granted", Value::Null),
        ("secret::hidden", Value::Null),
        ("other::public", json!({"public": true})),
    ];
    let mut calls = serve(&engine, &functions, auth).await;

    let (status, body) = connect_with(&guarded, &[("authorization", "Bearer bad")])
        .await
        .expect_err("a bad token is refused");
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("AUTH_ERROR") && body.contains("bad token"),
        "{body}"
    );
    let input = calls.recv().await.expect("the auth call");
    assert_eq!(input["function_id"], "auth::check");
    assert_eq!(
        engine.stats().connections,
        1,
        "refused before any worker socket"
    );

    let url = format!("{guarded}/?tenant=a&tenant=b");
    let mut restricted = worker_with(&url, &[("authorization", "Bearer good")]).await;
    let input = calls.recv().await.expect("the auth call");
    assert_eq!(input["data"]["headers"]["authorization"], "Bearer good");
    assert_eq!(input["data"]["query_params"]["tenant"], json!(["a", "b"]));
    assert_eq!(input["data"]["ip_address"], "127.0.0.1");

    for allowed in ["api::users", "secret::granted", "other::public"] {
        let answer = call(&mut restricted, allowed).await;
        assert_eq!(answer["result"]["served"], allowed, "{answer}");
        assert_eq!(calls.recv().await.expect("served")["function_id"], allowed);
    }
    let refused = [
        ("api::admin", "remove from rbac.forbidden_functions"),
        ("secret::hidden", "add to rbac.expose_functions"),
        ("engine::functions::list", "add to rbac.expose_functions"),
    ];
    for (function_id, remedy) in refused {
        let answer = call(&mut restricted, function_id).await;
        assert_eq!(answer["error"]["code"], "FORBIDDEN", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(remedy), "{message}");
    }
    let (writer, _reader) = restricted.create_channel(json!(4)).await;
    assert!(
        writer["access_key"].is_string(),
        "infrastructure stays callable"
    );

    // The prefix: `echo` is known as `tenant::echo`, and sent back as `echo`.
    restricted.register("echo").await;
    let mut trusted = worker(&engine).await;
    let id = trusted.call("tenant::echo", json!({"n": 1})).await;
    let invoke = restricted.recv().await;
    assert_eq!(invoke["function_id"], "echo");
    restricted
        .send(
            json!({"type": "invocationresult", "invocation_id": invoke["invocation_id"],
                     "function_id": "echo", "result": "from the tenant"}),
        )
        .await;
    let answer = trusted.recv().await;
    assert_eq!(
        (answer["invocation_id"].clone(), answer["result"].clone()),
        (json!(id), json!("from the tenant"))
    );
    let plain = call(&mut trusted, "echo").await;
    assert_eq!(plain["error"]["code"], "function_not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_hooks_rename_and_deny_and_a_listener_without_auth_is_open() {
    let rules = json!({
        "on_function_registration_function_id": "hooks::function",
        "expose_functions": ["match(\"*\")"],
    });
    let (engine, guarded) = engine_with_rules(rules, None).await;
    let mut calls = serve(&engine, &[("hooks::function", Value::Null)], auth).await;
    let mut restricted = worker_with(&guarded, &[]).await;
    restricted
        .send(json!({"type": "registerfunction", "id": "evil"}))
        .await;
    let refusal = restricted.recv().await;
    assert_eq!(refusal["type"], "error", "{refusal}");
    assert_eq!(refusal["function_id"], "evil");
    assert_eq!(refusal["error"]["code"], "FORBIDDEN");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no evil here")
    );
    let hook = calls.recv().await.expect("the hook call");
    assert_eq!(hook["data"]["function_id"], "evil");
    assert_eq!(hook["data"]["context"], json!({}));

    restricted.register("old").await;
    let _ = calls.recv().await;
    let mut caller = worker(&engine).await;
    assert_eq!(
        call(&mut caller, "old").await["error"]["code"],
        "function_not_found"
    );
    let id = caller.call("new", json!({})).await;
    let invoke = restricted.recv().await;
    assert_eq!(
        invoke["function_id"], "old",
        "sent under the worker's own id"
    );
    restricted
        .send(
            json!({"type": "invocationresult", "invocation_id": invoke["invocation_id"],
                     "function_id": "old", "result": 7}),
        )
        .await;
    assert_eq!(caller.recv().await["invocation_id"], id.as_str());
    // The worker withdraws it by the id it registered.
    restricted
        .send(json!({"type": "unregisterfunction", "id": "old"}))
        .await;
    restricted.sync().await;
    assert_eq!(
        call(&mut caller, "new").await["error"]["code"],
        "function_not_found"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_middleware_gets_every_call_with_its_context() {
    let rules = json!({"expose_functions": ["match(\"*\")"]});
    let (engine, guarded) = engine_with_rules(rules, Some("mw::gate")).await;
    let mut calls = serve(&engine, &[("mw::gate", Value::Null)], auth).await;
    let mut restricted = worker_with(&guarded, &[]).await;
    let answer = call(&mut restricted, "api::users").await;
    assert_eq!(answer["result"]["served"], "mw::gate");
    let gate = calls.recv().await.expect("the middleware call");
    assert_eq!(
        gate["data"],
        json!({"function_id": "api::users", "payload": {"x": 1, "_caller_worker_id": restricted.worker_id},
               "action": null, "context": {}})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_origins_and_rebound_hosts_are_refused_on_every_socket() {
    let engine = engine().await;
    let url = engine.ws_url();
    let evil = [("origin", "https://evil.example")];
    let (status, body) = connect_with(&url, &evil).await.expect_err("refused");
    assert_eq!(status, 403);
    assert!(body.contains("https://evil.example"), "{body}");
    let rebound = [("host", "evil.example:49134")];
    assert_eq!(
        connect_with(&url, &rebound).await.err().map(|r| r.0),
        Some(403)
    );
    let mut trusted = worker(&engine).await;
    let (writer, _) = trusted.create_channel(json!(4)).await;
    let channel = end_url(&engine, &writer);
    assert_eq!(
        connect_with(&channel, &evil).await.err().map(|r| r.0),
        Some(403)
    );
    assert!(
        connect_with(&channel, &[]).await.is_ok(),
        "no Origin: an SDK"
    );
    assert_eq!(engine.stats().connections, 1);

    let allowing = engine_with(EngineConfig {
        access: ListenerPolicy {
            allowed_origins: vec!["https://app.example".into()],
            ..ListenerPolicy::default()
        },
        ..EngineConfig::ephemeral()
    })
    .await;
    let app = [("origin", "https://app.example")];
    let mut ws = connect_with(&allowing.ws_url(), &app)
        .await
        .expect("allowed origin");
    assert_eq!(recv_json(&mut ws).await["type"], "workerregistered");
    assert!(connect_with(&allowing.ws_url(), &evil).await.is_err());
}

/// Sends a raw upgrade request with `target` to `url`'s listener; the status line's code.
async fn raw_upgrade_status(url: &str, target: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("ws://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("request");
    let mut head = [0u8; 12];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut head))
        .await
        .expect("an answer in time")
        .expect("a status line");
    String::from_utf8_lossy(&head[9..12]).parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_request_target_slips_past_the_auth_function() {
    let rules = json!({"auth_function_id": "auth::check", "expose_functions": ["match(\"*\")"]});
    let (engine, guarded) = engine_with_rules(rules, None).await;
    let _calls = serve(&engine, &[("auth::check", Value::Null)], auth).await;
    for target in ["/", "http://x/", "/#x", "/otel", "//"] {
        let status = raw_upgrade_status(&guarded, target).await;
        assert!(status == 401 || status == 400, "{target}: {status}");
    }
    assert_eq!(engine.stats().connections, 1, "only the trusted worker");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restricted_worker_cannot_take_over_what_trusted_workers_serve() {
    let rules = json!({
        "on_trigger_type_registration_function_id": "hooks::types",
        "expose_functions": ["match(\"api::*\")"],
    });
    let (engine, guarded) = engine_with_rules(rules, None).await;
    let _calls = serve(
        &engine,
        &[("api::echo", Value::Null), ("secret::x", Value::Null)],
        auth,
    )
    .await;
    let mut restricted = worker_with(&guarded, &[]).await;
    let registrations = [
        (
            json!({"type": "registerfunction", "id": "api::echo"}),
            "another listener",
        ),
        (
            json!({"type": "registerfunction", "id": "hooks::types"}),
            "called by the engine",
        ),
        (
            json!({"type": "registerfunction", "id": "r::remote",
                   "invocation": {"url": "https://example.com/f", "method": "POST"}}),
            "over HTTP",
        ),
    ];
    for (registration, why) in registrations {
        restricted.send(registration.clone()).await;
        let refusal = restricted.recv().await;
        assert_eq!(
            refusal["error"]["code"], "FORBIDDEN",
            "{registration}: {refusal}"
        );
        let message = refusal["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{message}");
    }
    // Calls of api::echo still reach the trusted worker only.
    let answer = call(&mut restricted, "api::echo").await;
    assert_eq!(answer["result"]["served"], "api::echo");

    // Triggers: not at a function it may not call, not on a route trusted workers serve.
    let mut trusted = worker(&engine).await;
    trusted
        .send(
            json!({"type": "registertrigger", "id": "t-login", "trigger_type": "http",
                     "function_id": "api::echo", "config": {"api_path": "/login"}}),
        )
        .await;
    trusted.sync().await;
    let triggers = [
        (json!({"api_path": "/steal"}), "secret::x", "FORBIDDEN"),
        (
            json!({"api_path": "/login"}),
            "api::echo",
            "trigger_registration_failed",
        ),
        (json!({"api_path": "/fine"}), "api::echo", ""),
    ];
    for (config, function_id, code) in triggers {
        restricted
            .send(
                json!({"type": "registertrigger", "id": format!("r-{function_id}-{config}"),
                         "trigger_type": "http", "function_id": function_id, "config": config}),
            )
            .await;
        if code.is_empty() {
            restricted.sync().await;
            continue;
        }
        let refusal = restricted.recv().await;
        assert_eq!(refusal["type"], "triggerregistrationresult", "{refusal}");
        assert_eq!(refusal["error"]["code"], code, "{refusal}");
    }
    assert_eq!(
        engine.stats().http_routes,
        2,
        "the trusted /login and the allowed /fine"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restricted_caller_lists_only_what_it_may_call() {
    let rules = json!({"expose_functions": [
        "match(\"api::*\")", "match(\"engine::functions::list\")",
        "match(\"engine::registered-triggers::list\")",
    ]});
    let (engine, guarded) = engine_with_rules(rules, None).await;
    let _calls = serve(
        &engine,
        &[("api::a", Value::Null), ("secret::b", Value::Null)],
        auth,
    )
    .await;
    let mut trusted = worker(&engine).await;
    for (id, function_id) in [("t-a", "api::a"), ("t-b", "secret::b")] {
        trusted
            .send(
                json!({"type": "registertrigger", "id": id, "trigger_type": "http",
                         "function_id": function_id, "config": {"api_path": format!("/{id}")}}),
            )
            .await;
    }
    trusted.sync().await;
    let ids = |answer: &Value, list: &str, key: &str| -> Vec<String> {
        (answer["result"][list].as_array().into_iter().flatten())
            .filter_map(|entry| entry[key].as_str().map(str::to_string))
            .collect()
    };
    let mut restricted = worker_with(&guarded, &[]).await;
    let listed = call(&mut restricted, "engine::functions::list").await;
    assert_eq!(
        ids(&listed, "functions", "function_id"),
        ["api::a"],
        "{listed}"
    );
    let triggers = call(&mut restricted, "engine::registered-triggers::list").await;
    assert_eq!(
        ids(&triggers, "registered_triggers", "function_id"),
        ["api::a"],
        "{triggers}"
    );
    let everything = call(&mut trusted, "engine::functions::list").await;
    assert_eq!(
        ids(&everything, "functions", "function_id"),
        ["api::a", "secret::b"]
    );
}
