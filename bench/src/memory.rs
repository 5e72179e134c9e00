//! Engine memory: RSS growth while a fast writer feeds a throttled reader (bounded by the
//! channel buffer, not the stream), and RSS before/after a large number of channels.

use crate::procs::{EngineProc, Rss};
use crate::setups::setups_per_sec;
use crate::throughput::relay_on;
use std::time::Duration;

/// RSS figures of one memory benchmark.
#[derive(Debug, Clone, Copy)]
pub struct RssFigures {
    /// Before the load.
    pub baseline: Rss,
    /// The highest values sampled during the load.
    pub peak: Rss,
    /// After the load (and, for channels, after their tombstones expired).
    pub after: Rss,
}

/// Streams `total` bytes into a reader throttled to `rate` bytes/s, sampling engine RSS.
pub async fn slow_reader(total: u64, rate: u64) -> Result<RssFigures, String> {
    let engine = EngineProc::start(60).await?;
    warm_up(&engine).await?;
    let baseline = engine.rss();
    let transfer = relay_on(&engine, total, Some(rate), buffer_frames());
    let (result, peak) = engine
        .peak_during(baseline, Duration::from_millis(50), transfer)
        .await;
    let received = result?;
    if received.bytes != total {
        return Err(format!("received {} of {total} bytes", received.bytes));
    }
    Ok(RssFigures {
        baseline,
        peak,
        after: engine.rss(),
    })
}

/// Runs `count` channel lives (16 in flight), waits for their tombstones to expire, and
/// compares engine RSS with the baseline.
pub async fn many_channels(count: usize) -> Result<RssFigures, String> {
    let engine = EngineProc::start(1).await?;
    warm_up(&engine).await?;
    let baseline = engine.rss();
    let iii = iii_sdk::register_worker(&engine.url);
    let load = setups_per_sec(&iii, count, 16);
    let (done, peak) = engine
        .peak_during(baseline, Duration::from_millis(100), load)
        .await;
    done?;
    iii.shutdown();
    // Tombstones live one second here; the sweeper runs every second.
    tokio::time::sleep(Duration::from_secs(4)).await;
    Ok(RssFigures {
        baseline,
        peak,
        after: engine.rss(),
    })
}

/// A short load before the baseline, so the baseline includes the engine's steady-state
/// pools (runtime threads, one worker connection, one channel) and not its empty start.
async fn warm_up(engine: &EngineProc) -> Result<(), String> {
    let iii = iii_sdk::register_worker(&engine.url);
    setups_per_sec(&iii, 256, 16).await?;
    iii.shutdown();
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(())
}

/// Channel buffer in frames for the slow-reader run (`III_BENCH_BUFFER_FRAMES`, default 64).
fn buffer_frames() -> u32 {
    std::env::var("III_BENCH_BUFFER_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}
