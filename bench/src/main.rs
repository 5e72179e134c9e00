//! `iii-bench`: measures the engine and the Rust channel client in separate processes and
//! prints the figures next to the ceiling measured in the same run (one plain
//! tokio-tungstenite hop of the same bytes).
//!
//! Run all of it with `cargo run --release -p iii-bench -- all` (about three minutes on two
//! cores), or one benchmark by name; `--quick` shrinks every size for a smoke run.

mod burst;
mod cluster;
mod http;
mod http_relay;
mod http_workers;
mod latency;
mod memory;
mod metrics;
mod plain_echo;
mod procs;
mod replicas;
mod scaling;
mod setups;
mod throughput;
mod tls;
mod workers;

use clap::{Parser, Subcommand};

pub(crate) const MIB: f64 = 1024.0 * 1024.0;

#[derive(Parser)]
#[command(version, about = "Benchmarks of the iii engine and channel client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every benchmark, then a Markdown table of the figures.
    All {
        /// Small sizes, for a smoke run.
        #[arg(long)]
        quick: bool,
    },
    /// One plain WebSocket hop (the ceiling) and the relay through the engine.
    Throughput {
        /// Bytes to stream.
        #[arg(long, default_value_t = 1 << 30)]
        bytes: u64,
    },
    /// Text message round trips through two channels, beside a plain WebSocket echo through a
    /// relay (two hops each way), and `trigger()` round trips between two Rust SDK processes.
    Latency {
        /// Round trips to time.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
    },
    /// Calls spread across two replicas of one function: least in flight against round robin,
    /// with equal replicas and with one ten times slower.
    Replicas {
        /// Calls per run (16 in flight).
        #[arg(long, default_value_t = 4000)]
        calls: usize,
        /// Runs of each case (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    #[command(hide = true)]
    ReplicaWorker {
        #[arg(long)]
        url: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        delay_us: u64,
    },
    /// Metrics on against off, alternating in one run: relay throughput, channel setups and
    /// trigger round trips (with /metrics scraped every second while on).
    Metrics {
        /// Bytes to stream per relay run.
        #[arg(long, default_value_t = 512 << 20)]
        bytes: u64,
        /// Setups, and round trips, per run.
        #[arg(long, default_value_t = 3000)]
        count: usize,
        /// Rounds (each runs both, in turn).
        #[arg(long, default_value_t = 4)]
        rounds: usize,
    },
    /// Three engines on one NATS (nats-server on PATH) against one node: relay, round trips,
    /// setups, many channels at once.
    Cluster {
        #[arg(long, default_value_t = 512 << 20)]
        bytes: u64,
        #[arg(long, default_value_t = 3000)]
        count: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// TLS against plain, alternating in one run: relay throughput and channel setups.
    Tls {
        /// Bytes to stream per relay run.
        #[arg(long, default_value_t = 512 << 20)]
        bytes: u64,
        /// Setups per run (serial).
        #[arg(long, default_value_t = 2000)]
        count: usize,
    },
    /// Channel setups per second, serial and 16 in flight.
    Setups {
        /// Setups per run.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
    },
    /// Engine RSS while a fast writer feeds a reader throttled to 10 MB/s.
    SlowReader {
        /// Bytes to stream.
        #[arg(long, default_value_t = 500_000_000)]
        bytes: u64,
    },
    /// Engine RSS before and after many channels.
    Churn {
        /// Channels to create and finish.
        #[arg(long, default_value_t = 100_000)]
        count: usize,
    },
    /// Engine RSS before, during and after a burst of 8 MiB calls and full channel buffers.
    Burst,
    /// HTTP triggers: a download through the engine and requests/s on a small route (wrk).
    Http {
        /// Bytes to download.
        #[arg(long, default_value_t = 1 << 30)]
        bytes: u64,
        /// Seconds of load per server.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// How cost grows: 1–4,096 concurrent channels, 1–1,000 connected workers, 1–256 calls
    /// in flight; `--json` writes the figures for `bench/scaling/plot.py`.
    Scaling {
        /// Bytes per channel run (split over its channels).
        #[arg(long, default_value_t = 1 << 30)]
        bytes: u64,
        /// Seconds of calls per call run.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
        seconds: u64,
        /// Fewer points (no 4,096 channels, no 1,000 workers), at most 256 MiB per channel
        /// run and 2 s per call run: a smoke run.
        #[arg(long)]
        quick: bool,
        /// Where to write the figures as JSON.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    #[command(hide = true)]
    ScaleWriter {
        #[arg(long)]
        url: String,
        #[arg(long)]
        refs_file: String,
        #[arg(long)]
        bytes: u64,
    },
    #[command(hide = true)]
    ScaleWorkers {
        #[arg(long)]
        url: String,
        #[arg(long)]
        count: usize,
    },
    #[command(hide = true)]
    HttpWorker {
        #[arg(long)]
        url: String,
    },
    #[command(hide = true)]
    PlainHttpServer,
    #[command(hide = true)]
    RelayHttpServer,
    #[command(hide = true)]
    RelayHttpAnswerer {
        #[arg(long)]
        url: String,
    },
    #[command(hide = true)]
    EngineProc {
        #[arg(long, default_value_t = 60)]
        tombstone_ttl_secs: u64,
        /// A directory with leaf.pem and leaf.key: serve wss:// and https://.
        #[arg(long)]
        tls_dir: Option<std::path::PathBuf>,
        /// `least-in-flight` or `round-robin`.
        #[arg(long, default_value = "least-in-flight")]
        replica_choice: String,
        /// Worker threads of the engine's runtime, as `iii --worker-threads`.
        #[arg(long, env = "III_BENCH_ENGINE_THREADS", default_value_t = iii_engine::DEFAULT_WORKER_THREADS)]
        threads: usize,
        /// Keep no metrics, as `iii --no-metrics`.
        #[arg(long)]
        no_metrics: bool,
        /// `NODE@NATS_URL`: join that cluster as NODE.
        #[arg(long)]
        cluster_node: Option<String>,
    },
    #[command(hide = true)]
    SinkServer,
    #[command(hide = true)]
    PlainRelay,
    #[command(hide = true)]
    PlainEcho {
        #[arg(long)]
        url: String,
    },
    #[command(hide = true)]
    TriggerHandler {
        #[arg(long)]
        url: String,
    },
    #[command(hide = true)]
    SetupSink,
    #[command(hide = true)]
    HopWriter {
        #[arg(long)]
        url: String,
        #[arg(long)]
        bytes: u64,
    },
    #[command(hide = true)]
    ChannelWriter {
        #[arg(long)]
        url: String,
        #[arg(long)]
        reference: String,
        #[arg(long)]
        bytes: u64,
    },
    #[command(hide = true)]
    ChannelReader {
        #[arg(long)]
        url: String,
        #[arg(long)]
        reference: String,
        #[arg(long)]
        throttle: Option<u64>,
    },
    #[command(hide = true)]
    Echo {
        #[arg(long)]
        url: String,
        #[arg(long)]
        reader_ref: String,
        #[arg(long)]
        writer_ref: String,
    },
}

fn main() {
    let cli = Cli::parse();
    // Logs only with RUST_LOG (on stderr; stdout carries the figures and child protocol).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let threads = match &cli.command {
        Command::EngineProc { threads, .. } => *threads,
        // A plain server on one thread, like the engine, for a fair ceiling.
        Command::PlainHttpServer | Command::RelayHttpServer | Command::PlainRelay => {
            iii_engine::DEFAULT_WORKER_THREADS
        }
        // The peers of a round trip, and the workers calls go to, run single-threaded runtimes
        // (so does the timed side, see `latency`): a second worker thread adds its own
        // wake-ups to each hop (BENCHMARKS.md).
        Command::PlainEcho { .. }
        | Command::Echo { .. }
        | Command::TriggerHandler { .. }
        | Command::ScaleWorkers { .. }
        | Command::ReplicaWorker { .. } => 1,
        _ => 2,
    };
    let runtime = iii_engine::build_runtime(threads);
    let outcome = match runtime {
        Ok(runtime) => runtime.block_on(run(cli.command)),
        Err(error) => Err(format!("tokio runtime: {error}")),
    };
    if let Err(error) = outcome {
        eprintln!("iii-bench: {error}");
        std::process::exit(1);
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::All { quick } => all(quick).await,
        Command::Throughput { bytes } => throughput::report(bytes).await.map(drop),
        Command::Latency { count } => latency::report(count as usize).await.map(drop),
        Command::Setups { count } => setups::report(count).await.map(drop),
        Command::SlowReader { bytes } => report_slow_reader(bytes).await.map(drop),
        Command::Churn { count } => report_churn(count).await.map(drop),
        Command::Burst => report_burst().await,
        Command::Http { bytes, seconds } => report_http(bytes, seconds).await.map(drop),
        Command::Scaling {
            bytes,
            seconds,
            quick,
            json,
        } => scaling::report(bytes, seconds, quick, json).await,
        Command::ScaleWriter {
            url,
            refs_file,
            bytes,
        } => scaling::scale_writer(&url, &refs_file, bytes).await,
        Command::ScaleWorkers { url, count } => scaling::scale_workers(&url, count).await,
        Command::HttpWorker { url } => http_workers::http_worker(&url).await,
        Command::PlainHttpServer => http_workers::plain_http_server().await,
        Command::RelayHttpServer => http_relay::relay_http_server().await,
        Command::RelayHttpAnswerer { url } => http_relay::relay_http_answerer(&url).await,
        Command::EngineProc {
            tombstone_ttl_secs,
            tls_dir,
            replica_choice,
            no_metrics,
            cluster_node,
            ..
        } => {
            let metrics = !no_metrics;
            let cluster = cluster_node.as_deref();
            workers::engine_proc(
                tombstone_ttl_secs,
                tls_dir,
                &replica_choice,
                metrics,
                cluster,
            )
            .await
        }
        Command::Replicas { calls, rounds } => replicas::report(calls, rounds).await.map(drop),
        Command::ReplicaWorker {
            url,
            name,
            delay_us,
        } => replicas::replica_worker(&url, &name, delay_us).await,
        Command::Cluster {
            bytes,
            count,
            rounds,
        } => cluster::report(bytes, count, rounds).await.map(drop),
        Command::Tls { bytes, count } => tls::report(bytes, count).await.map(drop),
        Command::Metrics {
            bytes,
            count,
            rounds,
        } => metrics::report(bytes, count, rounds).await.map(drop),
        Command::SinkServer => workers::sink_server().await,
        Command::PlainRelay => plain_echo::relay_server().await,
        Command::PlainEcho { url } => plain_echo::echo_client(&url).await,
        Command::TriggerHandler { url } => latency::trigger_handler(&url).await,
        Command::SetupSink => workers::setup_sink().await,
        Command::HopWriter { url, bytes } => workers::hop_writer(&url, bytes).await,
        Command::ChannelWriter {
            url,
            reference,
            bytes,
        } => workers::channel_writer(&url, &reference, bytes).await,
        Command::ChannelReader {
            url,
            reference,
            throttle,
        } => workers::channel_reader(&url, &reference, throttle).await,
        Command::Echo {
            url,
            reader_ref,
            writer_ref,
        } => workers::echo(&url, &reader_ref, &writer_ref).await,
    }
}

async fn all(quick: bool) -> Result<(), String> {
    let scale = |full: u64, small: u64| if quick { small } else { full };
    let mut rows = Vec::new();
    rows.extend(throughput::report(scale(1 << 30, 32 << 20)).await?);
    rows.extend(latency::report(scale(10_000, 500) as usize).await?);
    rows.extend(setups::report(scale(10_000, 500) as usize).await?);
    rows.extend(report_slow_reader(scale(500_000_000, 20_000_000)).await?);
    rows.extend(report_churn(scale(100_000, 2_000) as usize).await?);
    rows.extend(report_http(scale(1 << 30, 32 << 20), scale(10, 2)).await?);
    println!("\n| benchmark | figure | target |\n|---|---|---|");
    for (name, figure, target) in rows {
        println!("| {name} | {figure} | {target} |");
    }
    Ok(())
}

/// One line of the summary table: benchmark, figure, target.
pub type Row = (String, String, String);

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

async fn report_slow_reader(bytes: u64) -> Result<Vec<Row>, String> {
    let rate = 10_000_000;
    let figures = memory::slow_reader(bytes, rate).await?;
    let growth = |peak: u64, base: u64| peak.saturating_sub(base) as f64 / MIB;
    let total = growth(figures.peak.total, figures.baseline.total);
    let anon = growth(figures.peak.anon, figures.baseline.anon);
    let buffer = 64.0 * 64.0 * 1024.0 / MIB;
    println!(
        "slow reader ({} MB at 10 MB/s): engine RSS {:.1} → peak {:.1} MiB (+{total:.1} MiB), \
         anonymous {:.1} → {:.1} MiB (+{anon:.1} MiB); channel buffer {buffer:.0} MiB",
        bytes / 1_000_000,
        figures.baseline.total as f64 / MIB,
        figures.peak.total as f64 / MIB,
        figures.baseline.anon as f64 / MIB,
        figures.peak.anon as f64 / MIB,
    );
    Ok(vec![(
        format!(
            "engine RSS growth, {} MB into a 10 MB/s reader",
            bytes / 1_000_000
        ),
        format!("+{anon:.1} MiB anonymous (+{total:.1} MiB with code pages)"),
        format!("≤ 2 × buffer = {:.0} MiB", 2.0 * buffer),
    )])
}

async fn report_churn(count: usize) -> Result<Vec<Row>, String> {
    let figures = memory::many_channels(count).await?;
    let delta = |after: u64, base: u64| (after as f64 - base as f64) / MIB;
    let total = delta(figures.after.total, figures.baseline.total);
    let anon = delta(figures.after.anon, figures.baseline.anon);
    println!(
        "{count} channels: engine RSS {:.1} MiB before, peak {:.1} MiB, {:.1} MiB after ({total:+.1} MiB); \
         anonymous {:.1} → peak {:.1} → {:.1} MiB ({anon:+.1} MiB)",
        figures.baseline.total as f64 / MIB,
        figures.peak.total as f64 / MIB,
        figures.after.total as f64 / MIB,
        figures.baseline.anon as f64 / MIB,
        figures.peak.anon as f64 / MIB,
        figures.after.anon as f64 / MIB,
    );
    Ok(vec![(
        format!("engine RSS after {count} channels"),
        format!("{total:+.1} MiB vs baseline ({anon:+.1} MiB anonymous)"),
        "within 2 MiB".into(),
    )])
}

async fn report_burst() -> Result<(), String> {
    let figures = burst::burst().await?;
    let mib = |rss: procs::Rss| rss.total as f64 / MIB;
    let after: Vec<String> = (burst::AFTER.iter().zip(&figures.after))
        .map(|(at, rss)| format!("{:.1} MiB at +{:.1} s", mib(*rss), at.as_secs_f64()))
        .collect();
    println!(
        "burst: engine RSS {:.1} MiB before, peak {:.1} MiB, then {}; {:.1} MiB {:.0} s after its workers left",
        mib(figures.baseline),
        mib(figures.peak),
        after.join(", "),
        mib(figures.left),
        burst::LEFT.as_secs_f64(),
    );
    Ok(())
}

async fn report_http(bytes: u64, seconds: u64) -> Result<Vec<Row>, String> {
    let figures = http::http_figures(bytes, seconds).await?;
    let ratio = figures.download / figures.download_ceiling;
    println!(
        "http download ({:.0} MiB): plain hyper server {:.0} MB/s, two plain hops {:.0} MB/s = {:.2} ×, through the engine {:.0} MB/s = {ratio:.2} × (engine CPU {:.2} s per GiB)",
        bytes as f64 / MIB,
        figures.download_ceiling,
        figures.download_two_hops,
        figures.download_two_hops / figures.download_ceiling,
        figures.download,
        figures.engine_cpu_per_gib
    );
    let mut rows = vec![
        (
            "HTTP download, plain hyper server (ceiling)".into(),
            format!("{:.0} MB/s", figures.download_ceiling),
            "—".into(),
        ),
        (
            "HTTP download, two plain hops (hyper ← WebSocket peer)".into(),
            format!(
                "{:.0} MB/s ({:.2} × ceiling)",
                figures.download_two_hops,
                figures.download_two_hops / figures.download_ceiling
            ),
            "—".into(),
        ),
        (
            format!(
                "HTTP download of {:.0} MiB through the engine",
                bytes as f64 / MIB
            ),
            format!("{:.0} MB/s ({ratio:.2} × ceiling)", figures.download),
            "≥ 0.8 × ceiling".into(),
        ),
    ];
    match figures.requests {
        Some(rates) => {
            let (plain, two_hops, engine) = (rates.plain, rates.two_hops, rates.engine);
            println!(
                "requests/s, 64 connections ({seconds} s of wrk each): plain hyper server {plain:.0}/s, two plain hops {two_hops:.0}/s = {:.2} ×, through the engine {engine:.0}/s = {:.2} ×",
                two_hops / plain,
                engine / plain
            );
            rows.push((
                "small plain-result route, 64 connections, plain hyper (ceiling)".into(),
                format!("{plain:.0} req/s"),
                "—".into(),
            ));
            rows.push((
                "small plain-result route, 64 connections, two plain hops".into(),
                format!("{two_hops:.0} req/s ({:.2} × ceiling)", two_hops / plain),
                "—".into(),
            ));
            rows.push((
                "small plain-result route, 64 connections, through the engine".into(),
                format!("{engine:.0} req/s ({:.2} × ceiling)", engine / plain),
                "≥ 0.5 × ceiling".into(),
            ));
        }
        None => println!("requests/s: skipped, wrk is not installed (apt-get install wrk)"),
    }
    Ok(rows)
}
