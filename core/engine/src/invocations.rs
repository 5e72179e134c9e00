//! Calls forwarded to their owner and not yet answered: who is waiting (and under which of
//! its own ids), which connection may answer, and the engine-side deadline of each.
//!
//! A deadline is one sleeping task per call whose abort handle is kept with the call:
//! cheap for tens of thousands of pending calls, and freed as soon as the answer arrives.

use crate::worker::backlog::InFlight;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iii_protocol::codes::{INVOCATION_STOPPED, TIMEOUT};
use iii_protocol::{ErrorBody, Message};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use uuid::Uuid;

use crate::metrics::CallTimer;
use crate::util::{lock, shrink_map};
use crate::worker::outbound::Outbox;
use crate::worker::registry::ConnId;

/// Who waits for a call's answer.
pub(crate) struct Caller {
    /// The calling connection.
    pub(crate) conn: ConnId,
    /// Its outbound queue.
    pub(crate) outbox: Outbox,
    /// The id the caller chose; answers carry it.
    pub(crate) invocation_id: String,
    /// The trace id of the caller's trace context, for the engine's log lines.
    pub(crate) trace_id: Option<String>,
    /// Times the call for the metrics, when the engine keeps them.
    pub(crate) timer: Option<CallTimer>,
}

impl Caller {
    /// The call reached its function, or a built-in answers it: the metrics name it.
    pub(crate) fn resolve(&mut self) {
        if let Some(timer) = &mut self.timer {
            timer.resolve();
        }
    }

    /// Sends the caller a result or an error for `function_id`.
    pub(crate) async fn answer(
        self,
        function_id: String,
        result: Option<Value>,
        error: Option<ErrorBody>,
    ) {
        if let Some(timer) = self.timer {
            timer.finish(&function_id, error.as_ref());
        }
        let message = match error {
            Some(error) => {
                let trace_id = self.trace_id.as_deref();
                report_failure(&function_id, Some(&self.invocation_id), trace_id, &error);
                Message::error(self.invocation_id, Some(function_id), error)
            }
            None => Message::result(
                self.invocation_id,
                Some(function_id),
                result.unwrap_or(Value::Null),
            ),
        };
        self.outbox.send(&message);
    }

    /// Sends the caller an error.
    pub(crate) async fn fail(self, function_id: String, error: ErrorBody) {
        self.answer(function_id, None, Some(error)).await;
    }
}

/// Longest part of a failure's message that goes into the engine's log.
const LOGGED_MESSAGE_CHARS: usize = 200;

/// The operator's one line for a failed call (its caller gets the whole error itself).
fn report_failure(
    function_id: &str,
    invocation_id: Option<&str>,
    trace_id: Option<&str>,
    error: &ErrorBody,
) {
    let mut message: String = error.message.chars().take(LOGGED_MESSAGE_CHARS).collect();
    if message.len() < error.message.len() {
        message.push('…');
    }
    // Debug formatting escapes newlines: a worker's text cannot forge log lines.
    tracing::warn!(
        %function_id,
        invocation_id = invocation_id.unwrap_or("-"),
        trace_id = trace_id.unwrap_or("-"),
        code = ?error.code,
        error = ?message,
        "invocation failed"
    );
}

/// How a call made by the engine itself (an HTTP trigger) ended: the function's result, or
/// the error it (or the engine) reported.
pub(crate) type Outcome = Result<Value, ErrorBody>;

/// Who waits for a call's answer: a worker connection, or the engine itself.
pub(crate) enum Waiter {
    /// A worker's call, answered on its main socket.
    Worker(Caller),
    /// The engine's own call, answered through a oneshot (and timed for the metrics).
    Engine(oneshot::Sender<Outcome>, Option<CallTimer>),
}

impl Waiter {
    /// The call reached its function: the metrics name it.
    pub(crate) fn resolve(&mut self) {
        match self {
            Self::Worker(caller) => caller.resolve(),
            Self::Engine(_, Some(timer)) => timer.resolve(),
            Self::Engine(_, None) => {}
        }
    }

    /// The waiting connection, if a worker waits.
    fn conn(&self) -> Option<ConnId> {
        match self {
            Self::Worker(caller) => Some(caller.conn),
            Self::Engine(..) => None,
        }
    }

