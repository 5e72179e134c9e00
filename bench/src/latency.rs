//! Round trips, each beside what bounds it:
//! - text messages: this process sends a message on one channel, an echo process sends it back
//!   on a second channel; two WebSocket hops each way, through the engine. Its ceiling is the
//!   same hops through a plain relay process ([`crate::plain_echo`]).
//! - `trigger()`: this process calls a no-op function served by a second process through the
//!   engine — what the bindings' round trips are measured against (`bench/roundtrip`): no
//!   binding can do better than the Rust SDK on both ends.

use crate::Row;
use crate::procs::{ChildProc, EngineProc};
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Warm-up round trips before timing.
const WARMUP: usize = 200;
/// The function the trigger benchmark calls.
pub const NOOP_FUNCTION: &str = "bench::noop";

/// Round-trip percentiles in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct RoundTrips {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// How many round trips were timed.
    pub count: usize,
}

/// Runs `timing` on a single-threaded runtime of its own thread, whatever runtime calls this:
/// the timed side of every round trip is single-threaded, like its peers.
async fn single_threaded<F, Fut>(timing: F) -> Result<RoundTrips, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<RoundTrips, String>>,
{
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let outcome = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))
            .and_then(|runtime| runtime.block_on(timing()));
        let _ = done.send(outcome);
    });
    result
        .await
        .map_err(|_| "the timing thread failed".to_string())?
}

/// Times `count` round trips after a short warm-up.
pub async fn message_round_trips(count: usize) -> Result<RoundTrips, String> {
    single_threaded(move || timed_message_round_trips(count)).await
}

