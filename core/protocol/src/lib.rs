//! The iii wire protocol as plain data: the JSON messages of the main socket, channel refs and
//! how to find them in a payload, channel close codes and the frame-size limits.
//!
//! This crate does no I/O so that the engine, the SDK and every binding agree on one
//! definition of the contract (docs/PROTOCOL.md) without pulling in a runtime.
#![deny(missing_docs)]

pub mod builtins;
pub mod channel;
pub mod close;
pub mod cluster;
pub mod codes;
pub mod http;
pub mod limits;
pub mod message;
pub mod remote;
pub mod streams;
#[cfg(feature = "tls")]
pub mod tls;
pub mod trace;

pub use channel::{
    ChannelDirection, PathStep, StreamChannelRef, extract_channel_refs, find_channel_refs,
    is_channel_ref,
};
pub use close::EndStatus;
pub use message::{ErrorBody, Message, TriggerAction};
pub use trace::TraceContext;
