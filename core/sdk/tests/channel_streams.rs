//! Channel data paths that must arrive complete and in order: sizes around the 64 KiB frame
//! boundary and a 100 MiB stream (sha256-compared), text messages interleaved with data, readers
//! that connect early or late, and backpressure from a slow reader.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::FutureExt;
use iii_engine::EngineConfig;

const KIB: u64 = 1024;

async fn transfer(len: u64, chunk: usize, seed: u64) {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let reader = channel.reader;
    let reading = tokio::spawn(async move { read_stream(&reader).await });
    let written = within(120, write_stream(&channel.writer, seed, len, chunk))
        .await
        .expect("written");
    let (read_len, read_hash) = within(120, reading).await.expect("join").expect("read");
    assert_eq!(read_len, len);
    assert_eq!(read_hash, written);
    assert_eq!(written, expected_hash(seed, len));
    iii.shutdown();
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_stream_ends_cleanly() {
    transfer(0, 1024, 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_byte() {
    transfer(1, 1024, 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn frame_boundaries() {
    for (i, len) in [64 * KIB - 1, 64 * KIB, 64 * KIB + 1]
        .into_iter()
        .enumerate()
    {
        // One write of the whole length, then odd-sized writes.
        transfer(len, len as usize, 10 + i as u64).await;
        transfer(len, 10_007, 20 + i as u64).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hundred_mebibytes_byte_exact() {
    transfer(100 * KIB * KIB, 1 << 20, 42).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn write_bytes_splits_without_copying() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let payload = Bytes::from(data(7, 300_000));
    let reader = channel.reader;
    let reading = tokio::spawn(async move { reader.read_all().await });
    within(10, channel.writer.write_bytes(payload.clone()))
        .await
        .expect("write");
    within(10, channel.writer.close()).await.expect("close");
    let read = within(10, reading).await.expect("join").expect("read");
    assert_eq!(read, payload);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_keep_their_order_relative_to_data() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    within(
        5,
        channel
            .reader
            .on_message(move |m| sink.lock().unwrap().push(m)),
    )
    .await;

    const ROUNDS: usize = 40;
    let writer = channel.writer;
    let writing = tokio::spawn(async move {
        for i in 0..ROUNDS {
            writer.send_message(&format!("m{i}")).await?;
            writer.write(&vec![i as u8; 1000 + i]).await?;
        }
        writer.send_message("last").await?;
        writer.close().await
    });
    // Data frame i ends at byte `ends[i]`; message i was sent before it, so once the reader has
    // returned those bytes, messages 0..=i must have been delivered.
    let ends: Vec<usize> = (0..ROUNDS)
        .scan(0, |end, i| {
            *end += 1000 + i;
            Some(*end)
        })
        .collect();
    let mut consumed = Vec::new();
    while let Some(chunk) = within(10, channel.reader.next_binary())
        .await
        .expect("read")
    {
        consumed.extend_from_slice(&chunk);
        let delivered = log.lock().unwrap().len();
        let frames_done = ends.iter().filter(|end| **end <= consumed.len()).count();
        assert!(
            delivered >= frames_done,
            "{delivered} messages after {frames_done} frames"
        );
    }
    within(10, writing).await.expect("join").expect("writer");
    let mut expected: Vec<String> = (0..ROUNDS).map(|i| format!("m{i}")).collect();
    expected.push("last".into());
    assert_eq!(*log.lock().unwrap(), expected);
    let expected_data: Vec<u8> = (0..ROUNDS).flat_map(|i| vec![i as u8; 1000 + i]).collect();
    assert_eq!(consumed, expected_data);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_before_the_first_callback_are_kept() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    channel.writer.send_message("early-1").await.expect("send");
    channel.writer.send_message("early-2").await.expect("send");
    channel.writer.write(b"data").await.expect("write");
    within(10, channel.writer.close()).await.expect("close");
    // Reading first connects the reader; the messages arrive before any callback exists.
    assert_eq!(
        within(10, channel.reader.read_all()).await.expect("read"),
        b"data"
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    channel
        .reader
        .on_message(move |m| sink.lock().unwrap().push(m))
        .await;
    assert_eq!(*log.lock().unwrap(), ["early-1", "early-2"]);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reader_connected_before_the_writer_starts() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let reader = channel.reader;
    let reading = tokio::spawn(async move { read_stream(&reader).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!reading.is_finished());
    let written = within(
        30,
        write_stream(&channel.writer, 5, 3 * 64 * KIB + 17, 50_000),
    )
    .await
    .expect("written");
    let (len, hash) = within(30, reading).await.expect("join").expect("read");
    assert_eq!((len, hash), (3 * 64 * KIB + 17, written));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reader_connecting_after_the_writer_finished() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let len = 10 * 64 * KIB + 3; // fits the default 64-frame buffer
    let written = within(30, write_stream(&channel.writer, 6, len, 64 * 1024))
        .await
        .expect("written");
    let (read_len, hash) = within(30, read_stream(&channel.reader))
        .await
        .expect("read");
    assert_eq!((read_len, hash), (len, written));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_reader_holds_the_writer_back_with_bounded_engine_memory() {
    let engine = engine_with(EngineConfig::ephemeral()).await;
    let iii = worker(&engine);
    let buffer_frames = 2;
    let channel = within(10, iii.create_channel(Some(buffer_frames)))
        .await
        .expect("channel");
    let total = 64 * KIB * KIB;
    let consumed = Arc::new(std::sync::atomic::AtomicU64::new(0));

    let reader = channel.reader;
    let counter = consumed.clone();
    let reading = tokio::spawn(async move {
        let mut hash_len = 0u64;
        while let Some(chunk) = reader.next_binary().await? {
            hash_len += chunk.len() as u64;
            counter.store(hash_len, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok::<_, iii_sdk::IIIError>(hash_len)
    });

    let writer = channel.writer;
    let mut offset = 0;
    let mut buffer = vec![0; 64 * 1024];
    let mut max_ahead = 0;
    while offset < total {
        fill(9, offset, &mut buffer);
        within(60, writer.write(&buffer)).await.expect("write");
        offset += buffer.len() as u64;
        let ahead = offset - consumed.load(std::sync::atomic::Ordering::SeqCst);
        max_ahead = max_ahead.max(ahead);
    }
    within(60, writer.close()).await.expect("close");
    assert_eq!(
        within(60, reading).await.expect("join").expect("read"),
        total
    );

    // The writer never got further ahead of the reader than the buffers on the way (engine
    // buffer, SDK queues and the kernel's socket buffers of two loopback hops).
    assert!(
        max_ahead < total / 2,
        "writer ran {max_ahead} bytes ahead of a slow reader"
    );
    let stats = engine.stats();
    eprintln!(
        "max ahead {max_ahead} of {total}; engine peak {}",
        stats.peak_buffered_bytes
    );
    assert!(
        stats.peak_buffered_bytes as u64 <= u64::from(buffer_frames) * 64 * KIB,
        "engine buffered {} bytes",
        stats.peak_buffered_bytes
    );
    engine.shutdown().await;
}

// One thread: the engine runs on this runtime too, so it cannot answer an upgrade while a
// call is being polled, and a single poll can only start connecting, never finish.
#[tokio::test(flavor = "current_thread")]
async fn calls_cancelled_while_connecting_keep_the_end() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    // Each first call is polled once (it starts connecting) and then dropped.
    assert!(channel.reader.next_binary().now_or_never().is_none());
    let first = channel.writer.write(b"lost").now_or_never();
    assert!(first.is_none(), "{first:?}");
    within(10, channel.writer.write(b"kept"))
        .await
        .expect("write");
    within(10, channel.writer.close()).await.expect("close");
    let data = within(10, channel.reader.read_all()).await.expect("read");
    assert!(data == b"kept", "{data:?}");
    engine.shutdown().await;
}