async fn timed_message_round_trips(count: usize) -> Result<RoundTrips, String> {
    let engine = EngineProc::start(60).await?;
    let iii = iii_sdk::register_worker(&engine.url);
    let there = iii.create_channel(None).await.map_err(|e| e.to_string())?;
    let back = iii.create_channel(None).await.map_err(|e| e.to_string())?;
    let mut echo = ChildProc::spawn(&[
        "echo".into(),
        "--url".into(),
        engine.url.clone(),
        "--reader-ref".into(),
        serde_json::to_string(&there.reader_ref).map_err(|e| e.to_string())?,
        "--writer-ref".into(),
        serde_json::to_string(&back.writer_ref).map_err(|e| e.to_string())?,
    ])?;
    echo.line(Duration::from_secs(30)).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    back.reader
        .on_message(move |text| {
            let _ = tx.send(text);
        })
        .await;
    let mut samples = Vec::with_capacity(count);
    for i in 0..WARMUP + count {
        let text = format!("{{\"seq\":{i}}}");
        let started = Instant::now();
        there
            .writer
            .send_message(&text)
            .await
            .map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .map_err(|_| "echo timed out")?
            .ok_or("echo channel ended")?;
        if answer != text {
            return Err(format!("echo returned {answer}, sent {text}"));
        }
        if i >= WARMUP {
            samples.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    there
        .writer
        .send_message("STOP")
        .await
        .map_err(|e| e.to_string())?;
    let _ = tokio::time::timeout(Duration::from_secs(10), echo.child.wait()).await;
    iii.shutdown();
    Ok(percentiles(samples))
}

/// The ceiling of [`message_round_trips`]: the same four hops through a plain relay.
pub async fn plain_round_trips(count: usize) -> Result<RoundTrips, String> {
    single_threaded(move || timed_plain_round_trips(count)).await
}

async fn timed_plain_round_trips(count: usize) -> Result<RoundTrips, String> {
    let mut relay = ChildProc::spawn(&["plain-relay".into()])?;
    let line = relay.line(Duration::from_secs(30)).await?;
    let port = line
        .strip_prefix("READY ")
        .ok_or_else(|| format!("unexpected relay output: {line}"))?;
    let url = format!("ws://127.0.0.1:{port}");
    let mut echo = ChildProc::spawn(&["plain-echo".into(), "--url".into(), url.clone()])?;
    expect_line(&mut echo, "READY").await?;
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut samples = Vec::with_capacity(count);
    for i in 0..WARMUP + count {
        let text = format!("{{\"seq\":{i}}}");
        let started = Instant::now();
        socket
            .send(Message::Text(text.clone().into()))
            .await
            .map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .map_err(|_| "plain echo timed out")?
            .ok_or("the relay closed")?
            .map_err(|e| e.to_string())?;
        if answer.to_text().ok() != Some(text.as_str()) {
            return Err(format!("plain echo returned {answer:?}, sent {text}"));
        }
        if i >= WARMUP {
            samples.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    socket
        .send(Message::Text("STOP".into()))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tokio::time::timeout(Duration::from_secs(10), echo.child.wait()).await;
    Ok(percentiles(samples))
}

/// Times `count` `trigger()` calls of a no-op in another process, one after another.
pub async fn trigger_round_trips(count: usize) -> Result<RoundTrips, String> {
    single_threaded(move || timed_trigger_round_trips(count)).await
}

async fn timed_trigger_round_trips(count: usize) -> Result<RoundTrips, String> {
    let engine = EngineProc::start(60).await?;
    timed_trigger_round_trips_on(engine.url.clone(), engine.url.clone(), count).await
}

/// [`trigger_round_trips`] through the engine at `url`.
pub async fn trigger_round_trips_on(url: String, count: usize) -> Result<RoundTrips, String> {
    single_threaded(move || timed_trigger_round_trips_on(url.clone(), url, count)).await
}

/// [`trigger_round_trips`] with the handler attached to the engine at `handler` and the
/// caller to the one at `caller` (two nodes of a cluster).
pub async fn trigger_round_trips_across(
    handler: String,
    caller: String,
    count: usize,
) -> Result<RoundTrips, String> {
    single_threaded(move || timed_trigger_round_trips_on(handler, caller, count)).await
}

async fn timed_trigger_round_trips_on(
    handler_url: String,
    url: String,
    count: usize,
) -> Result<RoundTrips, String> {
    let mut handler = ChildProc::spawn(&["trigger-handler".into(), "--url".into(), handler_url])?;
    expect_line(&mut handler, "READY").await?;
    let iii = iii_sdk::register_worker(&url);
    let request = || iii_sdk::TriggerRequest::new(NOOP_FUNCTION, serde_json::json!({"n": 1}));
    // Another node of a cluster learns of the registration a moment after the handler's own.
    let callable = Instant::now() + Duration::from_secs(10);
    while iii.trigger(request()).await.is_err() {
        if Instant::now() > callable {
            return Err("the no-op never became callable".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut samples = Vec::with_capacity(count);
    for i in 0..WARMUP + count {
        let started = Instant::now();
        let call = tokio::time::timeout(Duration::from_secs(10), iii.trigger(request()));
        call.await
            .map_err(|_| "trigger timed out")?
            .map_err(|e| e.to_string())?;
        if i >= WARMUP {
            samples.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    iii.shutdown();
    Ok(percentiles(samples))
}

/// Serves [`NOOP_FUNCTION`] (returns its input) on the engine at `url`; prints `READY` once
/// the engine has the registration, then serves until killed.
pub async fn trigger_handler(url: &str) -> Result<(), String> {
    let iii = iii_sdk::register_worker(url);
    iii.register_function(iii_sdk::RegisterFunction::new_async(
        NOOP_FUNCTION,
        |input| async move { Ok(input) },
    ));
    serve_until_killed(&iii).await
}

/// Waits until `iii`'s registrations reached the engine, prints `READY` (what the parent
/// waits for), and serves until the process is killed.
pub async fn serve_until_killed(iii: &iii_sdk::III) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(30), iii.ready())
        .await
        .map_err(|_| "the engine did not answer")?
        .map_err(|e| e.to_string())?;
    println!("READY");
    std::future::pending::<()>().await;
    Ok(())
}

/// Waits for `child` to print `expected`.
pub async fn expect_line(child: &mut ChildProc, expected: &str) -> Result<(), String> {
    let line = child.line(Duration::from_secs(120)).await?;
    if line == expected {
        Ok(())
    } else {
        Err(format!(
            "expected {expected:?} from a child process, got {line:?}"
        ))
    }
}

/// p50 and p99 of `samples` (at least one: every benchmark times one or more).
fn percentiles(mut samples: Vec<f64>) -> RoundTrips {
    if samples.is_empty() {
        samples.push(f64::NAN);
    }
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    RoundTrips {
        p50_us: pick(0.50),
        p99_us: pick(0.99),
        count: samples.len(),
    }
}

/// Measures and prints the three round trips; returns the summary rows.
pub async fn report(count: usize) -> Result<Vec<Row>, String> {
    let plain = plain_round_trips(count).await?;
    println!(
        "ceiling (plain WebSocket echo through a relay, two hops each way, {} trips): p50 {:.0} µs, p99 {:.0} µs",
        plain.count, plain.p50_us, plain.p99_us
    );
    let trips = message_round_trips(count).await?;
    let ratio = trips.p50_us / plain.p50_us;
    println!(
        "message round trip ({} trips): p50 {:.0} µs, p99 {:.0} µs = {ratio:.2} × the ceiling at p50",
        trips.count, trips.p50_us, trips.p99_us
    );
    let calls = trigger_round_trips(count).await?;
    println!(
        "trigger() round trip, Rust SDK on both ends ({} calls): p50 {:.0} µs, p99 {:.0} µs",
        calls.count, calls.p50_us, calls.p99_us
    );
    Ok(vec![
        (
            "plain WebSocket echo through a relay (ceiling)".into(),
            format!("p50 {:.0} µs, p99 {:.0} µs", plain.p50_us, plain.p99_us),
            "—".into(),
        ),
        (
            "text message round trip".into(),
            format!(
                "p50 {:.0} µs, p99 {:.0} µs ({ratio:.2} × the ceiling)",
                trips.p50_us, trips.p99_us
            ),
            "≤ 2 × the ceiling".into(),
        ),
        (
            "trigger() round trip, Rust SDK both ends".into(),
            format!("p50 {:.0} µs, p99 {:.0} µs", calls.p50_us, calls.p99_us),
            "—".into(),
        ),
    ])
}
