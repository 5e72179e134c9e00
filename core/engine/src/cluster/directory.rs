//! Which node serves which function and HTTP route. Each node publishes its own
//! registrations into two buckets (`{name}_functions`, `{name}_routes`, one key per function
//! id or route under `{node}.`), and follows everyone else's with a watch. A call of a
//! function no local worker serves goes to a live node that serves it, in turn; an HTTP route
//! of a peer is served here by calling its function on that peer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv::{Entry, Operation, Store};
use data_encoding::BASE64URL_NOPAD;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Cluster;
use super::members::{Members, RETRY_PAUSE};
use crate::lifecycle::{Lifeline, Shutdown};
use crate::state::EngineState;
use crate::util::lock;
use crate::worker::registry::ConnId;

/// The bucket of function registrations.
pub(crate) const FUNCTIONS: &str = iii_protocol::cluster::FUNCTIONS_BUCKET;
/// The bucket of HTTP routes.
pub(crate) const ROUTES: &str = iii_protocol::cluster::ROUTES_BUCKET;

/// How often this node looks for changes in its own registrations to publish.
const PUBLISH_EVERY: Duration = Duration::from_millis(50);

/// A function registration as peers see it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct FunctionEntry {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
}

/// An HTTP route as peers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RouteEntry {
    function_id: String,
    api_path: String,
    http_method: String,
}

/// The peers serving one function, each with the metadata it registered there.
type Serving = Vec<(Arc<str>, Option<Value>)>;

/// The peers' registrations, as this node follows them.
#[derive(Default)]
pub(crate) struct Directory {
    /// Function id → the peers serving it, with its metadata there.
    functions: Mutex<HashMap<String, Serving>>,
    /// Whose turn is next among several serving peers.
    turn: AtomicUsize,
    /// (peer, trigger id) → its route.
    routes: Mutex<HashMap<(Arc<str>, String), RouteEntry>>,
    /// The connection id each peer's routes are registered under in the route table.
    conns: Mutex<HashMap<Arc<str>, ConnId>>,
    /// Set when a key of this node that it still holds was deleted (by a peer that took it
    /// for gone): its registrations are published afresh.
    republish: std::sync::atomic::AtomicBool,
}

