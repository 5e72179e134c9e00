//! The iii engine: workers connect over WebSocket, register functions and call each other
//! through it, and stream bytes to each other through channels (docs/PROTOCOL.md).
//!
//! Start one in-process with [`start`]; the `iii` binary is a thin CLI over the same call.
//!
//! What a channel client can rely on (beyond docs/PROTOCOL.md §4):
//! - Every frame a writer sent before its Close is in the channel buffer when the engine
//!   echoes that Close (same code and reason), so a writer that waits for the echo knows the
//!   engine has its data. A writer closed by the engine instead gets 4003 `reader_closed`
//!   (its unsent or buffered frames are dropped) or 4008 `expired`.
//! - A reader receives every buffered frame, binary ones at most 64 KiB, then the end status
//!   as its Close; the engine then waits briefly for the reader's Close reply.
//! - Keys are 64 lowercase hex characters (upper case accepted), one per end.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let engine = iii_engine::start(iii_engine::EngineConfig::ephemeral()).await?;
//! println!("workers connect to {}", engine.ws_url());
//! engine.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod accept;
pub mod access;
mod builtins;
mod channels;
mod cluster;
mod config;
pub mod config_file;
mod discovery;
mod engine;
mod forward;
mod functions;
mod functions_available;
mod health;
mod http;
pub mod inspect;
mod invocations;
mod lifecycle;
mod listener;
mod memory;
mod metrics;
mod quota;
mod remote;
mod runtime;
mod state;
mod stats;
mod tcp;
mod tls;
mod triggers;
mod util;
mod worker;
mod ws;

pub use cluster::config::{ClusterConfig, NatsAuth, NatsTls};
pub use config::{
    DEFAULT_HTTP_PORT, DEFAULT_PORT, EngineConfig, Quotas, ReplicaChoice, WorkerListener,
};
pub use engine::{Engine, start};
pub use runtime::{DEFAULT_WORKER_THREADS, build_runtime};
pub use stats::EngineStats;
pub use tls::TlsFiles;
pub use worker::registry::WorkerInfo;
