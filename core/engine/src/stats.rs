//! What [`crate::Engine::stats`] reports, and the byte counters the channel buffers keep so
//! the figure costs a couple of atomic operations per frame, not a walk over every channel.
//! The same counters hold the engine-wide bound on channel bytes (`--max-channel-bytes`).

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

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
    /// Counters letting all buffers together hold `capacity` bytes.
    pub(crate) fn bounded(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            buffered: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            budget: Semaphore::new(capacity),
            capacity,
        }
    }

    /// Permits a frame of `len` bytes takes: its length, but never more than the whole
    /// budget, so even a frame larger than the bound passes once the buffers are empty.
    fn cost(&self, len: usize) -> u32 {
        u32::try_from(len.min(self.capacity)).unwrap_or(u32::MAX)
    }

    /// Takes room for `len` bytes if there is some now.
    pub(crate) fn try_reserve(&self, len: usize) -> Option<Reservation<'_>> {
        let permits = self.budget.try_acquire_many(self.cost(len)).ok()?;
        permits.forget();
        Some(Reservation {
            counters: self,
            len,
            kept: false,
        })
    }

    /// Takes room for `len` bytes, waiting (first come, first served) until readers have
    /// taken enough bytes out of the buffers. Cancel-safe: room taken is given back unless
    /// the reservation is [kept](Reservation::keep).
    pub(crate) async fn reserve(&self, len: usize) -> Result<Reservation<'_>, BudgetClosed> {
        let permits = self.budget.acquire_many(self.cost(len)).await;
        permits.map_err(|_| BudgetClosed)?.forget();
        Ok(Reservation {
            counters: self,
            len,
            kept: false,
        })
    }

    /// Gives back the room [`reserve`](Self::reserve) took for `len` bytes.
    pub(crate) fn unreserve(&self, len: usize) {
        self.budget.add_permits(self.cost(len) as usize);
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

    /// The most bytes ever held.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

/// Room taken for a frame's bytes; given back when dropped, unless kept for a frame that is
/// now in a buffer (which gives it back with [`ByteCounters::unreserve`] when it leaves).
pub(crate) struct Reservation<'a> {
    counters: &'a ByteCounters,
    len: usize,
    kept: bool,
}

impl Reservation<'_> {
    /// The frame is in a buffer: its bytes count until it leaves.
    pub(crate) fn keep(mut self) {
        self.kept = true;
        self.counters.add(self.len);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.counters.unreserve(self.len);
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
        let counters = ByteCounters::bounded(100);
        let first = counters.try_reserve(60);
        assert!(first.is_some());
        assert!(counters.try_reserve(60).is_none(), "60 + 60 is over 100");
        let waiting = tokio::time::timeout(Duration::from_millis(20), counters.reserve(60));
        assert!(waiting.await.is_err(), "a writer waits for room");
        drop(first);
        if let Some(kept) = counters.try_reserve(60) {
            kept.keep();
        }
        assert_eq!(counters.buffered(), 60);
        assert!(counters.try_reserve(60).is_none(), "kept room stays taken");
        counters.sub(60);
        counters.unreserve(60);
        // A frame larger than the whole budget takes all of it.
        let whole = counters.try_reserve(500);
        assert!(whole.is_some());
        assert!(counters.try_reserve(1).is_none());
        drop(whole);
        assert!(counters.try_reserve(100).is_some());
    }
}
