//! How an engine joins a cluster: the NATS servers and how to authenticate to them, this
//! node's id, and the URL its peers reach its worker port on (docs/CLUSTER.md).

use std::path::PathBuf;
use std::time::Duration;

/// Shortest node timeout: renewals must be able to arrive in time on a loaded machine.
pub const MIN_NODE_TIMEOUT: Duration = Duration::from_millis(300);

/// Longest node id, in bytes (it is part of every channel id the node creates).
pub const MAX_NODE_ID_BYTES: usize = 64;

/// The settings of cluster mode (`iii --cluster nats://…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// NATS servers to connect to, e.g. `nats://127.0.0.1:4222` (any one is enough; the
    /// client learns the rest of a NATS cluster from it).
    pub nats_urls: Vec<String>,
    /// This node's id: letters, digits, `-` and `_`, unique in the cluster. A restarted node
    /// may take its old id back.
    pub node_id: String,
    /// The URL other nodes reach this node's worker port on (`ws://host:port` or
    /// `wss://host:port`); channel ends owned by this node are relayed to it.
    pub advertise: String,
    /// Prefix of the NATS subjects and key-value buckets, so several clusters can share one
    /// NATS deployment. Letters, digits, `-` and `_`.
    pub name: String,
    /// How the engine authenticates to NATS.
    pub auth: NatsAuth,
    /// TLS towards NATS.
    pub tls: NatsTls,
    /// Extra CA certificates (PEM) trusted for peers' `wss://` advertise URLs, beside the
    /// Mozilla roots.
    pub peer_ca_files: Vec<PathBuf>,
    /// How often this node renews its membership entry.
    pub heartbeat: Duration,
    /// A peer whose entry has not been renewed for this long is taken for dead: calls pending
    /// on it fail with `invocation_stopped` and relays to it are cut.
    pub node_timeout: Duration,
}

/// Credentials for NATS (at most one kind is used: a credentials file, an nkey seed, a
/// token, or a user and password).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsAuth {
    /// A `.creds` file (JWT and nkey seed).
    pub credentials_file: Option<PathBuf>,
    /// An nkey seed.
    pub nkey_seed: Option<String>,
    /// A token.
    pub token: Option<String>,
    /// A user name, with `password`.
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<String>,
}

/// TLS settings for the NATS connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsTls {
    /// Require TLS even if the server does not ask for it.
    pub required: bool,
    /// CA certificate (PEM) the NATS server's certificate is checked against.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for servers that verify clients.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl ClusterConfig {
    /// A cluster named `iii` on `nats_url`, with node id `node_id`, reached at `advertise`.
    pub fn new(nats_url: &str, node_id: &str, advertise: &str) -> Self {
        Self {
            nats_urls: vec![nats_url.to_string()],
            node_id: node_id.to_string(),
            advertise: advertise.to_string(),
            name: "iii".to_string(),
            auth: NatsAuth::default(),
            tls: NatsTls::default(),
            peer_ca_files: Vec::new(),
            heartbeat: Duration::from_secs(1),
            node_timeout: Duration::from_secs(3),
        }
    }

    /// Checks the settings, naming the first that cannot work.
    pub fn check(&self) -> Result<(), String> {
        if self.nats_urls.is_empty() {
            return Err("the cluster needs at least one NATS URL".into());
        }
        check_name("node id", &self.node_id)?;
        check_name("cluster name", &self.name)?;
        if !(self.advertise.starts_with("ws://") || self.advertise.starts_with("wss://")) {
            return Err(format!(
                "the advertise URL must be ws:// or wss://, not {:?}",
                self.advertise
            ));
        }
        if self.node_timeout < MIN_NODE_TIMEOUT || self.heartbeat < MIN_NODE_TIMEOUT / 3 {
            return Err(format!(
                "the node timeout must be at least {MIN_NODE_TIMEOUT:?}"
            ));
        }
        if self.node_timeout < self.heartbeat * 2 {
            return Err("the node timeout must be at least two heartbeats".into());
        }
        Ok(())
    }
}

/// The `cluster:` section of a configuration file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterSection {
    /// One NATS URL or a list.
    nats: OneOrMany,
    node_id: Option<String>,
    advertise: Option<String>,
    name: Option<String>,
    node_timeout_ms: Option<u64>,
    #[serde(default)]
    credentials: CredentialsSection,
    #[serde(default)]
    tls: TlsSection,
    #[serde(default)]
    peer_ca: Vec<PathBuf>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsSection {
    file: Option<PathBuf>,
    nkey: Option<String>,
    token: Option<String>,
    user: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    #[serde(default)]
    required: bool,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl ClusterSection {
    /// The settings the section describes; `default_node_id` when it names none.
    pub(crate) fn into_config(self, default_node_id: impl FnOnce() -> String) -> ClusterConfig {
        let nats_urls = match self.nats {
            OneOrMany::One(url) => vec![url],
            OneOrMany::Many(urls) => urls,
        };
        let node_id = self.node_id.unwrap_or_else(default_node_id);
        let mut config = ClusterConfig::new("", &node_id, &self.advertise.unwrap_or_default());
        config.nats_urls = nats_urls;
        if let Some(name) = self.name {
            config.name = name;
        }
        if let Some(ms) = self.node_timeout_ms {
            config.node_timeout = Duration::from_millis(ms);
            config.heartbeat = config.node_timeout / 3;
        }
        let credentials = self.credentials;
        config.auth = NatsAuth {
            credentials_file: credentials.file,
            nkey_seed: credentials.nkey,
            token: credentials.token,
            user: credentials.user,
            password: credentials.password,
        };
        config.tls = NatsTls {
            required: self.tls.required,
            ca_file: self.tls.ca,
            client_cert: self.tls.cert.zip(self.tls.key),
        };
        config.peer_ca_files = self.peer_ca;
        config
    }
}

/// A node id or cluster name: 1 to 64 letters, digits, `-` or `_`.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NODE_ID_BYTES
        && (name.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the {what} must be 1 to {MAX_NODE_ID_BYTES} letters, digits, '-' or '_', not {name:?}"
        ))
    }
}

/// True when `name` can be a node id.
pub(crate) fn is_node_id(name: &str) -> bool {
    check_name("node id", name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let good = ClusterConfig::new("nats://127.0.0.1:4222", "node-a", "ws://127.0.0.1:1");
        assert_eq!(good.check(), Ok(()));
        let mut bad = good.clone();
        bad.node_id = "a.b".into();
        assert!(bad.check().is_err());
        bad = good.clone();
        bad.advertise = "http://x".into();
        assert!(bad.check().is_err());
        bad = good.clone();
        bad.nats_urls.clear();
        assert!(bad.check().is_err());
        bad = good.clone();
        bad.node_timeout = Duration::ZERO;
        bad.heartbeat = Duration::ZERO;
        assert!(bad.check().is_err(), "a zero timeout would spin the timers");
        assert!(!is_node_id(&"x".repeat(65)));
        assert!(is_node_id("A_1-b"));
    }
}
