//! The channel guide's (docs/ARCHITECTURE.md, Examples) pipeline example in Rust: `pipeline::producer` streams JSON records
//! through a channel to `pipeline::consumer`, which counts and sums them.
//!
//! Run it against a running engine (default `ws://127.0.0.1:49134`; set `III_URL` otherwise):
//!
//! ```sh
//! cargo run -p iii-engine --bin iii &
//! cargo run -p iii-sdk --example pipeline
//! ```
//!
//! It registers both functions, triggers the producer once, prints the result as JSON and
//! exits 0. The tests include this file as a module and call [`run`].

use std::time::Duration;

use iii_sdk::{
    ChannelDirection, ChannelReader, III, IIIError, RegisterFunction, TriggerRequest,
    extract_channel_refs,
};
use serde_json::{Value, json};

/// Registers `pipeline::consumer` as the guide writes it (a missing ref is a handler error
/// here rather than the guide's `expect`).
pub fn register_consumer(iii: &III) {
    let iii_for_consumer = iii.clone();
    let consumer_reg = RegisterFunction::new_async("pipeline::consumer", move |input: Value| {
        let iii = iii_for_consumer.clone();
        async move {
            let label = input["label"].as_str().unwrap_or_default().to_string();
            let refs = extract_channel_refs(&input);
            let reader_ref = refs
                .iter()
                .find(|(k, r)| k == "reader" && matches!(r.direction, ChannelDirection::Read))
                .map(|(_, r)| r.clone())
                .ok_or_else(|| IIIError::Handler("missing reader channel ref".into()))?;

            let reader = ChannelReader::new(iii.address(), &reader_ref);
            let raw = reader
                .read_all()
                .await
                .map_err(|e| IIIError::Handler(e.to_string()))?;
            let records: Vec<Value> =
                serde_json::from_slice(&raw).map_err(|e| IIIError::Handler(e.to_string()))?;

            let total: f64 = records.iter().filter_map(|r| r["value"].as_f64()).sum();

            Ok(json!({ "label": label, "count": records.len(), "total": total }))
        }
    });
    iii.register_function(consumer_reg);
}

/// Registers `pipeline::producer` exactly as the guide writes it.
pub fn register_producer(iii: &III) {
    let iii_for_producer = iii.clone();
    let producer_reg = RegisterFunction::new_async("pipeline::producer", move |input: Value| {
        let iii = iii_for_producer.clone();
        async move {
            let records = input["records"].clone();
            let channel = iii
                .create_channel(None)
                .await
                .map_err(|e| IIIError::Handler(e.to_string()))?;

            let payload =
                serde_json::to_vec(&records).map_err(|e| IIIError::Handler(e.to_string()))?;
            channel
                .writer
                .write(&payload)
                .await
                .map_err(|e| IIIError::Handler(e.to_string()))?;
            channel
                .writer
                .close()
                .await
                .map_err(|e| IIIError::Handler(e.to_string()))?;

            let result = iii
                .trigger(TriggerRequest {
                    function_id: "pipeline::consumer".to_string(),
                    payload: json!({
                        "label": "batch-001",
                        "reader": channel.reader_ref,
                    }),
                    action: None,
                    timeout_ms: Some(30000),
                })
                .await
                .map_err(|e| IIIError::Handler(e.to_string()))?;

            Ok(result)
        }
    });
    iii.register_function(producer_reg);
}

/// Connects to `url`, registers both functions, triggers the producer with sample records and
/// returns its result.
pub async fn run(url: &str) -> Result<Value, IIIError> {
    let iii = iii_sdk::register_worker(url);
    register_consumer(&iii);
    register_producer(&iii);
    let outcome = async {
        tokio::time::timeout(Duration::from_secs(10), iii.ready())
            .await
            .map_err(|_| IIIError::Connection(format!("no engine answered at {url}")))??;
        let records = json!([
            {"name": "alpha", "value": 1.5},
            {"name": "beta", "value": 2.5},
            {"name": "gamma", "value": 4},
        ]);
        iii.trigger(TriggerRequest::new(
            "pipeline::producer",
            json!({ "records": records }),
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
            eprintln!("pipeline failed: {error}");
            std::process::exit(1);
        }
    }
}
