//! Channel ends opened as streams on the worker's own connection (docs/PROTOCOL.md §4.8):
//! ends of a process with a connected worker use them, bytes and statuses are what a socket
//! would give, one stream that stalls holds up neither another stream nor calls, and a worker
//! connection that drops leaves its streams lost. One test function in a binary of its own:
//! streams are turned on (`III_CHANNEL_STREAMS=1`) and counted process-wide.

mod common;

use std::time::Duration;

use common::*;
use iii_sdk::channel::streams_in_use;
use iii_sdk::{ErrorKind, IIIError, RegisterFunction, TriggerRequest};
use serde_json::{Value, json};

#[test]
fn channel_ends_travel_as_streams_on_the_worker_connection() {
    // SAFETY: set before any other thread of this test process exists.
    unsafe { std::env::set_var(iii_sdk::channel::STREAMS_ENV, "1") };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(streams_flow());
}

async fn streams_flow() {
    let engine = engine().await;
    let iii = worker(&engine);
    ready(&iii).await;
    iii.register_function(RegisterFunction::new_async(
        "mux::echo",
        |input: Value| async move { Ok(input) },
    ));

    // 8 MiB through one channel: many times the stream window, so credit must flow.
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let expected = data(1, 8 << 20);
    let payload = expected.clone();
    let writer = channel.writer;
    let writing = tokio::spawn(async move {
        for (index, piece) in payload.chunks(100_000).enumerate() {
            writer.write(piece).await?;
            if index % 10 == 0 {
                writer.send_message(&format!("at {index}")).await?;
            }
        }
        writer.close().await
    });
    let reader = channel.reader;
    let mut received = Vec::new();
    let mut events = 0;
    while let Some(event) = within(30, reader.next_event()).await.expect("read") {
        if events == 0 {
            assert_eq!(streams_in_use(), 2, "both ends are streams, no sockets");
        }
        events += 1;
        if let iii_sdk::ChannelEvent::Data(bytes) = event {
            received.extend_from_slice(&bytes);
        }
    }
    within(10, writing).await.expect("join").expect("written");
    assert_eq!(received.len(), expected.len());
    assert!(received == expected, "bytes arrive intact and in order");
    drop(reader);

    // One stream stalls (its reader takes nothing, its writer fills the buffer and waits);
    // another channel and a call still go through.
    let stalled = within(10, iii.create_channel(Some(1)))
        .await
        .expect("channel");
    let stalled_writer = stalled.writer;
    let blocked = tokio::spawn(async move {
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(error) = stalled_writer.write(&chunk).await {
                return error;
            }
        }
    });
    stalled.reader.on_message(|_| {}).await; // opens the reader without reading bytes
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!blocked.is_finished(), "the stalled writer waits");
    let other = within(10, iii.create_channel(None)).await.expect("channel");
    let other_writer = other.writer;
    let sent = data(2, 2 << 20);
    let to_send = sent.clone();
    let other_writing = tokio::spawn(async move {
        other_writer.write(&to_send).await?;
        other_writer.close().await
    });
    let got = within(20, other.reader.read_all())
        .await
        .expect("other channel");
    within(10, other_writing)
        .await
        .expect("join")
        .expect("other written");
    assert!(got == sent);
    let echoed = within(
        10,
        iii.trigger(TriggerRequest::new("mux::echo", json!({"ok": 1}))),
    )
    .await
    .expect("a call while a stream is stalled");
    assert_eq!(echoed["ok"], json!(1));
    drop(stalled.reader); // the reader leaves: the stalled writer learns it
    let error = within(10, blocked).await.expect("join");
    assert_eq!(error.kind(), ErrorKind::ReaderClosed);

    // A wrong key is refused as for a socket.
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let mut wrong = channel.reader_ref.clone();
    wrong.access_key = "00".repeat(32);
    let refused = iii_sdk::ChannelReader::new(iii.address(), &wrong);
    let error = within(10, refused.read_all()).await.expect_err("refused");
    assert!(matches!(error, IIIError::ChannelConnect(_)), "{error:?}");

    // A writer dropped without closing is a lost writer, as a dropped socket is.
    let dropped = iii_sdk::ChannelWriter::new(iii.address(), &channel.writer_ref);
    within(10, dropped.write(b"partial")).await.expect("write");
    drop(dropped);
    let end = within(10, channel.reader.read_all()).await;
    assert_eq!(
        end.map_err(|error| error.kind()),
        Err(ErrorKind::WriterLost)
    );

    // Ends that finish leave the connection's streams.
    let before = streams_in_use();
    let finished = within(10, iii.create_channel(None)).await.expect("channel");
    within(10, finished.writer.write(b"done"))
        .await
        .expect("write");
    within(10, finished.writer.close()).await.expect("close");
    assert_eq!(
        within(10, finished.reader.read_all()).await.expect("read"),
        b"done"
    );
    drop(finished);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        streams_in_use(),
        before,
        "finished ends leave no streams behind"
    );

    // The connection goes (the engine stops): the ends on it fail instead of waiting forever.
    let last = within(10, iii.create_channel(None)).await.expect("channel");
    within(10, last.writer.write(b"x")).await.expect("write");
    let reader = last.reader;
    let reading = tokio::spawn(async move { reader.read_all().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    engine.shutdown().await;
    let end = within(10, reading).await.expect("join");
    assert!(end.is_err(), "{end:?}");
    iii.shutdown();
}
