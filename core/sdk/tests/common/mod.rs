//! Shared helpers of the integration tests: an in-process engine on port 0, workers that are
//! ready before a test uses them, bounded waits, and deterministic data with running hashes.
#![allow(dead_code)]

pub mod engine_process;
pub mod http_client;
pub mod http_server;

use std::future::Future;
use std::time::Duration;

use iii_engine::{Engine, EngineConfig};
use iii_sdk::{ChannelReader, ChannelWriter, III, IIIError, InitOptions, ReconnectionConfig};
use sha2::{Digest, Sha256};

/// Fails the test (instead of hanging it) when `future` takes longer than `seconds`.
pub async fn within<F: Future>(seconds: u64, future: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(seconds), future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {seconds} s"),
    }
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// An engine on 127.0.0.1 and a free port.
pub async fn engine() -> Engine {
    engine_with(EngineConfig::ephemeral()).await
}

/// An engine with `config`.
pub async fn engine_with(config: EngineConfig) -> Engine {
    init_tracing();
    within(10, iii_engine::start(config))
        .await
        .expect("engine starts")
}

/// Options with a fast reconnect, so tests that restart the engine stay short.
pub fn fast_reconnect() -> InitOptions {
    InitOptions {
        reconnection: ReconnectionConfig {
            initial_delay_ms: 100,
            max_delay_ms: 500,
            ..ReconnectionConfig::default()
        },
        ..InitOptions::default()
    }
}

/// A worker connected to `engine`; call [`ready`] after registering its functions.
pub fn worker(engine: &Engine) -> III {
    iii_sdk::register_worker_with(&engine.ws_url(), fast_reconnect())
}

/// Waits until `iii` is connected and the engine has processed its registrations.
pub async fn ready(iii: &III) {
    within(10, iii.ready()).await.expect("worker ready");
}

/// Deterministic test data: byte `i` of a stream is a function of `i` (and `seed`) only, so
/// writer and reader can generate and check it piece by piece.
pub fn fill(seed: u64, offset: u64, buffer: &mut [u8]) {
    for (i, byte) in buffer.iter_mut().enumerate() {
        let n = offset + i as u64;
        let word = (n / 8)
            .wrapping_add(seed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        *byte = (word >> ((n % 8) * 8)) as u8;
    }
}

/// The bytes of a whole (small) stream.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut buffer = vec![0; len];
    fill(seed, 0, &mut buffer);
    buffer
}

/// Writes `len` deterministic bytes in writes of `chunk` bytes and closes; returns the hash.
pub async fn write_stream(
    writer: &ChannelWriter,
    seed: u64,
    len: u64,
    chunk: usize,
) -> Result<[u8; 32], IIIError> {
    let mut hash = Sha256::new();
    let mut buffer = vec![0; chunk];
    let mut offset = 0;
    while offset < len {
        let n = chunk.min((len - offset) as usize);
        fill(seed, offset, &mut buffer[..n]);
        hash.update(&buffer[..n]);
        writer.write(&buffer[..n]).await?;
        offset += n as u64;
    }
    writer.close().await?;
    Ok(hash.finalize().into())
}

/// Reads a stream to its end; returns its length and hash.
pub async fn read_stream(reader: &ChannelReader) -> Result<(u64, [u8; 32]), IIIError> {
    let mut hash = Sha256::new();
    let mut len = 0;
    while let Some(chunk) = reader.next_binary().await? {
        assert!(chunk.len() <= 64 * 1024, "frame of {} bytes", chunk.len());
        hash.update(&chunk);
        len += chunk.len() as u64;
    }
    Ok((len, hash.finalize().into()))
}

/// The sha256 of `len` deterministic bytes.
pub fn expected_hash(seed: u64, len: u64) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    let mut offset = 0;
    while offset < len {
        let n = buffer.len().min((len - offset) as usize);
        fill(seed, offset, &mut buffer[..n]);
        hash.update(&buffer[..n]);
        offset += n as u64;
    }
    hash.finalize().into()
}

/// A worker owning `function_id` (a handler that sleeps for 20 s) and a second worker whose
/// call to it has been in flight for 300 ms: `(owner, caller, the call)`.
pub async fn slow_call_in_flight(
    engine: &Engine,
    function_id: &'static str,
) -> (
    III,
    III,
    tokio::task::JoinHandle<Result<serde_json::Value, IIIError>>,
) {
    let owner = worker(engine);
    owner.register_function(iii_sdk::RegisterFunction::new_async(
        function_id,
        |_: serde_json::Value| async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            Ok(serde_json::Value::Null)
        },
    ));
    ready(&owner).await;
    let caller = worker(engine);
    let call = tokio::spawn({
        let caller = caller.clone();
        async move {
            caller
                .trigger(iii_sdk::TriggerRequest::new(
                    function_id,
                    serde_json::Value::Null,
                ))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    (owner, caller, call)
}
