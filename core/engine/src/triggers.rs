//! Trigger registrations, keyed by trigger id and the connection that made them (replicas of a
//! worker register the same trigger ids; each keeps its own), and the
//! trigger types they may name (docs/PROTOCOL.md §3.3, §6).
//!
//! The engine serves two types itself: `http` (the HTTP server's route table holds the
//! routes) and `engine::functions-available`. Any other type must have been declared by a
//! worker (`registertriggertype`), which then receives the triggers of its type; a trigger of a
//! type nobody provides is refused.

use std::collections::HashMap;
use std::sync::Mutex;

use iii_protocol::builtins::TRIGGER_FUNCTIONS_AVAILABLE;
use iii_protocol::http::TRIGGER_TYPE as HTTP_TRIGGER_TYPE;
use serde_json::Value;

use crate::quota::PerConnection;
use crate::util::{lock, shrink_map, sorted_entries};
use crate::worker::outbound::Outbox;
use crate::worker::registry::ConnId;

/// A trigger's key: its id and the connection that registered it.
type TriggerKey = (String, ConnId);

/// One registered trigger.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    /// The connection that registered it; the trigger dies with it.
    pub(crate) owner: ConnId,
    /// E.g. `http` or `cron`.
    pub(crate) trigger_type: String,
    /// The function it invokes.
    pub(crate) function_id: String,
    /// Its type-specific configuration.
    pub(crate) config: Value,
    /// Free-form metadata it was registered with.
    pub(crate) metadata: Option<Value>,
}

impl Trigger {
    /// The same registration: owner, type, function, config and metadata.
    fn same_as(&self, other: &Trigger) -> bool {
        self.owner == other.owner && self.same_content(other)
    }

    /// The same type, function, config and metadata, whoever registered it.
    fn same_content(&self, other: &Trigger) -> bool {
        self.trigger_type == other.trigger_type
            && self.function_id == other.function_id
            && self.config == other.config
            && self.metadata == other.metadata
    }
}

#[derive(Default)]
struct Inner {
    map: HashMap<TriggerKey, Trigger>,
    /// How many triggers each connection registered, for its quota.
    owned: PerConnection,
    /// The connections holding each trigger id (replicas hold the same ones), so questions
    /// about one id never walk every trigger.
    holders: HashMap<String, Vec<ConnId>>,
}

impl Inner {
    /// `conn` no longer holds trigger `id`.
    fn release(&mut self, id: &str, conn: ConnId) {
        if let Some(holders) = self.holders.get_mut(id) {
            holders.retain(|holder| *holder != conn);
            if holders.is_empty() {
                self.holders.remove(id);
            }
        }
    }
}

/// The trigger registry.
#[derive(Default)]
pub(crate) struct TriggerRegistry {
    inner: Mutex<Inner>,
}

impl TriggerRegistry {
    /// True when `conn` may register trigger `id` without owning more than `max` triggers
    /// (replacing one it registered always may). A connection's messages are handled one at
    /// a time, so the answer still holds when it then registers.
    pub(crate) fn may_register(&self, id: &str, conn: ConnId, max: usize) -> bool {
        let inner = lock(&self.inner);
        inner.map.contains_key(&(id.to_string(), conn)) || inner.owned.count(conn) < max
    }

    /// Records a trigger (replacing its connection's earlier one with the same id). False when
    /// the very same trigger was registered already (a worker may send a registration twice
    /// around a reconnect).
    pub(crate) fn register(&self, id: String, trigger: Trigger) -> bool {
        let mut inner = lock(&self.inner);
        let previous = (inner.map).insert((id.clone(), trigger.owner), trigger.clone());
        if previous.is_none() {
            inner.owned.add(trigger.owner);
            inner
                .holders
                .entry(id.clone())
                .or_default()
                .push(trigger.owner);
        }
        drop(inner);
        if previous.is_some_and(|previous| previous.same_as(&trigger)) {
            return false;
        }
        tracing::info!(trigger_id = %id, trigger_type = %trigger.trigger_type, function_id = %trigger.function_id, "trigger registered");
        true
    }

    /// Removes trigger `id` if `conn` registered it; returns it.
    pub(crate) fn unregister(&self, id: &str, conn: ConnId) -> Option<Trigger> {
        let mut inner = lock(&self.inner);
        let removed = inner.map.remove(&(id.to_string(), conn));
        if removed.is_some() {
            inner.owned.remove(conn);
            inner.release(id, conn);
        }
        removed
    }

    /// Whether another connection than `trigger`'s holds trigger `id` with another function,
    /// type, configuration or metadata (replicas register the very same trigger).
    pub(crate) fn held_differently(&self, id: &str, trigger: &Trigger) -> bool {
        let inner = lock(&self.inner);
        let holders = inner.holders.get(id).into_iter().flatten();
        holders
            .filter(|holder| **holder != trigger.owner)
            .any(|holder| {
                (inner.map.get(&(id.to_string(), *holder)))
                    .is_some_and(|held| !held.same_content(trigger))
            })
    }

