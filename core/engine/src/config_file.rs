//! `iii --config FILE`: the engine's settings from a YAML file in the published iii engine's
//! shape, so its users' configurations carry over:
//!
//! ```yaml
//! workers:
//!   - name: iii-worker-manager        # the first one is the main worker listener
//!     config:
//!       host: 127.0.0.1
//!       port: 49134
//!       rbac:
//!         auth_function_id: auth::check
//!         expose_functions: [match("api::*")]
//!   - name: iii-worker-manager        # each further one is one more listener
//!     config: { port: 49135 }
//!   - name: iii-http
//!     config: { host: 127.0.0.1, port: 3111 }
//! ```
//!
//! `${VAR}` and `${VAR:default}` are replaced from the environment first. Entries the engine
//! does not serve are reported by name and ignored; an entry that is invalid stops the start
//! with a message naming its line. See docs/ACCESS.md.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::access::{ListenerPolicy, Rbac};
use crate::tls::TlsFiles;

/// The name of a worker listener entry.
pub const WORKER_MANAGER: &str = "iii-worker-manager";
/// The names of the HTTP trigger server's entry (the published engine's old and new names).
pub const HTTP_SERVER: [&str; 2] = ["iii-http", "http"];

/// One worker listener as the file describes it; what the file leaves out is the engine's
/// default (or the command line's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerEntry {
    /// `host`, if set.
    pub host: Option<String>,
    /// `port`, if set.
    pub port: Option<u16>,
    /// `middleware_function_id`, `rbac`, `allowed_origins` and `allowed_hosts`.
    pub access: ListenerPolicy,
    /// `tls`, if set.
    pub tls: Option<TlsFiles>,
}

/// The HTTP trigger server as the file describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpEntry {
    /// `host`, if set.
    pub host: Option<String>,
    /// `port`, if set.
    pub port: Option<u16>,
    /// `default_timeout` in milliseconds, if set.
    pub default_timeout_ms: Option<u64>,
    /// `tls`, if set.
    pub tls: Option<TlsFiles>,
}

/// What a configuration file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileConfig {
    /// The worker listeners, main first.
    pub listeners: Vec<ListenerEntry>,
    /// The HTTP trigger server, if the file has an entry for it.
    pub http: Option<HttpEntry>,
    /// What the file holds that the engine does not serve (each named), to report.
    pub ignored: Vec<String>,
    /// The `cluster:` section (docs/CLUSTER.md), if any; a node id it leaves out is the
    /// command line's default.
    pub cluster: Option<crate::ClusterConfig>,
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    workers: Vec<Entry>,
    #[serde(default)]
    modules: Vec<Entry>,
    cluster: Option<crate::cluster::config::ClusterSection>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    #[serde(default)]
    config: serde_yaml_ng::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkerManagerConfig {
    host: Option<String>,
    port: Option<u16>,
    middleware_function_id: Option<String>,
    rbac: Option<Rbac>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    /// Accepted for compatibility; the engine's handshake timeout is fixed.
    #[allow(dead_code)]
    handshake_timeout_ms: Option<u64>,
    tls: Option<TlsFiles>,
}

#[derive(Deserialize)]
struct HttpConfig {
    host: Option<String>,
    port: Option<u16>,
    default_timeout: Option<u64>,
    tls: Option<TlsFiles>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_yaml_ng::Value>,
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    parse(&text, |name| std::env::var(name).ok())
        .map_err(|error| format!("{}: {error}", path.display()))
}

