//! WebSocket plumbing shared by main and channel sockets: the socket type, the tungstenite
//! limits, and closing politely (close frame, wait for the peer's answer, never forever).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use iii_protocol::limits::MAX_CHANNEL_FRAME_BYTES;
use iii_protocol::{EndStatus, close};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::tcp::CountingTcp;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

/// An accepted WebSocket.
pub(crate) type WsStream = WebSocketStream<CountingTcp>;

/// What a channel end is served over: its own WebSocket, or a stream inside a worker's main
/// socket (docs/PROTOCOL.md §4.8). Both carry the same messages, so one relay serves both.
pub(crate) trait EndSocket:
    futures_util::Stream<Item = Result<WsMessage, WsError>>
    + futures_util::Sink<WsMessage, Error = WsError>
    + Unpin
    + Send
    + 'static
{
    /// After closing on an oversized frame: discard what the peer still sends, so it reads
    /// our close instead of a reset.
    fn linger(&mut self) -> impl std::future::Future<Output = ()> + Send;

    /// Gives the end up without answering a close its peer started: dropped after this, the
    /// peer sees an abnormal end. (A socket never sends the answer it queued unless flushed.)
    fn abandon(&mut self) {}
}

impl EndSocket for WsStream {
    async fn linger(&mut self) {
        linger(self.get_mut().tcp_mut()).await;
    }
}

impl EndSocket for iii_streams::StreamSocket {
    /// A stream has no bytes in flight to discard: the connection's framing is intact.
    async fn linger(&mut self) {}

    fn abandon(&mut self) {
        iii_streams::StreamSocket::abandon(self);
    }
}

/// How long closing a socket may take: sending the close frame and waiting for the answer.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// While discarding what a peer still sends after we closed on it (an oversized frame), stop
/// once it has been quiet this long.
const LINGER_QUIET: Duration = Duration::from_millis(200);

/// Largest close reason a close frame can carry (125-byte control payload minus the code).
const MAX_CLOSE_REASON: usize = 123;

/// What a connecting socket is, as a peek at its request line suggests (a hint only: routing
/// is decided on the parsed request, and each socket's task checks its own limits again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SocketKind {
    /// A worker's main socket (or anything not recognised).
    Main,
    /// A worker's main socket that asks for channel streams (§4.8): bulk data may arrive.
    MainWithStreams,
    /// Telemetry, discarded.
    Otel,
    /// The writing end of a channel: bulk data in.
    ChannelWriter,
    /// The reading end of a channel: bulk data out.
    ChannelReader,
}

/// Read buffer of a channel writer socket: one full frame (64 KiB of payload plus the largest
/// header). Tungstenite hands out each payload as a slice of its read buffer's allocation, and
/// a buffered frame keeps that allocation alive; sized like this, an allocation holds about one
/// frame (frames that queue up are also copied out, see `channels::buffer`).
const WRITER_READ_BUFFER: usize = iii_protocol::limits::CHANNEL_FRAME_WIRE_BYTES;
/// Read buffer of a main socket: JSON messages.
const MAIN_READ_BUFFER: usize = 16 * 1024;
/// Read buffer of a channel reader socket and of telemetry: control frames only.
const SMALL_READ_BUFFER: usize = 4 * 1024;
/// Write buffer of a channel reader socket: frames are gathered up to this much before a
/// send (and flushed at the end of every batch anyway), so bulk data leaves in fewer, larger
/// sends. Against tungstenite's 128 KiB default it measured 0–15 % less engine CPU per byte
/// relayed, on a machine whose run-to-run noise is about as large.
const READER_WRITE_BUFFER: usize = 512 * 1024;
/// Write buffer of every other socket (tungstenite's default).
const DEFAULT_WRITE_BUFFER: usize = 128 * 1024;

