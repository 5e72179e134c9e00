//! Unit tests of the membership view: joins, renewals, restarts under one id, replays, ageing out.

use super::*;

fn members() -> Members {
    let config = ClusterConfig::new("nats://127.0.0.1:4222", "me", "ws://127.0.0.1:1");
    Members::new(&config, std::time::Instant::now())
}

fn entry(node: &str, incarnation: &str, created: async_nats::datetime::DateTime) -> Entry {
    let value = NodeEntry {
        advertise: format!("ws://{node}:1"),
        version: "0".into(),
        uptime_secs: 1,
        incarnation: incarnation.into(),
    };
    Entry {
        bucket: "iii_nodes".into(),
        key: node.into(),
        value: serde_json::to_vec(&value).expect("json").into(),
        revision: 1,
        delta: 0,
        created,
        operation: Operation::Put,
        seen_current: true,
    }
}

#[tokio::test]
async fn peers_join_renew_restart_and_age_out() {
    let members = members();
    let now = async_nats::datetime::now();
    assert_eq!(
        members.seen(&entry("me", "x", now)),
        None,
        "this node is not its own peer"
    );
    assert_eq!(
        members.seen(&entry("b", "one", now)),
        Some(("b".into(), false))
    );
    assert_eq!(
        members.seen(&entry("b", "one", now)),
        None,
        "a renewal is no news"
    );
    assert_eq!(
        members.seen(&entry("b", "two", now)),
        Some(("b".into(), true)),
        "a new process under the same id replaces the old one"
    );
    assert_eq!(
        members.advertise_of("b").map(|(_, url)| url),
        Some("ws://b:1".into())
    );
    let stale = now - std::time::Duration::from_secs(10);
    assert_eq!(
        members.seen(&entry("c", "one", stale)),
        None,
        "an old value replayed"
    );
    assert!(!members.is_alive("c"));
    assert!(members.sweep(Instant::now()).is_empty());
    let later = Instant::now() + Duration::from_secs(4);
    assert_eq!(members.sweep(later), vec![Arc::<str>::from("b")]);
    assert_eq!(members.count(), 0);
}

#[tokio::test]
async fn waiting_on_a_peer_ends_when_it_is_replaced() {
    let members = Arc::new(members());
    let now = async_nats::datetime::now();
    members.seen(&entry("b", "one", now));
    let waiting = tokio::spawn({
        let members = members.clone();
        async move { members.until_lost("b").await }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    members.seen(&entry("b", "two", now));
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("ended")
        .expect("joined");
}
