//! Interop worker on our Rust SDK, the counterpart of `worker.mjs` and
//! `worker.py` beside it (same roles, same functions, same stdout lines), built as the
//! `interop_worker` example of core/sdk:
//!
//! ```sh
//! interop_worker serve pipeline transform files   # register the reader-side functions
//! interop_worker drive pipeline  [--records N]
//! interop_worker drive transform [--text-lines N] [--pieces K]
//! interop_worker drive files     [--size BYTES] [--chunk BYTES]
//! ```
//!
//! stdout carries only `READY` (serve) and `RESULT <json>` / `ERROR <json>` (drive); logs go
//! to stderr. `III_URL` names the engine.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iii_sdk::{
    ChannelDirection, ChannelReader, ChannelWriter, III, IIIError, RegisterFunction,
    StreamChannelRef, TriggerRequest, extract_channel_refs,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn handler_err(e: impl std::fmt::Display) -> IIIError {
    IIIError::Handler(e.to_string())
}

/// The ref named `key` with direction `direction` in an invocation's input.
fn channel_ref(
    input: &Value,
    key: &str,
    direction: ChannelDirection,
) -> Result<StreamChannelRef, IIIError> {
    extract_channel_refs(input)
        .into_iter()
        .find(|(k, r)| k == key && r.direction == direction)
        .map(|(_, r)| r)
        .ok_or_else(|| handler_err(format!("missing {key} channel ref")))
}

