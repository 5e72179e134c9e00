//! The reading end of a channel for C: bytes into the caller's buffer, text messages one at
//! a time, both with bounded memory.
//!
//! The core's `ChannelReader` gives whole frames (`next_binary`) and hands text messages to
//! `on_message` callbacks while it reads. Here a caller's thread drives it (no background
//! task), and what it reads lands in one of two bounded places:
//! - bytes of a frame not yet taken (a frame larger than the caller's buffer, or frames read
//!   while looking for a message): at most `MAX_KEPT_FRAMES` (16) frames;
//! - text messages not yet taken: at most `MAX_MESSAGES` (1,024) messages or
//!   `MAX_MESSAGE_BYTES` (4 MiB) bytes.
//!
//! A caller stops reading the socket while the other place is full (the writer then feels
//! backpressure) and waits for another thread to take from it, or for its timeout. The
//! callback is registered only after the first read has flagged this end as driven by its
//! consumer, so the core starts no pump task that would read ahead on its own.

use std::collections::VecDeque;
use std::ffi::c_char;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use bytes::{Buf, Bytes};
use iii_sdk::{ChannelDirection, ChannelReader, IIIError};
use tokio::sync::Notify;

use crate::blocking::block_on;
use crate::channel::parse_ref;
use crate::result::{Failure, iii_result, run, run_void};
use crate::strings::{check_out, handle, output_string};
use crate::worker::iii_worker;

/// Text messages queued for `iii_reader_next_message`, at most (before reading stops).
pub(crate) const MAX_MESSAGES: usize = 1024;
/// Bytes of queued text messages, at most (before reading stops).
pub(crate) const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Frames of bytes kept for `iii_reader_read`, at most (before looking for messages stops).
pub(crate) const MAX_KEPT_FRAMES: usize = 16;

#[derive(Default)]
struct Messages {
    queue: VecDeque<String>,
    bytes: usize,
}

impl Messages {
    fn full(&self) -> bool {
        self.queue.len() >= MAX_MESSAGES || self.bytes >= MAX_MESSAGE_BYTES
    }
}

#[derive(Default)]
struct Data {
    /// Frames read and not yet (fully) taken; the front may be partly taken.
    kept: VecDeque<Bytes>,
    /// How the stream ended, once the core said so (`Ok` = clean end).
    end: Option<Result<(), IIIError>>,
}

/// What the reader's callers share with the message callback.
#[derive(Default)]
struct Shared {
    messages: Mutex<Messages>,
    data: Mutex<Data>,
    /// Woken whenever a message or bytes arrive or are taken, or the stream ends.
    changed: Notify,
}

impl Shared {
    fn messages(&self) -> MutexGuard<'_, Messages> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push_message(&self, message: String) {
        let mut messages = self.messages();
        messages.bytes += message.len();
        messages.queue.push_back(message);
        drop(messages);
        self.changed.notify_waiters();
    }
}

/// The right to drive the core reader. Giving it up wakes the waiting callers, so that one of
/// them takes over when the driver returns (say, on its timeout) while they still wait.
struct Driving<'a> {
    guard: Option<tokio::sync::MutexGuard<'a, ()>>,
    shared: &'a Shared,
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.shared.changed.notify_waiters();
    }
}

/// What a caller waits for while it drives the socket.
#[derive(Clone, Copy)]
enum Want {
    Bytes,
    Message,
}

/// The reading end of a channel (opaque). Made by `iii_reader_open`, freed with
/// `iii_reader_free`.
pub struct iii_reader {
    core: ChannelReader,
    shared: Arc<Shared>,
    /// Held by the one caller that polls the core reader; others wait for `changed`.
    drive: tokio::sync::Mutex<()>,
    /// Set once the message callback is (being) registered.
    listening: AtomicBool,
}

/// Runs `check` each time `shared.changed` fires until it returns `Some`.
async fn wait_until<T>(shared: &Shared, mut check: impl FnMut() -> Option<T>) -> T {
    loop {
        let mut notified = pin!(shared.changed.notified());
        notified.as_mut().enable();
        if let Some(value) = check() {
            return value;
        }
        notified.await;
    }
}

