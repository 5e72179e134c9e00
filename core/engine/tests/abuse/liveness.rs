//! Liveness of workers' main sockets (docs/PROTOCOL.md §5): the engine pings a quiet socket
//! and drops a worker that answers nothing, so the calls it owed fail at once instead of
//! waiting for the invocation timeout.

use std::time::{Duration, Instant};

use crate::common::*;
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
    let _one_at_a_time = crate::one_at_a_time().await;
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
    let _one_at_a_time = crate::one_at_a_time().await;
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

/// Reads one WebSocket frame a server sent (unmasked): (opcode, payload).
async fn read_frame(tcp: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.expect("frame head");
    let len = match head[1] & 0x7f {
        126 => u64::from(tcp.read_u16().await.expect("length")),
        127 => tcp.read_u64().await.expect("length"),
        len => u64::from(len),
    };
    let mut payload = vec![0u8; usize::try_from(len).expect("length")];
    tcp.read_exact(&mut payload).await.expect("payload");
    (head[0] & 0x0f, payload)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_sending_a_large_message_slowly_is_not_dropped() {
    let _one_at_a_time = crate::one_at_a_time().await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Pings after 200 ms of quiet, gives up 600 ms later; the message takes about 2 s.
    let engine = engine_with(EngineConfig {
        ping_interval: Duration::from_millis(200),
        ping_timeout: Duration::from_millis(600),
        ..EngineConfig::ephemeral()
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(engine.local_addr())
        .await
        .expect("connect");
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .expect("upgrade request");
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        response.push(tcp.read_u8().await.expect("response byte"));
    }
    assert!(response.starts_with(b"HTTP/1.1 101"), "{response:?}");
    let (opcode, hello) = read_frame(&mut tcp).await;
    assert_eq!(opcode, 1, "workerregistered first");
    assert!(String::from_utf8_lossy(&hello).contains("workerregistered"));

    // One 2 MiB text message (a JSON ping with padding), dribbled out in 40 pieces: no
    // whole message, and no room for a Pong, until the end. A zero mask leaves it as is.
    let json = format!(
        r#"{{"type":"ping","pad":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(json.len() as u64).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    tcp.write_all(&frame).await.expect("frame head");
    for piece in json.as_bytes().chunks(json.len() / 40 + 1) {
        tcp.write_all(piece).await.expect("piece");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The engine answers the message: the worker was never dropped.
    loop {
        let (opcode, payload) = tokio::time::timeout(WAIT, read_frame(&mut tcp))
            .await
            .expect("an answer in time");
        match opcode {
            0x9 => continue, // the engine's pings, which the bytes arriving made harmless
            0x1 => {
                assert_eq!(payload, br#"{"type":"pong"}"#);
                break;
            }
            other => panic!(
                "dropped while sending: opcode {other}, {:?}",
                String::from_utf8_lossy(&payload)
            ),
        }
    }
    engine.shutdown().await;
}
