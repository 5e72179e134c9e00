//! The engine's built-in functions: ids a worker calls like any other function, answered by
//! the engine itself (docs/PROTOCOL.md §3.3).

/// Creates a channel: input `{"buffer_size"?: frames}`, result `{"writer": ref, "reader": ref}`.
pub const FN_CHANNELS_CREATE: &str = "engine::channels::create";

/// Workers call it (void) to describe themselves: name, runtime, version, pid.
pub const FN_WORKERS_REGISTER: &str = "engine::workers::register";

/// Input key of [`FN_CHANNELS_CREATE`]: the channel buffer in frames.
pub const CHANNELS_CREATE_BUFFER_SIZE: &str = "buffer_size";
/// Result key of [`FN_CHANNELS_CREATE`]: the write ref.
pub const CHANNELS_CREATE_WRITER: &str = "writer";
/// Result key of [`FN_CHANNELS_CREATE`]: the read ref.
pub const CHANNELS_CREATE_READER: &str = "reader";

/// The key the engine adds to an object input of every invocation a worker makes: the id of
/// the calling worker's connection.
pub const CALLER_WORKER_ID: &str = "_caller_worker_id";
