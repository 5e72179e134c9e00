//! The SDK awaited outside any tokio runtime, as Python, Node and C bindings will do: a bare
//! `block_on` on plain threads must be enough for calls, timeouts and channel streams.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::time::{Duration, Instant};

use iii_sdk::{ErrorKind, RegisterFunction, TriggerRequest};
use serde_json::{Value, json};

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: polls on this thread, parks until woken, gives up after `limit`.
fn block_on<F: Future>(limit: Duration, future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut context = Context::from_waker(&waker);
    let deadline = Instant::now() + limit;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out after {limit:?}");
        std::thread::park_timeout(left);
    }
}

#[test]
fn works_without_a_tokio_runtime() {
    // The engine gets its own runtime; the SDK calls below run on plain threads.
    let engine_runtime = tokio::runtime::Runtime::new().expect("runtime");
    let engine = engine_runtime.block_on(common::engine());
    let url = engine.ws_url();
    assert!(tokio::runtime::Handle::try_current().is_err());
    let limit = Duration::from_secs(20);

    let iii = iii_sdk::register_worker(&url);
    iii.register_function(RegisterFunction::new_async(
        "plain::slow",
        |_: Value| async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(Value::Null)
        },
    ));
    block_on(limit, iii.ready()).expect("ready");

    let request = TriggerRequest::new("plain::slow", Value::Null).with_timeout_ms(100);
    let error = block_on(limit, iii.trigger(request)).expect_err("times out");
    assert_eq!(error.kind(), ErrorKind::Timeout);

    let channel = block_on(limit, iii.create_channel(Some(2))).expect("channel");
    let writer = channel.writer;
    let writing = std::thread::spawn(move || {
        block_on(Duration::from_secs(20), async {
            for i in 0..64u8 {
                writer.send_message(&format!("{i}")).await?;
                writer.write(&[i; 50_000]).await?;
            }
            writer.close().await
        })
    });
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    block_on(
        limit,
        channel.reader.on_message(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }),
    );
    let data = block_on(limit, channel.reader.read_all()).expect("read");
    writing.join().expect("writer thread").expect("written");
    assert_eq!(data.len(), 64 * 50_000);
    assert!(
        data.chunks(50_000)
            .enumerate()
            .all(|(i, c)| c.iter().all(|b| *b == i as u8))
    );
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 64);
    assert_eq!(
        block_on(
            limit,
            iii.trigger(TriggerRequest::void("plain::slow", json!({})))
        )
        .ok(),
        Some(Value::Null)
    );

    iii.shutdown();
    engine_runtime.block_on(engine.shutdown());
}

/// Called from inside a tokio runtime, the SDK lives on that runtime: everything works on a
/// single-threaded one, where nothing but the caller's own `block_on` drives the sockets.
#[test]
fn lives_on_the_callers_current_thread_runtime() {
    let engine_runtime = tokio::runtime::Runtime::new().expect("runtime");
    let engine = engine_runtime.block_on(common::engine());
    let url = engine.ws_url();
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = caller.block_on(async {
        let iii = iii_sdk::register_worker(&url);
        iii.register_function(RegisterFunction::new_async(
            "home::echo",
            |input: Value| async move {
                let thread = std::thread::current().name().map(str::to_owned);
                Ok(json!({ "input": input, "thread": thread }))
            },
        ));
        common::within(20, iii.ready()).await.expect("ready");
        let answer = common::within(20, iii.trigger(TriggerRequest::new("home::echo", json!(7))))
            .await
            .expect("answer");
        let channel = iii.create_channel(None).await.expect("channel");
        let write = async {
            channel.writer.write(b"on the caller's thread").await?;
            channel.writer.close().await
        };
        let (written, read) = tokio::join!(write, channel.reader.read_all());
        written.expect("written");
        iii.shutdown();
        (answer, read.expect("read"))
    });
    let (answer, data) = outcome;
    assert_eq!(answer["input"], json!(7));
    assert_ne!(
        answer["thread"],
        json!("iii-sdk"),
        "the handler ran on the SDK's runtime"
    );
    assert_eq!(data, b"on the caller's thread");
}
