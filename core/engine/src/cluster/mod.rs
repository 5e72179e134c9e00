//! Cluster mode: engines that share one NATS deployment act as one engine to their workers
//! (docs/CLUSTER.md). NATS carries everything but channel bytes: who is in the cluster
//! ([`members`], a key-value bucket each node renews), which node serves which function and
//! HTTP route ([`directory`], key-value buckets with watches), and calls between nodes
//! ([`calls`], request/reply on each node's subject). Channel bytes go engine to engine: a
//! channel id names the node that owns the channel, and a node that gets an end it does not
//! own relays it to the owner over a WebSocket ([`relay`]).
//!
//! Nothing here is a consensus or membership protocol of our own: liveness is the age of a
//! node's last renewal as its peers saw it arrive, and every node's view is rebuilt from the
//! buckets whenever its NATS connection comes back.

pub(crate) mod calls;
pub mod config;
pub(crate) mod directory;
pub(crate) mod members;
pub(crate) mod relay;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::lifecycle::{Lifeline, Shutdown};
use crate::state::EngineState;
pub use config::ClusterConfig;
use directory::Directory;
use members::Members;

/// Most bytes one bucket holds in NATS's memory.
const MAX_BUCKET_BYTES: i64 = 256 << 20;

/// How long connecting to NATS at start-up may take before the engine gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) use iii_protocol::cluster::CHANNEL_NODE_SEPARATOR;

/// Function ids of peers `/status` lists (`remote_functions_total` counts them all).
const STATUS_REMOTE_FUNCTIONS: usize = 100;

/// Counters of the traffic between this node and its peers.
#[derive(Default)]
pub(crate) struct ClusterCounters {
    /// Calls this node sent to peers (void ones included).
    pub(crate) calls_sent: AtomicU64,
    /// Calls peers sent to this node.
    pub(crate) calls_served: AtomicU64,
    /// Calls sent to a peer that failed because the peer was lost or unreachable.
    pub(crate) calls_stopped: AtomicU64,
    /// Channel ends relayed to their owner: opened so far, and open now.
    pub(crate) relays_opened: AtomicU64,
    pub(crate) relays_open: AtomicU64,
    /// Bytes of channel frames relayed, each way.
    pub(crate) relayed_to_owner: AtomicU64,
    pub(crate) relayed_from_owner: AtomicU64,
}

/// A running cluster membership: the NATS client and this node's view of its peers.
pub(crate) struct Cluster {
    pub(crate) config: ClusterConfig,
    /// This node's id.
    pub(crate) node: Arc<str>,
    pub(crate) client: async_nats::Client,
    pub(crate) jetstream: jetstream::Context,
    pub(crate) members: Members,
    pub(crate) directory: Directory,
    /// Set while the NATS connection is up.
    pub(crate) connected: AtomicBool,
    /// Bumped on every reconnection to NATS: the buckets are published and watched afresh.
    pub(crate) epoch: tokio::sync::watch::Sender<u64>,
    /// Calls sent to peers still waiting for their answer, and their payloads' bytes.
    pub(crate) pending: crate::quota::Slots,
    pub(crate) pending_bytes: calls::ByteBudget,
    /// Calls from peers being served.
    pub(crate) serving: crate::quota::Slots,
    pub(crate) counters: ClusterCounters,
    /// The engine's stop signal, for the cluster's own tasks.
    pub(crate) shutdown: Shutdown,
    /// TLS for `wss://` peers.
    pub(crate) peer_tls: Option<tokio_tungstenite::Connector>,
}

impl Cluster {
    /// The name of one of the cluster's key-value buckets.
    pub(crate) fn bucket(&self, what: &str) -> String {
        iii_protocol::cluster::bucket(&self.config.name, what)
    }

    /// The subject node `node` takes calls on.
    pub(crate) fn call_subject(&self, node: &str) -> String {
        iii_protocol::cluster::call_subject(&self.config.name, node)
    }

