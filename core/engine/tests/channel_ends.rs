//! How channel ends finish (docs/PROTOCOL.md §4.2, §4.4, §4.7): close codes, tombstones, expiry.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use iii_engine::EngineConfig;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const FRAME: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn writer_abort_reaches_the_reader_after_the_data() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader) = worker.create_channel(json!(8)).await;
    let mut w = connect(&end_url(&engine, &writer)).await;
    w.send(WsMessage::binary(vec![1u8; 10]))
        .await
        .expect("send");
    w.close(Some(close(4001, "disk full")))
        .await
        .expect("close");
    // The reader connects late: the data and the status waited in the channel.
    let mut r = connect(&end_url(&engine, &reader)).await;
    let (frames, closed) = read_to_close(&mut r).await;
    assert_eq!(binary_bytes(&frames), vec![1u8; 10]);
    assert_eq!(closed, Some((4001, "aborted: disk full".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn writer_lost_reaches_the_reader_after_the_data() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader) = worker.create_channel(json!(8)).await;
    let mut r = connect(&end_url(&engine, &reader)).await;
    let mut w = connect(&end_url(&engine, &writer)).await;
    w.send(WsMessage::binary(vec![9u8; 100]))
        .await
        .expect("send");
    w.flush().await.expect("flush");
    drop(w);
    let (frames, closed) = read_to_close(&mut r).await;
    assert_eq!(binary_bytes(&frames), vec![9u8; 100]);
    assert_eq!(closed, Some((4002, "writer_lost".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn other_writer_close_codes_are_writer_lost() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (_, _, mut w, mut r) = worker.connected_channel(&engine, json!(8)).await;
    w.close(Some(close(1001, "going away")))
        .await
        .expect("close");
    assert_eq!(close_of(&mut r).await.map(|c| c.0), Some(4002));
}

#[tokio::test(flavor = "multi_thread")]
async fn reader_close_closes_the_writer_with_4003() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (_, _, mut w, mut r) = worker.connected_channel(&engine, json!(2)).await;
    w.send(WsMessage::binary(vec![1u8; 10]))
        .await
        .expect("send");
    let first = tokio::time::timeout(WAIT, r.next()).await.expect("in time");
    assert!(matches!(first, Some(Ok(WsMessage::Binary(_)))));
    r.close(Some(close(1000, "enough"))).await.expect("close");
    assert_eq!(close_of(&mut w).await, Some((4003, "reader_closed".into())));
    eventually("the channel to retire", || engine.stats().channels == 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reader_close_reaches_a_writer_blocked_on_a_full_buffer() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader) = worker.create_channel(json!(1)).await;
    let mut r = connect(&end_url(&engine, &reader)).await;
    let w = connect(&end_url(&engine, &writer)).await;
    let (mut w_tx, mut w_rx) = w.split();
    // Keep writing without reading anything until the engine closes us.
    let pusher = tokio::spawn(async move {
        for _ in 0..2000 {
            if w_tx
                .send(WsMessage::binary(vec![0u8; FRAME]))
                .await
                .is_err()
            {
                break;
            }
        }
        w_tx
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    r.close(None).await.expect("close");
    let mut code = None;
    while let Ok(Some(message)) = tokio::time::timeout(WAIT, w_rx.next()).await {
        match message {
            Ok(WsMessage::Close(frame)) => {
                code = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert_eq!(code, Some(4003));
    let _ = tokio::time::timeout(WAIT, pusher)
        .await
        .expect("the writer stops");
    eventually("no bytes buffered", || engine.stats().buffered_bytes == 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn second_connect_to_an_end_gets_4009() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader, mut w, mut r) = worker.connected_channel(&engine, json!(8)).await;
    w.send(WsMessage::text("hello")).await.expect("send");
    let mut second_reader = connect(&end_url(&engine, &reader)).await;
    assert_eq!(
        close_of(&mut second_reader).await,
        Some((4009, "end_already_connected".into()))
    );
    let mut second_writer = connect(&end_url(&engine, &writer)).await;
    assert_eq!(close_of(&mut second_writer).await.map(|c| c.0), Some(4009));
    // The first pair is undisturbed.
    w.close(Some(close(1000, ""))).await.expect("close");
    let (frames, closed) = read_to_close(&mut r).await;
    assert_eq!(frames, vec![WsMessage::text("hello")]);
    assert_eq!(closed.map(|c| c.0), Some(1000));
}

#[tokio::test(flavor = "multi_thread")]
async fn finished_channels_are_tombstoned_and_late_connects_get_the_status() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader, mut w, mut r) = worker.connected_channel(&engine, json!(8)).await;
    w.send(WsMessage::binary(vec![5u8; 5])).await.expect("send");
    w.close(Some(close(1000, ""))).await.expect("close");
    assert_eq!(close_of(&mut r).await.map(|c| c.0), Some(1000));
    eventually("the channel to retire", || {
        let stats = engine.stats();
        stats.channels == 0 && stats.tombstones == 1
    })
    .await;
    // Late connects are accepted, then closed with the channel's final status.
    let mut late_writer = connect(&end_url(&engine, &writer)).await;
    assert_eq!(
        close_of(&mut late_writer).await,
        Some((1000, "stream_complete".into()))
    );
    let mut late_reader = connect(&end_url(&engine, &reader)).await;
    assert_eq!(close_of(&mut late_reader).await.map(|c| c.0), Some(1000));
    // How it ended is only for the holders of its refs: a wrong key is refused as before.
    let wrong_key = json!({"channel_id": reader["channel_id"], "access_key": "0".repeat(64), "direction": "read"});
    assert_eq!(refused_status(&end_url(&engine, &wrong_key)).await, 404);
    let swapped = json!({"channel_id": writer["channel_id"], "access_key": reader["access_key"], "direction": "write"});
    assert_eq!(refused_status(&end_url(&engine, &swapped)).await, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn tombstones_expire() {
    let engine = engine_with(EngineConfig {
        tombstone_ttl: Duration::from_millis(100),
        ..EngineConfig::ephemeral()
    })
    .await;
    let mut worker = worker(&engine).await;
    let (_, reader, mut w, mut r) = worker.connected_channel(&engine, json!(8)).await;
    w.close(Some(close(1000, ""))).await.expect("close");
    assert_eq!(close_of(&mut r).await.map(|c| c.0), Some(1000));
    eventually("the tombstone to go", || engine.stats().tombstones == 0).await;
    assert_eq!(refused_status(&end_url(&engine, &reader)).await, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn unconnected_channels_expire_with_4008() {
    let engine = engine_with(EngineConfig {
        channel_ttl: Duration::from_millis(200),
        ..EngineConfig::ephemeral()
    })
    .await;
    let mut worker = worker(&engine).await;
    let (_, reader) = worker.create_channel(json!(8)).await;
    let mut r = connect(&end_url(&engine, &reader)).await;
    assert_eq!(close_of(&mut r).await, Some((4008, "expired".into())));

    let (writer, _) = worker.create_channel(json!(8)).await;
    let mut w = connect(&end_url(&engine, &writer)).await;
    w.send(WsMessage::binary(vec![1u8; 10]))
        .await
        .expect("send");
    assert_eq!(close_of(&mut w).await, Some((4008, "expired".into())));

    let (idle, _) = worker.create_channel(json!(8)).await;
    eventually("every channel to retire", || engine.stats().channels == 0).await;
    let mut late = connect(&end_url(&engine, &idle)).await;
    assert_eq!(close_of(&mut late).await.map(|c| c.0), Some(4008));
    assert_eq!(engine.stats().buffered_bytes, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stream_nobody_read_expires_instead_of_ending_clean() {
    let engine = engine_with(EngineConfig {
        channel_ttl: Duration::from_millis(200),
        ..EngineConfig::ephemeral()
    })
    .await;
    let mut worker = worker(&engine).await;
    let (writer, reader) = worker.create_channel(json!(8)).await;
    let mut w = connect(&end_url(&engine, &writer)).await;
    w.send(WsMessage::binary(vec![7u8; 1000]))
        .await
        .expect("send");
    w.close(Some(close(1000, ""))).await.expect("close");
    assert_eq!(close_of(&mut w).await.map(|c| c.0), Some(1000));
    eventually("the channel to expire", || engine.stats().channels == 0).await;
    // The bytes are gone with the buffer: the reader must not see a complete, empty stream.
    let mut late = connect(&end_url(&engine, &reader)).await;
    let (frames, closed) = read_to_close(&mut late).await;
    assert!(frames.is_empty());
    assert_eq!(closed, Some((4008, "expired".into())));
    assert_eq!(engine.stats().buffered_bytes, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn connected_channels_do_not_expire() {
    let engine = engine_with(EngineConfig {
        channel_ttl: Duration::from_millis(100),
        ..EngineConfig::ephemeral()
    })
    .await;
    let mut worker = worker(&engine).await;
    let (_, _, mut w, mut r) = worker.connected_channel(&engine, json!(8)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    w.send(WsMessage::text("still here")).await.expect("send");
    w.close(Some(close(1000, ""))).await.expect("close");
    let (frames, closed) = read_to_close(&mut r).await;
    assert_eq!(frames, vec![WsMessage::text("still here")]);
    assert_eq!(closed.map(|c| c.0), Some(1000));
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_frames_close_the_writer_with_1009() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (writer, reader) = worker.create_channel(json!(8)).await;
    let mut r = connect(&end_url(&engine, &reader)).await;
    let mut w = connect(&end_url(&engine, &writer)).await;
    w.send(WsMessage::binary(vec![1u8; 10]))
        .await
        .expect("send");
    // The engine may close before the whole frame is out; the send result does not matter.
    let _ = w.send(WsMessage::binary(vec![0u8; 17 * 1024 * 1024])).await;
    assert_eq!(close_of(&mut w).await.map(|c| c.0), Some(1009));
    let (frames, closed) = read_to_close(&mut r).await;
    assert_eq!(binary_bytes(&frames), vec![1u8; 10]);
    assert_eq!(closed, Some((4002, "writer_lost".into())));
}

/// When the engine stops, every end of a live channel is told the engine went away (1001),
/// whichever end's task sees the stop first: never writer-lost or reader-closed, which would
/// blame a peer that did nothing.
#[tokio::test(flavor = "multi_thread")]
async fn engine_shutdown_is_going_away_for_both_ends() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let mut ends = Vec::new();
    for _ in 0..16 {
        let (_, _, mut w, r) = worker.connected_channel(&engine, json!(8)).await;
        w.send(WsMessage::binary(vec![7u8; 1000]))
            .await
            .expect("send");
        ends.push(("writer", w));
        ends.push(("reader", r));
    }
    let closes = futures_util::future::join_all(ends.into_iter().map(|(end, mut ws)| async move {
        (end, read_to_close(&mut ws).await.1.map(|close| close.0))
    }));
    let (closes, ()) = tokio::join!(closes, engine.shutdown());
    for (end, code) in closes {
        assert_eq!(code, Some(1001), "the {end} end");
    }
}

/// A text frame that is not UTF-8 closes the writer's socket with 1007; its reader learns
/// that the writer was lost.
#[tokio::test(flavor = "multi_thread")]
async fn invalid_utf8_from_a_writer_is_1007() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    let (_, _, mut w, mut r) = worker.connected_channel(&engine, json!(8)).await;
    w.send(invalid_text_frame()).await.expect("send");
    assert_eq!(close_of(&mut w).await.map(|c| c.0), Some(1007));
    assert_eq!(close_of(&mut r).await.map(|c| c.0), Some(4002));
}
