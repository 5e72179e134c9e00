//! The `iii` binary as its own process (built by `scripts/test.sh` beside the tests), for
//! tests that measure the engine's memory apart from the test's own.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A running engine process, killed on drop.
pub struct EngineProcess {
    child: Child,
    /// Where workers connect.
    pub ws_url: String,
    /// The HTTP trigger server.
    pub http_addr: SocketAddr,
}

/// `target/<profile>/iii`, beside this test's own executable.
fn engine_binary() -> PathBuf {
    let test_exe = std::env::current_exe().expect("test executable path");
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = profile_dir.join("iii");
    assert!(
        binary.exists(),
        "{} is missing: build it first with `cargo build -p iii-engine --bin iii`",
        binary.display()
    );
    binary
}

impl EngineProcess {
    /// Starts `iii` on free ports and waits for the addresses it prints.
    pub fn start() -> Self {
        Self::start_with(&[], &[])
    }

    /// [`start`](Self::start) with extra arguments and environment variables.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(engine_binary())
            .args(["--port", "0", "--http-port", "0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("engine starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut ws_url = None;
        let mut http_addr = None;
        while ws_url.is_none() || http_addr.is_none() {
            let line = lines
                .next()
                .expect("engine prints its addresses")
                .expect("line");
            if let Some(url) = line.strip_prefix("iii engine listening on ") {
                ws_url = Some(url.to_string());
            } else if let Some(url) = line.strip_prefix("iii http triggers on http://") {
                http_addr = Some(url.parse().expect("http address"));
            }
        }
        Self {
            child,
            ws_url: ws_url.unwrap_or_default(),
            http_addr: http_addr.expect("http address"),
        }
    }

    /// The engine's resident set now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    /// Starts sampling the engine's resident set every 10 ms.
    pub fn sample_peak_rss(&self) -> PeakSampler {
        let pid = self.child.id();
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (peak, stop) = (peak.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        PeakSampler { peak, stop, task }
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running RSS sampler.
pub struct PeakSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakSampler {
    /// Stops sampling; returns the highest resident set seen, in KiB.
    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}
