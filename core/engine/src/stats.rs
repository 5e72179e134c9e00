//! What [`crate::Engine::stats`] reports, and the byte counters the channel buffers keep so
//! the figure costs a couple of atomic operations per frame, not a walk over every channel.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A snapshot of what the engine holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Open main-socket (worker) connections.
    pub connections: usize,
    /// Registered functions.
    pub functions: usize,
    /// Registered triggers of types other than `http`.
    pub triggers: usize,
    /// HTTP routes (registered `http` triggers).
    pub http_routes: usize,
    /// Calls forwarded to their owner and not yet answered.
    pub pending_invocations: usize,
    /// Live channels (not yet finished or expired).
    pub channels: usize,
    /// Finished channels still remembered for late connects.
    pub tombstones: usize,
    /// Bytes currently held in channel buffers.
    pub buffered_bytes: usize,
    /// The most bytes ever held in channel buffers at once.
    pub peak_buffered_bytes: usize,
}

/// Bytes held in all channel buffers, now and at most.
#[derive(Debug, Default)]
pub(crate) struct ByteCounters {
    buffered: AtomicUsize,
    peak: AtomicUsize,
}

impl ByteCounters {
    /// `len` bytes entered a buffer.
    pub(crate) fn add(&self, len: usize) {
        let now = self.buffered.fetch_add(len, Ordering::Relaxed) + len;
        if now > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// `len` bytes left a buffer.
    pub(crate) fn sub(&self, len: usize) {
        self.buffered.fetch_sub(len, Ordering::Relaxed);
    }

    /// Bytes held now.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Relaxed)
    }

    /// The most bytes ever held.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_keeps_the_maximum() {
        let counters = ByteCounters::default();
        counters.add(10);
        counters.add(5);
        counters.sub(12);
        counters.add(2);
        assert_eq!(counters.buffered(), 5);
        assert_eq!(counters.peak(), 15);
    }
}
