//! Throughput: the one-hop ceiling (a plain tokio-tungstenite writer into a sink process) and
//! the relay (an SDK writer process → engine process → SDK reader process), same bytes, same
//! frame size, measured the same way: by the receiving process, from its first frame to the end.

use crate::procs::{ChildProc, EngineProc};
use crate::{MIB, Row, median};
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(600);

/// Bytes received and seconds taken, as a receiving child reports them.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    /// Bytes received.
    pub bytes: u64,
    /// Seconds from the first frame to the end.
    pub secs: f64,
    /// CPU seconds the client processes (writer and receiver, not the engine) used.
    pub cpu: f64,
}

impl Transfer {
    /// Megabytes (10^6) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / self.secs.max(1e-9) / 1e6
    }

    pub(crate) fn parse(line: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("{line}: {e}"))?;
        Ok(Self {
            bytes: value["bytes"].as_u64().unwrap_or(0),
            secs: value["secs"].as_f64().unwrap_or(0.0),
            cpu: value["cpu"].as_f64().unwrap_or(0.0),
        })
    }

    /// Adds the CPU seconds a writer reported in its `DONE <cpu>` line.
    pub(crate) fn with_writer(mut self, line: &str) -> Self {
        let writer_cpu = line
            .strip_prefix("DONE ")
            .and_then(|cpu| cpu.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        self.cpu += writer_cpu;
        self
    }

    /// CPU seconds per GiB of `cpu` seconds spent on this transfer.
    pub fn per_gib(&self, cpu: f64) -> f64 {
        cpu / (self.bytes as f64 / (1u64 << 30) as f64).max(1e-9)
    }
}

/// One plain WebSocket hop between two processes.
pub async fn ceiling(total: u64) -> Result<Transfer, String> {
    let mut sink = ChildProc::spawn(&["sink-server".into()])?;
    let line = sink.line(Duration::from_secs(30)).await?;
    let port = line
        .strip_prefix("READY ")
        .ok_or("sink did not start")?
        .to_string();
    let mut writer = ChildProc::spawn(&[
        "hop-writer".into(),
        "--url".into(),
        format!("ws://127.0.0.1:{port}/"),
        "--bytes".into(),
        total.to_string(),
    ])?;
    let result = Transfer::parse(&sink.line(LIMIT).await?)?;
    let result = result.with_writer(&writer.line(LIMIT).await?);
    check_complete(result, total)
}

/// Writer process → engine process → reader process, through one channel; also returns the
/// engine's CPU seconds for the transfer.
pub async fn relay(total: u64) -> Result<(Transfer, f64), String> {
    let engine = EngineProc::start(60).await?;
    let cpu_before = engine.cpu_seconds();
    let result = relay_on(&engine, total, None, 64).await?;
    let cpu = engine.cpu_seconds() - cpu_before;
    Ok((check_complete(result, total)?, cpu))
}

/// Streams `total` bytes through a fresh channel of `buffer_frames` on `engine`, the reader
/// optionally throttled to `throttle` bytes per second.
pub async fn relay_on(
    engine: &EngineProc,
    total: u64,
    throttle: Option<u64>,
    buffer_frames: u32,
) -> Result<Transfer, String> {
    let url = engine.url.as_str();
    relay_between([url, url, url], total, throttle, buffer_frames).await
}

/// Streams `total` bytes through a fresh channel of `buffer_frames` created through the
/// engine at `owner`, written by a process attached to `writer` and read by one attached to
/// `reader` (three nodes of a cluster, or one engine thrice), the reader optionally throttled
/// to `throttle` bytes per second.
pub async fn relay_between(
    [owner, writer, reader]: [&str; 3],
    total: u64,
    throttle: Option<u64>,
    buffer_frames: u32,
) -> Result<Transfer, String> {
    let iii = iii_sdk::register_worker(owner);
    let channel = iii
        .create_channel(Some(buffer_frames))
        .await
        .map_err(|e| format!("create_channel: {e}"))?;
    let reader_ref = serde_json::to_string(&channel.reader_ref).map_err(|e| e.to_string())?;
    let writer_ref = serde_json::to_string(&channel.writer_ref).map_err(|e| e.to_string())?;
    let mut reader_args = vec![
        "channel-reader".into(),
        "--url".into(),
        reader.into(),
        "--reference".into(),
        reader_ref,
    ];
    if let Some(rate) = throttle {
        reader_args.extend(["--throttle".into(), rate.to_string()]);
    }
    let mut reader = ChildProc::spawn(&reader_args)?;
    let mut writer = ChildProc::spawn(&[
        "channel-writer".into(),
        "--url".into(),
        writer.into(),
        "--reference".into(),
        writer_ref,
        "--bytes".into(),
        total.to_string(),
    ])?;
    let result = Transfer::parse(&reader.line(LIMIT).await?)?;
    let result = result.with_writer(&writer.line(LIMIT).await?);
    iii.shutdown();
    Ok(result)
}

fn check_complete(result: Transfer, total: u64) -> Result<Transfer, String> {
    if result.bytes == total {
        Ok(result)
    } else {
        Err(format!("received {} of {total} bytes", result.bytes))
    }
}

/// Rounds of ceiling + relay; the figures reported are the medians (this VM is noisy).
const THROUGHPUT_ROUNDS: usize = 3;

/// Rounds of the one-hop ceiling against the relay; prints each and returns the medians'
/// rows.
pub async fn report(bytes: u64) -> Result<Vec<Row>, String> {
    let mut ceilings = Vec::new();
    let mut relays = Vec::new();
    let mut ratios = Vec::new();
    for round in 1..=THROUGHPUT_ROUNDS {
        let hop = ceiling(bytes).await?;
        let (through, engine_cpu) = relay(bytes).await?;
        let (ceiling, relay) = (hop.mb_per_sec(), through.mb_per_sec());
        println!(
            "round {round}: ceiling (one plain WebSocket hop) {ceiling:.0} MB/s, \
             relay (writer → engine → reader) {relay:.0} MB/s = {:.2} × ceiling ({:.0} MiB each; \
             CPU s per GiB, all processes: hop {:.2}, relay {:.2} of which engine {:.2})",
            relay / ceiling,
            bytes as f64 / MIB,
            hop.per_gib(hop.cpu),
            through.per_gib(through.cpu + engine_cpu),
            through.per_gib(engine_cpu),
        );
        ceilings.push(ceiling);
        relays.push(relay);
        ratios.push(relay / ceiling);
    }
    let (ceiling, relay, ratio) = (median(ceilings), median(relays), median(ratios));
    println!("median: ceiling {ceiling:.0} MB/s, relay {relay:.0} MB/s, ratio {ratio:.2}");
    Ok(vec![
        (
            "one-hop ceiling (median of 3)".into(),
            format!("{ceiling:.0} MB/s"),
            "—".into(),
        ),
        (
            "relay throughput (median of 3)".into(),
            format!("{relay:.0} MB/s ({ratio:.2} × ceiling)"),
            "≥ 0.8 × ceiling".into(),
        ),
    ])
}
