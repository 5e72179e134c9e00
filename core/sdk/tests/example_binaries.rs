//! Runs the compiled example programs as a person would — separate processes against a
//! running engine — and checks what they print. `scripts/test.sh` builds them first
//! (`cargo build -p iii-sdk --examples`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{engine, within};
use serde_json::{Value, json};

/// The compiled example `name`, beside this test's own executable (`target/<profile>/examples`).
fn example_binary(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("test executable path");
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = profile_dir.join("examples").join(name);
    assert!(
        binary.exists(),
        "{} is missing: build the examples first with `cargo build -p iii-sdk --examples`",
        binary.display()
    );
    binary
}

/// Runs an example against `url` and returns its stdout parsed as JSON (its last line).
async fn run_example(name: &str, url: &str) -> Value {
    let binary = example_binary(name);
    let url = url.to_string();
    let output = within(
        60,
        tokio::task::spawn_blocking(move || {
            Command::new(binary)
                .env("III_URL", url)
                .output()
                .expect("example runs")
        }),
    )
    .await
    .expect("example finished");
    assert!(
        output.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{name} printed {stdout:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_counts_the_streamed_bytes() {
    let engine = engine().await;
    let printed = run_example("quickstart", &engine.ws_url()).await;
    assert_eq!(printed, json!({ "bytes": 13 }));
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_and_bidirectional_binaries_print_their_results() {
    let engine = engine().await;
    let pipeline = run_example("pipeline", &engine.ws_url()).await;
    assert!(
        pipeline["count"].as_u64().is_some_and(|n| n > 0),
        "{pipeline}"
    );
    assert_eq!(pipeline["label"], "batch-001");
    let bidirectional = run_example("bidirectional", &engine.ws_url()).await;
    assert!(bidirectional["result"].is_string(), "{bidirectional}");
    assert!(
        bidirectional["progress"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{bidirectional}"
    );
}
