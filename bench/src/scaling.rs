//! How cost grows: the engine under many channels at once, many connected workers, and many
//! calls in flight. Each point is measured in separate processes (engine, a writer or worker
//! process, and this one), and the figures go to a JSON file that `bench/scaling/plot.py` turns
//! into the pictures in `BENCHMARKS.md` (`bench/scaling/run.sh` does both).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use iii_sdk::{ChannelWriter, III, RegisterFunction, StreamChannelRef, TriggerRequest};
use serde::Serialize;

use crate::latency::{NOOP_FUNCTION, expect_line};
use crate::procs::{ChildProc, EngineProc};
use crate::workers::{FRAME, frame};

/// One run with `channels` channels streaming at once.
#[derive(Debug, Serialize)]
pub struct ChannelPoint {
    /// Channels streaming at the same time.
    pub channels: usize,
    /// Bytes sent over all of them.
    pub total_bytes: u64,
    /// Aggregate throughput: the bytes sent after every channel was open and streaming, over
    /// the time until the last channel ended.
    pub mb_per_s: f64,
    /// The slowest channel's throughput over the fastest's, each from the common start to
    /// its own end (1 = perfectly even). All carry the same bytes, so this is also the
    /// earliest finish time over the latest.
    pub fairness: f64,
    /// Engine CPU seconds per GiB relayed.
    pub engine_cpu_s_per_gib: f64,
    /// Engine RSS before the channels were created, in MiB.
    pub engine_rss_before_mib: f64,
    /// Highest engine RSS while they streamed, in MiB.
    pub engine_rss_peak_mib: f64,
}

/// Calls per second with `workers` workers connected, calls spread over all of them.
#[derive(Debug, Serialize)]
pub struct WorkerPoint {
    /// Connected workers (each serving one function).
    pub workers: usize,
    /// Calls per second, 16 in flight, each to the next worker's function.
    pub calls_per_s: f64,
    /// Engine CPU microseconds per call.
    pub engine_cpu_us_per_call: f64,
    /// Engine RSS with the workers connected, in MiB.
    pub engine_rss_mib: f64,
}

/// Calls per second with `in_flight` calls outstanding at a time.
#[derive(Debug, Serialize)]
pub struct InFlightPoint {
    /// Calls outstanding at a time.
    pub in_flight: usize,
    /// Calls per second.
    pub calls_per_s: f64,
    /// Engine CPU microseconds per call.
    pub engine_cpu_us_per_call: f64,
}

/// Everything [`run`] measured.
#[derive(Debug, Serialize)]
pub struct Scaling {
    /// By concurrent channels.
    pub channels: Vec<ChannelPoint>,
    /// By connected workers.
    pub workers: Vec<WorkerPoint>,
    /// By calls in flight.
    pub in_flight: Vec<InFlightPoint>,
}

const MIB: f64 = 1024.0 * 1024.0;

/// Measures everything, prints each point, and writes the figures to `json` if given.
pub async fn report(
    bytes: u64,
    seconds: u64,
    quick: bool,
    json: Option<std::path::PathBuf>,
) -> Result<(), String> {
    let (bytes, seconds) = if quick {
        (bytes.min(256 << 20), seconds.min(2))
    } else {
        (bytes, seconds)
    };
    let figures = run(bytes, seconds, quick).await?;
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&figures).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}

