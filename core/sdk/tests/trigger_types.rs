//! A worker that provides a trigger type: the triggers other workers register of that type
//! reach its handler (with their config and metadata) and are withdrawn through it; the
//! engine lists the type under the provider.

mod common;

use std::sync::Arc;

use common::*;
use iii_sdk::function::Handler;
use iii_sdk::{IIIError, RegisterFunction, RegisterTrigger, RegisterTriggerType, TriggerRequest};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread")]
async fn triggers_of_a_provided_type_reach_its_handler() {
    let engine = engine().await;
    let provider = worker(&engine);
    let (seen, mut handled) = mpsc::unbounded_channel::<Value>();
    let handler: Handler = Arc::new(move |input: Value| {
        let seen = seen.clone();
        Box::pin(async move {
            if input["trigger"]["config"]["fail"] == true {
                return Err(IIIError::Handler("bad schedule".into()));
            }
            let _ = seen.send(input);
            Ok(Value::Null)
        })
    });
    let provided = provider
        .register_trigger_type(
            RegisterTriggerType::new("cron", handler).with_description("every so often"),
        )
        .expect("registered");
    ready(&provider).await;

    let user = worker(&engine);
    user.register_function(RegisterFunction::new_async(
        "jobs::run",
        |input: Value| async move { Ok::<Value, IIIError>(input) },
    ));
    let trigger = user
        .register_trigger(
            RegisterTrigger::new("cron", "jobs::run", json!({"every": "1m"}))
                .with_metadata(json!({"k": 1})),
        )
        .expect("trigger");
    let registered = within(10, handled.recv()).await.expect("registered");
    assert_eq!(registered["op"], "register");
    assert_eq!(registered["trigger"]["function_id"], "jobs::run");
    assert_eq!(registered["trigger"]["config"], json!({"every": "1m"}));
    assert_eq!(registered["trigger"]["metadata"], json!({"k": 1}));
    assert_eq!(registered["trigger"]["id"], trigger.id());

    let listed = within(
        10,
        user.trigger(TriggerRequest::new(
            "engine::triggers::info",
            json!({"id": "cron"}),
        )),
    )
    .await
    .expect("info");
    assert_eq!(listed["description"], "every so often");
    assert_eq!(listed["instance_count"], 1);

    trigger.unregister();
    let withdrawn = within(10, handled.recv()).await.expect("withdrawn");
    assert_eq!(withdrawn["op"], "unregister");
    assert_eq!(withdrawn["trigger"]["id"], trigger.id());

    // A handler that fails a registration leaves the trigger unfired and says so in the log.
    let _failing = user
        .register_trigger(RegisterTrigger::new(
            "cron",
            "jobs::run",
            json!({"fail": true}),
        ))
        .expect("trigger");
    provided.unregister();
    user.shutdown();
    provider.shutdown();
    engine.shutdown().await;
}
