//! The engine's memory stays bounded whatever a worker does, measured on the `iii` binary as a
//! separate process (its resident set read from `/proc`): a worker that registers a function
//! and then never reads its socket, called with 400 void calls of 1 MiB each, grew the
//! engine by 400 MB; now it holds at most `--max-outbound-bytes` for it (tested with 100).
//! Memory freed after a burst goes back to the system instead of staying with the allocator
//! (it stayed: 14 MiB → 80 MiB → 39 MiB for good, before the engine trimmed). One worker
//! creating channels without end (100,000 held +230 MB for their TTL) is held to the channel
//! quotas, reconnecting or not; and channels whose readers never read (eight of 1,024 frames
//! held +512 MiB) hold at most `--max-channel-bytes` together.

use std::process::Child;

use crate::common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const BOUND: usize = 8 * 1024 * 1024;

/// The engine binary with a small outbound bound; returns the process and its worker URL.
fn start_engine() -> (Child, String) {
    spawn_engine(&["--max-outbound-bytes", &BOUND.to_string()])
}

/// The process's resident set in bytes.
fn rss(child: &Child) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("status");
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_never_reads_costs_at_most_its_bound() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let (mut engine, url) = start_engine();
    let mut stuck = worker_at(&url).await;
    stuck.register("stuck::sink").await;
    // From here `stuck` reads nothing.
    let mut caller = worker_at(&url).await;
    caller.sync().await;
    let before = rss(&engine);
    let blob = "x".repeat(1024 * 1024);
    for n in 0..100 {
        let call = json!({"type": "invokefunction", "function_id": "stuck::sink",
                          "data": {"n": n, "blob": blob}});
        caller
            .ws
            .send(WsMessage::text(call.to_string()))
            .await
            .expect("the caller is never held up");
    }
    // Everything sent was handled, and the caller's own calls are still answered.
    caller.sync().await;
    let (writer, _) = caller.create_channel(json!(8)).await;
    assert!(writer["channel_id"].is_string());
    let grown = rss(&engine).saturating_sub(before);
    eprintln!(
        "engine RSS grew by {} KiB for 100 MiB of calls to a worker that reads nothing",
        grown >> 10
    );
    assert!(
        grown < 6 * BOUND,
        "the engine grew by {} MiB for a worker that reads nothing (bound {} MiB)",
        grown >> 20,
        BOUND >> 20
    );
    drop(stuck);
    let _ = engine.kill();
    let _ = engine.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_returns_after_a_burst_of_full_channel_buffers() {
    let _one_at_a_time = crate::one_at_a_time().await;
    const CHANNELS: usize = 16;
    const FRAMES: usize = 64;
    let (mut child, url) = start_engine();
    let mut w = worker_at(&url).await;
    w.sync().await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let baseline = rss(&child);
    // 16 channels of 4 MiB each, all written before any is read (64 MiB held in 64 KiB
    // frames), with a small channel made after each that stays alive, as other traffic
    // would: the freed frames end up below live blocks, where glibc keeps them on its own.
    let mut readers = Vec::new();
    for _ in 0..CHANNELS {
        let (writer, reader) = w.create_channel(json!(FRAMES)).await;
        let mut writer_ws = connect(&end_url_at(&url, &writer)).await;
        write_complete(&mut writer_ws, (0..FRAMES).map(|_| vec![3u8; 64 * 1024])).await;
        close_of(&mut writer_ws).await;
        readers.push(reader);
        w.create_channel(json!(1)).await;
    }
    let peak = rss(&child);
    for reader in readers {
        let mut reader_ws = connect(&end_url_at(&url, &reader)).await;
        let (frames, end) = read_to_close(&mut reader_ws).await;
        assert_eq!(binary_bytes(&frames).len(), FRAMES * 64 * 1024);
        assert_eq!(end.map(|(code, _)| code), Some(1000));
    }
    // Freed memory goes back to the system within a few sweeps (one a second).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let limit = baseline + 8 * 1024 * 1024;
    let mut now = rss(&child);
    while now > limit && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        now = rss(&child);
    }
    let _ = child.kill();
    let _ = child.wait();
    let mib = |bytes: usize| bytes / (1024 * 1024);
    assert!(
        now <= limit,
        "RSS {} MiB at baseline, {} MiB at the peak, still {} MiB after the burst",
        mib(baseline),
        mib(peak),
        mib(now)
    );
}

