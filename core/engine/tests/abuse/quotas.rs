//! Quotas: one connection, or all of them, cannot make the engine hold more than configured.
//! Each refusal is a clear error (`quota_exceeded`, or a 503 before the upgrade), other
//! connections are unaffected, and what is given back can be taken again.

use crate::common::*;
use iii_engine::{EngineConfig, Quotas};
use serde_json::{Value, json};

fn with_quotas(quotas: Quotas) -> EngineConfig {
    EngineConfig {
        quotas,
        ..EngineConfig::ephemeral()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_limit_get_503_before_the_upgrade() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine_with(with_quotas(Quotas {
        max_connections: 2,
        ..Quotas::default()
    }))
    .await;
    let first = worker(&engine).await;
    let mut second = worker(&engine).await;
    assert_eq!(refused_status(&engine.ws_url()).await, 503);
    // A health check over the limit gets the same answer, not silence.
    {
        // No `Connection: close`: the refusal closes the connection by itself.
        let request = "GET /health HTTP/1.1\r\nHost: engine\r\n\r\n";
        let answer = crate::raw_http(engine.local_addr(), request).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("--max-connections"), "{answer}");
    }
    // The connections already open keep working.
    second.sync().await;
    drop(first);
    eventually("the closed connection's slot to come back", || {
        engine.stats().connections == 1
    })
    .await;
    // A socket's slot is given back once its task has finished, a moment after the registry
    // forgets the worker.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio_tungstenite::connect_async(engine.ws_url()).await {
            Ok(_) => break,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(error) => panic!("no slot came back: {error}"),
        }
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_connections_count_against_the_same_limit() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine_with(with_quotas(Quotas {
        max_connections: 2,
        ..Quotas::default()
    }))
    .await;
    let http = engine.http_addr().expect("the http server runs");
    let mut w = worker(&engine).await;
    w.sync().await;
    // An idle connection to the HTTP port holds the second place.
    let idle = tokio::net::TcpStream::connect(http).await.expect("connect");
    eventually("the idle connection to count", || {
        engine.stats().sockets == 2
    })
    .await;
    let answer = crate::raw_http_get(http, "/nothing", "").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("--max-connections"), "{answer}");
    drop(idle);
    eventually("the idle connection's place to come back", || {
        engine.stats().sockets == 1
    })
    .await;
    let answer = crate::raw_http_get(http, "/nothing", "").await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn channels_per_connection_are_bounded_until_they_finish() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine_with(with_quotas(Quotas {
        max_channels_per_connection: 2,
        ..Quotas::default()
    }))
    .await;
    let mut w = worker(&engine).await;
    let (writer, reader) = w.create_channel(json!(4)).await;
    w.create_channel(json!(4)).await;
    let id = w
        .call("engine::channels::create", json!({"buffer_size": 4}))
        .await;
    let refused = w.recv().await;
    assert_eq!(refused["invocation_id"], id.as_str());
    assert_eq!(refused["error"]["code"], "quota_exceeded", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("--max-channels-per-connection"),
        "{message}"
    );

    // Another connection has a quota of its own.
    let mut other = worker(&engine).await;
    other.create_channel(json!(4)).await;

    // A channel that finished no longer counts.
    let mut writer_ws = connect(&end_url(&engine, &writer)).await;
    let mut reader_ws = connect(&end_url(&engine, &reader)).await;
    write_complete(&mut writer_ws, [vec![1, 2, 3]]).await;
    let (frames, end) = read_to_close(&mut reader_ws).await;
    assert_eq!(binary_bytes(&frames), vec![1, 2, 3]);
    assert_eq!(end.map(|(code, _)| code), Some(1000));
    eventually("the finished channel to retire", || {
        engine.stats().channels == 2
    })
    .await;
    w.create_channel(json!(4)).await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn functions_past_the_quota_are_refused_with_an_error_frame() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine_with(with_quotas(Quotas {
        max_functions_per_connection: 2,
        ..Quotas::default()
    }))
    .await;
    let mut w = worker(&engine).await;
    w.register("a").await;
    w.register("b").await;
    w.send(json!({"type": "registerfunction", "id": "c"})).await;
    let refused = w.recv().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["function_id"], "c");
    assert_eq!(refused["error"]["code"], "quota_exceeded");
    assert_eq!(engine.stats().functions, 2);
    // Re-registering one it owns is no new function.
    w.register("a").await;

    // Calls of the refused function fail at once.
    let mut caller = worker(&engine).await;
    let id = caller.call("c", Value::Null).await;
    let answer = caller.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    assert_eq!(answer["error"]["code"], "function_not_found");

    // Unregistering gives room back.
    w.send(json!({"type": "unregisterfunction", "id": "b"}))
        .await;
    w.register("c").await;
    assert_eq!(engine.stats().functions, 2);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn triggers_past_the_quota_are_refused() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine_with(with_quotas(Quotas {
        max_triggers_per_connection: 1,
        ..Quotas::default()
    }))
    .await;
    let mut w = worker(&engine).await;
    let route = |id: &str, path: &str| {
        json!({"type": "registertrigger", "id": id, "trigger_type": "http",
               "function_id": "f", "config": {"api_path": path, "http_method": "GET"}})
    };
    w.send(route("t1", "/one")).await;
    w.sync().await;
    // The same trigger again is a replacement, not a second one.
    w.send(route("t1", "/one")).await;
    w.sync().await;
    w.send(route("t2", "/two")).await;
    let refused = w.recv().await;
    assert_eq!(refused["type"], "triggerregistrationresult", "{refused}");
    assert_eq!(refused["id"], "t2");
    assert_eq!(refused["error"]["code"], "quota_exceeded");
    assert_eq!(engine.stats().http_routes, 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_and_paths_are_bounded_in_bytes() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let engine = engine_with(with_quotas(Quotas {
        max_id_bytes: 64,
        ..Quotas::default()
    }))
    .await;
    let mut w = worker(&engine).await;
    let long = "x".repeat(1024 * 1024);
    w.send(json!({"type": "registerfunction", "id": long}))
        .await;
    let refused = w.recv().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["error"]["code"], "quota_exceeded");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("--max-id-bytes"), "{message}");
    assert!(
        refused.to_string().len() < 1024,
        "the refusal does not echo the megabyte back"
    );
    assert_eq!(engine.stats().functions, 0);

    let path = format!("/{}", "p".repeat(100));
    w.send(
        json!({"type": "registertrigger", "id": "t", "trigger_type": "http",
                  "function_id": "f", "config": {"api_path": path}}),
    )
    .await;
    let refused = w.recv().await;
    assert_eq!(refused["error"]["code"], "quota_exceeded", "{refused}");
    assert_eq!(engine.stats().http_routes, 0);
    // An id at the limit is fine.
    w.register(&"y".repeat(64)).await;
    assert_eq!(engine.stats().functions, 1);
    engine.shutdown().await;
}

