//! The channel guide's (docs/ARCHITECTURE.md, Examples) bidirectional example (shown there in Node) done in Rust:
//! `transform::coordinator` streams text to `transform::worker` on one channel; the worker
//! reports progress as text messages and streams the upper-cased result back on a second one.
//!
//! Run it against a running engine (default `ws://127.0.0.1:49134`; set `III_URL` otherwise):
//!
//! ```sh
//! cargo run -p iii-engine --bin iii &
//! cargo run -p iii-sdk --example bidirectional
//! ```
//!
//! It registers both functions, triggers the coordinator once, prints the result as JSON and
//! exits 0. The tests include this file as a module and call [`run`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iii_sdk::{
    ChannelDirection, ChannelReader, ChannelWriter, III, IIIError, RegisterFunction,
    StreamChannelRef, TriggerRequest, extract_channel_refs,
};
use serde_json::{Value, json};

/// The ref found under `key` with `direction` in a handler's input.
fn channel_ref(
    input: &Value,
    key: &str,
    direction: ChannelDirection,
) -> Result<StreamChannelRef, IIIError> {
    extract_channel_refs(input)
        .into_iter()
        .find(|(k, r)| k == key && r.direction == direction)
        .map(|(_, r)| r)
        .ok_or_else(|| IIIError::Handler(format!("missing {key} channel ref")))
}

/// Registers `transform::worker`: reads the input stream, sends a progress message per
/// chunk, then writes the upper-cased text to the output stream.
pub fn register_worker_fn(iii: &III) {
    let iii_for_worker = iii.clone();
    iii.register_function(RegisterFunction::new_async(
        "transform::worker",
        move |input: Value| {
            let iii = iii_for_worker.clone();
            async move {
                let reader_ref = channel_ref(&input, "reader", ChannelDirection::Read)?;
                let writer_ref = channel_ref(&input, "writer", ChannelDirection::Write)?;
                let reader = ChannelReader::new(iii.address(), &reader_ref);
                let writer = ChannelWriter::new(iii.address(), &writer_ref);

                let mut text = Vec::new();
                let mut count = 0;
                while let Some(chunk) = reader.next_binary().await? {
                    text.extend_from_slice(&chunk);
                    count += 1;
                    let progress = json!({ "type": "progress", "chunks": count });
                    writer.send_message(&progress.to_string()).await?;
                }

                let result = String::from_utf8_lossy(&text).to_uppercase();
                writer.write(result.as_bytes()).await?;
                writer.close().await?;
                Ok(json!({ "status": "done" }))
            }
        },
    ));
}

/// Registers `transform::coordinator`: creates both channels, listens for progress, streams
/// the input word by word, and collects the result while the worker runs.
pub fn register_coordinator(iii: &III) {
    let iii_for_coordinator = iii.clone();
    iii.register_function(RegisterFunction::new_async(
        "transform::coordinator",
        move |input: Value| {
            let iii = iii_for_coordinator.clone();
            async move {
                let text = input["text"].as_str().unwrap_or_default().to_string();
                let input_channel = iii.create_channel(None).await?;
                let output_channel = iii.create_channel(None).await?;

                let progress = Arc::new(Mutex::new(Vec::<Value>::new()));
                let sink = progress.clone();
                output_channel
                    .reader
                    .on_message(move |message| {
                        let value =
                            serde_json::from_str(&message).unwrap_or(Value::String(message));
                        if let Ok(mut progress) = sink.lock() {
                            progress.push(value);
                        }
                    })
                    .await;

                let worker = iii.trigger(TriggerRequest::new(
                    "transform::worker",
                    json!({
                        "reader": input_channel.reader_ref,
                        "writer": output_channel.writer_ref,
                    }),
                ));
                let feed = async {
                    for word in text.split_inclusive(' ') {
                        input_channel.writer.write(word.as_bytes()).await?;
                    }
                    input_channel.writer.close().await
                };
                let (status, fed, result) =
                    tokio::join!(worker, feed, output_channel.reader.read_all());
                let (status, result) = (status?, result?);
                fed?;

                let progress = progress.lock().map(|p| p.clone()).unwrap_or_default();
                Ok(json!({
                    "result": String::from_utf8_lossy(&result),
                    "progress": progress,
                    "worker": status,
                }))
            }
        },
    ));
}

/// Connects to `url`, registers both functions, triggers the coordinator with sample text and
/// returns its result.
pub async fn run(url: &str) -> Result<Value, IIIError> {
    let iii = iii_sdk::register_worker(url);
    register_worker_fn(&iii);
    register_coordinator(&iii);
    let outcome = async {
        tokio::time::timeout(Duration::from_secs(10), iii.ready())
            .await
            .map_err(|_| IIIError::Connection(format!("no engine answered at {url}")))??;
        iii.trigger(TriggerRequest::new(
            "transform::coordinator",
            json!({ "text": "hello from the channels guide" }),
        ))
        .await
    }
    .await;
    iii.shutdown();
    outcome
}

#[tokio::main]
#[cfg_attr(test, allow(dead_code))] // the tests include this file as a module
async fn main() {
    let url = std::env::var("III_URL").unwrap_or_else(|_| "ws://127.0.0.1:49134".to_string());
    match run(&url).await {
        Ok(result) => println!("{result}"),
        Err(error) => {
            eprintln!("bidirectional failed: {error}");
            std::process::exit(1);
        }
    }
}
