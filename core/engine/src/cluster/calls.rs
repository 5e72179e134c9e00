//! Calls between nodes. A call of a function only a peer serves is a NATS request on that
//! peer's subject (`{name}.node.{node}.call`) carrying the main socket's own `invokefunction`
//! message (the time the caller's node still waits in a header); the peer hands it to its own
//! worker exactly as a local call and replies with an `invocationresult`. The calling node keeps the deadline, and gives
//! up on the call as soon as the peer is lost (`invocation_stopped`) instead of waiting for
//! it. A void call is a plain publish: nobody waits, nothing is answered.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::client::RequestErrorKind;
use futures_util::StreamExt;
use iii_protocol::cluster::TIMEOUT_HEADER;
use iii_protocol::codes::{
    FUNCTION_NOT_FOUND, INVALID_MESSAGE, INVOCATION_STOPPED, PAYLOAD_TOO_LARGE, TIMEOUT,
    WORKER_BUSY,
};
use iii_protocol::{ErrorBody, Message, TraceContext, TriggerAction};
use serde_json::Value;
use tokio::sync::oneshot;

use super::Cluster;
use crate::forward::{Call, Pace, forward};
use crate::invocations::{Outcome, Waiter, stopped_error};
use crate::lifecycle::{Lifeline, Shutdown};
use crate::state::EngineState;

/// Most calls this node may have on their way to peers or waiting for a peer's answer, and
/// the bytes of their payloads (kept for a retry on another peer): past either, a call is
/// refused at once with `worker_busy`.
pub(crate) const MAX_CALLS_OUT: usize = 65_536;
pub(crate) const MAX_CALL_BYTES_OUT: usize = 256 << 20;
/// Most calls from peers this node serves at once; past it a peer's call is answered
/// `worker_busy` at once.
pub(crate) const MAX_CALLS_IN: usize = 65_536;

/// Bytes of payloads held for calls to peers, given back when a call ends.
#[derive(Default)]
pub(crate) struct ByteBudget(std::sync::atomic::AtomicUsize);

/// Bytes taken from a [`ByteBudget`].
struct HeldBytes<'a>(&'a ByteBudget, usize);

impl ByteBudget {
    fn try_take(&self, bytes: usize, max: usize) -> Option<HeldBytes<'_>> {
        (self.0)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + bytes <= max).then_some(held + bytes)
            })
            .ok()
            .map(|_| HeldBytes(self, bytes))
    }
}

impl Drop for HeldBytes<'_> {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(self.1, Ordering::AcqRel);
    }
}

/// Sends `call` to peer `node` (and, if it vanished from NATS meanwhile, to another peer that
/// serves the function); `waiter`, if any, gets the answer.
pub(crate) fn send(
    shared: &EngineState,
    cluster: &Arc<Cluster>,
    node: Arc<str>,
    call: Call,
    mut waiter: Option<Waiter>,
) {
    if let Some(waiter) = &mut waiter {
        waiter.resolve();
    } else if let Some(metrics) = &shared.metrics {
        metrics.void_call(&call.function_id);
    }
    let timeout = shared.config.invocation_timeout;
    let Some(slot) = cluster.pending.try_take(MAX_CALLS_OUT) else {
        let function_id = call.function_id;
        let error = busy(&format!(
            "{MAX_CALLS_OUT} calls already wait on other nodes"
        ));
        if let Some(waiter) = waiter {
            tokio::spawn(waiter.fail(function_id, error));
        } else {
            tracing::debug!(%function_id, "a void call to a peer was dropped: too many calls wait on peers");
        }
        return;
    };
    tokio::spawn(call_peer(
        cluster.clone(),
        node,
        call,
        waiter,
        (timeout, slot),
    ));
}

/// The error of a call refused because too much waits on peers.
fn busy(why: &str) -> ErrorBody {
    ErrorBody::new(WORKER_BUSY, format!("{why}: try again later"))
}

