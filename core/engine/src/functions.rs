//! Which connection serves which function id. Last writer wins when two connections
//! register the same id; a connection's functions die with it, but only those it still owns.

use std::collections::HashMap;
use std::sync::Mutex;

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
}

/// The function registry.
#[derive(Default)]
pub(crate) struct FunctionRegistry {
    map: Mutex<HashMap<String, Owner>>,
}

impl FunctionRegistry {
    /// Routes calls of `id` to `owner`, replacing any earlier owner.
    pub(crate) fn register(&self, id: String, owner: Owner) {
        let conn = owner.conn;
        let previous = lock(&self.map).insert(id.clone(), owner);
        if previous.is_some_and(|previous| previous.conn != conn) {
            tracing::debug!(function_id = %id, "function re-registered by another connection");
        }
    }

    /// Removes `id` if `conn` owns it.
    pub(crate) fn unregister(&self, id: &str, conn: ConnId) {
        let mut map = lock(&self.map);
        if map.get(id).is_some_and(|owner| owner.conn == conn) {
            map.remove(id);
        }
    }

    /// The owner of `id`, if any.
    pub(crate) fn lookup(&self, id: &str) -> Option<Owner> {
        lock(&self.map).get(id).cloned()
    }

    /// Removes every function `conn` still owns.
    pub(crate) fn remove_connection(&self, conn: ConnId) {
        let mut map = lock(&self.map);
        map.retain(|_, owner| owner.conn != conn);
        shrink_map(&mut map);
    }

    /// Gives memory back after many functions went away.
    pub(crate) fn shrink(&self) {
        shrink_map(&mut lock(&self.map));
    }

    /// Registered functions.
    pub(crate) fn len(&self) -> usize {
        lock(&self.map).len()
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
            outbox: Outbox::new(tx),
        }
    }

    #[test]
    fn last_writer_wins_and_only_owned_functions_die() {
        let registry = FunctionRegistry::default();
        registry.register("f".into(), owner(1));
        registry.register("g".into(), owner(1));
        registry.register("f".into(), owner(2));
        registry.unregister("g", ConnId(2));
        assert_eq!(registry.len(), 2);
        registry.remove_connection(ConnId(1));
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.lookup("f").map(|o| o.conn), Some(ConnId(2)));
        registry.unregister("f", ConnId(2));
        assert!(registry.lookup("f").is_none());
    }
}
