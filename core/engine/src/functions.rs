//! Which connections serve which function id. Several connections may register the same id:
//! they are its replicas, and calls are spread across them in turn. A replica that leaves (or
//! unregisters) takes only its own registration with it; the function goes away with its last
//! replica. How many registrations each connection holds is counted beside the map, for its
//! quota.
//!
//! A call goes to the replica with the fewest calls in flight (ties in turn), or to each in
//! turn ([`ReplicaChoice`]), passing over a replica whose outbound queue is at its bound while
//! another has room (BENCHMARKS.md, "Replicas", measures both).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::Notify;

use crate::access::Domain;
use crate::config::ReplicaChoice;
use crate::quota::PerConnection;
use crate::remote::RemoteFunction;
use crate::util::{lock, shrink_map};
use crate::worker::outbound::Outbox;
use crate::worker::registry::ConnId;

/// Where calls of one function go.
#[derive(Clone)]
pub(crate) struct Owner {
    /// The owning connection.
    pub(crate) conn: ConnId,
    /// Its outbound queue.
    pub(crate) outbox: Outbox,
    /// Set when the engine calls the function over HTTP instead of over that connection.
    pub(crate) remote: Option<Arc<RemoteFunction>>,
    /// Which workers it may share the function id with (its listener and prefix).
    pub(crate) domain: Domain,
    /// The id the worker sent when the engine knows the function by another (its grant's
    /// registration prefix, a registration hook's rename): calls are sent to it under this.
    pub(crate) sent_as: Option<Arc<str>>,
}

impl Owner {
    /// The id a call of `function_id` goes to the owning worker under: the one it registered.
    pub(crate) fn local_id(&self, function_id: String) -> String {
        match &self.sent_as {
            Some(sent) => sent.to_string(),
            None => function_id,
        }
    }
}

/// What a worker said about a function when it registered it, for the listings.
#[derive(Clone, Debug, Default)]
pub(crate) struct FunctionDetails {
    pub(crate) description: Option<String>,
    pub(crate) metadata: Option<Value>,
    pub(crate) request_format: Option<Value>,
    pub(crate) response_format: Option<Value>,
}

/// One registration of a function: where its calls go, and what it was registered with.
#[derive(Clone)]
pub(crate) struct Registered {
    pub(crate) owner: Owner,
    pub(crate) details: FunctionDetails,
}

/// The replicas of one function id, in registration order, and whose turn is next.
#[derive(Default)]
struct Replicas {
    list: Vec<Registered>,
    next: usize,
}

impl Replicas {
    /// The replica the next call goes to, as `choice` says, passing over those whose queue is
    /// full while one is not.
    fn pick(&mut self, choice: ReplicaChoice) -> Option<Owner> {
        let count = self.list.len();
        let start = self.next % count.max(1);
        let owner = |at: usize| self.list.get(at).map(|replica| &replica.owner);
        let with_room = (0..count)
            .map(|offset| (start + offset) % count)
            .filter(|&at| owner(at).is_some_and(|o| !o.outbox.is_over()));
        let chosen = match choice {
            ReplicaChoice::RoundRobin => with_room.into_iter().next(),
            // The first of the least loaded in turn order, so ties go round robin.
            ReplicaChoice::LeastInFlight => with_room
                .min_by_key(|&at| owner(at).map_or(usize::MAX, |o| o.outbox.calls_in_flight())),
        }
        .unwrap_or(start);
        self.next = chosen + 1;
        owner(chosen).cloned()
    }
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Replicas>,
    owned: PerConnection,
}

/// Why a function registration is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RegisterRefused {
    /// The connection already holds as many registrations as its quota allows.
    TooMany,
    /// Workers of another listener (or another tenant's prefix) serve this id.
    Taken,
}

/// The function registry.
#[derive(Default)]
pub(crate) struct FunctionRegistry {
    inner: Mutex<Inner>,
    /// How calls are spread across replicas.
    choice: ReplicaChoice,
    /// Woken whenever the set of functions changes (for `engine::functions-available`).
    pub(crate) changed: Notify,
    /// Counts the changes, so a waiter can tell a change it has not seen from one it has.
    generation: AtomicU64,
}

impl FunctionRegistry {
    /// An empty registry spreading calls across replicas as `choice` says.
    pub(crate) fn new(choice: ReplicaChoice) -> Self {
        Self {
            choice,
            ..Self::default()
        }
    }