/// The tungstenite settings for an accepted socket of `kind`. Channel sockets take frames up
/// to 16 MiB, the others messages up to `max_main_message_bytes`. Tungstenite zero-fills the
/// free part of its read buffer on every read attempt, so sockets that receive little get a
/// small one.
pub(crate) fn socket_config(kind: SocketKind, max_main_message_bytes: usize) -> WebSocketConfig {
    let (limit, read_buffer, write_buffer) = match kind {
        SocketKind::Main => (
            max_main_message_bytes,
            MAIN_READ_BUFFER,
            DEFAULT_WRITE_BUFFER,
        ),
        // Tungstenite reads at most its buffer's size per system call: a channel frame
        // should take one read, not four.
        SocketKind::MainWithStreams => (
            max_main_message_bytes,
            WRITER_READ_BUFFER,
            DEFAULT_WRITE_BUFFER,
        ),
        SocketKind::Otel => (
            max_main_message_bytes,
            SMALL_READ_BUFFER,
            DEFAULT_WRITE_BUFFER,
        ),
        SocketKind::ChannelWriter => (
            MAX_CHANNEL_FRAME_BYTES,
            WRITER_READ_BUFFER,
            DEFAULT_WRITE_BUFFER,
        ),
        SocketKind::ChannelReader => (
            MAX_CHANNEL_FRAME_BYTES,
            SMALL_READ_BUFFER,
            READER_WRITE_BUFFER,
        ),
    };
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(write_buffer)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
}

/// A close frame with `code` and `reason`, the reason cut to what a close frame can carry.
pub(crate) fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason.get(..end).unwrap_or_default().to_string().into(),
    }
}

/// The close frame that carries a channel end status.
pub(crate) fn status_frame(status: &EndStatus) -> CloseFrame {
    let (code, reason) = status.to_close();
    close_frame(code, &reason)
}

/// The close frame for a text frame that is not UTF-8 (1007).
pub(crate) fn invalid_utf8() -> CloseFrame {
    close_frame(close::INVALID_PAYLOAD, close::REASON_INVALID_UTF8)
}

/// The close frame sent to every socket when the engine stops.
pub(crate) fn going_away() -> CloseFrame {
    close_frame(close::GOING_AWAY, close::REASON_ENGINE_SHUTDOWN)
}

/// Sends `frame` (or completes a close the peer started) and reads until the peer answers,
/// discarding anything it still sends, for at most [`CLOSE_GRACE`].
pub(crate) async fn close_and_drain<S: EndSocket>(ws: &mut S, frame: Option<CloseFrame>) {
    let closing = async {
        let sent = match frame {
            Some(frame) => ws.send(WsMessage::Close(Some(frame))).await,
            // Tungstenite queued the echo of the peer's close when it read it; flushing sends
            // it (sending another close would fail: the socket no longer accepts messages).
            None => ws.flush().await,
        };
        if sent.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, closing).await;
}

/// Closes with 1009 after an oversized frame, then discards the rest of that frame from the
/// TCP stream until the peer goes quiet, so the peer reads our close frame instead of a reset.
pub(crate) async fn close_too_big<S: EndSocket>(ws: &mut S) {
    let frame = close_frame(close::MESSAGE_TOO_BIG, close::REASON_MESSAGE_TOO_BIG);
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.send(WsMessage::Close(Some(frame)))).await;
    ws.linger().await;
}

/// Reads and discards from `tcp` until EOF, an error, [`LINGER_QUIET`] without data, or
/// [`CLOSE_GRACE`] in all.
pub(crate) async fn linger(tcp: &mut TcpStream) {
    let mut scratch = vec![0u8; 16 * 1024];
    let draining = async {
        loop {
            match tokio::time::timeout(LINGER_QUIET, tcp.read(&mut scratch)).await {
                Ok(Ok(n)) if n > 0 => continue,
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, draining).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_are_cut_at_a_char_boundary() {
        let long = format!("aborted: {}", "é".repeat(100));
        let frame = close_frame(4001, &long);
        assert!(frame.reason.len() <= MAX_CLOSE_REASON);
        assert!(long.starts_with(frame.reason.as_str()));
        assert_eq!(u16::from(frame.code), 4001);
    }

    #[test]
    fn status_frames_carry_the_protocol_codes() {
        let frame = status_frame(&EndStatus::Aborted("disk full".into()));
        assert_eq!(u16::from(frame.code), 4001);
        assert_eq!(frame.reason.as_str(), "aborted: disk full");
        assert_eq!(u16::from(status_frame(&EndStatus::Complete).code), 1000);
    }
}
