//! Size and count limits shared by the engine and the SDKs, so both sides split and bound
//! frames the same way.

/// Largest binary frame a writer sends and the engine forwards to a reader (64 KiB).
pub const CHANNEL_FRAME_BYTES: usize = 64 * 1024;

/// One such frame on the wire, with the largest WebSocket header (14 bytes): the read buffer
/// that takes a channel frame in one system call.
pub const CHANNEL_FRAME_WIRE_BYTES: usize = CHANNEL_FRAME_BYTES + 14;

/// Largest frame the engine accepts on a channel socket; larger ones close with 1009.
pub const MAX_CHANNEL_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Largest message the engine accepts on the main socket by default: 64 MiB, as the published
/// engine does (the published Python client sends trigger payloads of up to 64 MiB, in 1 MiB
/// fragments; a lower cap would cost such a worker its connection).
pub const MAX_MAIN_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Channel buffer size in frames when `engine::channels::create` gets none.
pub const DEFAULT_BUFFER_FRAMES: u64 = 64;

/// Largest channel buffer size in frames a caller may ask for.
pub const MAX_BUFFER_FRAMES: u64 = 1024;

/// Default client-side timeout of a call with a result, in milliseconds.
pub const DEFAULT_TRIGGER_TIMEOUT_MS: u64 = 30_000;

/// Moved to [`crate::builtins`]; kept here so code written against earlier versions builds.
#[doc(hidden)]
pub use crate::builtins::{FN_CHANNELS_CREATE, FN_WORKERS_REGISTER};
