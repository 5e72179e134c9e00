//! The programs the benchmark runs in child processes: the engine, a plain WebSocket sink and
//! writer (the one-hop ceiling), and SDK channel writers, readers and echoers.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use iii_sdk::{ChannelReader, ChannelWriter, StreamChannelRef};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::procs::own_cpu_seconds;

/// Bytes per frame, the channel frame size.
pub const FRAME: usize = iii_protocol::limits::CHANNEL_FRAME_BYTES;

/// A reusable frame of pseudo-random bytes (cloning a `Bytes` does not copy).
pub fn frame() -> Bytes {
    let mut state: u32 = 0x9E37_79B9;
    let data: Vec<u8> = (0..FRAME)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    Bytes::from(data)
}

fn parse_ref(text: &str) -> Result<StreamChannelRef, String> {
    serde_json::from_str(text).map_err(|e| format!("bad ref {text}: {e}"))
}

/// Runs an engine on free ports and prints `READY <ws url> <http addr>`; runs until killed.
pub async fn engine_proc(
    tombstone_secs: u64,
    tls_dir: Option<std::path::PathBuf>,
    replica_choice: &str,
    metrics: bool,
    cluster_node: Option<&str>,
) -> Result<(), String> {
    // `NODE@NATS_URL`: a node of a cluster, advertising the address it listens on.
    let cluster = cluster_node
        .map(|spec| {
            spec.split_once('@')
                .ok_or("--cluster-node is NODE@NATS_URL")
        })
        .transpose()?
        .map(|(node, nats)| iii_engine::ClusterConfig::new(nats, node, ""));
    // With a certificate directory (scripts/make-test-certs.sh), both ports serve TLS.
    let tls = tls_dir.map(|dir| iii_engine::TlsFiles {
        cert_file: dir.join("leaf.pem"),
        key_file: dir.join("leaf.key"),
    });
    let config = iii_engine::EngineConfig {
        tombstone_ttl: Duration::from_secs(tombstone_secs),
        tls: tls.clone(),
        http_tls: tls,
        replica_choice: match replica_choice {
            "round-robin" => iii_engine::ReplicaChoice::RoundRobin,
            _ => iii_engine::ReplicaChoice::LeastInFlight,
        },
        metrics,
        cluster,
        ..iii_engine::EngineConfig::ephemeral()
    };
    let engine = iii_engine::start(config)
        .await
        .map_err(|e| format!("engine: {e}"))?;
    let http = engine
        .http_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("READY {} {http}", engine.ws_url());
    std::future::pending::<()>().await;
    drop(engine);
    Ok(())
}

/// Accepts one plain WebSocket, reads until it closes, and prints `{bytes, secs}` measured
/// from the first frame.
pub async fn sink_server() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("READY {port}");
    let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut ws = tokio_tungstenite::accept_async(stream)
        .await
        .map_err(|e| format!("accept: {e}"))?;
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    while let Some(message) = ws.next().await {
        match message.map_err(|e| format!("read: {e}"))? {
            Message::Binary(data) => {
                first.get_or_insert_with(Instant::now);
                bytes += data.len() as u64;
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let cpu = own_cpu_seconds();
    println!(
        "{}",
        serde_json::json!({"bytes": bytes, "secs": secs, "cpu": cpu})
    );
    Ok(())
}

/// Sends `total` bytes over one plain WebSocket in 64 KiB frames, then closes.
pub async fn hop_writer(url: &str, total: u64) -> Result<(), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let chunk = frame();
    let mut sent = 0u64;
    while sent < total {
        let len = (total - sent).min(FRAME as u64) as usize;
        ws.feed(Message::Binary(chunk.slice(..len)))
            .await
            .map_err(|e| format!("send: {e}"))?;
        sent += len as u64;
    }
    ws.close(None).await.map_err(|e| format!("close: {e}"))?;
    while let Some(Ok(_)) = ws.next().await {}
    println!("DONE {}", own_cpu_seconds());
    Ok(())
}

/// Writes `total` bytes to a channel end in 64 KiB frames, closes it, prints `DONE`.
pub async fn channel_writer(url: &str, writer_ref: &str, total: u64) -> Result<(), String> {
    let writer = ChannelWriter::new(url, &parse_ref(writer_ref)?);
    let chunk = frame();
    let mut sent = 0u64;
    while sent < total {
        let len = (total - sent).min(FRAME as u64) as usize;
        writer
            .write_bytes(chunk.slice(..len))
            .await
            .map_err(|e| format!("write: {e}"))?;
        sent += len as u64;
    }
    writer.close().await.map_err(|e| format!("close: {e}"))?;
    println!("DONE {}", own_cpu_seconds());
    Ok(())
}

/// Reads a channel end to its end, optionally throttled to `throttle` bytes per second, and
/// prints `{bytes, secs}` measured from the first frame.
pub async fn channel_reader(
    url: &str,
    reader_ref: &str,
    throttle: Option<u64>,
) -> Result<(), String> {
    let reader = ChannelReader::new(url, &parse_ref(reader_ref)?);
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    while let Some(chunk) = reader
        .next_binary()
        .await
        .map_err(|e| format!("read: {e}"))?
    {
        let start = *first.get_or_insert_with(Instant::now);
        bytes += chunk.len() as u64;
        if let Some(rate) = throttle {
            let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
            let elapsed = start.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
    let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let cpu = own_cpu_seconds();
    println!(
        "{}",
        serde_json::json!({"bytes": bytes, "secs": secs, "cpu": cpu})
    );
    Ok(())
}

/// Sends every text message read from one channel back on another, until `STOP`.
pub async fn echo(url: &str, reader_ref: &str, writer_ref: &str) -> Result<(), String> {
    let reader = ChannelReader::new(url, &parse_ref(reader_ref)?);
    let writer = ChannelWriter::new(url, &parse_ref(writer_ref)?);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    reader
        .on_message(move |text| {
            let _ = tx.send(text);
        })
        .await;
    println!("READY");
    while let Some(text) = rx.recv().await {
        if text == "STOP" {
            break;
        }
        writer
            .send_message(&text)
            .await
            .map_err(|e| format!("echo: {e}"))?;
    }
    writer.close().await.map_err(|e| format!("close: {e}"))?;
    Ok(())
}

/// Accepts plain WebSockets until killed; reads each one to its end (tungstenite echoes the
/// close). Prints `READY <port>`.
pub async fn setup_sink() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("READY {port}");
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await {
                while let Some(Ok(_)) = ws.next().await {}
            }
        });
    }
}
