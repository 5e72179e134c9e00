//! Counting what connections hold against the engine's quotas ([`crate::config::Quotas`]):
//! slots that give themselves back when dropped (connections, channels), per-connection
//! counts kept beside a registry's map (functions, triggers), and the error a refusal
//! carries. One place, so every quota is counted and refused the same way.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use iii_protocol::ErrorBody;
use iii_protocol::codes::QUOTA_EXCEEDED;

use tokio::net::TcpStream;

use crate::state::EngineState;
use crate::worker::registry::ConnId;

/// A counter of things held at once, taken slot by slot.
#[derive(Clone, Default)]
pub(crate) struct Slots(Arc<AtomicUsize>);

impl Slots {
    /// A slot, unless `max` are taken already.
    pub(crate) fn try_take(&self, max: usize) -> Option<Slot> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < max).then_some(taken + 1)
            })
            .ok()
            .map(|_| Slot(self.0.clone()))
    }

    /// Slots taken now.
    pub(crate) fn taken(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One taken slot; dropping it gives it back.
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many entries of one registry each connection owns, kept under the registry's lock.
#[derive(Default)]
pub(crate) struct PerConnection(HashMap<ConnId, usize>);

impl PerConnection {
    /// Entries `conn` owns.
    pub(crate) fn count(&self, conn: ConnId) -> usize {
        self.0.get(&conn).copied().unwrap_or(0)
    }

    /// `conn` owns one more.
    pub(crate) fn add(&mut self, conn: ConnId) {
        *self.0.entry(conn).or_default() += 1;
    }

    /// `conn` owns one fewer.
    pub(crate) fn remove(&mut self, conn: ConnId) {
        if let Some(count) = self.0.get_mut(&conn) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.0.remove(&conn);
            }
        }
    }

    /// `conn` owns nothing any more.
    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.0.remove(&conn);
        crate::util::shrink_map(&mut self.0);
    }
}

/// The error of a refusal: which quota, its value, and the flag that sets it.
pub(crate) fn exceeded(what: &str, max: usize, flag: &str) -> ErrorBody {
    ErrorBody::new(
        QUOTA_EXCEEDED,
        format!("{what}: the engine allows {max} (--{flag})"),
    )
}

/// `Err` naming `what` when `id` is longer than `max` bytes.
pub(crate) fn check_id(what: &str, id: &str, max: usize) -> Result<(), ErrorBody> {
    if id.len() <= max {
        return Ok(());
    }
    Err(ErrorBody::new(
        QUOTA_EXCEEDED,
        format!(
            "{what} is {} bytes; the engine allows at most {max} (--max-id-bytes)",
            id.len()
        ),
    ))
}

/// An accepted connection that holds its place under `--max-connections`.
pub(crate) struct Admitted {
    /// The connection.
    pub(crate) stream: TcpStream,
    /// Its place, given back when dropped.
    pub(crate) slot: Slot,
}

/// Takes a place for an accepted connection (worker port or HTTP port: every socket counts,
/// from its first byte); one over the limit is answered 503 at once, whatever it asks for,
/// and closed (`None`).
pub(crate) async fn take_connection(
    shared: &EngineState,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<Admitted> {
    let max_connections = shared.config.quotas.max_connections;
    match shared.sockets.try_take(max_connections) {
        Some(slot) => Some(Admitted { stream, slot }),
        None => {
            tracing::warn!(%peer, max_connections, "connection refused: the engine holds --max-connections sockets");
            refuse_over_quota(stream, max_connections).await;
            None
        }
    }
}

/// Answers a connection over `--max-connections` with a 503 (a WebSocket client reads it as a
/// refused upgrade, a health check as an error status), then closes it.
async fn refuse_over_quota(stream: TcpStream, max_connections: usize) {
    let error = exceeded(
        "connections open at once",
        max_connections,
        "max-connections",
    );
    crate::health::answer_and_close(stream, hyper::StatusCode::SERVICE_UNAVAILABLE, &error).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_given_back_when_dropped() {
        let slots = Slots::default();
        let first = slots.try_take(2);
        let second = slots.try_take(2);
        assert!(first.is_some() && second.is_some());
        assert!(slots.try_take(2).is_none());
        drop(first);
        assert_eq!(slots.taken(), 1);
        assert!(
            slots.try_take(2).is_some(),
            "the dropped slot is free again"
        );
    }

    #[test]
    fn per_connection_counts() {
        let mut counts = PerConnection::default();
        counts.add(ConnId(1));
        counts.add(ConnId(1));
        counts.add(ConnId(2));
        counts.remove(ConnId(1));
        counts.remove(ConnId(3));
        assert_eq!(counts.count(ConnId(1)), 1);
        counts.forget(ConnId(1));
        assert_eq!(counts.count(ConnId(1)), 0);
        assert_eq!(counts.count(ConnId(2)), 1);
    }

    #[test]
    fn ids_are_bounded_in_bytes() {
        assert!(check_id("function id", "a::b", 4).is_ok());
        let error = check_id("function id", "a::bc", 4).err();
        assert_eq!(error.map(|e| e.code), Some(QUOTA_EXCEEDED.to_string()));
    }
}
