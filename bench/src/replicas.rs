//! How the engine spreads calls across the replicas of one function: two replica processes
//! serve `bench::replica` (each handler waits a fixed time, as a worker doing I/O would), a
//! caller keeps 16 calls in flight, and the engine picks replicas by least in flight or in
//! turn. Equal replicas show the spread is even; a replica ten times slower shows what each
//! choice does with it.

use std::time::{Duration, Instant};

use iii_sdk::{RegisterFunction, TriggerRequest};
use serde_json::{Value, json};

use crate::latency::expect_line;
use crate::procs::{ChildProc, EngineProc};
use crate::{Row, median};

const FUNCTION: &str = "bench::replica";
const IN_FLIGHT: usize = 16;

/// A replica process: serves `FUNCTION`, each call taking `delay_us`, answering its name.
pub async fn replica_worker(url: &str, name: &str, delay_us: u64) -> Result<(), String> {
    let iii = iii_sdk::register_worker(url);
    let name = name.to_string();
    iii.register_function(RegisterFunction::new_async(
        FUNCTION,
        move |_input: Value| {
            let name = name.clone();
            async move {
                tokio::time::sleep(Duration::from_micros(delay_us)).await;
                Ok(json!(name))
            }
        },
    ));
    crate::latency::serve_until_killed(&iii).await
}

/// What one run measured.
struct Spread {
    calls_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    fast_share: f64,
}

async fn run(choice: &str, delays_us: [u64; 2], calls: usize) -> Result<Spread, String> {
    let extra = ["--replica-choice".to_string(), choice.to_string()];
    let engine = EngineProc::start_with(60, &extra).await?;
    let mut replicas = Vec::new();
    for (name, delay) in ["fast", "slow"].into_iter().zip(delays_us) {
        let mut child = ChildProc::spawn(&[
            "replica-worker".into(),
            "--url".into(),
            engine.url.clone(),
            "--name".into(),
            name.into(),
            "--delay-us".into(),
            delay.to_string(),
        ])?;
        expect_line(&mut child, "READY").await?;
        replicas.push(child);
    }
    let iii = iii_sdk::register_worker(&engine.url);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let iii = iii.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..calls / IN_FLIGHT {
                let sent = Instant::now();
                let answer = iii
                    .trigger(TriggerRequest::new(FUNCTION, json!({})))
                    .await
                    .map_err(|e| e.to_string())?;
                seen.push((sent.elapsed().as_secs_f64() * 1e3, answer == json!("fast")));
            }
            Ok::<_, String>(seen)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    let secs = started.elapsed().as_secs_f64();
    iii.shutdown();
    let fast = all.iter().filter(|(_, fast)| *fast).count();
    let mut latencies: Vec<f64> = all.iter().map(|(ms, _)| *ms).collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len() - 1))
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Spread {
        calls_per_sec: all.len() as f64 / secs,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        fast_share: fast as f64 / all.len().max(1) as f64,
    })
}

/// Both choices on equal replicas (1 ms each) and on unequal ones (1 ms and 10 ms), `rounds`
/// times alternating; medians.
pub async fn report(calls: usize, rounds: usize) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (label, delays) in [
        ("equal replicas (1 ms, 1 ms)", [1000, 1000]),
        ("one slow replica (1 ms, 10 ms)", [1000, 10_000]),
    ] {
        for choice in ["least-in-flight", "round-robin"] {
            let mut runs = Vec::new();
            for _ in 0..rounds {
                runs.push(run(choice, delays, calls).await?);
            }
            let pick = |f: fn(&Spread) -> f64| median(runs.iter().map(f).collect());
            let (rate, p50, p99, share) = (
                pick(|s| s.calls_per_sec),
                pick(|s| s.p50_ms),
                pick(|s| s.p99_ms),
                pick(|s| s.fast_share),
            );
            println!(
                "{label}, {choice}: {rate:.0} calls/s, p50 {p50:.2} ms, p99 {p99:.2} ms, {:.0} % to the fast replica",
                share * 100.0
            );
            rows.push((
                format!("replicas: {label}, {choice}"),
                format!(
                    "{rate:.0} calls/s, p99 {p99:.1} ms, {:.0} % to the fast one",
                    share * 100.0
                ),
                "—".into(),
            ));
        }
    }
    Ok(rows)
}