    /// Opens (creating it if needed) bucket `what`, keeping one value per key for `max_age`
    /// (zero: forever), in memory (every node publishes its part again after NATS restarts).
    pub(crate) async fn open_bucket(
        &self,
        what: &str,
        max_age: Duration,
    ) -> Result<kv::Store, String> {
        let bucket = self.bucket(what);
        if let Ok(store) = self.jetstream.get_key_value(&bucket).await {
            return Ok(store);
        }
        // The stream a key-value bucket is, made directly: the client's own bucket creation
        // first reads account details that NATS 2.9 (Debian's) words differently.
        let stream = jetstream::stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age,
            storage: jetstream::stream::StorageType::Memory,
            // What NATS may hold of one bucket: registrations of many nodes fit; a bucket
            // that is full refuses new values (logged by the node that wrote them).
            max_bytes: MAX_BUCKET_BYTES,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: 1,
            discard: jetstream::stream::DiscardPolicy::New,
            ..Default::default()
        };
        let created = self.jetstream.get_or_create_stream(stream).await;
        let store = self.jetstream.get_key_value(&bucket).await;
        store.map_err(|error| match created {
            Err(created) => format!("bucket {bucket}: {created}"),
            Ok(_) => format!("bucket {bucket}: {error}"),
        })
    }

    /// Adds the cluster's metrics to a scrape's `registry` (docs/OBSERVABILITY.md).
    pub(crate) fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::family::Family;
        use prometheus_client::metrics::gauge::ConstGauge;
        let counters = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let connected = i64::from(self.connected.load(Ordering::Relaxed));
        registry.register(
            "cluster_nats_connected",
            "1 while this node is connected to NATS",
            ConstGauge::new(connected),
        );
        let nodes = i64::try_from(self.members.count() + 1).unwrap_or(i64::MAX);
        registry.register(
            "cluster_nodes",
            "Nodes this node sees alive, itself included",
            ConstGauge::new(nodes),
        );
        let pending = i64::try_from(self.pending.taken()).unwrap_or(i64::MAX);
        registry.register(
            "cluster_calls_pending",
            "Calls sent to peers waiting for their answer",
            ConstGauge::new(pending),
        );
        registry.register(
            "cluster_calls_sent",
            "Calls this node sent to peers",
            ConstCounter::new(load(&counters.calls_sent)),
        );
        registry.register(
            "cluster_calls_served",
            "Calls peers sent to this node",
            ConstCounter::new(load(&counters.calls_served)),
        );
        registry.register(
            "cluster_calls_stopped",
            "Calls sent to peers that failed because the peer was lost or unreachable",
            ConstCounter::new(load(&counters.calls_stopped)),
        );
        let open = i64::try_from(load(&counters.relays_open)).unwrap_or(i64::MAX);
        registry.register(
            "cluster_relays_open",
            "Channel ends relayed to the peer that owns their channel, now",
            ConstGauge::new(open),
        );
        registry.register(
            "cluster_relays",
            "Channel ends relayed to the peer that owns their channel",
            ConstCounter::new(load(&counters.relays_opened)),
        );
        let bytes = Family::<
            [(&'static str, &'static str); 1],
            prometheus_client::metrics::counter::Counter,
        >::default();
        bytes
            .get_or_create(&[("direction", "to_owner")])
            .inc_by(load(&counters.relayed_to_owner));
        bytes
            .get_or_create(&[("direction", "from_owner")])
            .inc_by(load(&counters.relayed_from_owner));
        registry.register_with_unit(
            "cluster_relayed",
            "Channel bytes relayed between this node and channel owners",
            prometheus_client::registry::Unit::Bytes,
            bytes,
        );
    }

    /// Nothing sent to peers waits for its answer, and no channel end is being relayed.
    pub(crate) fn is_idle(&self) -> bool {
        self.pending.taken() == 0 && self.counters.relays_open.load(Ordering::Relaxed) == 0
    }

    /// What `/status` shows of the cluster.
    pub(crate) fn status(&self) -> Value {
        let counters = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        json!({
            "node": &*self.node,
            "advertise": self.config.advertise,
            "nats_connected": self.connected.load(Ordering::Relaxed),
            "members": self.members.status(),
            "remote_functions_total": self.directory.remote_function_count(),
            "remote_functions": self.directory.remote_functions(STATUS_REMOTE_FUNCTIONS),
            "calls_pending": self.pending.taken(),
            "calls_sent": load(&counters.calls_sent),
            "calls_served": load(&counters.calls_served),
            "calls_stopped": load(&counters.calls_stopped),
            "relays_open": load(&counters.relays_open),
            "relays_opened": load(&counters.relays_opened),
            "relayed_bytes_to_owner": load(&counters.relayed_to_owner),
            "relayed_bytes_from_owner": load(&counters.relayed_from_owner),
        })
    }
}

