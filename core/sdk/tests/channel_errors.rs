//! Channel ends that do not finish cleanly must say so: aborts, lost writers (dropped, or in a
//! killed process), readers that go away, wrong keys, a second reader, and expiry. None of them
//! may look like a clean end of the stream.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use iii_engine::EngineConfig;
use iii_sdk::{ChannelDirection, ChannelReader, ChannelWriter, IIIError, StreamChannelRef};

/// Reads until the stream ends; returns the bytes read and how it ended.
async fn drain(reader: &ChannelReader) -> (usize, Result<(), IIIError>) {
    let mut len = 0;
    loop {
        match reader.next_binary().await {
            Ok(Some(chunk)) => len += chunk.len(),
            Ok(None) => return (len, Ok(())),
            Err(error) => return (len, Err(error)),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_reaches_the_reader_with_its_reason() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    within(10, channel.writer.write(&data(1, 100_000)))
        .await
        .expect("write");
    within(10, channel.writer.abort("why"))
        .await
        .expect("abort");
    let (len, end) = within(10, drain(&channel.reader)).await;
    assert_eq!(len, 100_000);
    assert!(
        matches!(end, Err(IIIError::ChannelAborted(ref r)) if r == "why"),
        "{end:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_writer_is_writer_lost() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    within(10, channel.writer.write(&data(2, 100_000)))
        .await
        .expect("write");
    drop(channel.writer);
    let (_, end) = within(10, drain(&channel.reader)).await;
    assert!(matches!(end, Err(IIIError::WriterLost)), "{end:?}");
    engine.shutdown().await;
}

const CHILD_ENV: &str = "III_SDK_TEST_CHILD_WRITER";

/// The writer side of [`killed_writer_process_is_an_error`], run in a child process: writes
/// until it is killed.
async fn child_writer(spec: &str) {
    let (url, channel_ref) = spec.split_once(' ').expect("url and ref");
    let channel_ref: StreamChannelRef = serde_json::from_str(channel_ref).expect("ref");
    let writer = ChannelWriter::new(url, &channel_ref);
    let chunk = data(3, 64 * 1024);
    for _ in 0..10_000 {
        writer.write(&chunk).await.expect("child write");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the child writer was not killed");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_writer_process_is_an_error() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return child_writer(&spec).await;
    }
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let spec = format!(
        "{} {}",
        engine.ws_url(),
        serde_json::to_string(&channel.writer_ref).expect("json")
    );
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "killed_writer_process_is_an_error",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("child starts");

    let mut received = 0;
    while received < 256 * 1024 {
        let chunk = within(30, channel.reader.next_binary()).await;
        received += chunk.expect("data").expect("not the end").len();
    }
    child.kill().expect("kill");
    child.wait().expect("reaped");
    let (_, end) = within(10, drain(&channel.reader)).await;
    assert!(matches!(end, Err(IIIError::WriterLost)), "{end:?}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_fail_soon_after_the_reader_is_gone() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(Some(4)))
        .await
        .expect("channel");
    let chunk = data(4, 64 * 1024);
    within(10, channel.writer.write(&chunk))
        .await
        .expect("write");
    within(10, channel.reader.next_binary())
        .await
        .expect("read")
        .expect("data");
    within(10, channel.reader.close()).await;
    assert!(matches!(
        channel.reader.next_binary().await,
        Err(IIIError::ReaderClosed)
    ));

    let failed = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if let Err(error) = channel.writer.write(&chunk).await {
                return error;
            }
        }
    })
    .await
    .expect("a write failed within a second");
    assert!(matches!(failed, IIIError::ReaderClosed), "{failed:?}");
    assert!(matches!(
        channel.writer.close().await,
        Err(IIIError::ReaderClosed)
    ));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_a_reader_cancels_a_pending_read() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = std::sync::Arc::new(within(10, iii.create_channel(None)).await.expect("ch"));
    let waiting = channel.clone();
    let read = tokio::spawn(async move { waiting.reader.next_binary().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    within(5, channel.reader.close()).await;
    let result = within(5, read).await.expect("join");
    assert!(matches!(result, Err(IIIError::ReaderClosed)), "{result:?}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_keys_cannot_connect() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    let address = iii.address();

    let wrong = StreamChannelRef {
        access_key: "wrong".into(),
        ..channel.reader_ref.clone()
    };
    let end = within(10, ChannelReader::new(address, &wrong).next_binary()).await;
    assert!(matches!(end, Err(IIIError::ChannelConnect(_))), "{end:?}");

    // The reader's key does not open the writing end.
    let forged = StreamChannelRef {
        direction: ChannelDirection::Write,
        ..channel.reader_ref.clone()
    };
    let writer = ChannelWriter::new(address, &forged);
    let outcome = async { writer.write(b"injected").await.and(writer.close().await) };
    let end = within(10, outcome).await;
    assert!(matches!(end, Err(IIIError::ChannelConnect(_))), "{end:?}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_reader_is_refused() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    within(10, channel.writer.write(b"first"))
        .await
        .expect("write");
    let first = within(10, channel.reader.next_binary())
        .await
        .expect("read");
    assert_eq!(first.as_deref(), Some(&b"first"[..]));
    let second = ChannelReader::new(iii.address(), &channel.reader_ref);
    let end = within(10, second.next_binary()).await;
    assert!(
        matches!(end, Err(IIIError::ChannelClosed { code: 4009, .. })),
        "{end:?}"
    );
    drop(channel); // an idle reader would make the engine wait for its close echo
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unconnected_channels_expire() {
    let engine = engine_with(EngineConfig {
        channel_ttl: Duration::from_millis(300),
        ..EngineConfig::ephemeral()
    })
    .await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    // The reader connects; the writer never does.
    let end = within(10, channel.reader.next_binary()).await;
    assert!(matches!(end, Err(IIIError::ChannelExpired)), "{end:?}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_writers_refuse_more_data_and_close_once() {
    let engine = engine().await;
    let iii = worker(&engine);
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    within(10, channel.writer.close()).await.expect("close");
    within(10, channel.writer.close())
        .await
        .expect("second close is a no-op");
    assert!(channel.writer.write(b"late").await.is_err());
    assert_eq!(
        within(10, channel.reader.read_all()).await.expect("end"),
        b""
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_stops_is_going_away_for_both_ends_and_for_calls_in_flight() {
    let engine = engine().await;
    let iii = worker(&engine);
    let owner = worker(&engine);
    owner.register_function(iii_sdk::RegisterFunction::new_async(
        "test::never",
        |_input: serde_json::Value| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(serde_json::Value::Null)
        },
    ));
    ready(&owner).await;
    let channel = within(10, iii.create_channel(None)).await.expect("channel");
    within(10, channel.writer.write(&data(3, 100_000)))
        .await
        .expect("write");
    let caller = iii.clone();
    let call = tokio::spawn(async move {
        caller
            .trigger(iii_sdk::TriggerRequest::new(
                "test::never",
                serde_json::json!({}),
            ))
            .await
    });
    // The reader is connected (ends connect lazily) and the call has reached its owner
    // before the engine stops.
    let first = within(10, channel.reader.next_binary()).await;
    let first = first.expect("first chunk").expect("data").len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    engine.shutdown().await;
    let (len, end) = within(10, drain(&channel.reader)).await;
    assert_eq!(
        first + len,
        100_000,
        "what was buffered before the stop arrives"
    );
    assert!(matches!(end, Err(IIIError::GoingAway)), "{end:?}");
    assert_eq!(
        end.err().map(|error| error.code().to_string()).as_deref(),
        Some("going_away")
    );
    let written = within(10, channel.writer.write(&data(4, 10))).await;
    assert!(matches!(written, Err(IIIError::GoingAway)), "{written:?}");
    let called = within(10, call).await.expect("call task");
    assert!(matches!(called, Err(IIIError::GoingAway)), "{called:?}");
}
