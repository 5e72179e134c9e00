//! The ordered write queue the bindings use: operations pushed without waiting keep their call
//! order on the wire, a caller is held back once a window's worth of bytes is queued ahead of
//! the core, and a failure or a queued close is reported by every later operation.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use iii_sdk::channel::write_queue::WINDOW_BYTES;
use iii_sdk::channel::{WriteAck, WriteOp, WriteQueue};
use iii_sdk::{ErrorKind, IIIError};

const CHUNK: usize = 64 * 1024;

async fn settle(ack: WriteAck) -> Result<(), IIIError> {
    match ack {
        WriteAck::Now(outcome) => outcome,
        WriteAck::Later(receiver) => receiver.await.unwrap_or(Err(IIIError::Shutdown)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unawaited_operations_arrive_in_call_order() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let messages = Arc::new(Mutex::new(Vec::new()));
    let seen = messages.clone();
    channel
        .reader
        .on_message(move |text| seen.lock().expect("lock").push(text))
        .await;
    let queue = WriteQueue::new(Arc::new(channel.writer));
    let mut acks = Vec::new();
    let mut expected = Vec::new();
    for index in 0..200u64 {
        let chunk = data(index, CHUNK);
        expected.extend_from_slice(&chunk);
        acks.push(queue.push(WriteOp::Write(Bytes::from(chunk))));
        if index % 50 == 0 {
            acks.push(queue.push(WriteOp::Message(format!("at {index}"))));
        }
    }
    let close = queue.push(WriteOp::Close);
    let received = within(60, channel.reader.read_all()).await.expect("read");
    assert_eq!(received.len(), expected.len());
    assert!(received == expected, "bytes arrived out of order");
    for ack in acks {
        within(10, settle(ack)).await.expect("write acknowledged");
    }
    within(10, settle(close)).await.expect("closed");
    let messages = messages.lock().expect("lock").clone();
    assert_eq!(messages, ["at 0", "at 50", "at 100", "at 150"]);
    iii.shutdown();
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_is_held_back_beyond_the_window() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let queue = WriteQueue::new(Arc::new(channel.writer));
    // Nobody reads: the core accepts what the channel buffers, the queue a window more.
    let total = 64 * 1024 * 1024;
    let mut pending = Vec::new();
    let mut acknowledged_at_once = 0usize;
    for _ in 0..total / CHUNK {
        match queue.push(WriteOp::Write(Bytes::from(vec![7u8; CHUNK]))) {
            WriteAck::Now(outcome) => {
                outcome.expect("write");
                acknowledged_at_once += CHUNK;
            }
            WriteAck::Later(receiver) => pending.push(receiver),
        }
    }
    // The core keeps taking writes while they are pushed (into the socket and the channel's
    // buffer), so the bound is what it can hold without a reader plus the window: far below
    // the 64 MiB pushed, which an unbounded queue would acknowledge at once.
    assert!(
        acknowledged_at_once as u64 <= 16 * 1024 * 1024 + WINDOW_BYTES,
        "{acknowledged_at_once} bytes acknowledged at once with no reader"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still_waiting = pending.iter().filter(|ack| ack.is_empty()).count();
    assert!(
        still_waiting * CHUNK >= total / 2,
        "only {still_waiting} writes held back with no reader"
    );
    let reading = tokio::spawn(async move { channel.reader.read_all().await });
    for receiver in pending {
        within(60, receiver).await.expect("reply").expect("write");
    }
    within(10, settle(queue.push(WriteOp::Close)))
        .await
        .expect("closed");
    let received = within(60, reading).await.expect("join").expect("read");
    assert_eq!(received.len(), total);
    iii.shutdown();
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operations_after_an_end_or_a_failure_fail_at_once() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let queue = WriteQueue::new(Arc::new(channel.writer));
    let close = queue.push(WriteOp::Close);
    match queue.push(WriteOp::Write(Bytes::from_static(b"late"))) {
        WriteAck::Now(Err(error)) => assert_eq!(error.kind(), ErrorKind::ChannelClosed),
        _ => panic!("a write after close must fail at once"),
    }
    within(10, settle(close)).await.expect("closed");
    assert!(
        within(10, channel.reader.read_all())
            .await
            .expect("read")
            .is_empty()
    );

    // The reader leaves: the first write that meets it fails, and so does every later one.
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let queue = WriteQueue::new(Arc::new(channel.writer));
    channel.reader.close().await;
    let mut failure = None;
    for _ in 0..200 {
        if let Err(error) = settle(queue.push(WriteOp::Write(Bytes::from(vec![1u8; CHUNK])))).await
        {
            failure = Some(error.kind());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let kind = failure.expect("a write to a closed reader failed");
    assert_eq!(kind, ErrorKind::ReaderClosed);
    let after = settle(queue.push(WriteOp::Message("after".into()))).await;
    assert_eq!(after.map_err(|error| error.kind()), Err(kind));
    iii.shutdown();
    engine.shutdown().await;
}
