//! Finding channels by id: the live ones, and tombstones of finished ones so a late connect
//! learns how the channel ended instead of getting a 404 (docs/PROTOCOL.md §4.2, §4.7).
//!
//! One periodic sweep expires channels past their TTL and forgets old tombstones; maps are
//! shrunk when they empty out so memory really returns after a burst of channels.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iii_protocol::{ChannelDirection, EndStatus, StreamChannelRef};
use tokio::time::Instant;
use uuid::Uuid;

use super::Channel;
use super::buffer::buffer;
use super::keys::AccessKey;
use super::stats::Traffic;
use crate::config::EngineConfig;
use crate::quota::{Slot, Slots};
use crate::stats::ByteCounters;
use crate::util::{deadline_after, lock, shrink_deque, shrink_map};

/// What a channel id refers to.
pub(crate) enum Lookup {
    /// A live channel.
    Live(Arc<Channel>),
    /// A channel that ended recently, with its final status.
    Tombstone(EndStatus),
    /// Nothing (never existed, or forgotten), or not for the key presented.
    Unknown,
}

/// What is kept of a finished channel: its final status, and its keys, so that only the
/// holder of an end's ref learns how it ended.
struct Tombstone {
    status: EndStatus,
    writer_key: AccessKey,
    reader_key: AccessKey,
}

/// A new channel and the refs of its two ends.
pub(crate) struct Created {
    /// The channel.
    pub(crate) channel: Arc<Channel>,
    /// The writer end's ref.
    pub(crate) writer: StreamChannelRef,
    /// The reader end's ref.
    pub(crate) reader: StreamChannelRef,
}

/// The end statuses channels are counted by (`iii_channels_ended_total{status}`).
pub(crate) const END_STATUSES: [&str; 7] = [
    "complete",
    "aborted",
    "writer_lost",
    "reader_closed",
    "expired",
    "going_away",
    "other",
];

/// The [`END_STATUSES`] index of `status`.
fn status_index(status: &EndStatus) -> usize {
    match status {
        EndStatus::Complete => 0,
        EndStatus::Aborted(_) => 1,
        EndStatus::WriterLost => 2,
        EndStatus::ReaderClosed => 3,
        EndStatus::Expired => 4,
        EndStatus::GoingAway => 5,
        EndStatus::EndAlreadyConnected | EndStatus::MessageTooBig | EndStatus::Other(..) => 6,
    }
}

/// Every channel's figures at one moment: what the metrics and `/status` show.
pub(crate) struct Census {
    /// Channels created since the engine started.
    pub(crate) created: u64,
    /// Channels ended, by [`END_STATUSES`] index.
    pub(crate) ended: [u64; END_STATUSES.len()],
    /// What every channel, live or retired, moved.
    pub(crate) moved: Traffic,
    /// The live channels.
    pub(crate) live: Vec<Arc<Channel>>,
}

/// Most tombstones kept; past it the oldest are forgotten first, so a flood of short
/// channels (HTTP requests) cannot grow memory without bound within one tombstone TTL.
const MAX_TOMBSTONES: usize = 1 << 17;

#[derive(Default)]
struct Inner {
    live: HashMap<Uuid, Arc<Channel>>,
    /// Channels created since the engine started.
    created: u64,
    /// Channels ended, by [`END_STATUSES`] index.
    ended: [u64; END_STATUSES.len()],
    /// What retired channels moved.
    retired: Traffic,
    tombstones: HashMap<Uuid, Tombstone>,
    /// Tombstones in the order they expire (the TTL is the same for all).
    tombstone_order: VecDeque<(Instant, Uuid)>,
}

/// All channels.
pub(crate) struct ChannelRegistry {
    inner: Mutex<Inner>,
    counters: Arc<ByteCounters>,
    /// Channels workers created that have not finished, for `--max-channels`.
    created_by_workers: Slots,
    channel_ttl: Duration,
    tombstone_ttl: Duration,
    /// This node's id in a cluster: channel ids are `{node}.{uuid}`, so any node can tell
    /// which one owns a channel.
    node: Option<String>,
}

impl ChannelRegistry {
    /// An empty registry using the TTLs of `config`.
    pub(crate) fn new(config: &EngineConfig, counters: Arc<ByteCounters>) -> Self {
        Self {
            inner: Mutex::default(),
            created_by_workers: Slots::default(),
            counters,
            channel_ttl: config.channel_ttl,
            tombstone_ttl: config.tombstone_ttl,
            node: (config.cluster.as_ref()).map(|cluster| cluster.node_id.clone()),
        }
    }

