//! The abuse suite: what one misbehaving or malicious worker could do to the engine before
//! issue 15, each as a test against a real engine (the `iii` binary as its own process where
//! memory is measured, its resident set read from `/proc` and held to the configured bound),
//! with raw sockets that do exactly what an attacker would.
//!
//! | defect | test |
//! |---|---|
//! | a worker that never reads grew the engine without bound | `memory`, `slow_consumers` |
//! | calls to a stuck worker stalled the caller's other calls | `slow_consumers` |
//! | one worker created channels without end; eight unread channels held 512 MiB | `memory`, `quotas` |
//! | connections, functions, triggers, id lengths unlimited | `quotas` |
//! | memory stayed with the allocator after a burst | `memory` |
//! | a frozen worker was never noticed | `liveness` (and the SIGSTOP test of the Python package) |
//! | SIGTERM blamed the peers of cut streams | `graceful_shutdown` (and every SDK's going-away tests) |
//! | plain HTTP on the worker port got an empty reply | `worker_port_http` |
//! | nothing may be lost or reordered, whatever the ends do | `random_streams` |
//!
//! An invoke whose body cannot be parsed keeps its id (`main_socket.rs`); the protocol parsers
//! are fuzzed with proptest beside their code and in `core/protocol/tests/fuzz.rs`.

#[path = "../common/mod.rs"]
mod common;

mod graceful_shutdown;
mod liveness;
mod memory;
mod quotas;
mod random_streams;
mod slow_consumers;
mod worker_port_http;

/// The suite's tests run one at a time: several read the engine's memory or time a liveness
/// deadline, which a neighbour's load would blur on a two-core machine.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SUITE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SUITE.lock().await
}

/// Writes `request` as raw bytes on a new connection to `addr` and reads the answer to its end
/// (the server must close the connection).
async fn raw_http(addr: std::net::SocketAddr, request: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(common::WAIT, tcp.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    answer
}

/// A GET of `path` with extra header lines `headers` (each ending in CRLF) and
/// `Connection: close`, on a new connection to `addr`: the whole answer.
async fn raw_http_get(addr: std::net::SocketAddr, path: &str, headers: &str) -> String {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: engine\r\nConnection: close\r\n{headers}\r\n");
    String::from_utf8_lossy(&raw_http(addr, &request).await).into_owned()
}