impl iii_reader {
    /// The right to drive the core reader, unless another caller has it.
    fn try_drive(&self) -> Option<Driving<'_>> {
        let guard = self.drive.try_lock().ok()?;
        Some(Driving {
            guard: Some(guard),
            shared: &self.shared,
        })
    }

    /// The core's next frame; the first call registers the message callback after flagging
    /// the consumer, so that no pump task reads ahead.
    async fn next_frame(&self) -> Result<Option<Bytes>, IIIError> {
        let mut read = pin!(self.core.next_binary());
        if !self.listening.swap(true, Ordering::AcqRel) {
            let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
            let shared = self.shared.clone();
            self.core.on_message(move |m| shared.push_message(m)).await;
            if let Poll::Ready(outcome) = first {
                return outcome;
            }
        }
        read.await
    }

    /// Drives the core reader until it gives a frame or the end, or until `want` is served
    /// (a message arrived) or blocked (the message queue filled up).
    async fn pull(&self, want: Want) {
        let outcome = {
            let read = self.next_frame();
            let stop = wait_until(&self.shared, || {
                let messages = self.shared.messages();
                let stop = match want {
                    Want::Message => !messages.queue.is_empty(),
                    Want::Bytes => messages.full(),
                };
                stop.then_some(())
            });
            tokio::select! {
                biased;
                outcome = read => Some(outcome),
                () = stop => None,
            }
        };
        let Some(outcome) = outcome else { return };
        let mut data = self.shared.data();
        match outcome {
            Ok(Some(chunk)) if chunk.is_empty() => {}
            Ok(Some(chunk)) => data.kept.push_back(chunk),
            Ok(None) => data.end = Some(Ok(())),
            Err(error) => data.end = Some(Err(error)),
        }
        drop(data);
        self.shared.changed.notify_waiters();
    }

    /// Up to `buffer.len()` bytes, or the end (`III_END` or the stream's error).
    async fn read(&self, buffer: &mut [u8]) -> Result<usize, Failure> {
        loop {
            let mut notified = pin!(self.shared.changed.notified());
            notified.as_mut().enable();
            {
                let mut data = self.shared.data();
                if let Some(front) = data.kept.front_mut() {
                    let n = front.len().min(buffer.len());
                    buffer[..n].copy_from_slice(&front[..n]);
                    front.advance(n);
                    if front.is_empty() {
                        data.kept.pop_front();
                        drop(data);
                        self.shared.changed.notify_waiters();
                    }
                    return Ok(n);
                }
                if let Some(end) = &data.end {
                    return Err(end_failure(end));
                }
            }
            if !self.shared.messages().full()
                && let Some(_driving) = self.try_drive()
            {
                self.pull(Want::Bytes).await;
                continue;
            }
            notified.await;
        }
    }

    /// The next text message, or the end (`III_END` or the stream's error).
    async fn next_message(&self) -> Result<String, Failure> {
        loop {
            let mut notified = pin!(self.shared.changed.notified());
            notified.as_mut().enable();
            let taken = {
                let mut messages = self.shared.messages();
                let taken = messages.queue.pop_front();
                if let Some(message) = &taken {
                    messages.bytes -= message.len();
                }
                taken
            };
            if let Some(message) = taken {
                self.shared.changed.notify_waiters();
                return Ok(message);
            }
            let kept_full = {
                let data = self.shared.data();
                if let Some(end) = &data.end {
                    return Err(end_failure(end));
                }
                data.kept.len() >= MAX_KEPT_FRAMES
            };
            if !kept_full && let Some(_driving) = self.try_drive() {
                self.pull(Want::Message).await;
                continue;
            }
            notified.await;
        }
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
            shared: Arc::default(),
            drive: tokio::sync::Mutex::new(()),
            listening: AtomicBool::new(false),
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
        let n = block_on(timeout_ms, reader.read(buffer))??;
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
        let message = block_on(timeout_ms, reader.next_message())??;
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
        {
            let mut data = reader.shared.data();
            data.kept.clear();
            data.end = Some(Err(IIIError::ReaderClosed));
        }
        *reader.shared.messages() = Messages::default();
        reader.shared.changed.notify_waiters();
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
