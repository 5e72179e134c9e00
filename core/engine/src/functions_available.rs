//! The `engine::functions-available` trigger type: whenever the set of registered functions
//! changes, every function bound to a trigger of this type is called (without waiting for an
//! answer) with `{"event": "functions_changed", "functions": [summary]}` — how a worker learns
//! what it can call without polling. Changes that come close together go out as one event.

use std::sync::Arc;
use std::time::Duration;

use iii_protocol::builtins::{EVENT_FUNCTIONS_CHANGED, TRIGGER_FUNCTIONS_AVAILABLE};
use serde_json::json;

use crate::discovery;
use crate::forward::{Call, Pace, forward};
use crate::lifecycle::{Lifeline, Shutdown};
use crate::state::EngineState;

/// How long the engine waits after a change for more before it announces them.
const COALESCE: Duration = Duration::from_millis(100);

/// Announces changes until the engine stops.
pub(crate) async fn run(shared: Arc<EngineState>, mut shutdown: Shutdown, _lifeline: Lifeline) {
    let mut announced = shared.functions.generation();
    loop {
        if shared.functions.generation() == announced {
            tokio::select! {
                biased;
                _ = shutdown.wait() => return,
                _ = shared.functions.changed.notified() => continue,
            }
        }
        tokio::select! {
            biased;
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(COALESCE) => {}
        }
        announced = shared.functions.generation();
        announce(&shared).await;
    }
}

async fn announce(shared: &EngineState) {
    let subscribers = shared.triggers.of_type(TRIGGER_FUNCTIONS_AVAILABLE);
    if subscribers.is_empty() {
        return;
    }
    let functions = discovery::function_summaries(shared);
    // Replicas register the same trigger: it fires once, at one of them.
    let mut announced = std::collections::HashSet::new();
    for (trigger_id, trigger) in subscribers {
        if !announced.insert(trigger_id.clone()) {
            continue;
        }
        let Some(owner) = shared.functions.lookup(&trigger.function_id) else {
            tracing::debug!(%trigger_id, function_id = %trigger.function_id, "functions-available: its function is not registered");
            continue;
        };
        let call = Call {
            function_id: trigger.function_id.clone(),
            data: json!({"event": EVENT_FUNCTIONS_CHANGED, "functions": functions}),
            metadata: trigger.metadata.clone(),
            trace: Default::default(),
        };
        // Nobody waits for the answer; offered, not awaited.
        forward(shared, owner, call, None, Pace::Offer).await;
    }
}
