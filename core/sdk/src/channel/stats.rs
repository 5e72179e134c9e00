//! What one channel end has moved, so a program can show progress (bytes so far, messages,
//! time spent waiting) without counting by hand. Every binding reads the same counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A channel end's figures at one moment ([`ChannelReader::stats`](super::ChannelReader::stats),
/// [`ChannelWriter::stats`](super::ChannelWriter::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Payload bytes written, or read.
    pub bytes: u64,
    /// Binary frames (of at most 64 KiB) written, or read.
    pub frames: u64,
    /// Text messages sent, or received.
    pub messages: u64,
    /// Time spent waiting: a writer for room in the channel (backpressure from a slow
    /// reader), a reader for data to arrive.
    pub blocked: Duration,
}

/// The live counters behind [`ChannelStats`].
#[derive(Debug, Default)]
pub(crate) struct StatsCounter {
    bytes: AtomicU64,
    frames: AtomicU64,
    messages: AtomicU64,
    blocked_nanos: AtomicU64,
}

impl StatsCounter {
    /// A binary frame of `len` bytes went through.
    pub(crate) fn frame(&self, len: usize) {
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    /// A text message went through.
    pub(crate) fn message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    /// The end waited since `since`.
    pub(crate) fn waited_since(&self, since: Instant) {
        let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.blocked_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The figures now.
    pub(crate) fn snapshot(&self) -> ChannelStats {
        ChannelStats {
            bytes: self.bytes.load(Ordering::Relaxed),
            frames: self.frames.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
            blocked: Duration::from_nanos(self.blocked_nanos.load(Ordering::Relaxed)),
        }
    }
}
