//! A channel's buffer between its writer socket and its reader socket, bounded twice: in
//! frames (a bounded queue of `buffer_size`) and in bytes (a semaphore of
//! `buffer_size × 64 KiB` permits, taken per frame and given back once the reader's socket has
//! the frame). Frames are `Bytes`, so nothing is copied on the way through.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use iii_protocol::limits::CHANNEL_FRAME_BYTES;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};

use super::stats::ChannelStats;
use crate::stats::{ByteCounters, permits_for};

/// One frame on its way from writer to reader.
#[derive(Debug)]
pub(crate) enum Frame {
    /// Payload bytes, at most 64 KiB.
    Binary(Bytes),
    /// A message (a text frame), passed whole.
    Text(Utf8Bytes),
}

impl Frame {
    /// Payload length in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Binary(bytes) => bytes.len(),
            Self::Text(text) => text.len(),
        }
    }

    /// The same frame in an allocation of its own. Tungstenite hands out each payload as a
    /// slice of its read buffer, so a frame that waits in the buffer would keep a whole read
    /// allocation (up to twice the frame) alive; a copy keeps the bytes held equal to the
    /// bytes counted.
    fn compacted(self) -> Self {
        match self {
            Self::Binary(bytes) => Self::Binary(Bytes::copy_from_slice(&bytes)),
            text @ Self::Text(_) => text,
        }
    }

    /// The WebSocket message that carries this frame to the reader.
    pub(crate) fn into_message(self) -> WsMessage {
        match self {
            Self::Binary(bytes) => WsMessage::Binary(bytes),
            Self::Text(text) => WsMessage::Text(text),
        }
    }
}

/// Splits a writer's binary frame into frames of at most 64 KiB without copying. An empty
/// frame stays one empty frame.
pub(crate) fn split_binary(bytes: Bytes) -> impl Iterator<Item = Bytes> {
    let len = bytes.len();
    (0..len.max(1))
        .step_by(CHANNEL_FRAME_BYTES)
        .map(move |start| bytes.slice(start..len.min(start + CHANNEL_FRAME_BYTES)))
}

/// Frames already waiting in a buffer from which a new frame is copied into its own
/// allocation (see [`Frame::compacted`]). While the reader keeps up, frames pass through
/// without a copy; once they queue up, the reader is the bottleneck and the copy is free.
const COMPACT_WHEN_QUEUED: usize = 2;

/// The reader is gone (or the channel ended): the buffer takes no more frames.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BufferClosed;

/// Bytes of each buffer the engine-wide bound does not count: one frame. However full the
/// other buffers are, a channel whose reader reads always moves, one frame at a time; only
/// what waits beyond its first frame needs engine-wide room.
const UNCHARGED_BYTES: usize = CHANNEL_FRAME_BYTES;

/// The engine-wide charge of a buffer holding `held` bytes.
fn charge(held: usize) -> usize {
    held.saturating_sub(UNCHARGED_BYTES)
}

struct Budget {
    bytes: Semaphore,
    capacity: usize,
    counters: Arc<ByteCounters>,
    /// What the channel moved; its `held` is the bytes in this buffer now, whose
    /// engine-wide charge is [`charge`] of it.
    stats: Arc<ChannelStats>,
    /// Woken when the reader takes a frame out: a writer waiting for engine-wide room
    /// looks again at what its next frame would cost (it may have become free).
    taken_out: Notify,
}

impl Budget {
    /// Permits a frame of `len` bytes takes: its length, but never more than the whole budget
    /// (a text frame may be larger; it then waits for an empty buffer).
    fn cost(&self, len: usize) -> u32 {
        permits_for(len, self.capacity)
    }

    /// A frame of `len` bytes left the buffer: its bytes no longer count, here or
    /// engine-wide (the charge given back is what the buffer's charge fell by, so charges
    /// and refunds always add up to the charge of what is held).
    fn give_back(&self, len: usize) {
        let before = self.stats.held.fetch_sub(len, Ordering::AcqRel);
        let refund = charge(before) - charge(before.saturating_sub(len));
        self.counters.sub(len);
        self.counters.unreserve(refund);
        self.bytes.add_permits(self.cost(len) as usize);
        self.taken_out.notify_one();
    }

    /// Counts a frame of `len` bytes in; returns the engine-wide charge it added.
    fn take_in(&self, len: usize) -> usize {
        let before = self.stats.held.fetch_add(len, Ordering::AcqRel);
        self.stats.written(len);
        self.counters.add(len);
        charge(before.saturating_add(len)) - charge(before)
    }

    /// The charge a frame of `len` bytes would add now. Only the one writer adds and the
    /// reader only takes out, so the charge when it is added is never more than this.
    fn charge_now(&self, len: usize) -> usize {
        let held = self.stats.held.load(Ordering::Acquire);
        charge(held.saturating_add(len)) - charge(held)
    }
}