/// Splits a channel id into its owning node (none for a single engine's plain UUID) and the
/// owner's own id of the channel. `None` when it is neither form.
pub(crate) fn parse_channel_id(channel_id: &str) -> Option<(Option<&str>, Uuid)> {
    match channel_id.rsplit_once(CHANNEL_NODE_SEPARATOR) {
        None => Some((None, Uuid::parse_str(channel_id).ok()?)),
        Some((node, id)) if config::is_node_id(node) => {
            Some((Some(node), Uuid::parse_str(id).ok()?))
        }
        Some(_) => None,
    }
}

/// Where a channel end named by id is served.
pub(crate) enum ChannelHome {
    /// Here: this node owns it (or the engine is not clustered).
    Local,
    /// On peer `node`, reached at `advertise`.
    Peer {
        /// The owning node.
        node: Arc<str>,
        /// Its worker port.
        advertise: String,
    },
    /// Nowhere: not a channel id, or its owner is not in the cluster.
    Unknown,
}

/// Where the channel `channel_id` lives, as this engine sees it.
pub(crate) fn channel_home(shared: &EngineState, channel_id: &str) -> ChannelHome {
    let Some((node, _)) = parse_channel_id(channel_id) else {
        return ChannelHome::Unknown;
    };
    let cluster = shared.cluster.get();
    match (node, cluster) {
        (None, _) => ChannelHome::Local,
        (Some(node), Some(cluster)) if node == &*cluster.node => ChannelHome::Local,
        (Some(node), Some(cluster)) => match cluster.members.advertise_of(node) {
            Some((node, advertise)) => ChannelHome::Peer { node, advertise },
            None => ChannelHome::Unknown,
        },
        (Some(_), None) => ChannelHome::Unknown,
    }
}

/// Joins the cluster `config` describes: connects to NATS, then publishes this node and its
/// registrations and follows its peers' until the engine stops.
pub(crate) async fn join(
    shared: &Arc<EngineState>,
    config: ClusterConfig,
    shutdown: Shutdown,
    lifeline: Lifeline,
) -> std::io::Result<()> {
    let invalid = |error: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, error);
    config.check().map_err(invalid)?;
    let (connected_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let options = connect_options(&config, connected_tx).await?;
    let servers = (config.nats_urls.iter())
        .map(|url| url.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(format!("NATS URL: {error}")))?;
    let client = tokio::time::timeout(CONNECT_TIMEOUT, options.connect(servers))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("cannot reach NATS at {}", config.nats_urls.join(", ")),
            )
        })?
        .map_err(|error| {
            std::io::Error::other(format!(
                "cannot join the cluster at {}: {error}",
                config.nats_urls.join(", ")
            ))
        })?;
    let peer_tls = relay::peer_connector(&config.peer_ca_files).map_err(invalid)?;
    let node: Arc<str> = config.node_id.as_str().into();
    let cluster = Arc::new(Cluster {
        jetstream: jetstream::new(client.clone()),
        members: Members::new(&config, shared.started),
        directory: Directory::default(),
        connected: AtomicBool::new(true),
        epoch: tokio::sync::watch::channel(0).0,
        pending: Default::default(),
        pending_bytes: Default::default(),
        serving: Default::default(),
        counters: Default::default(),
        node,
        client,
        peer_tls,
        shutdown: shutdown.clone(),
        config,
    });
    // The buckets must exist before anything is published or watched: a node that cannot
    // create them cannot take part.
    for (what, max_age) in members::BUCKETS {
        cluster
            .open_bucket(what, max_age)
            .await
            .map_err(std::io::Error::other)?;
    }
    if shared.cluster.set(cluster.clone()).is_err() {
        return Err(std::io::Error::other("the engine joined a cluster twice"));
    }
    let calls = calls::serve(shared.clone(), cluster.clone()).await?;
    tokio::spawn(follow_connection(cluster.clone(), events, shutdown.clone()));
    members::spawn(shared, &cluster, &shutdown, &lifeline);
    directory::spawn(shared, &cluster, &shutdown, &lifeline);
    tokio::spawn(calls::run(shared.clone(), calls, shutdown, lifeline));
    tracing::info!(node = %cluster.node, advertise = %cluster.config.advertise, nats = %cluster.config.nats_urls.join(","), "joined the cluster");
    Ok(())
}

