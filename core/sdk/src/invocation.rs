//! Running an incoming invocation: find the handler, run it in its own task with panics
//! caught, and turn its outcome into the `invocationresult` the caller waits for.
//!
//! While a handler runs, the call it serves (function, id, metadata, and the engine URL of the
//! worker that received it) is kept in a task-local ([`current_invocation`]), so handlers can
//! ask about it and helpers that turn refs into channel ends (the [`http`](crate::http)
//! adapter, bindings) need not be handed the worker.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use iii_protocol::{ErrorBody, Message, TraceContext, TriggerAction};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::IIIError;
use crate::function::Handler;

/// An `invokefunction` received from the engine.
pub(crate) struct Invocation {
    pub(crate) invocation_id: Option<String>,
    pub(crate) function_id: String,
    pub(crate) data: Value,
    pub(crate) action: Option<TriggerAction>,
    /// Free-form metadata sent beside the input.
    pub(crate) metadata: Option<Value>,
    /// The caller's trace context.
    pub(crate) trace: TraceContext,
    /// The engine URL of the worker that received it.
    pub(crate) address: String,
}

/// What a running handler may ask about the call it serves ([`current_invocation`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationContext {
    /// The engine URL of the worker that received the call.
    pub address: String,
    /// The function called.
    pub function_id: String,
    /// The call's id; `None` for a fire-and-forget call.
    pub invocation_id: Option<String>,
    /// The metadata the caller (or the trigger) sent beside the input.
    pub metadata: Option<Value>,
    /// The caller's W3C trace context (`traceparent`, `tracestate`, `baggage`), as it sent
    /// it. Calls the handler makes carry it on unless they set their own.
    pub trace: TraceContext,
}

tokio::task_local! {
    /// The call whose handler runs in this task.
    static CURRENT: InvocationContext;
}