    /// Delivers a result or an error for `function_id`.
    pub(crate) async fn answer(
        self,
        function_id: String,
        result: Option<Value>,
        error: Option<ErrorBody>,
    ) {
        match self {
            Self::Worker(caller) => caller.answer(function_id, result, error).await,
            Self::Engine(reply, timer) => {
                if let Some(timer) = timer {
                    timer.finish(&function_id, error.as_ref());
                }
                let outcome = match error {
                    Some(error) => {
                        report_failure(&function_id, None, None, &error);
                        Err(error)
                    }
                    None => Ok(result.unwrap_or(Value::Null)),
                };
                // The HTTP request may be gone already; then nobody needs the answer.
                let _ = reply.send(outcome);
            }
        }
    }

    /// Delivers an error.
    pub(crate) async fn fail(self, function_id: String, error: ErrorBody) {
        self.answer(function_id, None, Some(error)).await;
    }
}

impl From<Caller> for Waiter {
    fn from(caller: Caller) -> Self {
        Self::Worker(caller)
    }
}

/// The error a caller gets when the owner disconnected.
pub(crate) fn stopped_error(function_id: &str) -> ErrorBody {
    ErrorBody::new(
        INVOCATION_STOPPED,
        format!("Invocation of {function_id} stopped: the worker serving it disconnected"),
    )
}

struct Pending {
    caller: Waiter,
    owner: ConnId,
    function_id: String,
    deadline: AbortHandle,
    /// Counts the call against its owner's calls in flight until it is taken out.
    _load: Option<InFlight>,
}

type Table = Arc<Mutex<HashMap<Uuid, Pending>>>;

/// The pending calls.
pub(crate) struct Invocations {
    table: Table,
    timeout: Duration,
}

impl Invocations {
    /// An empty table whose calls expire after `timeout`.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            table: Arc::default(),
            timeout,
        }
    }

    /// Records a call about to be forwarded to `owner` and starts its deadline. Returns the
    /// fresh id to forward it with.
    pub(crate) fn begin(
        &self,
        caller: impl Into<Waiter>,
        owner: ConnId,
        function_id: String,
        load: Option<InFlight>,
    ) -> Uuid {
        let caller = caller.into();
        let id = Uuid::new_v4();
        let mut table = lock(&self.table);
        // Spawned under the lock, so the deadline cannot fire before the entry exists.
        let deadline = tokio::spawn(expire_later(self.table.clone(), id, self.timeout));
        table.insert(
            id,
            Pending {
                caller,
                owner,
                function_id,
                deadline: deadline.abort_handle(),
                _load: load,
            },
        );
        id
    }

    /// Takes pending call `id` if `from` is the connection it was sent to.
    pub(crate) fn complete(&self, from: ConnId, id: &str) -> Option<(Waiter, String)> {
        let id = Uuid::parse_str(id).ok()?;
        let mut table = lock(&self.table);
        if table.get(&id)?.owner != from {
            tracing::debug!(%id, "ignoring a result from a connection the call was not sent to");
            return None;
        }
        let pending = table.remove(&id)?;
        pending.deadline.abort();
        Some((pending.caller, pending.function_id))
    }

    /// Takes pending call `id` whatever its owner (forwarding it failed).
    pub(crate) fn cancel(&self, id: Uuid) -> Option<(Waiter, String)> {
        let pending = lock(&self.table).remove(&id)?;
        pending.deadline.abort();
        Some((pending.caller, pending.function_id))
    }

    /// A connection closed. Calls it made are dropped; calls it owed are returned so their
    /// callers can be told `invocation_stopped`.
    pub(crate) fn connection_gone(&self, conn: ConnId) -> Vec<(Waiter, String)> {
        let mut table = lock(&self.table);
        let mut stopped = Vec::new();
        for (_, pending) in
            table.extract_if(|_, p| p.owner == conn || p.caller.conn() == Some(conn))
        {
            pending.deadline.abort();
            if pending.caller.conn() != Some(conn) {
                stopped.push((pending.caller, pending.function_id));
            }
        }
        shrink_map(&mut table);
        stopped
    }

    /// Drops every pending call and its deadline (the engine is stopping).
    pub(crate) fn clear(&self) {
        let mut table = lock(&self.table);
        for (_, pending) in table.drain() {
            pending.deadline.abort();
        }
        table.shrink_to_fit();
    }

    /// Gives memory back after a burst of calls.
    pub(crate) fn shrink(&self) {
        shrink_map(&mut lock(&self.table));
    }

    /// Pending calls.
    pub(crate) fn len(&self) -> usize {
        lock(&self.table).len()
    }
}