/// A frame in the queue, holding the bytes it counts. Whoever drops it without taking the
/// frame out (a reader gone, a channel dropped with frames in it, a send that raced a
/// closing reader) gives its bytes back, so the counts never drift.
struct Queued {
    frame: Option<Frame>,
    budget: Arc<Budget>,
}

impl Queued {
    /// The frame; its bytes stay counted until the reader calls [`BufferRx::release`].
    fn take(mut self) -> Option<Frame> {
        self.frame.take()
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if let Some(frame) = self.frame.take() {
            self.budget.give_back(frame.len());
        }
    }
}

/// Adds the time a push waited for room to the channel's blocked time when dropped (done,
/// or cancelled while waiting).
struct Waited<'a> {
    since: std::time::Instant,
    stats: &'a ChannelStats,
}

impl Drop for Waited<'_> {
    fn drop(&mut self) {
        self.stats.blocked(self.since.elapsed());
    }
}

/// The writer's side of a buffer.
pub(crate) struct BufferTx {
    frames: mpsc::Sender<Queued>,
    budget: Arc<Budget>,
}

/// The reader's side of a buffer. Dropping it discards what is left and closes the buffer.
pub(crate) struct BufferRx {
    frames: mpsc::Receiver<Queued>,
    budget: Arc<Budget>,
}

/// A buffer of `frames` frames and `frames × 64 KiB` bytes that reports its bytes to
/// `counters`.
pub(crate) fn buffer(frames: usize, counters: Arc<ByteCounters>) -> (BufferTx, BufferRx) {
    let frames = frames.max(1);
    let capacity = frames.saturating_mul(CHANNEL_FRAME_BYTES);
    let budget = Arc::new(Budget {
        bytes: Semaphore::new(capacity.min(Semaphore::MAX_PERMITS)),
        capacity,
        counters,
        stats: Arc::new(ChannelStats::new(capacity)),
        taken_out: Notify::new(),
    });
    let (tx, rx) = mpsc::channel(frames);
    (
        BufferTx {
            frames: tx,
            budget: budget.clone(),
        },
        BufferRx { frames: rx, budget },
    )
}

impl BufferTx {
    /// Adds `frame`, waiting while the buffer is full (in frames or bytes).
    pub(crate) async fn push(&mut self, frame: Frame) -> Result<(), BufferClosed> {
        let cost = self.budget.cost(frame.len());
        let queued = self.frames.max_capacity() - self.frames.capacity();
        let frame = if queued >= COMPACT_WHEN_QUEUED {
            frame.compacted()
        } else {
            frame
        };
        let len = frame.len();
        let counters = &self.budget.counters;
        // Fast path: room for the frame right now, in this buffer and engine-wide.
        if let Ok(slot) = self.frames.try_reserve()
            && let Ok(permits) = self.budget.bytes.try_acquire_many(cost)
            && let Some(reserved) = counters.try_reserve(self.budget.charge_now(len))
        {
            permits.forget();
            reserved.keep_only(self.budget.take_in(len));
            slot.send(self.queued(frame));
            return Ok(());
        }
        // This buffer's room first, then engine-wide room: a writer whose own reader is slow
        // waits without holding any of the room other channels share. Every step is a guard
        // that gives its room back if the push is cancelled or the reader goes away; only
        // the synchronous send below keeps them.
        let waited = Waited {
            since: std::time::Instant::now(),
            stats: &self.budget.stats,
        };
        let slot = self.frames.reserve().await.map_err(|_| BufferClosed)?;
        let permits = self.budget.bytes.acquire_many(cost).await;
        let permits = permits.map_err(|_| BufferClosed)?;
        let reserved = loop {
            // What the frame costs engine-wide falls as this buffer's reader takes frames
            // out (to nothing once the buffer is down to its free frame): wait for room, or
            // for that, whichever comes first.
            let taken_out = self.budget.taken_out.notified();
            tokio::pin!(taken_out);
            taken_out.as_mut().enable();
            let predicted = self.budget.charge_now(len);
            tokio::select! {
                biased;
                reserved = counters.reserve(predicted) => {
                    break reserved.map_err(|_| BufferClosed)?;
                }
                () = &mut taken_out => {}
            }
        };
        drop(waited);
        permits.forget();
        reserved.keep_only(self.budget.take_in(len));
        slot.send(self.queued(frame));
        Ok(())
    }

    /// What the channel has moved (shared with its reader's side).
    pub(crate) fn stats(&self) -> Arc<ChannelStats> {
        self.budget.stats.clone()
    }

    /// `frame` as it waits in the queue, counted.
    fn queued(&self, frame: Frame) -> Queued {
        Queued {
            frame: Some(frame),
            budget: self.budget.clone(),
        }
    }
}

impl BufferRx {
    /// The next frame; `None` once the writer's side is dropped and the buffer is drained.
    pub(crate) async fn recv(&mut self) -> Option<Frame> {
        self.frames.recv().await.and_then(Queued::take)
    }

