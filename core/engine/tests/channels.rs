//! Channels (docs/PROTOCOL.md §4) against a real engine over real sockets.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const FRAME: usize = 64 * 1024;

fn ref_with(channel_ref: &Value, key: &str, direction: &str) -> Value {
    json!({"channel_id": channel_ref["channel_id"], "access_key": key, "direction": direction})
}

#[tokio::test(flavor = "multi_thread")]
async fn create_returns_exactly_two_refs_with_distinct_keys() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let id = worker
        .call("engine::channels::create", json!({"buffer_size": null}))
        .await;
    let answer = worker.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str());
    let result = answer["result"].as_object().expect("object");
    let mut keys: Vec<&String> = result.keys().collect();
    keys.sort();
    assert_eq!(keys, ["reader", "writer"]);
    let (writer, reader) = (&answer["result"]["writer"], &answer["result"]["reader"]);
    assert_eq!(writer["direction"], "write");
    assert_eq!(reader["direction"], "read");
    assert_eq!(writer["channel_id"], reader["channel_id"]);
    assert!(uuid::Uuid::parse_str(writer["channel_id"].as_str().unwrap_or("")).is_ok());
    assert_ne!(writer["access_key"], reader["access_key"]);
    assert!(writer["access_key"].as_str().unwrap_or("").len() >= 32);
    assert_eq!(engine.stats().channels, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn create_rejects_bad_buffer_sizes() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    for bad in [json!(-1), json!(1.5), json!("8")] {
        let id = worker
            .call("engine::channels::create", json!({"buffer_size": bad}))
            .await;
        let answer = worker.recv().await;
        assert_eq!(answer["invocation_id"], id.as_str());
        assert_eq!(answer["error"]["code"], "deserialization_error", "{bad}");
    }
    assert_eq!(engine.stats().channels, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_channel_requests_are_refused_before_the_upgrade() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader) = worker.create_channel(json!(8)).await;
    let base = engine.ws_url();
    let id = writer["channel_id"].as_str().expect("id");
    let wrong_key = ref_with(&writer, &"0".repeat(64), "write");
    assert_eq!(refused_status(&end_url(&engine, &wrong_key)).await, 404);
    let garbage_key = ref_with(&writer, "nope", "write");
    assert_eq!(refused_status(&end_url(&engine, &garbage_key)).await, 404);
    let reader_key_as_writer = ref_with(
        &reader,
        reader["access_key"].as_str().unwrap_or(""),
        "write",
    );
    assert_eq!(
        refused_status(&end_url(&engine, &reader_key_as_writer)).await,
        404
    );
    let writer_key_as_reader =
        ref_with(&writer, writer["access_key"].as_str().unwrap_or(""), "read");
    assert_eq!(
        refused_status(&end_url(&engine, &writer_key_as_reader)).await,
        404
    );
    let unknown = ref_with(
        &writer,
        writer["access_key"].as_str().unwrap_or(""),
        "write",
    );
    let unknown_url = end_url(&engine, &unknown).replace(id, &uuid());
    assert_eq!(refused_status(&unknown_url).await, 404);
    assert_eq!(
        refused_status(&format!("{base}/ws/channels/{id}?dir=write")).await,
        400
    );
    assert_eq!(
        refused_status(&format!("{base}/ws/channels/{id}?key=&dir=write")).await,
        400
    );
    assert_eq!(
        refused_status(&format!("{base}/ws/channels/{id}?key=abc")).await,
        400
    );
    assert_eq!(
        refused_status(&format!("{base}/ws/channels/{id}?key=abc&dir=both")).await,
        400
    );
    // The refusals did not disturb the channel: the right keys still connect.
    let mut w = connect(&end_url(&engine, &writer)).await;
    let mut r = connect(&end_url(&engine, &reader)).await;
    w.close(Some(close(1000, ""))).await.expect("close");
    assert_eq!(
        close_of(&mut r).await,
        Some((1000, "stream_complete".into()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn frames_keep_their_order_and_kind() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader) = worker.create_channel(json!(4)).await;
    let mut r = connect(&end_url(&engine, &reader)).await;
    let mut w = connect(&end_url(&engine, &writer)).await;
    let mut sent = Vec::new();
    for i in 0..50u8 {
        let message = if i % 5 == 0 {
            WsMessage::text(format!("message {i}"))
        } else {
            WsMessage::binary(vec![i; 1000 + usize::from(i)])
        };
        sent.push(message.clone());
        w.send(message).await.expect("send");
    }
    w.close(Some(close(1000, "done"))).await.expect("close");
    let (frames, closed) = read_to_close(&mut r).await;
    assert_eq!(frames, sent);
    assert_eq!(closed, Some((1000, "stream_complete".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn large_writer_frames_reach_the_reader_as_64_kib_frames() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader) = worker.create_channel(json!(null)).await;
    let mut w = connect(&end_url(&engine, &writer)).await;
    let mut r = connect(&end_url(&engine, &reader)).await;
    let payload: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    w.send(WsMessage::binary(payload.clone()))
        .await
        .expect("send");
    w.close(Some(close(1000, ""))).await.expect("close");
    let (frames, closed) = read_to_close(&mut r).await;
    assert_eq!(closed.map(|c| c.0), Some(1000));
    assert_eq!(frames.len(), 4);
    assert!(frames.iter().all(|f| f.is_binary() && f.len() <= FRAME));
    assert_eq!(binary_bytes(&frames), payload);
}

#[tokio::test(flavor = "multi_thread")]
async fn buffered_bytes_stay_bounded_without_a_reader() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader) = worker.create_channel(json!(8)).await;
    let bound = 8 * FRAME;
    let mut w = connect(&end_url(&engine, &writer)).await;
    let pusher = tokio::spawn(async move {
        for i in 0..100u8 {
            w.send(WsMessage::binary(vec![i; FRAME]))
                .await
                .expect("send");
        }
        w.close(Some(close(1000, ""))).await.expect("close");
        // Wait for the engine's echo: then it has everything we sent.
        while let Some(Ok(_)) = w.next().await {}
    });
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    let mut seen = 0;
    while tokio::time::Instant::now() < deadline {
        let buffered = engine.stats().buffered_bytes;
        assert!(buffered <= bound, "{buffered} bytes buffered");
        seen = seen.max(buffered);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen, bound, "the buffer fills up to its bound");
    assert!(!pusher.is_finished(), "the writer is held back");

    let mut r = connect(&end_url(&engine, &reader)).await;
    let (frames, closed) = read_to_close(&mut r).await;
    assert_eq!(closed.map(|c| c.0), Some(1000));
    assert_eq!(frames.len(), 100);
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(frame, &WsMessage::binary(vec![i as u8; FRAME]), "frame {i}");
    }
    tokio::time::timeout(WAIT, pusher)
        .await
        .expect("writer done")
        .expect("writer ok");
    let stats = engine.stats();
    assert_eq!(stats.buffered_bytes, 0);
    assert!(stats.peak_buffered_bytes <= bound);
    eventually("the channel to retire", || engine.stats().channels == 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_close_echo_means_the_engine_has_the_data() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader) = worker.create_channel(json!(64)).await;
    let mut w = connect(&end_url(&engine, &writer)).await;
    for i in 0..20u8 {
        w.send(WsMessage::binary(vec![i; 1000]))
            .await
            .expect("send");
    }
    w.close(Some(close(1000, ""))).await.expect("close");
    assert_eq!(close_of(&mut w).await.map(|c| c.0), Some(1000));
    assert_eq!(engine.stats().buffered_bytes, 20 * 1000);
    let mut r = connect(&end_url(&engine, &reader)).await;
    let (frames, closed) = read_to_close(&mut r).await;
    assert_eq!(frames.len(), 20);
    assert_eq!(closed.map(|c| c.0), Some(1000));
}

#[tokio::test(flavor = "multi_thread")]
async fn channels_outlive_their_creator_and_leave_the_registry_when_done() {
    let engine = engine().await;
    let mut creator = worker(&engine).await;
    let mut pairs = Vec::new();
    for _ in 0..20 {
        pairs.push(creator.create_channel(json!(4)).await);
    }
    drop(creator);
    eventually("the creator to go", || engine.stats().connections == 0).await;
    assert_eq!(engine.stats().channels, 20);
    for (writer, reader) in &pairs {
        let mut w = connect(&end_url(&engine, writer)).await;
        let mut r = connect(&end_url(&engine, reader)).await;
        w.send(WsMessage::text("x")).await.expect("send");
        w.close(Some(close(1000, ""))).await.expect("close");
        let (frames, closed) = read_to_close(&mut r).await;
        assert_eq!(frames.len(), 1);
        assert_eq!(closed.map(|c| c.0), Some(1000));
    }
    eventually("every channel to retire", || engine.stats().channels == 0).await;
    assert_eq!(engine.stats().tombstones, 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_stream_completes() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader) = worker.create_channel(json!(1)).await;
    let mut r = connect(&end_url(&engine, &reader)).await;
    let mut w = connect(&end_url(&engine, &writer)).await;
    w.close(Some(close(1000, ""))).await.expect("close");
    let (frames, closed) = read_to_close(&mut r).await;
    assert!(frames.is_empty());
    assert_eq!(closed, Some((1000, "stream_complete".into())));
}
