//! What a channel end talks over: its own WebSocket, or a stream inside the worker's main
//! socket (docs/PROTOCOL.md §4.8) when a worker of this process is connected to the same
//! engine and the engine serves streams. A stream saves each end a TCP connection, a
//! WebSocket handshake and a close exchange; both carry the same messages, so the reader and
//! writer drive either alike.

use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use futures_util::{Sink, Stream};
use iii_protocol::StreamChannelRef;
use iii_streams::{StreamSocket, StreamTable};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::IIIError;

/// The environment variable that turns channel streams on for this process (`1`). Off by
/// default: on this project's 2-core machine streams made channel setups 1.3–1.6 × faster but
/// Python's bulk throughput 0.7–0.9 × (BENCHMARKS.md), so they stay opt-in until their data
/// path is as cheap as a socket's.
pub const STREAMS_ENV: &str = "III_CHANNEL_STREAMS";

/// A connected channel end.
#[derive(Debug)]
pub(crate) enum ChannelSocket {
    /// Its own WebSocket (boxed: it is several times a stream's size).
    Socket(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
    /// A stream inside a worker's main socket.
    Stream(StreamSocket),
}

/// Where an end connects: the engine's address and the end's ref (and its socket URL).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The engine address the worker connected to.
    pub(crate) address: String,
    /// The end's ref.
    pub(crate) channel_ref: StreamChannelRef,
    /// The end's own socket URL.
    pub(crate) url: String,
}

impl Target {
    /// The end `channel_ref` on the engine at `address`.
    pub(crate) fn new(address: &str, channel_ref: &StreamChannelRef) -> Self {
        Self {
            address: address.to_string(),
            channel_ref: channel_ref.clone(),
            url: channel_ref.url(address),
        }
    }
}

/// How long opening a stream may wait for the engine's answer.
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Stream tables of this process's live worker connections, by engine address.
static TABLES: Mutex<Vec<(String, Weak<StreamTable>)>> = Mutex::new(Vec::new());

fn tables() -> std::sync::MutexGuard<'static, Vec<(String, Weak<StreamTable>)>> {
    crate::state::lock(&TABLES)
}

/// True when [`STREAMS_ENV`] is `1`, read once per process (every channel open asks).
pub(crate) fn streams_wanted() -> bool {
    static WANTED: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
        std::env::var(STREAMS_ENV).is_ok_and(|value| value.trim() == "1")
    });
    *WANTED
}

/// Offers `table` (a connection to the engine at `address` that serves streams) to the
/// channel ends of this process.
pub(crate) fn offer(address: &str, table: &Arc<StreamTable>) {
    let mut tables = tables();
    tables.retain(|(_, table)| table.strong_count() > 0);
    tables.push((address.to_string(), Arc::downgrade(table)));
}

/// Withdraws `table` (its connection ended).
pub(crate) fn withdraw(table: &Arc<StreamTable>) {
    tables().retain(|(_, offered)| {
        offered.strong_count() > 0 && !offered.ptr_eq(&Arc::downgrade(table))
    });
}

/// Channel ends of this process open as streams inside a worker connection now (the rest,
/// if any, have sockets of their own): shows whether channels are multiplexed.
pub fn streams_in_use() -> usize {
    tables()
        .iter()
        .filter_map(|(_, table)| table.upgrade())
        .map(|table| table.len())
        .sum()
}

/// A live connection to `address` that serves streams.
fn table_for(address: &str) -> Option<Arc<StreamTable>> {
    tables()
        .iter()
        .filter(|(offered, _)| offered == address)
        .filter_map(|(_, table)| table.upgrade())
        .find(|table| !table.is_gone())
}

/// Opens `target` as a stream when a connection to its engine serves them. `None` means no
/// such connection (or it ended while opening): open a socket instead.
pub(crate) async fn open_stream(target: &Target) -> Option<Result<ChannelSocket, IIIError>> {
    let table = table_for(&target.address)?;
    let channel_ref = serde_json::to_vec(&target.channel_ref).ok()?;
    let socket = table.open(&channel_ref).await?;
    match tokio::time::timeout(OPEN_TIMEOUT, socket.wait_opened()).await {
        Ok(Ok(())) => Some(Ok(ChannelSocket::Stream(socket))),
        Ok(Err(Some((code, reason)))) => Some(Err(IIIError::ChannelConnect(format!(
            "the engine refused the channel stream with {code} ({reason})"
        )))),
        Ok(Err(None)) => None,
        Err(_) => Some(Err(IIIError::ChannelConnect(format!(
            "the engine did not answer a channel stream's open within {} s",
            OPEN_TIMEOUT.as_secs()
        )))),
    }
}

impl Stream for ChannelSocket {
    type Item = Result<WsMessage, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Self::Socket(socket) => Pin::new(&mut **socket).poll_next(cx),
            Self::Stream(stream) => Pin::new(stream).poll_next(cx),
        }
    }
}

impl Sink<WsMessage> for ChannelSocket {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.get_mut() {
            Self::Socket(socket) => Pin::new(&mut **socket).poll_ready(cx),
            Self::Stream(stream) => Pin::new(stream).poll_ready(cx),
        }
    }

    fn start_send(self: Pin<&mut Self>, message: WsMessage) -> Result<(), WsError> {
        match self.get_mut() {
            Self::Socket(socket) => Pin::new(&mut **socket).start_send(message),
            Self::Stream(stream) => Pin::new(stream).start_send(message),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.get_mut() {
            Self::Socket(socket) => Pin::new(&mut **socket).poll_flush(cx),
            Self::Stream(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.get_mut() {
            Self::Socket(socket) => Pin::new(&mut **socket).poll_close(cx),
            Self::Stream(stream) => Pin::new(stream).poll_close(cx),
        }
    }
}
