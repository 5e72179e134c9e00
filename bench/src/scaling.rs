//! How cost grows: the engine under many channels at once, many connected workers, and many
//! calls in flight. Each point is measured in separate processes (engine, a writer or worker
//! process, and this one), and the figures go to a JSON file that `bench/scaling/plot.py` turns
//! into the pictures in `BENCHMARKS.md` (`bench/scaling/run.sh` does both).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use iii_sdk::{ChannelWriter, III, RegisterFunction, StreamChannelRef, TriggerRequest};
use serde::Serialize;

use crate::latency::NOOP_FUNCTION;
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
    /// The slowest channel's throughput over the fastest's (1 = perfectly even).
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

/// Measures every point: `total` bytes per channel run, `seconds` of calls per call run.
pub async fn run(total: u64, seconds: u64, quick: bool) -> Result<Scaling, String> {
    let channel_counts: &[usize] = if quick {
        &[1, 16, 256]
    } else {
        &[1, 16, 256, 4096]
    };
    let worker_counts: &[usize] = if quick { &[1, 100] } else { &[1, 100, 1000] };
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
    handler.line(Duration::from_secs(30)).await?;
    let iii = iii_sdk::register_worker(&engine.url);
    for in_flight in [1, 16, 256] {
        let cpu = engine.cpu_seconds();
        let calls = calls_for(&iii, in_flight, seconds, |_| NOOP_FUNCTION.to_string()).await?;
        let per_call = (engine.cpu_seconds() - cpu) * 1e6 / calls.max(1) as f64;
        let point = InFlightPoint {
            in_flight,
            calls_per_s: calls as f64 / seconds as f64,
            engine_cpu_us_per_call: per_call,
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
        std::env::temp_dir().join(format!("iii-bench-refs-{}.json", std::process::id()));
    let refs_json = serde_json::to_string(&refs).map_err(|e| e.to_string())?;
    std::fs::write(&refs_file, refs_json).map_err(|e| format!("refs file: {e}"))?;

    // Every socket is opened, and one frame per channel has arrived, before the clock starts:
    // the figures are about streaming at once, not about connecting.
    let mut writer = ChildProc::spawn_with_stdin(
        &[
            "scale-writer".into(),
            "--url".into(),
            engine.url.clone(),
            "--refs-file".into(),
            refs_file.display().to_string(),
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
    let line = writer.line(Duration::from_secs(120)).await?;
    if line != "OPEN" {
        return Err(format!("unexpected writer output: {line}"));
    }
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
    let _ = std::fs::remove_file(&refs_file);
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
    pool.line(Duration::from_secs(120)).await?;
    let iii = iii_sdk::register_worker(&engine.url);
    let rss = engine.rss();
    let cpu = engine.cpu_seconds();
    let count = workers as u64;
    let calls = calls_for(&iii, 16, seconds, move |n| {
        worker_function((n % count) as usize)
    })
    .await?;
    let per_call = (engine.cpu_seconds() - cpu) * 1e6 / calls.max(1) as f64;
    iii.shutdown();
    Ok(WorkerPoint {
        workers,
        calls_per_s: calls as f64 / seconds as f64,
        engine_cpu_us_per_call: per_call,
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

/// Calls `function(n)` for `seconds`, `in_flight` at a time; returns the calls completed.
async fn calls_for(
    iii: &III,
    in_flight: usize,
    seconds: u64,
    function: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Result<u64, String> {
    let function = Arc::new(function);
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let lanes: Vec<_> = (0..in_flight)
        .map(|_| {
            let (iii, function, next) = (iii.clone(), function.clone(), next.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let request = TriggerRequest::new(function(n), serde_json::json!({"n": n}));
                    iii.trigger(request).await.map_err(|e| e.to_string())?;
                    done += 1;
                }
                Ok::<_, String>(done)
            })
        })
        .collect();
    let mut total = 0;
    for lane in lanes {
        total += lane.await.map_err(|e| e.to_string())??;
    }
    Ok(total)
}