/// Parses a configuration's text, taking `${VAR}` values from `env`.
pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<FileConfig, String> {
    let text = expand(text, env)?;
    let document: Document = serde_yaml_ng::from_str(&text).map_err(|error| error.to_string())?;
    let mut found = FileConfig {
        cluster: (document.cluster).map(|section| section.into_config(String::new)),
        ..FileConfig::default()
    };
    for key in document.other.keys() {
        found.ignored.push(format!("top-level key `{key}`"));
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for entry in document.workers.into_iter().chain(document.modules) {
        // The published engine spells a second entry of one kind `name#suffix`.
        let kind = entry.name.split('#').next().unwrap_or_default().to_string();
        let nth = seen.entry(entry.name.clone()).or_default();
        let line = entry_line(&text, &entry.name, *nth);
        *nth += 1;
        let at = |error: serde_yaml_ng::Error| match line {
            Some(line) => format!("line {line}: entry `{}`: {error}", entry.name),
            None => format!("entry `{}`: {error}", entry.name),
        };
        let config = match entry.config {
            serde_yaml_ng::Value::Null => serde_yaml_ng::Value::Mapping(Default::default()),
            config => config,
        };
        if kind == WORKER_MANAGER {
            let manager: WorkerManagerConfig = serde_yaml_ng::from_value(config).map_err(at)?;
            found.listeners.push(ListenerEntry {
                host: manager.host,
                port: manager.port,
                access: ListenerPolicy {
                    middleware_function_id: manager.middleware_function_id,
                    rbac: manager.rbac,
                    allowed_origins: manager.allowed_origins,
                    allowed_hosts: manager.allowed_hosts,
                },
                tls: manager.tls,
            });
        } else if HTTP_SERVER.contains(&kind.as_str()) {
            if found.http.is_some() {
                let line = line.map(|l| format!("line {l}: ")).unwrap_or_default();
                return Err(format!("{line}a second HTTP server entry `{}`", entry.name));
            }
            let http: HttpConfig = serde_yaml_ng::from_value(config).map_err(at)?;
            for key in http.other.keys() {
                found
                    .ignored
                    .push(format!("`{key}` of entry `{}`", entry.name));
            }
            found.http = Some(HttpEntry {
                host: http.host,
                port: http.port,
                default_timeout_ms: http.default_timeout,
                tls: http.tls,
            });
        } else {
            found.ignored.push(format!("entry `{}`", entry.name));
        }
    }
    Ok(found)
}

/// The line (from 1) of the `nth` list item named `name`, for messages.
fn entry_line(text: &str, name: &str, nth: usize) -> Option<usize> {
    let names = |line: &str| {
        let item = line.trim_start().strip_prefix('-')?.trim_start();
        let value = item.strip_prefix("name:")?.trim();
        Some(value.trim_matches(['"', '\'']) == name)
    };
    (text.lines().enumerate())
        .filter(|(_, line)| names(line) == Some(true))
        .nth(nth)
        .map(|(at, _)| at + 1)
}

/// Replaces `${VAR}` and `${VAR:default}`; an unset variable without a default is an error
/// naming its line.
fn expand(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            let (before, after) = rest.split_at(start);
            out.push_str(before);
            let Some(end) = after.find('}') else {
                out.push_str(after);
                rest = "";
                break;
            };
            let inner = after.get(2..end).unwrap_or_default();
            let (name, default) = match inner.split_once(':') {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            match (env(name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!(
                        "line {}: environment variable {name} is not set (write ${{{name}:default}} for a default)",
                        number + 1
                    ));
                }
            }
            rest = after.get(end + 1..).unwrap_or_default();
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_section_becomes_the_cluster_settings() {
        let text = "cluster:\n  nats: [nats://n1:4222, nats://n2:4222]\n  node_id: a\n  advertise: ws://10.0.0.5:49134\n  node_timeout_ms: 6000\n  credentials:\n    user: iii\n    password: ${PW}\n  tls:\n    ca: /etc/nats/ca.pem\n";
        let env = |name: &str| (name == "PW").then(|| "secret".to_string());
        let cluster = parse(text, env)
            .expect("parses")
            .cluster
            .expect("a cluster");
        assert_eq!(cluster.nats_urls, ["nats://n1:4222", "nats://n2:4222"]);
        assert_eq!(
            (cluster.node_id.as_str(), cluster.advertise.as_str()),
            ("a", "ws://10.0.0.5:49134")
        );
        assert_eq!(cluster.node_timeout, std::time::Duration::from_secs(6));
        assert_eq!(cluster.heartbeat, std::time::Duration::from_secs(2));
        assert_eq!(cluster.auth.password.as_deref(), Some("secret"));
        assert_eq!(
            cluster.tls.ca_file.as_deref(),
            Some(Path::new("/etc/nats/ca.pem"))
        );
        assert!(parse("cluster:\n  nats: nats://x:1\n  bogus: 1\n", |_| None).is_err());
    }

    const PUBLISHED: &str = r#"
workers:
  - name: iii-worker-manager
    config:
      port: ${MAIN_PORT:49134}
  - name: iii-stream
    config:
      port: 3112
  - name: iii-worker-manager
    config:
      host: 0.0.0.0
      port: 49135
      middleware_function_id: my-project::middleware-function
      rbac:
        auth_function_id: my-project::auth-function
        on_trigger_registration_function_id: my-project::on-trigger-reg
        on_trigger_type_registration_function_id: my-project::on-trigger-type-reg
        on_function_registration_function_id: my-project::on-function-reg
        expose_functions:
          - match("api::*")
          - match("*::public")
          - metadata:
              public: true
  - name: iii-http
    config:
      port: 3111
      host: 127.0.0.1
      cors: { allowed_origins: ["*"] }
"#;

    #[test]
    fn the_published_example_reads_as_two_listeners_and_an_http_server() {
        let found = parse(PUBLISHED, |name| {
            (name == "MAIN_PORT").then(|| "4000".into())
        })
        .expect("valid");
        assert_eq!(found.listeners.len(), 2);
        assert_eq!(found.listeners[0].port, Some(4000));
        let second = &found.listeners[1];
        assert_eq!(second.host.as_deref(), Some("0.0.0.0"));
        let rbac = second.access.rbac.as_ref().expect("rbac");
        assert_eq!(
            rbac.auth_function_id.as_deref(),
            Some("my-project::auth-function")
        );
        assert_eq!(rbac.expose_functions.len(), 3);
        assert_eq!(
            second.access.middleware_function_id.as_deref(),
            Some("my-project::middleware-function")
        );
        let http = found.http.expect("http entry");
        assert_eq!(
            (http.host.as_deref(), http.port),
            (Some("127.0.0.1"), Some(3111))
        );
        assert_eq!(
            found.ignored,
            ["entry `iii-stream`", "`cors` of entry `iii-http`"]
        );
    }

    #[test]
    fn invalid_entries_name_their_line() {
        let bad_filter = "workers:\n  - name: iii-worker-manager\n    config:\n      rbac:\n        expose_functions: [\"api::*\"]\n";
        let error = parse(bad_filter, |_| None).expect_err("a bare glob is invalid");
        assert!(
            error.starts_with("line 2: entry `iii-worker-manager`"),
            "{error}"
        );
        assert!(
            error.contains("match(\\\"pattern\\\")") || error.contains("match(\"pattern\")"),
            "{error}"
        );
        let unknown =
            "workers:\n  - name: x\n  - name: iii-worker-manager\n    config: { prot: 1 }\n";
        let error = parse(unknown, |_| None).expect_err("unknown field");
        assert!(
            error.starts_with("line 3:") && error.contains("prot"),
            "{error}"
        );
        let unset = "workers:\n  - name: iii-http\n    config: { port: ${NOPE} }\n";
        let error = parse(unset, |_| None).expect_err("unset variable");
        assert!(
            error.starts_with("line 3: environment variable NOPE"),
            "{error}"
        );
        let broken = "workers: [\n";
        assert!(
            parse(broken, |_| None)
                .expect_err("not YAML")
                .contains("line")
        );
    }
}