async fn call_peer(
    cluster: Arc<Cluster>,
    mut node: Arc<str>,
    call: Call,
    waiter: Option<Waiter>,
    (timeout, _slot): (Duration, crate::quota::Slot),
) {
    let Call {
        function_id,
        data,
        metadata,
        trace,
    } = call;
    let wire = Message::InvokeFunction {
        invocation_id: None,
        function_id: function_id.clone(),
        data,
        action: waiter.is_none().then_some(TriggerAction::Void),
        metadata,
        traceparent: trace.traceparent,
        tracestate: trace.tracestate,
        baggage: trace.baggage,
        namespace: None,
    };
    let body: bytes::Bytes = match serde_json::to_vec(&wire) {
        Ok(body) => body.into(),
        Err(error) => {
            let error = ErrorBody::new(INVALID_MESSAGE, format!("cannot encode the call: {error}"));
            if let Some(waiter) = waiter {
                waiter.fail(function_id, error).await;
            }
            return;
        }
    };
    drop(wire);
    let Some(_bytes) = cluster
        .pending_bytes
        .try_take(body.len(), MAX_CALL_BYTES_OUT)
    else {
        let why = format!(
            "{} MiB of calls already wait on other nodes",
            MAX_CALL_BYTES_OUT >> 20
        );
        if let Some(waiter) = waiter {
            waiter.fail(function_id, busy(&why)).await;
        }
        return;
    };
    cluster.counters.calls_sent.fetch_add(1, Ordering::Relaxed);
    let Some(waiter) = waiter else {
        if let Err(error) = cluster
            .client
            .publish(cluster.call_subject(&node), body)
            .await
        {
            tracing::debug!(%function_id, %node, %error, "a void call to a peer was not sent");
        }
        return;
    };
    let started = tokio::time::Instant::now();
    let mut tried = Vec::new();
    let outcome = loop {
        let left = timeout.saturating_sub(started.elapsed());
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(TIMEOUT_HEADER, left.as_millis().to_string().as_str());
        let request = async_nats::Request::new()
            .payload(body.clone())
            .headers(headers)
            .timeout(Some(left));
        let subject = cluster.call_subject(&node);
        let reply = tokio::select! {
            reply = cluster.client.send_request(subject, request) => reply,
            _ = cluster.members.until_lost(&node) => {
                cluster.counters.calls_stopped.fetch_add(1, Ordering::Relaxed);
                break Err(lost_error(&function_id, &node));
            }
        };
        match reply {
            Ok(message) => break answer_of(&message.payload, &function_id),
            Err(error) if error.kind() == RequestErrorKind::NoResponders => {
                // The peer left NATS before its entry aged: another may serve the function.
                tried.push(node.clone());
                let next = cluster
                    .directory
                    .pick(&cluster.members, &function_id, &tried);
                match next {
                    Some(other) => node = other,
                    None => break Err(not_found(&function_id)),
                }
            }
            Err(error) if error.kind() == RequestErrorKind::TimedOut => {
                break Err(ErrorBody::new(
                    TIMEOUT,
                    format!(
                        "Invocation of {function_id} timed out after {} ms in the engine",
                        timeout.as_millis()
                    ),
                ));
            }
            Err(error) if error.kind() == RequestErrorKind::MaxPayloadExceeded => {
                let max = cluster.client.max_payload();
                break Err(ErrorBody::new(
                    PAYLOAD_TOO_LARGE,
                    format!(
                        "the call of {function_id} is over the {max} bytes NATS carries between nodes; stream large data through a channel"
                    ),
                ));
            }
            Err(error) => {
                cluster
                    .counters
                    .calls_stopped
                    .fetch_add(1, Ordering::Relaxed);
                break Err(ErrorBody::new(
                    INVOCATION_STOPPED,
                    format!(
                        "Invocation of {function_id} stopped: node {node} could not be reached ({error})"
                    ),
                ));
            }
        }
    };
    match outcome {
        Ok(result) => waiter.answer(function_id, Some(result), None).await,
        Err(error) => waiter.fail(function_id, error).await,
    }
}

/// A peer's reply as a call's outcome.
fn answer_of(payload: &[u8], function_id: &str) -> Outcome {
    match serde_json::from_slice::<Message>(payload) {
        Ok(Message::InvocationResult {
            error: Some(error), ..
        }) => Err(error),
        Ok(Message::InvocationResult { result, .. }) => Ok(result.unwrap_or(Value::Null)),
        _ => Err(ErrorBody::new(
            INVALID_MESSAGE,
            format!("a peer answered {function_id} with something that is not an invocationresult"),
        )),
    }
}

/// The error of a call whose node was lost before it answered.
fn lost_error(function_id: &str, node: &str) -> ErrorBody {
    ErrorBody::new(
        INVOCATION_STOPPED,
        format!("Invocation of {function_id} stopped: node {node}, which was serving it, was lost"),
    )
}

fn not_found(function_id: &str) -> ErrorBody {
    ErrorBody::new(
        FUNCTION_NOT_FOUND,
        format!("Function {function_id} not found"),
    )
}

/// Subscribes to this node's call subject (before the node is announced, so no call can
/// arrive unheard).
pub(crate) async fn serve(
    _shared: Arc<EngineState>,
    cluster: Arc<Cluster>,
) -> std::io::Result<async_nats::Subscriber> {
    (cluster
        .client
        .subscribe(cluster.call_subject(&cluster.node))
        .await)
        .map_err(|error| std::io::Error::other(format!("cannot take calls from peers: {error}")))
}

