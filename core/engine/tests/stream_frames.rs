//! Channel ends as streams inside a worker's main socket (docs/PROTOCOL.md §4.8), spoken
//! frame by frame by a raw WebSocket client: negotiation, the same end statuses as a channel
//! socket, per-stream credit, and frames that break the rules.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use iii_protocol::streams::{self, HEADER, INITIAL_WINDOW, NOT_FOUND, Op, PROTOCOL_ERROR, VERSION};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A worker's main socket that asked for streams; asserts the engine agreed.
async fn stream_worker(engine: &iii_engine::Engine) -> Ws {
    let mut request = engine.ws_url().into_client_request().expect("request");
    request
        .headers_mut()
        .insert(HEADER, VERSION.parse().expect("header"));
    let (mut ws, response) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async_with_config(request, None, true),
    )
    .await
    .expect("connect in time")
    .expect("upgrade");
    assert_eq!(
        response.headers().get(HEADER).map(|v| v.as_bytes()),
        Some(VERSION.as_bytes()),
        "the engine serves streams"
    );
    assert_eq!(recv_json(&mut ws).await["type"], "workerregistered");
    ws
}

async fn send_frame(ws: &mut Ws, op: Op, stream: u32, payload: &[u8]) {
    let frame = streams::encode(op, stream, payload);
    ws.send(WsMessage::Binary(frame.into()))
        .await
        .expect("send");
}

/// The next stream frame (skipping JSON messages): op, stream, payload.
async fn next_frame(ws: &mut Ws) -> (Op, u32, Bytes) {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("frame");
        if let WsMessage::Binary(bytes) = message {
            let (op, stream) = streams::decode(&bytes).expect("a stream frame");
            return (op, stream, bytes.slice(streams::HEADER_BYTES..));
        }
    }
}

/// Frames until `stream`'s close: the data bytes received and the close.
async fn read_stream(ws: &mut Ws, stream: u32, grant: bool) -> (Vec<u8>, (u16, String)) {
    let mut data = Vec::new();
    loop {
        let (op, id, payload) = next_frame(ws).await;
        if id != stream {
            continue;
        }
        match op {
            Op::Data => {
                data.extend_from_slice(&payload);
                if grant {
                    let credit = streams::credit_payload(payload.len() as u32);
                    send_frame(ws, Op::Credit, stream, &credit).await;
                }
            }
            Op::Close => {
                let (code, reason) = streams::parse_close(&payload).expect("close payload");
                return (data, (code, reason.to_string()));
            }
            _ => {}
        }
    }
}

async fn create(worker: &mut Ws) -> (Value, Value) {
    let id = uuid();
    send_json(
        worker,
        json!({"type": "invokefunction", "invocation_id": id,
               "function_id": "engine::channels::create", "data": {}}),
    )
    .await;
    let answer = recv_json(worker).await;
    assert_eq!(answer["invocation_id"], json!(id), "{answer}");
    let result = answer["result"].clone();
    (result["writer"].clone(), result["reader"].clone())
}

fn ref_bytes(channel_ref: &Value) -> Vec<u8> {
    serde_json::to_vec(channel_ref).expect("json")
}

#[tokio::test]
async fn a_worker_that_does_not_ask_gets_no_streams() {
    let engine = engine().await;
    let (_ws, response) = tokio_tungstenite::connect_async(engine.ws_url())
        .await
        .expect("upgrade");
    assert!(response.headers().get(HEADER).is_none());
    engine.shutdown().await;
}

