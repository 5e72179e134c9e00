//! The channel guide's flows (docs/ARCHITECTURE.md, Examples), end to end against an in-process engine: the Rust snippets of the
//! channel guides as written there, the pipeline with producer and consumer on two different
//! workers, the bidirectional flow with progress messages, and both examples' `run`.

mod common;

#[path = "../../../examples/rust/bidirectional.rs"]
mod bidirectional;
#[path = "../../../examples/rust/pipeline.rs"]
mod pipeline;

use common::*;
use iii_sdk::{
    ChannelDirection, ChannelReader, ChannelWriter, III, IIIError, RegisterFunction,
    TriggerRequest, extract_channel_refs,
};
use serde_json::{Value, json};

/// `files::process` and `files::generate` from the "Use channels across functions" guide,
/// bodies verbatim.
fn register_guide_functions(worker: &III) {
    let w = worker.clone();
    worker.register_function(RegisterFunction::new_async(
        "files::process",
        move |input: Value| {
            let worker = w.clone();
            async move {
                let refs = iii_sdk::extract_channel_refs(&input);
                let (_, reader_ref) = refs
                    .iter()
                    .find(|(k, r)| k == "reader" && matches!(r.direction, ChannelDirection::Read))
                    .ok_or_else(|| IIIError::Handler("missing reader channel ref".into()))?;

                let reader = ChannelReader::new(worker.address(), reader_ref);
                let mut bytes = 0;
                while let Some(chunk) = reader.next_binary().await? {
                    bytes += chunk.len();
                }
                Ok(json!({ "bytes": bytes }))
            }
        },
    ));
    let w = worker.clone();
    worker.register_function(RegisterFunction::new_async(
        "files::generate",
        move |input: Value| {
            let worker = w.clone();
            async move {
                let refs = iii_sdk::extract_channel_refs(&input);
                let (_, writer_ref) = refs
                    .iter()
                    .find(|(k, r)| k == "writer" && matches!(r.direction, ChannelDirection::Write))
                    .ok_or_else(|| IIIError::Handler("missing writer channel ref".into()))?;

                let writer = ChannelWriter::new(worker.address(), writer_ref);
                writer.write(b"hello ").await?;
                writer.write(b"world").await?;
                writer.close().await?;
                Ok(json!({ "ok": true }))
            }
        },
    ));
}

/// The local snippets of both guides, in the order a reader meets them.
async fn guide_snippets(iii: &III) -> Result<Value, IIIError> {
    let worker = iii;

    // "Create a channel" / "Write data to the channel" / "Pass the ref to another function".
    let channel = iii.create_channel(None).await?;
    channel.writer.write(b"first chunk").await?;
    channel.writer.write(b"second chunk").await?;
    channel.writer.close().await?; // signals completion
    let result = iii
        .trigger(TriggerRequest::new(
            "files::process",
            json!({
                "filename": "report.csv",
                "reader": channel.reader_ref,
            }),
        ))
        .await?;
    assert_eq!(result, json!({ "bytes": 23 }));

    // "Write to a channel" then "Read from a channel", on one channel.
    let channel = worker.create_channel(None).await?;
    channel.writer.write(b"file contents").await?;
    channel.writer.close().await?;
    let mut bytes = 0;
    while let Some(chunk) = channel.reader.next_binary().await? {
        bytes += chunk.len();
    }
    assert_eq!(bytes, 13);

    // "Pass a channel ref to another function" with the full struct, then "Read data".
    let channel = worker.create_channel(None).await?;
    let result = worker
        .trigger(TriggerRequest {
            function_id: "files::generate".to_string(),
            payload: json!({
                "filename": "report.csv",
                "writer": channel.writer_ref,
            }),
            action: None,
            timeout_ms: None,
        })
        .await?;
    let reader = &channel.reader;
    let data = reader.read_all().await?;
    assert_eq!(data, b"hello world");
    Ok(result)
}

#[tokio::test(flavor = "multi_thread")]
async fn guide_snippets_work_as_written() {
    let engine = engine().await;
    let owner = worker(&engine);
    register_guide_functions(&owner);
    ready(&owner).await;
    let caller = worker(&engine);
    let result = within(30, guide_snippets(&caller)).await.expect("snippets");
    assert_eq!(result["ok"], json!(true));
    engine.shutdown().await;
}

/// The pipeline consumer exactly as the "Streaming Data Between Functions" guide writes it,
/// `expect` included.
fn register_verbatim_consumer(iii: &III) {
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
                .expect("missing reader channel ref");

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

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_across_two_workers() {
    let engine = engine().await;
    let consumer = worker(&engine);
    register_verbatim_consumer(&consumer);
    let producer = worker(&engine);
    pipeline::register_producer(&producer);
    ready(&consumer).await;
    ready(&producer).await;
    let caller = worker(&engine);
    let records = json!([{"name": "a", "value": 1}, {"name": "b", "value": 2.5}]);
    let result = within(
        30,
        caller.trigger(TriggerRequest::new(
            "pipeline::producer",
            json!({ "records": records }),
        )),
    )
    .await
    .expect("pipeline result");
    assert_eq!(result["label"], "batch-001");
    assert_eq!(result["count"], 2);
    assert_eq!(result["total"], 3.5);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bidirectional_across_two_workers() {
    let engine = engine().await;
    let transformer = worker(&engine);
    bidirectional::register_worker_fn(&transformer);
    let coordinator = worker(&engine);
    bidirectional::register_coordinator(&coordinator);
    ready(&transformer).await;
    ready(&coordinator).await;
    let result = within(
        30,
        coordinator.trigger(TriggerRequest::new(
            "transform::coordinator",
            json!({ "text": "one two three" }),
        )),
    )
    .await
    .expect("coordinator result");
    assert_eq!(result["result"], "ONE TWO THREE");
    check_progress(&result["progress"]);
    assert_eq!(result["worker"]["status"], "done");
    engine.shutdown().await;
}

/// Progress messages count the chunks the worker read: 1, 2, 3, … in order.
fn check_progress(progress: &Value) {
    let progress = progress.as_array().expect("progress list");
    assert!(!progress.is_empty());
    for (i, message) in progress.iter().enumerate() {
        assert_eq!(message["type"], "progress");
        assert_eq!(message["chunks"], i + 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_example_runs() {
    let engine = engine().await;
    let result = within(30, pipeline::run(&engine.ws_url()))
        .await
        .expect("example");
    assert_eq!(result["count"], 3);
    assert_eq!(result["total"], 8.0);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bidirectional_example_runs() {
    let engine = engine().await;
    let result = within(30, bidirectional::run(&engine.ws_url()))
        .await
        .expect("example");
    assert_eq!(result["result"], "HELLO FROM THE CHANNELS GUIDE");
    check_progress(&result["progress"]);
    engine.shutdown().await;
}