    /// Whether any connection has trigger `id` registered.
    pub(crate) fn has_id(&self, id: &str) -> bool {
        lock(&self.inner).holders.contains_key(id)
    }

    /// The metadata `owner`'s trigger `id` was registered with, if any.
    pub(crate) fn metadata(&self, id: &str, owner: ConnId) -> Option<Value> {
        let inner = lock(&self.inner);
        (inner.map.get(&(id.to_string(), owner))).and_then(|trigger| trigger.metadata.clone())
    }

    /// Every trigger with its id, in id order.
    pub(crate) fn snapshot(&self) -> Vec<(String, Trigger)> {
        let inner = lock(&self.inner);
        let mut all: Vec<(String, Trigger)> = (inner.map.iter())
            .map(|((id, _), trigger)| (id.clone(), trigger.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The triggers of `trigger_type`, with their ids.
    pub(crate) fn of_type(&self, trigger_type: &str) -> Vec<(String, Trigger)> {
        (lock(&self.inner).map.iter())
            .filter(|(_, trigger)| trigger.trigger_type == trigger_type)
            .map(|((id, _), trigger)| (id.clone(), trigger.clone()))
            .collect()
    }

    /// Registered triggers of types other than `http` (those count as routes).
    pub(crate) fn len(&self) -> usize {
        (lock(&self.inner).map.values())
            .filter(|trigger| trigger.trigger_type != HTTP_TRIGGER_TYPE)
            .count()
    }

    /// Removes every trigger `conn` registered, and returns them.
    pub(crate) fn remove_connection(&self, conn: ConnId) -> Vec<(String, Trigger)> {
        let mut inner = lock(&self.inner);
        inner.owned.forget(conn);
        let map = &mut inner.map;
        let owned: Vec<TriggerKey> = (map.keys())
            .filter(|(_, owner)| *owner == conn)
            .cloned()
            .collect();
        let removed: Vec<(String, Trigger)> = (owned.into_iter())
            .filter_map(|key| map.remove(&key).map(|trigger| (key.0, trigger)))
            .collect();
        shrink_map(map);
        for (id, _) in &removed {
            inner.release(id, conn);
        }
        shrink_map(&mut inner.holders);
        removed
    }
}

/// A trigger type a worker provides.
#[derive(Clone)]
pub(crate) struct TriggerType {
    /// The providing connection, which receives the triggers of this type.
    pub(crate) owner: ConnId,
    pub(crate) outbox: Outbox,
    pub(crate) description: Option<String>,
    pub(crate) trigger_request_format: Option<Value>,
    pub(crate) call_request_format: Option<Value>,
}

/// Who serves a trigger type.
pub(crate) enum Provider {
    /// The engine itself (`http`, `engine::functions-available`).
    Engine,
    /// A worker.
    Worker(TriggerType),
}

/// The types the engine serves itself, with their descriptions.
pub(crate) const ENGINE_TRIGGER_TYPES: [(&str, &str); 2] = [
    (HTTP_TRIGGER_TYPE, "HTTP requests on the engine's HTTP port"),
    (
        TRIGGER_FUNCTIONS_AVAILABLE,
        "the set of registered functions changed",
    ),
];

/// The trigger types workers provide.
#[derive(Default)]
pub(crate) struct TriggerTypeRegistry {
    map: Mutex<TypeMap>,
}

/// The provided types, and how many each connection provides (for its quota).
#[derive(Default)]
struct TypeMap {
    providers: HashMap<String, TriggerType>,
    owned: PerConnection,
}

/// Why a worker may not provide a trigger type.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TypeRefused {
    /// The engine, or another connected worker, provides it.
    Taken,
    /// The connection provides its quota of types already.
    OverQuota,
}

impl TriggerTypeRegistry {
    /// Records that `trigger_type.owner` provides `id`, unless that connection provides `max`
    /// other types already. A type another connected worker provides, or one the engine
    /// serves, cannot be taken over (a worker could otherwise collect every trigger's
    /// configuration, and both would fire them).
    pub(crate) fn register(
        &self,
        id: String,
        trigger_type: TriggerType,
        max: usize,
    ) -> Result<(), TypeRefused> {
        if ENGINE_TRIGGER_TYPES.iter().any(|(own, _)| *own == id) {
            return Err(TypeRefused::Taken);
        }
        let mut map = lock(&self.map);
        let owner = trigger_type.owner;
        match map.providers.get(&id) {
            Some(provider) if provider.owner != owner => return Err(TypeRefused::Taken),
            Some(_) => {}
            None if map.owned.count(owner) >= max => return Err(TypeRefused::OverQuota),
            None => map.owned.add(owner),
        }
        tracing::info!(%id, "trigger type registered");
        map.providers.insert(id, trigger_type);
        Ok(())
    }

    /// Withdraws `id` if `conn` provides it.
    pub(crate) fn unregister(&self, id: &str, conn: ConnId) {
        let mut map = lock(&self.map);
        if map
            .providers
            .get(id)
            .is_some_and(|provider| provider.owner == conn)
        {
            map.providers.remove(id);
            map.owned.remove(conn);
        }
    }

    /// Who serves `id`, if anyone.
    pub(crate) fn provider(&self, id: &str) -> Option<Provider> {
        if ENGINE_TRIGGER_TYPES.iter().any(|(own, _)| *own == id) {
            return Some(Provider::Engine);
        }
        lock(&self.map)
            .providers
            .get(id)
            .cloned()
            .map(Provider::Worker)
    }

    /// The types workers provide, with their ids, in id order.
    pub(crate) fn snapshot(&self) -> Vec<(String, TriggerType)> {
        sorted_entries(&lock(&self.map).providers)
    }

    /// Withdraws every type `conn` provides.
    pub(crate) fn remove_connection(&self, conn: ConnId) {
        let mut map = lock(&self.map);
        map.providers.retain(|_, provider| provider.owner != conn);
        shrink_map(&mut map.providers);
        map.owned.forget(conn);
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
            metadata: None,
        }
    }

    #[test]
    fn triggers_die_with_their_connection() {
        let registry = TriggerRegistry::default();
        registry.register("a".into(), trigger(1, "cron"));
        registry.register("b".into(), trigger(1, "queue"));
        registry.register("c".into(), trigger(2, "cron"));
        registry.register("d".into(), trigger(2, HTTP_TRIGGER_TYPE));
        assert_eq!(registry.len(), 3, "http triggers count as routes");
        assert!(registry.unregister("c", ConnId(1)).is_none());
        assert_eq!(registry.len(), 3, "only the owner unregisters");
        registry.remove_connection(ConnId(1));
        assert_eq!(registry.len(), 1);
        assert_eq!(registry.of_type("cron").len(), 1);
        assert!(registry.has_id("c"));
        assert!(registry.unregister("c", ConnId(2)).is_some());
        assert_eq!(registry.len(), 0);
        assert!(
            !registry.has_id("c") && !registry.has_id("a"),
            "no holder is left behind"
        );
        registry.register("r".into(), trigger(3, "cron"));
        registry.register("r".into(), trigger(4, "cron"));
        assert!(
            !registry.held_differently("r", &trigger(5, "cron")),
            "replicas hold the same"
        );
        assert!(registry.held_differently("r", &trigger(5, "queue")));
        registry.remove_connection(ConnId(3));
        assert!(registry.has_id("r"), "a replica still holds it");
    }

    /// A type provided by connection `owner` (its outbox leads nowhere).
    fn provided(owner: u64) -> TriggerType {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        TriggerType {
            owner: ConnId(owner),
            outbox: Outbox::unbounded(tx),
            description: None,
            trigger_request_format: None,
            call_request_format: None,
        }
    }

    #[test]
    fn the_engines_own_types_cannot_be_taken_over() {
        let registry = TriggerTypeRegistry::default();
        assert_eq!(
            registry.register(HTTP_TRIGGER_TYPE.into(), provided(1), 10),
            Err(TypeRefused::Taken)
        );
        assert!(matches!(
            registry.provider(HTTP_TRIGGER_TYPE),
            Some(Provider::Engine)
        ));
        assert_eq!(registry.register("cron".into(), provided(1), 10), Ok(()));
        assert!(matches!(
            registry.provider("cron"),
            Some(Provider::Worker(_))
        ));
        assert!(
            registry.register("cron".into(), provided(2), 10).is_err(),
            "a live type is kept"
        );
        assert!(
            registry.register("cron".into(), provided(1), 1).is_ok(),
            "its provider may repeat it"
        );
        registry.unregister("cron", ConnId(2));
        assert!(
            registry.provider("cron").is_some(),
            "only the provider withdraws"
        );
        registry.remove_connection(ConnId(1));
        assert!(registry.provider("cron").is_none());
        assert!(registry.provider("queue").is_none());
    }

    #[test]
    fn a_connection_provides_at_most_its_quota_of_types() {
        let registry = TriggerTypeRegistry::default();
        assert_eq!(registry.register("a".into(), provided(1), 2), Ok(()));
        assert_eq!(registry.register("b".into(), provided(1), 2), Ok(()));
        assert_eq!(
            registry.register("c".into(), provided(1), 2),
            Err(TypeRefused::OverQuota)
        );
        assert_eq!(
            registry.register("a".into(), provided(1), 2),
            Ok(()),
            "repeating one it provides never counts twice"
        );
        assert_eq!(
            registry.register("c".into(), provided(2), 2),
            Ok(()),
            "per connection"
        );
        registry.unregister("a", ConnId(1));
        assert_eq!(
            registry.register("d".into(), provided(1), 2),
            Ok(()),
            "room given back"
        );
        registry.remove_connection(ConnId(1));
        assert_eq!(registry.register("e".into(), provided(1), 1), Ok(()));
    }
}
