//! What [`crate::Engine::stats`] reports, and the byte counters the channel buffers keep so
//! the figure costs a couple of atomic operations per frame, not a walk over every channel.
//! The same counters hold the engine-wide bound on channel bytes (`--max-channel-bytes`).

use std::sync::atomic::{AtomicUsize, Ordering};

use iii_protocol::limits::MAX_CHANNEL_FRAME_BYTES;
use tokio::sync::Semaphore;

/// A snapshot of what the engine holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Open main-socket (worker) connections.
    pub connections: usize,
    /// Open sockets on both ports (what `--max-connections` bounds): main and channel
    /// sockets, plain HTTP on the worker port, HTTP trigger connections.
    pub sockets: usize,
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

/// Bytes held in all channel buffers, now and at most, and the permits that bound them.
#[derive(Debug)]
pub(crate) struct ByteCounters {
    buffered: AtomicUsize,
    peak: AtomicUsize,
    /// One permit per byte all buffers together may hold.
    budget: Semaphore,
    capacity: usize,
}

impl Default for ByteCounters {
    /// Counters without a bound.
    fn default() -> Self {
        Self::bounded(Semaphore::MAX_PERMITS)
    }
}

/// The engine-wide budget is closed: never, while the counters live.
#[derive(Debug)]
pub(crate) struct BudgetClosed;

impl ByteCounters {
    /// Counters letting all buffers together hold `capacity` bytes beyond each buffer's
    /// first frame (see `channels::buffer`). At least one largest channel frame (16 MiB), so
    /// any frame can be charged whole.
    pub(crate) fn bounded(capacity: usize) -> Self {
        let capacity = capacity.clamp(MAX_CHANNEL_FRAME_BYTES, Semaphore::MAX_PERMITS);
        Self {
            buffered: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            budget: Semaphore::new(capacity),
            capacity,
        }
    }

    /// Permits a charge of `bytes` takes: exactly that, as no frame is larger than the
    /// smallest budget (the `min` only keeps a broken caller from waiting forever).
    fn cost(&self, bytes: usize) -> u32 {
        permits_for(bytes, self.capacity)
    }

    /// Takes room for `bytes` if there is some now. Nothing to take (a frame within its
    /// buffer's free first 64 KiB, the usual case) does not touch the shared semaphore.
    pub(crate) fn try_reserve(&self, bytes: usize) -> Option<Reservation<'_>> {
        if bytes > 0 {
            let permits = self.budget.try_acquire_many(self.cost(bytes)).ok()?;
            permits.forget();
        }
        Some(Reservation {
            counters: self,
            bytes,
            kept: false,
        })
    }

    /// Takes room for `bytes`, waiting (first come, first served) until readers have taken
    /// enough bytes out of the buffers. Cancel-safe: room taken is given back unless the
    /// reservation is [kept](Reservation::keep).
    pub(crate) async fn reserve(&self, bytes: usize) -> Result<Reservation<'_>, BudgetClosed> {
        if bytes > 0 {
            let permits = self.budget.acquire_many(self.cost(bytes)).await;
            permits.map_err(|_| BudgetClosed)?.forget();
        }
        Ok(Reservation {
            counters: self,
            bytes,
            kept: false,
        })
    }

    /// Gives back room for `bytes` (taken by a reservation that was kept).
    pub(crate) fn unreserve(&self, bytes: usize) {
        if bytes > 0 {
            self.budget.add_permits(self.cost(bytes) as usize);
        }
    }

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

    /// The most bytes all buffers together may hold beyond each buffer's first frame.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The most bytes ever held.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

/// Semaphore permits for `len` bytes against a budget of `capacity`: the length, but never
/// more than the whole budget (so a larger frame waits for an empty budget, not forever).
pub(crate) fn permits_for(len: usize, capacity: usize) -> u32 {
    u32::try_from(len.min(capacity)).unwrap_or(u32::MAX)
}

/// Room taken engine-wide; given back when dropped, unless kept for bytes that are now in a
/// buffer (whose owner gives it back with [`ByteCounters::unreserve`] when they leave).
pub(crate) struct Reservation<'a> {
    counters: &'a ByteCounters,
    bytes: usize,
    kept: bool,
}

impl Reservation<'_> {
    /// Keeps `bytes` of the room (at most what was taken) and gives the rest back now.
    pub(crate) fn keep_only(mut self, bytes: usize) {
        self.kept = true;
        self.counters.unreserve(self.bytes.saturating_sub(bytes));
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.counters.unreserve(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

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

    #[tokio::test]
    async fn the_budget_bounds_all_buffers_together() {
        const MIB: usize = 1024 * 1024;
        let counters = ByteCounters::bounded(20 * MIB);
        let first = counters.try_reserve(12 * MIB);
        assert!(first.is_some());
        assert!(
            counters.try_reserve(12 * MIB).is_none(),
            "12 + 12 is over 20"
        );
        let waiting = tokio::time::timeout(Duration::from_millis(20), counters.reserve(12 * MIB));
        assert!(waiting.await.is_err(), "a writer waits for room");
        drop(first);
        if let Some(kept) = counters.try_reserve(12 * MIB) {
            kept.keep_only(10 * MIB);
        }
        assert!(
            counters.try_reserve(10 * MIB).is_some(),
            "two MiB were given back"
        );
        assert!(
            counters.try_reserve(11 * MIB).is_none(),
            "kept room stays taken"
        );
        counters.unreserve(10 * MIB);
        assert!(counters.try_reserve(20 * MIB).is_some());
        // Never below one largest frame.
        assert!(
            ByteCounters::bounded(1)
                .try_reserve(MAX_CHANNEL_FRAME_BYTES)
                .is_some()
        );
    }
}
