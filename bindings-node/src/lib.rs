//! The native addon of the npm package `iii-sdk`: napi-rs classes over the Rust core
//! (`iii-sdk`). The JavaScript layer (`index.js`) turns these into the public API: Node
//! streams over readers and writers, JSON conversion with live channel ends, `http()`.
//!
//! Every async method returns a promise settled from the core's own runtime
//! ([`iii_sdk::runtime`]); napi's `tokio_rt` feature stays off (see `TOOLCHAIN.md`).
#![deny(missing_docs)]

mod channel;
mod errors;
mod promise;
mod worker;
