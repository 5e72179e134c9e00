//! Memory given back after a burst: engine RSS before, at the peak of, and at intervals
//! after a burst of large main-socket messages (8 MiB calls and results) and of full channel
//! buffers (32 channels × 4 MiB waiting for their readers). Issue 15 asks for RSS back near
//! its baseline shortly after; this measures how near, and how soon.

use std::time::{Duration, Instant};

use iii_sdk::{RegisterFunction, TriggerRequest};
use serde_json::{Value, json};

use crate::procs::{EngineProc, Rss};

/// Calls of 8 MiB (each answered with the same 8 MiB) in the burst, and how many at once
/// (three fit a worker's default 32 MiB outbound bound; more would be refused `worker_busy`).
const CALLS: usize = 48;
const CALLS_IN_FLIGHT: usize = 3;
const CALL_BYTES: usize = 8 * 1024 * 1024;
/// Channels filled to their 4 MiB buffer before their readers read.
const CHANNELS: usize = 32;
const CHANNEL_BYTES: usize = 4 * 1024 * 1024;

/// When RSS is sampled after the burst ends.
pub const AFTER: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// Engine RSS around one burst.
pub struct BurstFigures {
    /// After a warm-up, before the burst.
    pub baseline: Rss,
    /// The highest sampled during the burst.
    pub peak: Rss,
    /// At each of [`AFTER`] past the end of the burst.
    pub after: Vec<Rss>,
    /// [`LEFT`] after the two workers of the burst disconnected.
    pub left: Rss,
}

/// When RSS is sampled after the workers left.
pub const LEFT: Duration = Duration::from_secs(2);

/// Runs the burst against an engine process and samples its RSS.
pub async fn burst() -> Result<BurstFigures, String> {
    let engine = EngineProc::start(1).await?;
    let owner = iii_sdk::register_worker(&engine.url);
    owner.register_function(RegisterFunction::new_async(
        "burst::echo",
        |input: Value| async move { Ok(input) },
    ));
    owner
        .ready()
        .await
        .map_err(|error| format!("owner not ready: {error}"))?;
    let caller = iii_sdk::register_worker(&engine.url);
    // Warm-up: one small call and one small channel, then the baseline.
    load(&caller, 1, 1024, 1, 64 * 1024).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = engine.rss();
    let work = load(&caller, CALLS, CALL_BYTES, CHANNELS, CHANNEL_BYTES);
    let (done, peak) = engine
        .peak_during(baseline, Duration::from_millis(50), work)
        .await;
    done?;
    let ended = Instant::now();
    let mut after = Vec::new();
    for at in AFTER {
        tokio::time::sleep_until((ended + at).into()).await;
        after.push(engine.rss());
    }
    owner.shutdown();
    caller.shutdown();
    tokio::time::sleep(LEFT).await;
    let left = engine.rss();
    Ok(BurstFigures {
        baseline,
        peak,
        after,
        left,
    })
}

/// `calls` echo calls of `call_bytes` (three at once), then `channels` channels each filled with
/// `channel_bytes` before any of their readers reads, then read.
async fn load(
    iii: &iii_sdk::III,
    calls: usize,
    call_bytes: usize,
    channels: usize,
    channel_bytes: usize,
) -> Result<(), String> {
    let payload = json!({"blob": "x".repeat(call_bytes)});
    for batch in (0..calls).collect::<Vec<_>>().chunks(CALLS_IN_FLIGHT) {
        let calls = batch
            .iter()
            .map(|_| iii.trigger(TriggerRequest::new("burst::echo", payload.clone())));
        for answer in futures_util::future::join_all(calls).await {
            answer.map_err(|error| format!("burst call: {error}"))?;
        }
    }
    let frames = u32::try_from(channel_bytes / (64 * 1024))
        .unwrap_or(64)
        .max(1);
    let mut open = Vec::new();
    for _ in 0..channels {
        let channel = iii
            .create_channel(Some(frames))
            .await
            .map_err(|error| format!("create channel: {error}"))?;
        let data = vec![7u8; channel_bytes];
        channel
            .writer
            .write(&data)
            .await
            .map_err(|error| format!("write: {error}"))?;
        channel
            .writer
            .close()
            .await
            .map_err(|error| format!("close: {error}"))?;
        open.push(channel.reader);
    }
    for reader in open {
        let mut read = 0;
        while let Some(chunk) = reader
            .next_binary()
            .await
            .map_err(|error| format!("read: {error}"))?
        {
            read += chunk.len();
        }
        if read != channel_bytes {
            return Err(format!("read {read} of {channel_bytes} bytes"));
        }
    }
    Ok(())
}
