//! The command-line flags of cluster mode (docs/CLUSTER.md), apart from the engine's other
//! flags: `--cluster nats://…` and what goes with it.

use std::path::PathBuf;
use std::time::Duration;

use iii_engine::{ClusterConfig, NatsAuth, NatsTls};

/// Cluster mode: engines that share a NATS deployment serve each other's functions and
/// channels.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClusterArgs {
    /// Join a cluster through these NATS servers (comma-separated `nats://host:port` URLs).
    #[arg(
        long = "cluster",
        env = "III_CLUSTER",
        value_name = "NATS_URLS",
        value_delimiter = ','
    )]
    nats_urls: Vec<String>,
    /// This node's id in the cluster (letters, digits, `-`, `_`); by default the host name
    /// and the worker port.
    #[arg(long, env = "III_NODE_ID", requires = "nats_urls")]
    node_id: Option<String>,
    /// The URL other nodes reach this node's worker port on (`ws://host:port` or
    /// `wss://…`); by default the address it listens on.
    #[arg(long, env = "III_ADVERTISE", requires = "nats_urls")]
    advertise: Option<String>,
    /// Prefix of the cluster's NATS subjects and buckets (several clusters can share NATS).
    #[arg(long, env = "III_CLUSTER_NAME", default_value = "iii")]
    cluster_name: String,
    /// NATS credentials file (`.creds`: JWT and nkey seed).
    #[arg(long, env = "III_NATS_CREDS", value_name = "FILE")]
    nats_creds: Option<PathBuf>,
    /// NATS nkey seed (prefer the environment variable).
    #[arg(long, env = "III_NATS_NKEY", hide_env_values = true)]
    nats_nkey: Option<String>,
    /// NATS token (prefer the environment variable).
    #[arg(long, env = "III_NATS_TOKEN", hide_env_values = true)]
    nats_token: Option<String>,
    /// NATS user, with --nats-password.
    #[arg(long, env = "III_NATS_USER", requires = "nats_password")]
    nats_user: Option<String>,
    /// NATS password (prefer the environment variable).
    #[arg(
        long,
        env = "III_NATS_PASSWORD",
        hide_env_values = true,
        requires = "nats_user"
    )]
    nats_password: Option<String>,
    /// Require TLS towards NATS.
    #[arg(long, env = "III_NATS_TLS", value_parser = clap::builder::BoolishValueParser::new())]
    nats_tls: bool,
    /// CA certificate (PEM) NATS's certificate is checked against.
    #[arg(long, env = "III_NATS_CA", value_name = "FILE")]
    nats_ca: Option<PathBuf>,
    /// Client certificate (PEM) for NATS, with --nats-key.
    #[arg(
        long,
        env = "III_NATS_CERT",
        value_name = "FILE",
        requires = "nats_key"
    )]
    nats_cert: Option<PathBuf>,
    /// Client key (PEM) for NATS.
    #[arg(
        long,
        env = "III_NATS_KEY",
        value_name = "FILE",
        requires = "nats_cert"
    )]
    nats_key: Option<PathBuf>,
    /// CA certificate (PEM) trusted for peers' `wss://` advertise URLs (repeatable).
    #[arg(long, env = "III_PEER_CA", value_name = "FILE", value_delimiter = ',')]
    peer_ca: Vec<PathBuf>,
    /// Milliseconds without a renewal after which a peer is taken for dead (its pending
    /// calls fail with `invocation_stopped`); nodes renew every third of it.
    #[arg(long, env = "III_NODE_TIMEOUT_MS", default_value_t = 3000,
          value_parser = clap::value_parser!(u64).range(300..))]
    node_timeout_ms: u64,
}

impl ClusterArgs {
    /// The cluster settings, when `--cluster` was given. `port` is the worker port, for the
    /// default node id.
    pub(crate) fn config(&self, port: u16) -> Option<ClusterConfig> {
        if self.nats_urls.is_empty() {
            return None;
        }
        let node_id = self
            .node_id
            .clone()
            .unwrap_or_else(|| default_node_id(port));
        let timeout = Duration::from_millis(self.node_timeout_ms);
        Some(ClusterConfig {
            nats_urls: self.nats_urls.clone(),
            node_id,
            advertise: self.advertise.clone().unwrap_or_default(),
            name: self.cluster_name.clone(),
            auth: NatsAuth {
                credentials_file: self.nats_creds.clone(),
                nkey_seed: self.nats_nkey.clone(),
                token: self.nats_token.clone(),
                user: self.nats_user.clone(),
                password: self.nats_password.clone(),
            },
            tls: NatsTls {
                required: self.nats_tls,
                ca_file: self.nats_ca.clone(),
                client_cert: self.nats_cert.clone().zip(self.nats_key.clone()),
            },
            peer_ca_files: self.peer_ca.clone(),
            heartbeat: timeout / 3,
            node_timeout: timeout,
        })
    }
}

/// The host name (letters, digits and `-` kept) and the worker port.
pub(crate) fn default_node_id(port: u16) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = (host.trim().chars())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let host = if host.is_empty() {
        "node".to_string()
    } else {
        host
    };
    format!("{host}-{port}")
}