/// Measures every point: `total` bytes per channel run, `seconds` of calls per call run.
pub async fn run(total: u64, seconds: u64, quick: bool) -> Result<Scaling, String> {
    let channel_counts: &[usize] = if quick {
        &[1, 16, 256]
    } else {
        &[1, 16, 256, 4096]
    };
    let worker_counts: &[usize] = if quick { &[1, 100] } else { &[1, 100, 1000] };
    let most = channel_counts.iter().max().copied().unwrap_or(1);
    // The engine (a child, with this process's limits) holds two sockets per channel.
    check_open_files(2 * most + 256)?;
    if total / most as u64 <= FRAME as u64 {
        return Err(format!(
            "--bytes {total} leaves {most} channels one frame or less each: give at least {} bytes",
            2 * FRAME as u64 * most as u64
        ));
    }
    let mut scaling = Scaling {
        channels: Vec::new(),
        workers: Vec::new(),
        in_flight: Vec::new(),
    };
    for &channels in channel_counts {
        let point = channel_point(channels, total).await?;
        println!(
            "{channels} channels: {:.0} MB/s, slowest/fastest {:.2}, engine {:.2} CPU s per GiB, RSS {:.1} → peak {:.1} MiB",
            point.mb_per_s,
            point.fairness,
            point.engine_cpu_s_per_gib,
            point.engine_rss_before_mib,
            point.engine_rss_peak_mib
        );
        scaling.channels.push(point);
    }
    for &workers in worker_counts {
        let point = worker_point(workers, seconds).await?;
        println!(
            "{workers} workers: {:.0} calls/s (16 in flight), engine {:.1} µs CPU per call, RSS {:.1} MiB",
            point.calls_per_s, point.engine_cpu_us_per_call, point.engine_rss_mib
        );
        scaling.workers.push(point);
    }
    let engine = EngineProc::start(60).await?;
    let mut handler =
        ChildProc::spawn(&["trigger-handler".into(), "--url".into(), engine.url.clone()])?;
    expect_line(&mut handler, "READY").await?;
    let iii = iii_sdk::register_worker(&engine.url);
    for in_flight in [1, 16, 256] {
        let noop = |_| NOOP_FUNCTION.to_string();
        let calls = calls_for(&iii, in_flight, seconds, &engine, noop).await?;
        let point = InFlightPoint {
            in_flight,
            calls_per_s: calls.per_second,
            engine_cpu_us_per_call: calls.engine_cpu_us_per_call,
        };
        println!(
            "{in_flight} calls in flight: {:.0} calls/s, engine {:.1} µs CPU per call",
            point.calls_per_s, point.engine_cpu_us_per_call
        );
        scaling.in_flight.push(point);
    }
    iii.shutdown();
    Ok(scaling)
}