/// The call whose handler is running in the current task, or `None` outside a handler.
///
/// It is set around every handler call — both the call that builds the handler's future and
/// every poll of that future — but not in tasks the handler spawns: read it in the handler and
/// move it there.
pub fn current_invocation() -> Option<InvocationContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The trace context of the call whose handler is running in the current task (empty outside
/// a handler): what calls the handler makes carry on.
pub(crate) fn current_trace() -> TraceContext {
    CURRENT
        .try_with(|context| context.trace.clone())
        .unwrap_or_default()
}

/// The engine URL (e.g. `ws://127.0.0.1:49134`) of the worker whose handler is running in the
/// current task, or `None` outside a handler (see [`current_invocation`]). Build channel ends
/// from refs with it (`ChannelReader::new(&address, &channel_ref)`); the
/// [`http`](crate::http::http) adapter does.
pub fn current_engine_address() -> Option<String> {
    CURRENT.try_with(|context| context.address.clone()).ok()
}

impl Invocation {
    fn wants_result(&self) -> bool {
        self.invocation_id.is_some() && !matches!(self.action, Some(TriggerAction::Void))
    }
}

/// Runs `invocation` with `handler` in a new task on the home runtime and hands its result to
/// `reply`.
/// Without a handler, answers `function_not_found` through `urgent` (never blocks).
pub(crate) fn dispatch<R, F>(
    invocation: Invocation,
    handler: Option<Handler>,
    reply: R,
    urgent: &mpsc::UnboundedSender<String>,
) where
    R: FnOnce(String) -> F + Send + 'static,
    F: Future<Output = ()> + Send,
{
    let wants_result = invocation.wants_result();
    let Invocation {
        invocation_id,
        function_id,
        data,
        address,
        metadata,
        trace,
        ..
    } = invocation;
    let Some(handler) = handler else {
        tracing::warn!(%function_id, "invocation of a function this worker does not have");
        if let (true, Some(id)) = (wants_result, invocation_id) {
            let error = ErrorBody::new(
                iii_protocol::codes::FUNCTION_NOT_FOUND,
                format!("Function {function_id} not found"),
            );
            let _ = urgent.send(Message::error(id, Some(function_id), error).to_json());
        }
        return;
    };
    crate::runtime::home().spawn(async move {
        let running = AssertUnwindSafe(async move { handler(data).await }).catch_unwind();
        let context = InvocationContext {
            address,
            function_id: function_id.clone(),
            invocation_id: invocation_id.clone(),
            metadata,
            trace,
        };
        let outcome = CURRENT
            .scope(context, running)
            .await
            .unwrap_or_else(|panic| Err(IIIError::Handler(panic_message(&*panic))));
        let Some(id) = invocation_id.filter(|_| wants_result) else {
            if let Err(error) = outcome {
                tracing::warn!(%function_id, %error, "void invocation failed");
            }
            return;
        };
        let message = match outcome {
            Ok(result) => Message::result(id, Some(function_id), result),
            Err(error) => Message::error(id, Some(function_id), error.to_error_body()),
        };
        reply(message.to_json()).await;
    });
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    format!("handler panicked: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn invocation(id: Option<&str>, action: Option<TriggerAction>) -> Invocation {
        Invocation {
            invocation_id: id.map(str::to_string),
            function_id: "t::f".into(),
            data: serde_json::json!({"n": 1}),
            action,
            metadata: None,
            trace: TraceContext::default(),
            address: "ws://engine.test:1".into(),
        }
    }

    type Replier = Box<dyn FnOnce(String) -> std::future::Ready<()> + Send>;

    fn replier() -> (Replier, mpsc::UnboundedReceiver<String>) {
        let (sender, queue) = mpsc::unbounded_channel();
        let reply = move |text| {
            let _ = sender.send(text);
            std::future::ready(())
        };
        (Box::new(reply), queue)
    }

    async fn reply_of(handler: Handler) -> Value {
        let (reply, mut queue) = replier();
        let (urgent, _urgent_queue) = mpsc::unbounded_channel();
        dispatch(invocation(Some("i1"), None), Some(handler), reply, &urgent);
        let text = queue.recv().await.expect("a reply");
        serde_json::from_str(&text).expect("json")
    }

    #[tokio::test]
    async fn results_errors_and_panics_become_replies() {
        let ok: Handler = Arc::new(|input| Box::pin(async move { Ok(input) }));
        assert_eq!(reply_of(ok).await["result"], serde_json::json!({"n": 1}));

        let failing: Handler =
            Arc::new(|_| Box::pin(async { Err(IIIError::Handler("nope".into())) }));
        let reply = reply_of(failing).await;
        assert_eq!(reply["error"]["code"], "invocation_failed");
        assert_eq!(reply["error"]["message"], "nope");

        let panicking: Handler = Arc::new(|_| Box::pin(async { panic!("boom") }));
        let reply = reply_of(panicking).await;
        assert_eq!(reply["error"]["code"], "invocation_failed");
        assert!(
            reply["error"]["message"]
                .as_str()
                .expect("text")
                .contains("boom")
        );

        let eager: Handler = Arc::new(|_| -> crate::function::HandlerFuture { panic!("early") });
        assert_eq!(reply_of(eager).await["error"]["code"], "invocation_failed");
    }

    #[tokio::test]
    async fn handlers_see_the_engine_address() {
        assert_eq!(current_engine_address(), None);
        let probe: Handler = Arc::new(|_| {
            let at_call = current_engine_address();
            Box::pin(async move {
                tokio::task::yield_now().await;
                Ok(serde_json::json!([at_call, current_engine_address()]))
            })
        });
        let seen = reply_of(probe).await["result"].clone();
        assert_eq!(
            seen,
            serde_json::json!(["ws://engine.test:1", "ws://engine.test:1"])
        );
    }

    #[test]
    fn unknown_functions_are_answered_unless_void() {
        let (urgent, mut urgent_queue) = mpsc::unbounded_channel();
        let (reply, _queue) = replier();
        dispatch(invocation(Some("i2"), None), None, reply, &urgent);
        let reply: Value =
            serde_json::from_str(&urgent_queue.try_recv().expect("reply")).expect("json");
        assert_eq!(reply["error"]["code"], "function_not_found");
        assert_eq!(reply["invocation_id"], "i2");
        let (reply, _queue) = replier();
        let void = invocation(Some("i3"), Some(TriggerAction::Void));
        dispatch(void, None, reply, &urgent);
        assert!(urgent_queue.try_recv().is_err());
    }
}
