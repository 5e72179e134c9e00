//! Small helpers the registries share: locking that survives a poisoned mutex, and giving
//! memory back when a map that grew large has emptied again.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Locks `mutex`; a panic elsewhere while it was held leaves data we can still use.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `after` from now; a duration too large to add (a TTL of "forever") gives a point about
/// thirty years out instead of overflowing.
pub(crate) fn deadline_after(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 24 * 3600))
}

/// Maps below this capacity are never shrunk: too small to matter.
const MIN_SHRINK_CAPACITY: usize = 1024;

fn is_sparse(len: usize, capacity: usize) -> bool {
    capacity >= MIN_SHRINK_CAPACITY && capacity > len.saturating_mul(4)
}

/// A copy of `map`'s entries in key order (for the listings, which answer in a stable order).
pub(crate) fn sorted_entries<V: Clone>(map: &HashMap<String, V>) -> Vec<(String, V)> {
    let mut all: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Shrinks `map` when it uses less than a quarter of its capacity, so a burst of entries does
/// not keep its memory forever.
pub(crate) fn shrink_map<K: Eq + Hash, V>(map: &mut HashMap<K, V>) {
    if is_sparse(map.len(), map.capacity()) {
        map.shrink_to_fit();
    }
}

/// [`shrink_map`] for queues.
pub(crate) fn shrink_deque<T>(queue: &mut VecDeque<T>) {
    if is_sparse(queue.len(), queue.capacity()) {
        queue.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_ttls_do_not_overflow() {
        assert!(deadline_after(Duration::MAX) > Instant::now());
        assert!(deadline_after(Duration::ZERO) <= Instant::now());
    }

    #[test]
    fn shrinks_only_large_sparse_maps() {
        let mut map: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        map.retain(|k, _| *k < 10);
        shrink_map(&mut map);
        assert!(map.capacity() < MIN_SHRINK_CAPACITY);
        let mut small: HashMap<u32, u32> = HashMap::with_capacity(100);
        let before = small.capacity();
        shrink_map(&mut small);
        assert_eq!(small.capacity(), before);
    }
}
