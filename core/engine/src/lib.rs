//! The iii engine: workers connect over WebSocket, register functions and call each other
//! through it, and stream bytes to each other through channels (`shared/PROTOCOL.md`).
//!
//! Start one in-process with [`start`]; the `iii` binary is a thin CLI over the same call.
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

mod builtins;
mod channels;
mod config;
mod engine;
mod functions;
mod invocations;
mod listener;
mod stats;
mod triggers;
mod util;
mod worker;
mod ws;

pub use config::EngineConfig;
pub use engine::{Engine, start};
pub use stats::EngineStats;
pub use worker::registry::WorkerInfo;