/// Sends `count` channel creations at once, then reads every answer: (created, refused).
async fn create_channels(w: &mut Worker, count: usize) -> (usize, Vec<String>) {
    for _ in 0..count {
        let call = json!({"type": "invokefunction", "invocation_id": uuid(),
                          "function_id": "engine::channels::create", "data": {"buffer_size": 1}});
        w.ws.send(WsMessage::text(call.to_string()))
            .await
            .expect("send");
    }
    let (mut created, mut refused) = (0, Vec::new());
    while created + refused.len() < count {
        let answer = w.recv().await;
        if answer["type"] != "invocationresult" {
            continue;
        }
        match answer["error"]["message"].as_str() {
            Some(message) => refused.push(message.to_string()),
            None => created += 1,
        }
    }
    (created, refused)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_channels_is_held_to_the_channel_quotas() {
    let _one_at_a_time = crate::one_at_a_time().await;
    let (mut engine, url) = spawn_engine(&[
        "--max-channels-per-connection",
        "1000",
        "--max-channels",
        "2500",
    ]);
    let mut first = worker_at(&url).await;
    first.sync().await;
    let before = rss(&engine);
    // 20,000 creations from connection after connection (what one connection created waits
    // for its ends after it leaves): 2,500 channels at most, however many connections.
    let (mut created, mut refused) = create_channels(&mut first, 2_000).await;
    assert_eq!(created, 1_000, "one connection's quota");
    for _ in 0..9 {
        let mut again = worker_at(&url).await;
        let (made, messages) = create_channels(&mut again, 2_000).await;
        created += made;
        refused.extend(messages);
    }
    assert_eq!(created, 2_500, "the engine-wide quota");
    assert_eq!(refused.len(), 17_500);
    assert!(
        refused
            .iter()
            .all(|m| m.contains("--max-channels-per-connection") || m.contains("--max-channels)")),
        "every refusal names its quota"
    );
    let grown = rss(&engine).saturating_sub(before);
    eprintln!(
        "engine RSS grew by {} KiB for 20,000 channel creations",
        grown >> 10
    );
    assert!(
        grown < 16 << 20,
        "the engine grew by {} MiB for 2,500 channels",
        grown >> 20
    );
    let _ = engine.kill();
    let _ = engine.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn channels_nobody_reads_hold_at_most_the_engine_wide_byte_bound() {
    let _one_at_a_time = crate::one_at_a_time().await;
    const BYTE_BOUND: usize = 16 << 20;
    let (mut engine, url) = spawn_engine(&["--max-channel-bytes", &BYTE_BOUND.to_string()]);
    let mut w = worker_at(&url).await;
    w.sync().await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = rss(&engine);
    // Eight channels of 1,024 frames (64 MiB each) with readers that connect and never read,
    // and writers that try to fill them.
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..8 {
        let (writer, reader) = w.create_channel(json!(1024)).await;
        readers.push(connect(&end_url_at(&url, &reader)).await);
        let mut writer_ws = connect(&end_url_at(&url, &writer)).await;
        writers.push(tokio::spawn(async move {
            for _ in 0..1024 {
                if writer_ws
                    .send(WsMessage::Binary(vec![9u8; 64 * 1024].into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let grown = rss(&engine).saturating_sub(before);
    eprintln!(
        "engine RSS grew by {} MiB with 512 MiB offered to readers that never read",
        grown >> 20
    );
    let _ = engine.kill();
    let _ = engine.wait();
    for writer in writers {
        writer.abort();
    }
    // The bound, each buffer's free first 64 KiB, and a frame in flight per socket.
    assert!(
        grown < BYTE_BOUND + (16 << 20),
        "the engine grew by {} MiB (bound {} MiB)",
        grown >> 20,
        BYTE_BOUND >> 20
    );
    drop(readers);
}