#[tokio::test]
async fn a_stream_writer_reaches_a_socket_reader_with_credit_and_a_clean_end() {
    let engine = engine().await;
    let mut ws = stream_worker(&engine).await;
    let (writer, reader) = create(&mut ws).await;
    send_frame(&mut ws, Op::Open, 1, &ref_bytes(&writer)).await;
    assert_eq!(next_frame(&mut ws).await.0, Op::Opened);
    let mut reader_socket = connect(&end_url(&engine, &reader)).await;

    // 1 MiB in 64 KiB frames: past the initial window, so the engine must grant credit.
    let chunk = vec![7u8; 64 * 1024];
    let mut sent = 0u64;
    let mut credit = i64::from(INITIAL_WINDOW);
    let reading = tokio::spawn(async move { read_to_close(&mut reader_socket).await });
    // A message may go while any credit is left.
    async fn wait_credit(ws: &mut Ws, credit: &mut i64) {
        while *credit <= 0 {
            let (op, id, payload) = next_frame(ws).await;
            if (op, id) == (Op::Credit, 1) {
                *credit += i64::from(streams::parse_credit(&payload).expect("credit"));
            }
        }
    }
    while sent < (1 << 20) {
        wait_credit(&mut ws, &mut credit).await;
        send_frame(&mut ws, Op::Data, 1, &chunk).await;
        credit -= chunk.len() as i64;
        sent += chunk.len() as u64;
        wait_credit(&mut ws, &mut credit).await;
        send_frame(&mut ws, Op::Text, 1, b"progress").await;
        credit -= 8;
    }
    send_frame(&mut ws, Op::Close, 1, &streams::close_payload(1000, "")).await;
    // The engine echoes the close once everything is in the channel's buffer.
    let (_, (code, _)) = read_stream(&mut ws, 1, false).await;
    assert_eq!(code, 1000);
    let (frames, closed) = reading.await.expect("reader");
    assert_eq!(binary_bytes(&frames).len() as u64, sent);
    assert_eq!(closed.map(|c| c.0), Some(1000));
    let texts = frames.iter().filter(|f| f.is_text()).count();
    assert_eq!(texts, 16);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_stream_reader_gets_no_more_than_its_credit() {
    let engine = engine().await;
    let mut ws = stream_worker(&engine).await;
    let (writer, reader) = create(&mut ws).await;
    send_frame(&mut ws, Op::Open, 5, &ref_bytes(&reader)).await;
    assert_eq!(next_frame(&mut ws).await.0, Op::Opened);
    let mut writer_socket = connect(&end_url(&engine, &writer)).await;
    // 2 MiB waits in the writer; the engine sends the stream only its window.
    let writing = tokio::spawn(async move {
        for _ in 0..32 {
            writer_socket
                .send(WsMessage::Binary(vec![1u8; 64 * 1024].into()))
                .await
                .expect("write");
        }
        writer_socket
            .send(WsMessage::Close(Some(close(1000, ""))))
            .await
            .expect("close");
        close_of(&mut writer_socket).await
    });
    let mut received = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_millis(500), next_frame(&mut ws)).await {
            Ok((Op::Data, 5, payload)) => received += payload.len(),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(received >= INITIAL_WINDOW as usize, "got {received}");
    assert!(
        received < INITIAL_WINDOW as usize + 64 * 1024,
        "got {received}"
    );
    // Granting the rest brings everything and the writer's clean end.
    let mut rest = read_stream_granting(&mut ws, 5, received).await;
    rest.0 += received;
    assert_eq!(rest.0, 2 << 20);
    assert_eq!(rest.1, 1000);
    assert_eq!(writing.await.expect("writer").map(|c| c.0), Some(1000));
    engine.shutdown().await;
}

/// Grants `owed` bytes, then reads `stream` granting as it goes; (bytes, close code).
async fn read_stream_granting(ws: &mut Ws, stream: u32, owed: usize) -> (usize, u16) {
    send_frame(
        ws,
        Op::Credit,
        stream,
        &streams::credit_payload(owed as u32),
    )
    .await;
    let (data, (code, _)) = read_stream(ws, stream, true).await;
    (data.len(), code)
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_an_ended_channel_tells_its_status() {
    let engine = engine().await;
    let mut ws = stream_worker(&engine).await;
    let (writer, reader) = create(&mut ws).await;
    let mut wrong = writer.clone();
    wrong["access_key"] = json!("00".repeat(32));
    send_frame(&mut ws, Op::Open, 1, &ref_bytes(&wrong)).await;
    let (op, id, payload) = next_frame(&mut ws).await;
    assert_eq!((op, id), (Op::Close, 1));
    assert_eq!(streams::parse_close(&payload).map(|c| c.0), Some(NOT_FOUND));
    send_frame(&mut ws, Op::Open, 2, b"not json").await;
    let (op, id, _) = next_frame(&mut ws).await;
    assert_eq!((op, id), (Op::Close, 2));

    // The reader leaves first: a writer opened later learns reader_closed.
    send_frame(&mut ws, Op::Open, 3, &ref_bytes(&reader)).await;
    assert_eq!(next_frame(&mut ws).await.0, Op::Opened);
    send_frame(&mut ws, Op::Close, 3, &streams::close_payload(1000, "")).await;
    send_frame(&mut ws, Op::Open, 4, &ref_bytes(&writer)).await;
    let mut statuses = Vec::new();
    while statuses.len() < 2 {
        let (op, id, payload) = next_frame(&mut ws).await;
        if op == Op::Close {
            statuses.push((id, streams::parse_close(&payload).expect("close").0));
        }
    }
    assert!(statuses.contains(&(4, 4003)), "{statuses:?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn data_past_the_window_ends_the_stream_not_the_connection() {
    let engine = engine().await;
    let mut ws = stream_worker(&engine).await;
    let (writer, reader) = create(&mut ws).await;
    let mut reader_socket = connect(&end_url(&engine, &reader)).await;
    send_frame(&mut ws, Op::Open, 1, &ref_bytes(&writer)).await;
    assert_eq!(next_frame(&mut ws).await.0, Op::Opened);
    // The reader never reads and the channel holds 4 MiB, so the engine's grants stop
    // at some point; a writer that ignores credit then breaks the rules.
    // However much the sockets buffer, 64 MiB is past the channel's 4 MiB and the window.
    let chunk = vec![0u8; 64 * 1024];
    let mut closed = None;
    for _ in 0..1024 {
        send_frame(&mut ws, Op::Data, 1, &chunk).await;
        if let Ok((Op::Close, 1, payload)) =
            tokio::time::timeout(Duration::from_millis(5), next_frame(&mut ws)).await
        {
            closed = streams::parse_close(&payload).map(|c| c.0);
            break;
        }
    }
    assert_eq!(closed, Some(PROTOCOL_ERROR));
    // The reader learns its writer was lost; the connection still works.
    let (_, status) = read_to_close(&mut reader_socket).await;
    assert_eq!(status.map(|s| s.0), Some(4002));
    send_json(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv_json(&mut ws).await, json!({"type": "pong"}));
    // Frames that are not stream frames, or for streams that do not exist, are ignored.
    ws.send(WsMessage::Binary(vec![99, 0].into()))
        .await
        .expect("send");
    send_frame(&mut ws, Op::Data, 77, b"nobody").await;
    send_json(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv_json(&mut ws).await, json!({"type": "pong"}));
    engine.shutdown().await;
}

#[tokio::test]
async fn a_worker_that_disconnects_leaves_its_streams_lost() {
    let engine = engine().await;
    let mut ws = stream_worker(&engine).await;
    let (writer, reader) = create(&mut ws).await;
    send_frame(&mut ws, Op::Open, 1, &ref_bytes(&writer)).await;
    assert_eq!(next_frame(&mut ws).await.0, Op::Opened);
    send_frame(&mut ws, Op::Data, 1, b"partial").await;
    let mut reader_socket = connect(&end_url(&engine, &reader)).await;
    drop(ws);
    let (frames, status) = read_to_close(&mut reader_socket).await;
    assert_eq!(binary_bytes(&frames), b"partial");
    assert_eq!(status.map(|s| s.0), Some(4002));
    engine.shutdown().await;
}
