//! Engine settings, kept in one plain struct so the CLI, tests and embedders configure the
//! engine the same way.

use std::time::Duration;

use crate::access::ListenerPolicy;
use crate::tls::TlsFiles;

/// How an engine listens and how long it keeps things it holds for others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Address to bind; `127.0.0.1` unless told otherwise.
    pub host: String,
    /// Port to bind; `0` picks any free port.
    pub port: u16,
    /// A channel whose two ends have not both connected within this time expires.
    pub channel_ttl: Duration,
    /// How long a finished channel is remembered, so late connects learn how it ended.
    pub tombstone_ttl: Duration,
    /// Engine-side deadline of a pending call; it is then answered with `timeout`.
    pub invocation_timeout: Duration,
    /// Largest message accepted on a main socket; larger ones close it with 1009.
    pub max_main_message_bytes: usize,
    /// Bytes of messages the engine holds for one worker that is not reading them. Calls to a
    /// worker over this bound are refused at once with `worker_busy`; a worker whose answers
    /// pile up to twice the bound is dropped as a slow consumer. A queue with nothing in it
    /// always takes one message (up to `max_main_message_bytes`).
    pub max_outbound_bytes: usize,
    /// A worker whose queue stays over `max_outbound_bytes` this long is dropped as a slow
    /// consumer (its pending calls fail with `invocation_stopped`).
    pub slow_consumer_timeout: Duration,
    /// A main socket that sends nothing for this long is pinged (a WebSocket Ping, which
    /// every WebSocket library answers on its own).
    pub ping_interval: Duration,
    /// A worker that sends nothing, not even the Pong, for this long after a ping is dropped
    /// as unresponsive (a frozen or vanished process): the calls it owed fail at once with
    /// `invocation_stopped` instead of waiting for `invocation_timeout`.
    pub ping_timeout: Duration,
    /// Port of the HTTP trigger server (on `host`); `Some(0)` picks any free port, `None`
    /// runs no HTTP server.
    pub http_port: Option<u16>,
    /// Address of the HTTP trigger server when it differs from `host`.
    pub http_host: Option<String>,
    /// How long an HTTP request waits for its function to send status and headers (or a
    /// plain result) before it is answered 504.
    pub http_timeout: Duration,
    /// Largest JSON request body parsed into an HTTP invocation's `body`; larger ones are
    /// answered 413. Other bodies are only streamed, never held whole.
    pub max_json_body_bytes: usize,
    /// Whether functions the engine calls over HTTP may be at loopback, private or
    /// link-local addresses (off: a worker cannot make the engine reach its private network).
    pub http_functions_allow_private: bool,
    /// PEM files of extra CA certificates trusted for `https://` HTTP-invoked functions,
    /// beside the Mozilla roots.
    pub http_functions_ca_files: Vec<std::path::PathBuf>,
    /// The environment variables of the engine an HTTP-invoked function's `auth` may name
    /// (none by default: a worker cannot make the engine send any of its environment).
    pub http_functions_secrets: Vec<String>,
    /// What one worker, or all of them together, may hold.
    pub quotas: Quotas,
    /// Who may connect to the main worker listener (`host`:`port`) and what they may do.
    pub access: ListenerPolicy,
    /// More worker listeners, each on its own address with its own rules (the config file's
    /// later `iii-worker-manager` entries).
    pub extra_listeners: Vec<WorkerListener>,
    /// How calls are spread across the replicas of a function.
    pub replica_choice: ReplicaChoice,
    /// Certificate and key of the main worker listener: set, it serves `wss://` only.
    pub tls: Option<TlsFiles>,
    /// Certificate and key of the HTTP trigger server: set, it serves `https://` only.
    pub http_tls: Option<TlsFiles>,
    /// Whether the engine keeps Prometheus metrics and serves `GET /metrics` (on by
    /// default; `--no-metrics` turns them off, and `/metrics` then answers 404).
    pub metrics: bool,
    /// Cluster mode: join the engines on one NATS deployment (docs/CLUSTER.md). `None`
    /// (the default) is a single engine with nothing else to run.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

/// How the engine picks which replica of a function serves a call. Either way, a replica
/// whose outbound queue is at its bound is passed over while another has room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplicaChoice {
    /// The replica with the fewest calls waiting for its answer; ties in turn (BENCHMARKS.md,
    /// "Replicas": a slow replica gets fewer calls).
    #[default]
    LeastInFlight,
    /// Each replica in turn.
    RoundRobin,
}

/// A worker listener besides the main one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerListener {
    /// Address to bind.
    pub host: String,
    /// Port to bind; `0` picks any free port.
    pub port: u16,
    /// Who may connect and what they may do.
    pub access: ListenerPolicy,
    /// Certificate and key: set, the listener serves `wss://` only.
    pub tls: Option<TlsFiles>,
}

