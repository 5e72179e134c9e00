//! Metrics on against off, in one run: relay throughput (writer process → engine → reader
//! process, as `throughput`), serial channel setups (as `setups`) and `trigger()` round trips
//! (as `latency`), on an engine keeping metrics — scraped every second meanwhile, far more
//! often than Prometheus would — and on one started with `--no-metrics`, alternating round by
//! round so both see the same machine. Each figure's spread across the rounds of one kind is
//! printed beside it: that is the noise the difference is judged against.

use std::time::Duration;

use crate::procs::EngineProc;
use crate::{MIB, Row, latency, median, setups};

/// Keeps scraping `/metrics` on the engine at `url` every second until dropped; counts scrapes.
struct Scraper {
    task: tokio::task::JoinHandle<()>,
    done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Scraper {
    fn start(url: &str) -> Self {
        let url = url.to_string();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = done.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok((status, _)) = iii_engine::inspect::get(&url, "/metrics").await
                    && status.is_success()
                {
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Self { task, done }
    }

    fn stop(self) -> usize {
        self.task.abort();
        self.done.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The spread of `values` (max − min) as a share of their median.
fn spread(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    (max - min) / median(values.to_vec())
}

/// Runs the comparison; its rows for the summary table.
pub async fn report(bytes: u64, count: usize, rounds: usize) -> Result<Vec<Row>, String> {
    let mut relays = [Vec::new(), Vec::new()];
    let mut setup_rates = [Vec::new(), Vec::new()];
    let mut p50s = [Vec::new(), Vec::new()];
    for round in 1..=rounds.max(1) {
        for (kind, extra) in [("on", &[][..]), ("off", &["--no-metrics".to_string()][..])] {
            let at = usize::from(kind == "off");
            let engine = EngineProc::start_with(60, extra).await?;
            let scraper = (kind == "on").then(|| Scraper::start(&engine.url));
            let (relay, rate) = setups::relay_and_setups(&engine, kind, bytes, count).await?;
            let trips = latency::trigger_round_trips_on(engine.url.clone(), count).await?;
            let scrapes = scraper.map_or(0, Scraper::stop);
            println!(
                "round {round} metrics {kind:>3}: relay {:.0} MB/s ({:.0} MiB), setups {rate:.0}/s, \
                 trigger p50 {:.0} µs p99 {:.0} µs, {scrapes} scrapes",
                relay,
                bytes as f64 / MIB,
                trips.p50_us,
                trips.p99_us,
            );
            relays[at].push(relay);
            setup_rates[at].push(rate);
            p50s[at].push(trips.p50_us);
        }
    }
    let noise = |pair: &[Vec<f64>; 2]| spread(&pair[0]).max(spread(&pair[1])) * 100.0;
    let rows = [
        ("relay MB/s", &relays),
        ("setups/s", &setup_rates),
        ("trigger p50 µs", &p50s),
    ];
    let mut table = Vec::new();
    for (name, pair) in rows {
        let (on, off) = (median(pair[0].clone()), median(pair[1].clone()));
        println!(
            "{name}: on {on:.0}, off {off:.0} ({:.3} ×); noise (spread across rounds) {:.0} %",
            on / off,
            noise(pair)
        );
        table.push((
            format!("{name}, metrics on against off"),
            format!("{on:.0} vs {off:.0} ({:.3} ×)", on / off),
            format!("noise {:.0} %", noise(pair)),
        ));
    }
    Ok(table)
}