/// Triggers, retrying while the target is not registered yet (bounded).
async fn trigger_retry(iii: &III, request: TriggerRequest) -> Result<Value, IIIError> {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        match iii.trigger(request.clone()).await {
            Err(e) if e.code() == "function_not_found" && Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

// ------------------------------------------------------------------ functions (guide code)

/// Guide "pipeline" example, consumer side.
fn register_pipeline_consumer(iii: &III) {
    let iii2 = iii.clone();
    iii.register_function(RegisterFunction::new_async(
        "pipeline::consumer",
        move |input: Value| {
            let iii = iii2.clone();
            async move {
                let label = input["label"].as_str().unwrap_or_default().to_string();
                let reader_ref = channel_ref(&input, "reader", ChannelDirection::Read)?;
                let reader = ChannelReader::new(iii.address(), &reader_ref);
                let raw = reader.read_all().await.map_err(handler_err)?;
                let records: Vec<Value> = serde_json::from_slice(&raw).map_err(handler_err)?;
                let total: f64 = records.iter().filter_map(|r| r["value"].as_f64()).sum();
                Ok(json!({
                    "label": label, "count": records.len(), "total": total, "runtime": "rust",
                }))
            }
        },
    ));
}

/// Guide "pipeline" example, producer side.
fn register_pipeline_producer(iii: &III) {
    let iii2 = iii.clone();
    iii.register_function(RegisterFunction::new_async(
        "pipeline::producer",
        move |input: Value| {
            let iii = iii2.clone();
            async move {
                let channel = iii.create_channel(None).await.map_err(handler_err)?;
                let payload = serde_json::to_vec(&input["records"]).map_err(handler_err)?;
                channel.writer.write(&payload).await.map_err(handler_err)?;
                channel.writer.close().await.map_err(handler_err)?;
                trigger_retry(
                    &iii,
                    TriggerRequest::new(
                        "pipeline::consumer",
                        json!({ "label": "batch-001", "reader": channel.reader_ref }),
                    ),
                )
                .await
            }
        },
    ));
}

/// Guide "bidirectional with progress" example, worker side.
fn register_transform_worker(iii: &III) {
    let iii2 = iii.clone();
    iii.register_function(RegisterFunction::new_async(
        "transform::worker",
        move |input: Value| {
            let iii = iii2.clone();
            async move {
                let reader_ref = channel_ref(&input, "reader", ChannelDirection::Read)?;
                let writer_ref = channel_ref(&input, "writer", ChannelDirection::Write)?;
                let reader = ChannelReader::new(iii.address(), &reader_ref);
                let writer = ChannelWriter::new(iii.address(), &writer_ref);
                let mut data = Vec::new();
                let mut count = 0u64;
                while let Some(chunk) = reader.next_binary().await.map_err(handler_err)? {
                    data.extend_from_slice(&chunk);
                    count += 1;
                    let progress = json!({ "type": "progress", "chunks": count }).to_string();
                    writer.send_message(&progress).await.map_err(handler_err)?;
                }
                let result = String::from_utf8(data).map_err(handler_err)?.to_uppercase();
                writer.write(result.as_bytes()).await.map_err(handler_err)?;
                writer.close().await.map_err(handler_err)?;
                Ok(json!({ "status": "done", "chunks": count, "runtime": "rust" }))
            }
        },
    ));
}

/// Guide "bidirectional with progress" example, coordinator side (input written in `pieces`).
fn register_transform_coordinator(iii: &III) {
    let iii2 = iii.clone();
    iii.register_function(RegisterFunction::new_async(
        "transform::coordinator",
        move |input: Value| {
            let iii = iii2.clone();
            async move {
                let input_channel = iii.create_channel(None).await.map_err(handler_err)?;
                let output_channel = iii.create_channel(None).await.map_err(handler_err)?;

                let progress = Arc::new(Mutex::new(Vec::<Value>::new()));
                let sink = progress.clone();
                output_channel
                    .reader
                    .on_message(move |msg| {
                        let value = serde_json::from_str(&msg).unwrap_or(Value::String(msg));
                        sink.lock().unwrap().push(value);
                    })
                    .await;

                let text = input["text"]
                    .as_str()
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec();
                let pieces = input["pieces"].as_u64().unwrap_or(1).max(1) as usize;
                let step = text.len().div_ceil(pieces).max(1);
                for piece in text.chunks(step) {
                    input_channel
                        .writer
                        .write(piece)
                        .await
                        .map_err(handler_err)?;
                }
                input_channel.writer.close().await.map_err(handler_err)?;

                let payload = json!({
                    "reader": input_channel.reader_ref,
                    "writer": output_channel.writer_ref,
                });
                let trigger =
                    trigger_retry(&iii, TriggerRequest::new("transform::worker", payload));
                let read = output_channel.reader.read_all();
                tokio::pin!(trigger, read);
                // A failed worker call is reported at once rather than after the output read
                // times out.
                let (result, worker) = tokio::select! {
                    result = &mut read => (result.map_err(handler_err)?, trigger.await?),
                    worker = &mut trigger => {
                        let worker = worker?;
                        (read.await.map_err(handler_err)?, worker)
                    }
                };
                let progress = progress.lock().unwrap().clone();
                Ok(json!({
                    "result": String::from_utf8(result).map_err(handler_err)?,
                    "progress": progress,
                    "worker": worker,
                }))
            }
        },
    ));
}

/// Guide "files::process" reader, extended to hash what it read.
fn register_files_process(iii: &III) {
    let iii2 = iii.clone();
    iii.register_function(RegisterFunction::new_async(
        "files::process",
        move |input: Value| {
            let iii = iii2.clone();
            async move {
                let reader_ref = channel_ref(&input, "reader", ChannelDirection::Read)?;
                let reader = ChannelReader::new(iii.address(), &reader_ref);
                let mut hash = Sha256::new();
                let (mut bytes, mut chunks) = (0usize, 0u64);
                while let Some(chunk) = reader.next_binary().await.map_err(handler_err)? {
                    bytes += chunk.len();
                    chunks += 1;
                    hash.update(&chunk);
                }
                let sha256 = hex(&hash.finalize());
                Ok(json!({
                    "filename": input["filename"], "bytes": bytes, "chunks": chunks,
                    "sha256": sha256, "runtime": "rust",
                }))
            }
        },
    ));
}

// ------------------------------------------------------------------ test bytes

/// The interop suite's test bytes, as every worker makes them: SHAKE-256("iii-interop:<size>").
fn test_bytes(size: usize) -> Vec<u8> {
    use shake::{ExtendableOutput, Update, XofReader};
    let mut shake = shake::Shake256::default();
    shake.update(format!("iii-interop:{size}").as_bytes());
    let mut bytes = vec![0; size];
    shake.finalize_xof().read(&mut bytes);
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Streams `size` test bytes in `chunk`-byte writes to `files::process`, which hashes them.
async fn drive_files(iii: &III, size: usize, chunk: usize) -> Result<Value, IIIError> {
    let data = test_bytes(size);
    let channel = iii.create_channel(None).await.map_err(handler_err)?;
    let trigger = trigger_retry(
        iii,
        TriggerRequest::new(
            "files::process",
            json!({ "filename": format!("blob-{size}.bin"), "reader": channel.reader_ref }),
        )
        .with_timeout_ms(300_000),
    );
    let write = async {
        for piece in data.chunks(chunk.max(1)) {
            channel.writer.write(piece).await?;
        }
        channel.writer.close().await
    };
    tokio::pin!(trigger, write);
    // A failed call is reported at once rather than after the writes stall.
    let result = tokio::select! {
        written = &mut write => {
            written.map_err(handler_err)?;
            trigger.await?
        }
        result = &mut trigger => {
            let result = result?;
            write.await.map_err(handler_err)?;
            result
        }
    };
    let sent = json!({ "bytes": size, "sha256": hex(&Sha256::digest(&data)) });
    Ok(json!({ "result": result, "sent": sent }))
}

// ------------------------------------------------------------------ main

async fn ready(iii: &III) -> Result<(), IIIError> {
    tokio::time::timeout(Duration::from_secs(30), iii.ready())
        .await
        .map_err(|_| IIIError::Connection("engine did not answer within 30 s".into()))?
}

fn parse_options(args: &[String]) -> (Vec<String>, HashMap<String, String>) {
    let mut positional = Vec::new();
    let mut options = HashMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.strip_prefix("--") {
            Some(name) => {
                options.insert(name.to_string(), it.next().cloned().unwrap_or_default());
            }
            None => positional.push(arg.clone()),
        }
    }
    (positional, options)
}

fn option(options: &HashMap<String, String>, name: &str, default: u64) -> u64 {
    options
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn drive(
    iii: &III,
    flow: &str,
    options: &HashMap<String, String>,
) -> Result<Value, IIIError> {
    match flow {
        "pipeline" => {
            register_pipeline_producer(iii);
            ready(iii).await?;
            let n = option(options, "records", 5000);
            let records: Vec<Value> = (1..=n)
                .map(|i| json!({ "name": format!("item-{i}"), "value": i }))
                .collect();
            trigger_retry(
                iii,
                TriggerRequest::new("pipeline::producer", json!({ "records": records }))
                    .with_timeout_ms(120_000),
            )
            .await
        }
        "transform" => {
            register_transform_coordinator(iii);
            ready(iii).await?;
            let lines = option(options, "text-lines", 200);
            let text: String = (0..lines)
                .map(|i| format!("the quick brown fox jumps over the lazy dog {i}\n"))
                .collect();
            let pieces = option(options, "pieces", 8);
            trigger_retry(
                iii,
                TriggerRequest::new(
                    "transform::coordinator",
                    json!({ "text": text, "pieces": pieces }),
                )
                .with_timeout_ms(120_000),
            )
            .await
        }
        "files" => {
            ready(iii).await?;
            let size = option(options, "size", 20 * 1024 * 1024) as usize;
            let chunk = option(options, "chunk", 256 * 1024) as usize;
            drive_files(iii, size, chunk).await
        }
        other => Err(IIIError::Handler(format!("unknown flow {other}"))),
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::var("III_URL").unwrap_or_else(|_| "ws://127.0.0.1:49134".to_string());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (positional, options) = parse_options(&args);
    let iii = iii_sdk::register_worker(&url);

    match positional.first().map(String::as_str) {
        Some("serve") => {
            for flow in &positional[1..] {
                match flow.as_str() {
                    "pipeline" => register_pipeline_consumer(&iii),
                    "transform" => register_transform_worker(&iii),
                    "files" => register_files_process(&iii),
                    other => {
                        eprintln!("unknown flow {other}");
                        std::process::exit(2);
                    }
                }
            }
            if let Err(e) = ready(&iii).await {
                eprintln!("not ready: {e}");
                std::process::exit(1);
            }
            emit("READY");
            // Serve until the harness closes stdin.
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                let _ = std::io::stdin().read_to_end(&mut sink);
            })
            .await;
            iii.shutdown();
        }
        Some("drive") => {
            let flow = positional.get(1).cloned().unwrap_or_default();
            match drive(&iii, &flow, &options).await {
                Ok(result) => emit(&format!("RESULT {result}")),
                Err(e) => {
                    emit(&format!(
                        "ERROR {}",
                        json!({ "code": e.code(), "message": e.to_string() })
                    ));
                    std::process::exit(1);
                }
            }
            iii.shutdown();
        }
        _ => {
            eprintln!("usage: interop_worker serve <flows>... | drive <flow> [options]");
            std::process::exit(2);
        }
    }
}