    /// Adds `owner` as a replica of `id` (replacing its own earlier registration of it),
    /// unless the owner would then hold more than `max` registrations (repeating one it
    /// holds always succeeds).
    pub(crate) fn register(
        &self,
        id: String,
        owner: Owner,
        details: FunctionDetails,
        max: usize,
    ) -> Result<(), RegisterRefused> {
        let conn = owner.conn;
        let mut inner = lock(&self.inner);
        let held = |inner: &Inner| {
            (inner.map.get(&id)).and_then(|r| r.list.iter().position(|e| e.owner.conn == conn))
        };
        let registered = Registered { owner, details };
        match held(&inner) {
            Some(at) => {
                if let Some(slot) = (inner.map.get_mut(&id)).and_then(|r| r.list.get_mut(at)) {
                    *slot = registered;
                }
            }
            None if (inner.map.get(&id)).is_some_and(|r| {
                r.list
                    .iter()
                    .any(|held| held.owner.domain != registered.owner.domain)
            }) =>
            {
                return Err(RegisterRefused::Taken);
            }
            None if inner.owned.count(conn) >= max => return Err(RegisterRefused::TooMany),
            None => {
                let replicas = inner.map.entry(id.clone()).or_default();
                replicas.list.push(registered);
                if replicas.list.len() > 1 {
                    tracing::debug!(function_id = %id, replicas = replicas.list.len(), "function replica added");
                }
                inner.owned.add(conn);
            }
        }
        drop(inner);
        self.note_change();
        Ok(())
    }

    /// Removes `conn`'s registration of `id`, if it has one.
    pub(crate) fn unregister(&self, id: &str, conn: ConnId) {
        let mut inner = lock(&self.inner);
        let Some(replicas) = inner.map.get_mut(id) else {
            return;
        };
        let before = replicas.list.len();
        replicas.list.retain(|entry| entry.owner.conn != conn);
        if replicas.list.len() == before {
            return;
        }
        if replicas.list.is_empty() {
            inner.map.remove(id);
        }
        inner.owned.remove(conn);
        drop(inner);
        self.note_change();
    }

    /// The replica the next call of `id` goes to, if it has any.
    pub(crate) fn lookup(&self, id: &str) -> Option<Owner> {
        let choice = self.choice;
        (lock(&self.inner).map.get_mut(id)).and_then(|replicas| replicas.pick(choice))
    }

    /// Whether `conn` holds a registration of `id`.
    pub(crate) fn held_by(&self, id: &str, conn: ConnId) -> bool {
        (lock(&self.inner).map.get(id))
            .is_some_and(|replicas| replicas.list.iter().any(|r| r.owner.conn == conn))
    }

    /// The metadata `id` was registered with (its oldest replica's), for access filters.
    pub(crate) fn metadata(&self, id: &str) -> Option<Value> {
        let inner = lock(&self.inner);
        let replicas = inner.map.get(id)?;
        replicas.list.first()?.details.metadata.clone()
    }

    /// Whether `id` has any replica.
    pub(crate) fn contains(&self, id: &str) -> bool {
        lock(&self.inner).map.contains_key(id)
    }

