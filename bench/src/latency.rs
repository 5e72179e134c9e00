//! Text-message round trip: this process sends a message on one channel, an echo process
//! sends it back on a second channel; four WebSocket hops through the engine per round trip.

use crate::procs::{ChildProc, EngineProc};
use std::time::{Duration, Instant};

/// Round-trip percentiles in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct RoundTrips {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// How many round trips were timed.
    pub count: usize,
}

/// Times `count` round trips after a short warm-up.
pub async fn message_round_trips(count: usize) -> Result<RoundTrips, String> {
    let engine = EngineProc::start(60).await?;
    let iii = iii_sdk::register_worker(&engine.url);
    let there = iii.create_channel(None).await.map_err(|e| e.to_string())?;
    let back = iii.create_channel(None).await.map_err(|e| e.to_string())?;
    let mut echo = ChildProc::spawn(&[
        "echo".into(),
        "--url".into(),
        engine.url.clone(),
        "--reader-ref".into(),
        serde_json::to_string(&there.reader_ref).map_err(|e| e.to_string())?,
        "--writer-ref".into(),
        serde_json::to_string(&back.writer_ref).map_err(|e| e.to_string())?,
    ])?;
    echo.line(Duration::from_secs(30)).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    back.reader
        .on_message(move |text| {
            let _ = tx.send(text);
        })
        .await;
    let warmup = 200;
    let mut samples = Vec::with_capacity(count);
    for i in 0..warmup + count {
        let text = format!("{{\"seq\":{i}}}");
        let started = Instant::now();
        there
            .writer
            .send_message(&text)
            .await
            .map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .map_err(|_| "echo timed out")?
            .ok_or("echo channel ended")?;
        if answer != text {
            return Err(format!("echo returned {answer}, sent {text}"));
        }
        if i >= warmup {
            samples.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    there
        .writer
        .send_message("STOP")
        .await
        .map_err(|e| e.to_string())?;
    let _ = echo.child.wait().await;
    iii.shutdown();
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Ok(RoundTrips {
        p50_us: pick(0.50),
        p99_us: pick(0.99),
        count,
    })
}
