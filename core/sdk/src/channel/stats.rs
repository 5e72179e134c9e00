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

/// Adds the time since it was made to its end's blocked time when dropped.
pub(crate) struct Waiting<'a> {
    since: Instant,
    stats: &'a StatsCounter,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let nanos = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        (self.stats.blocked_nanos).fetch_add(nanos, Ordering::Relaxed);
    }
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

    /// Counts the time until the guard is dropped (the wait ended, or was cancelled) as
    /// blocked.
    pub(crate) fn waiting(&self) -> Waiting<'_> {
        Waiting {
            since: Instant::now(),
            stats: self,
        }
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
