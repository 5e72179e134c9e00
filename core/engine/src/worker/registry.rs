//! The open worker connections and what each said about itself through
//! `engine::workers::register`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::util::{lock, shrink_map};
use crate::worker::backlog::Backlog;

/// Identifies one main-socket connection for the engine's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ConnId(pub(crate) u64);

/// A connected worker, as reported by [`crate::Engine::workers`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerInfo {
    /// The id the engine gave the connection (`workerregistered.worker_id`).
    pub worker_id: String,
    /// The worker's runtime, e.g. `node` or `python`.
    pub runtime: Option<String>,
    /// The worker's SDK version.
    pub version: Option<String>,
    /// The worker's name.
    pub name: Option<String>,
    /// The worker's operating system.
    pub os: Option<String>,
    /// The worker's process id.
    pub pid: Option<u64>,
    /// The worker's description of itself.
    pub description: Option<String>,
    /// When it connected, in milliseconds since the Unix epoch.
    pub connected_at_ms: u64,
}

impl WorkerInfo {
    /// Fills in the self-description a worker sent; unknown or mistyped fields are ignored.
    fn describe(&mut self, data: &Value) {
        let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_string);
        self.runtime = text("runtime").or(self.runtime.take());
        self.version = text("version").or(self.version.take());
        self.name = text("name").or(self.name.take());
        self.os = text("os").or(self.os.take());
        self.description = text("description").or(self.description.take());
        self.pid = data.get("pid").and_then(Value::as_u64).or(self.pid);
    }
}

/// Where a connection is attached, and its outbound queue (for `/status` and the metrics).
#[derive(Clone)]
pub(crate) struct Attachment {
    /// The listener it connected to (its local address).
    pub(crate) listener: Arc<str>,
    /// The worker's address.
    pub(crate) address: SocketAddr,
    /// Its outbound queue, with its calls in flight.
    pub(crate) backlog: Arc<Backlog>,
}

/// Where a worker socket came from.
pub(crate) struct Peer {
    /// The listener it connected to (its local address).
    pub(crate) listener: Arc<str>,
    /// The worker's address.
    pub(crate) address: SocketAddr,
}

/// One open connection.
#[derive(Clone)]
pub(crate) struct Connected {
    /// What the worker said about itself.
    pub(crate) info: WorkerInfo,
    /// Where it is attached.
    pub(crate) attachment: Attachment,
}

/// The connection registry.
#[derive(Default)]
pub(crate) struct ConnectionRegistry {
    next_id: AtomicU64,
    map: Mutex<HashMap<ConnId, Connected>>,
}

impl ConnectionRegistry {
    /// A fresh connection id.
    pub(crate) fn next_id(&self) -> ConnId {
        ConnId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Records a new connection.
    pub(crate) fn insert(&self, conn: ConnId, worker_id: String, attachment: Attachment) {
        let connected_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        let info = WorkerInfo {
            worker_id,
            connected_at_ms,
            ..WorkerInfo::default()
        };
        lock(&self.map).insert(conn, Connected { info, attachment });
    }

    /// Records what a worker said about itself.
    pub(crate) fn describe(&self, conn: ConnId, data: &Value) {
        if let Some(connected) = lock(&self.map).get_mut(&conn) {
            connected.info.describe(data);
        }
    }

    /// Forgets a connection.
    pub(crate) fn remove(&self, conn: ConnId) {
        let mut map = lock(&self.map);
        map.remove(&conn);
        shrink_map(&mut map);
    }

    /// The connected workers.
    pub(crate) fn workers(&self) -> Vec<WorkerInfo> {
        (lock(&self.map).values())
            .map(|connected| connected.info.clone())
            .collect()
    }

    /// The connected workers by connection.
    pub(crate) fn by_connection(&self) -> HashMap<ConnId, WorkerInfo> {
        (lock(&self.map).iter())
            .map(|(conn, connected)| (*conn, connected.info.clone()))
            .collect()
    }

    /// The open connections, with where each is attached.
    pub(crate) fn connected(&self) -> Vec<(ConnId, Connected)> {
        (lock(&self.map).iter())
            .map(|(conn, connected)| (*conn, connected.clone()))
            .collect()
    }

    /// Open connections.
    pub(crate) fn len(&self) -> usize {
        lock(&self.map).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_descriptions_and_ignores_bad_fields() {
        let registry = ConnectionRegistry::default();
        let conn = registry.next_id();
        let attachment = Attachment {
            listener: "127.0.0.1:1".into(),
            address: SocketAddr::from(([127, 0, 0, 1], 2)),
            backlog: Arc::new(Backlog::new(1024, 1024, std::time::Duration::from_secs(1))),
        };
        registry.insert(conn, "w".into(), attachment);
        registry.describe(conn, &json!({"runtime": "node", "pid": 42, "name": 7}));
        registry.describe(ConnId(999), &json!({"runtime": "x"}));
        let workers = registry.workers();
        assert_eq!(workers.len(), 1);
        let info = workers.first().cloned().unwrap_or_default();
        assert_eq!(info.runtime.as_deref(), Some("node"));
        assert_eq!(info.pid, Some(42));
        assert_eq!(info.name, None);
        registry.remove(conn);
        assert_eq!(registry.len(), 0);
    }
}