impl Directory {
    /// A live peer serving `function_id`, in turn, other than those in `tried`.
    pub(crate) fn pick(
        &self,
        members: &Members,
        function_id: &str,
        tried: &[Arc<str>],
    ) -> Option<Arc<str>> {
        let functions = lock(&self.functions);
        let serving: Vec<&Arc<str>> = (functions.get(function_id)?.iter())
            .map(|(node, _)| node)
            .filter(|node| !tried.contains(node) && members.is_alive(node))
            .collect();
        let count = serving.len();
        if count == 0 {
            return None;
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        serving.get(turn % count).map(|node| Arc::clone(node))
    }

    /// The metadata a peer registered `function_id` with (for the caller's access rules).
    pub(crate) fn metadata(&self, function_id: &str) -> Option<Value> {
        let functions = lock(&self.functions);
        functions.get(function_id)?.first()?.1.clone()
    }

    /// Function ids served by peers (and not necessarily here).
    pub(crate) fn remote_function_count(&self) -> usize {
        lock(&self.functions).len()
    }

    /// The first `limit` function ids peers serve (in id order), each with its peers.
    pub(crate) fn remote_functions(&self, limit: usize) -> Vec<Value> {
        let functions = lock(&self.functions);
        let mut ids: Vec<&String> = functions.keys().collect();
        ids.sort();
        (ids.into_iter().take(limit))
            .map(|id| {
                let nodes: Vec<&str> = (functions.get(id).into_iter().flatten())
                    .map(|(node, _)| &**node)
                    .collect();
                json!({"id": id, "nodes": nodes})
            })
            .collect()
    }

    /// The connection ids that stand for peers in the route table (their routes are not
    /// this node's to publish).
    fn peer_conns(&self) -> std::collections::HashSet<ConnId> {
        lock(&self.conns).values().copied().collect()
    }

    /// The connection id `node`'s routes are registered under.
    fn conn_of(&self, shared: &EngineState, node: &Arc<str>) -> ConnId {
        *lock(&self.conns)
            .entry(node.clone())
            .or_insert_with(|| shared.connections.next_id())
    }

    /// A peer joined (or came back): its routes are served again.
    pub(crate) fn node_joined(&self, shared: &EngineState, node: &Arc<str>) {
        let conn = self.conn_of(shared, node);
        let routes: Vec<(String, RouteEntry)> = (lock(&self.routes).iter())
            .filter(|((owner, _), _)| owner == node)
            .map(|((_, trigger), route)| (trigger.clone(), route.clone()))
            .collect();
        for (trigger, route) in routes {
            add_route(shared, conn, trigger, &route);
        }
    }

    /// A peer is lost: its routes go until it comes back.
    pub(crate) fn node_lost(&self, shared: &EngineState, node: &str) {
        if let Some(conn) = lock(&self.conns).get(node).copied() {
            shared.routes.remove_connection(conn);
        }
    }

    /// Takes in a change in the functions bucket.
    fn apply_function(&self, shared: &EngineState, me: &str, entry: &Entry) {
        let Some((node, function_id)) = parse_key(&entry.key) else {
            return;
        };
        if node == me {
            let held = shared.functions.contains(&function_id) && !shared.is_draining();
            if entry.operation != Operation::Put && held {
                self.republish.store(true, Ordering::Release);
            }
            return;
        }
        let mut functions = lock(&self.functions);
        let serving = functions.entry(function_id.clone()).or_default();
        serving.retain(|(peer, _)| **peer != *node);
        if entry.operation == Operation::Put {
            let parsed: FunctionEntry = serde_json::from_slice(&entry.value).unwrap_or_default();
            serving.push((node.as_str().into(), parsed.metadata));
        }
        if serving.is_empty() {
            functions.remove(&function_id);
        }
    }

    /// Takes in a change in the routes bucket.
    fn apply_route(&self, shared: &EngineState, members: &Members, me: &str, entry: &Entry) {
        let Some((node, trigger)) = parse_key(&entry.key) else {
            return;
        };
        if node == me {
            // The echo of this node's own puts needs nothing; only a deletion of a route it
            // still holds does.
            if entry.operation == Operation::Put || shared.is_draining() {
                return;
            }
            let peers = self.peer_conns();
            let held = (shared.routes.snapshot().iter())
                .any(|route| route.trigger_id == trigger && !peers.contains(&route.owner));
            if held {
                self.republish.store(true, Ordering::Release);
            }
            return;
        }
        let node: Arc<str> = node.as_str().into();
        let conn = self.conn_of(shared, &node);
        let key = (node.clone(), trigger.clone());
        shared.routes.unregister(&trigger, conn);
        if entry.operation != Operation::Put {
            lock(&self.routes).remove(&key);
            return;
        }
        let Ok(route) = serde_json::from_slice::<RouteEntry>(&entry.value) else {
            return;
        };
        if members.is_alive(&node) {
            add_route(shared, conn, trigger, &route);
        }
        lock(&self.routes).insert(key, route);
    }

    /// Forgets what one bucket said (its watch starts over and replays it).
    fn forget(&self, shared: &EngineState, bucket: &str) {
        if bucket == FUNCTIONS {
            lock(&self.functions).clear();
            return;
        }
        lock(&self.routes).clear();
        for conn in lock(&self.conns).values() {
            shared.routes.remove_connection(*conn);
        }
    }
}

/// Deletes node `node`'s registrations from both buckets (a node that has been gone long).
pub(crate) async fn forget_node(cluster: &Cluster, node: &str) {
    for bucket in [FUNCTIONS, ROUTES] {
        let Ok(store) = cluster.open_bucket(bucket, Duration::ZERO).await else {
            continue;
        };
        if let Err(error) = purge_own(&store, node, &HashMap::new()).await {
            tracing::debug!(%error, %node, bucket, "could not forget a lost node's registrations");
        }
    }
    tracing::info!(%node, "a node gone for long: its registrations are deleted");
}

/// Registers a peer's route in the local route table (refused, and logged, when a local
/// listener's workers hold the same method and path).
fn add_route(shared: &EngineState, conn: ConnId, trigger: String, route: &RouteEntry) {
    let config = json!({"api_path": route.api_path, "http_method": route.http_method});
    let domain = crate::access::Domain::default();
    let added = (shared.routes).register(trigger, conn, domain, route.function_id.clone(), &config);
    if let Err(error) = added {
        tracing::warn!(function_id = %route.function_id, error = %error.0, "a peer's HTTP route is not served here");
    }
}

/// The key of `id` under `node`.
fn key_of(node: &str, id: &str) -> String {
    format!("{node}.{}", BASE64URL_NOPAD.encode(id.as_bytes()))
}

/// The node and id a key names.
fn parse_key(key: &str) -> Option<(String, String)> {
    let (node, encoded) = key.split_once('.')?;
    let id = BASE64URL_NOPAD.decode(encoded.as_bytes()).ok()?;
    Some((node.to_string(), String::from_utf8(id).ok()?))
}

/// Starts publishing this node's registrations and following its peers'.
pub(crate) fn spawn(
    shared: &Arc<EngineState>,
    cluster: &Arc<Cluster>,
    shutdown: &Shutdown,
    lifeline: &Lifeline,
) {
    tokio::spawn(publish(
        shared.clone(),
        cluster.clone(),
        shutdown.clone(),
        lifeline.clone(),
    ));
    for bucket in [FUNCTIONS, ROUTES] {
        tokio::spawn(follow(
            shared.clone(),
            cluster.clone(),
            bucket,
            shutdown.clone(),
        ));
    }
}

/// This node's registrations as they should be in the buckets: key → value.
fn local_entries(shared: &EngineState, cluster: &Cluster) -> [HashMap<String, Vec<u8>>; 2] {
    let node = &*cluster.node;
    let mut functions = HashMap::new();
    let mut routes = HashMap::new();
    if shared.is_draining() {
        // A node that drains takes no new calls from its peers; its member entry stays
        // until it stops, so calls already sent here still get their answers.
        return [functions, routes];
    }
    for (id, registered) in shared.functions.snapshot() {
        if id.is_empty() {
            continue;
        }
        // Replicas of one id: the first registration describes it.
        let std::collections::hash_map::Entry::Vacant(slot) = functions.entry(key_of(node, &id))
        else {
            continue;
        };
        let entry = FunctionEntry {
            description: registered.details.description,
            metadata: registered.details.metadata,
        };
        if let Ok(value) = serde_json::to_vec(&entry) {
            slot.insert(value);
        }
    }
    let peers = cluster.directory.peer_conns();
    for route in shared.routes.snapshot() {
        if route.trigger_id.is_empty() || peers.contains(&route.owner) {
            continue;
        }
        let entry = RouteEntry {
            function_id: route.function_id,
            api_path: route.pattern,
            http_method: route.method.to_string(),
        };
        if let Ok(value) = serde_json::to_vec(&entry) {
            routes.insert(key_of(node, &route.trigger_id), value);
        }
    }
    [functions, routes]
}

/// Keeps this node's part of the buckets equal to its registrations, until the engine stops;
/// after NATS comes back it starts over (the buckets may have gone with the server).
async fn publish(
    shared: Arc<EngineState>,
    cluster: Arc<Cluster>,
    mut shutdown: Shutdown,
    _lifeline: Lifeline,
) {
    let mut epochs = cluster.epoch.subscribe();
    let mut stores: Option<[Store; 2]> = None;
    let mut published: [HashMap<String, Vec<u8>>; 2] = Default::default();
    let mut seen = None;
    let mut fresh = true;
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            changed = epochs.changed() => {
                if changed.is_ok() {
                    fresh = true;
                    stores = None;
                }
            }
            _ = tokio::time::sleep(PUBLISH_EVERY) => {}
        }
        if cluster.directory.republish.swap(false, Ordering::AcqRel) {
            fresh = true;
        }
        let generations = (
            shared.functions.generation(),
            shared.routes.generation(),
            shared.is_draining(),
        );
        if !fresh && seen == Some(generations) {
            continue;
        }
        if stores.is_none() {
            let functions = cluster.open_bucket(FUNCTIONS, Duration::ZERO).await;
            let routes = cluster.open_bucket(ROUTES, Duration::ZERO).await;
            let (Ok(functions), Ok(routes)) = (functions, routes) else {
                continue;
            };
            stores = Some([functions, routes]);
        }
        let Some(buckets) = &stores else { continue };
        let desired = local_entries(&shared, &cluster);
        let mut failed = false;
        for ((store, published), desired) in buckets.iter().zip(&mut published).zip(desired) {
            if fresh {
                // What an earlier run (or this one, before NATS went) left and no longer
                // holds goes; what it holds is put again below, so peers never miss it.
                if let Err(error) = purge_own(store, &cluster.node, &desired).await {
                    tracing::debug!(%error, "cannot clear this node's old registrations");
                    failed = true;
                    break;
                }
                published.clear();
            }
            if let Err(error) = sync(store, published, desired).await {
                tracing::debug!(%error, "cannot publish this node's registrations");
                failed = true;
                break;
            }
        }
        if failed {
            stores = None;
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        }
        tracing::debug!(
            functions = published[0].len(),
            routes = published[1].len(),
            fresh,
            "this node's registrations are published"
        );
        fresh = false;
        seen = Some(generations);
    }
}

