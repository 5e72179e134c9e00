//! WebSocket plumbing shared by main and channel sockets: the socket type, the tungstenite
//! limits, and closing politely (close frame, wait for the peer's answer, never forever).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use iii_protocol::EndStatus;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// An accepted WebSocket.
pub(crate) type WsStream = WebSocketStream<TcpStream>;

/// How long closing a socket may take: sending the close frame and waiting for the answer.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// While discarding what a peer still sends after we closed on it (an oversized frame), stop
/// once it has been quiet this long.
const LINGER_QUIET: Duration = Duration::from_millis(200);

/// Largest close reason a close frame can carry (125-byte control payload minus the code).
const MAX_CLOSE_REASON: usize = 123;

/// Read buffer of a channel writer socket: one full frame (64 KiB of payload plus the largest
/// header). Tungstenite hands out each payload as a slice of its read buffer's allocation, and
/// a buffered frame keeps that whole allocation alive; sized like this, every allocation
/// holds about one frame, so the channel buffer's byte bound is also its memory bound (a
/// 128 KiB buffer let 64 queued frames pin about twice the bytes they carry).
pub(crate) const WRITER_READ_BUFFER: usize = iii_protocol::limits::CHANNEL_FRAME_BYTES + 14;
/// Read buffer of a main socket: JSON messages.
pub(crate) const MAIN_READ_BUFFER: usize = 16 * 1024;
/// Read buffer of a channel reader socket and of telemetry: control frames only.
pub(crate) const SMALL_READ_BUFFER: usize = 4 * 1024;

/// The tungstenite settings for an accepted socket: messages and frames up to `limit` bytes.
/// Tungstenite zero-fills the free part of its read buffer on every read attempt, so sockets
/// that receive little get a small one. The socket's task checks its route's own limit per
/// message again (the limit here comes from a peek at the request, before routing).
pub(crate) fn socket_config(limit: usize, read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
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

/// The close frame sent to every socket when the engine stops.
pub(crate) fn going_away() -> CloseFrame {
    close_frame(1001, "engine_shutdown")
}

/// Sends `frame` (or completes a close the peer started) and reads until the peer answers,
/// discarding anything it still sends, for at most [`CLOSE_GRACE`].
pub(crate) async fn close_and_drain(ws: &mut WsStream, frame: Option<CloseFrame>) {
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
pub(crate) async fn close_too_big(ws: &mut WsStream) {
    let frame = close_frame(iii_protocol::close::MESSAGE_TOO_BIG, "message_too_big");
    let _ = tokio::time::timeout(CLOSE_GRACE, ws.send(WsMessage::Close(Some(frame)))).await;
    linger(ws.get_mut()).await;
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
