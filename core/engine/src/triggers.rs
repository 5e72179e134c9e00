//! Trigger registrations, keyed by trigger id with the connection that made them.
//!
//! Types the engine does not serve are accepted silently; `http` triggers go to the HTTP
//! server's route table instead (docs/PROTOCOL.md §6).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::util::{lock, shrink_map};
use crate::worker::registry::ConnId;

/// One registered trigger of a type the engine does not serve: kept so that it counts in the
/// engine's stats and goes when its connection does.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    /// The connection that registered it; the trigger dies with it.
    pub(crate) owner: ConnId,
    /// E.g. `cron`.
    pub(crate) trigger_type: String,
}

/// The trigger registry.
#[derive(Default)]
pub(crate) struct TriggerRegistry {
    map: Mutex<HashMap<String, Trigger>>,
}

impl TriggerRegistry {
    /// Records a trigger (replacing one with the same id).
    pub(crate) fn register(&self, id: String, trigger: Trigger) {
        tracing::info!(trigger_id = %id, trigger_type = %trigger.trigger_type, "trigger registered");
        lock(&self.map).insert(id, trigger);
    }

    /// Removes trigger `id` if `conn` registered it.
    pub(crate) fn unregister(&self, id: &str, conn: ConnId) {
        let mut map = lock(&self.map);
        if map.get(id).is_some_and(|trigger| trigger.owner == conn) {
            map.remove(id);
        }
    }

    /// Registered triggers.
    pub(crate) fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Removes every trigger `conn` registered.
    pub(crate) fn remove_connection(&self, conn: ConnId) {
        let mut map = lock(&self.map);
        map.retain(|_, trigger| trigger.owner != conn);
        shrink_map(&mut map);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(owner: u64, trigger_type: &str) -> Trigger {
        Trigger {
            owner: ConnId(owner),
            trigger_type: trigger_type.into(),
        }
    }

    #[test]
    fn triggers_die_with_their_connection() {
        let registry = TriggerRegistry::default();
        registry.register("a".into(), trigger(1, "cron"));
        registry.register("b".into(), trigger(1, "queue"));
        registry.register("c".into(), trigger(2, "cron"));
        assert_eq!(registry.len(), 3);
        registry.unregister("c", ConnId(1));
        assert_eq!(registry.len(), 3, "only the owner unregisters");
        registry.remove_connection(ConnId(1));
        assert_eq!(registry.len(), 1);
        registry.unregister("c", ConnId(2));
        assert_eq!(registry.len(), 0);
    }
}
