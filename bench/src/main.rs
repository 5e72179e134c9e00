//! `iii-bench`: measures the engine and the Rust channel client in separate processes and
//! prints the figures next to the ceiling measured in the same run (one plain
//! tokio-tungstenite hop of the same bytes).
//!
//! Run all of it with `cargo run --release -p iii-bench -- all` (about three minutes on two
//! cores), or one benchmark by name; `--quick` shrinks every size for a smoke run.

mod latency;
mod memory;
mod procs;
mod setups;
mod throughput;
mod workers;

use clap::{Parser, Subcommand};

const MIB: f64 = 1024.0 * 1024.0;

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
    /// Text message round trips through two channels.
    Latency {
        /// Round trips to time.
        #[arg(long, default_value_t = 10_000)]
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
    #[command(hide = true)]
    EngineProc {
        #[arg(long, default_value_t = 60)]
        tombstone_ttl_secs: u64,
    },
    #[command(hide = true)]
    SinkServer,
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

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli.command).await {
        eprintln!("iii-bench: {error}");
        std::process::exit(1);
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::All { quick } => all(quick).await,
        Command::Throughput { bytes } => report_throughput(bytes).await.map(drop),
        Command::Latency { count } => report_latency(count).await.map(drop),
        Command::Setups { count } => report_setups(count).await.map(drop),
        Command::SlowReader { bytes } => report_slow_reader(bytes).await.map(drop),
        Command::Churn { count } => report_churn(count).await.map(drop),
        Command::EngineProc { tombstone_ttl_secs } => {
            workers::engine_proc(tombstone_ttl_secs).await
        }
        Command::SinkServer => workers::sink_server().await,
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
    rows.extend(report_throughput(scale(1 << 30, 32 << 20)).await?);
    rows.extend(report_latency(scale(10_000, 500) as usize).await?);
    rows.extend(report_setups(scale(10_000, 500) as usize).await?);
    rows.extend(report_slow_reader(scale(500_000_000, 20_000_000)).await?);
    rows.extend(report_churn(scale(100_000, 2_000) as usize).await?);
    println!("\n| benchmark | figure | target |\n|---|---|---|");
    for (name, figure, target) in rows {
        println!("| {name} | {figure} | {target} |");
    }
    Ok(())
}

type Row = (String, String, String);

async fn report_throughput(bytes: u64) -> Result<Vec<Row>, String> {
    let ceiling = throughput::ceiling(bytes).await?;
    println!(
        "ceiling (one plain WebSocket hop): {:.0} MiB in {:.2} s = {:.0} MB/s",
        bytes as f64 / MIB,
        ceiling.secs,
        ceiling.mb_per_sec()
    );
    let relay = throughput::relay(bytes).await?;
    let ratio = relay.mb_per_sec() / ceiling.mb_per_sec();
    println!(
        "relay (writer → engine → reader): {:.0} MiB in {:.2} s = {:.0} MB/s = {ratio:.2} × ceiling",
        bytes as f64 / MIB,
        relay.secs,
        relay.mb_per_sec()
    );
    Ok(vec![
        (
            "one-hop ceiling".into(),
            format!("{:.0} MB/s", ceiling.mb_per_sec()),
            "—".into(),
        ),
        (
            "relay throughput".into(),
            format!("{:.0} MB/s ({ratio:.2} × ceiling)", relay.mb_per_sec()),
            "≥ 0.8 × ceiling".into(),
        ),
    ])
}

async fn report_latency(count: usize) -> Result<Vec<Row>, String> {
    let trips = latency::message_round_trips(count).await?;
    println!(
        "message round trip ({} trips): p50 {:.0} µs, p99 {:.0} µs",
        trips.count, trips.p50_us, trips.p99_us
    );
    Ok(vec![(
        "text message round trip".into(),
        format!("p50 {:.0} µs, p99 {:.0} µs", trips.p50_us, trips.p99_us),
        "—".into(),
    )])
}

async fn report_setups(count: usize) -> Result<Vec<Row>, String> {
    let engine = procs::EngineProc::start(60).await?;
    let iii = iii_sdk::register_worker(&engine.url);
    setups::setups_per_sec(&iii, 200, 1).await?;
    let serial = setups::setups_per_sec(&iii, count, 1).await?;
    let parallel = setups::setups_per_sec(&iii, count, 16).await?;
    iii.shutdown();
    println!("channel setups: {serial:.0}/s serial, {parallel:.0}/s with 16 in flight");
    Ok(vec![
        (
            "channel setups, serial".into(),
            format!("{serial:.0}/s"),
            "≥ 5,000/s".into(),
        ),
        (
            "channel setups, 16 in flight".into(),
            format!("{parallel:.0}/s"),
            "—".into(),
        ),
    ])
}

async fn report_slow_reader(bytes: u64) -> Result<Vec<Row>, String> {
    let rate = 10_000_000;
    let figures = memory::slow_reader(bytes, rate).await?;
    let growth = figures.peak.saturating_sub(figures.baseline) as f64 / MIB;
    let buffer = 64.0 * 64.0 * 1024.0 / MIB;
    println!(
        "slow reader ({} MB at 10 MB/s): engine RSS {:.1} MiB → peak {:.1} MiB (+{growth:.1} MiB; channel buffer {buffer:.0} MiB)",
        bytes / 1_000_000,
        figures.baseline as f64 / MIB,
        figures.peak as f64 / MIB
    );
    Ok(vec![(
        format!(
            "engine RSS growth, {} MB into a 10 MB/s reader",
            bytes / 1_000_000
        ),
        format!("+{growth:.1} MiB"),
        format!("≤ 2 × buffer = {:.0} MiB", 2.0 * buffer),
    )])
}

async fn report_churn(count: usize) -> Result<Vec<Row>, String> {
    let figures = memory::many_channels(count).await?;
    let delta = (figures.after as f64 - figures.baseline as f64) / MIB;
    println!(
        "{count} channels: engine RSS {:.1} MiB before, peak {:.1} MiB, {:.1} MiB after ({delta:+.1} MiB)",
        figures.baseline as f64 / MIB,
        figures.peak as f64 / MIB,
        figures.after as f64 / MIB
    );
    Ok(vec![(
        format!("engine RSS after {count} channels"),
        format!("{delta:+.1} MiB vs baseline"),
        "within 2 MiB".into(),
    )])
}
