//! What a scrape of `GET /metrics` and a look at `GET /status` read: the counted events of
//! [`super::Metrics`], plus what the registries hold right now, gathered into one fresh
//! `prometheus-client` registry per scrape (so no collector holds the engine state, and
//! nothing is counted twice).

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use serde_json::{Value, json};

use super::{Labels, Metrics};
use crate::channels::registry::END_STATUSES;
use crate::state::EngineState;

/// The OpenMetrics text of `metrics` and of what `shared` holds now (`None` if it could not
/// be encoded).
pub(crate) fn render(metrics: &Metrics, shared: &EngineState) -> Option<String> {
    let mut registry = Registry::with_prefix("iii");
    registry.register(
        "build",
        "The engine's version",
        Info::new([("version", env!("CARGO_PKG_VERSION"))]),
    );
    registry.register_with_unit(
        "uptime",
        "Time since the engine started",
        Unit::Seconds,
        ConstGauge::new(shared.started.elapsed().as_secs_f64()),
    );
    add_workers(&mut registry, shared);
    add_invocations(&mut registry, metrics, shared);
    add_channels(&mut registry, shared);
    if let Some(cluster) = shared.cluster.get() {
        cluster.register_metrics(&mut registry);
    }
    registry.register(
        "http_requests",
        "HTTP trigger requests answered, by route pattern, method and status",
        metrics.http_requests.family.clone(),
    );
    registry.register_with_unit(
        "http_request_duration",
        "Time from an HTTP trigger request to its response head",
        Unit::Seconds,
        metrics.http_seconds.family.clone(),
    );
    registry.register(
        "access_refusals",
        "Requests the access rules refused, by stage (upgrade, call, observe) and code",
        metrics.refusals.clone(),
    );
    let mut text = String::new();
    encode(&mut text, &registry).ok().map(|()| text)
}

fn add_workers(registry: &mut Registry, shared: &EngineState) {
    let workers = Family::<Labels<1>, Gauge>::default();
    // Every listener has a sample, 0 while nobody is connected (an alert can see that).
    for listener in shared.listener_names() {
        let _ = workers.get_or_create(&[("listener", Cow::Owned(listener.to_string()))]);
    }
    let (mut queued, mut largest) = (0usize, 0usize);
    for (_, connected) in shared.connections.connected() {
        let listener = Cow::Owned(connected.attachment.listener.to_string());
        workers.get_or_create(&[("listener", listener)]).inc();
        let backlog = connected.attachment.backlog.queued();
        queued += backlog;
        largest = largest.max(backlog);
    }
    registry.register(
        "workers_connected",
        "Workers connected, by listener",
        workers,
    );
    registry.register(
        "sockets_open",
        "Sockets open on the worker port (what --max-connections bounds)",
        ConstGauge::new(shared.sockets.taken() as i64),
    );
    let registrations = shared.functions.registrations();
    registry.register(
        "functions_registered",
        "Functions registered",
        ConstGauge::new(shared.functions.len() as i64),
    );
    registry.register(
        "function_replicas",
        "Function registrations, one per replica",
        ConstGauge::new(registrations as i64),
    );
    registry.register(
        "triggers_registered",
        "Triggers registered (other than http)",
        ConstGauge::new(shared.triggers.len() as i64),
    );
    registry.register(
        "http_routes",
        "HTTP routes registered",
        ConstGauge::new(shared.routes.len() as i64),
    );
    registry.register_with_unit(
        "outbound_queued",
        "Bytes queued for all workers that they have not read yet",
        Unit::Bytes,
        ConstGauge::new(queued as i64),
    );
    registry.register_with_unit(
        "outbound_queued_max",
        "Bytes queued for the worker with the longest queue",
        Unit::Bytes,
        ConstGauge::new(largest as i64),
    );
    registry.register_with_unit(
        "outbound_queue_limit",
        "The bound of each worker's queue (--max-outbound-bytes)",
        Unit::Bytes,
        ConstGauge::new(shared.config.max_outbound_bytes as i64),
    );
}

fn add_invocations(registry: &mut Registry, metrics: &Metrics, shared: &EngineState) {
    registry.register(
        "invocations",
        "Calls answered, by function and outcome (ok, an error code, or void when nobody waits)",
        metrics.invocations.family.clone(),
    );
    registry.register_with_unit(
        "invocation_duration",
        "Time from a call's arrival to its answer",
        Unit::Seconds,
        metrics.invocation_seconds.family.clone(),
    );
    registry.register(
        "invocations_in_flight",
        "Calls received and not answered yet",
        metrics.in_flight.clone(),
    );
    registry.register(
        "invocations_pending",
        "Calls forwarded to a worker and not answered yet",
        ConstGauge::new(shared.invocations.len() as i64),
    );
}