    /// The id this registry knows channel `channel_id` under, when this engine owns it: a
    /// plain UUID, or (in a cluster) one under this node's id.
    pub(crate) fn local_id(&self, channel_id: &str) -> Option<Uuid> {
        match crate::cluster::parse_channel_id(channel_id)? {
            (None, id) => Some(id),
            (Some(node), id) if self.node.as_deref() == Some(node) => Some(id),
            (Some(_), _) => None,
        }
    }

    /// The count of unfinished channels workers created, engine-wide (a slot of it goes to
    /// [`create`](Self::create) with each).
    pub(crate) fn created_by_workers(&self) -> &Slots {
        &self.created_by_workers
    }

    /// Creates a channel buffering `frames` frames that holds `slots` of quotas until it
    /// retires; returns the (writer, reader) refs.
    pub(crate) fn create(
        &self,
        frames: usize,
        slots: Vec<Slot>,
    ) -> (StreamChannelRef, StreamChannelRef) {
        let created = self.create_with_slots(frames, slots);
        (created.writer, created.reader)
    }

    /// A channel for ends the engine holds (HTTP request and response bodies), with the
    /// channel itself.
    pub(crate) fn create_channel(&self, frames: usize) -> Created {
        self.create_with_slots(frames, Vec::new())
    }

    fn create_with_slots(&self, frames: usize, slots: Vec<Slot>) -> Created {
        let keys = AccessKey::generate_pair();
        let id = Uuid::new_v4();
        let channel_id = match &self.node {
            Some(node) => format!("{node}{}{id}", crate::cluster::CHANNEL_NODE_SEPARATOR),
            None => id.to_string(),
        };
        let writer = StreamChannelRef {
            channel_id: channel_id.clone(),
            access_key: keys.0.to_hex(),
            direction: ChannelDirection::Write,
        };
        let reader = StreamChannelRef {
            channel_id,
            access_key: keys.1.to_hex(),
            direction: ChannelDirection::Read,
        };
        let deadline = deadline_after(self.channel_ttl);
        let channel = Arc::new(Channel::new(
            id,
            keys,
            buffer(frames, self.counters.clone()),
            deadline,
            slots,
        ));
        let mut inner = lock(&self.inner);
        inner.live.insert(id, channel.clone());
        inner.created += 1;
        drop(inner);
        Created {
            channel,
            writer,
            reader,
        }
    }

    /// What `id` refers to for the holder of `key` to its `direction` end: a wrong key finds
    /// nothing, live or finished.
    pub(crate) fn lookup(&self, id: &Uuid, direction: ChannelDirection, key: &str) -> Lookup {
        let inner = lock(&self.inner);
        if let Some(channel) = inner.live.get(id) {
            return if channel.key_matches(direction, key) {
                Lookup::Live(channel.clone())
            } else {
                Lookup::Unknown
            };
        }
        let Some(tombstone) = inner.tombstones.get(id) else {
            return Lookup::Unknown;
        };
        let matches = match direction {
            ChannelDirection::Write => tombstone.writer_key.matches(key),
            ChannelDirection::Read => tombstone.reader_key.matches(key),
        };
        if matches {
            Lookup::Tombstone(tombstone.status.clone())
        } else {
            Lookup::Unknown
        }
    }

    /// Removes a finished channel, leaving a tombstone with its final status.
    pub(crate) fn retire(&self, channel: &Channel, status: EndStatus) {
        channel.release_slots();
        let moved = channel.stats.traffic();
        let logged = tracing::enabled!(tracing::Level::DEBUG).then(|| status.clone());
        let mut inner = lock(&self.inner);
        let removed = inner.live.remove(&channel.id).is_some();
        if removed {
            inner.retired.add(&moved);
            if let Some(count) = inner.ended.get_mut(status_index(&status)) {
                *count += 1;
            }
            while inner.tombstone_order.len() >= MAX_TOMBSTONES {
                if let Some((_, oldest)) = inner.tombstone_order.pop_front() {
                    inner.tombstones.remove(&oldest);
                }
            }
            let tombstone = Tombstone {
                status,
                writer_key: channel.writer_key.clone(),
                reader_key: channel.reader_key.clone(),
            };
            inner.tombstones.insert(channel.id, tombstone);
            let expires = deadline_after(self.tombstone_ttl);
            inner.tombstone_order.push_back((expires, channel.id));
        }
        drop(inner);
        if let (true, Some(status)) = (removed, logged) {
            tracing::debug!(
                channel_id = %channel.id,
                ?status,
                written_bytes = moved.written_bytes,
                read_bytes = moved.read_bytes,
                blocked_secs = moved.blocked_secs(),
                age_secs = channel.stats.created.elapsed().as_secs_f64(),
                "channel ended"
            );
        }
    }