/// Serves calls from peers until the engine stops.
pub(crate) async fn run(
    shared: Arc<EngineState>,
    mut calls: async_nats::Subscriber,
    mut shutdown: Shutdown,
    _lifeline: Lifeline,
) {
    let Some(cluster) = shared.cluster.get().cloned() else {
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            message = calls.next() => match message {
                Some(message) => match cluster.serving.try_take(MAX_CALLS_IN) {
                    Some(slot) => {
                        tokio::spawn(serve_one(shared.clone(), message, slot));
                    }
                    None => {
                        let error = busy(&format!("node {} serves {MAX_CALLS_IN} calls of other nodes already", cluster.node));
                        reply(&cluster, message.reply, Err(error)).await;
                    }
                },
                None => return,
            },
        }
    }
}

/// Serves one call from a peer: hands it to a local worker and replies with its answer.
async fn serve_one(
    shared: Arc<EngineState>,
    message: async_nats::Message,
    _slot: crate::quota::Slot,
) {
    let Some(cluster) = shared.cluster.get() else {
        return;
    };
    cluster
        .counters
        .calls_served
        .fetch_add(1, Ordering::Relaxed);
    let reply_to = message.reply.clone();
    let timeout_ms = (message.headers.as_ref())
        .and_then(|headers| headers.get(TIMEOUT_HEADER))
        .and_then(|value| value.as_str().parse::<u64>().ok());
    let outcome = match call_of(&message.payload) {
        Some(call) => match reply_to {
            Some(_) => run_call(&shared, call, timeout_ms).await,
            None => {
                run_void(&shared, call).await;
                return;
            }
        },
        None => Err(ErrorBody::new(
            INVALID_MESSAGE,
            "a peer sent something that is not an invokefunction",
        )),
    };
    reply(cluster, reply_to, outcome).await;
}

/// Answers a peer's call on `reply_to` (nothing for a void call). An answer over what NATS
/// carries is replaced by a `payload_too_large` error, so the caller is not left waiting.
async fn reply(cluster: &Cluster, reply_to: Option<async_nats::Subject>, outcome: Outcome) {
    let Some(reply_to) = reply_to else { return };
    let encode = |outcome: Outcome| {
        let answer = match outcome {
            Ok(result) => Message::result(String::new(), None, result),
            Err(error) => Message::error(String::new(), None, error),
        };
        serde_json::to_vec(&answer).ok()
    };
    let Some(mut body) = encode(outcome) else {
        return;
    };
    let max = cluster.client.max_payload();
    if body.len() > max.saturating_sub(ANSWER_OVERHEAD) {
        let why = format!(
            "the answer is over the {max} bytes NATS carries between nodes; stream large results through a channel"
        );
        let Some(refused) = encode(Err(ErrorBody::new(PAYLOAD_TOO_LARGE, why))) else {
            return;
        };
        body = refused;
    }
    if let Err(error) = cluster.client.publish(reply_to, body.into()).await {
        tracing::debug!(%error, "an answer to a peer was not sent");
    }
}

/// Room left in a NATS message for its subject and headers.
const ANSWER_OVERHEAD: usize = 1024;

/// The call a peer's `invokefunction` carries.
fn call_of(payload: &[u8]) -> Option<Call> {
    let Ok(Message::InvokeFunction {
        function_id,
        data,
        metadata,
        traceparent,
        tracestate,
        baggage,
        ..
    }) = serde_json::from_slice::<Message>(payload)
    else {
        return None;
    };
    let trace = TraceContext {
        traceparent,
        tracestate,
        baggage,
    };
    Some(Call {
        function_id,
        data,
        metadata,
        trace,
    })
}

async fn run_void(shared: &EngineState, call: Call) {
    if let Some(owner) = shared.functions.lookup(&call.function_id) {
        forward(shared, owner, call, None, Pace::Call).await;
    }
}

async fn run_call(shared: &EngineState, call: Call, timeout_ms: Option<u64>) -> Outcome {
    let Some(owner) = shared.functions.lookup(&call.function_id) else {
        return Err(not_found(&call.function_id));
    };
    let function_id = call.function_id.clone();
    let (reply, answer) = oneshot::channel();
    forward(
        shared,
        owner,
        call,
        Some(Waiter::Engine(reply, None)),
        Pace::Call,
    )
    .await;
    let own = shared.config.invocation_timeout;
    let wait = timeout_ms.map_or(own, |ms| own.min(Duration::from_millis(ms)));
    match tokio::time::timeout(wait, answer).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Err(stopped_error(&function_id)),
        Err(_) => Err(ErrorBody::new(
            TIMEOUT,
            format!(
                "Invocation of {function_id} timed out after {} ms in the engine",
                wait.as_millis()
            ),
        )),
    }
}