/// Quotas: what one connection, or all of them together, may make the engine hold, so a
/// broken or hostile worker is refused with a clear error instead of exhausting the engine
/// for everyone. The defaults are far above what any test or benchmark here needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotas {
    /// Connections open at once on both ports together (main and channel sockets, plain HTTP
    /// on the worker port, the HTTP trigger server's connections); one more is answered 503
    /// (before the upgrade, on the worker port).
    pub max_connections: usize,
    /// Channels one connection has created that have not finished yet (live or still
    /// waiting for their ends); `engine::channels::create` past it fails with
    /// `quota_exceeded`.
    pub max_channels_per_connection: usize,
    /// Channels workers have created that have not finished yet, all connections together
    /// (a worker that reconnects starts a new per-connection count, while what it created
    /// before may wait for its ends for the channel TTL); past it `engine::channels::create`
    /// fails with `quota_exceeded`.
    pub max_channels: usize,
    /// Functions one connection may have registered at once.
    pub max_functions_per_connection: usize,
    /// Triggers one connection may have registered at once (and, counted apart, trigger types
    /// it may provide).
    pub max_triggers_per_connection: usize,
    /// Longest function id, trigger id, trigger type or HTTP route path, in bytes.
    pub max_id_bytes: usize,
    /// Largest `buffer_size` (frames of up to 64 KiB) a channel may ask for; larger requests
    /// are clamped to it.
    pub max_buffer_frames: usize,
    /// Bytes held in all channel buffers together; past it writers wait (their streams slow
    /// down, nothing is dropped) until readers take bytes out.
    pub max_channel_bytes: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_connections: 65_536,
            max_channels_per_connection: 16_384,
            max_channels: 262_144,
            max_functions_per_connection: 10_000,
            max_triggers_per_connection: 10_000,
            max_id_bytes: 1024,
            max_buffer_frames: usize::try_from(iii_protocol::limits::MAX_BUFFER_FRAMES)
                .unwrap_or(1024),
            max_channel_bytes: 1 << 30,
        }
    }
}

/// The default port of the HTTP trigger server.
pub const DEFAULT_HTTP_PORT: u16 = 3111;

/// The default port of the worker WebSocket.
pub const DEFAULT_PORT: u16 = 49134;

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_string(),
            port: DEFAULT_PORT,
            channel_ttl: Duration::from_secs(5 * 60),
            tombstone_ttl: Duration::from_secs(60),
            invocation_timeout: Duration::from_secs(5 * 60),
            max_main_message_bytes: iii_protocol::limits::MAX_MAIN_MESSAGE_BYTES,
            max_outbound_bytes: 32 * 1024 * 1024,
            slow_consumer_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(20),
            ping_timeout: Duration::from_secs(20),
            http_port: Some(DEFAULT_HTTP_PORT),
            http_host: None,
            http_timeout: Duration::from_secs(30),
            max_json_body_bytes: 16 * 1024 * 1024,
            http_functions_allow_private: false,
            http_functions_ca_files: Vec::new(),
            http_functions_secrets: Vec::new(),
            quotas: Quotas::default(),
            access: ListenerPolicy::default(),
            extra_listeners: Vec::new(),
            replica_choice: ReplicaChoice::default(),
            tls: None,
            http_tls: None,
            metrics: true,
            cluster: None,
        }
    }
}

impl EngineConfig {
    /// Defaults, but on `127.0.0.1` and any free ports: what tests and embedders want.
    pub fn ephemeral() -> Self {
        Self {
            port: 0,
            http_port: Some(0),
            ..Self::default()
        }
    }

    /// How often expired channels and tombstones are swept: once a second, or more often
    /// when the TTLs are short (tests), so expiry is never late by more than a quarter TTL.
    pub(crate) fn sweep_interval(&self) -> Duration {
        let quarter = self.channel_ttl.min(self.tombstone_ttl) / 4;
        quarter.clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_uses_any_port_on_loopback() {
        let config = EngineConfig::ephemeral();
        assert_eq!(config.port, 0);
        assert_eq!(config.http_port, Some(0));
        assert_eq!(config.host, "127.0.0.1");
        assert_eq!(EngineConfig::default().port, DEFAULT_PORT);
    }

    #[test]
    fn sweep_interval_follows_short_ttls() {
        let mut config = EngineConfig::ephemeral();
        assert_eq!(config.sweep_interval(), Duration::from_secs(1));
        config.channel_ttl = Duration::from_millis(200);
        assert_eq!(config.sweep_interval(), Duration::from_millis(50));
        config.channel_ttl = Duration::ZERO;
        assert_eq!(config.sweep_interval(), Duration::from_millis(10));
    }
}
