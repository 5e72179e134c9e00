//! Cluster mode (docs/CLUSTER.md) against one node, in the same run: three engines on one
//! NATS server (Debian's `nats-server`, started here), and for each figure the same work
//! within one node and across nodes — channel relay throughput, `trigger()` round trips,
//! channel setups, and many channels at once.

use std::process::Stdio;
use std::time::{Duration, Instant};

use iii_sdk::{ChannelReader, ChannelWriter, III};
use tokio::process::{Child, Command};

use crate::Row;
use crate::latency::trigger_round_trips_across;
use crate::median;
use crate::procs::EngineProc;
use crate::throughput::{Transfer, relay_between};

/// The NATS server of the run, killed when dropped.
struct Nats {
    _child: Child,
    url: String,
    _store: TempDir,
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start_nats() -> Result<Nats, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let store =
        TempDir(std::env::temp_dir().join(format!("iii-bench-nats-{}", std::process::id())));
    let binary = ["nats-server", "/usr/sbin/nats-server"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok()
        })
        .ok_or("nats-server not found (apt-get install nats-server)")?;
    let child = Command::new(binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&store.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("nats-server: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            return Err("nats-server did not listen".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Nats {
        _child: child,
        url: format!("nats://127.0.0.1:{port}"),
        _store: store,
    })
}

