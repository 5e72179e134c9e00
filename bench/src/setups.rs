//! Channel setups per second: create a channel through the engine, connect both ends, send
//! one byte, close, read it to the end — serially and with several setups in flight.

use crate::Row;
use crate::procs::ChildProc;
use futures_util::{SinkExt, StreamExt};
use iii_sdk::III;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// One complete channel life: create, both ends, one byte, close, read to the end.
pub async fn one_setup(iii: &III) -> Result<(), String> {
    let channel = iii.create_channel(None).await.map_err(|e| e.to_string())?;
    let write = async {
        channel.writer.write(b"x").await?;
        channel.writer.close().await
    };
    let (written, read) = tokio::join!(write, channel.reader.read_all());
    written.map_err(|e| format!("write: {e}"))?;
    let data = read.map_err(|e| format!("read: {e}"))?;
    if data != b"x" {
        return Err(format!("read {} bytes instead of 1", data.len()));
    }
    Ok(())
}

/// On `engine`: a relay of `bytes` (writer process → engine → reader process, 64-frame
/// buffer), then `count` serial channel setups after a 200-setup warm-up. Returns the relay
/// in MB/s and the setups per second; `kind` names the engine in errors. What the side-by-side
/// comparisons (`tls`, `metrics`) measure on each engine.
pub async fn relay_and_setups(
    engine: &crate::procs::EngineProc,
    kind: &str,
    bytes: u64,
    count: usize,
) -> Result<(f64, f64), String> {
    let relay = crate::throughput::relay_on(engine, bytes, None, 64).await?;
    if relay.bytes != bytes {
        return Err(format!("{kind}: received {} of {bytes} bytes", relay.bytes));
    }
    let iii = iii_sdk::register_worker(&engine.url);
    setups_per_sec(&iii, 200, 1).await?;
    let rate = setups_per_sec(&iii, count, 1).await;
    iii.shutdown();
    Ok((relay.mb_per_sec(), rate?))
}

/// Runs `count` setups, `in_flight` at a time; returns setups per second.
pub async fn setups_per_sec(iii: &III, count: usize, in_flight: usize) -> Result<f64, String> {
    let started = Instant::now();
    let per_task = count / in_flight.max(1);
    let mut tasks = Vec::new();
    for _ in 0..in_flight.max(1) {
        let iii = iii.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                one_setup(&iii).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok((per_task * in_flight.max(1)) as f64 / started.elapsed().as_secs_f64())
}

/// The ceiling for setups: plain WebSockets to a sink process (connect, upgrade, one byte,
/// close handshake), one after another — the socket work of one channel end, without the
/// engine, the channel creation call or the second end.
pub async fn plain_socket_setups_per_sec(count: usize) -> Result<f64, String> {
    let mut sink = ChildProc::spawn(&["setup-sink".into()])?;
    let line = sink.line(Duration::from_secs(30)).await?;
    let port = line.strip_prefix("READY ").ok_or("sink did not start")?;
    let url = format!("ws://127.0.0.1:{port}/");
    let started = Instant::now();
    for _ in 0..count {
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        ws.send(Message::Binary(bytes::Bytes::from_static(b"x")))
            .await
            .map_err(|e| format!("send: {e}"))?;
        ws.close(None).await.map_err(|e| format!("close: {e}"))?;
        while let Some(Ok(_)) = ws.next().await {}
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// The plain-socket ceiling, then channel setups serial and 16 in flight; prints them and
/// returns the rows.
pub async fn report(count: usize) -> Result<Vec<Row>, String> {
    let plain = plain_socket_setups_per_sec(count).await?;
    println!("ceiling (plain WebSocket open + 1 byte + close, serial): {plain:.0}/s");
    let engine = crate::procs::EngineProc::start(60).await?;
    let iii = iii_sdk::register_worker(&engine.url);
    setups_per_sec(&iii, 200, 1).await?;
    let serial = setups_per_sec(&iii, count, 1).await?;
    let parallel = setups_per_sec(&iii, count, 16).await?;
    iii.shutdown();
    println!(
        "channel setups: {serial:.0}/s serial ({:.2} × the plain-socket ceiling), {parallel:.0}/s with 16 in flight",
        serial / plain
    );
    Ok(vec![
        (
            "plain WebSocket open + 1 byte + close, serial (ceiling)".into(),
            format!("{plain:.0}/s"),
            "—".into(),
        ),
        (
            "channel setups, serial".into(),
            format!("{serial:.0}/s ({:.2} × ceiling)", serial / plain),
            "≥ 5,000/s".into(),
        ),
        (
            "channel setups, 16 in flight".into(),
            format!("{parallel:.0}/s"),
            "—".into(),
        ),
    ])
}
