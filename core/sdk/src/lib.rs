//! The Rust client of the iii engine: register functions, call them, and stream data between
//! them through channels.
//!
//! ```no_run
//! use iii_sdk::{IIIError, RegisterFunction, TriggerRequest, register_worker};
//! use serde_json::{Value, json};
//!
//! # async fn demo() -> Result<(), IIIError> {
//! let iii = register_worker("ws://127.0.0.1:49134");
//! iii.register_function(RegisterFunction::new_async("math::double", |input: Value| async move {
//!     Ok(json!(input["n"].as_i64().unwrap_or(0) * 2))
//! }));
//! let doubled = iii.trigger(TriggerRequest::new("math::double", json!({"n": 21}))).await?;
//! assert_eq!(doubled, json!(42));
//!
//! let channel = iii.create_channel(None).await?;
//! channel.writer.write(b"hello").await?;
//! channel.writer.close().await?;
//! assert_eq!(channel.reader.read_all().await?, b"hello");
//! # Ok(()) }
//! ```
//!
//! HTTP endpoints are functions too: [`http()`] adapts a handler taking an [`HttpRequest`] and
//! an [`HttpResponse`] for a function bound to an `http` trigger (see the [`mod@http`] module).
//!
//! All sockets are opened on one process-wide runtime owned by this crate ([`runtime`]), whose
//! reactor and timers drive them; the async methods either message the SDK's tasks or poll those
//! sockets directly, so they can be awaited from any executor (another tokio runtime, a binding's
//! event loop, or a plain `block_on`). This crate is the core that the Python, Node and C
//! bindings wrap.
#![deny(missing_docs)]

pub mod binding;
pub mod channel;
mod connection;
pub mod error;
pub mod function;
pub mod http;
mod invocation;
mod link;
pub mod options;
mod runtime;
mod state;
pub mod tls;
pub mod trigger;
pub mod trigger_type;
mod worker;

pub use channel::{Channel, ChannelEvent, ChannelReader, ChannelStats, ChannelWriter};
pub use error::{ErrorKind, IIIError};
pub use function::RegisterFunction;
pub use http::{HttpRequest, HttpResponse, http};
pub use invocation::{InvocationContext, current_engine_address, current_invocation};
pub use options::{DEFAULT_CONNECT_TIMEOUT_MS, InitOptions, ReconnectionConfig};
pub use runtime::{runtime, tokio_runtime};
pub use state::ConnectionState;
pub use trigger::{CallContext, RegisterTrigger, TriggerRequest};
pub use trigger_type::{RegisterTriggerType, TriggerTypeRef};
pub use worker::{
    FunctionRef, III, TriggerRef, check_engine_url, register_worker, register_worker_with,
    try_register_worker_with,
};

/// The wire protocol's names (error codes, close codes, limits), for code that needs them
/// beyond the types re-exported here; bindings reach the protocol only through this.
pub use iii_protocol as protocol;

pub use iii_protocol::{
    ChannelDirection, EndStatus, ErrorBody, Message, PathStep, StreamChannelRef, TraceContext,
    TriggerAction, extract_channel_refs,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}

    /// Bindings move handles across threads and spawn these futures on any runtime.
    #[test]
    fn handles_are_send_sync_and_futures_are_send() {
        send_sync::<III>();
        send_sync::<ChannelWriter>();
        send_sync::<ChannelReader>();
        send_sync::<Channel>();
        send_sync::<IIIError>();
        send_sync::<HttpRequest>();
        send_sync::<HttpResponse>();
        let channel_ref = StreamChannelRef {
            channel_id: "c".into(),
            access_key: "k".into(),
            direction: ChannelDirection::Read,
        };
        let writer = ChannelWriter::new("ws://127.0.0.1:1", &channel_ref);
        let reader = ChannelReader::new("ws://127.0.0.1:1", &channel_ref);
        let iii = register_worker("ws://127.0.0.1:1");
        send(&writer.write(b"x"));
        send(&writer.write_bytes(bytes::Bytes::new()));
        send(&writer.send_message("m"));
        send(&writer.close());
        send(&writer.abort("why"));
        send(&reader.next_binary());
        send(&reader.next_event());
        send(&reader.read_all());
        send(&reader.on_message(|_| {}));
        send(&reader.close());
        send(&iii.ready());
        send(&iii.create_channel(None));
        send(&iii.trigger(TriggerRequest::new("f", serde_json::Value::Null)));
        iii.shutdown();
    }
}