/// What the NATS client tells about its connection.
enum ConnectionEvent {
    Up,
    Down,
}

/// The NATS client's options: name, credentials, TLS, and connection events forwarded to
/// `events` (the callback must not block the client).
async fn connect_options(
    config: &ClusterConfig,
    events: tokio::sync::mpsc::UnboundedSender<ConnectionEvent>,
) -> std::io::Result<async_nats::ConnectOptions> {
    let auth = &config.auth;
    let mut options = match &auth.credentials_file {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path).await?,
        None => async_nats::ConnectOptions::new(),
    };
    if let Some(seed) = &auth.nkey_seed {
        options = options.nkey(seed.clone());
    }
    if let Some(token) = &auth.token {
        options = options.token(token.clone());
    }
    if let (Some(user), Some(password)) = (&auth.user, &auth.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    let tls = &config.tls;
    if tls.required {
        options = options.require_tls(true);
    }
    if let Some(ca) = &tls.ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &tls.client_cert {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(options
        .name(format!("iii-engine-{}", config.node_id))
        .request_timeout(None)
        .connection_timeout(CONNECT_TIMEOUT)
        .max_reconnects(None)
        // Messages the client holds per subscription for this node to take: calls from
        // peers and watch updates (past it NATS reports this node a slow consumer).
        .subscription_capacity(8192)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100 * attempts as u64).min(1000))
        })
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                let forwarded = match event {
                    async_nats::Event::Connected => Some(ConnectionEvent::Up),
                    async_nats::Event::Disconnected => Some(ConnectionEvent::Down),
                    other => {
                        tracing::debug!(event = %other, "NATS");
                        None
                    }
                };
                if let Some(forwarded) = forwarded {
                    let _ = events.send(forwarded);
                }
            }
        }))
}

/// Follows the NATS connection: logs it going and coming back, and starts a new epoch when it
/// comes back, so this node publishes and watches the buckets afresh.
async fn follow_connection(
    cluster: Arc<Cluster>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<ConnectionEvent>,
    mut shutdown: Shutdown,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.wait() => return,
            event = events.recv() => event,
        };
        let Some(event) = event else { return };
        match event {
            ConnectionEvent::Down => {
                cluster.connected.store(false, Ordering::Relaxed);
                tracing::warn!(node = %cluster.node, "lost the connection to NATS; serving local traffic only");
            }
            ConnectionEvent::Up => {
                let was_down = !cluster.connected.swap(true, Ordering::Relaxed);
                if was_down {
                    tracing::info!(node = %cluster.node, "connected to NATS again");
                    cluster.members.grace();
                    cluster.epoch.send_modify(|epoch| *epoch += 1);
                }
            }
        }
    }
}

/// Leaves the cluster on a graceful stop: this node's entry goes at once, so peers need not
/// wait for it to age.
pub(crate) async fn leave(shared: &EngineState) {
    let Some(cluster) = shared.cluster.get() else {
        return;
    };
    members::leave(cluster).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), cluster.client.flush()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_name_their_owner() {
        let id = Uuid::new_v4();
        assert_eq!(parse_channel_id(&id.to_string()), Some((None, id)));
        assert_eq!(
            parse_channel_id(&format!("node-a.{id}")),
            Some((Some("node-a"), id))
        );
        assert_eq!(parse_channel_id(&format!("no/de.{id}")), None);
        assert_eq!(parse_channel_id("node-a.not-a-uuid"), None);
        assert_eq!(parse_channel_id(""), None);
    }
}
