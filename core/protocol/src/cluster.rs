//! The names the engines of one cluster use between them over NATS (docs/CLUSTER.md):
//! buckets, subjects, headers, and the channel id that names its owner. A call between nodes
//! is the main socket's own `invokefunction` message, and its answer an `invocationresult`.

/// The bucket of node entries (one per node, renewed every heartbeat).
pub const NODES_BUCKET: &str = "nodes";
/// The bucket of function registrations (`{node}.{base64url(function id)}`).
pub const FUNCTIONS_BUCKET: &str = "functions";
/// The bucket of HTTP routes (`{node}.{base64url(trigger id)}`).
pub const ROUTES_BUCKET: &str = "routes";

/// NATS header of a call between nodes: how long the calling node still waits, in ms.
pub const TIMEOUT_HEADER: &str = "Iii-Timeout-Ms";

/// Between the owning node and the channel's own UUID in a cluster channel id
/// (`{node}.{uuid}`): unreserved in URLs, and never part of a node id.
pub const CHANNEL_NODE_SEPARATOR: char = '.';

/// The name of cluster `cluster`'s bucket `what`.
pub fn bucket(cluster: &str, what: &str) -> String {
    format!("{cluster}_{what}")
}

/// The subject node `node` of cluster `cluster` takes calls on.
pub fn call_subject(cluster: &str, node: &str) -> String {
    format!("{cluster}.node.{node}.call")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_built_from_the_cluster_and_node() {
        assert_eq!(bucket("iii", NODES_BUCKET), "iii_nodes");
        assert_eq!(call_subject("iii", "node-a"), "iii.node.node-a.call");
    }
}
