//! The native addon of the npm package `iii-sdk`: napi-rs classes over the Rust core
//! (`iii-sdk`). The JavaScript layer (`index.js`) turns these into the public API: Node
//! streams over readers and writers, JSON conversion with live channel ends, `http()`.
//!
//! Every async method returns a promise settled from the core's own runtime
//! ([`iii_sdk::runtime`]); napi's `tokio_rt` feature stays off (see docs/ARCHITECTURE.md, "Runtimes").
#![deny(missing_docs)]
// Items only JavaScript calls have no Rust caller: the test build, which lacks the napi
// registration that uses them, would call them dead.
#![cfg_attr(test, allow(dead_code))]

mod channel;
mod ends;
mod errors;
mod http;
mod promise;
mod worker;