fn add_channels(registry: &mut Registry, shared: &EngineState) {
    let census = shared.channels.census();
    registry.register(
        "channels_created",
        "Channels created (by workers and for HTTP bodies)",
        ConstCounter::new(census.created),
    );
    registry.register(
        "channels_active",
        "Channels not ended yet",
        ConstGauge::new(census.live.len() as i64),
    );
    registry.register_collector(Box::new(ReadCounters {
        name: "channels_ended",
        help: "Channels ended, by end status",
        unit: None,
        label: "status",
        values: END_STATUSES.iter().copied().zip(census.ended).collect(),
    }));
    let moved = census.moved;
    registry.register_collector(Box::new(ReadCounters {
        name: "channel",
        help: "Channel bytes, in from writers and out to readers",
        unit: Some(Unit::Bytes),
        label: "direction",
        values: vec![("in", moved.written_bytes), ("out", moved.read_bytes)],
    }));
    registry.register_collector(Box::new(ReadCounters {
        name: "channel_frames",
        help: "Channel frames (of at most 64 KiB), in from writers and out to readers",
        unit: None,
        label: "direction",
        values: vec![("in", moved.written_frames), ("out", moved.read_frames)],
    }));
    registry.register_with_unit(
        "channel_writer_blocked",
        "Time writers waited for room in a full channel buffer (backpressure)",
        Unit::Seconds,
        ConstCounter::new(moved.blocked_secs()),
    );
    registry.register_with_unit(
        "channel_buffered",
        "Bytes held in channel buffers now",
        Unit::Bytes,
        ConstGauge::new(shared.bytes.buffered() as i64),
    );
    registry.register_with_unit(
        "channel_buffered_peak",
        "The most bytes ever held in channel buffers at once",
        Unit::Bytes,
        ConstGauge::new(shared.bytes.peak() as i64),
    );
    registry.register_with_unit(
        "channel_buffer_limit",
        "The engine-wide bound on channel buffer bytes (--max-channel-bytes)",
        Unit::Bytes,
        ConstGauge::new(shared.bytes.capacity() as i64),
    );
}

/// Counters read from the registries at scrape time, one per value of one label.
#[derive(Debug)]
struct ReadCounters {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    label: &'static str,
    values: Vec<(&'static str, u64)>,
}

impl Collector for ReadCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(
            self.name,
            self.help,
            self.unit.as_ref(),
            MetricType::Counter,
        )?;
        for (value, count) in &self.values {
            let labels = [(self.label, *value)];
            ConstCounter::new(*count).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Function ids `/status` lists per worker (`functions_total` counts them all).
const STATUS_FUNCTIONS: usize = 100;

/// `GET /status`: the connected workers and the open channels (the `limit` oldest), as JSON
/// (never a key).
pub(crate) fn status(shared: &EngineState, limit: usize) -> Value {
    let held = shared.functions.held_by_connection();
    let mut workers: Vec<Value> = shared
        .connections
        .connected()
        .into_iter()
        .map(|(conn, connected)| {
            let info = &connected.info;
            let attachment = &connected.attachment;
            let functions = held.get(&conn).map(Vec::as_slice).unwrap_or_default();
            json!({
                "id": info.worker_id,
                "name": info.name,
                "runtime": info.runtime,
                "version": info.version,
                "pid": info.pid,
                "address": attachment.address.to_string(),
                "listener": &*attachment.listener,
                "functions": functions.iter().take(STATUS_FUNCTIONS).collect::<Vec<_>>(),
                "functions_total": functions.len(),
                "connected_at_ms": info.connected_at_ms,
                "in_flight": attachment.backlog.in_flight(),
                "queued_bytes": attachment.backlog.queued(),
            })
        })
        .collect();
    workers.sort_by_key(|worker| worker["connected_at_ms"].as_u64());
    let census = shared.channels.census();
    let mut live: Vec<_> = census
        .live
        .iter()
        .map(|channel| (channel.stats.created, channel))
        .collect();
    live.sort_by_key(|(created, _)| *created);
    let channels: Vec<Value> = live
        .iter()
        .take(limit)
        .map(|(created, channel)| {
            let stats = &channel.stats;
            let moved = stats.traffic();
            let (writer, reader) = channel.end_states();
            json!({
                "id": channel.id.to_string(),
                "age_secs": created.elapsed().as_secs_f64(),
                "writer": writer,
                "reader": reader,
                "bytes_in": moved.written_bytes,
                "bytes_out": moved.read_bytes,
                "frames_in": moved.written_frames,
                "frames_out": moved.read_frames,
                "buffered_bytes": stats.buffered(),
                "buffer_capacity_bytes": stats.capacity,
                "blocked_secs": moved.blocked_secs(),
            })
        })
        .collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let ended: HashMap<&str, u64> = END_STATUSES.iter().copied().zip(census.ended).collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "now_ms": now_ms,
        "uptime_secs": shared.started.elapsed().as_secs(),
        "cluster": shared.cluster.get().map(|cluster| cluster.status()),
        "workers": workers,
        "channels": channels,
        "channels_total": live.len(),
        "channels_truncated": live.len() > limit,
        "totals": {
            "channels_created": census.created,
            "channels_ended": ended,
            "channel_bytes_in": census.moved.written_bytes,
            "channel_bytes_out": census.moved.read_bytes,
            "buffered_bytes": shared.bytes.buffered(),
            "pending_invocations": shared.invocations.len(),
            "functions": shared.functions.len(),
        },
    })
}
