//! The reader's ordered pull API, on which every binding's reader is built: bytes and text
//! messages come in the order the writer sent them, whether taken one at a time, only when at
//! hand, or in batches, and an unclean end is never a clean one.

mod common;

use bytes::Bytes;
use common::*;
use iii_sdk::{ChannelEvent, IIIError};

/// An engine and a channel created on it.
async fn open_channel() -> (iii_engine::Engine, iii_sdk::Channel) {
    let engine = engine().await;
    let channel = within(10, worker(&engine).create_channel(None)).await;
    (engine, channel.expect("channel"))
}

#[tokio::test(flavor = "multi_thread")]
async fn events_come_in_wire_order_one_at_a_time() {
    let (engine, channel) = open_channel().await;
    let writer = &channel.writer;
    within(10, async {
        writer.send_message("first").await?;
        writer.write(b"one").await?;
        writer.send_message("second").await?;
        writer.write(b"two").await?;
        writer.close().await
    })
    .await
    .expect("written");
    let mut events = Vec::new();
    while let Some(event) = within(10, channel.reader.next_event())
        .await
        .expect("event")
    {
        events.push(event);
    }
    assert_eq!(
        events,
        vec![
            ChannelEvent::Message("first".into()),
            ChannelEvent::Data(Bytes::from_static(b"one")),
            ChannelEvent::Message("second".into()),
            ChannelEvent::Data(Bytes::from_static(b"two")),
        ]
    );
    // The end is reported again, and messages never went to callbacks meanwhile.
    assert!(matches!(channel.reader.next_event().await, Ok(None)));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn try_next_event_takes_only_what_is_at_hand() {
    let (engine, channel) = open_channel().await;
    // Nothing written yet: the read would wait, and waiting loses nothing.
    for _ in 0..3 {
        assert!(channel.reader.try_next_event().is_none());
    }
    within(10, channel.writer.send_message("hello"))
        .await
        .expect("message");
    let event = within(10, channel.reader.next_event())
        .await
        .expect("event");
    assert_eq!(event, Some(ChannelEvent::Message("hello".into())));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_keep_order_and_stop_at_the_end_or_the_bound() {
    let (engine, channel) = open_channel().await;
    let writer = &channel.writer;
    within(10, async {
        for n in 0..20 {
            writer.send_message(&format!("m{n}")).await?;
            writer.write(&[n as u8; 10]).await?;
        }
        writer.close().await
    })
    .await
    .expect("written");
    let mut events = Vec::new();
    loop {
        let batch = within(10, channel.reader.next_batch(1 << 20, 7))
            .await
            .expect("batch");
        assert!(batch.events.len() <= 7 && (batch.end || !batch.events.is_empty()));
        events.extend(batch.events);
        if batch.end {
            break;
        }
    }
    assert_eq!(events.len(), 40);
    for (n, pair) in events.chunks(2).enumerate() {
        assert_eq!(pair[0], ChannelEvent::Message(format!("m{n}")));
        assert_eq!(pair[1], ChannelEvent::Data(Bytes::from(vec![n as u8; 10])));
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abort_after_the_events_is_an_error_not_an_end() {
    let (engine, channel) = open_channel().await;
    within(10, async {
        channel.writer.send_message("progress").await?;
        channel.writer.write(b"partial").await?;
        channel.writer.abort("broken").await
    })
    .await
    .expect("written");
    let mut events = Vec::new();
    let end = loop {
        match within(10, channel.reader.next_batch(1 << 20, 1024)).await {
            Ok(batch) => {
                assert!(!batch.end, "an aborted stream never ends cleanly");
                events.extend(batch.events);
            }
            Err(error) => break error,
        }
    };
    assert_eq!(
        events,
        vec![
            ChannelEvent::Message("progress".into()),
            ChannelEvent::Data(Bytes::from_static(b"partial")),
        ]
    );
    assert!(
        matches!(end, IIIError::ChannelAborted(ref r) if r == "broken"),
        "{end:?}"
    );
    engine.shutdown().await;
}
