//! The reading end of a channel for C: bytes into the caller's buffer, text messages one at
//! a time, both with bounded memory.
//!
//! The core gives one ordered stream of events ([`ChannelReader::next_event`]); C asks for
//! its two kinds separately (`iii_reader_read`, `iii_reader_next_message`). So the events one
//! kind of caller meets while looking for the other wait here, in wire order, bounded as the
//! core bounds kept messages ([`MAX_KEPT_MESSAGES`], [`MAX_KEPT_MESSAGE_BYTES`]) and to
//! [`MAX_KEPT_FRAMES`] frames of bytes. A caller stops pulling while the kind it would add
//! is full (the writer then feels backpressure) and waits for another thread to take some,
//! or for its timeout. One caller pulls at a time; the others wait for what it pulls.

use std::collections::VecDeque;
use std::ffi::c_char;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard};

use bytes::Buf;
use iii_sdk::channel::{MAX_KEPT_MESSAGE_BYTES, MAX_KEPT_MESSAGES};
use iii_sdk::{ChannelDirection, ChannelEvent, ChannelReader, IIIError};
use tokio::sync::Notify;

use crate::blocking::block_on;
use crate::channel::parse_ref;
use crate::result::{Failure, iii_result, run, run_void};
use crate::strings::{check_out, handle, output_string};
use crate::worker::iii_worker;

/// Frames of bytes kept for `iii_reader_read`, at most (before looking for messages stops).
pub(crate) const MAX_KEPT_FRAMES: usize = 16;

/// Events pulled from the core and not yet taken, in wire order.
#[derive(Default)]
struct Pending {
    events: VecDeque<ChannelEvent>,
    messages: usize,
    message_bytes: usize,
    frames: usize,
    /// How the stream ended, once the core said so (`Ok` = clean end).
    end: Option<Result<(), IIIError>>,
}

impl Pending {
    fn messages_full(&self) -> bool {
        self.messages >= MAX_KEPT_MESSAGES || self.message_bytes >= MAX_KEPT_MESSAGE_BYTES
    }

    fn push(&mut self, event: ChannelEvent) {
        match &event {
            ChannelEvent::Data(chunk) if chunk.is_empty() => return,
            ChannelEvent::Data(_) => self.frames += 1,
            ChannelEvent::Message(text) => {
                self.messages += 1;
                self.message_bytes += text.len();
            }
        }
        self.events.push_back(event);
    }

    /// The index of the first event of the kind `want`.
    fn first(&self, want: Want) -> Option<usize> {
        self.events.iter().position(|event| {
            matches!(
                (want, event),
                (Want::Bytes, ChannelEvent::Data(_)) | (Want::Message, ChannelEvent::Message(_))
            )
        })
    }

    /// Copies bytes of the first data event into `buffer` (dropping the event once empty).
    fn take_bytes(&mut self, buffer: &mut [u8]) -> Option<usize> {
        let index = self.first(Want::Bytes)?;
        let ChannelEvent::Data(chunk) = self.events.get_mut(index)? else {
            return None;
        };
        let n = chunk.len().min(buffer.len());
        buffer[..n].copy_from_slice(&chunk[..n]);
        chunk.advance(n);
        if chunk.is_empty() {
            self.events.remove(index);
            self.frames -= 1;
        }
        Some(n)
    }

    /// The first text message, if one waits.
    fn take_message(&mut self) -> Option<String> {
        let index = self.first(Want::Message)?;
        let ChannelEvent::Message(text) = self.events.remove(index)? else {
            return None;
        };
        self.messages -= 1;
        self.message_bytes -= text.len();
        Some(text)
    }
}

/// What a caller takes.
#[derive(Clone, Copy)]
enum Want {
    Bytes,
    Message,
}

/// The reading end of a channel (opaque). Made by `iii_reader_open`, freed with
/// `iii_reader_free`.
pub struct iii_reader {
    core: ChannelReader,
    pending: Mutex<Pending>,
    /// Woken whenever an event arrives or is taken, or the stream ends.
    changed: Notify,
    /// Held by the one caller that pulls from the core; others wait for `changed`.
    pulling: tokio::sync::Mutex<()>,
}

impl iii_reader {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `take` takes from the pending events (of the kind `want`), or the end; pulls
    /// from the core while nothing of that kind waits.
    async fn take<T>(
        &self,
        want: Want,
        mut take: impl FnMut(&mut Pending) -> Option<T>,
    ) -> Result<T, Failure> {
        loop {
            let mut notified = pin!(self.changed.notified());
            notified.as_mut().enable();
            let may_pull = {
                let mut pending = self.pending();
                if let Some(taken) = take(&mut pending) {
                    drop(pending);
                    self.changed.notify_waiters();
                    return Ok(taken);
                }
                if let Some(end) = &pending.end {
                    return Err(end_failure(end));
                }
                match want {
                    Want::Bytes => !pending.messages_full(),
                    Want::Message => pending.frames < MAX_KEPT_FRAMES,
                }
            };
            if may_pull && let Ok(pulling) = self.pulling.try_lock() {
                // A caller that stops pulling (say, on its timeout) wakes the others, so one
                // of them takes over.
                let _wake = WakeOnDrop(&self.changed, Some(pulling));
                let event = self.core.next_event().await;
                let mut pending = self.pending();
                match event {
                    Ok(Some(event)) => pending.push(event),
                    Ok(None) => pending.end = Some(Ok(())),
                    Err(error) => pending.end = Some(Err(error)),
                }
                drop(pending);
                self.changed.notify_waiters();
                continue;
            }
            notified.await;
        }
    }
}

