//! How many bytes of JSON messages wait in one connection's outbound queue, against its bound
//! (docs/PROTOCOL.md §2.4). A worker that stops reading must not make the engine hold
//! unbounded memory for it, nor stall anyone who talks to it: calls to it are refused at once
//! over the bound, and a worker that stays over it past a deadline, or whose answers pile up
//! past a hard cap, is dropped as a slow consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// One connection's queued bytes and what happens past its bound.
pub(crate) struct Backlog {
    queued: AtomicUsize,
    bound: usize,
    /// Past this many bytes (answers are never refused) the connection is dropped at once.
    hard_cap: usize,
    deadline: Duration,
    /// When a ping was last written to the socket (milliseconds after `born`, plus one; 0 =
    /// never): liveness counts a worker's silence from then, not from when the ping was
    /// queued behind other messages.
    ping_written_ms: AtomicU64,
    born: Instant,
    /// Since when the queue has been full (over `bound`, or refusing a call) without
    /// anything leaving it (an instant as `ping_written_ms` stores one; 0 = not full). An
    /// atomic, not a lock: every message written clears it.
    over_since_ms: AtomicU64,
    /// Woken once when the connection must be dropped as a slow consumer.
    slow: Notify,
    /// Calls sent to this connection that wait for its answer (for spreading calls across
    /// replicas; see [`InFlight`]).
    in_flight: AtomicUsize,
}

/// One call sent to a connection and not answered yet; counted in its backlog until dropped
/// (answered, failed, expired or cancelled).
pub(crate) struct InFlight(Arc<Backlog>);

