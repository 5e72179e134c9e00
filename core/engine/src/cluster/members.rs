//! Who is in the cluster. Each node puts its entry (the URL its worker port is reached on)
//! into the `{name}_nodes` bucket every heartbeat, and watches the bucket: a peer is alive
//! while its entry keeps being renewed, and lost once it has not been for the node timeout
//! (or at once when it deletes its entry on a graceful stop). Losing a peer fails the calls
//! pending on it and cuts the channel relays to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv::{Entry, Operation};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Cluster, ClusterConfig};
use crate::lifecycle::{Lifeline, Shutdown};
use crate::state::EngineState;
use crate::util::lock;

/// The buckets of a cluster, with how long each keeps a value nobody renews: node entries
/// age out (a dead node's is gone after a minute); registrations stay until their node
/// withdraws them or starts again.
pub(crate) const BUCKETS: [(&str, Duration); 3] = [
    (NODES, Duration::from_secs(60)),
    (super::directory::FUNCTIONS, Duration::ZERO),
    (super::directory::ROUTES, Duration::ZERO),
];

/// The bucket of node entries.
pub(crate) const NODES: &str = iii_protocol::cluster::NODES_BUCKET;

/// How often the node timeout is checked.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Pause before watching a bucket again after the watch failed.
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// A node's entry in the `nodes` bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeEntry {
    /// The URL its worker port is reached on.
    pub(crate) advertise: String,
    /// The engine's version.
    pub(crate) version: String,
    /// Seconds it has been up when it wrote the entry.
    #[serde(default)]
    pub(crate) uptime_secs: u64,
    /// Drawn when the process starts: a node that restarted under its id within the node
    /// timeout is still told apart from the one that died.
    #[serde(default)]
    pub(crate) incarnation: String,
}

/// A live peer.
struct Member {
    advertise: String,
    version: String,
    incarnation: String,
    /// When its entry was last renewed, by this node's clock.
    last_seen: Instant,
    /// When this node saw it join.
    joined: Instant,
}

/// This node's view of its peers.
pub(crate) struct Members {
    me: Arc<str>,
    incarnation: String,
    advertise: String,
    started: std::time::Instant,
    timeout: Duration,
    heartbeat: Duration,
    alive: Mutex<HashMap<Arc<str>, Member>>,
    /// The newest renewal time the NATS server stamped on any entry: its clock, for telling
    /// a renewal from an old value replayed when a watch starts.
    newest: Mutex<Option<async_nats::datetime::DateTime>>,
    /// Bumped whenever a peer joins or is lost.
    changes: tokio::sync::watch::Sender<u64>,
    /// When this node's own entry was last renewed: without a recent renewal, this node is
    /// the one cut off, and what it sees of its peers says nothing about them.
    renewed: Mutex<Option<Instant>>,
    /// How many times each peer was lost (a task forgetting a peer's registrations checks
    /// that it was not seen and lost again meanwhile).
    losses: Mutex<HashMap<Arc<str>, u64>>,
    /// Set once this node leaves: its entry is no longer renewed.
    leaving: std::sync::atomic::AtomicBool,
}

