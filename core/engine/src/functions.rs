//! Which connection serves which function id. Last writer wins when two connections
//! register the same id; a connection's functions die with it, but only those it still owns.
//! How many each connection owns is counted beside the map, for its quota.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::Notify;

use crate::quota::PerConnection;
use crate::remote::RemoteFunction;
use crate::util::{lock, shrink_map, sorted_entries};
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
}

/// What a worker said about a function when it registered it, for the listings.
#[derive(Clone, Debug, Default)]
pub(crate) struct FunctionDetails {
    pub(crate) description: Option<String>,
    pub(crate) metadata: Option<Value>,
    pub(crate) request_format: Option<Value>,
    pub(crate) response_format: Option<Value>,
}

/// A registered function: where its calls go, and what it was registered with.
#[derive(Clone)]
pub(crate) struct Registered {
    pub(crate) owner: Owner,
    pub(crate) details: FunctionDetails,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Registered>,
    owned: PerConnection,
}

/// A connection already owns as many functions as its quota allows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooManyFunctions;

/// The function registry.
#[derive(Default)]
pub(crate) struct FunctionRegistry {
    inner: Mutex<Inner>,
    /// Woken whenever the set of functions changes (for `engine::functions-available`).
    pub(crate) changed: Notify,
    /// Counts the changes, so a waiter can tell a change it has not seen from one it has.
    generation: AtomicU64,
}

impl FunctionRegistry {
    /// Routes calls of `id` to `owner`, replacing any earlier owner, unless the owner would
    /// then own more than `max` functions (re-registering one it owns always succeeds).
    pub(crate) fn register(
        &self,
        id: String,
        owner: Owner,
        details: FunctionDetails,
        max: usize,
    ) -> Result<(), TooManyFunctions> {
        let conn = owner.conn;
        let mut inner = lock(&self.inner);
        let owned_already = inner
            .map
            .get(&id)
            .is_some_and(|entry| entry.owner.conn == conn);
        if !owned_already && inner.owned.count(conn) >= max {
            return Err(TooManyFunctions);
        }
        let previous = inner.map.insert(id.clone(), Registered { owner, details });
        match previous {
            Some(previous) if previous.owner.conn != conn => {
                tracing::debug!(function_id = %id, "function re-registered by another connection");
                inner.owned.remove(previous.owner.conn);
                inner.owned.add(conn);
            }
            Some(_) => {}
            None => inner.owned.add(conn),
        }
        drop(inner);
        self.note_change();
        Ok(())
    }

    /// Removes `id` if `conn` owns it.
    pub(crate) fn unregister(&self, id: &str, conn: ConnId) {
        let mut inner = lock(&self.inner);
        if inner
            .map
            .get(id)
            .is_some_and(|entry| entry.owner.conn == conn)
        {
            inner.map.remove(id);
            inner.owned.remove(conn);
            self.note_change();
        }
    }

    /// The owner of `id`, if any.
    pub(crate) fn lookup(&self, id: &str) -> Option<Owner> {
        lock(&self.inner)
            .map
            .get(id)
            .map(|entry| entry.owner.clone())
    }

    /// Every registered function with its id, in id order.
    pub(crate) fn snapshot(&self) -> Vec<(String, Registered)> {
        sorted_entries(&lock(&self.inner).map)
    }

    /// Removes every function `conn` still owns.
    pub(crate) fn remove_connection(&self, conn: ConnId) {
        let mut inner = lock(&self.inner);
        let before = inner.map.len();
        inner.map.retain(|_, entry| entry.owner.conn != conn);
        inner.owned.forget(conn);
        if inner.map.len() != before {
            self.note_change();
        }
        shrink_map(&mut inner.map);
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
        }
    }

    #[test]
    fn last_writer_wins_and_only_owned_functions_die() {
        let registry = FunctionRegistry::default();
        let details = FunctionDetails::default;
        let max = usize::MAX;
        for (id, conn) in [("f", 1), ("g", 1), ("f", 2)] {
            assert_eq!(
                registry.register(id.into(), owner(conn), details(), max),
                Ok(())
            );
        }
        registry.unregister("g", ConnId(2));
        assert_eq!(registry.len(), 2);
        registry.remove_connection(ConnId(1));
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.lookup("f").map(|o| o.conn), Some(ConnId(2)));
        registry.unregister("f", ConnId(2));
        assert!(registry.lookup("f").is_none());
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
            Err(TooManyFunctions)
        );
        // Registering one it owns again is no new function.
        assert_eq!(
            registry.register("a".into(), owner(1), details(), 2),
            Ok(())
        );
        // A function taken over by another connection no longer counts for the first.
        assert_eq!(
            registry.register("a".into(), owner(2), details(), 2),
            Ok(())
        );
        assert_eq!(
            registry.register("c".into(), owner(1), details(), 2),
            Ok(())
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