    /// Every channel's figures now. The live channels are copied under the lock, with the
    /// totals of those already retired; their counters are read after it is let go. A channel
    /// that retires meanwhile is in the copy, not in the copied totals, so a sum never counts
    /// one twice or misses one.
    pub(crate) fn census(&self) -> Census {
        let inner = lock(&self.inner);
        let (created, ended, mut moved) = (inner.created, inner.ended, inner.retired);
        let live: Vec<Arc<Channel>> = inner.live.values().cloned().collect();
        drop(inner);
        for channel in &live {
            moved.add(&channel.stats.traffic());
        }
        Census {
            created,
            ended,
            moved,
            live,
        }
    }

    /// Forgets tombstones past their TTL and returns the live channels past theirs, for the
    /// caller to expire.
    pub(crate) fn sweep(&self, now: Instant) -> Vec<Arc<Channel>> {
        let mut inner = lock(&self.inner);
        while let Some(&(expires, id)) = inner.tombstone_order.front() {
            if expires > now {
                break;
            }
            inner.tombstone_order.pop_front();
            inner.tombstones.remove(&id);
        }
        let expired = inner
            .live
            .values()
            .filter(|channel| channel.is_expired(now))
            .cloned()
            .collect();
        shrink_map(&mut inner.live);
        shrink_map(&mut inner.tombstones);
        shrink_deque(&mut inner.tombstone_order);
        expired
    }

    /// Live channels that have started (an end connected or finished): streams in flight.
    pub(crate) fn started(&self) -> usize {
        let inner = lock(&self.inner);
        inner
            .live
            .values()
            .filter(|channel| channel.has_started())
            .count()
    }

    /// Live channels.
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).live.len()
    }

    /// Tombstones held.
    pub(crate) fn tombstones(&self) -> usize {
        lock(&self.inner).tombstones.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(channel_ttl: Duration, tombstone_ttl: Duration) -> ChannelRegistry {
        let config = EngineConfig {
            channel_ttl,
            tombstone_ttl,
            ..EngineConfig::ephemeral()
        };
        ChannelRegistry::new(&config, Arc::default())
    }

    #[tokio::test]
    async fn refs_carry_distinct_keys_that_open_only_their_end() {
        let registry = registry(Duration::from_secs(60), Duration::from_secs(60));
        let (writer, reader) = registry.create(8, Vec::new());
        assert_eq!(writer.channel_id, reader.channel_id);
        assert_ne!(writer.access_key, reader.access_key);
        let id = Uuid::parse_str(&writer.channel_id).expect("uuid");
        let (write, read) = (ChannelDirection::Write, ChannelDirection::Read);
        assert!(matches!(
            registry.lookup(&id, write, &writer.access_key),
            Lookup::Live(_)
        ));
        assert!(matches!(
            registry.lookup(&id, read, &reader.access_key),
            Lookup::Live(_)
        ));
        assert!(matches!(
            registry.lookup(&id, read, &writer.access_key),
            Lookup::Unknown
        ));
        assert!(matches!(
            registry.lookup(&id, write, &reader.access_key),
            Lookup::Unknown
        ));
    }

    #[tokio::test]
    async fn expiry_and_tombstones() {
        let registry = registry(Duration::ZERO, Duration::ZERO);
        let (writer, reader) = registry.create(8, Vec::new());
        let id = Uuid::parse_str(&writer.channel_id).expect("uuid");
        let (write, read) = (ChannelDirection::Write, ChannelDirection::Read);
        let expired = registry.sweep(Instant::now());
        assert_eq!(expired.len(), 1);
        for channel in expired {
            let status = channel.expire().expect("nothing connected");
            registry.retire(&channel, status);
        }
        assert_eq!(registry.len(), 0);
        assert!(matches!(
            registry.lookup(&id, read, &reader.access_key),
            Lookup::Tombstone(EndStatus::Expired)
        ));
        assert!(matches!(
            registry.lookup(&id, write, &writer.access_key),
            Lookup::Tombstone(EndStatus::Expired)
        ));
        // How a channel ended is only for the holders of its refs.
        assert!(matches!(
            registry.lookup(&id, read, &writer.access_key),
            Lookup::Unknown
        ));
        assert!(matches!(
            registry.lookup(&id, write, &"0".repeat(64)),
            Lookup::Unknown
        ));
        registry.sweep(Instant::now());
        assert_eq!(registry.tombstones(), 0);
        assert!(matches!(
            registry.lookup(&id, read, &reader.access_key),
            Lookup::Unknown
        ));
    }
}
