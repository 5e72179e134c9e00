//! Channel ends from refs, and the writing end: bytes, text messages, close and abort.
//!
//! Refs cross the boundary as JSON: either the ref object itself, or a JSON object holding it
//! under a top-level key (a handler's whole input and `"reader"`, say).

use std::ffi::c_char;

use iii_sdk::binding::ref_at;
use iii_sdk::{ChannelDirection, ChannelWriter, StreamChannelRef};

use crate::blocking::block_on;
use crate::result::{Failure, iii_result, run, run_void};
use crate::strings::{check_out, handle, input_str, optional_str, parse_json};
use crate::worker::iii_worker;

pub use crate::reader::iii_reader;

/// The ref in `json` (under `key` when given), which must open the `wanted` end.
///
/// # Safety
/// `json` and `key` follow the crate-level contract for strings.
pub(crate) unsafe fn parse_ref(
    json: *const c_char,
    key: *const c_char,
    wanted: ChannelDirection,
) -> Result<StreamChannelRef, Failure> {
    // SAFETY: forwarded contract.
    let text = unsafe { input_str(json, "json") }?;
    // SAFETY: as above.
    let key = unsafe { optional_str(key, "key") }?;
    let value = parse_json(text, "json")?;
    ref_at(&value, key, wanted).map_err(|error| Failure::invalid(format!("`json`: {error}")))
}

/// The writing end of a channel (opaque). Made by `iii_writer_open`, freed with
/// `iii_writer_free`.
pub struct iii_writer {
    core: ChannelWriter,
}

/// Opens the writing end of the channel whose write ref is `json` (or is under the
/// top-level `key` of the object `json`; `key` may be NULL). The socket connects on first
/// use; a refused connect (wrong key, unknown channel) is `III_CHANNEL_CONNECT` then.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_writer_open(
    worker: *mut iii_worker,
    json: *const c_char,
    key: *const c_char,
    writer_out: *mut *mut iii_writer,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let worker = unsafe { handle(worker, "worker") }?;
        check_out(writer_out, "writer_out")?;
        // SAFETY: as above.
        let channel_ref = unsafe { parse_ref(json, key, ChannelDirection::Write) }?;
        let core = ChannelWriter::new(worker.iii.address(), &channel_ref);
        // SAFETY: checked non-NULL above.
        unsafe { *writer_out = Box::into_raw(Box::new(iii_writer { core })) };
        Ok(())
    })
}

/// Writes `len` bytes (in frames of up to 64 KiB), blocking while the channel's buffer is
/// full. `data` may be NULL when `len` is 0. On `III_TIMEOUT` part of the data may have been
/// sent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_writer_write(
    writer: *mut iii_writer,
    data: *const u8,
    len: usize,
    timeout_ms: u32,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let writer = unsafe { handle(writer, "writer") }?;
        let data: &[u8] = if len == 0 {
            &[]
        } else if data.is_null() {
            return Err(Failure::null("data"));
        } else {
            // SAFETY: `data` points to `len` readable bytes by the contract.
            unsafe { std::slice::from_raw_parts(data, len) }
        };
        block_on(timeout_ms, writer.core.write(data))??;
        Ok(())
    })
}

/// Sends a text message (UTF-8), delivered to the reader's `iii_reader_next_message` in
/// order with the bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_writer_send_message(
    writer: *mut iii_writer,
    message: *const c_char,
    timeout_ms: u32,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let writer = unsafe { handle(writer, "writer") }?;
        // SAFETY: as above.
        let message = unsafe { input_str(message, "message") }?;
        block_on(timeout_ms, writer.core.send_message(message))??;
        Ok(())
    })
}

/// Ends the stream cleanly; returns once the engine has every byte written before. Closing
/// twice is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_writer_close(writer: *mut iii_writer, timeout_ms: u32) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let writer = unsafe { handle(writer, "writer") }?;
        block_on(timeout_ms, writer.core.close())??;
        Ok(())
    })
}

/// Ends the stream as failed: the reader gets `III_CHANNEL_ABORTED` with `reason` (UTF-8, at
/// most 123 bytes are sent).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_writer_abort(
    writer: *mut iii_writer,
    reason: *const c_char,
    timeout_ms: u32,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let writer = unsafe { handle(writer, "writer") }?;
        // SAFETY: as above.
        let reason = unsafe { input_str(reason, "reason") }?;
        block_on(timeout_ms, writer.core.abort(reason))??;
        Ok(())
    })
}

/// What one channel end has moved so far, filled by `iii_writer_stats` and
/// `iii_reader_stats`: a program shows progress without counting bytes itself.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct iii_channel_stats {
    /// Payload bytes written, or handed to this reader.
    pub bytes: u64,
    /// Binary frames (of at most 64 KiB).
    pub frames: u64,
    /// Text messages.
    pub messages: u64,
    /// Milliseconds spent waiting: a writer for a slow reader, a reader for data.
    pub blocked_ms: u64,
}

impl From<iii_sdk::ChannelStats> for iii_channel_stats {
    fn from(stats: iii_sdk::ChannelStats) -> Self {
        Self {
            bytes: stats.bytes,
            frames: stats.frames,
            messages: stats.messages,
            blocked_ms: u64::try_from(stats.blocked.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Fills `*stats_out` with what `writer` has written so far. Never blocks.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_writer_stats(
    writer: *mut iii_writer,
    stats_out: *mut iii_channel_stats,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let writer = unsafe { handle(writer, "writer") }?;
        check_out(stats_out, "stats_out")?;
        // SAFETY: checked non-NULL above.
        unsafe { *stats_out = writer.core.stats().into() };
        Ok(())
    })
}

/// Frees a writer. A writer freed without `iii_writer_close` drops its socket: its reader gets
/// `III_WRITER_LOST`. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_writer_free(writer: *mut iii_writer) {
    if writer.is_null() {
        return;
    }
    run_void(|| {
        // SAFETY: made by `iii_writer_open`, freed once by the contract.
        let writer = unsafe { Box::from_raw(writer) };
        let _runtime = iii_sdk::runtime().enter();
        drop(writer);
    });
}
