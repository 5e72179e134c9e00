//! The engine's shared state: one value, built at start-up from the configuration, that every
//! connection handler reads. It lives apart from the start-up code ([`crate::engine`]) so that
//! handlers depend on the state they use, not on the module that starts them.

use std::sync::Arc;

use crate::channels::registry::ChannelRegistry;
use crate::config::EngineConfig;
use crate::functions::FunctionRegistry;
use crate::http::routes::RouteTable;
use crate::invocations::Invocations;
use crate::quota::Slots;
use crate::remote::RemoteClient;
use crate::stats::ByteCounters;
use crate::triggers::{TriggerRegistry, TriggerTypeRegistry};
use crate::worker::registry::ConnectionRegistry;

/// Everything connections share: the registries, the pending invocations, the channels and
/// the configuration. Handlers take the part they use (the channel relay and the HTTP body
/// paths take only the channel registry).
pub(crate) struct EngineState {
    pub(crate) config: EngineConfig,
    pub(crate) connections: ConnectionRegistry,
    pub(crate) functions: FunctionRegistry,
    pub(crate) triggers: TriggerRegistry,
    pub(crate) trigger_types: TriggerTypeRegistry,
    pub(crate) routes: RouteTable,
    pub(crate) invocations: Invocations,
    pub(crate) channels: Arc<ChannelRegistry>,
    pub(crate) bytes: Arc<ByteCounters>,
    /// Calls of functions the engine makes over HTTP.
    pub(crate) remote: Arc<RemoteClient>,
    /// WebSocket connections open on the worker port (`--max-connections`).
    pub(crate) sockets: Slots,
    /// HTTP requests being handled (until their response head is out; a streamed body is
    /// then a channel in flight).
    pub(crate) http_requests: Slots,
    /// When the engine started (`/health` reports its uptime).
    pub(crate) started: std::time::Instant,
    /// The function ids the engine calls under some listener's rules (auth functions,
    /// middlewares, hooks): connections under access rules may not register them.
    pub(crate) engine_called: std::collections::HashSet<String>,
    /// Set when a graceful stop began ([`crate::Engine::drain`]): no new workers or HTTP
    /// requests, while calls and streams in flight finish.
    pub(crate) draining: std::sync::atomic::AtomicBool,
    /// The engine's Prometheus metrics, unless turned off.
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The cluster this engine joined, once it has (cluster mode only).
    pub(crate) cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// The worker listeners' local addresses, as the metrics name them.
    listeners: std::sync::Mutex<Vec<Arc<str>>>,
}

impl EngineState {
    /// A worker listener on `name` (its local address) accepts connections.
    pub(crate) fn add_listener(&self, name: Arc<str>) {
        crate::util::lock(&self.listeners).push(name);
    }

    /// The worker listeners' local addresses.
    pub(crate) fn listener_names(&self) -> Vec<Arc<str>> {
        crate::util::lock(&self.listeners).clone()
    }

    /// True once a graceful stop began.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Nothing in flight: no HTTP request being handled, no pending call, and no channel that
    /// has started (an end connected or finished) without finishing.
    pub(crate) fn is_idle(&self) -> bool {
        self.http_requests.taken() == 0
            && self.invocations.len() == 0
            && self.channels.started() == 0
            && (self.cluster.get()).is_none_or(|cluster| cluster.is_idle())
    }

    /// Empty registries for an engine configured by `config`, calling HTTP-invoked functions
    /// through `remote`.
    pub(crate) fn new(config: EngineConfig, remote: RemoteClient) -> Self {
        let bytes = Arc::new(ByteCounters::bounded(config.quotas.max_channel_bytes));
        let policies = std::iter::once(&config.access).chain(
            config
                .extra_listeners
                .iter()
                .map(|listener| &listener.access),
        );
        let engine_called = policies.flat_map(|p| p.engine_called()).cloned().collect();
        Self {
            metrics: config.metrics.then(Default::default),
            cluster: std::sync::OnceLock::new(),
            listeners: Default::default(),
            engine_called,
            connections: ConnectionRegistry::default(),
            functions: FunctionRegistry::new(config.replica_choice),
            triggers: TriggerRegistry::default(),
            trigger_types: TriggerTypeRegistry::default(),
            routes: RouteTable::default(),
            invocations: Invocations::new(config.invocation_timeout),
            channels: Arc::new(ChannelRegistry::new(&config, bytes.clone())),
            bytes,
            remote: Arc::new(remote),
            sockets: Slots::default(),
            http_requests: Slots::default(),
            started: std::time::Instant::now(),
            draining: std::sync::atomic::AtomicBool::new(false),
            config,
        }
    }
}
