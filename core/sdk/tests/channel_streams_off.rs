//! By default (`III_CHANNEL_STREAMS` unset) every channel end opens a socket of its own, as it
//! does with an engine that serves no streams (its own test binary: the variable is
//! process-wide).

mod common;

use common::*;
use iii_sdk::channel::{STREAMS_ENV, streams_in_use};

#[test]
fn ends_open_sockets_unless_streams_are_turned_on() {
    // SAFETY: set before any other thread of this test process exists.
    unsafe { std::env::remove_var(STREAMS_ENV) };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let engine = engine().await;
        let iii = worker(&engine);
        ready(&iii).await;
        let channel = within(10, iii.create_channel(None)).await.expect("channel");
        let expected = data(3, 1 << 20);
        let payload = expected.clone();
        let writer = channel.writer;
        let writing = tokio::spawn(async move {
            writer.write(&payload).await?;
            writer.close().await
        });
        let first = within(10, channel.reader.next_binary())
            .await
            .expect("read")
            .expect("bytes");
        assert_eq!(streams_in_use(), 0, "no streams: sockets");
        let rest = within(10, channel.reader.read_all()).await.expect("read");
        within(10, writing).await.expect("join").expect("written");
        assert_eq!(first.len() + rest.len(), expected.len());
        iii.shutdown();
        engine.shutdown().await;
    });
}