    /// Polls for the next frame, as [`recv`](Self::recv) does.
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Frame>> {
        self.frames
            .poll_recv(cx)
            .map(|queued| queued.and_then(Queued::take))
    }

    /// The next frame if one is ready.
    pub(crate) fn try_recv(&mut self) -> Option<Frame> {
        self.frames.try_recv().ok().and_then(Queued::take)
    }

    /// A frame of `len` bytes taken from this buffer has been handed to the reader's socket:
    /// its bytes no longer count.
    pub(crate) fn release(&self, len: usize) {
        self.budget.stats.read(len);
        self.budget.give_back(len);
    }

    /// A frame of `len` bytes taken from this buffer never reached the reader (its write
    /// failed or was cancelled): its bytes no longer count, and it is not counted as read.
    pub(crate) fn release_undelivered(&self, len: usize) {
        self.budget.give_back(len);
    }
}

impl Drop for BufferRx {
    fn drop(&mut self) {
        self.frames.close();
        self.budget.bytes.close();
        // Each frame left gives its bytes back as it drops.
        while self.frames.try_recv().is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn splits_without_copying_into_64_kib_frames() {
        let data = Bytes::from(vec![7u8; 200 * 1024]);
        let pieces: Vec<Bytes> = split_binary(data.clone()).collect();
        assert_eq!(pieces.len(), 4);
        assert!(pieces.iter().all(|p| p.len() <= CHANNEL_FRAME_BYTES));
        assert_eq!(pieces.concat(), data.to_vec());
        assert_eq!(pieces.first().map(|p| p.as_ptr()), Some(data.as_ptr()));
        assert_eq!(split_binary(Bytes::new()).count(), 1);
    }

    #[tokio::test]
    async fn bounded_in_bytes_and_accounted() {
        let counters = Arc::new(ByteCounters::default());
        let (mut tx, mut rx) = buffer(2, counters.clone());
        let frame = || Frame::Binary(Bytes::from(vec![1u8; CHANNEL_FRAME_BYTES]));
        tx.push(frame()).await.expect("room");
        tx.push(frame()).await.expect("room");
        assert_eq!(counters.buffered(), 2 * CHANNEL_FRAME_BYTES);
        let blocked = tokio::time::timeout(Duration::from_millis(50), tx.push(frame())).await;
        assert!(blocked.is_err(), "a third frame must wait");
        let first = rx.recv().await.expect("frame");
        rx.release(first.len());
        tx.push(frame()).await.expect("room again");
        drop(tx);
        drop(rx);
        assert_eq!(counters.buffered(), 0);
        assert_eq!(counters.peak(), 2 * CHANNEL_FRAME_BYTES);
    }

    #[tokio::test]
    async fn the_engine_wide_bound_holds_every_frame_beyond_each_buffers_first() {
        const BOUND_FRAMES: usize = 256;
        let counters = Arc::new(ByteCounters::bounded(BOUND_FRAMES * CHANNEL_FRAME_BYTES));
        let (mut first_tx, mut first_rx) = buffer(1024, counters.clone());
        let (mut second_tx, second_rx) = buffer(4, counters.clone());
        let frame = || Frame::Binary(Bytes::from(vec![1u8; CHANNEL_FRAME_BYTES]));
        // The first buffer's first frame is free; the next 256 take the whole bound.
        for _ in 0..=BOUND_FRAMES {
            first_tx.push(frame()).await.expect("room");
        }
        let blocked = tokio::time::timeout(Duration::from_millis(50), first_tx.push(frame()));
        assert!(blocked.await.is_err(), "the bound is reached");
        // Another buffer still moves its first frame: a channel whose reader reads is never
        // starved by the others. Its second frame waits for room.
        second_tx
            .push(frame())
            .await
            .expect("a first frame is free");
        let blocked = tokio::time::timeout(Duration::from_millis(50), second_tx.push(frame()));
        assert!(blocked.await.is_err(), "beyond it, room is engine-wide");
        let taken = first_rx.recv().await.expect("frame");
        first_rx.release(taken.len());
        second_tx.push(frame()).await.expect("room again");
        // A reader that goes away gives back what its buffer held.
        drop(second_rx);
        first_tx.push(frame()).await.expect("room after the drop");
        drop(first_tx);
        drop(first_rx);
        assert_eq!(counters.buffered(), 0);
        assert!(
            counters
                .try_reserve(BOUND_FRAMES * CHANNEL_FRAME_BYTES)
                .is_some(),
            "every byte of the bound came back"
        );
    }

    #[tokio::test]
    async fn a_dropped_reader_closes_the_buffer() {
        let counters = Arc::new(ByteCounters::default());
        let (mut tx, rx) = buffer(1, counters);
        drop(rx);
        assert_eq!(tx.push(Frame::Text("x".into())).await, Err(BufferClosed));
    }
}
