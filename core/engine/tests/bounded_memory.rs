//! The engine's memory stays bounded whatever a worker does, measured on the `iii` binary as a
//! separate process (its resident set read from `/proc`): a worker that registers a function
//! and then never reads its socket, called with 400 void calls of 1 MiB each, grew the
//! engine by 400 MB; now it holds at most `--max-outbound-bytes` for it (tested with 100).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const BOUND: usize = 8 * 1024 * 1024;

/// The engine binary with a small outbound bound; returns the process and its worker URL.
fn start_engine() -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iii"))
        .args(["--port", "0", "--no-http"])
        .args(["--max-outbound-bytes", &BOUND.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the engine binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("utf-8");
    let url = line
        .strip_prefix("iii engine listening on ")
        .expect("the worker URL")
        .to_string();
    (child, url)
}

/// The process's resident set in bytes.
fn rss(child: &Child) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("status");
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

async fn raw_worker(url: &str) -> Worker {
    let mut ws = connect(url).await;
    let hello = recv_json(&mut ws).await;
    assert_eq!(hello["type"], "workerregistered");
    let worker_id = hello["worker_id"].as_str().unwrap_or_default().to_string();
    Worker { ws, worker_id }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_never_reads_costs_at_most_its_bound() {
    let (mut engine, url) = start_engine();
    let mut stuck = raw_worker(&url).await;
    stuck.register("stuck::sink").await;
    // From here `stuck` reads nothing.
    let mut caller = raw_worker(&url).await;
    caller.sync().await;
    let before = rss(&engine);
    let blob = "x".repeat(1024 * 1024);
    for n in 0..100 {
        let call = json!({"type": "invokefunction", "function_id": "stuck::sink",
                          "data": {"n": n, "blob": blob}});
        caller
            .ws
            .send(WsMessage::text(call.to_string()))
            .await
            .expect("the caller is never held up");
    }
    // Everything sent was handled, and the caller's own calls are still answered.
    caller.sync().await;
    let (writer, _) = caller.create_channel(json!(8)).await;
    assert!(writer["channel_id"].is_string());
    let grown = rss(&engine).saturating_sub(before);
    eprintln!(
        "engine RSS grew by {} KiB for 100 MiB of calls to a worker that reads nothing",
        grown >> 10
    );
    assert!(
        grown < 6 * BOUND,
        "the engine grew by {} MiB for a worker that reads nothing (bound {} MiB)",
        grown >> 20,
        BOUND >> 20
    );
    drop(stuck);
    let _ = engine.kill();
    let _ = engine.wait();
}
