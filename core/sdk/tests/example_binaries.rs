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

/// A long-running example worker, stopped with SIGINT (Ctrl-C) when dropped.
struct ServingExample {
    child: std::process::Child,
}

impl ServingExample {
    /// Starts example `name` against `url` with `envs`, and waits for its ready line.
    fn start(name: &str, url: &str, envs: &[(&str, String)]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(example_binary(name))
            .env("III_URL", url)
            .envs(envs.iter().map(|(key, value)| (key, value)))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("example starts");
        let stdout = child.stdout.take().expect("stdout");
        let line = BufReader::new(stdout)
            .lines()
            .next()
            .expect("a ready line")
            .expect("readable");
        assert!(line.contains("worker ready"), "{name} printed {line:?}");
        Self { child }
    }

    /// Sends Ctrl-C and checks the worker exits cleanly.
    fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -INT");
        let status = self.child.wait().expect("exit status");
        assert!(
            status.success(),
            "the worker exits cleanly on Ctrl-C: {status}"
        );
    }
}

impl Drop for ServingExample {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs curl with `args`; returns its stdout.
async fn curl(args: Vec<String>) -> Vec<u8> {
    let output = within(
        60,
        tokio::task::spawn_blocking(move || Command::new("curl").args(&args).output()),
    )
    .await
    .expect("curl finished")
    .expect("curl runs (is it installed?)");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn the_download_example_serves_a_file_to_curl_byte_exact_and_refuses_what_it_should() {
    let engine = engine().await;
    let dir = std::env::temp_dir().join(format!("iii-download-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let content = common::data(11, 3 * 1024 * 1024 + 17);
    std::fs::write(dir.join("quarterly report.pdf"), &content).expect("file written");
    let example = ServingExample::start(
        "download",
        &engine.ws_url(),
        &[("III_FILES_DIR", dir.display().to_string())],
    );
    let base = engine.http_url().expect("http server");
    let saved = dir.join("saved.pdf");
    let headers = curl(vec![
        "-sS".into(),
        "--fail".into(),
        "-D".into(),
        "-".into(),
        "-o".into(),
        saved.display().to_string(),
        format!("{base}/files/quarterly%20report.pdf"),
    ])
    .await;
    let headers = String::from_utf8_lossy(&headers).to_ascii_lowercase();
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(
        headers.contains("content-type: application/pdf"),
        "{headers}"
    );
    assert!(
        headers.contains(&format!("content-length: {}", content.len())),
        "{headers}"
    );
    assert!(
        std::fs::read(&saved).expect("saved") == content,
        "the download is byte-exact"
    );
    // A missing file is a 404, and a name that would leave the directory never reaches it
    // (--path-as-is: curl sends the dot segments as written).
    for (path, status) in [
        ("/files/missing.pdf", "404"),
        ("/files/..%2Fsecret.txt", "400"),
        ("/files/..", "400"),
    ] {
        let answer = curl(vec![
            "-sS".into(),
            "--path-as-is".into(),
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            "%{http_code}".into(),
            format!("{base}{path}"),
        ])
        .await;
        assert_eq!(String::from_utf8_lossy(&answer), status, "{path}");
    }
    example.interrupt();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sse_example_streams_its_events_to_curl() {
    let engine = engine().await;
    let example = ServingExample::start(
        "sse",
        &engine.ws_url(),
        &[("III_SSE_INTERVAL_MS", "20".to_string())],
    );
    let base = engine.http_url().expect("http server");
    let output = curl(vec!["-sSN".into(), format!("{base}/events/stream")]).await;
    let mut expected = String::new();
    for step in 1..=5 {
        expected.push_str(&format!(
            "id: {step}\nevent: progress\ndata: {{\"step\":{step},\"total\":5}}\n\n"
        ));
    }
    expected.push_str("id: 6\nevent: done\ndata: {\"message\":\"complete\"}\n\n");
    assert_eq!(String::from_utf8_lossy(&output), expected);
    example.interrupt();
}
