//! Channel setups per second: create a channel through the engine, connect both ends, send
//! one byte, close, read it to the end — serially and with several setups in flight.

use iii_sdk::III;
use std::time::Instant;

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