/// Three engines on `nats`, once each sees the two others.
async fn start_nodes(nats: &Nats) -> Result<Vec<EngineProc>, String> {
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        let arg = format!("{name}@{}", nats.url);
        nodes.push(EngineProc::start_with(60, &["--cluster-node".into(), arg]).await?);
    }
    for node in &nodes {
        let status_url = node.url.replace("ws://", "http://");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let status = iii_engine::inspect::fetch(&status_url).await?;
            let members = status["cluster"]["members"].as_array().map_or(0, Vec::len);
            if members == 2 {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{} sees {members} peers", node.url));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(nodes)
}

/// Streams `total` bytes through a channel created on `owner`, written through `writer`'s
/// engine and read through `reader`'s (each a process of its own).
async fn relay_across(
    owner: &str,
    writer: &str,
    reader: &str,
    total: u64,
) -> Result<Transfer, String> {
    let result = relay_between([owner, writer, reader], total, None, 64).await?;
    if result.bytes != total {
        return Err(format!("received {} of {total} bytes", result.bytes));
    }
    Ok(result)
}

/// One channel life with both ends opened through `ends` (the channel created through
/// `iii`'s engine): one byte, close, read to the end.
async fn setup_across(iii: &III, ends: &str) -> Result<(), String> {
    let channel = iii.create_channel(None).await.map_err(|e| e.to_string())?;
    let writer = ChannelWriter::new(ends, &channel.writer_ref);
    let reader = ChannelReader::new(ends, &channel.reader_ref);
    let write = async {
        writer.write(b"x").await?;
        writer.close().await
    };
    let (written, read) = tokio::join!(write, reader.read_all());
    written.map_err(|e| format!("write: {e}"))?;
    match read {
        Ok(data) if data == b"x" => Ok(()),
        Ok(data) => Err(format!("read {} bytes", data.len())),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// Serial setups per second: channels created on `owner`, ends opened through `ends`.
async fn setups(owner: &str, ends: &str, count: usize) -> Result<f64, String> {
    let iii = iii_sdk::register_worker(owner);
    for _ in 0..50 {
        setup_across(&iii, ends).await?;
    }
    let started = Instant::now();
    for _ in 0..count {
        setup_across(&iii, ends).await?;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    iii.shutdown();
    Ok(rate)
}

/// `streams` channels of `each` bytes at once, stream i created and written on
/// `nodes[i % n]` and read on `nodes[(i + 1) % n]`; the aggregate in MB/s.
async fn aggregate(nodes: &[&str], streams: usize, each: u64) -> Result<f64, String> {
    let started = Instant::now();
    let mut runs = Vec::new();
    for i in 0..streams {
        let owner = nodes[i % nodes.len()].to_string();
        let reader = nodes[(i + 1) % nodes.len()].to_string();
        runs.push(tokio::spawn(async move {
            relay_across(&owner, &owner, &reader, each).await
        }));
    }
    for run in runs {
        run.await.map_err(|e| e.to_string())??;
    }
    Ok((streams as u64 * each) as f64 / 1e6 / started.elapsed().as_secs_f64())
}

/// The whole comparison: `rounds` rounds, each measuring the one-node and cross-node form of
/// every figure in turn; medians reported.
pub async fn report(bytes: u64, count: usize, rounds: usize) -> Result<Vec<Row>, String> {
    let nats = start_nats().await?;
    let nodes = start_nodes(&nats).await?;
    let [a, b, c] = [&nodes[0].url, &nodes[1].url, &nodes[2].url];
    let mut same = Vec::new();
    let mut across = Vec::new();
    let mut two_hops = Vec::new();
    let (mut one_ratios, mut two_ratios) = (Vec::new(), Vec::new());
    let gib = bytes as f64 / f64::from(1u32 << 30);
    let cpu = |node: &EngineProc| node.cpu_seconds();
    for round in 1..=rounds {
        let before = (cpu(&nodes[0]), cpu(&nodes[1]));
        let local = relay_across(a, a, a, bytes).await?.mb_per_sec();
        let owner_alone = (cpu(&nodes[0]) - before.0) / gib;
        let before = (cpu(&nodes[0]), cpu(&nodes[1]));
        let one = relay_across(a, a, b, bytes).await?.mb_per_sec();
        let (owner, relaying) = (
            (cpu(&nodes[0]) - before.0) / gib,
            (cpu(&nodes[1]) - before.1) / gib,
        );
        println!(
            "  engine CPU s per GiB: one node {owner_alone:.2}; across, owner {owner:.2} + relaying node {relaying:.2}"
        );
        let two = relay_across(a, b, c, bytes).await?.mb_per_sec();
        println!(
            "round {round}: relay on one node {local:.0} MB/s; reader on another node {one:.0} MB/s ({:.2} ×); writer and reader each on another node {two:.0} MB/s ({:.2} ×)",
            one / local,
            two / local
        );
        one_ratios.push(one / local);
        two_ratios.push(two / local);
        same.push(local);
        across.push(one);
        two_hops.push(two);
    }
    let (local, one, two) = (median(same), median(across), median(two_hops));
    let (one_ratio, two_ratio) = (median(one_ratios), median(two_ratios));
    println!(
        "median: one node {local:.0} MB/s; reader on another node {one:.0} MB/s (ratio, median of rounds: {one_ratio:.2}); both ends on other nodes {two:.0} MB/s ({two_ratio:.2})"
    );
    let local_trips = trigger_round_trips_across(a.clone(), a.clone(), count).await?;
    let remote_trips = trigger_round_trips_across(b.clone(), a.clone(), count).await?;
    println!(
        "trigger() round trip p50/p99: one node {:.0}/{:.0} µs, across nodes {:.0}/{:.0} µs",
        local_trips.p50_us, local_trips.p99_us, remote_trips.p50_us, remote_trips.p99_us
    );
    let local_setups = setups(a, a, count / 3).await?;
    let remote_setups = setups(a, b, count / 3).await?;
    println!(
        "channel setups, serial: one node {local_setups:.0}/s, ends on another node {remote_setups:.0}/s"
    );
    let each = (bytes / 4).max(1 << 20);
    let one_node = aggregate(&[a], 6, each).await?;
    let three_nodes = aggregate(&[a, b, c], 6, each).await?;
    println!(
        "6 channels at once ({} MiB each): all on one node {one_node:.0} MB/s, spread over 3 nodes (every reader on the next node) {three_nodes:.0} MB/s",
        each >> 20
    );
    drop(nodes);
    Ok(vec![
        (
            "cluster relay, reader on another node (median)".into(),
            format!("{one:.0} MB/s = {one_ratio:.2} × one node ({local:.0} MB/s)"),
            "≥ 0.8 × one node".into(),
        ),
        (
            "cluster relay, both ends on other nodes (median)".into(),
            format!("{two:.0} MB/s = {two_ratio:.2} × one node"),
            "—".into(),
        ),
        (
            "cluster trigger() p50".into(),
            format!(
                "{:.0} µs across nodes, {:.0} µs on one node",
                remote_trips.p50_us, local_trips.p50_us
            ),
            "—".into(),
        ),
        (
            "cluster channel setups, serial".into(),
            format!("{remote_setups:.0}/s across nodes, {local_setups:.0}/s on one node"),
            "—".into(),
        ),
        (
            "cluster aggregate, 6 channels".into(),
            format!("{three_nodes:.0} MB/s over 3 nodes, {one_node:.0} MB/s on one"),
            "—".into(),
        ),
    ])
}