/// The right to pull: releases it, then wakes every waiting caller, when dropped.
struct WakeOnDrop<'a>(&'a Notify, Option<tokio::sync::MutexGuard<'a, ()>>);

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        drop(self.1.take());
        self.0.notify_waiters();
    }
}

/// The failure a read reports at the end of the stream.
fn end_failure(end: &Result<(), IIIError>) -> Failure {
    match end {
        Ok(()) => Failure::new(iii_result::III_END, "the stream ended"),
        Err(error) => error.clone().into(),
    }
}

/// Opens the reading end of the channel whose read ref is `json` (or is under the top-level
/// `key` of the object `json`; `key` may be NULL). The socket connects on the first read; a
/// refused connect (wrong key, unknown channel) is `III_CHANNEL_CONNECT` then.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_reader_open(
    worker: *mut iii_worker,
    json: *const c_char,
    key: *const c_char,
    reader_out: *mut *mut iii_reader,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let worker = unsafe { handle(worker, "worker") }?;
        check_out(reader_out, "reader_out")?;
        // SAFETY: as above.
        let channel_ref = unsafe { parse_ref(json, key, ChannelDirection::Read) }?;
        let reader = Box::new(iii_reader {
            core: ChannelReader::new(worker.iii.address(), &channel_ref),
            pending: Mutex::default(),
            changed: Notify::new(),
            pulling: tokio::sync::Mutex::new(()),
        });
        // SAFETY: checked non-NULL above.
        unsafe { *reader_out = Box::into_raw(reader) };
        Ok(())
    })
}

/// Reads up to `capacity` bytes into `buffer`: `III_OK` with `*len_out > 0`, `III_END` at the
/// clean end, an error for an aborted, lost or expired stream, or `III_TIMEOUT` (nothing is
/// lost: the rest of a frame larger than `capacity` is kept for the next read). While
/// 1,024 messages (or 4 MiB of them) wait to be taken, it waits for `iii_reader_next_message`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_reader_read(
    reader: *mut iii_reader,
    buffer: *mut u8,
    capacity: usize,
    len_out: *mut usize,
    timeout_ms: u32,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let reader = unsafe { handle(reader, "reader") }?;
        if buffer.is_null() {
            return Err(Failure::null("buffer"));
        }
        check_out(len_out, "len_out")?;
        if capacity == 0 {
            return Err(Failure::invalid("`capacity` is 0"));
        }
        // SAFETY: `buffer` points to `capacity` writable bytes by the contract.
        let buffer = unsafe { std::slice::from_raw_parts_mut(buffer, capacity) };
        let read = reader.take(Want::Bytes, |pending| pending.take_bytes(buffer));
        let n = block_on(timeout_ms, read)??;
        // SAFETY: checked non-NULL above.
        unsafe { *len_out = n };
        Ok(())
    })
}

/// The next text message (free it with `iii_string_free`): `III_OK`, `III_END` when the
/// stream ended cleanly and no message is left (the stream's error if it did not end
/// cleanly), or `III_TIMEOUT`. Bytes read on the way are kept for `iii_reader_read` (up to 16
/// frames; then it waits for them to be read).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_reader_next_message(
    reader: *mut iii_reader,
    timeout_ms: u32,
    message_out: *mut *mut c_char,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let reader = unsafe { handle(reader, "reader") }?;
        check_out(message_out, "message_out")?;
        let next = reader.take(Want::Message, Pending::take_message);
        let message = block_on(timeout_ms, next)??;
        let text = output_string(message, "the message")?;
        // SAFETY: checked non-NULL above.
        unsafe { *message_out = text };
        Ok(())
    })
}

/// Closes the reading end: the writer's later writes fail with `III_READER_CLOSED`, and so
/// do this reader's pending and later reads. Waits (a few seconds at most) for the engine to
/// acknowledge.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_reader_close(reader: *mut iii_reader) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let reader = unsafe { handle(reader, "reader") }?;
        block_on(0, reader.core.close())?;
        *reader.pending() = Pending {
            end: Some(Err(IIIError::ReaderClosed)),
            ..Pending::default()
        };
        reader.changed.notify_waiters();
        Ok(())
    })
}

/// Fills `*stats_out` with what `reader` has received so far (bytes the core has handed to
/// this reader, a few frames ahead of `iii_reader_read` at most). Never blocks.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_reader_stats(
    reader: *mut iii_reader,
    stats_out: *mut crate::channel::iii_channel_stats,
) -> iii_result {
    run(|| {
        // SAFETY: the crate-level contract.
        let reader = unsafe { handle(reader, "reader") }?;
        check_out(stats_out, "stats_out")?;
        // SAFETY: checked non-NULL above.
        unsafe { *stats_out = reader.core.stats().into() };
        Ok(())
    })
}

/// Frees a reader (a reader not closed first just drops its socket). NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iii_reader_free(reader: *mut iii_reader) {
    if reader.is_null() {
        return;
    }
    run_void(|| {
        // SAFETY: made by `iii_reader_open`, freed once by the contract.
        let reader = unsafe { Box::from_raw(reader) };
        let _runtime = iii_sdk::runtime().enter();
        drop(reader);
    });
}
