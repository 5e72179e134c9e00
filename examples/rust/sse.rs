//! The channel guide's (docs/ARCHITECTURE.md, Examples) server-sent events example in Rust: `events::stream` answers
//! `GET /events/stream` with five `progress` events, one per interval, then a `done` event,
//! each reaching the client as soon as it is written.
//!
//! Run it against a running engine (default `ws://localhost:49134`; set `III_URL` otherwise):
//!
//! ```sh
//! cargo run -p iii-engine --bin iii &
//! cargo run -p iii-sdk --example sse
//! curl -N http://localhost:3111/events/stream
//! ```
//!
//! `III_SSE_INTERVAL_MS` sets the pause between events (default 1000). It prints
//! `sse worker ready: …` once the engine has its route, and serves until Ctrl-C.

use std::time::Duration;

use iii_sdk::{
    HttpRequest, HttpResponse, III, IIIError, RegisterFunction, RegisterTrigger, http,
    register_worker,
};
use serde_json::json;

/// How many `progress` events come before `done`.
const STEPS: u32 = 5;

/// Registers `events::stream` and its route, pausing `interval` after each progress event.
pub fn register_sse(iii: &III, interval: Duration) -> Result<(), IIIError> {
    iii.register_function(RegisterFunction::new_async(
        "events::stream",
        http(move |_req: HttpRequest, res: HttpResponse| async move {
            res.status(200).await?;
            res.headers([
                ("content-type", "text/event-stream"),
                ("cache-control", "no-cache"),
                ("connection", "keep-alive"),
            ])
            .await?;
            for step in 1..=STEPS {
                let data = json!({"step": step, "total": STEPS});
                let event = format!("id: {step}\nevent: progress\ndata: {data}\n\n");
                res.write(event.as_bytes()).await?;
                tokio::time::sleep(interval).await;
            }
            let data = json!({"message": "complete"});
            let done = format!("id: {}\nevent: done\ndata: {data}\n\n", STEPS + 1);
            res.write(done.as_bytes()).await?;
            res.close().await
        }),
    ));
    iii.register_trigger(RegisterTrigger::http(
        "events::stream",
        "/events/stream",
        "GET",
    ))?;
    Ok(())
}

#[cfg_attr(test, allow(dead_code))] // the tests may include this file as a module
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("III_URL").unwrap_or_else(|_| "ws://localhost:49134".into());
    let interval_ms = match std::env::var("III_SSE_INTERVAL_MS") {
        Ok(text) => text
            .parse()
            .map_err(|error| format!("III_SSE_INTERVAL_MS={text:?}: {error}"))?,
        Err(_) => 1000,
    };
    let iii = register_worker(&url);
    register_sse(&iii, Duration::from_millis(interval_ms))?;
    iii.ready().await?;
    println!("sse worker ready: GET http://localhost:3111/events/stream");
    tokio::signal::ctrl_c().await?;
    iii.shutdown();
    Ok(())
}
