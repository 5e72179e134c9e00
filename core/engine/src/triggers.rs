//! Trigger registrations, keyed by trigger id with the connection that made them.
//!
//! Types the engine does not serve are accepted silently; `http` triggers go to the HTTP
//! server's route table instead (docs/PROTOCOL.md §6).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::util::{lock, shrink_map};
use crate::worker::registry::ConnId;

/// One registered trigger.
#[derive(Debug, Clone)]
#[allow(dead_code)] // Kept for listings; no trigger type beyond http is served yet.
pub(crate) struct Trigger {
    /// The connection that registered it; the trigger dies with it.
    pub(crate) owner: ConnId,
    /// E.g. `http`.
    pub(crate) trigger_type: String,
    /// The function it invokes.
    pub(crate) function_id: String,
    /// Type-specific configuration (for `http`: `api_path`, `http_method`).
    pub(crate) config: Value,
}

/// The trigger registry.
#[derive(Default)]
pub(crate) struct TriggerRegistry {
    map: Mutex<HashMap<String, Trigger>>,
}

impl TriggerRegistry {
    /// Records a trigger (replacing one with the same id).
    pub(crate) fn register(&self, id: String, trigger: Trigger) {
        tracing::debug!(trigger_id = %id, trigger_type = %trigger.trigger_type, "trigger registered");
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
            function_id: "f".into(),
            config: Value::Null,
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
