//! What workers can learn from the engine and the trigger types they can name: the listing
//! built-ins, `engine::functions-available`, trigger types provided by workers (their
//! triggers forwarded to the provider), and a trigger of a type nobody provides refused.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// Calls `function_id` with `data` through `worker` and returns the answer message.
async fn ask(worker: &mut Worker, function_id: &str, data: Value) -> Value {
    let id = worker.call(function_id, data).await;
    let answer = worker.recv().await;
    assert_eq!(answer["invocation_id"], id.as_str(), "{answer}");
    answer
}

/// A worker that named itself `name` and registered `functions` (id, description).
async fn named_worker(
    engine: &iii_engine::Engine,
    name: &str,
    functions: &[(&str, &str)],
) -> Worker {
    let mut worker = worker(engine).await;
    worker
        .send(
            json!({"type": "invokefunction", "function_id": "engine::workers::register",
                     "data": {"name": name, "runtime": "node", "version": "1.2.3", "pid": 7},
                     "action": {"type": "void"}}),
        )
        .await;
    for (id, description) in functions {
        worker
            .send(
                json!({"type": "registerfunction", "id": id, "description": description,
                         "metadata": {"team": "reports"}, "request_format": {"type": "object"}}),
            )
            .await;
    }
    worker.sync().await;
    worker
}