/// `channels` channels created here, written by a writer process, read here, all at once.
async fn channel_point(channels: usize, total: u64) -> Result<ChannelPoint, String> {
    let engine = EngineProc::start(60).await?;
    let iii = iii_sdk::register_worker(&engine.url);
    let before = engine.rss();
    let per_channel = (total / channels as u64).max(FRAME as u64);
    let mut readers = Vec::with_capacity(channels);
    let mut refs = Vec::with_capacity(channels);
    for _ in 0..channels {
        let channel = iii.create_channel(None).await.map_err(|e| e.to_string())?;
        refs.push(channel.writer_ref);
        readers.push(channel.reader);
    }
    let refs_file =
        TempFile(std::env::temp_dir().join(format!("iii-bench-refs-{}.json", std::process::id())));
    let refs_json = serde_json::to_string(&refs).map_err(|e| e.to_string())?;
    std::fs::write(&refs_file.0, refs_json).map_err(|e| format!("refs file: {e}"))?;

    // Every socket is opened, and one frame per channel has arrived, before the clock starts:
    // the figures are about streaming at once, not about connecting.
    let mut writer = ChildProc::spawn_with_stdin(
        &[
            "scale-writer".into(),
            "--url".into(),
            engine.url.clone(),
            "--refs-file".into(),
            refs_file.0.display().to_string(),
            "--bytes".into(),
            per_channel.to_string(),
        ],
        std::process::Stdio::piped(),
    )?;
    let mut go = writer.child.stdin.take().ok_or("the writer has no stdin")?;
    let mut opened = Vec::with_capacity(channels);
    for reader in readers {
        let first = tokio::time::timeout(Duration::from_secs(120), reader.next_binary())
            .await
            .map_err(|_| "a channel's first frame did not arrive")?
            .map_err(|e| e.to_string())?
            .ok_or("a channel ended before its first frame")?;
        opened.push((reader, first.len() as u64));
    }
    expect_line(&mut writer, "OPEN").await?;
    let cpu = engine.cpu_seconds();
    let started = Instant::now();
    tokio::io::AsyncWriteExt::write_all(&mut go, b"GO\n")
        .await
        .map_err(|e| format!("starting the writer: {e}"))?;
    let reading: Vec<_> = opened
        .into_iter()
        .map(|(reader, first)| {
            tokio::spawn(async move {
                let mut bytes = 0u64;
                while let Some(chunk) = reader.next_binary().await.map_err(|e| e.to_string())? {
                    bytes += chunk.len() as u64;
                }
                Ok::<_, String>((first, bytes, started.elapsed()))
            })
        })
        .collect();
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicU64::new(before.total));
    let sampler = {
        let (sampling, peak) = (sampling.clone(), peak.clone());
        let pid = engine.pid();
        tokio::spawn(async move {
            while sampling.load(Ordering::Acquire) {
                if let Some(rss) = pid.and_then(|pid| crate::procs::status_bytes(pid, "VmRSS")) {
                    peak.fetch_max(rss, Ordering::AcqRel);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut rates = Vec::with_capacity(channels);
    let mut received = 0u64;
    let mut timed = 0u64;
    let mut last = Duration::ZERO;
    for task in reading {
        let (first, bytes, elapsed) = tokio::time::timeout(Duration::from_secs(600), task)
            .await
            .map_err(|_| "a channel did not finish in time")?
            .map_err(|e| e.to_string())??;
        if first + bytes != per_channel {
            return Err(format!(
                "a channel carried {} of {per_channel} bytes",
                first + bytes
            ));
        }
        received += first + bytes;
        timed += bytes;
        last = last.max(elapsed);
        rates.push(bytes as f64 / elapsed.as_secs_f64());
    }
    sampling.store(false, Ordering::Release);
    let _ = sampler.await;
    let status = writer.child.wait().await.map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the writer process failed: {status}"));
    }
    let cpu = engine.cpu_seconds() - cpu;
    iii.shutdown();
    let (slowest, fastest) = rates
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    Ok(ChannelPoint {
        channels,
        total_bytes: received,
        mb_per_s: timed as f64 / 1e6 / last.as_secs_f64(),
        fairness: if fastest > 0.0 {
            slowest / fastest
        } else {
            0.0
        },
        engine_cpu_s_per_gib: cpu / (timed as f64 / (1u64 << 30) as f64),
        engine_rss_before_mib: before.total as f64 / MIB,
        engine_rss_peak_mib: peak.load(Ordering::Acquire) as f64 / MIB,
    })
}

/// Writes `bytes` to each writer ref in `refs_file`: one frame each to open the sockets, then
/// (after `OPEN` is printed and a line arrives on stdin) the rest, all at once, then closes.
pub async fn scale_writer(url: &str, refs_file: &str, bytes: u64) -> Result<(), String> {
    let text = std::fs::read_to_string(refs_file).map_err(|e| format!("refs file: {e}"))?;
    let refs: Vec<StreamChannelRef> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let piece = frame();
    let first = (FRAME as u64).min(bytes) as usize;
    let mut writers = Vec::with_capacity(refs.len());
    for channel_ref in refs {
        let writer = ChannelWriter::new(url, &channel_ref);
        writer
            .write_bytes(piece.slice(..first))
            .await
            .map_err(|e| format!("first write: {e}"))?;
        writers.push(writer);
    }
    println!("OPEN");
    let mut go = String::new();
    tokio::io::AsyncBufReadExt::read_line(
        &mut tokio::io::BufReader::new(tokio::io::stdin()),
        &mut go,
    )
    .await
    .map_err(|e| format!("stdin: {e}"))?;
    let writing: Vec<_> = writers
        .into_iter()
        .map(|writer| {
            let piece = piece.clone();
            tokio::spawn(async move {
                let mut left = bytes - first as u64;
                while left > 0 {
                    let len = (FRAME as u64).min(left) as usize;
                    writer.write_bytes(piece.slice(..len)).await?;
                    left -= len as u64;
                }
                writer.close().await
            })
        })
        .collect();
    for task in writing {
        task.await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("write: {e}"))?;
    }
    Ok(())
}

/// Calls per second with `workers` workers connected (in one worker process).
async fn worker_point(workers: usize, seconds: u64) -> Result<WorkerPoint, String> {
    let engine = EngineProc::start(60).await?;
    let mut pool = ChildProc::spawn(&[
        "scale-workers".into(),
        "--url".into(),
        engine.url.clone(),
        "--count".into(),
        workers.to_string(),
    ])?;
    expect_line(&mut pool, "READY").await?;
    let iii = iii_sdk::register_worker(&engine.url);
    let rss = engine.rss();
    let count = workers as u64;
    let spread = move |n| worker_function((n % count) as usize);
    let calls = calls_for(&iii, 16, seconds, &engine, spread).await?;
    iii.shutdown();
    Ok(WorkerPoint {
        workers,
        calls_per_s: calls.per_second,
        engine_cpu_us_per_call: calls.engine_cpu_us_per_call,
        engine_rss_mib: rss.total as f64 / MIB,
    })
}

fn worker_function(index: usize) -> String {
    format!("scale::w{index}")
}

/// Connects `count` workers, each serving `scale::w<i>` (a no-op); prints `READY` once the
/// engine has every registration, then serves until killed.
pub async fn scale_workers(url: &str, count: usize) -> Result<(), String> {
    let mut workers: Vec<III> = Vec::with_capacity(count);
    for index in 0..count {
        let iii = iii_sdk::register_worker(url);
        iii.register_function(RegisterFunction::new_async(
            worker_function(index),
            |input| async move { Ok(input) },
        ));
        workers.push(iii);
    }
    for iii in &workers {
        tokio::time::timeout(Duration::from_secs(60), iii.ready())
            .await
            .map_err(|_| "a worker did not connect")?
            .map_err(|e| e.to_string())?;
    }
    println!("READY");
    std::future::pending::<()>().await;
    Ok(())
}

/// What a run of calls measured.
struct Calls {
    per_second: f64,
    engine_cpu_us_per_call: f64,
}

/// Calls `function(n)` for `seconds`, `in_flight` at a time, after a warm-up of 10 calls per
/// lane (connections made, every function called once at least in the worker runs).
async fn calls_for(
    iii: &III,
    in_flight: usize,
    seconds: u64,
    engine: &EngineProc,
    function: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Result<Calls, String> {
    let function = Arc::new(function);
    let next = Arc::new(AtomicU64::new(0));
    let run = |until: Option<Instant>, per_lane: u64| {
        (0..in_flight)
            .map(|_| {
                let (iii, function, next) = (iii.clone(), function.clone(), next.clone());
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while until.map_or(done < per_lane, |until| Instant::now() < until) {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let request = TriggerRequest::new(function(n), serde_json::json!({"n": n}));
                        iii.trigger(request).await.map_err(|e| e.to_string())?;
                        done += 1;
                    }
                    Ok::<_, String>(done)
                })
            })
            .collect::<Vec<_>>()
    };
    for lane in run(None, 10) {
        lane.await.map_err(|e| e.to_string())??;
    }
    let cpu = engine.cpu_seconds();
    let started = Instant::now();
    let mut total = 0u64;
    for lane in run(Some(started + Duration::from_secs(seconds)), 0) {
        total += lane.await.map_err(|e| e.to_string())??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Calls {
        per_second: total as f64 / elapsed,
        engine_cpu_us_per_call: (engine.cpu_seconds() - cpu) * 1e6 / total.max(1) as f64,
    })
}

/// A file deleted when dropped (also on the error paths).
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Fails with advice when this process may open fewer than `needed` files.
fn check_open_files(needed: usize) -> Result<(), String> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse::<usize>().ok());
    match soft {
        Some(soft) if soft < needed => Err(format!(
            "{needed} open files are needed and the limit is {soft}: raise it (ulimit -n {needed})"
        )),
        _ => Ok(()),
    }
}
