//! A write that waits because no reader was started is reported once, after a few seconds,
//! naming the channel: the mistake that otherwise hangs silently.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// Log output kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// One thread: the write is polled here, where the capturing logger is the default.
#[tokio::test(flavor = "current_thread")]
async fn a_write_stalled_without_a_reader_warns_once_naming_the_channel() {
    let engine = engine().await;
    let channel = within(10, worker(&engine).create_channel(None))
        .await
        .expect("channel");
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    // More than the buffer (64 frames of 64 KiB) and the sockets hold, and no reader.
    let data = vec![7u8; 64 * 1024 * 1024];
    let waited = tokio::time::timeout(Duration::from_secs(7), channel.writer.write(&data)).await;
    assert!(
        waited.is_err(),
        "the write finished without a reader: {waited:?}"
    );
    let text = logs.text();
    assert_eq!(
        text.matches("waited 5 s for its reader").count(),
        1,
        "{text}"
    );
    assert!(text.contains(&channel.writer_ref.channel_id), "{text}");
    assert!(text.contains("WARN"), "{text}");
    engine.shutdown().await;
}