#[tokio::test(flavor = "multi_thread")]
async fn functions_and_workers_are_listed_with_what_they_registered() {
    let engine = engine().await;
    let _owner = named_worker(
        &engine,
        "reports",
        &[
            ("reports::build", "Builds a report"),
            ("reports::mail", "Mails it"),
        ],
    )
    .await;
    let mut asker = named_worker(&engine, "asker", &[]).await;

    let listed = ask(&mut asker, "engine::functions::list", json!({})).await;
    let functions = listed["result"]["functions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(functions.len(), 2, "{listed}");
    assert_eq!(functions[0]["function_id"], "reports::build");
    assert_eq!(functions[0]["worker_name"], "reports");
    assert_eq!(functions[0]["description"], "Builds a report");
    assert_eq!(functions[0]["metadata"], json!({"team": "reports"}));

    let searched = ask(
        &mut asker,
        "engine::functions::list",
        json!({"search": "MAIL"}),
    )
    .await;
    assert_eq!(
        searched["result"]["functions"].as_array().map(Vec::len),
        Some(1)
    );
    let internal = ask(
        &mut asker,
        "engine::functions::list",
        json!({"include_internal": true}),
    )
    .await;
    let ids: Vec<&str> = (internal["result"]["functions"]
        .as_array()
        .into_iter()
        .flatten())
    .filter_map(|f| f["function_id"].as_str())
    .collect();
    assert!(ids.contains(&"engine::channels::create"), "{ids:?}");

    let info = ask(
        &mut asker,
        "engine::functions::info",
        json!({"function_id": "reports::build"}),
    )
    .await;
    assert_eq!(
        info["result"]["request_schema"],
        json!({"type": "object"}),
        "{info}"
    );
    let missing = ask(
        &mut asker,
        "engine::functions::info",
        json!({"function_id": "nope"}),
    )
    .await;
    assert_eq!(missing["error"]["code"], "NOT_FOUND", "{missing}");

    let workers = ask(&mut asker, "engine::workers::list", json!({})).await;
    let workers = workers["result"]["workers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let reports = workers
        .iter()
        .find(|w| w["name"] == "reports")
        .cloned()
        .unwrap_or_default();
    assert_eq!(reports["function_count"], 2, "{workers:?}");
    assert_eq!(reports["runtime"], "node");
    assert_eq!(reports["status"], "connected");
    let detail = ask(
        &mut asker,
        "engine::workers::info",
        json!({"name": "reports"}),
    )
    .await;
    assert_eq!(
        detail["result"]["functions"].as_array().map(Vec::len),
        Some(2),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trigger_of_a_type_nobody_provides_is_refused() {
    let engine = engine().await;
    let mut worker = worker(&engine).await;
    worker
        .send(
            json!({"type": "registertrigger", "id": "t1", "trigger_type": "cron",
                     "function_id": "jobs::run", "config": {"every": "1m"}}),
        )
        .await;
    let refusal = worker.recv().await;
    assert_eq!(refusal["type"], "triggerregistrationresult", "{refusal}");
    assert_eq!(refusal["id"], "t1");
    assert_eq!(refusal["error"]["code"], "trigger_type_not_found");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("cron")
    );
    let listed = ask(&mut worker, "engine::registered-triggers::list", json!({})).await;
    assert_eq!(listed["result"]["registered_triggers"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn triggers_of_a_worker_provided_type_go_to_the_provider() {
    let engine = engine().await;
    let mut provider = named_worker(&engine, "scheduler", &[]).await;
    provider
        .send(json!({"type": "registertriggertype", "id": "cron", "description": "every so often"}))
        .await;
    provider.sync().await;
    let mut user = named_worker(&engine, "jobs", &[("jobs::run", "Runs a job")]).await;
    user.send(
        json!({"type": "registertrigger", "id": "t1", "trigger_type": "cron",
                     "function_id": "jobs::run", "config": {"every": "1m"}, "metadata": {"k": 1}}),
    )
    .await;
    let forwarded = provider.recv().await;
    assert_eq!(forwarded["type"], "registertrigger", "{forwarded}");
    assert_eq!(forwarded["id"], "t1");
    assert_eq!(forwarded["function_id"], "jobs::run");
    assert_eq!(forwarded["config"], json!({"every": "1m"}));

    let types = ask(&mut user, "engine::triggers::list", json!({})).await;
    let ids: Vec<&str> = (types["result"]["triggers"].as_array().into_iter().flatten())
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["http", "cron"], "{types}");
    let info = ask(&mut user, "engine::triggers::info", json!({"id": "cron"})).await;
    assert_eq!(info["result"]["instance_count"], 1, "{info}");
    assert_eq!(info["result"]["worker_name"], "scheduler");
    let registered = ask(
        &mut user,
        "engine::registered-triggers::info",
        json!({"id": "t1"}),
    )
    .await;
    assert_eq!(
        registered["result"]["function"]["function_id"], "jobs::run",
        "{registered}"
    );
    assert_eq!(registered["result"]["metadata"], json!({"k": 1}));

    // Withdrawn explicitly, then by the registering worker going away.
    user.send(json!({"type": "unregistertrigger", "id": "t1"}))
        .await;
    let withdrawn = provider.recv().await;
    assert_eq!(withdrawn["type"], "unregistertrigger", "{withdrawn}");
    assert_eq!(withdrawn["id"], "t1");
    user.send(
        json!({"type": "registertrigger", "id": "t2", "trigger_type": "cron",
                     "function_id": "jobs::run", "config": {}}),
    )
    .await;
    assert_eq!(provider.recv().await["id"], "t2");
    drop(user);
    let gone = provider.recv().await;
    assert_eq!(gone["type"], "unregistertrigger", "{gone}");
    assert_eq!(gone["id"], "t2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_provider_of_a_type_receives_the_triggers_already_registered() {
    let engine = engine().await;
    let mut first = worker(&engine).await;
    first
        .send(json!({"type": "registertriggertype", "id": "queue"}))
        .await;
    first.sync().await;
    let mut user = worker(&engine).await;
    user.send(
        json!({"type": "registertrigger", "id": "q1", "trigger_type": "queue",
                     "function_id": "jobs::run", "config": {"queue": "a"}}),
    )
    .await;
    assert_eq!(first.recv().await["id"], "q1");
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = worker(&engine).await;
    second
        .send(json!({"type": "registertriggertype", "id": "queue"}))
        .await;
    let handed_over = second.recv().await;
    assert_eq!(handed_over["type"], "registertrigger", "{handed_over}");
    assert_eq!(handed_over["id"], "q1");
}

#[tokio::test(flavor = "multi_thread")]
async fn functions_available_announces_changes_to_the_bound_function() {
    let engine = engine().await;
    let mut watcher = named_worker(&engine, "watcher", &[("watch::changed", "")]).await;
    watcher
        .send(json!({"type": "registertrigger", "id": "w1", "trigger_type": "engine::functions-available",
                     "function_id": "watch::changed", "config": {}}))
        .await;
    watcher.sync().await;
    // The watcher's own registration may be announced first; then nothing until a change.
    while !silent_for(&mut watcher.ws, Duration::from_millis(400)).await {}
    let _other = named_worker(
        &engine,
        "reports",
        &[
            ("reports::build", "Builds a report"),
            ("reports::mail", "Mails it"),
        ],
    )
    .await;
    let event = watcher.recv().await;
    assert_eq!(event["type"], "invokefunction", "{event}");
    assert_eq!(event["function_id"], "watch::changed");
    assert_eq!(event["data"]["event"], "functions_changed");
    let ids: Vec<&str> = (event["data"]["functions"].as_array().into_iter().flatten())
        .filter_map(|f| f["function_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["reports::build", "reports::mail", "watch::changed"],
        "{event}"
    );
    // Both registrations came in one event.
    assert!(silent_for(&mut watcher.ws, Duration::from_millis(300)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_type_a_connected_worker_provides_is_not_taken_over() {
    let engine = engine().await;
    let mut first = worker(&engine).await;
    first
        .send(json!({"type": "registertriggertype", "id": "cron"}))
        .await;
    first.sync().await;
    let mut second = worker(&engine).await;
    second
        .send(json!({"type": "registertriggertype", "id": "cron"}))
        .await;
    second.sync().await;
    let mut user = worker(&engine).await;
    user.send(
        json!({"type": "registertrigger", "id": "c1", "trigger_type": "cron",
                     "function_id": "jobs::run", "config": {}}),
    )
    .await;
    assert_eq!(first.recv().await["id"], "c1");
    assert!(silent_for(&mut second.ws, Duration::from_millis(200)).await);
    let info = ask(&mut user, "engine::triggers::info", json!({"id": "cron"})).await;
    assert_eq!(
        info["result"]["worker_name"],
        first.worker_id.as_str(),
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_functions_available_trigger_of_replicas_fires_once() {
    let engine = engine().await;
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let mut replica = named_worker(&engine, "watcher", &[("watch::changed", "")]).await;
        replica
            .send(json!({"type": "registertrigger", "id": "w1", "trigger_type": "engine::functions-available",
                         "function_id": "watch::changed", "config": {}}))
            .await;
        replica.sync().await;
        replicas.push(replica);
    }
    for replica in &mut replicas {
        while !silent_for(&mut replica.ws, Duration::from_millis(400)).await {}
    }
    let _other = named_worker(&engine, "reports", &[("reports::build", "")]).await;
    let mut events = 0;
    for replica in &mut replicas {
        while !silent_for(&mut replica.ws, Duration::from_millis(400)).await {
            events += 1;
        }
    }
    assert_eq!(events, 1, "one announcement per change, at one replica");
}