    /// Every registration with its function id, in id order (a function with replicas appears
    /// once per replica, oldest first).
    pub(crate) fn snapshot(&self) -> Vec<(String, Registered)> {
        let inner = lock(&self.inner);
        let mut all: Vec<(String, Registered)> = (inner.map.iter())
            .flat_map(|(id, r)| r.list.iter().map(|e| (id.clone(), e.clone())))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Removes every registration `conn` still holds.
    pub(crate) fn remove_connection(&self, conn: ConnId) {
        let mut inner = lock(&self.inner);
        let mut changed = false;
        inner.map.retain(|_, replicas| {
            let before = replicas.list.len();
            replicas.list.retain(|entry| entry.owner.conn != conn);
            changed |= replicas.list.len() != before;
            !replicas.list.is_empty()
        });
        inner.owned.forget(conn);
        shrink_map(&mut inner.map);
        drop(inner);
        if changed {
            self.note_change();
        }
    }

    /// Counts a change and wakes whoever waits for one.
    fn note_change(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    /// How many changes there have been.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Gives memory back after many functions went away.
    pub(crate) fn shrink(&self) {
        shrink_map(&mut lock(&self.inner).map);
    }

    /// The function ids each connection holds, in id order.
    pub(crate) fn held_by_connection(&self) -> HashMap<ConnId, Vec<String>> {
        let inner = lock(&self.inner);
        let mut held: HashMap<ConnId, Vec<String>> = HashMap::new();
        for (id, replicas) in &inner.map {
            for entry in &replicas.list {
                held.entry(entry.owner.conn).or_default().push(id.clone());
            }
        }
        drop(inner);
        for ids in held.values_mut() {
            ids.sort();
        }
        held
    }

    /// Registrations, one per replica.
    pub(crate) fn registrations(&self) -> usize {
        let inner = lock(&self.inner);
        inner.map.values().map(|replicas| replicas.list.len()).sum()
    }

    /// Registered functions.
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn owner(conn: u64) -> Owner {
        let (tx, _rx) = mpsc::channel(1);
        Owner {
            conn: ConnId(conn),
            outbox: Outbox::unbounded(tx),
            remote: None,
            domain: Domain::default(),
            sent_as: None,
        }
    }

    #[test]
    fn replicas_share_calls_and_each_takes_only_its_own() {
        let registry = FunctionRegistry::default();
        let details = FunctionDetails::default;
        let max = usize::MAX;
        for (id, conn) in [("f", 1), ("g", 1), ("f", 2), ("f", 1)] {
            assert_eq!(
                registry.register(id.into(), owner(conn), details(), max),
                Ok(())
            );
        }
        assert_eq!(registry.len(), 2, "replicas are one function");
        assert_eq!(registry.snapshot().len(), 3, "one entry per replica");
        let turns: Vec<u64> = (0..4)
            .filter_map(|_| registry.lookup("f").map(|o| o.conn.0))
            .collect();
        assert_eq!(turns, [1, 2, 1, 2], "calls go round robin");
        registry.unregister("g", ConnId(2));
        assert!(registry.contains("g"), "only its owner unregisters it");
        registry.remove_connection(ConnId(1));
        assert_eq!(registry.len(), 1);
        assert!(!registry.contains("g"));
        assert_eq!(registry.lookup("f").map(|o| o.conn), Some(ConnId(2)));
        registry.unregister("f", ConnId(2));
        assert!(registry.lookup("f").is_none());
    }

    #[test]
    fn a_full_replica_is_passed_over_while_another_has_room() {
        let registry = FunctionRegistry::default();
        let (tx, _rx) = mpsc::channel(16);
        let backlog = std::sync::Arc::new(crate::worker::backlog::Backlog::new(
            10,
            10,
            std::time::Duration::from_secs(30),
        ));
        let full = Owner {
            conn: ConnId(1),
            outbox: Outbox::new(tx, backlog.clone()),
            remote: None,
            domain: Domain::default(),
            sent_as: None,
        };
        backlog.add(20);
        let max = usize::MAX;
        let details = FunctionDetails::default;
        assert_eq!(registry.register("f".into(), full, details(), max), Ok(()));
        assert_eq!(
            registry.register("f".into(), owner(2), details(), max),
            Ok(())
        );
        for _ in 0..3 {
            assert_eq!(registry.lookup("f").map(|o| o.conn), Some(ConnId(2)));
        }
        registry.unregister("f", ConnId(2));
        assert_eq!(
            registry.lookup("f").map(|o| o.conn),
            Some(ConnId(1)),
            "a full replica still gets the call when it is the only one (to refuse it)"
        );
    }

    #[test]
    fn least_in_flight_sends_calls_to_the_replica_with_fewest_waiting() {
        let registry = FunctionRegistry::new(ReplicaChoice::LeastInFlight);
        let (busy, idle) = (owner(1), owner(2));
        let max = usize::MAX;
        let details = FunctionDetails::default;
        assert_eq!(
            registry.register("f".into(), busy.clone(), details(), max),
            Ok(())
        );
        assert_eq!(registry.register("f".into(), idle, details(), max), Ok(()));
        let waiting: Vec<_> = (0..3).map(|_| busy.outbox.start_call()).collect();
        for _ in 0..3 {
            assert_eq!(registry.lookup("f").map(|o| o.conn), Some(ConnId(2)));
        }
        drop(waiting);
        let turns: Vec<u64> = (0..2)
            .filter_map(|_| registry.lookup("f").map(|o| o.conn.0))
            .collect();
        assert_eq!(turns, [1, 2], "equally loaded: in turn");
        let round_robin = FunctionRegistry::new(ReplicaChoice::RoundRobin);
        for conn in [1, 2] {
            let replica = if conn == 1 { busy.clone() } else { owner(2) };
            assert_eq!(
                round_robin.register("f".into(), replica, details(), max),
                Ok(())
            );
        }
        let _waiting = busy.outbox.start_call();
        let turns: Vec<u64> = (0..2)
            .filter_map(|_| round_robin.lookup("f").map(|o| o.conn.0))
            .collect();
        assert_eq!(turns, [1, 2], "round robin ignores the load");
    }

    #[test]
    fn a_connection_owns_at_most_its_quota() {
        let registry = FunctionRegistry::default();
        let details = FunctionDetails::default;
        assert_eq!(
            registry.register("a".into(), owner(1), details(), 2),
            Ok(())
        );
        assert_eq!(
            registry.register("b".into(), owner(1), details(), 2),
            Ok(())
        );
        assert_eq!(
            registry.register("c".into(), owner(1), details(), 2),
            Err(RegisterRefused::TooMany)
        );
        // Registering one it holds again is no new registration.
        assert_eq!(
            registry.register("a".into(), owner(1), details(), 2),
            Ok(())
        );
        // Another connection's replica counts for that connection only.
        assert_eq!(
            registry.register("a".into(), owner(2), details(), 2),
            Ok(())
        );
        assert_eq!(
            registry.register("c".into(), owner(1), details(), 2),
            Err(RegisterRefused::TooMany)
        );
        registry.unregister("b", ConnId(1));
        assert_eq!(
            registry.register("d".into(), owner(1), details(), 2),
            Ok(())
        );
        registry.remove_connection(ConnId(1));
        assert_eq!(
            registry.register("e".into(), owner(1), details(), 2),
            Ok(())
        );
    }
}
