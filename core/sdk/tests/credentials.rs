//! Credentials from the Rust SDK: `InitOptions::headers` reach the auth function of a
//! listener with access rules (docs/ACCESS.md); a token it refuses is a connection error
//! naming the 401, and a granted worker's calls follow the grant.

mod common;

use common::{engine_with, within};
use iii_engine::access::{ListenerPolicy, Rbac};
use iii_engine::{EngineConfig, WorkerListener};
use iii_sdk::{IIIError, InitOptions, RegisterFunction, TriggerRequest};
use serde_json::{Value, json};

fn with_token(token: &str) -> InitOptions {
    InitOptions {
        headers: vec![("Authorization".into(), format!("Bearer {token}"))],
        connect_timeout_ms: 1500,
        ..InitOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_reach_the_auth_function_and_the_grant_holds() {
    let rbac: Rbac =
        serde_json::from_value(json!({"auth_function_id": "auth::check"})).expect("valid rbac");
    let engine = engine_with(EngineConfig {
        extra_listeners: vec![WorkerListener {
            host: "127.0.0.1".into(),
            port: 0,
            access: ListenerPolicy {
                rbac: Some(rbac),
                ..ListenerPolicy::default()
            },
            tls: None,
        }],
        ..EngineConfig::ephemeral()
    })
    .await;
    let trusted = iii_sdk::register_worker(&engine.ws_url());
    trusted.register_function(RegisterFunction::new_async(
        "auth::check",
        |input: Value| async move {
            match input["headers"]["authorization"].as_str() {
                Some("Bearer good") => Ok(json!({"allowed_functions": ["api::granted"]})),
                _ => Err(IIIError::Handler("bad token".into())),
            }
        },
    ));
    for id in ["api::granted", "api::other"] {
        trusted.register_function(RegisterFunction::new_async(id, |_: Value| async {
            Ok(json!("served"))
        }));
    }
    within(10, trusted.ready()).await.expect("trusted worker");
    let guarded = engine.extra_ws_urls().remove(0);

    let refused = iii_sdk::register_worker_with(&guarded, with_token("bad"));
    let error = refused
        .trigger(TriggerRequest::new("api::granted", json!({})))
        .await
        .expect_err("a bad token is refused");
    assert!(matches!(error, IIIError::Connection(_)), "{error}");
    assert!(error.to_string().contains("401"), "{error}");
    refused.shutdown();

    let granted = iii_sdk::register_worker_with(&guarded, with_token("good"));
    let answer = within(
        10,
        granted.trigger(TriggerRequest::new("api::granted", json!({}))),
    )
    .await
    .expect("granted by name");
    assert_eq!(answer, json!("served"));
    let forbidden = granted
        .trigger(TriggerRequest::new("api::other", json!({})))
        .await
        .expect_err("not in the grant");
    assert_eq!(forbidden.code(), "FORBIDDEN", "{forbidden}");
    granted.shutdown();
    trusted.shutdown();
    engine.shutdown().await;
}
