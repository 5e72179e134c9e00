//! What a worker tells about its connection: the state as the published clients name it
//! (connecting, connected, reconnecting, disconnected; `failed` is checked where a worker gives
//! up, in connection.rs), the changes as they happen, and the extra headers of its handshake.

mod common;

use std::time::Duration;

use common::*;
use iii_sdk::{ConnectionState, InitOptions};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

#[tokio::test(flavor = "multi_thread")]
async fn states_follow_the_connection() {
    let engine = engine().await;
    let url = engine.ws_url();
    let iii = iii_sdk::register_worker_with(&url, fast_reconnect());
    let first = iii.connection_state();
    assert!(
        matches!(
            first,
            ConnectionState::Connecting | ConnectionState::Connected
        ),
        "{first:?}"
    );
    ready(&iii).await;
    assert_eq!(iii.connection_state(), ConnectionState::Connected);
    assert_eq!(iii.connection_state().as_str(), "connected");

    engine.shutdown().await;
    let next = within(5, iii.connection_state_change(ConnectionState::Connected)).await;
    assert_eq!(next, ConnectionState::Reconnecting);

    iii.shutdown();
    let last = within(
        5,
        iii.connection_state_change(ConnectionState::Reconnecting),
    )
    .await;
    assert_eq!(last, ConnectionState::Disconnected);
    within(5, iii.stopped()).await;
    // A stopped worker's state is final.
    let unchanged = tokio::time::timeout(
        Duration::from_millis(200),
        iii.connection_state_change(ConnectionState::Disconnected),
    )
    .await;
    assert!(unchanged.is_err(), "{unchanged:?}");
}

#[tokio::test(flavor = "multi_thread")]
#[allow(clippy::result_large_err)] // tungstenite's callback type, not ours
async fn the_handshake_carries_the_extra_headers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("address"));
    let accepted = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut seen = Vec::new();
        let capture = |request: &Request, response: Response| {
            for name in ["authorization", "x-team"] {
                let value = request.headers().get(name).and_then(|v| v.to_str().ok());
                seen.push(value.map(str::to_string));
            }
            Ok(response)
        };
        let _socket = tokio_tungstenite::accept_hdr_async(stream, capture).await;
        seen
    });
    let headers = vec![
        ("Authorization".to_string(), "Bearer secret".to_string()),
        ("X-Team".to_string(), "blue".to_string()),
    ];
    let iii = iii_sdk::register_worker_with(&url, InitOptions::default().with_headers(headers));
    let seen = within(10, accepted).await.expect("join");
    assert_eq!(
        seen,
        vec![Some("Bearer secret".to_string()), Some("blue".to_string())]
    );
    iii.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_that_are_not_http_are_refused_at_once() {
    for (name, value) in [("bad name", "v"), ("x-ok", "line\r\nbreak")] {
        let options = InitOptions::default().with_headers(vec![(name.into(), value.into())]);
        let refused = iii_sdk::try_register_worker_with("ws://127.0.0.1:1", options);
        let error = refused.expect_err("refused");
        assert_eq!(error.kind(), iii_sdk::ErrorKind::InvalidArgument, "{error}");
    }
}