impl Members {
    /// This node's view, empty, for the node `config` describes (up since `started`).
    pub(crate) fn new(config: &ClusterConfig, started: std::time::Instant) -> Self {
        Self {
            me: config.node_id.as_str().into(),
            incarnation: uuid::Uuid::new_v4().to_string(),
            advertise: config.advertise.clone(),
            started,
            timeout: config.node_timeout,
            heartbeat: config.heartbeat,
            alive: Mutex::default(),
            newest: Mutex::default(),
            changes: tokio::sync::watch::channel(0).0,
            renewed: Mutex::default(),
            losses: Mutex::default(),
            leaving: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether this node renewed its own entry within two heartbeats: NATS works for it, so
    /// a peer it has seen no renewal of for the node timeout is the one gone (and not this
    /// node cut off from NATS, where every peer ages out alike).
    pub(crate) fn in_touch(&self) -> bool {
        (*lock(&self.renewed)).is_some_and(|at| at.elapsed() <= self.heartbeat * 2)
    }

    /// Gives every peer a full node timeout from now (this node's view starts over after
    /// NATS came back: renewals it could not see while cut off say nothing of the peers).
    pub(crate) fn grace(&self) {
        let now = Instant::now();
        for member in lock(&self.alive).values_mut() {
            member.last_seen = now;
        }
    }

    /// Takes the stream's newest write time as the NATS clock's "now" (before a watch
    /// replays old entries).
    fn saw_time(&self, at: async_nats::datetime::DateTime) {
        let mut newest = lock(&self.newest);
        if newest.is_none_or(|seen| seen < at) {
            *newest = Some(at);
        }
    }

    /// The id and worker URL of live peer `node`.
    pub(crate) fn advertise_of(&self, node: &str) -> Option<(Arc<str>, String)> {
        let alive = lock(&self.alive);
        let (id, member) = alive.get_key_value(node)?;
        Some((id.clone(), member.advertise.clone()))
    }

    /// Whether `node` is a live peer.
    pub(crate) fn is_alive(&self, node: &str) -> bool {
        lock(&self.alive).contains_key(node)
    }

    /// Live peers.
    pub(crate) fn count(&self) -> usize {
        lock(&self.alive).len()
    }

    /// The process `node` is now, if it is a live peer.
    fn incarnation_of(&self, node: &str) -> Option<String> {
        lock(&self.alive)
            .get(node)
            .map(|member| member.incarnation.clone())
    }

    /// Returns once the process that is node `node` now is no longer a live peer (lost, or
    /// replaced by a restarted one).
    pub(crate) async fn until_lost(&self, node: &str) {
        let Some(first) = self.incarnation_of(node) else {
            return;
        };
        self.until_not(node, &first).await;
    }

    /// Returns once node `node` is no longer process `incarnation`.
    async fn until_not(&self, node: &str, incarnation: &str) {
        let mut changes = self.changes.subscribe();
        while self.incarnation_of(node).as_deref() == Some(incarnation) {
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Returns once process `incarnation` of node `node` is lost while this node is in touch
    /// with NATS. Losses seen while cut off say nothing of the peer: once back in touch, the
    /// peer has a node timeout to be seen again, and only then is it taken for lost.
    pub(crate) async fn until_truly_lost(&self, node: &str, incarnation: &str) {
        loop {
            self.until_not(node, incarnation).await;
            if self.in_touch() {
                return;
            }
            while !self.in_touch() {
                tokio::time::sleep(SWEEP_EVERY).await;
            }
            tokio::time::sleep(self.timeout).await;
            if self.incarnation_of(node).as_deref() != Some(incarnation) {
                return;
            }
        }
    }

    /// The process that is node `node` now, if it is a live peer.
    pub(crate) fn incarnation(&self, node: &str) -> Option<String> {
        self.incarnation_of(node)
    }

    /// This node and its live peers, for `/status`.
    pub(crate) fn status(&self) -> Value {
        let now = Instant::now();
        let alive = lock(&self.alive);
        let mut peers: Vec<Value> = (alive.iter())
            .map(|(node, member)| {
                json!({
                    "node": &**node,
                    "advertise": member.advertise,
                    "version": member.version,
                    "last_seen_ms": now.duration_since(member.last_seen).as_millis() as u64,
                    "member_for_secs": now.duration_since(member.joined).as_secs(),
                })
            })
            .collect();
        drop(alive);
        peers.sort_by(|a, b| a["node"].as_str().cmp(&b["node"].as_str()));
        json!(peers)
    }

    /// This node's entry.
    fn entry(&self) -> NodeEntry {
        NodeEntry {
            advertise: self.advertise.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            incarnation: self.incarnation.clone(),
        }
    }

    /// Takes in an entry the watch delivered. Returns the peer when it just joined, and
    /// whether it replaced a process of the same id (which is then lost).
    fn seen(&self, entry: &Entry) -> Option<(Arc<str>, bool)> {
        let age = self.is_renewal(entry)?;
        if entry.key == *self.me {
            return None;
        }
        let parsed: NodeEntry = serde_json::from_slice(&entry.value).ok()?;
        if !super::config::is_node_id(&entry.key) {
            return None;
        }
        // Seen as of when it was written, so a value replayed by a watch that started over
        // does not give a node that stopped renewing a fresh timeout.
        let now = Instant::now();
        let renewed_at = now.checked_sub(age).unwrap_or(now);
        let mut alive = lock(&self.alive);
        let mut replaced = false;
        if let Some(member) = alive.get_mut(entry.key.as_str()) {
            if member.incarnation == parsed.incarnation {
                member.last_seen = member.last_seen.max(renewed_at);
                member.advertise = parsed.advertise;
                return None;
            }
            replaced = true;
        }
        let node: Arc<str> = entry.key.as_str().into();
        let member = Member {
            advertise: parsed.advertise,
            version: parsed.version,
            incarnation: parsed.incarnation,
            last_seen: renewed_at,
            joined: now,
        };
        alive.insert(node.clone(), member);
        drop(alive);
        self.changes.send_modify(|count| *count += 1);
        Some((node, replaced))
    }

    /// Whether `entry` was written within the node timeout of the newest renewal seen: a
    /// watch that starts replays each node's last entry, and a dead node's is old.
    /// Returns its age by that clock when it is one.
    fn is_renewal(&self, entry: &Entry) -> Option<Duration> {
        let mut newest = lock(&self.newest);
        let latest = match *newest {
            Some(seen) if seen >= entry.created => seen,
            _ => {
                *newest = Some(entry.created);
                entry.created
            }
        };
        // Judged by age alone against the NATS clock: a replayed entry of a dead node is
        // older than the node timeout; renewals of live ones are not.
        let age_ms = (latest - entry.created).whole_milliseconds();
        let age = Duration::from_millis(u64::try_from(age_ms).unwrap_or(0));
        (age <= self.timeout).then_some(age)
    }

    /// Peer `node` is gone; returns whether it was a live peer.
    fn lose(&self, node: &str) -> bool {
        let removed = lock(&self.alive).remove(node).is_some();
        if removed {
            self.changes.send_modify(|count| *count += 1);
        }
        removed
    }

    /// Peers not renewed within the timeout, taken out of the live set.
    fn sweep(&self, now: Instant) -> Vec<Arc<str>> {
        let mut alive = lock(&self.alive);
        let timeout = self.timeout;
        let lost: Vec<Arc<str>> = alive
            .extract_if(|_, member| now.duration_since(member.last_seen) > timeout)
            .map(|(node, _)| node)
            .collect();
        drop(alive);
        if !lost.is_empty() {
            self.changes.send_modify(|count| *count += 1);
        }
        lost
    }
}

/// Starts renewing this node's entry and following its peers'.
pub(crate) fn spawn(
    shared: &Arc<EngineState>,
    cluster: &Arc<Cluster>,
    shutdown: &Shutdown,
    lifeline: &Lifeline,
) {
    tokio::spawn(renew(cluster.clone(), shutdown.clone(), lifeline.clone()));
    tokio::spawn(sweep(
        shared.clone(),
        cluster.clone(),
        shutdown.clone(),
        lifeline.clone(),
    ));
    tokio::spawn(follow(
        shared.clone(),
        cluster.clone(),
        shutdown.clone(),
        lifeline.clone(),
    ));
}

/// Puts this node's entry every heartbeat until the engine stops.
async fn renew(cluster: Arc<Cluster>, mut shutdown: Shutdown, _lifeline: Lifeline) {
    let mut store = None;
    let mut ticks = tokio::time::interval(cluster.members.heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = ticks.tick() => {}
        }
        if store.is_none() {
            store = cluster.open_bucket(NODES, BUCKETS[0].1).await.ok();
        }
        let Some(bucket) = &store else { continue };
        if cluster
            .members
            .leaving
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        let entry = cluster.members.entry();
        let Ok(value) = serde_json::to_vec(&entry) else {
            continue;
        };
        match bucket.put(&*cluster.node, value.into()).await {
            Ok(_) => *lock(&cluster.members.renewed) = Some(Instant::now()),
            Err(error) => {
                tracing::debug!(%error, "could not renew this node's cluster entry");
                store = None;
            }
        }
    }
}

/// Takes peers whose entry aged past the node timeout out of the live set, on a timer of its
/// own (a watch that is being opened again must not hold the losses up).
async fn sweep(
    shared: Arc<EngineState>,
    cluster: Arc<Cluster>,
    mut shutdown: Shutdown,
    _lifeline: Lifeline,
) {
    let mut sweeps = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = sweeps.tick() => {}
        }
        for node in cluster.members.sweep(Instant::now()) {
            lost(&shared, &cluster, &node);
        }
    }
}

/// Follows the `nodes` bucket and the node timeout until the engine stops.
async fn follow(
    shared: Arc<EngineState>,
    cluster: Arc<Cluster>,
    mut shutdown: Shutdown,
    _lifeline: Lifeline,
) {
    let mut epochs = cluster.epoch.subscribe();
    let mut retries = tokio::time::interval(RETRY_PAUSE);
    loop {
        epochs.borrow_and_update();
        let watch = match cluster.open_bucket(NODES, BUCKETS[0].1).await {
            Ok(store) => {
                if let Ok(status) = store.status().await {
                    cluster.members.saw_time(status.info.state.last_timestamp);
                }
                (store.watch_all_from_revision(1).await).map_err(|error| error.to_string())
            }
            Err(error) => Err(error),
        };
        let mut watch = match watch {
            Ok(watch) => Some(watch),
            Err(error) => {
                tracing::debug!(%error, "cannot watch the cluster's nodes yet");
                None
            }
        };
        let watching = watch.is_some();
        loop {
            let next = async {
                match &mut watch {
                    Some(watch) => watch.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = epochs.changed() => break,
                _ = retries.tick(), if !watching => break,
                entry = next => match entry {
                    Some(Ok(entry)) => apply(&shared, &cluster, &entry),
                    Some(Err(error)) => {
                        tracing::debug!(%error, "the watch of the cluster's nodes failed");
                        break;
                    }
                    None => break,
                },
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// One change in the `nodes` bucket.
fn apply(shared: &EngineState, cluster: &Arc<Cluster>, entry: &Entry) {
    match entry.operation {
        Operation::Put => {
            if let Some((node, replaced)) = cluster.members.seen(entry) {
                if replaced {
                    lost(shared, cluster, &node);
                }
                tracing::info!(%node, "cluster node joined");
                cluster.directory.node_joined(shared, &node);
            }
        }
        Operation::Delete | Operation::Purge => {
            if cluster.members.lose(&entry.key) {
                lost(shared, cluster, &entry.key);
            }
        }
    }
}

/// Peer `node` is lost: its routes go, and whoever waits on it learns (through
/// [`Members::until_lost`]). If it stays away for [`FORGET_AFTER`], its registrations are
/// deleted from the buckets (any node may; deleting twice is harmless), so ids of nodes that
/// never return do not pile up.
fn lost(shared: &EngineState, cluster: &Arc<Cluster>, node: &str) {
    tracing::warn!(%node, "cluster node lost");
    cluster.directory.node_lost(shared, node);
    let loss = {
        let mut losses = lock(&cluster.members.losses);
        let count = losses.entry(node.into()).or_default();
        *count += 1;
        *count
    };
    let (cluster, node) = (cluster.clone(), node.to_string());
    tokio::spawn(async move {
        let mut shutdown = cluster.shutdown.clone();
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(FORGET_AFTER) => {}
        }
        let same_loss = lock(&cluster.members.losses).get(node.as_str()) == Some(&loss);
        if same_loss && !cluster.members.is_alive(&node) && cluster.members.in_touch() {
            super::directory::forget_node(&cluster, &node).await;
        }
    });
}

/// How long a lost node's registrations stay in the buckets.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// Deletes this node's entry (a graceful stop): peers lose it at once.
pub(crate) async fn leave(cluster: &Cluster) {
    (cluster.members.leaving).store(true, std::sync::atomic::Ordering::Release);
    let Ok(store) = cluster.open_bucket(NODES, BUCKETS[0].1).await else {
        return;
    };
    let deleting = store.delete(&*cluster.node);
    if let Ok(Err(error)) = tokio::time::timeout(Duration::from_secs(1), deleting).await {
        tracing::debug!(%error, "could not delete this node's cluster entry");
    }
}

#[cfg(test)]
#[path = "members_tests.rs"]
mod tests;