/// Writes `frames` frames of 64 KiB (each filled with `fill`) to a writer socket, then closes
/// it cleanly; runs in its own task, as the engine holds it up once the bound is reached.
fn write_frames(mut ws: Ws, frames: usize, fill: u8) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        write_complete(&mut ws, (0..frames).map(|_| vec![fill; 64 * 1024])).await;
        while futures_util::StreamExt::next(&mut ws).await.is_some() {}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn buffer_size_is_capped_and_all_channels_share_one_byte_bound() {
    let _one_at_a_time = crate::one_at_a_time().await;
    const FRAME: usize = 64 * 1024;
    const BOUND: usize = 16 * 1024 * 1024;
    const SENT: usize = 300;
    let engine = engine_with(with_quotas(Quotas {
        max_buffer_frames: 512,
        max_channel_bytes: BOUND,
        ..Quotas::default()
    }))
    .await;
    let mut w = worker(&engine).await;
    let mut ends = Vec::new();
    for fill in [1u8, 2] {
        // Asks for 1024 frames; gets 512 (32 MiB), more than the engine-wide bound.
        let (writer, reader) = w.create_channel(json!(1024)).await;
        let writer_ws = connect(&end_url(&engine, &writer)).await;
        ends.push((write_frames(writer_ws, SENT, fill), reader, fill));
    }
    // Both writers send more than the engine takes; nobody reads. Each buffer's first frame
    // is outside the bound (so a channel being read always moves).
    let held = BOUND + 2 * FRAME;
    eventually("the buffers to fill up to the bound", || {
        engine.stats().buffered_bytes == held
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let stats = engine.stats();
    assert_eq!(
        stats.buffered_bytes, held,
        "the engine-wide bound holds ({stats:?})"
    );
    assert!(stats.peak_buffered_bytes <= held, "{stats:?}");

    // Readers get every byte, in order: the bound slowed the writers, it dropped nothing.
    for (writing, reader, fill) in ends {
        let mut reader_ws = connect(&end_url(&engine, &reader)).await;
        let (frames, end) = read_to_close(&mut reader_ws).await;
        assert_eq!(end.map(|(code, _)| code), Some(1000));
        let bytes = binary_bytes(&frames);
        assert_eq!(bytes.len(), SENT * FRAME);
        assert!(bytes.iter().all(|byte| *byte == fill));
        writing.await.expect("writer finished");
    }
    let stats = engine.stats();
    assert!(stats.peak_buffered_bytes <= held, "{stats:?}");
    assert_eq!(stats.buffered_bytes, 0);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_channel_alone_is_held_to_its_capped_buffer() {
    let _one_at_a_time = crate::one_at_a_time().await;
    const FRAME: usize = 64 * 1024;
    let engine = engine_with(with_quotas(Quotas {
        max_buffer_frames: 2,
        ..Quotas::default()
    }))
    .await;
    let mut w = worker(&engine).await;
    let (writer, reader) = w.create_channel(json!(1024)).await;
    let writing = write_frames(connect(&end_url(&engine, &writer)).await, 6, 9);
    eventually("the buffer to fill", || {
        engine.stats().buffered_bytes == 2 * FRAME
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(engine.stats().buffered_bytes, 2 * FRAME, "and no more");
    let mut reader_ws = connect(&end_url(&engine, &reader)).await;
    let (frames, _) = read_to_close(&mut reader_ws).await;
    assert_eq!(binary_bytes(&frames).len(), 6 * FRAME);
    writing.await.expect("writer finished");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn channels_of_all_connections_together_are_bounded() {
    let _one_at_a_time = crate::one_at_a_time().await;
    // A worker that reconnects gets a new per-connection count; the engine-wide one holds.
    let engine = engine_with(with_quotas(Quotas {
        max_channels_per_connection: 2,
        max_channels: 3,
        ..Quotas::default()
    }))
    .await;
    let mut first = worker(&engine).await;
    first.create_channel(json!(4)).await;
    first.create_channel(json!(4)).await;
    drop(first);
    let mut again = worker(&engine).await;
    let (writer, reader) = again.create_channel(json!(4)).await;
    let id = again
        .call("engine::channels::create", json!({"buffer_size": 4}))
        .await;
    let refused = again.recv().await;
    assert_eq!(refused["invocation_id"], id.as_str());
    assert_eq!(refused["error"]["code"], "quota_exceeded", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("--max-channels)"), "{message}");

    // A channel that finishes gives its place back.
    let mut writer_ws = connect(&end_url(&engine, &writer)).await;
    let mut reader_ws = connect(&end_url(&engine, &reader)).await;
    write_complete(&mut writer_ws, [vec![7]]).await;
    let (_, end) = read_to_close(&mut reader_ws).await;
    assert_eq!(end.map(|(code, _)| code), Some(1000));
    eventually("the finished channel to retire", || {
        engine.stats().channels == 2
    })
    .await;
    again.create_channel(json!(4)).await;
    engine.shutdown().await;
}