async fn expire_later(table: Table, id: Uuid, after: Duration) {
    tokio::time::sleep(after).await;
    let Some(pending) = lock(&table).remove(&id) else {
        return;
    };
    let error = ErrorBody::new(
        TIMEOUT,
        format!(
            "Invocation of {} timed out after {} ms in the engine",
            pending.function_id,
            after.as_millis()
        ),
    );
    pending.caller.fail(pending.function_id, error).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn caller(
        conn: u64,
    ) -> (
        Caller,
        mpsc::Receiver<tokio_tungstenite::tungstenite::Message>,
    ) {
        let (tx, rx) = mpsc::channel(8);
        let caller = Caller {
            conn: ConnId(conn),
            outbox: Outbox::unbounded(tx),
            invocation_id: "caller-id".into(),
            trace_id: None,
            timer: None,
        };
        (caller, rx)
    }

    #[tokio::test]
    async fn only_the_owner_completes_a_call() {
        let invocations = Invocations::new(Duration::from_secs(60));
        let (caller, _rx) = caller(1);
        let id = invocations
            .begin(caller, ConnId(2), "f".into(), None)
            .to_string();
        assert!(invocations.complete(ConnId(3), &id).is_none());
        assert!(invocations.complete(ConnId(2), "not-a-uuid").is_none());
        let (caller, function_id) = invocations.complete(ConnId(2), &id).expect("pending");
        let Waiter::Worker(caller) = caller else {
            panic!("a worker waits")
        };
        assert_eq!(caller.invocation_id, "caller-id");
        assert_eq!(function_id, "f");
        assert_eq!(invocations.len(), 0);
    }

    #[tokio::test]
    async fn owner_loss_stops_calls_and_caller_loss_drops_them() {
        let invocations = Invocations::new(Duration::from_secs(60));
        let (a, _ra) = caller(1);
        let (b, _rb) = caller(2);
        invocations.begin(a, ConnId(9), "f".into(), None);
        invocations.begin(b, ConnId(1), "g".into(), None);
        let stopped = invocations.connection_gone(ConnId(1));
        assert_eq!(stopped.len(), 1);
        assert_eq!(stopped.first().map(|s| s.1.as_str()), Some("g"));
        assert_eq!(invocations.len(), 0);
    }

    #[tokio::test]
    async fn the_engine_can_wait_for_a_call_itself() {
        let invocations = Invocations::new(Duration::from_secs(60));
        let (tx, rx) = oneshot::channel();
        let id = invocations
            .begin(Waiter::Engine(tx, None), ConnId(2), "f".into(), None)
            .to_string();
        let (waiter, function_id) = invocations.complete(ConnId(2), &id).expect("pending");
        waiter
            .answer(function_id, Some(Value::Bool(true)), None)
            .await;
        assert_eq!(rx.await.ok(), Some(Ok(Value::Bool(true))));
        let (tx, rx) = oneshot::channel();
        invocations.begin(Waiter::Engine(tx, None), ConnId(3), "g".into(), None);
        let stopped = invocations.connection_gone(ConnId(3));
        assert_eq!(
            stopped.len(),
            1,
            "the engine's call is stopped, not dropped"
        );
        for (waiter, function_id) in stopped {
            let error = stopped_error(&function_id);
            waiter.fail(function_id, error).await;
        }
        let outcome = rx.await.expect("answered");
        assert_eq!(
            outcome.map_err(|e| e.code),
            Err(INVOCATION_STOPPED.to_string())
        );
    }

    #[tokio::test]
    async fn deadline_answers_timeout_and_frees_the_call() {
        let invocations = Invocations::new(Duration::from_millis(20));
        let (caller, mut rx) = caller(1);
        invocations.begin(caller, ConnId(2), "f".into(), None);
        let frame = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("answered in time")
            .expect("a frame");
        let text = frame.into_text().expect("text");
        let message: Message = serde_json::from_str(&text).expect("json");
        assert!(
            matches!(message, Message::InvocationResult { error: Some(ref e), .. } if e.code == TIMEOUT)
        );
        assert_eq!(invocations.len(), 0);
    }
}