/// Deletes every key of `node` in `store` that is not in `keep`.
async fn purge_own(
    store: &Store,
    node: &str,
    keep: &HashMap<String, Vec<u8>>,
) -> Result<(), String> {
    let prefix = format!("{node}.");
    let keys: Vec<String> = (store.keys().await.map_err(|e| e.to_string())?)
        .try_collect()
        .await
        .map_err(|e| e.to_string())?;
    let stale =
        (keys.into_iter()).filter(|key| key.starts_with(&prefix) && !keep.contains_key(key));
    for key in stale {
        store.delete(&key).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Puts what changed and deletes what went, recording each step in `published`.
async fn sync(
    store: &Store,
    published: &mut HashMap<String, Vec<u8>>,
    desired: HashMap<String, Vec<u8>>,
) -> Result<(), String> {
    let gone: Vec<String> = (published.keys())
        .filter(|key| !desired.contains_key(*key))
        .cloned()
        .collect();
    for key in gone {
        store.delete(&key).await.map_err(|e| e.to_string())?;
        published.remove(&key);
    }
    for (key, value) in desired {
        if published.get(&key) == Some(&value) {
            continue;
        }
        store
            .put(&key, value.clone().into())
            .await
            .map_err(|e| e.to_string())?;
        published.insert(key, value);
    }
    Ok(())
}

/// Follows one registrations bucket until the engine stops, starting over after NATS
/// comes back.
async fn follow(
    shared: Arc<EngineState>,
    cluster: Arc<Cluster>,
    bucket: &'static str,
    mut shutdown: Shutdown,
) {
    let mut epochs = cluster.epoch.subscribe();
    loop {
        epochs.borrow_and_update();
        let watch = match cluster.open_bucket(bucket, Duration::ZERO).await {
            Ok(store) => store
                .watch_all_from_revision(1)
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error),
        };
        let mut watch = match watch {
            Ok(watch) => watch,
            Err(error) => {
                tracing::debug!(%error, bucket, "cannot watch the cluster's registrations yet");
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(RETRY_PAUSE) => continue,
                }
            }
        };
        // From the first revision, not "new": a watch that starts on a bucket still empty
        // (NATS just came back) must not miss the puts that race with it.
        cluster.directory.forget(&shared, bucket);
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = epochs.changed() => break,
                entry = watch.next() => match entry {
                    Some(Ok(entry)) => {
                        let directory = &cluster.directory;
                        if bucket == FUNCTIONS {
                            directory.apply_function(&shared, &cluster.node, &entry);
                        } else {
                            directory.apply_route(&shared, &cluster.members, &cluster.node, &entry);
                        }
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%error, bucket, "the watch of the cluster's registrations failed");
                        break;
                    }
                    None => break,
                },
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_node_and_any_id() {
        for id in ["math::add", "a.b c/d", "日本", "x"] {
            let key = key_of("node-1", id);
            assert!(
                (key.bytes()).all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{key}"
            );
            assert_eq!(parse_key(&key), Some(("node-1".into(), id.to_string())));
        }
        assert_eq!(parse_key("nodot"), None);
        assert_eq!(parse_key("n.%%"), None);
    }
}
