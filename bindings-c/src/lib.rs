//! The C ABI of the iii SDK: `libiii.so` / `libiii.a` and the generated `include/iii.h`.
//!
//! A thin layer over `iii-sdk`: opaque handles around the core's worker and channel ends,
//! result codes instead of errors, JSON text instead of values. The contract (results and
//! out-parameters, ownership, NULL, threads, timeouts) is written in `bindings-c/README.md`
//! and enforced here: every entry point runs inside `result::run` (a panic boundary), checks
//! its pointers, and blocks only through `blocking::block_on`.
//!
//! # Safety
//! Every `unsafe extern "C"` function has the same contract: each pointer argument is NULL
//! (where the function refuses or accepts it as documented) or valid for the call — a handle
//! made by this library and not yet freed, a NUL-terminated string, or a buffer of the given
//! length — and a handle is not freed while another call uses it.
#![deny(missing_docs)]
#![allow(clippy::missing_safety_doc)] // the contract above covers every entry point
#![allow(non_camel_case_types)] // C names: iii_worker, iii_result, …

mod blocking;
pub mod channel;
pub mod handler;
pub mod reader;
pub mod result;
pub mod strings;
pub mod worker;

pub use channel::{iii_reader, iii_writer};
pub use handler::{iii_handler, iii_reply};
pub use result::iii_result;
pub use worker::iii_worker;
