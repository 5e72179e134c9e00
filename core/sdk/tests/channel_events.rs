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

/// What a reader saw through `next_chunks` (bounded by `max_chunks`) and its `on_message`
/// callback, in the order it saw it, up to the clean end or an error.
async fn read_in_chunks(
    reader: &iii_sdk::ChannelReader,
    max_chunks: usize,
) -> (Vec<ChannelEvent>, Option<IIIError>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let messages = seen.clone();
    reader
        .on_message(move |text| messages.lock().unwrap().push(ChannelEvent::Message(text)))
        .await;
    let error = loop {
        match within(10, reader.next_chunks(1 << 20, max_chunks)).await {
            Ok(batch) => {
                assert!(batch.chunks.len() <= max_chunks);
                assert!(batch.end || !batch.chunks.is_empty());
                let chunks = batch.chunks.into_iter().map(ChannelEvent::Data);
                seen.lock().unwrap().extend(chunks);
                if batch.end {
                    break None;
                }
            }
            Err(error) => break Some(error),
        }
    };
    let seen = seen.lock().unwrap().clone();
    (seen, error)
}

#[tokio::test(flavor = "multi_thread")]
async fn chunk_batches_keep_order_and_stop_at_the_end_or_the_bound() {
    for max_chunks in [1, 7] {
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
        let (seen, error) = read_in_chunks(&channel.reader, max_chunks).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(seen.len(), 40);
        let message = |n: usize| ChannelEvent::Message(format!("m{n}"));
        let data = |n: usize| ChannelEvent::Data(Bytes::from(vec![n as u8; 10]));
        // Each kind in order, and every message before the bytes sent after it. (The pump
        // that serves on_message before the first read may deliver a few messages early.)
        let at = |event: &ChannelEvent| seen.iter().position(|e| e == event).expect("seen");
        for n in 0..20 {
            assert!(at(&message(n)) < at(&data(n)));
            if n > 0 {
                assert!(at(&message(n - 1)) < at(&message(n)));
                assert!(at(&data(n - 1)) < at(&data(n)));
            }
        }
        engine.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abort_after_the_chunks_is_an_error_not_an_end() {
    let (engine, channel) = open_channel().await;
    within(10, async {
        channel.writer.send_message("progress").await?;
        channel.writer.write(b"partial").await?;
        channel.writer.abort("broken").await
    })
    .await
    .expect("written");
    let (seen, error) = read_in_chunks(&channel.reader, 1024).await;
    assert_eq!(
        seen,
        vec![
            ChannelEvent::Message("progress".into()),
            ChannelEvent::Data(Bytes::from_static(b"partial")),
        ]
    );
    assert!(
        matches!(error, Some(IIIError::ChannelAborted(ref r)) if r == "broken"),
        "{error:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn both_ends_count_what_they_moved() {
    let (_engine, channel) = open_channel().await;
    let data = vec![5u8; 200 * 1024 + 3];
    let writer = &channel.writer;
    let reading = channel.reader.read_all();
    let writing = async {
        writer.send_message("progress").await?;
        writer.write(&data).await?;
        writer.close().await
    };
    let (read, written) = within(20, async { tokio::join!(reading, writing) }).await;
    written.expect("written");
    assert_eq!(read.expect("read").len(), data.len());
    let (sent, got) = (writer.stats(), channel.reader.stats());
    assert_eq!(
        (sent.bytes, sent.frames, sent.messages),
        (data.len() as u64, 4, 1)
    );
    assert_eq!(
        (got.bytes, got.frames, got.messages),
        (data.len() as u64, 4, 1)
    );
}
