//! Handing a call to the function that serves it — the one place every caller (a worker's
//! `invokefunction`, an HTTP trigger, `engine::functions-available`) goes through: a function
//! the engine calls over HTTP gets an HTTP request ([`crate::remote`]); any other gets an
//! `invokefunction` on its owner's connection, recorded first when someone waits for the answer.

use std::time::Duration;

use iii_protocol::codes::{FUNCTION_NOT_FOUND, TIMEOUT, WORKER_BUSY};
use iii_protocol::{ErrorBody, Message, TraceContext};
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::functions::Owner;
use crate::invocations::{Outcome, Waiter, stopped_error};
use crate::metrics::CallTimer;
use crate::state::EngineState;
use crate::worker::outbound::Refused;

/// One call on its way to its function.
pub(crate) struct Call {
    pub(crate) function_id: String,
    pub(crate) data: Value,
    pub(crate) metadata: Option<Value>,
    /// The caller's trace context, passed on unchanged.
    pub(crate) trace: TraceContext,
}

/// Where a call of a function goes.
pub(crate) enum Target {
    /// A worker of this engine (or a function it calls over HTTP).
    Local(Owner),
    /// A peer node that serves it (cluster mode).
    Peer(std::sync::Arc<crate::cluster::Cluster>, std::sync::Arc<str>),
}

/// Where a call of `function_id` goes: to a replica on this engine when there is one, else
/// to a live peer that serves it, in turn (docs/CLUSTER.md).
pub(crate) fn find(shared: &EngineState, function_id: &str) -> Option<Target> {
    if let Some(owner) = shared.functions.lookup(function_id) {
        return Some(Target::Local(owner));
    }
    let cluster = shared.cluster.get()?;
    let node = (cluster.directory).pick(&cluster.members, function_id, &[])?;
    Some(Target::Peer(cluster.clone(), node))
}

/// Sends `call` where `target` says; `waiter`, if any, gets the answer.
pub(crate) async fn send(
    shared: &EngineState,
    target: Target,
    call: Call,
    waiter: Option<Waiter>,
    pace: Pace,
) {
    match target {
        Target::Local(owner) => forward(shared, owner, call, waiter, pace).await,
        Target::Peer(cluster, node) => {
            crate::cluster::calls::send(shared, &cluster, node, call, waiter);
        }
    }
}

/// How the call is put on the owner's connection. Neither waits: one owner that stops reading
/// holds up nobody else (docs/PROTOCOL.md §2.4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    /// Refuse the call at once with `worker_busy` when the owner's queue is over its bound.
    Call,
    /// Drop the call (logged) when the owner's queue is over its bound (announcements).
    Offer,
}

/// Sends `call` to `owner`; `waiter`, if any, gets the answer (or `invocation_stopped` when the
/// owner is going away).
pub(crate) async fn forward(
    shared: &EngineState,
    owner: Owner,
    call: Call,
    mut waiter: Option<Waiter>,
    pace: Pace,
) {
    if let Some(waiter) = &mut waiter {
        waiter.resolve();
    }
    let Call {
        function_id,
        data,
        metadata,
        trace,
    } = call;
    // A fire-and-forget call is counted once it is on its way (announcements are not calls).
    let void_call = (shared.metrics.as_ref())
        .filter(|_| waiter.is_none() && pace == Pace::Call)
        .map(|metrics| (metrics, function_id.clone()));
    if let Some(function) = owner.remote {
        if let Some((metrics, function_id)) = &void_call {
            metrics.void_call(function_id);
        }
        let input = (data, trace);
        crate::remote::spawn_call(shared.remote.clone(), function, function_id, input, waiter);
        return;
    }
    // Recorded before forwarding, so an answer can never arrive before the call is known.
    let engine_id = waiter.map(|waiter| {
        shared.invocations.begin(
            waiter,
            owner.conn,
            function_id.clone(),
            Some(owner.outbox.start_call()),
        )
    });
    let invocation_id = engine_id.unwrap_or_else(Uuid::new_v4).to_string();
    tracing::debug!(
        %invocation_id,
        %function_id,
        trace_id = trace.trace_id().unwrap_or("-"),
        "invocation forwarded"
    );
    let message = Message::InvokeFunction {
        invocation_id: Some(invocation_id),
        function_id: owner.local_id(function_id),
        data,
        action: None,
        metadata,
        traceparent: trace.traceparent,
        tracestate: trace.tracestate,
        baggage: trace.baggage,
        namespace: None,
    };
    let refused = match pace {
        Pace::Call => owner.outbox.call(&message).err(),
        Pace::Offer => (!owner.outbox.offer(&message)).then_some(Refused::Gone),
    };
    let Some(refused) = refused else {
        if let Some((metrics, function_id)) = &void_call {
            metrics.void_call(function_id);
        }
        return;
    };
    // The call is not on its way: whoever waits learns why (the owner may be disconnecting,
    // and its cleanup may already have run).
    let Some((waiter, function_id)) = engine_id.and_then(|id| shared.invocations.cancel(id)) else {
        return;
    };
    let error = match refused {
        Refused::Busy(queued) => busy_error(&function_id, queued),
        Refused::Gone => stopped_error(&function_id),
    };
    waiter.fail(function_id, error).await;
}

/// The error of a call refused because its owner does not read its socket.
fn busy_error(function_id: &str, queued: usize) -> ErrorBody {
    ErrorBody::new(
        WORKER_BUSY,
        format!(
            "the worker serving {function_id} is not reading its socket ({queued} bytes wait for it): try again later"
        ),
    )
}

/// Calls `function_id` with `data` (and `metadata`, and the trace context of the request that
/// caused the call) on behalf of the engine (an HTTP trigger, an auth function, a
/// registration hook); the receiver gets its answer.
pub(crate) async fn invoke_for_engine(
    shared: &EngineState,
    function_id: &str,
    data: Value,
    (metadata, trace): (Option<Value>, TraceContext),
) -> Result<oneshot::Receiver<Outcome>, ErrorBody> {
    let Some(target) = find(shared, function_id) else {
        return Err(ErrorBody::new(
            FUNCTION_NOT_FOUND,
            format!("Function {function_id} not found"),
        ));
    };
    let (reply, outcome) = oneshot::channel();
    let call = Call {
        function_id: function_id.to_string(),
        data,
        metadata,
        trace,
    };
    let timer = CallTimer::start(shared.metrics.as_ref());
    let waiter = Waiter::Engine(reply, timer);
    send(shared, target, call, Some(waiter), Pace::Call).await;
    Ok(outcome)
}

/// [`invoke_for_engine`], waiting for the answer at most `wait`.
pub(crate) async fn call_for_engine(
    shared: &EngineState,
    function_id: &str,
    data: Value,
    wait: Duration,
) -> Outcome {
    let beside = (None, TraceContext::default());
    let outcome = invoke_for_engine(shared, function_id, data, beside).await?;
    match tokio::time::timeout(wait, outcome).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err(stopped_error(function_id)),
        Err(_) => Err(ErrorBody::new(
            TIMEOUT,
            format!("{function_id} did not answer within {wait:?}"),
        )),
    }
}