impl InFlight {
    /// Counts a call on `backlog`'s connection.
    pub(crate) fn start(backlog: &Arc<Backlog>) -> Self {
        backlog.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(backlog.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Backlog {
    /// A backlog refusing calls over `bound` bytes and dropping a connection that stays over
    /// it for `deadline`. Answers are never refused; a burst of them (each up to
    /// `max_message` bytes) may take the queue up to twice the bound, or a bound plus one
    /// largest message, before the connection is dropped at once.
    pub(crate) fn new(bound: usize, max_message: usize, deadline: Duration) -> Self {
        let hard_cap = bound
            .saturating_mul(2)
            .max(bound.saturating_add(max_message));
        Self {
            queued: AtomicUsize::new(0),
            bound,
            hard_cap,
            deadline,
            ping_written_ms: AtomicU64::new(0),
            born: Instant::now(),
            over_since_ms: AtomicU64::new(0),
            slow: Notify::new(),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Bytes waiting now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Calls sent to this connection that wait for its answer.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// True when the queue holds its bound or more: a call to it now would be refused.
    pub(crate) fn is_full(&self) -> bool {
        self.queued() >= self.bound
    }

    /// True when a call of `len` bytes may not join the queue: it would take it past the bound
    /// (a queue with nothing in it takes any one message, up to the message size limit). A
    /// refusal starts the slow-consumer clock, as does going over the bound.
    pub(crate) fn refuses_call(&self, len: usize) -> bool {
        let queued = self.queued();
        let refused = queued > 0 && queued.saturating_add(len) > self.bound;
        if refused {
            self.full_from_now();
        }
        refused
    }

    /// Counts `len` bytes in. Past the hard cap (answers and the engine's own messages are
    /// never refused), the connection is dropped as a slow consumer.
    pub(crate) fn add(&self, len: usize) {
        let queued = self
            .queued
            .fetch_add(len, Ordering::AcqRel)
            .saturating_add(len);
        if queued > self.bound {
            self.full_from_now();
        }
        if queued > self.hard_cap {
            self.drop_as_slow();
        }
    }

    /// Counts `len` bytes out (written to the socket, or never queued after all). Bytes that
    /// leave are progress: the slow-consumer clock stops until the queue is full again.
    pub(crate) fn remove(&self, len: usize) {
        if len == 0 {
            // A ping or a stream frame: no bytes counted.
            return;
        }
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                Some(queued.saturating_sub(len))
            });
        self.over_since_ms.store(0, Ordering::Release);
    }

    /// Starts the slow-consumer clock unless it runs already.
    fn full_from_now(&self) {
        let now = self.stamp(Instant::now());
        let _ = self
            .over_since_ms
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
    }

    /// `at` as milliseconds after `born`, plus one (so 0 stays "never").
    fn stamp(&self, at: Instant) -> u64 {
        let ms = u64::try_from(at.saturating_duration_since(self.born).as_millis());
        ms.unwrap_or(u64::MAX - 1).saturating_add(1)
    }

    /// The instant `stamp` made `ms` from (to the millisecond, rounded up); `None` for 0.
    fn instant(&self, ms: u64) -> Option<Instant> {
        (ms > 0).then(|| self.born + Duration::from_millis(ms))
    }

    /// Since when the queue has been full without progress.
    fn over_since(&self) -> Option<Instant> {
        self.instant(self.over_since_ms.load(Ordering::Acquire))
    }

    /// True when the queue has been full without progress for longer than the deadline at
    /// `now`.
    pub(crate) fn overdue(&self, now: Instant) -> bool {
        if self.queued() == 0 {
            // Drained since the clock started (a refusal can race the last bytes out).
            self.over_since_ms.store(0, Ordering::Release);
            // Unless a message took the queue over its bound meanwhile: its clock stands.
            if self.queued() > self.bound {
                self.full_from_now();
            }
            return false;
        }
        self.over_since()
            .is_some_and(|since| now.saturating_duration_since(since) >= self.deadline)
    }

    /// When the queue, full since some time without progress, becomes overdue; when it is
    /// not full, a quarter deadline from now if anything is queued (it may fill meanwhile),
    /// else `None`.
    pub(crate) fn overdue_at(&self) -> Option<Instant> {
        match self.over_since() {
            Some(since) => Some(since + self.deadline),
            None if self.queued() > 0 => Some(Instant::now() + self.deadline / 4),
            None => None,
        }
    }

    /// The writer wrote a ping to the socket.
    pub(crate) fn ping_written(&self) {
        let now = self.stamp(Instant::now());
        self.ping_written_ms.store(now, Ordering::Relaxed);
    }

    /// When a ping was last written to the socket (to the millisecond, rounded up).
    pub(crate) fn ping_written_at(&self) -> Option<Instant> {
        self.instant(self.ping_written_ms.load(Ordering::Relaxed))
    }

    /// Asks the connection's read loop to drop it as a slow consumer.
    pub(crate) fn drop_as_slow(&self) {
        self.slow.notify_one();
    }

    /// Resolves once the connection must be dropped as a slow consumer.
    pub(crate) async fn dropped(&self) {
        self.slow.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_refused_over_the_bound_but_an_empty_queue_takes_one() {
        let backlog = Backlog::new(100, 10, Duration::from_secs(30));
        assert!(
            !backlog.refuses_call(1_000),
            "an empty queue takes any one message"
        );
        backlog.add(60);
        assert!(!backlog.refuses_call(40));
        assert!(backlog.refuses_call(41));
        backlog.remove(60);
        assert_eq!(backlog.queued(), 0);
        backlog.remove(5);
        assert_eq!(backlog.queued(), 0, "never below zero");
    }

    #[test]
    fn full_without_progress_past_the_deadline_is_overdue() {
        let backlog = Backlog::new(100, 10, Duration::from_millis(50));
        let start = Instant::now();
        backlog.add(150);
        assert!(!backlog.overdue(start));
        assert!(backlog.overdue(start + Duration::from_millis(60)));
        backlog.remove(100);
        assert!(!backlog.overdue(start + Duration::from_secs(1)), "progress");
        // Under the bound, but refusing a call: the clock runs again.
        assert!(backlog.refuses_call(60));
        assert!(backlog.overdue(Instant::now() + Duration::from_millis(60)));
    }

    #[test]
    fn a_drained_queue_is_never_overdue() {
        let backlog = Backlog::new(100, 10, Duration::from_millis(10));
        backlog.add(150);
        assert!(backlog.refuses_call(10));
        backlog.remove(150);
        // A refusal that read the queue just before it drained starts the clock late.
        assert!(!backlog.refuses_call(10));
        backlog.full_from_now();
        assert!(!backlog.overdue(Instant::now() + Duration::from_secs(1)));
    }

    #[test]
    fn the_hard_cap_leaves_room_for_one_largest_answer() {
        let backlog = Backlog::new(100, 150, Duration::from_secs(30));
        backlog.add(240);
        let dropped = || futures_util::FutureExt::now_or_never(backlog.dropped()).is_some();
        assert!(!dropped(), "under the bound plus one largest message");
        backlog.add(20);
        assert!(dropped(), "past it: dropped");
    }
}
